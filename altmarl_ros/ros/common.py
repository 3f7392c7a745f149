"""Shared node plumbing: declared+validated parameters, share-dir paths, policy loading, the main loop."""

from __future__ import annotations

import faulthandler
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import rclpy
import rclpy.exceptions
import rclpy.logging
import rclpy.signals
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from altmarl_ros import stopflag
from altmarl_ros.errors import UserError, is_user_error
from altmarl_ros.marl.artifacts import PolicyArtifact, PolicyFileError, atomic_write_text, load_policies
from altmarl_ros.marl.continuous.deploy import Deployed, is_continuous_artifact, load_deployed
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import floor_from_spec, make_game
from altmarl_ros.marl.games.floor import FloorMap
from altmarl_ros.paths import PACKAGE, share_path
from altmarl_ros.ros.corridor import CORRIDOR_ZONES, CorridorFrame
from altmarl_ros.zones import Zones, load_zones

EVENTS_EXECUTOR_THRESHOLD = 64  # entities above which a node spins on EventsExecutor
PROFILE_ENV = "ALTMARL_PROFILE_DIR"  # set: every node profiles its spin loop (cProfile) into DIR/<node>.prof
SILENCE_REPORT_S = 10.0  # s without a tick after which a node logs what it is matched with
SHUTDOWN_WATCHDOG_S = 10.0  # s a node may take to destroy itself and shut rclpy down (then: stacks, exit 1)


class ParameterError(UserError, ValueError):
    """A node parameter is missing, of the wrong type or out of range."""


def declare(node: Node, name: str, default: Any, description: str, *, choices: Sequence[str] | None = None,
            low: float | None = None, high: float | None = None) -> Any:
    """Declare a read-only parameter with a descriptor and return its validated value."""
    desc = ParameterDescriptor(description=description, read_only=True)
    if choices:
        desc.additional_constraints = f"one of {list(choices)}"
    if low is not None or high is not None:
        lo = low if low is not None else -1e18
        hi = high if high is not None else 1e18
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise TypeError(f"range given for non-numeric parameter {name}")
        if isinstance(default, int):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(min(hi, 2**62)), step=1)]
        else:
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    try:
        value = node.declare_parameter(name, default, desc).value
    except Exception as exc:  # InvalidParameterTypeException, InvalidParameterValueException
        raise ParameterError(f"{node.get_name()}: parameter '{name}' is invalid: {exc} ({description})") from exc
    if choices is not None and value not in choices:
        raise ParameterError(f"{node.get_name()}: parameter '{name}' must be one of {list(choices)}, got {value!r}")
    return value


def declare_string_list(node: Node, name: str, description: str) -> list[str]:
    """A string-array parameter that may be left unset (-> [])."""
    desc = ParameterDescriptor(description=description, read_only=True)
    try:
        node.declare_parameter(name, Parameter.Type.STRING_ARRAY, desc)
        return [str(v) for v in node.get_parameter(name).value]
    except rclpy.exceptions.ParameterUninitializedException:
        return []
    except Exception as exc:
        raise ParameterError(f"{node.get_name()}: parameter '{name}' is invalid: {exc} ({description})") from exc


def robot_list(node: Node, robots: list[str], n_robots: int) -> list[str]:
    """The robot registry: explicit `robots` names, else robot_0..robot_{n_robots-1}."""
    if robots:
        if len(set(robots)) != len(robots):
            raise ParameterError(f"{node.get_name()}: parameter 'robots' has duplicate names")
        bad = [r for r in robots if not r or not r.replace("_", "a").isalnum()]
        if bad:
            raise ParameterError(f"{node.get_name()}: parameter 'robots' has invalid names {bad[:3]}")
        return robots
    if n_robots < 1:
        raise ParameterError(f"{node.get_name()}: set parameter 'robots' (names) or 'n_robots' (>= 1)")
    return [f"robot_{i}" for i in range(n_robots)]


def resolve_zones(path: str) -> Zones:
    return load_zones(Path(path) if path else share_path("config/zones.yaml"))


