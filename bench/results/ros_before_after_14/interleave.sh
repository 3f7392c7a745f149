#!/bin/bash
# interleaved before (93de133) / after (main) runs of bench/ros_closed_loop.py, rotating+polling, udp
cd /work/main
for r in 1 2 3; do
  for v in old new; do
    if [ $v = old ]; then tree=/work/wt-old; else tree=/work/main; fi
    PYTHONPATH=$tree .venv/bin/python $tree/bench/ros_closed_loop.py --sizes 1000 --ks 35 --observations rotating,polling --transports udp --repeats 1 --out /tmp/ab/$v-$r > /tmp/ab/$v-$r.log 2>&1
    echo "$v $r $(grep -h '^| 1000' /tmp/ab/$v-$r.log | cut -d'|' -f4,7,15-17)"
  done
done
