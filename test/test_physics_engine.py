"""The MuJoCo world matches the SDF; robots follow differential-drive kinematics; robots do not pass through.

The SDF side of every comparison is read here with ElementTree, independently of
altmarl_ros.physics.world, and compared with the compiled MuJoCo model (not with the World record).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")

from altmarl_ros.physics.engine import EngineOptions, PhysicsEngine  # noqa: E402
from altmarl_ros.physics.world import WorldFileError, load_world  # noqa: E402
from altmarl_ros.zones import load_zones  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORLD_SDF, ROBOT_SDF, ZONES_YAML = ROOT / "worlds/warehouse.sdf", ROOT / "worlds/robot.sdf", ROOT / "config/zones.yaml"
FIDELITIES = ("planar", "wheeled")


def floats(text):
    return [float(v) for v in text.split()]


def pose(element):
    p = element.find("pose")
    return floats(p.text) if p is not None else [0.0] * 6


@pytest.fixture(scope="module")
def world():
    return load_world(WORLD_SDF, ROBOT_SDF, ZONES_YAML)


def geom(model, name):
    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)


def body(model, name):
    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_mujoco_walls_are_the_sdf_walls(world, fidelity):
    engine = PhysicsEngine(world, np.zeros((1, 2)), np.zeros(1), EngineOptions(fidelity=fidelity))
    m = engine.model
    sdf_boxes = []
    for model in ET.parse(WORLD_SDF).getroot().find("world").findall("model"):
        mx, my, mz = pose(model)[:3]
        for link in model.findall("link"):
            lx, ly, lz = pose(link)[:3]
            for collision in link.findall("collision"):
                size = collision.find("geometry/box/size")
                if size is not None:
                    sdf_boxes.append(((mx + lx, my + ly, mz + lz), tuple(floats(size.text))))
    boxes = [i for i in range(m.ngeom) if m.geom_type[i] == mujoco.mjtGeom.mjGEOM_BOX and m.geom_bodyid[i] == 0]
    assert len(boxes) == len(sdf_boxes) == 4
    found = sorted((*m.geom_pos[i], *(2 * m.geom_size[i])) for i in boxes)
    np.testing.assert_allclose(found, sorted((*c, *s) for c, s in sdf_boxes), atol=1e-9)
    # walls collide with robots (bits 2/2) and the floor is a plane at z = 0 touched only by wheels
    for i in boxes:
        assert (m.geom_contype[i], m.geom_conaffinity[i]) == (2, 2)
    floor = geom(m, "floor")
    assert m.geom_type[floor] == mujoco.mjtGeom.mjGEOM_PLANE and m.geom_pos[floor][2] == 0


def test_zones_and_markers_are_the_configs(world):
    zones = load_zones(ZONES_YAML)
    np.testing.assert_allclose(world.zones.centres, zones.centres)
    markers = {m.get("name"): pose(m)[:2] for m in ET.parse(WORLD_SDF).getroot().find("world").findall("model")
               if m.get("name", "").startswith("zone_")}
    for i, centre in enumerate(zones.centres):
        assert markers[f"zone_{i}"] == pytest.approx(list(centre), abs=1e-5)
        assert world.markers[i].centre == pytest.approx(tuple(centre), abs=1e-5)


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_mujoco_robot_is_the_sdf_robot(world, fidelity):
    engine = PhysicsEngine(world, np.zeros((1, 2)), np.zeros(1), EngineOptions(fidelity=fidelity))
    m = engine.model
    sdf = ET.parse(ROBOT_SDF).getroot().find("model")
    links = {link.get("name"): link for link in sdf.findall("link")}
    chassis = links["chassis"]
    box = floats(chassis.find("collision/geometry/box/size").text)
    g = geom(m, "r0_chassis")
    np.testing.assert_allclose(2 * m.geom_size[g], box)
    assert m.geom_pos[g][2] == pytest.approx(pose(chassis)[2])
    masses = [float(link.findtext("inertial/mass")) for link in links.values()]
    drive = next(p for p in sdf.findall("plugin") if p.get("filename") == "gz-sim-diff-drive-system")
    radius, separation = float(drive.findtext("wheel_radius")), float(drive.findtext("wheel_separation"))
    for key in ("linear_velocity", "angular_velocity", "linear_acceleration", "angular_acceleration"):
        assert float(drive.findtext(f"max_{key}")) == getattr(world.robot, f"max_{key}")
    assert engine.v_max == float(drive.findtext("max_linear_velocity"))
    assert engine.a_max == float(drive.findtext("max_linear_acceleration"))
    if fidelity == "planar":
        assert m.body_mass[body(m, "r0")] == pytest.approx(sum(masses))
        assert m.njnt == 3 and m.nu == 3
    else:
        assert m.body_mass[body(m, "r0")] == pytest.approx(float(chassis.findtext("inertial/mass")))
        inertia = chassis.find("inertial/inertia")
        np.testing.assert_allclose(m.body_inertia[body(m, "r0")],
                                   [float(inertia.findtext(k)) for k in ("ixx", "iyy", "izz")], rtol=1e-3)
        for side, link in (("L", links["left_wheel"]), ("R", links["right_wheel"])):
            w = geom(m, f"r0_wheel{side}")
            assert m.geom_size[w][0] == pytest.approx(radius)
            assert 2 * m.geom_size[w][1] == pytest.approx(float(link.findtext("collision/geometry/cylinder/length")))
            assert m.body_mass[body(m, f"r0_w{side}")] == pytest.approx(float(link.findtext("inertial/mass")))
            np.testing.assert_allclose(m.body_pos[body(m, f"r0_w{side}")], pose(link)[:3], atol=1e-9)
        left, right = m.body_pos[body(m, "r0_wL")], m.body_pos[body(m, "r0_wR")]
        assert left[1] - right[1] == pytest.approx(separation)
        caster_sdf = next(c for c in chassis.findall("collision") if c.find("geometry/sphere") is not None)
        c = geom(m, "r0_caster")
        assert m.geom_size[c][0] == pytest.approx(float(caster_sdf.findtext("geometry/sphere/radius")))
        np.testing.assert_allclose(m.geom_pos[c], np.add(pose(chassis)[:3], pose(caster_sdf)[:3]), atol=1e-9)
        assert m.geom_friction[c][0] == 0  # the SDF's mu = 0 caster


def test_world_that_disagrees_with_zones_fails_clearly(world, tmp_path):
    moved = tmp_path / "warehouse.sdf"
    moved.write_text(WORLD_SDF.read_text().replace("<pose>7.1 0 0.25 0 0 0</pose>", "<pose>7.6 0 0.25 0 0 0</pose>"))
    with pytest.raises(WorldFileError, match=r"east wall's inner face is at 7\.5"):
        load_world(moved, ROBOT_SDF, ZONES_YAML)
    shifted = tmp_path / "zones.yaml"
    shifted.write_text(ZONES_YAML.read_text().replace("ring_radius: 4.0", "ring_radius: 4.5"))
    with pytest.raises(WorldFileError, match=r"zone_0 at .* is not zone 0's centre"):
        load_world(WORLD_SDF, ROBOT_SDF, shifted)


def unicycle_reference(world, v, w, yaw0, seconds, dt=1e-4):
    """Differential-drive kinematics under the SDF's speed/acceleration limits, integrated finely (no physics)."""
    robot = world.robot
    target = np.array([np.clip(v, -robot.max_linear_velocity, robot.max_linear_velocity),
                       np.clip(w, -robot.max_angular_velocity, robot.max_angular_velocity)])
    step = np.array([robot.max_linear_acceleration, robot.max_angular_acceleration]) * dt
    applied, x, y, th = np.zeros(2), 0.0, 0.0, yaw0
    for _ in range(round(seconds / dt)):
        applied += np.clip(target - applied, -step, step)
        x += applied[0] * math.cos(th) * dt
        y += applied[0] * math.sin(th) * dt
        th += applied[1] * dt
    return np.array([x, y]), math.atan2(math.sin(th), math.cos(th))


