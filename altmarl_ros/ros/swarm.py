"""`altmarl swarm`: run the swarm end to end on the embedded simulator and compare it with NumPy.

Trains (or loads) the policies, brings up sim_node + controller_node + robot_node(s) from
`bringup.plan` as separate processes (`--ros-args --params-file`) or in one process
(`--single-process`), runs `--steps` lockstep steps with a progress bar, and writes
`DIR/summary.json` (atomically) with the closed-loop reward next to the NumPy evaluation of the same
policies and settings, drops, latencies, the per-step record, and PNG plots.

Exit status: 0 success, 1 a node died or the run stalled, 2 bad arguments or policy file,
130 interrupted (Ctrl-C); every child process is stopped in all cases.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from altmarl_ros.contract import Fidelity, ObservationMode, values
from altmarl_ros.marl.artifacts import PolicyArtifact, PolicyFileError, load_policies, save_policies
from altmarl_ros.progress import Progress
from altmarl_ros.ros.backends import MODES, drives
from altmarl_ros.ros.bringup import SwarmOptions, controller_record_path, plan
from altmarl_ros.ros.dds import ENV_VAR, TRANSPORTS, use_profile

KINEMATIC_STEP_PERIOD = 2.0
USAGE_EXIT = 2  # a node that rejected its parameters or policy: starting it again would fail the same way


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `altmarl swarm` (also used by `python -m altmarl_ros.ros.swarm`)."""
    parser.add_argument("--n-robots", type=int, default=50, help="robots in the swarm (default 50)")
    parser.add_argument("--k", type=int, default=5, help="robots the controller observes per step (default 5)")
    parser.add_argument("--steps", type=int, default=200, help="decision steps to run (default 200)")
    parser.add_argument("--mode", choices=MODES, default="model",
                        help="simulator backend: exact game transitions (model), unicycle robots (kinematic), ...")
    parser.add_argument("--policy", default="", help="policy artifact (.npz); trained into --out when omitted")
    parser.add_argument("--zones", default="", help="zones YAML matching the policy's floor map (default: the "
                        "package's config/zones.yaml)")
    parser.add_argument("--out", required=True, help="run directory (summary.json, plots, logs)")
    parser.add_argument("--single-process", action="store_true", help="run every node in this process")
    parser.add_argument("--observation", choices=values(ObservationMode), default=ObservationMode.ROTATING.value,
                        help="controller: rotating k-subset subscriptions (default), subscribe-all, or poll the k "
                             "robots (their hosts answer)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulator, controller and robots")
    parser.add_argument("--bag", action="store_true", help="record a rosbag2 (mcap) of the run into DIR/bag")
    parser.add_argument("--robots-per-process", type=int, default=250,
                        help="robots hosted by one robot_node process (1 = one namespaced node per robot)")
    parser.add_argument("--free-running", action="store_true", help="real-time steps instead of lockstep")
    parser.add_argument("--step-period", type=float, default=None,
                        help="s per step (minimum in lockstep); default 0 (model) or 2.0 (kinematic)")
    parser.add_argument("--step-timeout", type=float, default=1.0, help="s before missing answers are dropped")
    parser.add_argument("--startup-timeout", type=float, default=60.0,
                        help="s for every node to match and answer the first step (default 60)")
    parser.add_argument("--tolerate-lost-robots", action="store_true",
                        help="run on without robots that never answer (or stop answering); default: fail naming "
                             "their host")
    parser.add_argument("--respawn", type=int, default=2,
                        help="times a robot_node process or the controller that dies is started again (default 2, "
                             "0 = never; as ROS 2 launch's respawn); a death beyond that fails the run")
    parser.add_argument("--numpy-episodes", type=int, default=200,
                        help="episodes of the NumPy reference (a quarter of them, >= 10, for the random baseline)")
    parser.add_argument("--train-config", default="", help="training config YAML (when --policy is omitted)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--fidelity", choices=values(Fidelity), default=Fidelity.PLANAR.value,
                        help="--mode physics: planar base (x, y, yaw) or wheels with ground contact")
    parser.add_argument("--physics-rate", type=float, default=10.0,
                        help="--mode physics: Hz (simulated) at which the robots' cmd_vel is applied (default 10)")
    parser.add_argument("--physics-baseline-episodes", type=int, default=1,
                        help="--mode physics: in-process physics episodes of the random policies (same length, "
                             "the first from the run's own start state) for the baseline (default 1; 0 = none)")
    parser.add_argument("--dds-transport", choices=TRANSPORTS, default="udp",
                        help="transport of the swarm Fast DDS profile: udp (default; UDPv4 on every interface, nothing "
                             "shared between processes, so a crashed node cannot block the others) or shm (shared "
                             "memory with a deep port queue); ignored when FASTDDS_DEFAULT_PROFILES_FILE is set")
    parser.add_argument("--dds-defaults", action="store_true",
                        help="do not apply the swarm Fast DDS profile (Fast DDS's own defaults)")


