"""Closed loop over Fast DDS in the three simulators (issue 10, benchmarks 1 and 4).

Runs `altmarl swarm` (separate processes, lockstep) with the shipped policies (policies/default.npz,
k = 5) in `model`, `kinematic` and `physics` mode at the given n, and collects per run: closed-loop
reward (batch-means stderr), the NumPy prediction on the game's model, the random policies (NumPy
model; and, for physics, in the same physics), real-time factor, engine real-time factor, collisions,
robot-steps stuck, mean time to the goal zone, dropped answers. Writes a JSON lines file (one run per
line) and prints a Markdown table.

    .venv/bin/python bench/physics_closed_loop.py --n 50,200 --steps 100 --out bench/results/physics_closed_loop.jsonl
    .venv/bin/python bench/physics_closed_loop.py --n 200 --modes physics --fidelity wheeled --steps 20 ...
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

FIELDS = ("mode", "physics_fidelity", "n_robots", "steps", "closed_loop_reward", "closed_loop_reward_stderr",
          "numpy_reward", "numpy_reward_stderr", "random_policy_reward", "random_policy_reward_physics",
          "random_policy_reward_physics_stderr", "physics_vs_random_z", "real_time_factor",
          "engine_real_time_factor", "steps_per_second", "collisions", "robots_stuck", "goal_zone_reached_fraction",
          "mean_time_to_goal_zone_s", "max_overlap_m", "dropped_answers", "cmd_vel_dropped", "wall_seconds")


def run(mode: str, n: int, steps: int, out: Path, policy: Path, fidelity: str, seed: int, baseline: int) -> dict:
    run_dir = out / f"{mode}_{fidelity if mode == 'physics' else ''}_n{n}_s{seed}"
    cmd = [sys.executable, "-m", "altmarl_ros.ros.swarm", "--mode", mode, "--n-robots", str(n), "--k", "5",
           "--steps", str(steps), "--policy", str(policy), "--out", str(run_dir), "--seed", str(seed),
           "--numpy-episodes", "100", "--no-plots", "--step-timeout", "2.0", "--fidelity", fidelity,
           "--physics-baseline-episodes", str(baseline)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    summary_file = run_dir / "summary.json"
    if proc.returncode != 0 or not summary_file.is_file():
        return {"mode": mode, "n_robots": n, "error": (proc.stdout + proc.stderr)[-2000:]}
    summary = json.loads(summary_file.read_text())
    row = {key: summary.get(key) for key in FIELDS}
    row["physics_fidelity"] = fidelity if mode == "physics" else None
    row["wall_seconds_total"] = time.monotonic() - t0
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="50,200", help="comma-separated swarm sizes")
    parser.add_argument("--modes", default="model,kinematic,physics")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--fidelity", choices=("planar", "wheeled"), default="planar")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-episodes", type=int, default=1, help="random policies in physics (0 = skip)")
    parser.add_argument("--policy", default="policies/default.npz")
    parser.add_argument("--runs", default="runs/bench_physics", help="directory for the runs")
    parser.add_argument("--out", required=True, help="JSON lines file (appended)")
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for n in (int(x) for x in args.n.split(",")):
        for mode in args.modes.split(","):
            row = run(mode, n, args.steps, Path(args.runs), Path(args.policy), args.fidelity, args.seed,
                      args.baseline_episodes)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