def resolve_policy(path: str, *, k: int | None = None, n_zones: int | None = None) -> PolicyArtifact:
    """Load the policy artifact (default: share/altmarl_ros/policies/default.npz) and check it fits: with `n_zones`,
    its game must carry a floor map (what its states and actions mean on the floor) over that many zones."""
    file = Path(path) if path else share_path("policies/default.npz")
    artifact = load_policies(file, expect_k=k)
    if n_zones is not None:
        check_floor(artifact.floor, n_zones, f"policy file {file}: game {artifact.game.name}")
    return artifact


class ContinuousDeployment(NamedTuple):
    """A continuous policy (issue 17) on its corridor: the greedy networks, the zones, the metres <-> states map."""

    policy: Deployed
    zones: Zones
    frame: CorridorFrame


def resolve_continuous(policy_path: str, zones_path: str, *, k: int | None = None) -> ContinuousDeployment | None:
    """The continuous policy artifact at `policy_path` on its corridor (zones default: the package's
    config/zones_corridor.yaml); None when `policy_path` is not a continuous artifact (a tabular one, or '')."""
    if not policy_path or not is_continuous_artifact(policy_path):
        return None
    policy = load_deployed(policy_path, expect_k=k)
    zones = load_zones(Path(zones_path) if zones_path else share_path(CORRIDOR_ZONES))
    return ContinuousDeployment(policy, zones, CorridorFrame.of(zones, policy.env))


def resolve_game(policy_path: str, zones_path: str, game_name: str, game_options: dict[str, Any],
                 who: str) -> tuple[Zones, TabularGame, dict[str, Any], FloorMap]:
    """(zones, game, game_spec, floor) of a simulated tabular run: the registry game named `game_name`, else the
    policy artifact's; `floor` says what local states and actions mean on the floor (zones of states, goal zones)."""
    zones = resolve_zones(zones_path)
    if game_name:
        game = make_game(game_name, **game_options)
        game_spec = {"name": game_name, "options": game_options}
        floor = floor_from_spec(game_spec, game)
    else:
        artifact = resolve_policy(policy_path, n_zones=zones.n_zones)
        game, game_spec, floor = artifact.game, artifact.game_spec, artifact.floor
    return zones, game, game_spec, check_floor(floor, zones.n_zones, f"{who}: game {game.name}")


def check_floor(floor: FloorMap | None, n_zones: int, where: str) -> FloorMap:
    """The floor map, if it exists and covers the zone map's `n_zones` zones (else PolicyFileError)."""
    if floor is None:
        raise PolicyFileError(f"{where} has no floor map (which zone each local state is, where each action "
                              "leads): give its game file a 'floor:' section (README 'Games from files') and retrain")
    if floor.n_zones != n_zones:
        raise PolicyFileError(f"{where} is played on {floor.n_zones} zones but the zone map has {n_zones}")
    return floor


class PoseSubscriber:
    """Creates a node's pose subscriptions with the profile named by its `pose_qos` parameter and reports an
    incompatible publisher as an error naming the topic, this profile and the publisher's (once per topic)."""

    def __init__(self, node: Node) -> None:
        from altmarl_ros.ros import topics

        self.node = node
        self.name = declare(node, "pose_qos", "latched", "pose subscription QoS: latched (reliable, "
                            "transient-local: the embedded simulator), reliable (reliable volatile publishers), "
                            "sensor_data (best effort: any publisher, e.g. robot drivers)",
                            choices=tuple(topics.POSE_QOS_PROFILES))
        self.qos = topics.POSE_QOS_PROFILES[self.name]
        self.reported: set[str] = set()
        self.incompatible: dict[str, str] = {}  # topic -> the error message

    def subscribe(self, msg_type: Any, topic: str, callback: Callable[[Any], None]):
        from rclpy.event_handler import SubscriptionEventCallbacks

        events = SubscriptionEventCallbacks(incompatible_qos=functools.partial(self._incompatible, topic))
        return self.node.create_subscription(msg_type, topic, callback, self.qos, event_callbacks=events)

    def _incompatible(self, topic: str, info: Any) -> None:
        from rclpy.qos import qos_policy_name_from_kind

        from altmarl_ros.ros import topics

        if topic in self.reported:
            return
        self.reported.add(topic)
        offered = "; ".join(f"{_endpoint_node(i)} offers {topics.describe_qos(i.qos_profile)}"
                            for i in self.node.get_publishers_info_by_topic(topic)) or "a publisher that has left"
        hint = "" if self.name == "sensor_data" else " (pose_qos: sensor_data matches any publisher)"
        message = (f"{topic}: incompatible QoS ({qos_policy_name_from_kind(info.last_policy_kind)}), no pose will "
                   f"arrive: this node requests {topics.describe_qos(self.qos)} (pose_qos: {self.name}), "
                   f"{offered}{hint}")
        self.incompatible[topic] = message
        self.node.get_logger().error(message)


