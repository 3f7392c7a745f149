"""Gazebo (gz-sim + ros_gz) side of the swarm, as plain data: bridge config, spawn poses, gz args.

Used by launch/swarm.launch.py for `sim:=gazebo`; imports neither launch nor rclpy, so it is tested
everywhere. How the topics meet (worlds/robot.sdf keeps every gz topic model-scoped, so one model file
serves all robots spawned as `robot_<i>`):

| ROS (contract, DESIGN 4)    | direction | gz topic                      | gz system in worlds/robot.sdf   |
|-----------------------------|-----------|-------------------------------|---------------------------------|
| /robot_<i>/cmd_vel  Twist   | ROS -> gz | /model/robot_<i>/cmd_vel      | DiffDrive (default topic)       |
| /robot_<i>/pose PoseStamped | gz -> ROS | /model/robot_<i>/pose (Pose)  | PosePublisher, model pose only  |
| /robot_<i>/odom Odometry    | gz -> ROS | /model/robot_<i>/odometry     | DiffDrive wheel odometry (lazy) |
| /clock Clock                | gz -> ROS | /clock                        | world                           |

The pose is the model's world pose (header.frame_id is the gz world name); the odometry is the
DiffDrive's wheel odometry, which starts at zero at the spawn pose. The bridge's pose publishers get
the contract's QoS (reliable, transient-local, depth 1) through `qos_overrides` parameters, without
which the controller's transient-local subscriptions would not match them.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from altmarl_ros.contract import CLOCK, CMD_VEL, ODOM, POSE, POSE_QOS, SimMode, Simulator, robot_topic
from altmarl_ros.errors import InputError
from altmarl_ros.ros.bringup import SwarmOptions
from altmarl_ros.zones import Zones

WORLD_FILE = "warehouse.sdf"
ROBOT_MODEL_FILE = "robot.sdf"
WORLD_NAME = "warehouse"
DIRECTIONS = ("GZ_TO_ROS", "ROS_TO_GZ", "BIDIRECTIONAL")
BRIDGE_KEYS = ("ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction")
OPTIONAL_BRIDGE_KEYS = ("subscriber_queue", "publisher_queue", "lazy")
# ROS type -> gz type pairs used here (ros_gz_bridge README, "message types that can be bridged").
TYPE_PAIRS = {
    "geometry_msgs/msg/Twist": "gz.msgs.Twist",
    "geometry_msgs/msg/PoseStamped": "gz.msgs.Pose",
    "nav_msgs/msg/Odometry": "gz.msgs.Odometry",
    "rosgraph_msgs/msg/Clock": "gz.msgs.Clock",
}
POSE_QOS_OVERRIDES = {"reliability": "reliable" if POSE_QOS.reliable else "best_effort",  # the contract's pose QoS
                      "durability": "transient_local" if POSE_QOS.transient_local else "volatile",
                      "history": "keep_last", "depth": POSE_QOS.depth}


def gz_model_topic(robot: str, leaf: str) -> str:
    """Model-scoped gz topic of a gz-sim system's default name: ('robot_3', 'cmd_vel') -> /model/robot_3/cmd_vel."""
    return f"/model/{robot}/{leaf}"


def bridge_config(robots: Sequence[str], *, clock: bool = True, odometry: bool = True) -> list[dict[str, Any]]:
    """ros_gz_bridge YAML entries (a list of maps) for `robots`, in the order clock, then per robot."""
    if len(set(robots)) != len(robots) or not all(robots):
        raise InputError("bridge_config: robot names must be unique and non-empty")
    entries: list[dict[str, Any]] = []
    if clock:
        entries.append(_entry(CLOCK, CLOCK, "rosgraph_msgs/msg/Clock", "GZ_TO_ROS"))
    for robot in robots:
        entries.append(_entry(robot_topic(robot, CMD_VEL), gz_model_topic(robot, "cmd_vel"), "geometry_msgs/msg/Twist",
                              "ROS_TO_GZ", subscriber_queue=1, publisher_queue=1))
        entries.append(_entry(robot_topic(robot, POSE), gz_model_topic(robot, "pose"), "geometry_msgs/msg/PoseStamped",
                              "GZ_TO_ROS", subscriber_queue=1, publisher_queue=1))
        if odometry:
            entries.append(_entry(robot_topic(robot, ODOM), gz_model_topic(robot, "odometry"), "nav_msgs/msg/Odometry",
                                  "GZ_TO_ROS", subscriber_queue=1, publisher_queue=1, lazy=True))
    return entries


