"""One paper-config G-LEARN call on the warehouse, before and after the speed work, side by side in one run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/glearn_speed.py --repeats 3 --out bench/results/glearn_speed.jsonl

Each measurement runs in its own subprocess (OMP_NUM_THREADS=1) so that its peak RSS is its own; the
runs are interleaved (repeat r of every case before repeat r + 1) so that both implementations see the
same machine load. Cases (transition="sampled", stopping="span", tol=1e-3, gamma=0.95):

- `old`: the implementation before this work (bench/glearn_baseline.py), cold start (V0 = 0);
- `new`: altmarl_ros.marl.learners.g_learn, cold start, same rng seed: the same sampled transition;
- `new_warm`: the training loop's typical call: V0 = the converged V for another pi_l (that solve is
  not timed), then G-LEARN for this pi_l with fresh draws;
- `new_reuse`: the same pi_l again with `transitions=` from the first call (no build) and its V as V0.

pi_l is a fixed random policy (Dirichlet(1) over the 3 moves per (s_g, s_l), seed 3); the warm start
comes from the uniform pi_l. Printed: min / median / max wall-clock and CPU seconds (the process's own
CPU time: the machine is shared, and under load wall-clock mostly measures waiting), the Bellman
backups (sweeps), peak RSS, and the speed-up old/new of the median CPU seconds; `max|V_new - V_old|`
and the fraction of identical actions compare the two cold solutions of the same empirical operator.
Cases with m > --old-max-m run `new` only. `--summarize A.jsonl B.jsonl` prints one table from runs made
by concurrent invocations (each child's CPU time and peak RSS are its own).
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


def _one(case: str, k: int, m: int) -> dict:
    import numpy as np

    from altmarl_ros.marl.games import make_game
    from altmarl_ros.marl.learners.g_learn import g_learn
    from altmarl_ros.marl.policy import TabularLocalPolicy

    game = make_game("warehouse")
    pi_l = TabularLocalPolicy(np.random.default_rng(3).dirichlet(np.ones(3), size=(5, 5)))
    kwargs = dict(k=k, m=m, transition="sampled", stopping="span", tol=1e-3)
    if case == "old":
        sys.path.insert(0, str(ROOT / "bench"))
        from glearn_baseline import g_learn as old_g_learn

        t0, c0 = time.perf_counter(), time.process_time()
        result = old_g_learn(game, pi_l, rng=np.random.default_rng(0), **kwargs)
    elif case == "new":
        t0, c0 = time.perf_counter(), time.process_time()
        result = g_learn(game, pi_l, rng=np.random.default_rng(0), **kwargs)
    elif case == "new_warm":
        previous = g_learn(game, TabularLocalPolicy.uniform(5, 5, 3), rng=np.random.default_rng(1), **kwargs)
        V0 = previous.V
        del previous
        t0, c0 = time.perf_counter(), time.process_time()
        result = g_learn(game, pi_l, rng=np.random.default_rng(0), V0=V0, **kwargs)
    elif case == "new_reuse":
        first = g_learn(game, pi_l, rng=np.random.default_rng(0), **kwargs)
        t0, c0 = time.perf_counter(), time.process_time()
        result = g_learn(game, pi_l, V0=first.V, transitions=first.transitions, **kwargs)
    else:
        raise ValueError(f"unknown case {case!r}")
    row = dict(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0, sweeps=result.n_sweeps,
               peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    if case in ("old", "new"):
        np.save(f"/tmp/glearn_speed_{case}_{k}_{m}_V.npy", result.V)
        np.save(f"/tmp/glearn_speed_{case}_{k}_{m}_A.npy", result.pi_g.actions)
    return row


def _measure(case: str, k: int, m: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--one", case, "--k", str(k), "--m", str(m)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, cwd=ROOT)
    if out.returncode != 0:
        return {"case": case, "k": k, "m": m, "error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return {"case": case, "k": k, "m": m, **json.loads(out.stdout.strip().splitlines()[-1])}


def _stats(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
    return ordered[0], median, ordered[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="10:30,30:30,50:30,50:300", help="k:m pairs")
    parser.add_argument("--old-max-m", type=int, default=30,
                        help="old implementation and warm/reuse cases only for m <= this (old at m = 300 needs ~8 GB)")
    parser.add_argument("--variants", default="old,new,new_warm",
                        help="cases to run, of old, new, new_warm, new_reuse")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--summarize", nargs="*", default=None,
                        help="print the table of these JSON-lines files (of runs made concurrently) and exit")
    parser.add_argument("--out", default="bench/results/glearn_speed.jsonl")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=50, help=argparse.SUPPRESS)
    parser.add_argument("--m", type=int, default=30, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one measurement, one JSON line
        print(json.dumps(_one(args.one, args.k, args.m)))
        return 0
    if args.summarize is not None:
        rows = [json.loads(line) for path in args.summarize for line in Path(path).read_text().splitlines()]
        pairs = sorted({(r["k"], r["m"]) for r in rows})
        return _table(rows, pairs)
    pairs = [tuple(int(x) for x in pair.split(":")) for pair in args.cases.split(",")]
    variants = args.variants.split(",")
    plan = []
    for k, m in pairs:
        for case in variants:
            if case == "new" or m <= args.old_max_m:  # large m: the cold call only
                plan.append((case, k, m))
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for rep in range(args.repeats):
        for i, (case, k, m) in enumerate(plan, 1):
            print(f"[repeat {rep + 1}/{args.repeats}, {i}/{len(plan)}] {case} k={k} m={m} ...", file=sys.stderr,
                  flush=True)
            rows.append({"repeat": rep, **_measure(case, k, m)})
            out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return _table(rows, pairs)


def _table(rows: list[dict], pairs: list) -> int:
    import numpy as np

    print("| k | m | implementation | runs | wall s min / median / max | CPU s min / median / max | sweeps "
          "| peak RSS (MB) | speed-up (median CPU s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, m in pairs:
        medians = {}
        for case in ("old", "new", "new_warm", "new_reuse"):
            done = [r for r in rows if (r["case"], r["k"], r["m"]) == (case, k, m) and "seconds" in r]
            errors = [r["error"] for r in rows if (r["case"], r["k"], r["m"]) == (case, k, m) and "error" in r]
            if errors:
                print(f"| {k} | {m} | {case} | | error: {errors[0]} | | | | |")
            if not done:
                continue
            wall = _stats([r["seconds"] for r in done])
            cpu = _stats([r["cpu_seconds"] for r in done])
            medians[case] = cpu[1]
            sweeps = sorted({r["sweeps"] for r in done})
            speedup = f"{medians['old'] / cpu[1]:.1f}x" if "old" in medians and case != "old" else ""
            print(f"| {k} | {m} | {case} | {len(done)} | {' / '.join(f'{x:.2f}' for x in wall)} "
                  f"| {' / '.join(f'{x:.2f}' for x in cpu)} | {'/'.join(map(str, sweeps))} "
                  f"| {max(r['peak_mb'] for r in done):.0f} | {speedup} |")
        paths = [Path(f"/tmp/glearn_speed_{c}_{k}_{m}_{x}.npy") for c in ("old", "new") for x in ("V", "A")]
        if all(p.exists() for p in paths):
            V_old, A_old, V_new, A_new = (np.load(p) for p in paths)
            print(f"|  |  | k = {k}, m = {m}: max abs(V_new - V_old) = {np.abs(V_new - V_old).max():.2e}, "
                  f"identical actions {100 * (A_new == A_old).mean():.2f} % | | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
