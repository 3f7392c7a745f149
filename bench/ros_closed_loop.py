"""Closed-loop throughput and latency of the ROS swarm over Fast DDS.

For each case (n robots hosted by robot_node processes of up to 250, k, observation mode, Fast DDS
transport) run `altmarl swarm` in lockstep as fast as it goes, `--repeats` times (the repeats
interleaved, so every case sees the same machine load), and report per case: steps/s min / median / max
over the repeats, controller per-step latency (tick received -> command published, p50/p95), sampled
poses missing or stale, dropped answers, CPU per role as % of one core and as CPU milliseconds per
decision step (the load-robust figure: what each role costs per step, whatever else runs on the
machine), and peak memory per role. `--free-running` adds n=1000 free-running at 10 steps/s. Writes CSV
+ Markdown.

    .venv/bin/python bench/ros_closed_loop.py --sizes 1000 --ks 35 --repeats 3 --out bench/results/ros_closed_loop
    ... --observations rotating,aggregate,polling --transports udp,shm    # the same cases on both transports
    .venv/bin/python bench/ros_closed_loop.py --quick      # n=50,200 only
    ALTMARL_PROFILE_DIR=DIR ...                           # also cProfile every node's spin loop into DIR
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from altmarl_ros.domains import claim_domain

ROLES = ("sim_node", "controller_node", "robot_node")
TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except OSError:
        return []
    pids = [int(p) for p in out]
    return pids + [c for p in pids for c in _children(p)]


def _sample(pid: int) -> tuple[str, float, int] | None:
    """(role, cpu seconds, peak RSS kB) of a process, from /proc."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    role = next((r for r in ROLES if f"altmarl_ros.ros.{r}" in cmd), "runner")
    cpu = (int(stat[11]) + int(stat[12])) / TICKS
    hwm = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")), 0)
    return role, cpu, hwm


