#!/usr/bin/env bash
# Issue 7's k-sweep with the default training config: k in {1,2,5,10,20,30,35,40,50} x 5 training seeds,
# each evaluated on 15 seeds x 50 episodes (n = 1000, horizon 50), with the full-information reference.
# Two sweeps side by side (one per core; the k values split to balance their cost), seeds 0-2 first and
# then 3-4, every trained pair saved for the gap estimates (bench/k_sweep_gaps.py); then
#   .venv/bin/python bench/k_sweep_report.py bench/results/k_sweep/*.csv --plots bench/results/k_sweep/plots
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/k_sweep}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
sweep() {  # $1 = k list, $2 = first seed, $3 = seeds, $4 = part name
    .venv/bin/altmarl sweep --config config/train_warehouse.yaml --k "$1" --seed0 "$2" --seeds "$3" --gap-seeds 0 \
        --save-policies "$OUT/policies" --out "$OUT/$4.csv" --resume > "$OUT/$4.log" 2>&1
}
(sweep 50,30,10,2,1 0 3 a_seeds012 && sweep 50,30,10,2,1 3 2 a_seeds34) &
(sweep 40,35,20,5 0 3 b_seeds012 && sweep 40,35,20,5 3 2 b_seeds34) &
wait
