"""The world every simulator builds, read from the one source of truth (ROS-free, no MuJoCo).

`load_world()` reads worlds/warehouse.sdf (ground plane, wall boxes, zone markers), config/zones.yaml
(zone centres, pose -> zone) and worlds/robot.sdf (chassis box, masses, wheel radius and separation,
caster, DiffDrive speed and acceleration limits) into frozen records. The MuJoCo engine
(`altmarl_ros.physics.engine`) builds its model from these records only, and test/test_physics_world.py
holds them against the SDF files and the zone config, so Gazebo and MuJoCo see one world.

Frames: world x, y on the floor, z up; the robot's model frame sits on the floor under the chassis,
x forward, y left (as in worlds/robot.sdf).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from altmarl_ros.errors import UserError
from altmarl_ros.zones import Zones, load_zones


@dataclass(frozen=True)
class Wall:
    """An axis-aligned static box: centre (x, y, z) and full size (sx, sy, sz), metres."""

    name: str
    centre: tuple[float, float, float]
    size: tuple[float, float, float]


@dataclass(frozen=True)
class ZoneMarker:
    """A visual-only zone disc of the SDF: centre (x, y) and radius."""

    name: str
    centre: tuple[float, float]
    radius: float


@dataclass(frozen=True)
class RobotModel:
    """Differential-drive robot of worlds/robot.sdf, in its model frame (metres, kg, s)."""

    chassis_size: tuple[float, float, float]  # box (length x, width y, height z)
    chassis_pos: tuple[float, float, float]  # box centre
    chassis_mass: float
    chassis_inertia: tuple[float, float, float]  # ixx, iyy, izz
    wheel_radius: float
    wheel_width: float  # cylinder length
    wheel_mass: float
    wheel_inertia: tuple[float, float, float]  # in the wheel frame: ixx, iyy, izz (izz about the axle)
    wheel_x: float  # wheel centres at (wheel_x, +-wheel_separation / 2, wheel_radius)
    wheel_separation: float
    caster_pos: tuple[float, float, float]  # caster centre in the model frame
    caster_radius: float
    max_linear_velocity: float  # m/s, symmetric limits (the SDF's min is -max)
    max_angular_velocity: float  # rad/s
    max_linear_acceleration: float  # m/s^2
    max_angular_acceleration: float  # rad/s^2

    @property
    def mass(self) -> float:
        return self.chassis_mass + 2 * self.wheel_mass

    @property
    def footprint_radius(self) -> float:
        """Radius of the smallest circle around the model origin that holds the top view of every collision."""
        hx, hy = self.chassis_size[0] / 2, self.chassis_size[1] / 2
        cx, cy = self.chassis_pos[0], self.chassis_pos[1]
        corners = max(math.hypot(cx + sx * hx, cy + sy * hy) for sx in (-1, 1) for sy in (-1, 1))
        wheels = math.hypot(abs(self.wheel_x) + self.wheel_radius, self.wheel_separation / 2 + self.wheel_width / 2)
        return max(corners, wheels)

    @property
    def yaw_inertia(self) -> float:
        """izz of the whole robot about its model origin's vertical axis (chassis + wheels, parallel axis)."""
        wheel_izz = self.wheel_inertia[0] + self.wheel_mass * (self.wheel_x ** 2 + (self.wheel_separation / 2) ** 2)
        offset2 = self.chassis_pos[0] ** 2 + self.chassis_pos[1] ** 2
        chassis_izz = self.chassis_inertia[2] + self.chassis_mass * offset2
        return chassis_izz + 2 * wheel_izz


@dataclass(frozen=True)
class World:
    """Floor, walls, zone layout and the robot model, as read from the SDF files and zones.yaml."""

    name: str
    physics_step: float  # s, the SDF's max_step_size
    walls: tuple[Wall, ...]
    markers: tuple[ZoneMarker, ...]
    zones: Zones
    robot: RobotModel

    def neighbour_distance(self) -> float:
        """Distance between the centres of two neighbouring zones on the ring (m)."""
        c = self.zones.centres
        return float(np.linalg.norm(c[1] - c[0]))

    def decision_period(self, *, speed: float | None = None) -> float:
        """Simulated seconds a robot needs to go from its zone's centre to a neighbour's centre.

        Straight line at the speed limit (`speed`, default the SDF's max_linear_velocity) with the SDF's
        acceleration limit at both ends: d / v + v / a (a trapezoidal profile; d >= v^2 / a here).
        This is the default decision step of `mode: physics`: one step is long enough for a robot that
        is told to move one zone to arrive, and no longer.
        """
        v = self.robot.max_linear_velocity if speed is None else min(speed, self.robot.max_linear_velocity)
        a = self.robot.max_linear_acceleration
        d = self.neighbour_distance()
        if d < v * v / a:  # triangular profile
            return 2 * math.sqrt(d / a)
        return d / v + v / a


