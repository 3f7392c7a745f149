#!/usr/bin/env bash
# The authors' code reproduced (bench/README.md 1b): the warehouse k-sweep with
# config/train_warehouse_authors.yaml, 3 training seeds per k, each evaluated on 15 seeds x 50 rollouts
# (n = 1000, horizon 50), the gaps on every seed; then the plots. The default trainer's sweep is
# bench/run_k_sweep.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
K=${K:-1,2,5,10,20,30,40,50}
SEEDS=${SEEDS:-3}
.venv/bin/altmarl sweep --config config/train_warehouse_authors.yaml --k "$K" --seeds "$SEEDS" \
    --out bench/results/sweep_authors.csv
.venv/bin/altmarl plot bench/results/sweep_authors.csv --out bench/results/plots_authors --title "warehouse, authors config"