def _endpoint_node(info: Any) -> str:
    """'/ns/node' of a graph endpoint, or 'a publisher' while its node's name is not discovered yet."""
    if "UNKNOWN" in info.node_name:
        return "a publisher (node name not yet discovered)"
    return f"{info.node_namespace.rstrip('/')}/{info.node_name}"


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    atomic_write_text(Path(path), json.dumps(data, indent=1, default=float) + "\n")


def make_executor(n_entities: int):
    """EventsExecutor for nodes with many publishers/subscriptions (measured ~8x cheaper at 1000)."""
    if n_entities > EVENTS_EXECUTOR_THRESHOLD:
        from rclpy.experimental import EventsExecutor
        return EventsExecutor()
    return SingleThreadedExecutor()


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """The main of a node process: create the node, spin until it is done or interrupted, always shut down cleanly.

    Returns 0 on success and on Ctrl-C / SIGTERM, 2 when the node fails to start on a user error (bad
    parameter or policy file: one line naming it, see `altmarl_ros.errors`); a programming error
    raises with its traceback (exit 1 from the console script), after a clean shutdown; a teardown that hangs
    exits 1 after SHUTDOWN_WATCHDOG_S with its stacks.
    """
    rclpy.init(args=args if args is not None else sys.argv,
               signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    # SIGINT/SIGTERM set a flag that the spin loop checks between callbacks (altmarl_ros.stopflag; the console
    # entry points install it before importing): raising from the signal handler could interrupt a callback
    # half-way (e.g. inside destroy_subscription) and leave the node in a state rclpy cannot destroy.
    stopflag.install()
    node = None
    code = 0
    try:
        try:
            node = factory()
        except (ValueError, OSError) as exc:
            if not is_user_error(exc):
                raise  # a programming error: its traceback, exit 1
            rclpy.logging.get_logger(PACKAGE).fatal(f"cannot start: {exc}")  # bad parameter or file: one line
            return 2
        executor = make_executor(getattr(node, "n_entities", 0))
        executor.add_node(node)
        profile_dir = os.environ.get(PROFILE_ENV)
        profiler = None
        if profile_dir:  # bench/ros_closed_loop.py --profile: where this node's Python time goes
            import cProfile
            profiler = cProfile.Profile()
            profiler.enable()
        try:
            while rclpy.ok() and not getattr(node, "done", False) and not stopflag.requested:
                try:
                    executor.spin_once(timeout_sec=0.1)
                except Exception as exc:  # e.g. RCLError "cannot publish data" from DDS while peers shut down
                    if not stopflag.requested:
                        raise
                    rclpy.logging.get_logger(PACKAGE).warning(f"{node.get_name()}: stopping: {exc}")
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(str(Path(profile_dir or ".") / f"{node.get_name()}.prof"))
        code = int(getattr(node, "exit_code", 0))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            try:
                node.close()  # type: ignore[attr-defined]  # every node class of this package has close()
            except Exception as exc:  # never hide the shutdown behind a secondary error
                rclpy.logging.get_logger(PACKAGE).error(f"error while closing {node.get_name()}: {exc}")
        # Its results written, a node whose DDS teardown hangs (seen once: a controller still alive 15 s after SIGINT
        # in a full test run) must not stay alive: after SHUTDOWN_WATCHDOG_S the Python stacks of every thread go to
        # stderr (the node's log: where it hung) and the process exits with 1. Armed until the process exits (the
        # interpreter's own teardown of rclpy and DDS included): run_node is the main of a node process.
        faulthandler.dump_traceback_later(SHUTDOWN_WATCHDOG_S, exit=True)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