class WorldFileError(UserError, ValueError):
    """A world, robot or zones file is missing something the simulator needs (the message names it)."""


def _floats(text: str | None, n: int, where: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in (text or "").split())
    except ValueError as exc:
        raise WorldFileError(f"{where}: not numbers: {text!r}") from exc
    if len(values) != n:
        raise WorldFileError(f"{where}: expected {n} numbers, got {text!r}")
    return values


def _pose(element: ET.Element, where: str) -> tuple[float, ...]:
    pose = element.find("pose")
    return (0.0,) * 6 if pose is None else _floats(pose.text, 6, f"{where}/pose")


def _need(element: ET.Element, path: str, where: str) -> ET.Element:
    found = element.find(path)
    if found is None:
        raise WorldFileError(f"{where}: missing <{path}>")
    return found


def _number(element: ET.Element, path: str, where: str) -> float:
    return _floats(_need(element, path, where).text, 1, f"{where}/{path}")[0]


def _root(path: Path, tag: str) -> ET.Element:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise WorldFileError(f"{path}: cannot read SDF: {exc}") from exc
    found = root.find(tag)
    if root.tag != "sdf" or found is None:
        raise WorldFileError(f"{path}: expected <sdf><{tag}>")
    return found


def read_warehouse(path: Path) -> tuple[str, float, tuple[Wall, ...], tuple[ZoneMarker, ...]]:
    """Walls (static box collisions, model pose + link pose, no rotation) and zone_<i> marker discs."""
    world = _root(path, "world")
    step = _number(world, "physics/max_step_size", f"{path}: world")
    walls, markers = [], []
    for model in world.findall("model"):
        name = model.get("name", "")
        mx, my, mz, *mrot = _pose(model, f"{path}: model {name}")
        if name.startswith("zone_"):
            disc = _need(model, "link/visual/geometry/cylinder", f"{path}: model {name}")
            markers.append(ZoneMarker(name, (mx, my), _number(disc, "radius", f"{path}: {name}")))
            continue
        for link in model.findall("link"):
            where = f"{path}: model {name} link {link.get('name')}"
            lx, ly, lz, *lrot = _pose(link, where)
            for collision in link.findall("collision"):
                box = collision.find("geometry/box/size")
                if box is None:
                    continue
                cx, cy, cz, *crot = _pose(collision, where)
                if any(abs(r) > 1e-9 for r in (*mrot, *lrot, *crot)):
                    raise WorldFileError(f"{where}: rotated wall boxes are not supported")
                size = _floats(box.text, 3, f"{where}/box/size")
                walls.append(Wall(f"{name}/{link.get('name')}", (mx + lx + cx, my + ly + cy, mz + lz + cz),
                                  (size[0], size[1], size[2])))
    markers.sort(key=lambda m: int(m.name.split("_")[1]))
    return world.get("name", ""), step, tuple(walls), tuple(markers)


