"""Closed loop over Fast DDS in the three simulators (issue 10, benchmarks 1 and 4).

Runs `altmarl swarm` (separate processes, lockstep) with the shipped policies (policies/default.npz,
k = 5) in `model`, `kinematic` and `physics` mode at the given n, and collects per run: closed-loop
reward (batch-means stderr), the NumPy prediction on the game's model, the random policies (NumPy
model; and, for physics, in the same physics), real-time factor, engine real-time factor, collisions,
robot-steps stuck, mean time to the goal zone, dropped answers. With `--repeats R` every (n, mode) runs R
times (seeds seed .. seed + R - 1, interleaved so that load drifts hit every case), and the table gives
real-time factors as min / median / max. Writes a JSON lines file (one run per line) and prints a
Markdown table of the rows it wrote (`--table FILE` prints it for an existing file).

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

from altmarl_ros.contract import Fidelity, values

FIELDS = ("mode", "physics_fidelity", "n_robots", "steps", "closed_loop_reward", "closed_loop_reward_stderr",
          "numpy_reward", "numpy_reward_stderr", "random_policy_reward", "random_policy_reward_physics",
          "random_policy_reward_physics_stderr", "physics_vs_random_z", "real_time_factor",
          "engine_real_time_factor", "steps_per_second", "collisions", "robots_stuck", "goal_zone_reached_fraction",
          "mean_time_to_goal_zone_s", "max_overlap_m", "dropped_answers", "cmd_vel_dropped", "wall_seconds")


def run(mode: str, n: int, steps: int, out: Path, policy: Path, fidelity: str, seed: int, baseline: int,
        transport: str = "udp") -> dict:
    run_dir = out / f"{mode}_{fidelity if mode == 'physics' else ''}_n{n}_s{seed}_{transport}"
    cmd = [sys.executable, "-m", "altmarl_ros.ros.swarm", "--mode", mode, "--n-robots", str(n), "--k", "5",
           "--steps", str(steps), "--policy", str(policy), "--out", str(run_dir), "--seed", str(seed),
           "--numpy-episodes", "100", "--no-plots", "--step-timeout", "2.0", "--fidelity", fidelity,
           "--physics-baseline-episodes", str(baseline), "--dds-transport", transport]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    summary_file = run_dir / "summary.json"
    if proc.returncode != 0 or not summary_file.is_file():
        return {"mode": mode, "n_robots": n, "transport": transport, "error": (proc.stdout + proc.stderr)[-2000:]}
    summary = json.loads(summary_file.read_text())
    row = {key: summary.get(key) for key in FIELDS}
    row["physics_fidelity"] = fidelity if mode == "physics" else None
    row["transport"] = transport
    row["wall_seconds_total"] = time.monotonic() - t0
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="50,200", help="comma-separated swarm sizes")
    parser.add_argument("--modes", default="model,kinematic,physics")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--fidelity", choices=values(Fidelity), default=Fidelity.PLANAR.value)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-episodes", type=int, default=1, help="random policies in physics (0 = skip)")
    parser.add_argument("--policy", default="policies/default.npz")
    parser.add_argument("--runs", default="runs/bench_physics", help="directory for the runs")
    parser.add_argument("--repeats", type=int, default=1, help="runs per (n, mode), seeds seed, seed + 1, ...")
    parser.add_argument("--transports", default="udp", help="comma-separated Fast DDS profiles (udp, shm)")
    parser.add_argument("--out", help="JSON lines file (appended)")
    parser.add_argument("--table", help="print the table of an existing JSON lines file and exit")
    args = parser.parse_args()
    if args.table:
        print(table([json.loads(line) for line in Path(args.table).read_text().splitlines() if line.strip()]))
        return 0
    if not args.out:
        parser.error("--out is required")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for repeat in range(args.repeats):
        for n in (int(x) for x in args.n.split(",")):
            for mode in args.modes.split(","):
                for transport in args.transports.split(","):
                    row = run(mode, n, args.steps, Path(args.runs), Path(args.policy), args.fidelity,
                              args.seed + repeat, args.baseline_episodes, transport)
                    rows.append(row)
                    with out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    print(table(rows))
    return 0


def table(rows: list[dict]) -> str:
    """Markdown: per (fidelity, n, mode, steps) the runs, mean closed-loop reward, the model's prediction, the
    random policies in physics, and the real-time factors (loop and engine) as min / median / max."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if "error" in r:
            groups.setdefault(("error", r["n_robots"], r["mode"], 0, r.get("transport", "")), []).append(r)
            continue
        # rows without a transport were measured before the profile had a choice: shared memory
        key = (r.get("physics_fidelity") or "", r["n_robots"], r["mode"], r["steps"], r.get("transport", "shm"))
        groups.setdefault(key, []).append(r)

    def spread(rs: list[dict], key: str, fmt: str = "{:.2f}") -> str:
        v = np.array([r[key] for r in rs if r.get(key) is not None], dtype=float)
        return "" if not v.size else " / ".join(fmt.format(x) for x in (v.min(), np.median(v), v.max()))

    def mean(rs: list[dict], key: str) -> str:
        """Mean over runs, +- its stderr over runs (each run its own seed) when there are several."""
        v = np.array([r[key] for r in rs if r.get(key) is not None], dtype=float)
        v = v[np.isfinite(v)]
        if not v.size:
            return ""
        return f"{v.mean():.3f}" + (f" +- {v.std(ddof=1) / np.sqrt(v.size):.3f}" if v.size > 1 else "")

    lines = ["| mode | fidelity | DDS | n | steps | runs | closed-loop reward (mean +- stderr over runs) "
             "| model's prediction | random (physics) "
             "| loop RTF min / median / max | engine RTF min / median / max | steps/s min / median / max "
             "| collisions (median) | dropped answers |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (fidelity, n, mode, steps, transport), rs in groups.items():
        if fidelity == "error":
            lines.append(f"| {mode} | | {transport} | {n} | | {len(rs)} failed | {rs[0]['error'][-200:]!r} "
                         "| | | | | | | |")
            continue
        collisions = [r["collisions"] for r in rs if r.get("collisions") is not None]
        lines.append(f"| {mode} | {fidelity} | {transport} | {n} | {steps} | {len(rs)} "
                     f"| {mean(rs, 'closed_loop_reward')} "
                     f"| {mean(rs, 'numpy_reward')} | {mean(rs, 'random_policy_reward_physics')} "
                     f"| {spread(rs, 'real_time_factor')} | {spread(rs, 'engine_real_time_factor')} "
                     f"| {spread(rs, 'steps_per_second')} | {np.median(collisions) if collisions else ''} "
                     f"| {sum(r.get('dropped_answers') or 0 for r in rs)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