def _entry(ros_topic: str, gz_topic: str, ros_type: str, direction: str, **extra: Any) -> dict[str, Any]:
    return {"ros_topic_name": ros_topic, "gz_topic_name": gz_topic, "ros_type_name": ros_type,
            "gz_type_name": TYPE_PAIRS[ros_type], "direction": direction, **extra}


def validate_bridge_config(entries: Any) -> None:
    """Raise ValueError if `entries` is not a valid ros_gz_bridge config of explicit, known mappings."""
    if not isinstance(entries, list) or not entries:
        raise InputError("bridge config: expected a non-empty YAML list of maps")
    seen: dict[tuple[str, str], int] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InputError(f"bridge config entry {i}: expected a map, got {type(entry).__name__}")
        missing = [key for key in BRIDGE_KEYS if key not in entry]
        unknown = sorted(set(entry) - set(BRIDGE_KEYS) - set(OPTIONAL_BRIDGE_KEYS))
        if missing or unknown:
            raise InputError(f"bridge config entry {i}: missing keys {missing}, unknown keys {unknown}")
        if entry["direction"] not in DIRECTIONS:
            raise InputError(f"bridge config entry {i}: direction must be one of {DIRECTIONS}")
        if TYPE_PAIRS.get(entry["ros_type_name"]) != entry["gz_type_name"]:
            raise InputError(f"bridge config entry {i}: {entry['ros_type_name']} does not bridge to "
                             f"{entry['gz_type_name']} here")
        for key in ("ros_topic_name", "gz_topic_name"):
            if not isinstance(entry[key], str) or not entry[key].startswith("/"):
                raise InputError(f"bridge config entry {i}: {key} must be an absolute topic name")
        for side in ("ros", "gz"):
            topic = (side, entry[f"{side}_topic_name"])
            if topic in seen:
                raise InputError(f"bridge config entries {seen[topic]} and {i} both bridge {side} topic {topic[1]}")
            seen[topic] = i


def bridge_yaml(robots: Sequence[str], *, header: str = "") -> str:
    """The bridge config for `robots` as YAML text, optionally under a comment header."""
    body = yaml.safe_dump(bridge_config(robots), sort_keys=False, default_flow_style=False)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + body


def bridge_parameters(config_file: str, robots: Sequence[str], *, use_sim_time: bool = True) -> dict[str, Any]:
    """Parameters of the `parameter_bridge` node: config file, sim time, pose publisher QoS overrides."""
    params: dict[str, Any] = {"config_file": str(config_file), "use_sim_time": bool(use_sim_time)}
    for robot in robots:
        for policy, value in POSE_QOS_OVERRIDES.items():
            params[f"qos_overrides.{robot_topic(robot, POSE)}.publisher.{policy}"] = value
    return params


@dataclass(frozen=True)
class SpawnPose:
    """Where robot `name` is spawned: (x, y, z) in metres, yaw in radians, inside zone `zone`."""

    name: str
    zone: int
    x: float
    y: float
    z: float
    yaw: float