# Tolerances, relative to the distance travelled and the angle turned: the planar base is servoed to the
# kinematics (2 %); the wheeled robot's tyres creep in turns (soft contacts, two contact points across each
# cylinder's width), measured at 5 % less yaw rate than commanded at w = 0.8 rad/s, so 15 % of the path.
@pytest.mark.parametrize("fidelity,tolerance", [("planar", 0.02), ("wheeled", 0.15)])
@pytest.mark.parametrize("v,w", [(0.5, 0.0), (0.6, 0.8), (1.5, -3.0)])  # the last one exceeds both limits
def test_constant_cmd_vel_follows_diff_drive(world, fidelity, tolerance, v, w):
    yaw0 = 0.7
    engine = PhysicsEngine(world, np.array([[-2.0, -1.0]]), np.array([yaw0]), EngineOptions(fidelity=fidelity))
    engine.set_cmd_vel(np.array([[v, w]]))
    engine.advance(4.0)
    xy_ref, yaw_ref = unicycle_reference(world, v, w, yaw0, 4.0)
    xy, yaw = engine.pose()
    travelled = 4.0 * min(abs(v), 1.0)
    assert np.linalg.norm(xy[0] - (np.array([-2.0, -1.0]) + xy_ref)) < tolerance * travelled
    assert abs(math.remainder(yaw[0] - yaw_ref, 2 * math.pi)) < tolerance * max(1.0, 4.0 * min(abs(w), 2.0))
    speed = engine.velocity()[0]
    assert speed[0] == pytest.approx(min(v, 1.0), rel=tolerance)
    assert speed[1] == pytest.approx(float(np.clip(w, -2, 2)), abs=tolerance * abs(np.clip(w, -2, 2)) + 0.01)
    assert engine.tilt()[0] > 0.99


