"""Soak: consecutive 1000-robot `altmarl swarm` runs, reporting lost hosts and dropped answers per run.

Each run is `altmarl swarm --n-robots N --k K --steps S --mode model` (robot hosts of 250 robots, the
default process layout) with the heuristic policy. Per run it records the exit status, the hosts
whose robots never answered the first step (`lost_robots`, the run then fails with exit 1 naming
them) or stopped answering later (`silent_at_end`), the nodes that died and were started again
(`respawns`: `altmarl swarm --respawn`, default 2), dropped / late answers, the first step's
(handshake's) duration and steps/s, and what every robot host logged about its first tick (a host
that never got one logs what it was matched with after 10 s). A run that hangs past --run-timeout is
recorded as exit "hung" with every thread's Python stack, killed, and the soak goes on.
Target: 0 lost hosts.

    .venv/bin/python bench/ros_soak.py --runs 20 --out bench/results/ros_soak
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from altmarl_ros.domains import claim_domain


def run_once(i: int, args: argparse.Namespace, out: Path, policy: Path) -> dict:
    run_dir = out / f"run{i:02d}"
    cmd = [sys.executable, "-m", "altmarl_ros.ros.swarm", "--n-robots", str(args.n_robots), "--k", str(args.k),
           "--steps", str(args.steps), "--mode", "model", "--policy", str(policy), "--out", str(run_dir),
           "--numpy-episodes", "20", "--no-plots", "--seed", str(i)]
    t0 = time.monotonic()
    # -X faulthandler: a run that hangs past --run-timeout gets SIGABRT, which prints every thread's Python
    # stack to stderr (recorded in the row), then its process group is killed and the soak goes on
    proc = subprocess.Popen([cmd[0], "-X", "faulthandler", *cmd[1:]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    hung = False
    try:
        _, stderr = proc.communicate(timeout=args.run_timeout)
    except subprocess.TimeoutExpired:
        hung = True
        os.kill(proc.pid, signal.SIGABRT)
        try:
            _, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            stderr = ""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    wall = time.monotonic() - t0
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    per_step = summary.get("per_step", [])
    hosts = {}
    for log in sorted((run_dir / "logs").glob("altmarl_robots_*.log")):
        text = log.read_text(errors="replace")
        hosts[log.stem] = ("first tick" if "first tick" in text else
                           "NO TICK: " + next((line for line in text.splitlines() if "no tick after" in line), "")
                           if "no tick after" in text else "no tick, nothing logged")
    lost = {**summary.get("lost_robots", {}), **summary.get("silent_at_end", {})}
    return {"run": i, "exit": "hung" if hung else proc.returncode, "wall_s": round(wall, 1),
            "steps": summary.get("steps", 0), "sim_finished": (run_dir / "sim_record.json").is_file(),
            "steps_per_second": round(summary.get("steps_per_second", float("nan")), 2),
            "handshake_s": round(per_step[0]["step_seconds"], 2) if per_step else None,
            "lost_hosts": sorted(lost), "lost_robots": sum(len(v) for v in lost.values()),
            "dropped_answers": summary.get("dropped_answers"), "late_answers": summary.get("late_answers"),
            "controller_dropped": summary.get("controller_dropped"), "hosts": hosts,
            "respawns": summary.get("respawns", []), "node_failures": len(summary.get("node_failures", [])),
            "stderr_tail": stderr.strip().splitlines()[-40 if hung else -3:] if (hung or proc.returncode) else []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--n-robots", type=int, default=1000)
    parser.add_argument("--k", type=int, default=35)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--run-timeout", type=float, default=300.0,
                        help="s before a run counts as hung (its Python stacks are recorded) and is killed")
    parser.add_argument("--out", default="bench/results/ros_soak")
    args = parser.parse_args(argv)
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    _claim = claim_domain()  # a domain no other run on this machine holds (or ROS_DOMAIN_ID), held until exit
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from altmarl_ros.ros.heuristics import save_heuristic

    policy = save_heuristic(out / f"policy_k{args.k}.npz", k=args.k)
    rows = []
    with open(out / "runs.jsonl", "w") as fh:
        for i in range(args.runs):
            row = run_once(i, args, out, policy)
            rows.append(row)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(json.dumps({key: row[key] for key in row if key not in ("hosts",)}), flush=True)
    failed = [r for r in rows if r["exit"] != 0]
    lost = sum(len(r["lost_hosts"]) for r in rows)
    respawned = [(r["run"], x["node"], x["exit"]) for r in rows for x in r["respawns"]]
    print(f"{len(rows)} runs of n={args.n_robots} k={args.k} {args.steps} steps: {lost} lost hosts, "
          f"{len(failed)} failed runs, {len(respawned)} nodes respawned {respawned}, dropped answers per run "
          f"{[r['dropped_answers'] for r in rows]}")
    return 0 if lost == 0 and not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
