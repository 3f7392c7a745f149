#!/usr/bin/env bash
# Issue 7's k-sweep with the default training config: k in {1,2,5,10,20,30,35,40,50} x 5 training seeds,
# each evaluated on 15 seeds x 50 episodes (n = 1000, horizon 50), with the full-information reference;
# two sweeps side by side (one per core), every trained pair saved for the gap estimates
# (bench/k_sweep_gaps.py), then merged and summarised (bench/k_sweep_report.py).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/k_sweep}
SEEDS=${SEEDS:-5}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
.venv/bin/altmarl sweep --config config/train_warehouse.yaml --k 50,35,20,5,1 --seeds "$SEEDS" --gap-seeds 0 \
    --save-policies "$OUT/policies" --out "$OUT/part_a.csv" --resume > "$OUT/part_a.log" 2>&1 &
.venv/bin/altmarl sweep --config config/train_warehouse.yaml --k 40,30,10,2 --seeds "$SEEDS" --gap-seeds 0 \
    --save-policies "$OUT/policies" --out "$OUT/part_b.csv" --resume > "$OUT/part_b.log" 2>&1 &
wait