def test_acceleration_limit_holds(world):
    engine = PhysicsEngine(world, np.zeros((1, 2)), np.zeros(1))
    engine.set_cmd_vel(np.array([[1.0, 0.0]]))
    engine.advance(0.25)  # half of the 0.5 s the SDF's 2 m/s^2 needs to reach 1 m/s
    assert engine.velocity()[0, 0] == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_robots_driven_into_each_other_do_not_pass_through(world, fidelity):
    """Head-on at full speed for 4 s: the robots stop at contact, stay apart, count one collision, and block."""
    engine = PhysicsEngine(world, np.array([[-1.0, 0.0], [1.0, 0.0]]), np.array([0.0, math.pi]),
                           EngineOptions(fidelity=fidelity))
    engine.set_cmd_vel(np.array([[1.0, 0.0], [1.0, 0.0]]))
    length = world.robot.chassis_size[0]
    gaps = []
    for _ in range(40):
        engine.advance(0.1)
        xy = engine.pose().xy
        gaps.append(xy[1, 0] - xy[0, 0])
    gaps = np.array(gaps)
    assert (gaps > 0).all(), "robot 1 stays to the right of robot 0"
    assert gaps.min() > length - 0.02, f"chassis overlap {length - gaps.min():.3f} m"
    counters = engine.counters()
    assert counters.collisions >= 1
    assert counters.max_overlap < 0.02
    assert (counters.blocked_time > 1.0).all()  # pushing against each other (one may shove the other back)


def test_robot_stops_at_the_wall(world):
    half = world.zones.arena_half_size
    engine = PhysicsEngine(world, np.array([[half - 1.0, 0.0]]), np.zeros(1))
    engine.set_cmd_vel(np.array([[1.0, 0.0]]))
    engine.advance(3.0)
    x = engine.pose().xy[0, 0]
    assert half - world.robot.chassis_size[0] / 2 - 0.02 < x < half - world.robot.chassis_size[0] / 2 + 0.01
    assert engine.counters().wall_contacts == 1


def test_bad_start_poses_fail_clearly(world):
    with pytest.raises(ValueError, match="start poses"):
        PhysicsEngine(world, np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="fidelity"):
        EngineOptions(fidelity="soft")
