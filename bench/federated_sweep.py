"""The federated-polling k-sweep (config/train_federated.yaml, game config/games/federated.yaml).

    .venv/bin/python bench/federated_sweep.py --out bench/results/sweep_federated.csv [--backend ray] [--resume]
    .venv/bin/python bench/federated_sweep.py --summarize bench/results/sweep_federated.csv \
        --plot bench/results/plots_federated    # + `altmarl plot` for reward, train time and the Nash gap

Each (k, seed) cell trains with the alternating loop and reports the rows of `experiments.run_one`
(reward, certified, rounds, gap_g, gap_l, nash_gap, ...) plus the full-information ratio

    full_info_ratio = V(pi_g, pi_l) / V(BR_g_full(pi_l), pi_l)

where BR_g_full is the Nash gap's global oracle (deterministic mean-field G-LEARN at k_oracle, executed
on the whole population's histogram) and both values are discounted returns of the same paired episodes
on n agents (nash_gap.episodes episodes, evaluation horizon); its stderr is the delta-method standard
error of a ratio of paired means. It is an estimate, and only meaningful when V(BR_g_full) > 0. The cell
trains once and calls the same public functions as `run_one` (train_policies, evaluate_policies,
estimate_nash_gap), because `run_one` does not return the policies the ratio needs.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from altmarl_ros.marl import sim
from altmarl_ros.marl.backends import Cell, grid, run_sweep
from altmarl_ros.marl.config import TrainConfig, load_train_config
from altmarl_ros.marl.experiments import SweepRow, estimate_nash_gap, evaluate_policies, read_rows, train_policies
from altmarl_ros.marl.metrics import global_oracle
from altmarl_ros.marl.plotting import fit_loglog_slope
from altmarl_ros.marl.plotting import summarize as summarize_metric

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("reward", "full_info_ratio", "gap_g", "gap_l", "nash_gap", "certified", "rounds", "train_seconds")


def full_info_ratio(config: TrainConfig, game: Any, pi_g: Any, pi_l: Any, *, seed: int,
                    oracle_cache: dict[bytes, Any] | None) -> tuple[float, float, float]:
    """(ratio, its stderr, V(BR_g_full, pi_l)) on paired episodes (see the module docstring)."""
    key = pi_l.probs.tobytes()
    oracle = None if oracle_cache is None else oracle_cache.get(key)
    if oracle is None:
        oracle = global_oracle(game, pi_l, k_oracle=config.nash_gap.k_oracle)
        if oracle_cache is not None:
            oracle_cache[key] = oracle
    common = dict(n_agents=config.n_agents, horizon=config.evaluation.horizon, n_episodes=config.nash_gap.episodes,
                  ordering=config.ordering)
    entropy = np.random.SeedSequence(seed).spawn(5)[4]  # a stream of its own (run_one's use 0-3)
    a = sim.evaluate(game, pi_g, pi_l, np.random.default_rng(entropy), **common).returns
    b = sim.evaluate(game, oracle, pi_l, np.random.default_rng(entropy), **common).returns
    ratio = float(a.mean() / b.mean())
    stderr = float(np.std(a - ratio * b, ddof=1) / np.sqrt(len(a)) / abs(b.mean()))
    return ratio, stderr, float(b.mean())


def federated_cell(config: TrainConfig, cell: Cell, oracle_cache: dict[bytes, Any] | None) -> list[SweepRow]:
    """run_one's rows (reward, certificate, gaps) and the full-information ratio, from one training."""
    k, seed = cell.k, cell.seed
    trained = train_policies(config, k=k, seed=seed)
    final = evaluate_policies(config, trained.game, trained.pi_g, trained.pi_l, seed=seed)
    nan = float("nan")
    rows = [SweepRow(k, seed, "reward", final.reward_mean, final.reward_stderr),
            SweepRow(k, seed, "reward_seed_std", final.reward_std, nan),
            SweepRow(k, seed, "train_seconds", trained.train_seconds, nan),
            SweepRow(k, seed, "rounds", float(len(trained.alternation.history)), nan),
            SweepRow(k, seed, "certified", float(trained.alternation.certified), nan)]
    if cell.with_gap:
        gap = estimate_nash_gap(config, trained.game, trained.pi_g, trained.pi_l, seed=seed, oracle_cache=oracle_cache)
        ratio, ratio_se, v_full = full_info_ratio(config, trained.game, trained.pi_g, trained.pi_l, seed=seed,
                                                  oracle_cache=oracle_cache)
        rows += [SweepRow(k, seed, "gap_g", gap.gap_g.mean, gap.gap_g.stderr),
                 SweepRow(k, seed, "gap_l", gap.gap_l.mean, gap.gap_l.stderr),
                 SweepRow(k, seed, "nash_gap", gap.nash_gap.mean, gap.nash_gap.stderr),
                 SweepRow(k, seed, "full_info_value", v_full, nan),
                 SweepRow(k, seed, "full_info_ratio", ratio, ratio_se)]
    return rows


def summarize(path: str) -> str:
    """Markdown: per k, mean +- std over seeds of each metric; then the per-run table and the gap slope."""
    rows = read_rows(path)
    by: dict[tuple[int, str], list[float]] = defaultdict(list)
    runs: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    for r in rows:
        by[(r.k, r.metric)].append(r.value)
        runs[(r.k, r.seed)][r.metric] = r.value
    ks = sorted({r.k for r in rows})
    lines = ["| k | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for k in ks:
        cells = []
        for m in METRICS:
            v = np.asarray(by.get((k, m), []))
            cells.append("" if v.size == 0 else f"{v.mean():.3f} +- {v.std():.3f}" if v.size > 1 else f"{v[0]:.3f}")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "| k | seed | reward | full_info_ratio | gap_g | gap_l | certified | rounds |", "|---" * 8 + "|"]
    for (k, seed), m in sorted(runs.items()):
        lines.append(f"| {k} | {seed} | " + " | ".join(f"{m.get(x, float('nan')):.3f}" for x in
                                                       ("reward", "full_info_ratio", "gap_g", "gap_l")) +
                     f" | {int(m.get('certified', 0))} | {int(m.get('rounds', 0))} |")
    gaps = [(k, float(np.mean(by[(k, "nash_gap")]))) for k in ks if by.get((k, "nash_gap"))]
    pos = [(k, g) for k, g in gaps if g > 0]
    if len(pos) >= 3:
        fit = fit_loglog_slope(np.array([k for k, _ in pos]), np.array([g for _, g in pos]))
        lines += ["", f"Nash gap log-log slope {fit.slope:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}] over k = "
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
    written = []
    for name, metrics, ylabel in (("full_info_ratio_vs_k.png", ("full_info_ratio",),
                                   "V(pi_g, pi_l) / V(full-information BR_g, pi_l)"),
                                  ("gaps_vs_k.png", ("gap_g", "gap_l"), "gap (discounted return)")):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for metric in metrics:
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
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
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
        print(f"k={cell.k} seed={cell.seed} reward {m['reward']:.3f} ratio {m.get('full_info_ratio', np.nan):.3f} "
              f"gap_g {m.get('gap_g', np.nan):.3f} gap_l {m.get('gap_l', np.nan):.3f}", flush=True)

    run_sweep(config, cells, out=args.out, backend=args.backend, address=args.address, resume=args.resume,
              on_cell=on_cell, cell_fn=federated_cell)
    print(summarize(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
