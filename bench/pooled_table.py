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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from k_sweep_report import _t_interval, _table  # metric -> k -> seed -> (value, stderr); mean and 95 % t interval

from altmarl_ros.marl.experiments import read_rows

Table = dict[str, dict[int, dict[int, tuple[float, float]]]]
Ratio = tuple[float, float]  # mean over seeds and the half-width of its 95 % t interval


def read_table(paths: list[str]) -> Table:
    return _table([row for path in paths for row in read_rows(path)])


def values(table: Table, metric: str, k: int, seeds: list[int]) -> np.ndarray:
    return np.array([table[metric][k][s][0] for s in seeds])


def mean_and_half(x: np.ndarray) -> Ratio:
    mean, _, high = _t_interval(x)
    return mean, high - mean


def pooled_table(t: Table) -> None:
    print("| k | seeds | reward (seed std) | ratio to full information: mean / smallest seed | pooled kept | "
          "improvement over the k-sample pair | train s min / median / max |")
    print("|---|---|---|---|---|---|---|")
    for k in sorted(t["reward"]):
        seeds = sorted(t["reward"][k])
        reward, ratio = values(t, "reward", k, seeds), values(t, "ratio_full_information", k, seeds)
        worst = seeds[int(ratio.argmin())]
        kept = int(values(t, "pooled_kept", k, seeds).sum())
        imp = np.array([t["pooled_improvement"][k][s] for s in seeds])
        imp_se = math.sqrt(float((imp[:, 1] ** 2).sum())) / len(imp)
        secs = values(t, "train_seconds", k, seeds)
        print(f"| {k} | {len(seeds)} | {reward.mean():.2f} ({reward.std(ddof=1):.2f}) | {ratio.mean():.4f} / "
              f"{ratio.min():.4f} +- {t['ratio_full_information'][k][worst][1]:.4f} | {kept} of {len(seeds)} | "
              f"{imp[:, 0].mean():+.2f} +- {imp_se:.2f} | "
              f"{secs.min():.0f} / {np.median(secs):.0f} / {secs.max():.0f} |")


def side_by_side(pooled: Table, plain: Table) -> list[tuple[int, Ratio, Ratio]]:
    """Print the pooled vs plain table; return (k, plain ratio, pooled ratio) per k."""
    print("\n| k | seeds | plain reward | pooled reward | pooled - plain [95 % CI over seeds] | ratio plain | "
          "ratio pooled | full information (plain run / pooled run) |")
    print("|---|---|---|---|---|---|---|---|")
    out = []
    for k in sorted(set(pooled["reward"]) & set(plain["reward"])):
        seeds = sorted(set(pooled["reward"][k]) & set(plain["reward"][k]))
        if len(seeds) < 2:
            continue
        a, b = values(plain, "reward", k, seeds), values(pooled, "reward", k, seeds)
        diff, low, high = _t_interval(b - a)
        ra, rb = (mean_and_half(values(t, "ratio_full_information", k, seeds)) for t in (plain, pooled))
        fa, fb = (values(t, "reward_full_information", k, seeds).mean() for t in (plain, pooled))
        print(f"| {k} | {len(seeds)} | {a.mean():.2f} | {b.mean():.2f} | {diff:+.2f} [{low:+.2f}, {high:+.2f}] | "
              f"{ra[0]:.4f} +- {ra[1]:.4f} | {rb[0]:.4f} +- {rb[1]:.4f} | {fa:.2f} / {fb:.2f} |")
        out.append((k, ra, rb))
    return out


def plot(rows: list[tuple[int, Ratio, Ratio]], path: str) -> None:
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
    pooled = read_table(args.csv)
    pooled_table(pooled)
    if args.plain:
        rows = side_by_side(pooled, read_table(args.plain))
        if args.plot:
            plot(rows, args.plot)


if __name__ == "__main__":
    main()
