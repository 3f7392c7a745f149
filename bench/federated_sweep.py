"""The federated-polling k-sweep (config/train_federated.yaml, game config/games/federated.yaml).

    .venv/bin/python bench/federated_sweep.py --out bench/results/sweep_federated.csv [--executor ray] [--resume]
    .venv/bin/python bench/federated_sweep.py --summarize bench/results/sweep_federated.csv \
        --plot bench/results/plots_federated    # + `altmarl plot` for reward, train time and the Nash gap

Each (k, seed) cell is `experiments.run_one` (through `executors.run_sweep`): reward, the full-information
ratio `ratio_full_information` (when the config enables `full_information`), the named Nash gaps,
rounds. `--summarize` prints the metrics present in a CSV, so it also reads the CSV of the earlier
version of this script (commit 847301d: `full_info_ratio` = V(pi_g, pi_l) / V(mean-field oracle, pi_l),
`gap_g`, `gap_l`, `nash_gap`; bench/README.md 5).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from altmarl_ros.marl.config import load_train_config
from altmarl_ros.marl.executors import Cell, grid, run_sweep
from altmarl_ros.marl.experiments import SweepRow, read_rows
from altmarl_ros.marl.plotting import fit_loglog_slope
from altmarl_ros.marl.plotting import summarize as summarize_metric

ROOT = Path(__file__).resolve().parent.parent
RATIOS = ("ratio_full_information", "full_info_ratio")
GAPS = ("gap_g_restricted", "gap_g_full", "gap_l_unilateral", "gap_l_shared", "gap_g", "gap_l")
NASH = ("nash_gap_lower_bound", "nash_gap")
METRICS = ("reward", *RATIOS, *GAPS, *NASH, "certified", "fixed_point", "rounds", "train_seconds")


def summarize(path: str) -> str:
    """Markdown: per k, mean +- std over seeds of each metric; then the per-run table and the gap slope."""
    rows = read_rows(path)
    by: dict[tuple[int, str], list[float]] = defaultdict(list)
    runs: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    for r in rows:
        by[(r.k, r.metric)].append(r.value)
        runs[(r.k, r.seed)][r.metric] = r.value
    ks = sorted({r.k for r in rows})
    present = [m for m in METRICS if any(r.metric == m for r in rows)]
    lines = ["| k | " + " | ".join(present) + " |", "|---" * (len(present) + 1) + "|"]
    for k in ks:
        cells = []
        for m in present:
            v = np.asarray(by.get((k, m), []))
            cells.append("" if v.size == 0 else f"{v.mean():.3f} +- {v.std():.3f}" if v.size > 1 else f"{v[0]:.3f}")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    per_run = [m for m in present if m not in ("reward_seed_std", "train_seconds")]
    lines += ["", "| k | seed | " + " | ".join(per_run) + " |", "|---" * (len(per_run) + 2) + "|"]
    for (k, seed), m in sorted(runs.items()):
        lines.append(f"| {k} | {seed} | " + " | ".join(f"{m.get(x, float('nan')):.3f}" for x in per_run) + " |")
    nash = next((m for m in NASH if m in present), None)
    gaps = [(k, float(np.mean(by[(k, nash)]))) for k in ks if nash and by.get((k, nash))]
    pos = [(k, g) for k, g in gaps if g > 0]
    if len(pos) >= 3:
        fit = fit_loglog_slope(np.array([k for k, _ in pos]), np.array([g for _, g in pos]))
        lines += ["", f"{nash} log-log slope {fit.slope:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}] over k = "
                  f"{','.join(str(k) for k, _ in pos)}"]
    return "\n".join(lines)


def plot(path: str, out_dir: str) -> list[Path]:
    """full_info_ratio_vs_k.png and gaps_vs_k.png (gap_g, gap_l): mean over seeds with 95 % CIs of the mean."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from altmarl_ros.marl.artifacts import atomic_write_bytes

    rows = read_rows(path)
    present = {r.metric for r in rows}
    written = []
    for name, metrics, ylabel in (("full_info_ratio_vs_k.png", RATIOS, "reward at k / full-information reward"),
                                  ("gaps_vs_k.png", GAPS, "gap (discounted return)")):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for metric in (m for m in metrics if m in present):
            s = summarize_metric(rows, metric)
            ax.errorbar(s.k, s.mean, yerr=1.96 * s.stderr, fmt="o-", capsize=3,
                        label=f"{metric} (mean over seeds, 95 % CI)")
        ax.set_xscale("log")
        ax.set_xlabel("k (clients polled per round)")
        ax.set_ylabel(ylabel)
        ax.set_title("federated polling, n = 1000")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120)
        plt.close(fig)
        target = Path(out_dir) / name
        atomic_write_bytes(target, buffer.getvalue())
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "config/train_federated.yaml"))
    parser.add_argument("--k", default="1,2,5,10,20,50")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench/results/sweep_federated.csv"))
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--address", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--summarize", metavar="CSV", default=None, help="only print the tables of a finished sweep")
    parser.add_argument("--plot", metavar="DIR", default=None,
                        help="with --summarize: also write the ratio and gap plots")
    args = parser.parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize))
        for path in plot(args.summarize, args.plot) if args.plot else []:
            print(f"wrote {path}")
        return 0
    config = load_train_config(args.config)
    cells = grid([int(k) for k in args.k.split(",")], list(range(args.seeds)))

    def on_cell(cell: Cell, rows: list[SweepRow]) -> None:
        m = {r.metric: r.value for r in rows}
        print(f"k={cell.k} seed={cell.seed} reward {m['reward']:.3f} "
              f"ratio {m.get('ratio_full_information', np.nan):.3f} "
              f"nash_gap_lower_bound {m.get('nash_gap_lower_bound', np.nan):.3f}", flush=True)

    run_sweep(config, cells, out=args.out, executor=args.executor, address=args.address, resume=args.resume,
              on_cell=on_cell)
    print(summarize(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
