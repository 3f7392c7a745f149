"""The swarm's node set as data: `plan(SwarmOptions) -> [NodeSpec]`.

Used by launch/swarm.launch.py (each NodeSpec becomes a `launch_ros.actions.Node`) and by
`altmarl swarm` (each NodeSpec becomes a process started with `--ros-args --params-file`, or a node in
one process). It imports neither launch nor rclpy, so it can be tested and used anywhere.

Parameters are plain ROS values only (bool, int, float, str, homogeneous lists), so the mapping
`Node(package='altmarl_ros', executable=spec.executable, name=spec.name, namespace=spec.namespace,
parameters=[spec.parameters])` is always valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from altmarl_ros import contract
from altmarl_ros.contract import ControllerClock, Fidelity, ObservationMode, SimMode, Simulator, robot_names
from altmarl_ros.errors import InputError
from altmarl_ros.ros.backends import MODES, drives

EXECUTABLES = ("sim_node", "controller_node", "robot_node")


@dataclass(frozen=True)
class NodeSpec:
    """One node of the swarm: which console script, its name, namespace and parameters."""

    executable: str  # 'sim_node' | 'controller_node' | 'robot_node' (console scripts of this package)
    name: str  # node name
    namespace: str  # '' for swarm-wide nodes, 'robot_<i>' for a node hosting one robot
    parameters: dict[str, Any] = field(default_factory=dict)  # plain ROS parameter values

    def __post_init__(self) -> None:
        if self.executable not in EXECUTABLES:
            raise InputError(f"NodeSpec.executable must be one of {EXECUTABLES}, got {self.executable!r}")
        for key, value in self.parameters.items():
            _check_plain(f"NodeSpec({self.name}).parameters[{key!r}]", value)

    @property
    def fqn(self) -> str:
        """The node's fully qualified name, '/ns/name' or '/name'."""
        return f"/{self.namespace}/{self.name}" if self.namespace else f"/{self.name}"

    def params_yaml(self) -> dict[str, Any]:
        """The `--params-file` document for this node: {'/ns/name': {'ros__parameters': {...}}}."""
        return {self.fqn: {"ros__parameters": dict(self.parameters)}}


def _check_plain(where: str, value: Any) -> None:
    if isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        if not value:
            raise InputError(f"{where}: empty lists have no ROS type; leave the parameter out instead")
        kinds = {bool if isinstance(v, bool) else type(v) for v in value}
        if len(kinds) != 1 or not kinds <= {bool, int, float, str}:
            raise InputError(f"{where}: ROS arrays must hold one plain type, got {sorted(k.__name__ for k in kinds)}")
        return
    raise InputError(f"{where}: {type(value).__name__} is not a plain ROS parameter type")