# --- policies ---------------------------------------------------------------------------------
def obtain_policy(args: argparse.Namespace, out: Path) -> tuple[Path, PolicyArtifact]:
    """Load --policy, or train one (saved as DIR/policy.npz)."""
    if args.policy:
        path = Path(args.policy)
        return path, load_policies(path, expect_k=args.k)
    path = out / "policy.npz"
    from altmarl_ros.marl.config import load_train_config
    from altmarl_ros.marl.experiments import train_policies
    from altmarl_ros.ros.common import share_path

    config_path = Path(args.train_config) if args.train_config else share_path("config/train_warehouse.yaml")
    print(f"altmarl swarm: training policies for k={args.k} with {config_path} ...", file=sys.stderr)
    # the in-loop evaluations of the UPDATE rule run on the swarm's own n
    record = train_policies(load_train_config(config_path, n_agents=args.n_robots), k=args.k, seed=args.seed)
    save_policies(path, record.pi_g, record.pi_l, game=record.game, game_spec=record.game_spec,
                  trainer="altmarl swarm", train_config=str(config_path), seed=args.seed)
    return path, load_policies(path, expect_k=args.k)


# --- running ------------------------------------------------------------------------------------
class RunOutcome:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.interrupted = False
        self.stalled = False
        self.wall_seconds = 0.0
        self.respawns: list[dict[str, Any]] = []  # {node, exit, at_step, respawn}: nodes started again


def _options(args: argparse.Namespace, policy: Path, out: Path) -> SwarmOptions:
    step_period = args.step_period
    if step_period is None:
        if args.mode == "physics":  # the time to cross one zone under the robot SDF's limits (about 5.2 s)
            from altmarl_ros.physics.world import load_world
            step_period = load_world(None, None, None).decision_period()
        else:
            step_period = KINEMATIC_STEP_PERIOD if drives(args.mode) else (0.1 if args.free_running else 0.0)
    return SwarmOptions(n_robots=args.n_robots, k=args.k, policy=str(policy.resolve()), mode=args.mode,
                        robots_per_process=args.robots_per_process, observation=args.observation,
                        seed=args.seed, lockstep=not args.free_running, zones=args.zones,
                        step_period=float(step_period),
                        step_timeout=float(args.step_timeout), steps=args.steps,
                        record_path=str((out / "sim_record.json").resolve()),
                        startup_timeout=float(args.startup_timeout),
                        tolerate_lost_robots=bool(args.tolerate_lost_robots),
                        bag_path=str((out / "bag").resolve()) if args.bag else "",
                        fidelity=args.fidelity, physics_rate=float(args.physics_rate), respawn=int(args.respawn))


def _stall_unit(options: SwarmOptions) -> float:
    """A run stalls after 20 of these wall seconds without a step: the step timeout, or for simulators that
    drive robots 5 x the step's simulated duration (a physics step is tens of control cycles; at a
    real-time factor of 0.01 one step of 5.2 s takes 520 s)."""
    return max(options.step_timeout, 5.0 * options.step_period if drives(options.mode) else 0.0)


def _spin_until_done(executor, monitor, is_done, check_failures, outcome: RunOutcome, total: int,
                     startup_timeout: float, step_timeout: float) -> None:
    progress = Progress(total)
    t0 = last_change = time.monotonic()
    last_steps = -1
    try:
        while not is_done():
            executor.spin_once(timeout_sec=0.05)
            check_failures()
            if any(f.startswith("sim") for f in outcome.failures):
                return
            now = time.monotonic()
            if monitor.steps != last_steps:
                last_steps, last_change = monitor.steps, now
                progress.update(monitor.steps)
            allowed = startup_timeout + 30.0 if monitor.steps == 0 else max(30.0, 20 * step_timeout)
            if now - last_change > allowed:
                outcome.stalled = True
                outcome.failures.append(f"stalled: no step for {now - last_change:.0f} s at step {monitor.steps}")
                return
        end = time.monotonic() + 1.0  # let the last metrics and diagnostics arrive
        while time.monotonic() < end and (monitor.steps < total or len(monitor.controller) < total):
            executor.spin_once(timeout_sec=0.05)
        progress.update(monitor.steps)
    finally:
        progress.close()
        outcome.wall_seconds = time.monotonic() - t0


