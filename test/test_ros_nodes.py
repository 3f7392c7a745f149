"""Bring-up plan and topic conversions (no DDS), then the kinematic simulator, robot driving and bags (DDS)."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest

pytest.importorskip("rclpy")

from altmarl_ros.ros import topics
from altmarl_ros.ros.bringup import NodeSpec, SwarmOptions, plan


# --- bringup -------------------------------------------------------------------------------------
def test_plan_embedded_hosts_robots_in_chunks():
    specs = plan(SwarmOptions(n_robots=10, k=3, robots_per_process=4, policy="/p.npz"))
    assert [s.executable for s in specs] == ["sim_node", "controller_node"] + ["robot_node"] * 3
    hosted = [s.parameters["robots"] for s in specs if s.executable == "robot_node"]
    assert [r for chunk in hosted for r in chunk] == [f"robot_{i}" for i in range(10)]
    assert all(s.namespace == "" for s in specs)
    assert specs[1].parameters["k"] == 3 and specs[1].parameters["policy_path"] == "/p.npz"


def test_plan_one_namespaced_node_per_robot_and_gazebo():
    specs = plan(SwarmOptions(n_robots=3, k=2, robots_per_process=1, sim="gazebo", mode="kinematic"))
    assert "sim_node" not in [s.executable for s in specs]
    robots = [s for s in specs if s.executable == "robot_node"]
    assert [s.namespace for s in robots] == ["robot_0", "robot_1", "robot_2"]
    assert all("robots" not in s.parameters and s.parameters["drive"] for s in robots)
    assert specs[0].parameters["clock"] == "timer"


def test_plan_params_files_load_in_rclpy_with_their_types(tmp_path):
    """Every node's --params-file, as the launcher writes it, parses in rclpy's own YAML loader under the
    node's fully qualified name, with the same values and ROS types (bool stays bool, lists stay arrays)."""
    from rclpy.parameter import Parameter, parameter_dict_from_yaml_file

    from altmarl_ros.ros.launcher import write_params

    for spec in plan(SwarmOptions(n_robots=7, k=3, robots_per_process=3, steps=5, tolerate_lost_robots=True)):
        loaded = parameter_dict_from_yaml_file(str(write_params(spec, tmp_path)), target_nodes=[spec.fqn])
        assert set(loaded) == set(spec.parameters)
        for name, value in spec.parameters.items():
            parsed = Parameter.from_parameter_msg(loaded[name]).value
            if isinstance(value, list):
                assert list(parsed) == value, (spec.fqn, name)
            else:
                assert parsed == value and type(parsed) is type(value), (spec.fqn, name, parsed)


@pytest.mark.parametrize(("field", "value"), [("n_robots", 0), ("k", 0), ("mode", "teleport"), ("sim", "unity"),
                                              ("observation", "all"), ("step_timeout", 0.0),
                                              ("step_period", math.nan), ("robots_per_process", 0),
                                              ("lockstep", "yes")])
def test_swarm_options_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SwarmOptions(**{field: value})
    with pytest.raises(ValueError, match="k must be <= n_robots"):
        SwarmOptions(n_robots=3, k=4)


def test_nodespec_rejects_non_plain_parameters():
    with pytest.raises(ValueError, match="one plain type"):
        NodeSpec("robot_node", "x", "", {"robots": ["a", 1]})
    with pytest.raises(ValueError, match="executable"):
        NodeSpec("rviz", "x", "")


# --- conversions ---------------------------------------------------------------------------------
def test_goal_zone_and_action_round_trip():
    """The ring warehouse's floor map: a_l moves by (0, +1, -1) around the ring, and back."""
    from altmarl_ros.marl.games.floor import ring_map

    Z = 5
    floor = ring_map(Z)
    s_l = np.repeat(np.arange(Z), 3)
    a_l = np.tile(np.arange(3), Z)
    goals = floor.goal_zone(s_l, a_l)
    assert np.array_equal(goals, (s_l + np.array([0, 1, -1])[a_l]) % Z)
    assert np.array_equal(floor.action_from_goal(s_l, goals), a_l)
    assert floor.action_from_goal(np.array([0, 0, 1]), np.array([2, 99, -1])).tolist() == [-1, -1, -1]


