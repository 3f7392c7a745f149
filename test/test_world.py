"""worlds/warehouse.sdf and worlds/robot.sdf: well-formed SDF, the systems Gazebo needs, zones = config."""

from __future__ import annotations

import inspect
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from altmarl_ros.ros import gazebo
from altmarl_ros.zones import load_zones

ROOT = Path(__file__).resolve().parents[1]
WORLD = ROOT / "worlds" / gazebo.WORLD_FILE
ROBOT = ROOT / "worlds" / gazebo.ROBOT_MODEL_FILE
ZONES = load_zones(ROOT / "config" / "zones.yaml")


def floats(text: str | None) -> list[float]:
    return [float(v) for v in (text or "").split()]


def pose6(element: ET.Element) -> list[float]:
    """The element's own <pose> (6 numbers, zeros when absent)."""
    pose = element.find("pose")
    values = floats(pose.text) if pose is not None else []
    return values + [0.0] * (6 - len(values))


def version(root: ET.Element) -> tuple[int, ...]:
    return tuple(int(v) for v in root.get("version", "0").split("."))


@pytest.fixture(scope="module")
def world() -> ET.Element:
    root = ET.parse(WORLD).getroot()
    assert root.tag == "sdf" and version(root) >= (1, 9)
    worlds = root.findall("world")
    assert len(worlds) == 1
    return worlds[0]


@pytest.fixture(scope="module")
def robot() -> ET.Element:
    root = ET.parse(ROBOT).getroot()
    assert root.tag == "sdf" and version(root) >= (1, 9)
    models = root.findall("model")
    assert len(models) == 1 and root.find("world") is None
    return models[0]


def models(world: ET.Element) -> dict[str, ET.Element]:
    return {m.get("name"): m for m in world.findall("model")}


def plugin(element: ET.Element, filename: str) -> ET.Element:
    found = [p for p in element.findall("plugin") if p.get("filename") == filename]
    assert len(found) == 1, f"expected one {filename} plugin"
    return found[0]


def test_world_has_physics_systems_light_and_ground(world):
    assert world.get("name") == gazebo.WORLD_NAME == gazebo.world_name(WORLD)
    assert floats(world.findtext("physics/max_step_size"))[0] > 0
    assert plugin(world, "gz-sim-physics-system").get("name") == "gz::sim::systems::Physics"
    # UserCommands serves /world/<name>/create, which `ros_gz_sim create` calls to spawn the robots.
    assert plugin(world, "gz-sim-user-commands-system").get("name") == "gz::sim::systems::UserCommands"
    assert plugin(world, "gz-sim-scene-broadcaster-system").get("name") == "gz::sim::systems::SceneBroadcaster"
    sun = [light for light in world.findall("light") if light.get("name") == "sun"]
    assert len(sun) == 1 and sun[0].get("type") == "directional"
    ground = models(world)["ground_plane"]
    assert ground.findtext("static") == "true"
    assert floats(ground.findtext("link/collision/geometry/plane/normal")) == [0, 0, 1]


def test_world_holds_no_robot(world):
    """Robots are spawned by the launch file; the world has only static scenery."""
    for name, model in models(world).items():
        assert model.findtext("static") == "true", name
        assert not name.startswith("robot_")


def test_zone_markers_match_config(world):
    zone_models = {n: m for n, m in models(world).items() if re.fullmatch(r"zone_\d+", n)}
    assert sorted(zone_models) == [f"zone_{i}" for i in range(ZONES.n_zones)]
    for i, centre in enumerate(ZONES.centres):
        model = zone_models[f"zone_{i}"]
        x, y, *_ = pose6(model)
        assert (x, y) == pytest.approx(tuple(centre), abs=1e-5)
        assert ZONES.zone_of(np.array([x, y])) == i
        assert model.findtext("static") == "true"
        assert model.find(".//collision") is None, "zone markers are visual only"
        visuals = model.findall(".//visual")
        assert len(visuals) == 1
        assert floats(visuals[0].findtext("geometry/cylinder/radius"))[0] == pytest.approx(ZONES.zone_radius)
        assert floats(visuals[0].findtext("geometry/cylinder/length"))[0] < 0.01  # a flat disc on the floor


def test_walls_enclose_the_ring(world):
    """Four axis-aligned boxes whose inner faces sit at +-arena_half_size and that close the corners."""
    half = ZONES.arena_half_size
    boxes = []
    for model in world.findall("model"):
        mx, my, *_ = pose6(model)
        for link in model.findall("link"):
            for collision in link.findall("collision"):
                size = collision.find("geometry/box/size")
                if size is None:
                    continue
                lx, ly, lz, *rot = pose6(link)
                assert rot == [0, 0, 0], "walls are axis aligned"
                sx, sy, sz = floats(size.text)
                cx, cy = mx + lx, my + ly
                boxes.append((cx - sx / 2, cx + sx / 2, cy - sy / 2, cy + sy / 2, lz + sz / 2))
    assert len(boxes) == 4
    inner = {"east": min(b[0] for b in boxes if b[0] > 0), "west": max(b[1] for b in boxes if b[1] < 0),
             "north": min(b[2] for b in boxes if b[2] > 0), "south": max(b[3] for b in boxes if b[3] < 0)}
    assert inner == pytest.approx({"east": half, "west": -half, "north": half, "south": -half})
    for x0, x1, y0, y1, top in boxes:
        assert top > 0.2  # taller than the robots
        spans_x, spans_y = x1 - x0, y1 - y0
        assert max(spans_x, spans_y) >= 2 * half + min(spans_x, spans_y) - 1e-9, "walls must close the corners"
    assert ZONES.ring_radius + ZONES.zone_radius < half
    corners = ZONES.centres[:, None, :] + ZONES.zone_radius * np.array([[1, 0], [-1, 0], [0, 1], [0, -1]])
    assert np.abs(corners).max() < half