def read_robot(path: Path) -> RobotModel:
    """The chassis box, the two DiffDrive wheels, the caster sphere and the DiffDrive limits."""
    model = _root(path, "model")
    links = {link.get("name"): link for link in model.findall("link")}
    joints = {joint.get("name"): joint for joint in model.findall("joint")}
    drive = [p for p in model.findall("plugin") if p.get("filename") == "gz-sim-diff-drive-system"]
    if len(drive) != 1:
        raise WorldFileError(f"{path}: expected one gz-sim-diff-drive-system plugin")
    plugin, where = drive[0], f"{path}: DiffDrive"
    wheel_links = []
    for side in ("left_joint", "right_joint"):
        joint = joints.get(_need(plugin, side, where).text)
        if joint is None:
            raise WorldFileError(f"{where}: <{side}> names no joint")
        child = links.get(_need(joint, "child", f"{path}: joint {joint.get('name')}").text)
        if child is None:
            raise WorldFileError(f"{path}: joint {joint.get('name')}: child link not found")
        wheel_links.append(child)
    parents = {_need(joints[_need(plugin, s, where).text], "parent", where).text for s in ("left_joint", "right_joint")}
    if len(parents) != 1:
        raise WorldFileError(f"{where}: both wheels must hang from one chassis link")
    chassis = links[parents.pop()]
    cwhere = f"{path}: link {chassis.get('name')}"
    box_collisions = [c for c in chassis.findall("collision") if c.find("geometry/box") is not None]
    sphere_collisions = [c for c in chassis.findall("collision") if c.find("geometry/sphere") is not None]
    if len(box_collisions) != 1 or len(sphere_collisions) != 1:
        raise WorldFileError(f"{cwhere}: expected one box (chassis) and one sphere (caster) collision")
    px, py, pz, *_ = _pose(chassis, cwhere)
    bx, by, bz, *_ = _pose(box_collisions[0], cwhere)
    sx, sy, sz, *_ = _pose(sphere_collisions[0], cwhere)
    inertia = _need(chassis, "inertial/inertia", cwhere)
    left, right = wheel_links
    lwhere = f"{path}: link {left.get('name')}"
    lx, ly, lz, *_ = _pose(left, lwhere)
    rx, ry, *_ = _pose(right, f"{path}: link {right.get('name')}")
    winertia = _need(left, "inertial/inertia", lwhere)
    sep = _number(plugin, "wheel_separation", where)
    radius = _number(plugin, "wheel_radius", where)
    if abs((ly - ry) - sep) > 1e-6 or abs(lx - rx) > 1e-9 or abs(lz - radius) > 1e-6:
        raise WorldFileError(f"{where}: wheel poses disagree with wheel_separation/wheel_radius")

    def symmetric(key: str) -> float:
        high, low = _number(plugin, f"max_{key}", where), _number(plugin, f"min_{key}", where)
        if abs(high + low) > 1e-9:
            raise WorldFileError(f"{where}: min_{key} must be -max_{key} (asymmetric limits are not supported)")
        return high

    return RobotModel(
        chassis_size=_floats(_need(box_collisions[0], "geometry/box/size", cwhere).text, 3, cwhere),  # type: ignore[arg-type]
        chassis_pos=(px + bx, py + by, pz + bz),
        chassis_mass=_number(chassis, "inertial/mass", cwhere),
        chassis_inertia=(_number(inertia, "ixx", cwhere), _number(inertia, "iyy", cwhere),
                         _number(inertia, "izz", cwhere)),
        wheel_radius=radius,
        wheel_width=_number(left, "collision/geometry/cylinder/length", lwhere),
        wheel_mass=_number(left, "inertial/mass", lwhere),
        wheel_inertia=(_number(winertia, "ixx", lwhere), _number(winertia, "iyy", lwhere),
                       _number(winertia, "izz", lwhere)),
        wheel_x=lx, wheel_separation=sep,
        caster_pos=(px + sx, py + sy, pz + sz),
        caster_radius=_number(sphere_collisions[0], "geometry/sphere/radius", cwhere),
        max_linear_velocity=symmetric("linear_velocity"),
        max_angular_velocity=symmetric("angular_velocity"),
        max_linear_acceleration=symmetric("linear_acceleration"),
        max_angular_acceleration=symmetric("angular_acceleration"),
    )


def load_world(world_sdf: str | Path | None = None, robot_sdf: str | Path | None = None,
               zones_yaml: str | Path | None = None) -> World:
    """Read the world; None = the installed share/altmarl_ros files (the source tree's when not installed).

    Raises WorldFileError naming the file and the element when the files disagree (walls vs
    arena_half_size, markers vs zone centres) or lack what the simulator needs.
    """
    from altmarl_ros.paths import share_path

    world_sdf = Path(world_sdf) if world_sdf else share_path("worlds/warehouse.sdf")
    robot_sdf = Path(robot_sdf) if robot_sdf else share_path("worlds/robot.sdf")
    zones = load_zones(Path(zones_yaml) if zones_yaml else share_path("config/zones.yaml"))
    name, step, walls, markers = read_warehouse(world_sdf)
    robot = read_robot(robot_sdf)
    if len(markers) != zones.n_zones:
        raise WorldFileError(f"{world_sdf}: {len(markers)} zone markers, zones.yaml has n_zones={zones.n_zones}")
    for i, (marker, centre) in enumerate(zip(markers, zones.centres, strict=True)):
        if marker.name != f"zone_{i}" or np.hypot(*(np.array(marker.centre) - centre)) > 1e-4:
            raise WorldFileError(f"{world_sdf}: {marker.name} at {marker.centre} is not zone {i}'s centre "
                                 f"{tuple(np.round(centre, 6))} of zones.yaml")
    half = zones.arena_half_size
    faces = {"east": min((w.centre[0] - w.size[0] / 2 for w in walls if w.centre[0] > 0 and w.size[0] < w.size[1]),
                         default=math.nan),
             "west": max((w.centre[0] + w.size[0] / 2 for w in walls if w.centre[0] < 0 and w.size[0] < w.size[1]),
                         default=math.nan),
             "north": min((w.centre[1] - w.size[1] / 2 for w in walls if w.centre[1] > 0 and w.size[1] < w.size[0]),
                          default=math.nan),
             "south": max((w.centre[1] + w.size[1] / 2 for w in walls if w.centre[1] < 0 and w.size[1] < w.size[0]),
                          default=math.nan)}
    for side, face in faces.items():
        if not abs(abs(face) - half) < 1e-6:
            raise WorldFileError(f"{world_sdf}: the {side} wall's inner face is at {face}, zones.yaml's "
                                 f"arena_half_size is {half}")
    return World(name, step, walls, markers, zones, robot)