def run_case(n: int, k: int, observation: str, steps: int, out: Path, policy: Path, *,
             free_running: bool = False, transport: str = "udp") -> dict:
    run_dir = out / f"n{n}_k{k}_{observation}_{transport}{'_free' if free_running else ''}"
    cmd = [sys.executable, "-m", "altmarl_ros.ros.swarm", "--n-robots", str(n), "--k", str(k), "--steps",
           str(steps), "--observation", observation, "--policy", str(policy), "--out", str(run_dir),
           "--robots-per-process", "250", "--numpy-episodes", "50", "--no-plots", "--step-timeout", "2.0",
           "--dds-transport", transport]
    if free_running:
        cmd += ["--free-running", "--step-period", "0.1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    marks: list[float] = []  # wall times of the progress lines: the first is step 1, the last the end

    def read_progress() -> None:
        for line in proc.stderr:
            if b" steps" in line:
                marks.append(time.monotonic())

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    samples: dict[int, list[tuple[float, str, float, int]]] = {}
    pids: list[int] = []
    while proc.poll() is None:
        if marks and not pids:
            pids = [*_children(proc.pid), proc.pid]
        for pid in pids:
            sample = _sample(pid)
            if sample:
                samples.setdefault(pid, []).append((time.monotonic(), *sample))
        time.sleep(0.2)
    reader.join(5)
    stdout = proc.stdout.read().decode(errors="replace")
    summary = json.loads((run_dir / "summary.json").read_text())
    if proc.returncode != 0:
        print(stdout[-2000:], file=sys.stderr)
    row = {"n": n, "k": k, "observation": observation, "transport": transport, "lockstep": not free_running,
           "steps": summary["steps"],
           "steps_per_second": round(summary["steps_per_second"], 2),
           "ctl_latency_ms_p50": round(summary["controller_latency_ms_p50"], 2),
           "ctl_latency_ms_p95": round(summary["controller_latency_ms_p95"], 2),
           "step_ms_p50": round(1e3 * summary["step_seconds_p50"], 1),
           "step_ms_p95": round(1e3 * summary["step_seconds_p95"], 1),
           "missing_poses": summary["missing_poses"], "stale_poses": summary["stale_poses"],
           "sampled_poses": summary["steps"] * k, "dropped_answers": summary["dropped_answers"],
           "answers": summary["steps"] * n, "max_pose_subs": summary["max_pose_subscriptions"],
           "closed_loop_reward": round(summary["closed_loop_reward"], 3),
           "numpy_reward": round(summary["numpy_reward"], 3), "exit": proc.returncode}
    t0, t1 = (marks[0], marks[-1]) if len(marks) >= 2 else (0.0, 0.0)
    stepped = max(summary["steps"] - 1, 1)  # the progress marks span the steps after the first
    for role in ("sim_node", "controller_node", "robot_node"):
        used, rss = 0.0, 0
        for series in samples.values():
            if series[0][1] != role:
                continue
            times = np.array([x[0] for x in series])
            cpus = np.array([x[2] for x in series])
            used += float(np.interp(t1, times, cpus) - np.interp(t0, times, cpus))
            rss = max(rss, max(x[3] for x in series))
        short = role.split("_")[0]
        row[f"cpu_{short}_pct"] = round(100 * used / (t1 - t0), 1) if t1 > t0 else float("nan")
        row[f"cpu_{short}_ms_per_step"] = round(1e3 * used / stepped, 1)
        row[f"rss_{short}_mb"] = round(rss / 1024, 1)
    return row


def wire_per_step(n: int, k: int, robots_per_host: int = 250) -> str:
    """Messages and serialized (CDR) payload bytes per decision step on the controller's observation path,
    per mode, computed by serializing the messages the nodes send (DDS headers and discovery not counted)."""
    from rclpy.serialization import serialize_message

    from altmarl_ros.ros import topics

    rng = np.random.default_rng(0)
    pose = len(serialize_message(topics.pose_msg(1.0, 2.0, 0.3, 123_456_789, "world")))
    sample = np.sort(rng.choice(n, size=k, replace=False))
    hosts = np.unique(sample // robots_per_host)
    poll = len(serialize_message(topics.poll_msg(7, sample)))
    replies = [len(serialize_message(topics.poll_reply_msg(7, sample[sample // robots_per_host == h],
                                                             np.zeros((int((sample // robots_per_host == h).sum()), 2)),
                                                             np.zeros(int((sample // robots_per_host == h).sum())),
                                                             np.zeros(int((sample // robots_per_host == h).sum()),
                                                                      dtype=np.int64))))
               for h in hosts]
    rows = [("rotating", f"{k} PoseStamped to the controller (+ {k} subscriptions created and {k} destroyed: "
             "discovery announcements to every participant)", k, k * pose),
            ("aggregate", f"{n} PoseStamped to the controller", n, n * pose),
            ("polling", f"1 poll ({k} indices) + {len(hosts)} host replies", 1 + len(hosts), poll + sum(replies))]
    lines = [f"n={n}, k={k}, {robots_per_host} robots per host; payload bytes (CDR), DDS headers not counted",
             "| observation | messages per step | count | payload bytes |", "|---|---|---|---|"]
    lines += [f"| {m} | {what} | {c} | {b} |" for m, what, c, b in rows]
    return "\n".join(lines) + "\n"


def aggregate(rows: list[dict]) -> list[dict]:
    """One row per case: steps/s min / median / max over the repeats; medians of the other figures."""
    cases: dict[tuple, list[dict]] = {}
    for r in rows:
        cases.setdefault((r["n"], r["k"], r["observation"], r.get("transport", "shm"), r["lockstep"]), []).append(r)
    out = []
    for (n, k, observation, transport, lockstep), runs in cases.items():
        rates = sorted(r["steps_per_second"] for r in runs)
        row = {"n": n, "k": k, "observation": observation, "transport": transport, "lockstep": lockstep,
               "runs": len(runs),
               "steps_per_second": f"{rates[0]:.1f} / {float(np.median(rates)):.1f} / {rates[-1]:.1f}"}
        for key in runs[0]:
            if key not in row and key not in ("steps_per_second", "exit") and isinstance(runs[0][key], (int, float)):
                row[key] = round(float(np.median([r[key] for r in runs])), 2)
        row["exits"] = ",".join(str(r["exit"]) for r in runs)
        out.append(row)
    return out


def markdown(rows: list[dict]) -> str:
    cols = ["n", "k", "observation", "transport", "runs", "steps_per_second", "ctl_latency_ms_p50",
            "ctl_latency_ms_p95", "step_ms_p50", "missing_poses", "stale_poses", "dropped_answers", "max_pose_subs",
            "cpu_sim_ms_per_step", "cpu_controller_ms_per_step", "cpu_robot_ms_per_step", "cpu_sim_pct",
            "cpu_controller_pct", "cpu_robot_pct", "rss_sim_mb", "exits"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/ros_closed_loop")
    parser.add_argument("--quick", action="store_true", help="only n = 50, 200")
    parser.add_argument("--sizes", default="", help="comma-separated n values (overrides --quick)")
    parser.add_argument("--ks", default="5,35", help="comma-separated k values")
    parser.add_argument("--observations", default="rotating,aggregate", help="controller observation modes")
    parser.add_argument("--transports", default="udp", help="comma-separated Fast DDS profiles: udp, shm")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (min/median/max of steps/s)")
    parser.add_argument("--free-running", action="store_true", help="add n=1000 k=35 free-running at 10 Hz")
    parser.add_argument("--wire", action="store_true", help="only print the messages/bytes per step per mode")
    args = parser.parse_args(argv)
    if args.wire:
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [1000]
        for n in sizes:
            for k in (int(k) for k in args.ks.split(",")):
                print(wire_per_step(n, k))
        return 0
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    _claim = claim_domain()  # a domain no other run on this machine holds (or ROS_DOMAIN_ID), held until exit
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from altmarl_ros.ros.heuristics import save_heuristic

    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([50, 200] if args.quick else [50, 200, 1000])
    ks = [int(k) for k in args.ks.split(",")]
    observations = args.observations.split(",")
    steps = {50: 300, 200: 200, 1000: 100}
    policies = {k: save_heuristic(out / f"policy_k{k}.npz", k=k) for k in ks}
    load = os.getloadavg()
    rows = []
    for repeat in range(args.repeats):  # interleaved: every case sees the same load on average
        for k in ks:
            for n in sizes:
                for observation in observations:
                    for transport in args.transports.split(","):
                        row = run_case(n, k, observation, steps.get(n, 100), out / f"r{repeat}", policies[k],
                                       transport=transport)
                        print(json.dumps(row), flush=True)
                        rows.append(row)
        if args.free_running:
            row = run_case(1000, 35, "rotating", 100, out / f"r{repeat}", policies.get(35) or
                           save_heuristic(out / "policy_k35.npz", k=35), free_running=True)
            print(json.dumps(row), flush=True)
            rows.append(row)
    with open(out / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = markdown(aggregate(rows))
    note = (f"load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min), "
            f"at end {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores\n")
    (out / "results.md").write_text(table + "\n" + note)
    print(table + "\n" + note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
