"""Pose QoS over real DDS: a best-effort volatile localization publisher (the usual robot driver) is
matched with `pose_qos: sensor_data`, and with the default (`latched`) the mismatch is an error
naming the topic and both profiles."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("rclpy")


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    from altmarl_ros.ros.heuristics import save_heuristic

    return save_heuristic(tmp_path_factory.mktemp("policy") / "policy.npz", k=2)


def _controller(policy, log, *params: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "altmarl_ros.ros.controller_node", "--ros-args", "-p", f"policy_path:={policy}",
           "-p", "n_robots:=2", "-p", "k:=2", "-p", "pose_wait:=5.0"]
    for p in params:
        cmd += ["-p", p]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def _driver_qos():
    from rclpy.qos import qos_profile_sensor_data

    return qos_profile_sensor_data  # best effort, volatile, keep last 5: what robot drivers publish


@pytest.mark.parametrize("observation", ["rotating", "aggregate"])
def test_best_effort_poses_are_used_with_sensor_data_qos(ros_domain, policy, tmp_path, observation):
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from std_msgs.msg import Int64MultiArray

    from altmarl_ros.ros import topics
    from altmarl_ros.ros.testing import probe, stop

    log = open(tmp_path / "controller.log", "w")  # noqa: SIM115 - closed below
    ctrl = _controller(policy, log, "pose_qos:=sensor_data", f"observation:={observation}")
    diags: list[DiagnosticArray] = []
    try:
        with probe() as p:
            pubs = [p.node.create_publisher(PoseStamped, f"/robot_{i}/pose", _driver_qos()) for i in range(2)]
            tick = p.node.create_publisher(Int64MultiArray, topics.TICK, topics.LATCHED_QOS)
            p.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, diags.append, topics.DIAGNOSTICS_QOS)
            p.spin_until(lambda: all(pub.get_subscription_count() == 1 for pub in pubs), 30,
                         "the controller to match the best-effort pose publishers")
            tick.publish(topics.tick_msg(topics.Tick(0, 0, 1000)))

            def publish_and_check() -> bool:  # a driver publishes continuously
                for i, pub in enumerate(pubs):
                    pub.publish(topics.pose_msg(4.0 if i else -4.0, 0.0, 0.0, 2000, "world"))
                return bool(diags)

            p.spin_until(publish_and_check, 30, "the controller's decision")
        values = {kv.key: kv.value for kv in diags[0].status[0].values}
        assert (values["step"], values["missing"], values["stale"]) == ("0", "0", "0"), values
    finally:
        stop(ctrl)
        log.close()
    assert "incompatible QoS" not in (tmp_path / "controller.log").read_text()


def test_the_default_latched_qos_reports_a_best_effort_publisher_as_an_error(ros_domain, policy, tmp_path):
    from geometry_msgs.msg import PoseStamped

    from altmarl_ros.ros.testing import probe, stop

    log_path = tmp_path / "controller.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    ctrl = _controller(policy, log, "observation:=aggregate")
    try:
        with probe() as p:
            pubs = [p.node.create_publisher(PoseStamped, f"/robot_{i}/pose", _driver_qos()) for i in range(2)]
            p.spin_until(lambda: "incompatible QoS" in log_path.read_text(), 30, "the incompatible-QoS error")
            assert all(pub.get_subscription_count() == 0 for pub in pubs)  # never matched
    finally:
        stop(ctrl)
        log.close()
    error = next(line for line in log_path.read_text().splitlines() if "incompatible QoS" in line)
    assert "[ERROR]" in error and "/robot_" in error and "(RELIABILITY)" in error, error
    assert "requests reliable/transient_local/keep_last(1) (pose_qos: latched)" in error, error
    assert "offers best_effort/volatile " in error, error  # the publisher's profile (by node name once discovered)
    assert "pose_qos: sensor_data" in error