@dataclass(frozen=True)
class SwarmOptions:
    """Everything that shapes the node set. Invalid values raise ValueError naming the field."""

    n_robots: int = 50
    k: int = 5
    policy: str = ""  # policy artifact (.npz); '' = share/altmarl_ros/policies/default.npz
    sim: str = Simulator.EMBEDDED.value  # 'embedded' (sim_node) or 'gazebo' (no sim_node; Gazebo plays it)
    mode: str = SimMode.MODEL.value  # sim_node backend: 'model' (exact P_g/P_l), 'kinematic' (unicycle), ...
    use_sim_time: bool = False
    robots_per_process: int = 250  # robots hosted by one robot_node; 1 = one namespaced node per robot
    observation: str = ObservationMode.ROTATING.value  # controller: 'rotating' k-subset subscriptions or 'aggregate'
    seed: int = 0
    lockstep: bool = True  # a step completes when every live robot and the controller answered
    step_period: float = 0.1  # s; free-running step period, or minimum step period in lockstep (0 = none)
    step_timeout: float = 1.0  # s; lockstep: missing answers after this count as dropped
    steps: int = 0  # sim_node stops after this many steps (0 = run until stopped)
    zones: str = ""  # zones YAML; '' = share/altmarl_ros/config/zones.yaml
    record_path: str = ""  # sim_node writes its per-step record (JSON) here at the end, the controller
    # its own beside it (controller_record_path); '' = none
    bag_path: str = ""  # sim_node records a rosbag2 (mcap) here; '' = none
    autostart: bool = True  # sim_node starts stepping once every node is matched (else waits for 'start')
    startup_timeout: float = 60.0  # s for every node to match and answer the first step
    tolerate_lost_robots: bool = False  # robots that never answer the first step: False = sim_node stops (exit 3)
    log_level: str = "info"
    fidelity: str = Fidelity.PLANAR.value  # mode 'physics': 'planar' base or 'wheeled' robots
    physics_rate: float = 10.0  # mode 'physics': Hz of simulated time at which robots' cmd_vel is applied
    marker_rate: float = 2.0  # Hz of sim_node's /swarm/markers (RViz/Foxglove); 0 = off
    respawn: int = 2  # times a robot_node or the controller that dies is started again (0 = never); never sim_node

    def __post_init__(self) -> None:
        ints = {"n_robots": 1, "k": 1, "robots_per_process": 1, "seed": 0, "steps": 0, "respawn": 0}
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"SwarmOptions.{name} must be an integer >= {low}, got {value!r}")
        if self.k > self.n_robots:
            raise InputError(f"SwarmOptions.k must be <= n_robots={self.n_robots}, got {self.k}")
        for name, allowed in (("sim", contract.values(Simulator)), ("mode", MODES),
                              ("observation", contract.values(ObservationMode)),
                              ("fidelity", contract.values(Fidelity)),
                              ("log_level", ("debug", "info", "warn", "error"))):
            if getattr(self, name) not in allowed:
                raise InputError(f"SwarmOptions.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("step_period", "step_timeout", "startup_timeout", "physics_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(f"SwarmOptions.{name} must be a finite number >= 0, got {value!r}")
        if self.step_timeout <= 0:
            raise InputError(f"SwarmOptions.step_timeout must be > 0, got {self.step_timeout!r}")
        if not 1.0 <= self.physics_rate <= 1000.0:
            raise InputError(f"SwarmOptions.physics_rate must be in [1, 1000] Hz, got {self.physics_rate!r}")
        if not self.lockstep and self.step_period <= 0:
            raise InputError("SwarmOptions.step_period must be > 0 when lockstep is False")
        for name in ("use_sim_time", "lockstep", "autostart", "tolerate_lost_robots"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"SwarmOptions.{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("policy", "zones", "record_path", "bag_path"):
            if not isinstance(getattr(self, name), str):
                raise InputError(f"SwarmOptions.{name} must be a string path, got {getattr(self, name)!r}")
        if self.observation == ObservationMode.POLLING and (self.robots_per_process == 1
                                                           or self.sim == Simulator.GAZEBO):
            raise InputError("SwarmOptions.observation 'polling' is answered by nodes hosting many simulated robots: "
                             "it needs sim='embedded' and robots_per_process > 1")
        if self.sim == Simulator.GAZEBO and not drives(self.mode):
            raise InputError(f"SwarmOptions.mode must be one that drives robots by cmd_vel with sim='gazebo' "
                             f"(Gazebo moves the robots), got {self.mode!r}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def controller_record_path(record_path: str) -> str:
    """Where the controller writes its per-step record: `<record_path stem>.controller.json` ('' = none)."""
    if not record_path:
        return ""
    base, _, _ = record_path.rpartition(".") if "." in record_path.rsplit("/", 1)[-1] else (record_path, "", "")
    return f"{base}.controller.json"


def plan(options: SwarmOptions) -> list[NodeSpec]:
    """The node set for `options`: sim_node (embedded only), controller_node, robot_node(s)."""
    names = robot_names(options.n_robots)
    common: dict[str, Any] = {"use_sim_time": options.use_sim_time, "zones_path": options.zones,
                              "policy_path": options.policy}
    specs: list[NodeSpec] = []
    free = not options.lockstep
    if options.sim == Simulator.EMBEDDED:
        specs.append(NodeSpec("sim_node", contract.SIM_NODE, "", {  # it publishes /clock: never on sim time itself
            **common, "use_sim_time": False, "marker_rate": float(options.marker_rate),
            "robots": names, "mode": options.mode, "lockstep": options.lockstep,
            "step_period": float(options.step_period), "step_timeout": float(options.step_timeout),
            "steps": options.steps, "seed": options.seed, "record_path": options.record_path,
            "bag_path": options.bag_path, "autostart": options.autostart,
            "startup_timeout": float(options.startup_timeout), "tolerate_lost_robots": options.tolerate_lost_robots,
            **({"fidelity": options.fidelity, "physics_rate": float(options.physics_rate)}
               if options.mode == SimMode.PHYSICS else {}),
        }))
    specs.append(NodeSpec("controller_node", contract.CONTROLLER_NODE, "", {
        **common, "robots": names, "k": options.k, "seed": options.seed + 1,
        "observation": options.observation, "record_path": controller_record_path(options.record_path),
        # decide (with the poses that arrived) before the simulator gives up on the step; otherwise a
        # controller that once waits for poses answers every later step one step late
        "pose_wait": min(0.5, 0.5 * float(options.step_timeout)),
        # With Gazebo nobody else clocks the decision steps: the controller publishes the ticks and
        # evolves the global state (the warehouse's active zone) with the game's P_g.
        "clock": (ControllerClock.TIMER if options.sim == Simulator.GAZEBO else ControllerClock.TICK).value,
        "step_period": float(options.step_period) if (free or options.sim == Simulator.GAZEBO) else 0.1,
    }))
    drive = drives(options.mode)
    if options.robots_per_process == 1:
        for i, name in enumerate(names):
            specs.append(NodeSpec("robot_node", contract.ROBOT_NODE, name, {
                **common, "seed": options.seed + 1000 + i, "drive": drive}))
    else:
        for j, start in enumerate(range(0, len(names), options.robots_per_process)):
            hosted = names[start:start + options.robots_per_process]
            specs.append(NodeSpec("robot_node", contract.robot_host_name(j), "", {
                **common, "robots": hosted, "seed": options.seed + 1000 + j, "drive": drive,
                # answers of the hosted robots travel as one message per step to the embedded simulator
                "batch_offset": start if options.sim == Simulator.EMBEDDED else -1}))
    return specs