def test_message_conversions():
    tick = topics.Tick(7, 3, 1_500_000_000)
    assert topics.parse_tick(topics.tick_msg(tick)) == tick
    assert topics.parse_answer(topics.answer_msg(4, 2, "a_g")) == (4, 2)
    msg = topics.pose_msg(1.0, -2.0, 0.5, tick.stamp_ns, "world")
    assert topics.pose_xy(msg) == (1.0, -2.0) and math.isclose(topics.pose_yaw(msg), 0.5)
    assert topics.stamp_to_ns(msg.header.stamp) == tick.stamp_ns
    assert not topics.pose_is_finite(topics.pose_msg(math.nan, 0.0, 0.0, 0, "world"))
    row = {f: float(i) for i, f in enumerate(topics.METRICS_FIELDS)}
    assert topics.parse_metrics(topics.metrics_msg(row)) == row
    with pytest.raises(ValueError, match="malformed tick"):
        topics.parse_tick(topics.Int64MultiArray(data=[1]))
    with pytest.raises(ValueError, match="out of range"):
        topics.parse_tick(topics.tick_msg(topics.Tick(1, 5, 0)), 5)
    batch = topics.parse_goals(topics.goals_msg(9, np.array([3, 4, 7]), np.array([0, 1, 4])))
    assert batch.step == 9 and batch.indices.tolist() == [3, 4, 7] and batch.goals.tolist() == [0, 1, 4]
    for data in ([9], [9, 1], [9, 1, 2, 3], [-1, 0, 0]):
        with pytest.raises(ValueError, match="malformed zone-goal batch"):
            topics.parse_goals(topics.Int32MultiArray(data=data))


def test_simulated_robot_hosts_batch_their_answers():
    specs = plan(SwarmOptions(n_robots=600, robots_per_process=250))
    hosts = [s for s in specs if s.executable == "robot_node"]
    assert [h.parameters["batch_offset"] for h in hosts] == [0, 250, 500]
    single = plan(SwarmOptions(n_robots=3, k=2, robots_per_process=1))
    assert all("batch_offset" not in s.parameters for s in single if s.executable == "robot_node")


# --- kinematic mode over DDS ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    from altmarl_ros.ros.heuristics import save_heuristic

    return save_heuristic(tmp_path_factory.mktemp("policy") / "policy.npz", k=2)


def test_kinematic_robots_drive_to_goal_zones_and_stop(ros_domain, policy, tmp_path):
    """Unicycles on cmd_vel: robots reach the active zone; a stopped robot node sends a zero Twist."""
    from geometry_msgs.msg import PoseStamped, Twist

    from altmarl_ros.ros.launcher import ProcessGroup
    from altmarl_ros.ros.testing import logs_on_failure, probe

    options = SwarmOptions(n_robots=4, k=2, policy=str(policy), mode="kinematic", robots_per_process=1,
                           step_period=1.0, step_timeout=1.0, steps=0, bag_path=str(tmp_path / "bag"))
    specs = plan(options)
    specs[0].parameters.update(physics_rate=50.0)
    group = ProcessGroup.start(specs, tmp_path)
    twists: list[Twist] = []
    poses: list[PoseStamped] = []
    try:
        with probe() as p, logs_on_failure(tmp_path):
            p.node.create_subscription(Twist, "/robot_0/cmd_vel", twists.append, topics.CMD_VEL_QOS)
            p.node.create_subscription(PoseStamped, "/robot_0/pose", poses.append, topics.POSE_QOS)
            p.spin_until(lambda: len(p.metrics) >= 8, 90, "8 kinematic steps")
            first = np.array(topics.pose_xy(poses[0]))
            assert any(abs(t.linear.x) > 0.05 for t in twists), "robot_0 never drove"
            last = np.array(topics.pose_xy(poses[-1]))
            assert np.linalg.norm(last - first) > 0.3  # it moved
            rewards = [m["r_l_mean"] for m in p.metrics]
            assert all(np.isfinite(rewards))
            assert group.exited() == []
            robot0 = next(proc for proc in group.processes if proc.spec.namespace == "robot_0")
            n_before = len(twists)
            os.killpg(robot0.popen.pid, signal.SIGINT)
            robot0.popen.wait(10)
            robot0.stopped = True
            assert robot0.popen.returncode == 0
            p.spin_until(lambda: any(t.linear.x == 0.0 and t.angular.z == 0.0 for t in twists[n_before:]), 10,
                         "the zero Twist robot_0 sends on shutdown")
    finally:
        group.stop()
    _check_bag(tmp_path / "bag")


def _check_bag(path):
    """The recorded bag is a rosbag2 directory readable by rosbags' AnyReader (mcap storage)."""
    from rosbags.highlevel import AnyReader

    assert (path / "metadata.yaml").is_file() and list(path.glob("*.mcap"))
    with AnyReader([path]) as reader:
        names = {c.topic for c in reader.connections}
        assert {"/swarm/tick", "/swarm/metrics", "/robot_0/pose"} <= names
        ticks = [c for c in reader.connections if c.topic == "/swarm/tick"]
        decoded = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=ticks)]
        assert [int(m.data[0]) for m in decoded] == list(range(len(decoded)))


