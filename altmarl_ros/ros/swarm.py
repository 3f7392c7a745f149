"""`altmarl swarm`: run the swarm end to end on the embedded simulator and compare it with NumPy.

Trains (or loads) the policies, brings up sim_node + controller_node + robot_node(s) from
`bringup.plan` as separate processes (`--ros-args --params-file`) or in one process
(`--single-process`), runs `--steps` lockstep steps with a progress bar, and writes
`DIR/summary.json` (atomically) with the closed-loop reward next to the NumPy evaluation of the same
policies and settings, drops, latencies, the per-step record, and PNG plots.

This module is the entry (arguments, policies, the sequence); the parts are `swarm_runner` (the
processes or the single process), `swarm_report` (records -> `swarm_summary.SwarmSummary`, the
summary.json type) and `swarm_plots`.

Exit status: 0 success, 1 a node died or the run stalled, 2 bad arguments or policy file,
130 interrupted (Ctrl-C); every child process is stopped in all cases.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from pathlib import Path

from altmarl_ros import stopflag
from altmarl_ros.contract import Fidelity, ObservationMode, values
from altmarl_ros.domains import DomainError, claim_domain
from altmarl_ros.marl.artifacts import PolicyArtifact, PolicyFileError, load_policies, save_policies
from altmarl_ros.marl.continuous.deploy import Deployed, is_continuous_artifact, load_deployed
from altmarl_ros.ros.backends import MODES
from altmarl_ros.ros.bringup import controller_record_path
from altmarl_ros.ros.dds import TRANSPORTS, use_profile
from altmarl_ros.zones import load_zones


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
                        help="s per step (minimum in lockstep); default 0 (model) or 2.0 (kinematic; 1.0 with a "
                        "continuous policy)")
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
                        help="transport of the swarm Fast DDS profile: udp (default; UDPv4 on every interface, "
                             "nothing shared between processes, so a crashed node cannot block the others) or shm "
                             "(shared memory with a deep port queue, UDPv4 beside it); ignored when "
                             "FASTDDS_DEFAULT_PROFILES_FILE is set")
    parser.add_argument("--marker-rate", type=float, default=2.0,
                        help="Hz of the simulator's /swarm/markers for RViz/Foxglove (default 2; 0 = off)")
    parser.add_argument("--video", default="", metavar="FILE.mp4",
                        help="record the bag (as --bag) and render it as a top-down video after the run")
    parser.add_argument("--dds-defaults", action="store_true",
                        help="do not apply the swarm Fast DDS profile (Fast DDS's own defaults)")


# --- policies ---------------------------------------------------------------------------------
def obtain_policy(args: argparse.Namespace, out: Path) -> tuple[Path, PolicyArtifact | Deployed]:
    """Load --policy, or train one (saved as DIR/policy.npz). A continuous policy (issue 17) runs on its corridor:
    --zones defaults to the package's config/zones_corridor.yaml, and its mode must have a corridor backend."""
    if args.policy and is_continuous_artifact(args.policy):
        from altmarl_ros.ros.backends import continuous_backend_class
        from altmarl_ros.ros.common import share_path
        from altmarl_ros.ros.corridor import CORRIDOR_STEP_PERIOD, CORRIDOR_ZONES, CorridorFrame

        policy = load_deployed(args.policy, expect_k=args.k)
        args.zones = args.zones or str(share_path(CORRIDOR_ZONES))
        CorridorFrame.of(load_zones(args.zones), policy.env)  # refuse a zones file that is no corridor, now
        if continuous_backend_class(args.mode).drives and args.step_period is None:  # (refuses a mode without one)
            args.step_period = CORRIDOR_STEP_PERIOD
        return Path(args.policy), policy
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


def rclpy_import_error() -> ImportError | None:
    """The ImportError of `import rclpy`, or None when ROS 2's Python client library is importable."""
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        return exc
    return None


