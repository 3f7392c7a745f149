"""Cost of the simulator's /swarm/markers at scale: steps/s with markers on vs off, side by side in one invocation.

Each repeat runs `altmarl swarm` (separate processes, lockstep, model mode, as fast as it goes) twice, markers
off (`--marker-rate 0`) and on (`--marker-rate R`), in alternating order, with a watcher subscribed to
/swarm/markers in the run's domain the whole time (as RViz or Foxglove would be: without a subscriber the
simulator does not even build them). Reports steps/s min / median / max per setting, the on/off ratio of the
medians and of each pair, the simulator process's CPU time per step (from /proc, start-up included: the figure
that load from other processes does not move much), and how many MarkerArrays the watcher received.

    .venv/bin/python bench/markers.py --n-robots 1000 --k 35 --steps 300 --repeats 3 --rate 2 \
        --out bench/results/markers
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from altmarl_ros.domains import claim_domain

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ros_closed_loop import _children, _sample

WATCHER = textwrap.dedent("""
    import signal, sys, rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from visualization_msgs.msg import MarkerArray
    stop = []
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("marker_watcher")
    got = [0, 0]
    def on(msg):
        got[0] += 1
        got[1] = max(got[1], sum(len(m.points) for m in msg.markers if m.ns == "robots"))
    node.create_subscription(MarkerArray, "/swarm/markers", on, QoSProfile(depth=1,
                             reliability=ReliabilityPolicy.BEST_EFFORT))
    while not stop:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(got[0], got[1], flush=True)
    rclpy.try_shutdown()
""")


def run_once(args: argparse.Namespace, policy: Path, rate: float, out: Path) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "ROS_DOMAIN_ID"}
    claim = claim_domain(env)  # a domain no other run on this machine holds while this one runs
    env["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER], env=env, stdout=subprocess.PIPE, text=True)
    cmd = [sys.executable, "-m", "altmarl_ros.ros.swarm", "--n-robots", str(args.n_robots), "--k", str(args.k),
           "--steps", str(args.steps), "--policy", str(policy), "--out", str(out), "--marker-rate", str(rate),
           "--no-plots", "--numpy-episodes", "10"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sim_cpu = 0.0  # the simulator process's CPU seconds, last sample before it exited
    while proc.poll() is None:
        for pid in _children(proc.pid):
            sample = _sample(pid)
            if sample and sample[0] == "sim_node":
                sim_cpu = max(sim_cpu, sample[1])
        time.sleep(0.3)
    stderr = proc.stderr.read() if proc.stderr else ""
    wall = time.monotonic() - t0
    watcher.send_signal(2)
    received, points = (int(v) for v in watcher.communicate(timeout=30)[0].split()[:2])
    claim.release()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"rate": rate, "steps_per_second": summary["steps_per_second"], "wall_s": wall,
            "sim_cpu_ms_per_step": 1e3 * sim_cpu / max(summary["steps"], 1), "markers_received": received,
            "robots_in_markers": points, "domain": env["ROS_DOMAIN_ID"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-robots", type=int, default=1000)
    parser.add_argument("--k", type=int, default=35)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=float, default=2.0, help="marker rate (Hz) of the 'on' runs")
    parser.add_argument("--out", default="bench/results/markers")
    args = parser.parse_args()
    from altmarl_ros.ros.heuristics import save_heuristic

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    policy = save_heuristic(out / f"policy_k{args.k}.npz", k=args.k)
    rows = []
    for r in range(args.repeats):
        order = (0.0, args.rate) if r % 2 == 0 else (args.rate, 0.0)
        for rate in order:
            row = run_once(args, policy, rate, out / f"run_{r}_{'on' if rate else 'off'}")
            row["repeat"] = r
            rows.append(row)
            print(json.dumps(row), flush=True)
    (out / "rows.json").write_text(json.dumps(rows, indent=1) + "\n")
    sps = {on: np.array([x["steps_per_second"] for x in rows if (x["rate"] > 0) == on]) for on in (False, True)}
    pairs = [sps[True][i] / sps[False][i] for i in range(args.repeats)]
    for on in (False, True):
        s = sps[on]
        cpu = np.array([x["sim_cpu_ms_per_step"] for x in rows if (x["rate"] > 0) == on])
        print(f"markers {'on (' + str(args.rate) + ' Hz)' if on else 'off'}: steps/s min {s.min():.1f} median "
              f"{np.median(s):.1f} max {s.max():.1f}; simulator CPU ms/step min {cpu.min():.1f} median "
              f"{np.median(cpu):.1f} max {cpu.max():.1f}")
    print(f"on/off ratio of medians {np.median(sps[True]) / np.median(sps[False]):.3f}; per pair "
          + ", ".join(f"{p:.3f}" for p in pairs)
          + f"; MarkerArrays received per on-run {[x['markers_received'] for x in rows if x['rate'] > 0]}; "
          f"load average at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