def test_free_running_model_mode_keeps_time(ros_domain, policy, tmp_path):
    """lockstep=false: a step ends after step_period s whether or not the answers came. With the robots
    gone and a step timeout of 60 s, steps keep coming (lockstep would wait 60 s per step), none ends
    before its period, and the ticks' stamps advance by exactly one period per step."""
    from std_msgs.msg import Int64MultiArray

    from altmarl_ros.ros import topics
    from altmarl_ros.ros.launcher import ProcessGroup
    from altmarl_ros.ros.testing import logs_on_failure, probe

    options = SwarmOptions(n_robots=6, k=2, policy=str(policy), lockstep=False, step_period=0.1, step_timeout=60.0,
                           steps=0)
    group = ProcessGroup.start(plan(options), tmp_path)
    try:
        with probe() as p, logs_on_failure(tmp_path):
            stamps: dict[int, int] = {}
            p.node.create_subscription(Int64MultiArray, topics.TICK, lambda m: stamps.setdefault(m.data[0], m.data[2]),
                                       topics.LATCHED_QOS)
            p.spin_until(lambda: len(p.metrics) >= 5, 60, "first steps")
            assert sum(m["dropped_robots"] for m in p.metrics[1:5]) == 0  # the robots answer within a period
            robots = group.find("robot_node")[0]
            os.killpg(robots.popen.pid, signal.SIGKILL)
            robots.popen.wait(5)
            robots.stopped = True
            t_kill = p.metrics[-1]["step"]
            p.spin_until(lambda: sum(m["step"] > t_kill + 2 for m in p.metrics) >= 10, 30, "10 steps without robots")
            later = [m for m in p.metrics if m["step"] > t_kill + 2]
            assert all(m["dropped_robots"] == 6 for m in later)
            assert all(m["step_seconds"] >= 0.1 for m in p.metrics[1:])
            period_ns = 100_000_000
            assert all(stamp == step * period_ns for step, stamp in stamps.items()), stamps
    finally:
        group.stop()


def test_robot_host_reads_the_pose_table_and_warns_on_bad_poses(ros_domain, policy, tmp_path):
    """A node hosting simulated robots reads /swarm/pose_table; NaN entries and short tables are warned about and
    ignored; the node keeps answering ticks with the robots whose poses are good, batched on /swarm/zone_goals."""
    from std_msgs.msg import Float64MultiArray, Int32MultiArray, Int64MultiArray

    from altmarl_ros.ros.launcher import ProcessGroup
    from altmarl_ros.ros.testing import probe

    spec = NodeSpec("robot_node", "altmarl_robots_0", "", {"robots": ["robot_0", "robot_1", "robot_2"],
                                                            "batch_offset": 0, "policy_path": str(policy)})
    group = ProcessGroup.start([spec], tmp_path)
    batches = []
    try:
        with probe() as p:
            table_pub = p.node.create_publisher(Float64MultiArray, topics.POSE_TABLE, topics.LATCHED_QOS)
            tick_pub = p.node.create_publisher(Int64MultiArray, topics.TICK, topics.LATCHED_QOS)
            p.node.create_subscription(Int32MultiArray, topics.ZONE_GOALS, batches.append, topics.GOALS_QOS)
            p.spin_until(lambda: table_pub.get_subscription_count() > 0 and tick_pub.get_subscription_count() > 0,
                         30, "the robot host to subscribe")
            xy = np.array([[4.0, 0.0], [1.2, 3.8], [math.nan, math.nan]])
            log = tmp_path / "logs" / "altmarl_robots_0.log"
            table_pub.publish(topics.pose_table_msg(xy[:1], np.zeros(1), 500))  # too short: ignored
            # depth 1: the host must have read it before the next table replaces it
            p.spin_until(lambda: "pose table holds 1 poses" in log.read_text(), 30, "the short-table warning")
            table_pub.publish(topics.pose_table_msg(xy, np.zeros(3), 500))
            # The poses (stamp 500) are older than the tick (stamp 1000): no robot has a fresh pose, so the host
            # answers once answer_wait has passed, in one batch, for every robot with a usable (stale) pose.
            tick_pub.publish(topics.tick_msg(topics.Tick(0, 0, 1000)))
            p.spin_until(lambda: len(batches) > 0, 30, "a batch of answers")
            answered = {int(i) for i in topics.parse_goals(batches[0]).indices}
            assert answered == {0, 1}  # robot_2 (NaN: no usable pose) is not in the batch
            assert group.exited() == []
    finally:
        group.stop()
    text = log.read_text()
    assert "pose table holds 1 poses" in text and "robot_2" in text and "NaN" in text, text


def test_a_robot_parks_in_the_slot_of_its_registry_index():
    """robot_node's parking slot index is i of `robot_<i>` (the registry of `contract.robot_names`), else 0."""
    from altmarl_ros.contract import robot_index, robot_names

    assert [robot_index(name) for name in robot_names(12)] == list(range(12))
    assert [robot_index(name) for name in ("turtlebot_3", "robot", "robot_x", "robot_-1")] == [0, 0, 0, 0]