class _Interrupt:
    """SIGINT handler of `altmarl swarm`: marks the run interrupted (altmarl_ros.stopflag); while `armed` (until
    the run ends) the first one also raises KeyboardInterrupt to stop it; later ones never interrupt the summary."""

    armed = True

    def __call__(self, signum: int, frame: object) -> None:
        stopflag.requested = True
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt


_interrupt = _Interrupt()


def run(args: argparse.Namespace) -> int:
    """Entry point of `altmarl swarm`; returns the exit status. The caller checks `rclpy_import_error()`
    first (the CLI does, before anything is trained)."""
    from altmarl_ros.ros.swarm_report import report_lines, summarize
    from altmarl_ros.ros.swarm_runner import RunOutcome, run_processes, run_single_process, swarm_options

    signal.signal(signal.SIGINT, _interrupt)  # Ctrl-C: 130 with the summary written, marked interrupted

    out = Path(args.out)
    if args.steps < 1:
        print("altmarl swarm: --steps must be >= 1", file=sys.stderr)
        return 2
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    try:  # a ROS domain of its own, unless ROS_DOMAIN_ID is set: two runs on one machine never hear each other
        domain = claim_domain()
    except DomainError as exc:
        print(f"altmarl swarm: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    if not args.dds_defaults:
        use_profile(out, args.dds_transport)
    (out / "summary.json").unlink(missing_ok=True)
    for stale in ("sim_record.json", controller_record_path("sim_record.json")):
        (out / stale).unlink(missing_ok=True)
    try:
        policy_path, artifact = obtain_policy(args, out)
        options = swarm_options(args, policy_path, out)
    except (PolicyFileError, ValueError) as exc:  # ContinuousPolicyError and InputError are ValueErrors
        print(f"altmarl swarm: {exc}", file=sys.stderr)
        return 2
    if options.bag_path and Path(options.bag_path).exists():
        print(f"altmarl swarm: {options.bag_path} exists; choose a new --out or remove it", file=sys.stderr)
        return 2
    outcome = RunOutcome()
    runner = run_single_process if args.single_process else run_processes
    try:
        if not stopflag.requested:
            runner(options, out, outcome)
    except KeyboardInterrupt:
        outcome.metrics, outcome.controller = [], []
    _interrupt.armed = False  # from here on Ctrl-C only marks the run: the summary is always written
    outcome.interrupted = outcome.interrupted or stopflag.requested
    summary = summarize(args, options, policy_path, artifact, out, outcome)
    summary = dataclasses.replace(summary, settings=dataclasses.replace(
        summary.settings, ros_domain_id=domain.domain_id, ros_domain_source=domain.source,
        ros_discovery_range=domain.discovery_range))
    if not args.no_plots:
        from altmarl_ros.ros.swarm_plots import plot
        summary = dataclasses.replace(summary, plots=tuple(plot(summary, out)))
    summary.write(out / "summary.json")
    for line in report_lines(summary, out):
        print(line)
    if args.video and not outcome.interrupted and options.bag_path:
        from altmarl_ros.ros.common import resolve_zones
        from altmarl_ros.video import video_from_bag
        info = video_from_bag(options.bag_path, args.video, resolve_zones(options.zones))
        print(f"altmarl swarm: video {info.frames} frames ({info.view}) -> {info.path}")
    if outcome.interrupted:
        return 130
    silent = summary.robots.silent_at_end
    if silent and not args.tolerate_lost_robots:
        outcome.failures.append("robots stopped answering during the run: " + "; ".join(
            f"{host}: {len(robots)} robot(s) ({robots[0]}..{robots[-1]})" for host, robots in silent.items())
            + " (--tolerate-lost-robots to accept)")
    if outcome.failures or summary.steps < args.steps:
        for failure in outcome.failures:
            print(f"altmarl swarm: {failure}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="altmarl swarm", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    missing = rclpy_import_error()
    if missing is not None:
        print(f"altmarl swarm: error: ROS 2 (rclpy) is not importable here ({missing})", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