def test_robot_model_diff_drive(robot):
    links = {link.get("name"): link for link in robot.findall("link")}
    joints = {joint.get("name"): joint for joint in robot.findall("joint")}
    for name, link in links.items():
        assert floats(link.findtext("inertial/mass"))[0] > 0, name
    drive = plugin(robot, "gz-sim-diff-drive-system")
    assert drive.get("name") == "gz::sim::systems::DiffDrive"
    left, right = joints[drive.findtext("left_joint")], joints[drive.findtext("right_joint")]
    wheel_y = []
    for joint in (left, right):
        assert joint.get("type") == "revolute"
        assert joint.findtext("parent") in links
        wheel = links[joint.findtext("child")]
        radius = floats(wheel.findtext("collision/geometry/cylinder/radius"))[0]
        assert radius == pytest.approx(floats(drive.findtext("wheel_radius"))[0])
        _, y, z, roll, *_ = pose6(wheel)
        assert z == pytest.approx(radius), "wheels touch the floor of the model frame"
        assert roll == pytest.approx(-math.pi / 2, abs=1e-6), "wheel axis (its z) along the model's +y"
        assert floats(joint.findtext("axis/xyz")) == [0, 0, 1]
        wheel_y.append(y)
    assert wheel_y[0] > 0 > wheel_y[1], "left wheel on +y"
    assert wheel_y[0] - wheel_y[1] == pytest.approx(floats(drive.findtext("wheel_separation"))[0])
    # Model-scoped default topics only: one model file serves every spawned robot_<i>, and
    # gazebo.bridge_config relies on /model/<name>/{cmd_vel,odometry,pose}.
    for element in ("topic", "odom_topic", "tf_topic"):
        assert drive.find(element) is None


def test_robot_model_pose_publisher(robot):
    pose = plugin(robot, "gz-sim-pose-publisher-system")
    assert pose.get("name") == "gz::sim::systems::PosePublisher"
    expected = {"publish_model_pose": "true", "publish_nested_model_pose": "true", "publish_link_pose": "false",
                "publish_visual_pose": "false", "publish_collision_pose": "false", "publish_sensor_pose": "false",
                "use_pose_vector_msg": "false", "static_publisher": "false"}
    assert {key: pose.findtext(key) for key in expected} == expected
    assert floats(pose.findtext("update_frequency"))[0] > 0
    assert pose.find("topic") is None
    # An OdometryPublisher's default topics would collide with DiffDrive's odometry and this pose topic.
    assert not [p for p in robot.findall("plugin") if p.get("filename") == "gz-sim-odometry-publisher-system"]
    names = [p.get("name") for p in robot.findall("plugin")]
    assert len(names) == len(set(names))


def footprint_reach(robot: ET.Element) -> float:
    """Farthest point of the robot's collisions from its origin, top view (m)."""
    reach = 0.0
    for link in robot.findall("link"):
        lx, ly, *_ = pose6(link)
        for collision in link.findall("collision"):
            cx, cy, *_ = pose6(collision)
            geometry = collision.find("geometry")
            box = geometry.find("box/size")
            if box is not None:
                sx, sy, _ = floats(box.text)
                extent = math.hypot(sx / 2, sy / 2)
            else:
                extent = max(floats(geometry.findtext("cylinder/radius") or geometry.findtext("sphere/radius")))
            reach = max(reach, math.hypot(lx + cx, ly + cy) + extent)
    return reach


def test_robot_fits_the_spawn_spacing(robot):
    """The robot's footprint (all collisions, top view) fits inside the default spawn spacing."""
    assert 2 * footprint_reach(robot) < inspect.signature(gazebo.spawn_poses).parameters["spacing"].default


def test_parking_slots_lie_in_their_zone_and_hold_a_robot_each(robot):
    """robot_node's goal points (`Zones.goal_points` at `goal_spacing` 0.5 m): every slot of every zone
    is in that zone (the shared pose -> zone map), neighbouring slots are farther apart than two robot
    footprints' reach, and a robot moving one zone keeps its offset (the centre-to-centre displacement that
    the decision period is computed for)."""
    zones = load_zones(ROOT / "config" / "zones.yaml")
    spacing = 0.5
    capacity = zones.slot_capacity(spacing)
    robots = np.arange(3 * capacity)  # indices wrap around the slots
    for zone in range(zones.n_zones):
        points = zones.goal_points(np.full(robots.size, zone), robots, spacing)
        assert (zones.zone_of(points) == zone).all()
        assert (np.abs(points) < zones.arena_half_size - spacing / 2).all()
        slots = points[:capacity]
        gaps = np.linalg.norm(slots[:, None] - slots[None], axis=-1) + np.eye(capacity) * 1e9
        assert gaps.min() > 2 * footprint_reach(robot)
        np.testing.assert_allclose(points[capacity:2 * capacity], slots)
    step = zones.goal_points(np.ones(robots.size, int), robots, spacing) - zones.goal_points(
        np.zeros(robots.size, int), robots, spacing)
    np.testing.assert_allclose(step, np.broadcast_to(zones.centres[1] - zones.centres[0], step.shape), atol=1e-12)
    np.testing.assert_array_equal(zones.goal_points(np.array([2, 3]), np.array([7, 8]), 0.0), zones.centres[[2, 3]])
