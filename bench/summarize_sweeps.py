"""Tables of bench/README.md from the sweep CSVs (written by bench/run_sweeps.sh), printed as Markdown.

    .venv/bin/python bench/summarize_sweeps.py bench/results/sweep_authors.csv bench/results/sweep_paper.csv

Prints the reproduction table (ours next to the reference figures of ../shared/REFERENCE.md), the
per-run table of the paper config, and Nash-gap log-log slopes: over all runs, and within each
equilibrium the alternation reached (a run is "coordinated" when its mode accuracy is >= 0.8).
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

from altmarl_ros.marl.experiments import SweepRow, read_rows
from altmarl_ros.marl.plotting import fit_loglog_slope, summarize

# ../shared/REFERENCE.md 2 and B1: the authors' code on this kind of machine (15 eval seeds x 50 rollouts);
# (reward, std over seeds, reward under the correct ordering, mode accuracy %, train seconds)
REFERENCE = {1: (83.29, 0.54, 80.04, 27.2, 0.54), 2: (84.94, 0.84, None, 36.8, 0.55),
             5: (85.86, 0.86, None, 32.1, 0.71), 10: (87.78, 0.90, 84.63, 36.0, 0.35),
             20: (90.20, 0.57, None, 47.2, 3.37), 30: (91.44, 1.43, 88.52, 57.9, 19.62),
             40: (92.73, 1.12, None, 60.2, 31.12),
             50: (93.09, 0.77, None, None, 103.77)}  # k = 50: their code measured by bench/speed.py here


def _by_run(rows: list[SweepRow]) -> dict[tuple[int, int], dict[str, float]]:
    runs: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    for r in rows:
        runs[(r.k, r.seed)][r.metric] = r.value
    return runs


def _mean(rows: list[SweepRow], metric: str) -> dict[int, float]:
    s = summarize(rows, metric)
    return dict(zip(s.k.tolist(), s.mean.tolist(), strict=True))


def _fmt(x: float | None, digits: int = 2) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _slope(points: list[tuple[int, float]]) -> str:
    by_k: dict[int, list[float]] = defaultdict(list)
    for k, v in points:
        by_k[k].append(v)
    ks = np.array(sorted(by_k))
    means = np.array([np.mean(by_k[k]) for k in ks])
    try:
        fit = fit_loglog_slope(ks, means)
    except ValueError as exc:
        return str(exc)
    return f"{fit.slope:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}] over k = {','.join(map(str, ks))}"


def main(authors_csv: str, paper_csv: str) -> int:
    authors, paper = read_rows(authors_csv), read_rows(paper_csv)
    a = {m: _mean(authors, m) for m in ("reward", "reward_seed_std", "reward_paper_ordering", "mode_accuracy",
                                        "train_seconds")}
    p = {m: _mean(paper, m) for m in ("reward", "mode_accuracy", "train_seconds", "nash_gap")}
    print("| k | reward: authors' code (ref) | reward: authors config (ours) | correct ordering: authors' code "
          "(ref) | correct ordering: authors config (ours) | paper config (ours, correct ordering) | mode acc. % "
          "ref / ours authors / ours paper | train s: ref / ours authors / ours paper |")
    print("|---|---|---|---|---|---|---|---|")
    for k in sorted(a["reward"]):
        ref = REFERENCE.get(k)
        print(f"| {k} | {_fmt(ref[0]) + ' +- ' + _fmt(ref[1]) if ref else ''} "
              f"| {_fmt(a['reward'][k])} +- {_fmt(a['reward_seed_std'][k])} | {_fmt(ref[2] if ref else None)} "
              f"| {_fmt(a['reward_paper_ordering'].get(k))} | {_fmt(p['reward'].get(k))} "
              f"| {_fmt(ref[3] if ref else None, 1)} / {_fmt(100 * a['mode_accuracy'][k], 1)} / "
              f"{_fmt(100 * p['mode_accuracy'].get(k, np.nan), 1)} "
              f"| {_fmt(ref[4] if ref else None)} / {_fmt(a['train_seconds'][k])} / "
              f"{_fmt(p['train_seconds'].get(k))} |")
    print("\nPaper config, every run (k, training seed):\n")
    print("| k | seed | reward | mode acc. | gap_g | gap_l | Nash gap | rounds | certified | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    runs = _by_run(paper)
    for (k, seed), m in sorted(runs.items()):
        print(f"| {k} | {seed} | {m['reward']:.2f} | {m['mode_accuracy']:.3f} | {m['gap_g']:.2f} | {m['gap_l']:.2f} "
              f"| {m['nash_gap']:.2f} | {int(m['rounds'])} | {'yes' if m.get('certified') else 'no'} "
              f"| {m['train_seconds']:.1f} |")
    print("\nNash gap log-log slopes (mean over runs per k; 95 % CI):\n")
    for name, rows in (("authors config", authors), ("paper config", paper)):
        runs = _by_run(rows)
        print(f"- {name}, all runs: {_slope([(k, m['nash_gap']) for (k, _), m in runs.items()])}; "
              f"gap_g only: {_slope([(k, m['gap_g']) for (k, _), m in runs.items()])}")
        if name == "paper config":
            for label, keep in (("coordinated (mode acc. >= 0.8)", lambda m: m["mode_accuracy"] >= 0.8),
                                ("drifting (mode acc. < 0.8)", lambda m: m["mode_accuracy"] < 0.8)):
                pts = [(k, m["nash_gap"]) for (k, _), m in runs.items() if keep(m)]
                print(f"- {name}, {label}: {_slope(pts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
