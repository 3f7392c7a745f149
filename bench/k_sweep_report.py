"""Issue 7's k-sweep targets from a sweep CSV (written by `altmarl sweep`), printed as Markdown.

    .venv/bin/python bench/k_sweep_report.py bench/results/k_sweep/{part_a,part_b,gaps}.csv [--plots DIR]

(several CSVs of one sweep, e.g. its parts and bench/k_sweep_gaps.py's rows, are read as one)

Targets, each stated with the measured figure whether it holds or not:
  (i)   mean reward non-decreasing in k within its 95 % CI at every step: the paired difference over
        training seeds (the same seed's final evaluation uses the same episodes at every k) between
        consecutive k, with a t interval; a step "holds" unless the interval lies entirely below 0;
  (ii)  seed-to-seed standard deviation of the reward at most 1.0 at every k;
  (iii) at k = 35, at least 99 % of the full-information reference (ratio of paired means, per seed,
        then a t interval over seeds);
  (iv)  each gap vs k on log-log axes with its fitted slope and 95 % CI (theory: about -0.5);
  (v)   training time vs k (median over seeds here; the side-by-side timing with the authors' code is
        bench/speed.py's).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections import defaultdict

import numpy as np
from scipy import stats

from altmarl_ros.marl.experiments import SweepRow, read_rows
from altmarl_ros.marl.plotting import fit_loglog_slope, plot_rows

GAPS = ("gap_l_unilateral", "gap_l_shared", "gap_g_restricted", "gap_g_full")


def _table(rows: list[SweepRow]) -> dict[str, dict[int, dict[int, tuple[float, float]]]]:
    """metric -> k -> seed -> (value, stderr)."""
    out: dict[str, dict[int, dict[int, tuple[float, float]]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        out[r.metric][r.k][r.seed] = (r.value, r.stderr)
    return out


def _t_interval(x: np.ndarray) -> tuple[float, float, float]:
    """mean and 95 % t interval of the mean (nan half-width for a single value)."""
    if x.size < 2:
        return float(x.mean()), math.nan, math.nan
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def report(rows: list[SweepRow]) -> str:
    t = _table(rows)
    ks = sorted(t["reward"])
    lines = ["| k | seeds | reward mean [95 % CI] | seed std | full information | ratio [95 % CI] | fixed point | "
             "train s (median) | " + " | ".join(GAPS) + " |", "|---" * (8 + len(GAPS)) + "|"]
    for k in ks:
        seeds = sorted(t["reward"][k])
        reward = np.array([t["reward"][k][s][0] for s in seeds])
        m, lo, hi = _t_interval(reward)
        full = np.array([t["reward_full_information"][k][s][0] for s in seeds if s in t["reward_full_information"][k]])
        ratio = np.array([t["ratio_full_information"][k][s][0] for s in seeds if s in t["ratio_full_information"][k]])
        rm, rlo, rhi = _t_interval(ratio) if ratio.size else (math.nan,) * 3
        cert = np.mean([t["fixed_point"][k][s][0] for s in seeds])
        train = np.median([t["train_seconds"][k][s][0] for s in seeds])
        gaps = []
        for g in GAPS:
            vals = np.array([v for v, _ in t[g][k].values()]) if k in t[g] else np.array([])
            gaps.append(f"{_fmt(vals.mean())} +- {_fmt(vals.std(ddof=1) / math.sqrt(vals.size))}"
                        if vals.size > 1 else (_fmt(vals[0]) if vals.size else "n/a"))
        lines.append(f"| {k} | {len(seeds)} | {m:.2f} [{_fmt(lo)}, {_fmt(hi)}] | {reward.std(ddof=1):.2f} | "
                     f"{_fmt(full.mean()) if full.size else 'n/a'} | {_fmt(rm, 4)} [{_fmt(rlo, 4)}, {_fmt(rhi, 4)}] | "
                     f"{cert:.0%} | {train:.1f} | " + " | ".join(gaps) + " |")
    lines.append("\nTargets:\n")
    steps = []
    for a, b in itertools.pairwise(ks):
        common = sorted(set(t["reward"][a]) & set(t["reward"][b]))
        diff = np.array([t["reward"][b][s][0] - t["reward"][a][s][0] for s in common])
        m, lo, hi = _t_interval(diff)
        steps.append((a, b, m, lo, hi, not hi < 0))
    bad = [s for s in steps if not s[5]]
    lines.append(f"- (i) reward non-decreasing within the 95 % CI at every step: {'HOLDS' if not bad else 'FAILS'}; "
                 "paired steps: " + "; ".join(f"{a}->{b}: {m:+.2f} [{_fmt(lo)}, {_fmt(hi)}]"
                                              for a, b, m, lo, hi, _ in steps))
    stds = {k: float(np.std([v for v, _ in t["reward"][k].values()], ddof=1)) for k in ks}
    worst = max(stds, key=lambda k: stds[k])
    lines.append(f"- (ii) seed std <= 1.0 at every k: {'HOLDS' if stds[worst] <= 1.0 else 'FAILS'} "
                 f"(largest {stds[worst]:.2f} at k = {worst})")
    if 35 in t["ratio_full_information"]:
        r35 = np.array([v for v, _ in t["ratio_full_information"][35].values()])
        m, lo, hi = _t_interval(r35)
        lines.append(f"- (iii) k = 35 reaches >= 99 % of full information: {'HOLDS' if m >= 0.99 else 'FAILS'} "
                     f"(ratio {m:.4f}, 95 % CI [{_fmt(lo, 4)}, {_fmt(hi, 4)}])")
    else:
        lines.append("- (iii) no k = 35 full-information ratio in this CSV")
    for g in GAPS:
        pts = [(k, float(np.mean([v for v, _ in t[g][k].values()]))) for k in sorted(t[g])]
        if not pts:
            continue
        try:
            fit = fit_loglog_slope(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
            used = fit.n_points
            fit_text = f"slope {fit.slope:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}] over {used} positive k"
        except ValueError as exc:
            fit_text = str(exc)
        lines.append(f"- (iv) {g} vs k (log-log): {fit_text}; means: "
                     + ", ".join(f"k={k}: {v:.2f}" for k, v in pts))
    train = {k: float(np.median([v for v, _ in t["train_seconds"][k].values()])) for k in ks}
    lines.append("- (v) training time (median over seeds, s): "
                 + ", ".join(f"k={k}: {v:.1f}" for k, v in train.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", nargs="+")
    parser.add_argument("--plots", default=None, help="also write the PNGs (altmarl plot) into this directory")
    args = parser.parse_args(argv)
    rows = [row for path in args.csv for row in read_rows(path)]
    print(report(rows))
    if args.plots:
        for metric, path in plot_rows(rows, args.plots).items():
            print(f"{metric}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
