"""Training speed and peak memory: this package vs the authors' implementation, side by side in one run.

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
    name = {"ours_authors": "train_warehouse_authors.yaml", "ours_paper": "train_warehouse.yaml"}[kind]
    config = load_train_config(ROOT / "config" / name)
    t0 = time.perf_counter()
    trained = train_policies(config, k=k, seed=0)
    train_s = time.perf_counter() - t0
    row = {"train_s": train_s, "rounds": len(trained.alternation.history), "g_learn_calls": trained.g_learn_calls,
           "peak_mb": _peak_mb()}
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


def measure(kind: str, k: int, authors_dir: str | None, eval_seeds: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
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
    parser.add_argument("--out", default="bench/results/speed.jsonl")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one measurement, one JSON line
        k = int(args.k)
        row = (run_authors(args.authors_dir, k, args.eval_seeds) if args.one == "authors"
               else run_ours(args.one, k, args.eval_seeds))
        print(json.dumps(row))
        return 0
    plan = []
    for k in (int(x) for x in args.k.split(",")):
        if args.authors_dir:
            plan.append(("authors", k))
        plan += [("ours_authors", k), ("ours_paper", k), ("ours_glearn_m30", k)]
    plan += [("ours_authors", int(k)) for k in args.k_ours_only.split(",") if k]
    rows = []
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    for i, (kind, k) in enumerate(plan, 1):
        print(f"[{i}/{len(plan)}] {kind} k={k} ...", file=sys.stderr, flush=True)
        rows.append(measure(kind, k, args.authors_dir, args.eval_seeds if kind != "ours_glearn_m30" else 0))
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    authors = {r["k"]: r for r in rows if r["kind"] == "authors" and "train_s" in r}
    print("| k | implementation | train (s) | speed-up (same algorithm) | rounds | peak RSS (MB) | reward (15 seeds) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['k']} | {r['kind']} | error: {r['error']} | | | | |")
            continue
        ref = authors.get(r["k"])
        speedup = f"{ref['train_s'] / r['train_s']:.0f}x" if ref and r["kind"] == "ours_authors" else ""
        reward = f"{r['reward']:.2f} +- {r['reward_std']:.2f}" if "reward" in r else ""
        print(f"| {r['k']} | {r['kind']} | {r['train_s']:.3f} | {speedup} | {r.get('rounds', r.get('sweeps', ''))} "
              f"| {r['peak_mb']:.0f} | {reward} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
