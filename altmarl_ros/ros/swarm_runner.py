"""Running the swarm of `altmarl swarm`: the bringup plan as processes (with respawn) or in one process.

Both runners spin a `MonitorNode` beside the nodes, show a progress bar, stop on the simulator's end,
a failure or a stall, and fill a `RunOutcome`. rclpy is imported inside the runners only, so that
`altmarl swarm --help` works without ROS.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from altmarl_ros import exitcodes, stopflag
from altmarl_ros.contract import SimMode
from altmarl_ros.progress import Progress
from altmarl_ros.ros.backends import drives
from altmarl_ros.ros.bringup import SwarmOptions, plan

KINEMATIC_STEP_PERIOD = 2.0


@dataclass
class RunOutcome:
    """What a runner saw: failures (text), interruption, stall, wall time, respawns ({node, exit, at_step,
    respawn}), and what the monitor heard (per-step metrics rows, controller diagnostics)."""

    failures: list[str] = field(default_factory=list)
    interrupted: bool = False
    stalled: bool = False
    wall_seconds: float = 0.0
    respawns: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    controller: list[dict[str, str]] = field(default_factory=list)


def swarm_options(args: argparse.Namespace, policy: Path, out: Path) -> SwarmOptions:
    """The bringup options of `altmarl swarm`'s arguments (default step period by mode)."""
    step_period = args.step_period
    if step_period is None:
        if args.mode == SimMode.PHYSICS:  # the time to cross one zone under the robot SDF's limits (about 5.2 s)
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
                        bag_path=str((out / "bag").resolve()) if (args.bag or args.video) else "",
                        fidelity=args.fidelity, physics_rate=float(args.physics_rate), respawn=int(args.respawn),
                        marker_rate=float(args.marker_rate))


def _stall_unit(options: SwarmOptions) -> float:
    """A run stalls after 20 of these wall seconds without a step: the step timeout, or for simulators that
    drive robots 5 x the step's simulated duration (a physics step is tens of control cycles; at a
    real-time factor of 0.01 one step of 5.2 s takes 520 s)."""
    return max(options.step_timeout, 5.0 * options.step_period if drives(options.mode) else 0.0)


def _spin(executor) -> None:
    """One executor turn. After Ctrl-C an error from rclpy (peers shutting down, or the KeyboardInterrupt raised
    inside a take, seen as pybind11's "Unable to convert call argument") is the interrupt, as in `run_node`."""
    try:
        executor.spin_once(timeout_sec=0.05)
    except Exception:
        if not stopflag.requested:
            raise
        raise KeyboardInterrupt from None


def _spin_until_done(executor, monitor, is_done: Callable[[], bool], check_failures: Callable[[], None],
                     outcome: RunOutcome, options: SwarmOptions) -> None:
    total, step_timeout = options.steps, _stall_unit(options)
    progress = Progress(total)
    t0 = last_change = time.monotonic()
    last_steps = -1
    try:
        while not is_done():
            _spin(executor)
            check_failures()
            if any(f.startswith("sim") for f in outcome.failures):
                return
            now = time.monotonic()
            if monitor.steps != last_steps:
                last_steps, last_change = monitor.steps, now
                progress.update(monitor.steps)
            allowed = options.startup_timeout + 30.0 if monitor.steps == 0 else max(30.0, 20 * step_timeout)
            if now - last_change > allowed:
                outcome.stalled = True
                outcome.failures.append(f"stalled: no step for {now - last_change:.0f} s at step {monitor.steps}")
                return
        end = time.monotonic() + 1.0  # let the last metrics and diagnostics arrive
        while time.monotonic() < end and (monitor.steps < total or len(monitor.controller) < total):
            _spin(executor)
        progress.update(monitor.steps)
    finally:
        progress.close()
        outcome.wall_seconds = time.monotonic() - t0


def run_processes(options: SwarmOptions, out: Path, outcome: RunOutcome) -> None:
    """One process per node of the plan (logs in DIR/logs); a robot host or the controller that dies is
    started again up to `options.respawn` times (not after a usage error, exit 2)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from altmarl_ros.ros.launcher import ProcessGroup, tail
    from altmarl_ros.ros.monitor import MonitorNode

    rclpy.init(args=[])
    group = None
    monitor = MonitorNode()
    outcome.metrics, outcome.controller = monitor.metrics, monitor.controller
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
                if proc is not sim and exitcodes.respawnable(proc.popen.returncode) and \
                        proc.restarts < options.respawn:
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

        _spin_until_done(executor, monitor, lambda: sim.popen.poll() is not None, check_failures, outcome, options)
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        if group is not None:
            group.stop()
        monitor.destroy_node()
        rclpy.try_shutdown()


def run_single_process(options: SwarmOptions, out: Path, outcome: RunOutcome) -> None:
    """Every node of the plan in this process, on one executor (parameters from the same files)."""
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
        outcome.metrics, outcome.controller = monitor.metrics, monitor.controller
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

        _spin_until_done(executor, monitor, lambda: sim.done, check_exit, outcome, options)
        check_exit()
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        for node in reversed(nodes):
            try:
                if hasattr(node, "close"):
                    node.close()
            finally:
                node.destroy_node()
        rclpy.try_shutdown()
