"""altmarl_ros.ros.gazebo: bridge config per n vs the topic contract, spawn poses, launch-argument parsing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from altmarl_ros.contract import robot_names
from altmarl_ros.ros import gazebo, topics
from altmarl_ros.ros.bringup import SwarmOptions
from altmarl_ros.zones import load_zones

ROOT = Path(__file__).resolve().parents[1]
ZONES = load_zones(ROOT / "config" / "zones.yaml")


@pytest.mark.parametrize("n", [1, 3, 50])
def test_bridge_config_follows_the_topic_contract(n):
    robots = robot_names(n)
    entries = gazebo.bridge_config(robots)
    gazebo.validate_bridge_config(entries)
    assert len(entries) == 1 + 3 * n
    by_ros = {e["ros_topic_name"]: e for e in entries}
    assert by_ros["/clock"] == {"ros_topic_name": "/clock", "gz_topic_name": "/clock", "direction": "GZ_TO_ROS",
                                "ros_type_name": "rosgraph_msgs/msg/Clock", "gz_type_name": "gz.msgs.Clock"}
    for robot in robots:
        cmd = by_ros[topics.robot_topic(robot, topics.CMD_VEL)]
        assert (cmd["gz_topic_name"], cmd["direction"]) == (f"/model/{robot}/cmd_vel", "ROS_TO_GZ")
        assert (cmd["ros_type_name"], cmd["gz_type_name"]) == ("geometry_msgs/msg/Twist", "gz.msgs.Twist")
        pose = by_ros[topics.robot_topic(robot, topics.POSE)]
        assert (pose["gz_topic_name"], pose["direction"]) == (f"/model/{robot}/pose", "GZ_TO_ROS")
        assert (pose["ros_type_name"], pose["gz_type_name"]) == ("geometry_msgs/msg/PoseStamped", "gz.msgs.Pose")
        assert pose["publisher_queue"] == topics.POSE_QOS.depth
        odom = by_ros[topics.robot_topic(robot, "odom")]
        assert (odom["gz_topic_name"], odom["direction"], odom["lazy"]) == (f"/model/{robot}/odometry",
                                                                            "GZ_TO_ROS", True)
    # Only what the contract consumes crosses the bridge: no zone goals, no swarm channels.
    assert not [t for t in by_ros if t.startswith("/swarm") or t.endswith(topics.ZONE_GOAL)]


def test_message_types_match_the_contract_module():
    """The ROS types bridged are the ones topics.py uses for the same topics."""
    from geometry_msgs.msg import PoseStamped, Twist

    def name(cls) -> str:
        return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"

    assert name(PoseStamped) == "geometry_msgs/msg/PoseStamped" in gazebo.TYPE_PAIRS
    assert name(Twist) == "geometry_msgs/msg/Twist" in gazebo.TYPE_PAIRS


def test_pose_qos_overrides_match_the_contract():
    params = gazebo.bridge_parameters("/tmp/bridge.yaml", robot_names(4))
    assert params["config_file"] == "/tmp/bridge.yaml" and params["use_sim_time"] is True
    qos = topics.POSE_QOS
    for robot in robot_names(4):
        prefix = f"qos_overrides.{topics.robot_topic(robot, topics.POSE)}.publisher."
        assert params[prefix + "durability"] == qos.durability.name.lower()
        assert params[prefix + "reliability"] == qos.reliability.name.lower()
        assert params[prefix + "history"] == qos.history.name.lower()
        assert params[prefix + "depth"] == qos.depth
    assert len(params) == 2 + 4 * 4
    assert all(isinstance(v, (bool, int, float, str)) for v in params.values())


def test_yaml_round_trip_and_shipped_example():
    robots = robot_names(7)
    text = gazebo.bridge_yaml(robots, header="two\n\nlines")
    assert text.startswith("# two\n#\n# lines\n")
    assert yaml.safe_load(text) == gazebo.bridge_config(robots)
    shipped = yaml.safe_load((ROOT / "config" / "gz_bridge.yaml").read_text())
    gazebo.validate_bridge_config(shipped)
    assert shipped == gazebo.bridge_config(robot_names(3)), "config/gz_bridge.yaml is out of date"


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e[1].update(direction="BOTH"), "direction"),
    (lambda e: e[1].update(gz_type_name="gz.msgs.Pose"), "does not bridge"),
    (lambda e: e[1].update(ros_topic_name="robot_0/cmd_vel"), "absolute"),
    (lambda e: e[2].update(gz_topic_name=e[1]["gz_topic_name"]), "both bridge"),
    (lambda e: e[1].pop("direction"), "missing"),
    (lambda e: e[1].update(qos="x"), "unknown"),
    (lambda e: e.append("not a map"), "expected a map"),
])
def test_validate_rejects_broken_configs(mutate, message):
    entries = gazebo.bridge_config(robot_names(2))
    mutate(entries)
    with pytest.raises(ValueError, match=message):
        gazebo.validate_bridge_config(entries)
    with pytest.raises(ValueError, match="non-empty"):
        gazebo.validate_bridge_config([])
    with pytest.raises(ValueError, match="unique"):
        gazebo.bridge_config(["robot_0", "robot_0"])


@pytest.mark.parametrize("n", [1, 5, 50, 200, 800])
def test_spawn_poses_inside_their_zones_and_apart(n):
    robots = robot_names(n)
    poses = gazebo.spawn_poses(robots, ZONES)
    spacing = 0.45
    assert [p.name for p in poses] == robots
    zone = np.array([p.zone for p in poses])
    xy = np.array([[p.x, p.y] for p in poses])
    assert (zone == np.arange(n) % ZONES.n_zones).all()
    assert (ZONES.zone_of(xy) == zone).all(), "every robot starts in its zone (the shared pose -> zone map)"
    assert np.abs(xy).max() <= ZONES.arena_half_size - spacing
    if n > 1:
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        assert d.min() >= spacing - 1e-9
    if n <= 50:  # small swarms start on the zone discs drawn in the world
        assert (np.hypot(*(xy - ZONES.centres[zone]).T) <= ZONES.zone_radius).all()
    assert all(p.z > 0 and p.yaw == 0.0 for p in poses)
    assert gazebo.spawn_poses(robots, ZONES) == poses  # deterministic


def test_spawn_poses_custom_zones_and_limits():
    poses = gazebo.spawn_poses(robot_names(4), ZONES, zone_of_robot=[2, 2, 0, 4])
    assert [p.zone for p in poses] == [2, 2, 0, 4]
    assert poses[0].x == pytest.approx(ZONES.centres[2][0]) and poses[0].y == pytest.approx(ZONES.centres[2][1])
    with pytest.raises(ValueError, match="holds"):
        gazebo.spawn_poses(robot_names(1200), ZONES)
    with pytest.raises(ValueError, match="zone ids"):
        gazebo.spawn_poses(robot_names(2), ZONES, zone_of_robot=[0, 5])
    with pytest.raises(ValueError, match="spacing"):
        gazebo.spawn_poses(robot_names(2), ZONES, spacing=0)


def test_create_parameters_and_gz_args():
    pose = gazebo.spawn_poses(["robot_0"], ZONES)[0]
    params = gazebo.create_parameters(pose, world="warehouse", model_file="/share/worlds/robot.sdf")
    # The parameter interface of `ros_gz_sim create` (world, file, name, allow_renaming, x, y, z, R, P, Y).
    assert params == {"world": "warehouse", "file": "/share/worlds/robot.sdf", "name": "robot_0",
                      "allow_renaming": False, "x": pose.x, "y": pose.y, "z": pose.z, "R": 0.0, "P": 0.0, "Y": 0.0}
    assert all(isinstance(params[k], float) for k in ("x", "y", "z", "R", "P", "Y"))
    assert gazebo.gz_args("/w.sdf", headless=True) == "-r -s -v 3 /w.sdf"
    assert gazebo.gz_args("/w.sdf", headless=False, verbosity=1) == "-r -v 1 /w.sdf"


def test_launch_defaults_parse_back_to_swarm_options_defaults():
    values = {f.name: gazebo.launch_default(f.name) for f in dataclasses.fields(SwarmOptions)}
    assert gazebo.options_from_launch_arguments(values) == SwarmOptions()
    assert gazebo.launch_default("use_sim_time") == "false" and gazebo.launch_default("lockstep") == "true"


def test_options_from_launch_arguments():
    auto = gazebo.options_from_launch_arguments({"sim": "gazebo", "mode": "auto", "use_sim_time": "auto"})
    assert (auto.mode, auto.use_sim_time) == ("kinematic", True)
    auto = gazebo.options_from_launch_arguments({"sim": "embedded", "mode": "", "use_sim_time": "auto"})
    assert (auto.mode, auto.use_sim_time) == ("model", False)
    options = gazebo.options_from_launch_arguments(
        {"n_robots": "10", "k": " 3", "step_period": "1", "lockstep": "False", "use_sim_time": "TRUE",
         "policy": "/p.npz", "observation": "aggregate", "zones": ""})
    assert dataclasses.replace(SwarmOptions(), n_robots=10, k=3, step_period=1.0, lockstep=False, use_sim_time=True,
                               policy="/p.npz", observation="aggregate") == options
    assert isinstance(options.step_period, float) and isinstance(options.k, int)
    with pytest.raises(ValueError, match="n_robots"):
        gazebo.options_from_launch_arguments({"n_robots": "ten"})
    with pytest.raises(ValueError, match="lockstep"):
        gazebo.options_from_launch_arguments({"lockstep": "maybe"})
    with pytest.raises(ValueError, match="unknown"):
        gazebo.options_from_launch_arguments({"robots": "5"})
    with pytest.raises(ValueError, match="mode"):  # SwarmOptions' own validation still applies
        gazebo.options_from_launch_arguments({"sim": "gazebo", "mode": "model"})


def test_world_name_reads_the_sdf(tmp_path):
    assert gazebo.world_name(ROOT / "worlds" / gazebo.WORLD_FILE) == gazebo.WORLD_NAME
    bad = tmp_path / "bad.sdf"
    bad.write_text("<sdf version='1.9'><model name='m'/></sdf>")
    with pytest.raises(ValueError, match="world"):
        gazebo.world_name(bad)
