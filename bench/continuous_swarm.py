"""Trained continuous policies deployed on the ROS swarm over DDS (issue 17, item 4; bench/README.md 14).

For one continuous artifact, run `altmarl swarm` in each requested mode `--repeats` times (modes interleaved)
and print per mode: the closed loop's mean per-step reward, the NumPy twin's (model mode: the same process, so
the z-test `agreement_z` applies; kinematic and physics: a reference only), the random players' (NumPy; physics
also in the same physics: `physics_vs_random_z`), dropped answers, and steps/s min / median / max.

    .venv/bin/altmarl train --config config/train_continuous.yaml --k 20 --seed 0 --out runs/bench_continuous/k20
    .venv/bin/python bench/continuous_swarm.py --policy runs/bench_continuous/k20.npz --k 20 \\
        --modes model:500:600 kinematic:100:100 physics:60:40 --repeats 3 --out bench/results/continuous_swarm.json

A mode spec is mode:n_robots:steps. Model runs keep every node in one process (as the closed-loop tests do);
kinematic and physics runs use separate processes of up to 50 robots each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FIELDS = ("closed_loop_reward", "closed_loop_reward_stderr", "numpy_reward", "numpy_episode_std", "agreement_z",
          "random_policy_reward", "dropped_answers", "controller_dropped", "steps_per_second")


def run(policy: str, k: int, mode: str, n: int, steps: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        args = [sys.executable, "-m", "altmarl_ros.ros.swarm", "--policy", policy, "--k", str(k), "--n-robots",
                str(n), "--steps", str(steps), "--mode", mode, "--seed", str(seed), "--numpy-episodes", "60",
                "--no-plots", "--out", out]
        args += ["--single-process", "--robots-per-process", "250"] if mode == "model" else \
            ["--robots-per-process", "50", "--step-period", "0.5"]
        result = subprocess.run(args, capture_output=True, text=True, timeout=3600)
        if result.returncode != 0:
            raise RuntimeError(f"{mode}: exit {result.returncode}\n{(result.stdout + result.stderr)[-3000:]}")
        summary = json.loads((Path(out) / "summary.json").read_text())
    row = {"mode": mode, "n": n, "steps": steps, "seed": seed, **{f: summary[f] for f in FIELDS}}
    if mode == "physics":
        row.update({f: summary[f] for f in ("random_policy_reward_physics", "physics_vs_random_z", "collisions",
                                            "robots_stuck", "spawn_displacement_m")})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", required=True, help="continuous artifact (.npz)")
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--modes", nargs="+", default=["model:500:600", "kinematic:100:100", "physics:60:40"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True, help="JSON of every run's row")
    args = parser.parse_args()
    specs = [(m, int(n), int(t)) for m, n, t in (spec.split(":") for spec in args.modes)]
    rows = []
    for r in range(args.repeats):
        for mode, n, steps in specs:
            rows.append(run(args.policy, args.k, mode, n, steps, seed=r))
            print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print("\n| mode | n | steps | closed loop (each run) | NumPy twin | z (model) | random | dropped | steps/s min / "
          "median / max |\n|---|---|---|---|---|---|---|---|---|")
    for mode, n, steps in specs:
        mine = [row for row in rows if row["mode"] == mode]
        rate = sorted(row["steps_per_second"] for row in mine)
        z = _each(mine, "agreement_z", "+.2f") if mode == "model" else "-"
        print(f"| {mode} | {n} | {steps} | {_each(mine, 'closed_loop_reward', '.2f')} | "
              f"{_each(mine, 'numpy_reward', '.2f')} | {z} | "
              f"{statistics.mean(row['random_policy_reward'] for row in mine):.2f} | "
              f"{sum(row['dropped_answers'] + row['controller_dropped'] for row in mine)} | "
              f"{rate[0]:.1f} / {statistics.median(rate):.1f} / {rate[-1]:.1f} |")


def _each(rows: list[dict], field: str, spec: str) -> str:
    return ", ".join(format(row[field], spec) for row in rows)

if __name__ == "__main__":
    main()