def run_processes(options: SwarmOptions, out: Path, args: argparse.Namespace, outcome: RunOutcome):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from altmarl_ros.ros.launcher import ProcessGroup, tail
    from altmarl_ros.ros.monitor import MonitorNode

    rclpy.init(args=[])
    group = None
    monitor = MonitorNode()
    try:
        executor = SingleThreadedExecutor()
        executor.add_node(monitor)
        group = ProcessGroup.start(plan(options), out)
        sim = group.find("sim_node")[0]
        seen: set[str] = set()

        def check_failures() -> None:
            for proc in group.exited():
                if proc.label in seen:
                    continue
                if proc is sim and proc.popen.returncode == 0:
                    continue
                if proc is not sim and proc.popen.returncode != USAGE_EXIT and proc.restarts < options.respawn:
                    outcome.respawns.append({"node": proc.label, "exit": proc.popen.returncode,
                                             "at_step": monitor.steps, "respawn": proc.restarts + 1})
                    print(f"altmarl swarm: node {proc.label} died (exit {proc.popen.returncode}) at step "
                          f"{monitor.steps}; starting it again ({proc.restarts + 1} of {options.respawn}); see "
                          f"{proc.log}", file=sys.stderr)
                    group.restart(proc)
                    continue
                seen.add(proc.label)
                who = "sim" if proc is sim else proc.label
                outcome.failures.append(f"{who} ({proc.label}) exited with {proc.popen.returncode}; log "
                                        f"{proc.log}:\n{tail(proc.log)}")
                print(f"altmarl swarm: node {proc.label} died (exit {proc.popen.returncode}); see {proc.log}",
                      file=sys.stderr)

        _spin_until_done(executor, monitor, lambda: sim.popen.poll() is not None, check_failures, outcome,
                         options.steps, args.startup_timeout, _stall_unit(options))
        return monitor.metrics, monitor.controller
    except KeyboardInterrupt:
        outcome.interrupted = True
        return monitor.metrics, monitor.controller
    finally:
        if group is not None:
            group.stop()
        monitor.destroy_node()
        rclpy.try_shutdown()


def run_single_process(options: SwarmOptions, out: Path, args: argparse.Namespace, outcome: RunOutcome):
    import rclpy

    from altmarl_ros.ros.common import make_executor
    from altmarl_ros.ros.controller_node import ControllerNode
    from altmarl_ros.ros.launcher import write_params
    from altmarl_ros.ros.monitor import MonitorNode
    from altmarl_ros.ros.robot_node import RobotNode
    from altmarl_ros.ros.sim_node import SimNode

    classes = {"sim_node": SimNode, "controller_node": ControllerNode, "robot_node": RobotNode}
    specs = plan(options)
    ros_args = ["--ros-args"]
    for spec in specs:
        ros_args += ["--params-file", str(write_params(spec, out / "params"))]
    rclpy.init(args=ros_args)
    nodes: list[Any] = []
    try:
        monitor = MonitorNode()
        nodes.append(monitor)
        for spec in specs:
            nodes.append(classes[spec.executable](node_name=spec.name, namespace=spec.namespace or None))
        sim = next(n for n in nodes if isinstance(n, SimNode))
        executor = make_executor(sum(getattr(n, "n_entities", 0) for n in nodes))
        for node in nodes:
            executor.add_node(node)
        def check_exit() -> None:
            if sim.done and sim.exit_code and not any(f.startswith("sim") for f in outcome.failures):
                outcome.failures.append(f"sim ({sim.get_name()}) stopped with exit code {sim.exit_code}; see its "
                                        "log above")

        _spin_until_done(executor, monitor, lambda: sim.done, check_exit, outcome, options.steps,
                         args.startup_timeout, _stall_unit(options))
        check_exit()
        return monitor.metrics, monitor.controller
    except KeyboardInterrupt:
        outcome.interrupted = True
        return nodes[0].metrics if nodes else [], nodes[0].controller if nodes else []
    finally:
        for node in reversed(nodes):
            try:
                if hasattr(node, "close"):
                    node.close()
            finally:
                node.destroy_node()
        rclpy.try_shutdown()


# --- summary ------------------------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.percentile(finite, q)) if finite else math.nan


