"""Training speed and peak memory: this package vs the authors' implementation, side by side in one run.

Kinds: `authors` (their code), `ours_paper` (config/train_warehouse.yaml, a standalone training: it trains the
full-information reference first), `ours_sweep_cell` (the same trainer as one cell of `altmarl sweep`, which
trains each seed's reference once for all k: the reference is trained first in the same process, its time
reported as reference_s, and train_s is the cell's alone), `ours_authors`, `ours_glearn_m30`.

Each measurement runs in its own subprocess (OMP_NUM_THREADS=1, as in ../shared/REFERENCE.md) so that
peak RSS is that run's alone. Rows printed as a Markdown table and written as JSON lines.

    .venv/bin/python bench/speed.py --authors-dir /path/to/alternating-marl/scripts --out bench/results/speed.jsonl

--authors-dir is a checkout of github.com/emiletimothy/alternating-marl (commit 1190c22) `scripts/`;
without it only our side is measured. The authors' reward is their own `evaluate(seed)` over 15
seeds (their ordering), ours is `evaluate_policies` with the authors' config (their ordering too).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_ours(kind: str, k: int, eval_seeds: int) -> dict:
    import numpy as np

    from altmarl_ros.marl.config import load_train_config
    from altmarl_ros.marl.experiments import evaluate_policies, train_policies
    from altmarl_ros.marl.games import make_game
    from altmarl_ros.marl.learners.g_learn import g_learn
    from altmarl_ros.marl.policy import TabularLocalPolicy

    if kind == "ours_glearn_m30":  # one paper-faithful G-LEARN call (m = 30) against the uniform pi_l
        game = make_game("warehouse")
        t0 = time.perf_counter()
        result = g_learn(game, TabularLocalPolicy.uniform(5, 5, 3), k=k, rng=np.random.default_rng(0),
                         transition="sampled", m=30, stopping="span", tol=1e-3)
        return {"train_s": time.perf_counter() - t0, "sweeps": result.n_sweeps, "peak_mb": _peak_mb()}
    name = {"ours_authors": "train_warehouse_authors.yaml", "ours_paper": "train_warehouse.yaml",
            "ours_sweep_cell": "train_warehouse.yaml"}[kind]
    config = load_train_config(ROOT / "config" / name)
    reference, extra = None, {}
    if kind == "ours_sweep_cell":  # a cell of `altmarl sweep`: the seed's reference pair is trained once per seed
        from altmarl_ros.marl.experiments import reference_pair

        t0 = time.perf_counter()
        reference = reference_pair(config, seed=0)
        extra = {"reference_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    trained = train_policies(config, k=k, seed=0, reference=reference)
    train_s = time.perf_counter() - t0
    row = {"train_s": train_s, "rounds": len(trained.alternation.history), "g_learn_calls": trained.g_learn_calls,
           "peak_mb": _peak_mb(), **extra}
    if eval_seeds:
        from dataclasses import replace

        config = replace(config, evaluation=replace(config.evaluation, seeds=eval_seeds))
        final = evaluate_policies(config, trained.game, trained.pi_g, trained.pi_l, seed=0)
        row.update(reward=final.reward_mean, reward_std=final.reward_std)
    return row


def run_authors(authors_dir: str, k: int, eval_seeds: int) -> dict:
    sys.path.insert(0, authors_dir)
    import marl_example as me  # their driver: the environment and hyperparameters.json
    import numpy as np
    from alternating_marl import AlternatingMARL

    alg = AlternatingMARL(n_sg=me.N_SG, n_sl=me.N_SL, n_ga=me.N_GA, n_al=me.N_AL, n_agents=me.N_AGENTS, k=k,
                          gamma=me.GAMMA, P_g=me.P_g, P_l=me.P_l, r_g=me.r_g, r_l=me.r_l)
    t0 = time.perf_counter()
    history = alg.train()
    row = {"train_s": time.perf_counter() - t0, "rounds": len(history["values"]), "peak_mb": _peak_mb()}
    if eval_seeds:
        values = [alg.evaluate(seed=s) for s in range(eval_seeds)]
        row.update(reward=float(np.mean(values)), reward_std=float(np.std(values)))
    return row


def child_env() -> dict[str, str]:
    """The environment of a measured subprocess: one BLAS thread (as in ../shared/REFERENCE.md)."""
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def measure(kind: str, k: int, authors_dir: str | None, eval_seeds: int) -> dict:
    env = child_env()
    cmd = [sys.executable, __file__, "--one", kind, "--k", str(k), "--eval-seeds", str(eval_seeds)]
    if authors_dir:
        cmd += ["--authors-dir", authors_dir]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, cwd=ROOT)
    if out.returncode != 0:
        return {"kind": kind, "k": k, "error": out.stderr.strip().splitlines()[-1:]}
    return {"kind": kind, "k": k, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors-dir", default=None, help="the authors' scripts/ directory (optional)")
    parser.add_argument("--k", default="30,50", help="k values for the side-by-side comparison")
    parser.add_argument("--k-ours-only", default="100", help="k values measured for this package only")
    parser.add_argument("--eval-seeds", type=int, default=15, help="evaluation seeds for the rewards (0: none)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each (implementation, k) (default 3)")
    parser.add_argument("--kinds", default="authors,ours_authors,ours_paper,ours_glearn_m30",
                        help="implementations to measure (ours_paper = config/train_warehouse.yaml, the default)")
    parser.add_argument("--out", default="bench/results/speed.jsonl")
    parser.add_argument("--summarize", nargs="+", metavar="JSONL", help="only print the table of earlier runs' rows")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.summarize:
        rows = [json.loads(line) for path in args.summarize for line in Path(path).read_text().splitlines() if line]
        print(table(sorted(rows, key=lambda r: (r["k"], r["kind"] != "authors"))))
        return 0
    if args.one:  # child process: one measurement, one JSON line
        k = int(args.k)
        row = (run_authors(args.authors_dir, k, args.eval_seeds) if args.one == "authors"
               else run_ours(args.one, k, args.eval_seeds))
        print(json.dumps(row))
        return 0
    kinds = [kind for kind in args.kinds.split(",") if kind != "authors" or args.authors_dir]
    plan = [(kind, int(k)) for k in args.k.split(",") for kind in kinds]
    plan += [("ours_authors", int(k)) for k in args.k_ours_only.split(",") if k]
    # repeats interleaved (every implementation once, then again), so that load drifts hit all of them
    order = [(r, kind, k) for r in range(args.repeats) for kind, k in plan]
    rows = []
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    for i, (rep, kind, k) in enumerate(order, 1):
        print(f"[{i}/{len(order)}] {kind} k={k} (repeat {rep + 1}) ...", file=sys.stderr, flush=True)
        evals = args.eval_seeds if kind != "ours_glearn_m30" and rep == 0 else 0
        rows.append({**measure(kind, k, args.authors_dir, evals), "repeat": rep})
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(table(rows))
    return 0


def table(rows: list[dict]) -> str:
    """Markdown: train seconds min / median / max over the repeats, speed-up of the medians vs the authors'."""
    import numpy as np

    groups: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["k"]), []).append(r)
    median = {key: float(np.median([r["train_s"] for r in rs if "train_s" in r])) for key, rs in groups.items()
              if any("train_s" in r for r in rs)}
    lines = ["| k | implementation | train s: min / median / max (runs) | speed-up vs the authors' code (medians) "
             "| rounds or sweeps | peak RSS (MB) | reward (15 seeds) |", "|---|---|---|---|---|---|---|"]
    for (kind, k), rs in groups.items():
        ok = [r for r in rs if "train_s" in r]
        if not ok:
            lines.append(f"| {k} | {kind} | error: {rs[0].get('error')} | | | | |")
            continue
        t = np.array([r["train_s"] for r in ok])
        if "reference_s" in ok[0]:  # ours_sweep_cell: the seed's reference, trained once for all k of a sweep
            tr = np.array([r["reference_s"] for r in ok])
            kind = f"{kind} (+ the reference once per seed: {tr.min():.2f} / {np.median(tr):.2f} / {tr.max():.2f})"
        ref = median.get(("authors", k))
        speedup = f"{ref / float(np.median(t)):.1f}x" if ref and kind != "authors" else ""
        first = next((r for r in ok if "reward" in r), {})
        reward = f"{first['reward']:.2f} +- {first['reward_std']:.2f}" if first else ""
        lines.append(f"| {k} | {kind} | {t.min():.2f} / {np.median(t):.2f} / {t.max():.2f} ({t.size}) | {speedup} "
                     f"| {ok[0].get('rounds', ok[0].get('sweeps', ''))} | {max(r['peak_mb'] for r in ok):.0f} "
                     f"| {reward} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
