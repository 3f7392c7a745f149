"""Benchmarks of the continuous warehouse with neural policies (issue 17); figures in bench/README.md.

    python bench/continuous.py random
        the uniformly random players on the authors' protocol (10 seeds x 30 rollouts, horizon 50)
    python bench/continuous.py sweep --ks 1 20 75 --seeds 0 1 2 [--gaps] [--full-information] --out CSV
        train every (k, seed), evaluate on the protocol (every seed reported, none selected), tidy rows
        (k, seed, metric, value, stderr), then the summary below of what it wrote
    python bench/continuous.py summary CSV
        the markdown rows of bench/README.md 13 from a sweep's CSV (`altmarl sweep` or the command above)
    python bench/continuous.py speed --k 75 --repeats 3 --ref-python /work/venv-ref/bin/python \\
            --ref-dir /work/ref-altmarl/scripts/function_approximation
        one training at k by this package and by the authors' code (their defaults: TRPO locals, 10 outer
        iterations), alternating, each in its own process pinned to one thread (XLA / torch); ours twice per
        repeat (the same seed): cold (an empty compilation cache: the first training on a machine, XLA
        compilation included) and warm (the package's persistent compilation cache, filled by an untimed
        training of another seed before the first repeat: every later training); min / median / max wall
        seconds of the training call and the ratios, with the load average

The authors' code is run from a checkout outside the project (never copied in); the driver below only
imports their classes and times their `train()`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
              "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

OURS = """
import json, sys, time
from altmarl_ros.marl.continuous.settings import load_config
from altmarl_ros.marl.continuous.alternate import train
from altmarl_ros.marl.continuous import compile_cache
compile_cache.enable()
cfg = load_config(sys.argv[1]); k = int(sys.argv[2]); seed = int(sys.argv[3])
t0 = time.perf_counter(); tr = train(cfg, k, seed); t = time.perf_counter() - t0
print(json.dumps({"seconds": t}))
"""

THEIRS = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from continuous_env import ContinuousWarehouseEnv
from training import AlternatingMARLFA
alg = AlternatingMARLFA(ContinuousWarehouseEnv(), k=int(sys.argv[2]), gamma=0.95, local_algo="trpo")
t0 = time.perf_counter(); alg.train(); t = time.perf_counter() - t0
print(json.dumps({"seconds": t}))
"""


def _run(argv: list[str], extra_env: dict[str, str] | None = None) -> float:
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def _load() -> str:
    return "load average " + " / ".join(f"{x:.2f}" for x in os.getloadavg())


def speed(args: argparse.Namespace) -> None:
    ours = [sys.executable, "-c", OURS, args.config, str(args.k)]
    warm_dir = tempfile.mkdtemp(prefix="altmarl-jax-warm-")
    _run([*ours, "1000"], {"ALTMARL_JAX_CACHE": warm_dir})  # fills the warm cache (another seed, untimed)
    cold, warm, theirs = [], [], []
    for rep in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="altmarl-jax-cold-") as empty:
            cold.append(_run([*ours, str(rep)], {"ALTMARL_JAX_CACHE": empty}))
        warm.append(_run([*ours, str(rep)], {"ALTMARL_JAX_CACHE": warm_dir}))
        theirs.append(_run([args.ref_python, "-c", THEIRS, args.ref_dir, str(args.k)]))
        print(f"repeat {rep} (seed {rep}): ours cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s, theirs "
              f"{theirs[-1]:.1f} s ({_load()})", flush=True)

    def mmm(x: list[float]) -> str:
        return f"{min(x):.1f} / {statistics.median(x):.1f} / {max(x):.1f}"

    print(f"k = {args.k}, one thread each, {args.repeats} alternating repeats (min / median / max):")
    print(f"  ours, cold compilation cache  {mmm(cold)} s\n  ours, warm compilation cache  {mmm(warm)} s\n"
          f"  theirs                        {mmm(theirs)} s")
    for name, ours_s in (("cold", cold), ("warm", warm)):
        print(f"  theirs / ours {name} (per repeat) {mmm([t / o for o, t in zip(ours_s, theirs, strict=True)])}")


def random_value(args: argparse.Namespace) -> None:
    from altmarl_ros.marl.continuous.env import ContinuousWarehouse
    from altmarl_ros.marl.continuous.evaluate import evaluate_random
    res = evaluate_random(ContinuousWarehouse())
    print(json.dumps(res.to_dict()))