def summarize(args: argparse.Namespace, options: SwarmOptions, policy_path: Path, artifact: PolicyArtifact,
              out: Path, metrics: list[dict], controller: list[dict], outcome: RunOutcome) -> dict[str, Any]:
    from altmarl_ros.ros.compare import batch_means_stderr, random_policies, reference

    record_file = out / "sim_record.json"
    sim_record = json.loads(record_file.read_text()) if record_file.is_file() else None
    per_step = sim_record["per_step"] if sim_record else metrics
    # The nodes' own records are complete; what the monitor heard over DDS may miss messages under load.
    controller_file = Path(controller_record_path(str(record_file)))
    if controller_file.is_file():
        controller = json.loads(controller_file.read_text())["per_step"]
    by_step = {int(c["step"]): c for c in controller if "step" in c}
    for row in per_step:
        c = by_step.get(int(row["step"]))
        row["controller_latency_ms"] = float(c["latency_ms"]) if c else math.nan
        row["missing_poses"] = int(c["missing"]) if c else -1
        row["stale_poses"] = int(c["stale"]) if c else -1
        row["sample"] = c.get("sample", "") if c else ""
    rewards = np.array([r["reward"] for r in per_step], dtype=np.float64)
    steps = len(per_step)
    game, rng = artifact.game, np.random.default_rng(args.seed + 7)
    horizon = max(steps, 1)
    ref = reference(game, artifact.pi_g, artifact.pi_l, rng, n_agents=args.n_robots, steps=horizon,
                    episodes=args.numpy_episodes)
    # the random loop's episode spread is far smaller than the policies' (a baseline, not the tested value)
    rnd = reference(game, None, random_policies(game), rng, n_agents=args.n_robots, steps=horizon,
                    episodes=max(10, args.numpy_episodes // 4))
    closed = float(rewards.mean()) if steps else math.nan
    spread = math.sqrt(ref.episode_std ** 2 + ref.stderr ** 2)
    latencies = [r["controller_latency_ms"] for r in per_step]
    rtts = [r.get("controller_rtt_ms", math.nan) for r in per_step]
    seconds = [r.get("step_seconds", math.nan) for r in per_step]
    busy = float(np.nansum(seconds)) if seconds else 0.0
    return {
        "steps": steps, "steps_requested": args.steps, "n_robots": args.n_robots, "k": args.k,
        "mode": args.mode, "observation": args.observation, "lockstep": options.lockstep,
        "single_process": bool(args.single_process), "robots_per_process": args.robots_per_process,
        "seed": args.seed, "policy": str(policy_path), "game": artifact.game_spec,
        "dds_profile": os.environ.get(ENV_VAR) or None,
        "closed_loop_reward": closed, "closed_loop_reward_stderr": batch_means_stderr(rewards),
        "numpy_reward": ref.mean, "numpy_reward_stderr": ref.stderr, "numpy_episode_std": ref.episode_std,
        "numpy_episodes": ref.episodes, "numpy_comparable": args.mode == "model",
        "agreement_z": (closed - ref.mean) / spread if spread > 0 else math.nan,
        "random_policy_reward": rnd.mean, "random_policy_reward_stderr": rnd.stderr,
        "dropped_answers": int(sum(r["dropped_robots"] for r in per_step)),
        "controller_dropped": int(sum(r["controller_dropped"] for r in per_step)),
        # the simulator's totals also hold what was heard after its last recorded step
        **{key: int((sim_record or {}).get(key, sum(r.get(key, 0) for r in per_step)))
           for key in ("bad_answers", "late_answers", "duplicate_answers")},
        "steps_per_second": (sim_record or {}).get("steps_per_second", steps / busy if busy > 0 else math.nan),
        "controller_latency_ms_p50": _percentile(latencies, 50),
        "controller_latency_ms_p95": _percentile(latencies, 95),
        "controller_latency_ms_max": _percentile(latencies, 100),
        "controller_rtt_ms_p50": _percentile(rtts, 50), "controller_rtt_ms_p95": _percentile(rtts, 95),
        "step_seconds_p50": _percentile(seconds, 50), "step_seconds_p95": _percentile(seconds, 95),
        "missing_poses": int(sum(max(r["missing_poses"], 0) for r in per_step)),
        "stale_poses": int(sum(max(r["stale_poses"], 0) for r in per_step)),
        "lost_robots": (sim_record or {}).get("lost_robots", {}),
        "silent_at_end": (sim_record or {}).get("silent_at_end", {}),
        "tolerate_lost_robots": bool(args.tolerate_lost_robots),
        "max_pose_subscriptions": max((int(c.get("max_pose_subscriptions", 0)) for c in controller), default=0),
        "node_failures": outcome.failures, "respawns": outcome.respawns, "interrupted": outcome.interrupted,
        "stalled": outcome.stalled,
        "wall_seconds": outcome.wall_seconds, "bag": options.bag_path or None,
        **(_physics_summary(args, options, artifact, sim_record or {}, rewards) if args.mode == "physics" else {}),
        "per_step": per_step,
    }


PHYSICS_KEYS = ("sim_seconds", "real_time_factor", "engine_real_time_factor", "physics_fidelity", "physics_timestep",
                "collisions", "wall_contacts", "robots_stuck", "robots_stuck_note", "goal_zone_moves",
                "goal_zone_reached", "goal_zone_reached_fraction", "mean_time_to_goal_zone_s",
                "mean_time_to_goal_zone_note", "max_overlap_m", "min_tilt", "spawn_overflow", "cmd_vel_dropped")


def _physics_summary(args: argparse.Namespace, options: SwarmOptions, artifact: PolicyArtifact,
                     sim_record: dict[str, Any], rewards: np.ndarray) -> dict[str, Any]:
    """Physics run extras: the simulator's physics report, and the random policies in the same physics.

    The random baseline runs in-process (`altmarl_ros.physics.rollout`, same world, controller law, decision
    period and control rate); its first episode starts from the run's own start state (same seed).
    `physics_vs_random_z` = (closed - random) / sqrt(se_closed^2 + se_random^2), both stderrs by batch means
    over steps (and over episodes for the baseline), 10 batches each: > 2.82 (Student's t, 9 degrees of freedom)
    is a conservative one-sided 1 % test that the policies beat the random ones in physics.
    """
    from altmarl_ros.ros.backends.rollout import episode, random_global, random_local
    from altmarl_ros.ros.common import resolve_zones
    from altmarl_ros.ros.compare import batch_means_stderr

    physics = {key: sim_record[key] for key in PHYSICS_KEYS if key in sim_record}
    physics.update(decision_period_s=options.step_period, control_rate_hz=options.physics_rate)
    if args.physics_baseline_episodes < 1:
        return {**physics, "random_policy_reward_physics": math.nan, "random_policy_reward_physics_stderr": math.nan,
                "random_policy_physics_episodes": 0, "physics_vs_random_z": math.nan}
    zones = resolve_zones(options.zones)
    steps = max(len(rewards), 1)
    baseline = []
    for e in range(args.physics_baseline_episodes):
        run = episode(artifact.game, zones, random_global(artifact.game), random_local(artifact.game),
                      floor=artifact.floor,
                      n_agents=args.n_robots, steps=steps, seed=args.seed + e, decision_period=options.step_period,
                      control_period=1.0 / options.physics_rate, fidelity=options.fidelity)
        baseline.append(run.rewards)
    per_episode = np.array([b.mean() for b in baseline])
    # independent episodes: the mean's stderr combines each episode's batch-means stderr
    random_se = float(np.sqrt(sum(batch_means_stderr(b) ** 2 for b in baseline)) / len(baseline))
    closed, closed_se = float(rewards.mean()), batch_means_stderr(rewards)
    spread = math.sqrt(closed_se ** 2 + random_se ** 2)
    return {
        **physics,
        "random_policy_reward_physics": float(per_episode.mean()),
        "random_policy_reward_physics_stderr": random_se,
        "random_policy_physics_episodes": int(per_episode.size),
        "physics_vs_random_z": (closed - float(per_episode.mean())) / spread if spread > 0 else math.nan,
    }


def plot(summary: dict[str, Any], out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["per_step"]
    if not rows:
        return []
    steps = np.array([r["step"] for r in rows])
    rewards = np.array([r["reward"] for r in rows])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps, rewards, lw=0.8, alpha=0.6, label="closed loop (ROS), per step")
    ax.plot(steps, np.cumsum(rewards) / np.arange(1, len(rewards) + 1), lw=2, label="closed loop, running mean")
    ax.axhline(summary["numpy_reward"], color="k", ls="--", label="NumPy, same policies")
    ax.axhspan(summary["numpy_reward"] - summary["numpy_episode_std"],
               summary["numpy_reward"] + summary["numpy_episode_std"], color="k", alpha=0.1)
    ax.axhline(summary["random_policy_reward"], color="r", ls=":", label="random policies (NumPy)")
    ax.set(xlabel="decision step", ylabel="reward per step",
           title=f"n={summary['n_robots']} k={summary['k']} {summary['mode']} {summary['observation']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "reward.png", dpi=100)
    plt.close(fig)
    lat = np.array([r["controller_latency_ms"] for r in rows])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.plot(steps, lat, lw=0.8, label="controller latency (tick -> command)")
    a1.plot(steps, [1e3 * r["step_seconds"] for r in rows], lw=0.8, label="step duration")
    a1.set(xlabel="decision step", ylabel="ms")
    a1.legend(fontsize=8)
    a2.plot(steps, [r["dropped_robots"] for r in rows], label="dropped robot answers")
    a2.plot(steps, [max(r["missing_poses"], 0) + max(r["stale_poses"], 0) for r in rows],
            label="missing+stale sampled poses")
    a2.set(xlabel="decision step", ylabel="count")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=100)
    plt.close(fig)
    return ["reward.png", "latency.png"]


def run(args: argparse.Namespace) -> int:
    """Entry point of `altmarl swarm`; returns the exit status."""
    from altmarl_ros.ros.common import write_json

    out = Path(args.out)
    if args.steps < 1:
        print("altmarl swarm: --steps must be >= 1", file=sys.stderr)
        return 2
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    out.mkdir(parents=True, exist_ok=True)
    if not args.dds_defaults:
        use_profile(out, args.dds_transport)
    (out / "summary.json").unlink(missing_ok=True)
    for stale in ("sim_record.json", controller_record_path("sim_record.json")):
        (out / stale).unlink(missing_ok=True)
    try:
        policy_path, artifact = obtain_policy(args, out)
        options = _options(args, policy_path, out)
    except (PolicyFileError, ValueError) as exc:
        print(f"altmarl swarm: {exc}", file=sys.stderr)
        return 2
    if options.bag_path and Path(options.bag_path).exists():
        print(f"altmarl swarm: {options.bag_path} exists; choose a new --out or remove it", file=sys.stderr)
        return 2
    outcome = RunOutcome()
    runner = run_single_process if args.single_process else run_processes
    try:
        metrics, controller = runner(options, out, args, outcome)
    except KeyboardInterrupt:
        outcome.interrupted = True
        metrics, controller = [], []
    summary = summarize(args, options, policy_path, artifact, out, metrics, controller, outcome)
    if not args.no_plots:
        summary["plots"] = plot(summary, out)
    write_json(out / "summary.json", summary)
    print(f"altmarl swarm: {summary['steps']} steps, n={args.n_robots}, k={args.k}: closed-loop reward "
          f"{summary['closed_loop_reward']:.3f} +- {summary['closed_loop_reward_stderr']:.3f}, NumPy "
          f"{summary['numpy_reward']:.3f} +- {summary['numpy_reward_stderr']:.3f} (episode sd "
          f"{summary['numpy_episode_std']:.3f}), random {summary['random_policy_reward']:.3f}; "
          f"{summary['steps_per_second']:.1f} steps/s, controller latency p50 "
          f"{summary['controller_latency_ms_p50']:.1f} ms p95 {summary['controller_latency_ms_p95']:.1f} ms, "
          f"dropped answers {summary['dropped_answers']}; {out / 'summary.json'}")
    if args.mode == "physics":
        print(f"altmarl swarm: physics ({summary.get('physics_fidelity')}): real-time factor "
              f"{summary.get('real_time_factor', math.nan):.2f}, random policies in physics "
              f"{summary['random_policy_reward_physics']:.3f} +- {summary['random_policy_reward_physics_stderr']:.3f} "
              f"(z = {summary['physics_vs_random_z']:.1f}), collisions {summary.get('collisions')}, robot-steps "
              f"stuck {summary.get('robots_stuck')}, mean time to goal zone "
              f"{summary.get('mean_time_to_goal_zone_s', math.nan):.2f} s")
    if outcome.interrupted:
        return 130
    silent = summary["silent_at_end"]
    if silent and not args.tolerate_lost_robots:
        outcome.failures.append("robots stopped answering during the run: " + "; ".join(
            f"{host}: {len(robots)} robot(s) ({robots[0]}..{robots[-1]})" for host, robots in silent.items())
            + " (--tolerate-lost-robots to accept)")
    if outcome.failures or summary["steps"] < args.steps:
        for failure in outcome.failures:
            print(f"altmarl swarm: {failure}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="altmarl swarm", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