def spawn_poses(robots: Sequence[str], zones: Zones, *, spacing: float = 0.45, z: float = 0.01,
                zone_of_robot: Sequence[int] | None = None) -> list[SpawnPose]:
    """Collision-free spawn poses: robot i starts in zone `zone_of_robot[i]` (default i mod n_zones).

    Each zone fills outward from its centre over a hexagonal lattice of pitch `spacing` (the robot is
    0.30 m x 0.25 m, 0.36 m across); a lattice point is used when the shared pose -> zone map puts it in
    its zone, it keeps `spacing` from the walls and from every robot of the other zones. ValueError
    when a zone cannot hold its robots at that spacing.
    """
    if not spacing > 0:
        raise InputError(f"spawn_poses: spacing must be > 0, got {spacing}")
    n = len(robots)
    assigned = np.arange(n) % zones.n_zones if zone_of_robot is None else np.asarray(zone_of_robot, dtype=int)
    if assigned.shape != (n,) or (n and (assigned.min() < 0 or assigned.max() >= zones.n_zones)):
        raise InputError(f"spawn_poses: zone_of_robot must hold {n} zone ids in [0, {zones.n_zones})")
    m = math.ceil(2 * zones.arena_half_size / spacing) + 1
    a, b = np.meshgrid(np.arange(-m, m + 1), np.arange(-m, m + 1), indexing="ij")
    lattice = spacing * np.stack([a + 0.5 * b, b * math.sqrt(3) / 2], axis=-1).reshape(-1, 2)
    lattice = lattice[np.lexsort((np.arctan2(lattice[:, 1], lattice[:, 0]), np.round(np.hypot(*lattice.T), 9)))]
    limit = zones.arena_half_size - spacing
    xy = np.zeros((n, 2))
    placed = np.empty((0, 2))
    for zone in range(zones.n_zones):
        members = np.flatnonzero(assigned == zone)
        points = zones.centres[zone] + lattice
        points = points[(np.abs(points).max(axis=1) <= limit) & (zones.zone_of(points) == zone)]
        if len(placed):  # clear of the robots already placed in the other zones
            clear = np.hypot(*(points[:, None, :] - placed[None, :, :]).transpose(2, 0, 1)).min(axis=1) >= spacing
            points = points[clear]
        if len(points) < len(members):
            raise InputError(f"spawn_poses: zone {zone} holds {len(points)} robots {spacing} m apart inside the "
                             f"walls, {len(members)} asked; lower n_robots or the spacing")
        xy[members] = points[:len(members)]
        placed = np.vstack([placed, points[:len(members)]])
    return [SpawnPose(name, int(assigned[i]), float(xy[i, 0]), float(xy[i, 1]), float(z), 0.0)
            for i, name in enumerate(robots)]


def create_parameters(pose: SpawnPose, *, world: str, model_file: str) -> dict[str, Any]:
    """ROS parameters of one `ros_gz_sim create` call (its parameter interface, ros_gz >= 1.0)."""
    return {"world": world, "file": str(model_file), "name": pose.name, "allow_renaming": False,
            "x": pose.x, "y": pose.y, "z": pose.z, "R": 0.0, "P": 0.0, "Y": pose.yaw}


def gz_args(world_file: str, *, headless: bool, verbosity: int = 3) -> str:
    """`gz_args` for ros_gz_sim's gz_sim.launch.py: run at once (-r), server only (-s) when headless."""
    return " ".join(["-r", *(["-s"] if headless else []), f"-v {int(verbosity)}", str(world_file)])


def world_name(world_file: str | Path) -> str:
    """The `<world name=...>` of an SDF world file (the world part of `/world/<name>/create`)."""
    world = ET.parse(world_file).getroot().find("world")
    name = world.get("name") if world is not None else None
    if not name:
        raise InputError(f"{world_file}: no <world name=...> element")
    return name


def parse_bool(text: str, *, name: str) -> bool:
    """Launch-style bool: true/false (also 1/0, yes/no, on/off), any case."""
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise InputError(f"launch argument {name} must be true or false, got {text!r}")


def options_from_launch_arguments(values: Mapping[str, str]) -> SwarmOptions:
    """SwarmOptions from resolved launch-argument strings (typed by the field defaults).

    'auto' (or '') for `mode` means kinematic with sim:=gazebo, else model; for `use_sim_time` it
    means true with sim:=gazebo, else false. Unknown names and bad values raise ValueError.
    """
    known = {f.name: f for f in fields(SwarmOptions)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(f"unknown swarm launch arguments {unknown}; known: {sorted(known)}")
    sim = str(values.get("sim", SwarmOptions.sim)).strip()
    kwargs: dict[str, Any] = {}
    for name, text in values.items():
        text = str(text).strip()
        default = known[name].default
        if name == "mode" and text in ("", "auto"):
            kwargs[name] = (SimMode.KINEMATIC if sim == Simulator.GAZEBO else SimMode.MODEL).value
        elif name == "use_sim_time" and text in ("", "auto"):
            kwargs[name] = sim == Simulator.GAZEBO
        elif isinstance(default, bool):
            kwargs[name] = parse_bool(text, name=name)
        elif isinstance(default, (int, float)):
            try:
                kwargs[name] = type(default)(text)
            except ValueError as exc:
                raise InputError(f"launch argument {name} must be {type(default).__name__}, got {text!r}") from exc
        else:
            kwargs[name] = text
    return SwarmOptions(**kwargs)


def launch_default(name: str) -> str:
    """The launch-argument default text of SwarmOptions field `name` (bools as true/false)."""
    default = {f.name: f.default for f in fields(SwarmOptions)}[name]
    return str(default).lower() if isinstance(default, bool) else str(default)
