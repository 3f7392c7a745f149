"""The first step's handshake over real DDS: an answer that did not arrive is asked for again.

Discovery is per side: the simulator starts when *its* readers have matched every robot's and the controller's
writer, but a writer that has not yet matched the simulator's reader drops what it publishes (volatile), and a
node can miss a tick. So while the first step is owed an answer the simulator repeats its tick every
`sim_node.RETICK_S` s, and the controller and the per-robot answer path answer a repeated tick with the answer
they gave. Each test fails without its half of that rule (a silent node ends the run with exit 3 after
`startup_timeout`; a node that ignores a repeated tick answers once).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("rclpy")

K = 2

# Publishes a pose for robot_0 and the tick of step 0 twice (1 s after its reader of `argv[1]` has matched, so
# that the node's writer has matched it too), and prints the answers heard on `argv[1]`.
REPEATED_TICK = """
import sys, time
import rclpy
from std_msgs.msg import Int32MultiArray, Int64MultiArray
from geometry_msgs.msg import PoseStamped
from altmarl_ros.ros import topics
rclpy.init()
node = rclpy.create_node("altmarl_test_repeater")
got = []
reader = node.create_subscription(Int32MultiArray, sys.argv[1], lambda m: got.append(list(m.data)),
                                  topics.COMMAND_READER_QOS)
pose = node.create_publisher(PoseStamped, "/robot_0/pose", topics.POSE_QOS)
pose.publish(topics.pose_msg(0.0, 0.0, 0.0, 0, "world"))
tick = node.create_publisher(Int64MultiArray, topics.TICK, topics.LATCHED_QOS)
def spin(seconds, until=lambda: False):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        rclpy.spin_once(node, timeout_sec=0.05)
spin(30, lambda: tick.get_subscription_count() > 0 and reader.get_publisher_count() > 0)
spin(1.0)
msg = topics.tick_msg(topics.Tick(0, 0, 0))
tick.publish(msg)
if len(sys.argv) > 2:  # repeated argv[2] s later, while the node may still be deciding; then listen for 4 s
    spin(float(sys.argv[2]))
    tick.publish(msg)
    spin(4.0)
    print("answers", got)
    sys.exit()
spin(10, lambda: len(got) >= 1)
tick.publish(msg)
spin(10, lambda: len(got) >= 2)
print("answers", got)
"""

# A controller whose answer to the first tick of step 0 is lost (it answers from the second on), then answers
# every step at once.
LOST_FIRST_ANSWER = """
import rclpy
from std_msgs.msg import Int32MultiArray, Int64MultiArray
from altmarl_ros.ros import topics
rclpy.init()
node = rclpy.create_node("altmarl_test_lost_answer")
cmd = node.create_publisher(Int32MultiArray, topics.ZONE_COMMAND, topics.ANSWER_QOS)
seen = {}
def on_tick(msg):
    step = int(msg.data[0])
    seen[step] = seen.get(step, 0) + 1
    if step > 0 or seen[step] > 1:
        cmd.publish(topics.answer_msg(step, 0, "a_g"))
node.create_subscription(Int64MultiArray, topics.TICK, on_tick, topics.TICK_READER_QOS)
try:
    while True:
        rclpy.spin_once(node, timeout_sec=0.1)
except KeyboardInterrupt:
    pass
"""


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    from altmarl_ros.ros.heuristics import save_heuristic

    return save_heuristic(tmp_path_factory.mktemp("policy") / "policy.npz", k=K)


def _ros_node(executable: str, *params: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", f"altmarl_ros.ros.{executable}", "--ros-args",
                             *[arg for param in params for arg in ("-p", param)]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(("executable", "params", "answers"), [
    ("controller_node", ["n_robots:=4", f"k:={K}"], "/swarm/zone_command"),
    ("robot_node", ["robots:=['robot_0']"], "/robot_0/zone_goal"),  # the per-robot (volatile) path
])
def test_a_repeated_tick_gets_the_same_answer_again(ros_domain, policy, executable, params, answers):
    from altmarl_ros.ros.testing import stop

    node = _ros_node(executable, f"policy_path:={policy}", *params)
    try:
        out = subprocess.run([sys.executable, "-c", REPEATED_TICK, answers], capture_output=True, text=True,
                             timeout=90)
    finally:
        stop(node)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.split("answers", 1)[1])
    assert len(got) == 2 and got[0] == got[1] and got[0][0] == 0, (got, node.stderr.read()[-2000:])


def test_a_tick_repeated_while_the_controller_decides_is_not_a_second_step(ros_domain, policy, tmp_path):
    """pose_wait 2 s and no poses, the tick repeated 0.7 s after the first: the repeat neither decides the step early
    nor starts it again (which would draw another sample and fold a pooled filter twice): one decision, one answer."""
    from altmarl_ros.ros.testing import stop

    record = tmp_path / "controller.json"
    node = _ros_node("controller_node", f"policy_path:={policy}", "n_robots:=4", f"k:={K}", "pose_wait:=2.0",
                     f"record_path:={record}")
    try:
        out = subprocess.run([sys.executable, "-c", REPEATED_TICK, "/swarm/zone_command", "0.7"], capture_output=True,
                             text=True, timeout=90)
    finally:
        stop(node)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.split("answers", 1)[1])
    assert len(got) == 1 and got[0][0] == 0, got
    assert len(json.loads(record.read_text())["per_step"]) == 1


def test_the_first_step_is_asked_again_until_answered(ros_domain, policy, tmp_path):
    """The controller's first answer is lost: the simulator repeats the tick, gets the answer and runs every step;
    the invited second answers are not counted as faults."""
    from altmarl_ros.ros.testing import stop

    record = tmp_path / "record.json"
    common = [f"policy_path:={policy}", "n_robots:=2"]
    sim = _ros_node("sim_node", *common, "steps:=3", "startup_timeout:=20.0", f"record_path:={record}")
    robots = _ros_node("robot_node", f"policy_path:={policy}", "robots:=['robot_0', 'robot_1']", "batch_offset:=0")
    controller = subprocess.Popen([sys.executable, "-c", LOST_FIRST_ANSWER], stderr=subprocess.PIPE, text=True)
    try:
        sim.wait(timeout=60)
    finally:
        stop(sim, robots, controller)
    log = sim.stderr.read()
    assert sim.returncode == 0, log[-3000:]
    r = json.loads(record.read_text())
    assert r["steps"] == 3 and r["controller_dropped"] == r["dropped_answers"] == 0, r
    assert r["first_step_reticks"] >= 1 and "its tick is repeated" in log, log[-3000:]
    assert r["duplicate_answers"] == r["late_answers"] == r["bad_answers"] == 0, r


def test_a_controller_without_ticks_says_what_it_is_matched_with(ros_domain, policy):
    """No simulator: after 10 s the controller names its matches (0 tick publishers), so a silent start says why."""
    import time

    from altmarl_ros.ros.testing import stop

    node = _ros_node("controller_node", f"policy_path:={policy}", "n_robots:=4", f"k:={K}")
    try:
        time.sleep(12.0)
    finally:
        stop(node)
    log = node.stderr.read()
    assert "no tick after 10 s; matched: 0 tick publisher(s), 0 reader(s) of /swarm/zone_command" in log, log[-2000:]
