#!/usr/bin/env bash
# The warehouse k-sweep of bench/README.md with both configs: 3 training seeds per k, each evaluated on
# 15 seeds x 50 rollouts (n = 1000, horizon 50), Nash gap on every seed. Then the plots.
set -euo pipefail
cd "$(dirname "$0")/.."
K=${K:-1,2,5,10,20,30,40,50}
SEEDS=${SEEDS:-3}
for cfg in authors paper; do
  file=config/train_warehouse.yaml
  [ "$cfg" = authors ] && file=config/train_warehouse_authors.yaml
  .venv/bin/altmarl sweep --config "$file" --k "$K" --seeds "$SEEDS" --out "bench/results/sweep_$cfg.csv"
  .venv/bin/altmarl plot "bench/results/sweep_$cfg.csv" --out "bench/results/plots_$cfg" --title "warehouse, $cfg config"
done