def sweep(args: argparse.Namespace) -> None:
    from altmarl_ros.marl.continuous import compile_cache
    from altmarl_ros.marl.continuous.experiments import sweep_cells
    from altmarl_ros.marl.continuous.settings import load_config
    from altmarl_ros.marl.experiments import SweepRow, write_rows
    cfg = load_config(args.config)
    compile_cache.enable()  # as `altmarl sweep`
    rows: list = []
    t_sweep = time.perf_counter()

    def on_cell(k: int, seed: int, cell: list) -> None:
        rows.extend(cell)
        got = {r.metric: r for r in cell}
        print(f"k {k} seed {seed}: reward {got['reward'].value:.1f} +- {got['reward'].stderr:.1f}, "
              f"train {got['train_seconds'].value:.0f} s, rounds {got['rounds'].value:.0f} "
              f"({time.perf_counter() - t_sweep:.0f} s into the sweep)", flush=True)
        write_rows(args.out, [SweepRow(*r) for r in rows])

    sweep_cells(cfg, args.ks, args.seeds, with_reference=args.full_information, gap_seeds=len(args.seeds) if
                args.gaps else 0, workers=args.workers, on_cell=on_cell)
    print(f"sweep wall time {time.perf_counter() - t_sweep:.0f} s on {args.workers} worker(s) ({_load()})")
    summary(argparse.Namespace(csv=args.out, digits=3))


def summary(args: argparse.Namespace) -> None:
    """Markdown rows of a sweep CSV: per k, each seed's reward +- stderr, the mean of the seeds +- stderr over
    seeds, the ratio to full information (mean +- stderr over seeds), training seconds per seed."""
    import csv
    from collections import defaultdict

    import numpy as np

    cells: dict[tuple[int, int], dict[str, tuple[float, float]]] = defaultdict(dict)
    with open(args.csv, newline="") as f:
        for r in csv.DictReader(f):
            cells[int(r["k"]), int(r["seed"])][r["metric"]] = (float(r["value"]), float(r["stderr"] or "nan"))
    seeds = sorted({s for _, s in cells})

    def mean_se(x: list[float], digits: int = args.digits) -> str:
        se = np.std(x, ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
        return f"{np.mean(x):.{digits}f} +- {se:.{digits}f}"

    for k in sorted({k for k, _ in cells}):
        got = [cells[k, s] for s in seeds]
        rewards = [g["reward"][0] for g in got]
        ratio = [g["ratio_full_information"][0] for g in got if "ratio_full_information" in g]
        ratio_text = mean_se(ratio, 3) if ratio else "-"
        print(f"| {k} | " + " | ".join(f"{g['reward'][0]:.1f} +- {g['reward'][1]:.1f}" for g in got) +
              f" | {mean_se(rewards)} | {ratio_text} | " +
              " / ".join(f"{g['train_seconds'][0]:.0f}" for g in got) + " |")
    ref = [cells[min(k for k, _ in cells), s].get("reward_full_information") for s in seeds]
    if all(ref):
        print("| full information | " + " | ".join(f"{v[0]:.1f} +- {v[1]:.1f}" for v in ref) +
              f" | {mean_se([v[0] for v in ref])} | 1 | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("random")
    p.set_defaults(fn=random_value)
    p = sub.add_parser("sweep")
    p.add_argument("--config", default=str(ROOT / "config" / "train_continuous.yaml"))
    p.add_argument("--ks", type=int, nargs="+", default=[1, 20, 75])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--gaps", action="store_true")
    p.add_argument("--full-information", action="store_true")
    p.add_argument("--workers", type=int, default=1, help="processes of one XLA thread each")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=sweep)
    p = sub.add_parser("summary")
    p.add_argument("csv")
    p.add_argument("--digits", type=int, default=1)
    p.set_defaults(fn=summary)
    p = sub.add_parser("speed")
    p.add_argument("--config", default=str(ROOT / "config" / "train_continuous.yaml"))
    p.add_argument("--k", type=int, default=75)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ref-python", default="/work/venv-ref/bin/python")
    p.add_argument("--ref-dir", default="/work/ref-altmarl/scripts/function_approximation")
    p.set_defaults(fn=speed)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
