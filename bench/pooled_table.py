"""Table of a pooled-dispatcher sweep (issue 15, target iv): per k, over training seeds.

    .venv/bin/altmarl sweep --config config/train_warehouse_pooled.yaml --k 5,10 --seeds 5 --gap-seeds 0 \
        --out bench/results/pooled_sweep.csv
    .venv/bin/python bench/pooled_table.py bench/results/pooled_sweep.csv

Columns: reward of the kept pair (mean over seeds, and the std of the seed means); its ratio to the
full-information reference of the same seed on the same final episodes (paired, per seed: ratio +- delta-method
stderr; mean over seeds, and the smallest seed); how many seeds kept the pooled pair; the pooled pair's paired
improvement over the k-sample pair on the training's decision episodes (mean over seeds +- the stderr of that
mean from the per-seed stderrs); training seconds (min / median / max).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from altmarl_ros.marl.experiments import read_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    args = parser.parse_args()
    cells: dict[int, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in read_rows(args.csv):
        cells[row.k][row.metric].append((row.value, row.stderr))
    print("| k | seeds | reward (seed std) | ratio to full information: mean / smallest seed | pooled kept | "
          "improvement over the k-sample pair | train s min / median / max |")
    print("|---|---|---|---|---|---|---|")
    for k in sorted(cells):
        m = cells[k]
        reward = np.array([v for v, _ in m["reward"]])
        ratio = np.array([v for v, _ in m["ratio_full_information"]])
        worst = int(ratio.argmin())
        kept = int(sum(v for v, _ in m["pooled_kept"]))
        imp = np.array(m["pooled_improvement"])
        imp_se = math.sqrt(float((imp[:, 1] ** 2).sum())) / len(imp)
        secs = np.array([v for v, _ in m["train_seconds"]])
        print(f"| {k} | {len(reward)} | {reward.mean():.2f} ({reward.std():.2f}) | {ratio.mean():.4f} / "
              f"{ratio[worst]:.4f} +- {m['ratio_full_information'][worst][1]:.4f} | {kept} of {len(imp)} | "
              f"{imp[:, 0].mean():+.2f} +- {imp_se:.2f} | "
              f"{secs.min():.0f} / {np.median(secs):.0f} / {secs.max():.0f} |")


if __name__ == "__main__":
    main()
