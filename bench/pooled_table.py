"""Table of a pooled-dispatcher sweep (issue 15, target iv): per k, over training seeds.

    .venv/bin/altmarl sweep --config config/train_warehouse_pooled.yaml --k 1,2,5,10,20,35,50 --seeds 5 \
        --gap-seeds 0 --out pooled.csv
    .venv/bin/python bench/pooled_table.py pooled.csv [--plain PLAIN.csv ...] [--plot ratio_vs_k.png]

Columns: reward of the kept pair (mean over seeds, and the std of the seed means); its ratio to the
full-information reference of the same seed on the same final episodes (paired, per seed: ratio +- delta-method
stderr; mean over seeds, and the smallest seed); how many seeds kept the pooled pair; the pooled pair's paired
improvement over the k-sample pair on the training's decision episodes (mean over seeds +- the stderr of that
mean from the per-seed stderrs); training seconds (min / median / max).

--plain (the plain k-sample sweep's CSVs, e.g. the default trainer's): a second table, per k, of both rewards, the
pooled minus plain difference per training seed (the same seed's final episodes in both sweeps: common random
numbers) with its 95 % t interval over seeds, both ratios to full information, and both runs' full-information
rewards (each sweep trains its own reference; equal when the two configs train it alike). --plot: the two ratios
vs k (mean over seeds, 95 % t interval) as a PNG.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from altmarl_ros.marl.experiments import read_rows

Cells = dict[int, dict[str, dict[int, tuple[float, float]]]]  # k -> metric -> seed -> (value, stderr)


def read_cells(paths: list[str]) -> Cells:
    cells: Cells = defaultdict(lambda: defaultdict(dict))
    for path in paths:
        for row in read_rows(path):
            cells[row.k][row.metric][row.seed] = (row.value, row.stderr)
    return cells


def t_interval(x: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t interval over seeds."""
    return float(x.mean()), float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def values(cells: Cells, k: int, metric: str, seeds: list[int]) -> np.ndarray:
    return np.array([cells[k][metric][s][0] for s in seeds])


def side_by_side(pooled: Cells, plain: Cells) -> list[tuple[int, tuple[float, float], tuple[float, float]]]:
    """Print the pooled vs plain table; return (k, plain ratio, pooled ratio) as (mean, half-width) per k."""
    print("\n| k | seeds | plain reward | pooled reward | pooled - plain [95 % CI over seeds] | ratio plain | "
          "ratio pooled | full information (plain run / pooled run) |")
    print("|---|---|---|---|---|---|---|---|")
    out = []
    for k in sorted(set(pooled) & set(plain)):
        seeds = sorted(set(pooled[k]["reward"]) & set(plain[k]["reward"]))
        if len(seeds) < 2:
            continue
        a, b = values(plain, k, "reward", seeds), values(pooled, k, "reward", seeds)
        diff, half = t_interval(b - a)
        ra, rb = (t_interval(values(c, k, "ratio_full_information", seeds)) for c in (plain, pooled))
        fa, fb = (values(c, k, "reward_full_information", seeds).mean() for c in (plain, pooled))
        print(f"| {k} | {len(seeds)} | {a.mean():.2f} | {b.mean():.2f} | {diff:+.2f} [{diff - half:+.2f}, "
              f"{diff + half:+.2f}] | {ra[0]:.4f} +- {ra[1]:.4f} | {rb[0]:.4f} +- {rb[1]:.4f} | {fa:.2f} / {fb:.2f} |")
        out.append((k, ra, rb))
    return out


def plot(rows: list[tuple[int, tuple[float, float], tuple[float, float]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = np.array([r[0] for r in rows])
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for i, (label, fmt) in enumerate([("plain k-sample dispatcher", "o-"), ("pooled dispatcher (filter)", "s-")]):
        mean, half = (np.array([r[1 + i][j] for r in rows]) for j in (0, 1))
        ax.errorbar(k, 100 * mean, yerr=100 * half, fmt=fmt, capsize=3, label=f"{label} (mean, 95 % CI over seeds)")
    ax.axhline(100, color="k", lw=0.8, label="full-information reference")
    ax.axhline(99, color="grey", ls=":", lw=0.8, label="99 %")
    ax.set_xscale("log")
    ax.set_xticks(k, [str(v) for v in k])
    ax.minorticks_off()
    ax.set_xlabel("k (robots sampled per step, of n = 1000)")
    ax.set_ylabel("% of full information (paired, final episodes)")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="+", help="the pooled sweep's CSVs")
    parser.add_argument("--plain", nargs="+", default=[], help="the plain k-sample sweep's CSVs")
    parser.add_argument("--plot", default=None, help="write the ratios vs k to this PNG (needs --plain)")
    args = parser.parse_args()
    if args.plot and not args.plain:
        parser.error("--plot draws the pooled and the plain ratios: give the plain sweep's CSVs with --plain")
    cells = {k: {metric: list(by_seed.values()) for metric, by_seed in m.items()}
             for k, m in read_cells(args.csv).items()}
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
        print(f"| {k} | {len(reward)} | {reward.mean():.2f} ({reward.std(ddof=1):.2f}) | {ratio.mean():.4f} / "
              f"{ratio[worst]:.4f} +- {m['ratio_full_information'][worst][1]:.4f} | {kept} of {len(imp)} | "
              f"{imp[:, 0].mean():+.2f} +- {imp_se:.2f} | "
              f"{secs.min():.0f} / {np.median(secs):.0f} / {secs.max():.0f} |")
    if args.plain:
        rows = side_by_side(read_cells(args.csv), read_cells(args.plain))
        if args.plot:
            plot(rows, args.plot)


if __name__ == "__main__":
    main()
