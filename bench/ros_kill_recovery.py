"""Recovery from SIGKILLed nodes over each Fast DDS transport profile (altmarl_ros/ros/dds.py).

Each run starts a swarm (n = 30 in three robot processes of 10, k = 4, lockstep, 20 ms step period,
1 s step timeout, unlimited steps) with one profile, then, watched by a probe node:
1. SIGKILLs one robot process: the run goes on if 30 more steps come within 60 s;
2. SIGKILLs the controller, waits for 3 steps without its answer, starts it again and measures the
   wall time until a step is answered by the new controller (a failure after 60 s);
3. stops everything with SIGINT and records the nodes that did not exit within 5 s (hung).
Runs alternate between the profiles, so both see the same machine load. Each run is a child process
(Fast DDS reads its profile once per process). This is what test/test_ros_faults.py checks once.

    .venv/bin/python bench/ros_kill_recovery.py --runs 11 --transports udp,shm --out bench/results/ros_kill
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from altmarl_ros.domains import claim_domain

N, K, PER_HOST = 30, 4, 10


def one_run(transport: str, run_dir: Path) -> dict:
    """One run with `transport`, in this process (the profile must be selected before rclpy starts)."""
    from altmarl_ros.ros.bringup import SwarmOptions, plan
    from altmarl_ros.ros.dds import ENV_VAR, write_profile
    from altmarl_ros.ros.heuristics import save_heuristic
    from altmarl_ros.ros.launcher import ProcessGroup
    from altmarl_ros.ros.testing import probe

    os.environ[ENV_VAR] = str(write_profile(run_dir, transport))
    policy = save_heuristic(run_dir / "policy.npz", k=K)
    options = SwarmOptions(n_robots=N, k=K, policy=str(policy), robots_per_process=PER_HOST, step_period=0.02,
                           step_timeout=1.0, steps=0)
    row: dict = {"transport": transport, "host_kill_ok": False, "controller_recovery_s": None}
    group = ProcessGroup.start(plan(options), run_dir)
    try:
        with probe() as p:
            def after(step: int) -> list[dict]:
                return [m for m in p.metrics if m["step"] > step]

            try:
                p.spin_until(lambda: len(p.metrics) >= 20, 60, "20 steps")
                host = group.find("robot_node")[1]
                group.kill(host)
                t_kill = p.metrics[-1]["step"]
                p.spin_until(lambda: len(after(t_kill)) >= 30, 60, "30 steps after the robot process was killed")
                row["host_kill_ok"] = True
                ctrl = group.find("controller_node")[0]
                group.kill(ctrl)
                t_ctrl = p.metrics[-1]["step"]
                p.spin_until(lambda: sum(m["controller_dropped"] for m in after(t_ctrl)) >= 3, 30,
                             "steps without the controller")
                group.processes += ProcessGroup.start([ctrl.spec], run_dir / "restart").processes
                t0, t_restart = time.monotonic(), p.metrics[-1]["step"]
                p.spin_until(lambda: any(m["controller_dropped"] == 0 for m in after(t_restart)), 60,
                             "a step answered by the restarted controller")
                row["controller_recovery_s"] = round(time.monotonic() - t0, 2)
            except TimeoutError as exc:
                row["failure"] = str(exc)
            row["steps"] = len(p.metrics)
    finally:
        group.stop(timeout=5.0)
    row["hung_on_stop"] = [proc.label for proc in group.processes
                           if "Fatal Python error: Aborted" in proc.log.read_text(errors="replace")]
    return row


def summarize(rows: list[dict]) -> str:
    lines = ["| transport | runs | robot process killed: run goes on | controller restarted: answers again | "
             "recovery s min / median / max | runs with a node hung at stop |", "|---|---|---|---|---|---|"]
    for transport in dict.fromkeys(r["transport"] for r in rows):
        mine = [r for r in rows if r["transport"] == transport]
        rec = sorted(r["controller_recovery_s"] for r in mine if r["controller_recovery_s"] is not None)
        spread = f"{rec[0]:.2f} / {float(np.median(rec)):.2f} / {rec[-1]:.2f}" if rec else "-"
        lines.append(f"| {transport} | {len(mine)} | {sum(r['host_kill_ok'] for r in mine)} | {len(rec)} | "
                     f"{spread} | {sum(bool(r['hung_on_stop']) for r in mine)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per transport")
    parser.add_argument("--transports", default="udp,shm")
    parser.add_argument("--out", default="bench/results/ros_kill")
    parser.add_argument("--run-timeout", type=float, default=300.0)
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)  # internal: a single run, JSON on stdout
    args = parser.parse_args(argv)
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    _claim = claim_domain()  # a domain no other run on this machine holds (or ROS_DOMAIN_ID), held until exit
    out = Path(args.out)
    if args.one:
        print(json.dumps(one_run(args.one, out)))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with open(out / "runs.jsonl", "w") as jsonl:
        for i in range(args.runs):
            for transport in args.transports.split(","):
                run_dir = Path(tempfile.mkdtemp(prefix=f"run{i:02d}_{transport}_", dir=out))
                cmd = [sys.executable, __file__, "--one", transport, "--out", str(run_dir)]
                try:
                    result = subprocess.run(cmd, capture_output=True, text=True, timeout=args.run_timeout)
                    row = json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else \
                        {"transport": transport, "host_kill_ok": False, "controller_recovery_s": None,
                         "failure": f"exit {result.returncode}: {result.stderr[-500:]}", "hung_on_stop": []}
                except subprocess.TimeoutExpired:
                    subprocess.run(["pkill", "-9", "-f", f"params-file {run_dir}"], check=False)
                    row = {"transport": transport, "host_kill_ok": False, "controller_recovery_s": None,
                           "failure": f"the run hung past {args.run_timeout:.0f} s", "hung_on_stop": []}
                row["run"] = i
                print(json.dumps(row), flush=True)
                jsonl.write(json.dumps(row) + "\n")
                jsonl.flush()
                rows.append(row)
    table = summarize(rows)
    (out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
