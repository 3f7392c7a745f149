"""Sweep wall time, local (in-process) vs Ray (local runtime, all CPUs of this machine), same grid.

    RAY_AUTH_MODE=disabled .venv/bin/python bench/sweep_backends.py --repeats 3

The grid: config/train_federated.yaml, k = 1,5, seeds 0,1, no Nash gap (4 cells; each trains and evaluates
on 15 x 50 episodes of n = 1000). Runs alternate local, ray, local, ray, ... in one invocation; the Ray
time includes starting and stopping the Ray runtime (what `altmarl sweep --executor ray` pays without
--address), and `ray.init` + `ray.shutdown` alone are timed too. Prints min / median / max over the
repeats, the ratio of the medians, and whether every run gave the same rows (all metrics but the
wall-clock `train_seconds`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from altmarl_ros.marl.config import load_train_config
from altmarl_ros.marl.executors import grid, run_sweep

ROOT = Path(__file__).resolve().parent.parent


def _key(rows: list) -> list:
    return [(r.k, r.seed, r.metric, None if math.isnan(r.value) else r.value) for r in rows
            if r.metric != "train_seconds"]


def _stats(xs: list[float]) -> str:
    return f"{min(xs):.1f} / {float(np.median(xs)):.1f} / {max(xs):.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "config/train_federated.yaml"))
    parser.add_argument("--k", default="1,5")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    config = load_train_config(args.config)
    cells = grid([int(k) for k in args.k.split(",")], list(range(args.seeds)), gap_seeds=0)
    times: dict[str, list[float]] = {"local": [], "ray": []}
    overhead: list[float] = []
    reference = None
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for backend in ("local", "ray"):
                t0 = time.perf_counter()
                rows = run_sweep(config, cells, out=Path(tmp) / f"{backend}{i}.csv", executor=backend)
                times[backend].append(time.perf_counter() - t0)
                reference = reference or _key(rows)
                same &= _key(rows) == reference
                print(f"run {i} {backend}: {times[backend][-1]:.1f} s", flush=True)
            t0 = time.perf_counter()
            ray.init(include_dashboard=False)
            ray.shutdown()
            overhead.append(time.perf_counter() - t0)
    print(f"grid: {len(cells)} cells (k = {args.k}, {args.seeds} seeds, no Nash gap), {os.cpu_count()} CPUs")
    print(f"local: {_stats(times['local'])}   ray: {_stats(times['ray'])}   (min / median / max of {args.repeats})")
    print(f"ray.init + ray.shutdown alone: {_stats(overhead)}")
    print(f"median local / median ray = {np.median(times['local']) / np.median(times['ray']):.2f}x")
    print(f"same rows from every run and backend: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
