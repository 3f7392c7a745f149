"""The swarm's ROS contract in one place: topic names, QoS profiles, message <-> state conversions.

| topic | type | publisher | QoS (R reliable, TL transient-local) |
|---|---|---|---|
| /robot_<i>/pose | geometry_msgs/PoseStamped | sim_node (or localization, Gazebo bridge) | R, TL, depth 1 |
| /robot_<i>/cmd_vel | geometry_msgs/Twist | robot_node | R, depth 1 |
| /robot_<i>/zone_goal | std_msgs/Int32MultiArray [step, goal_zone] | robot_node | R, depth 10 |
| /swarm/pose_table | std_msgs/Float64MultiArray [sec, nanosec, x_0, y_0, yaw_0, ...] | sim_node | R, TL, 1 |
| /swarm/poll | std_msgs/Int32MultiArray [step, i_0, ..., i_{k-1}] (observation: polling) | controller_node | R, TL, 1 |
| /swarm/poll_poses | std_msgs/Float64MultiArray [step; i, x, y, yaw, stamp_ns per row] | robot hosts | R, TL, 64 |
| /swarm/zone_goals | std_msgs/Int32MultiArray [step, i_0, goal_0, ...] | robot_node hosting many | R, TL, 1024 |
| /swarm/zone_command | std_msgs/Int32MultiArray [step, a_g] | controller_node | R, depth 10 |
| /swarm/tick | std_msgs/Int64MultiArray [step, s_g, stamp_ns] | sim_node (controller with Gazebo) | R, TL, depth 1 |
| /swarm/global_state | std_msgs/Int32 (s_g) | sim_node (controller with Gazebo) | R, TL, depth 1 |
| /swarm/metrics | std_msgs/Float64MultiArray, fields METRICS_FIELDS | sim_node | R, depth 1000 |
| /swarm/command | std_msgs/String 'start' / 'stop' | operator, `altmarl swarm` | R, TL, depth 1 |
| /diagnostics | diagnostic_msgs/DiagnosticArray | controller_node (one status per step) | R, depth 100 |
| /clock | rosgraph_msgs/Clock | sim_node (the step's stamp) | R, depth 10 |

A decision step t is announced by a tick carrying s_g(t) and the stamp of the step's poses; an
answer (zone goal or zone command) carries t so that a late answer is never applied to a later
step. A pose is *fresh* for a tick when its stamp is at or after the tick's stamp. Local actions
travel as goal zones: a_l moves the robot by MOVES[a_l] around the ring of zones.
"""

from __future__ import annotations

import array
import math
from typing import NamedTuple

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64MultiArray, Int32MultiArray, Int64MultiArray, MultiArrayDimension

from altmarl_ros.marl.games.warehouse import MOVES

# Relative leaf names of per-robot topics, and the absolute swarm-wide channels.
POSE = "pose"
CMD_VEL = "cmd_vel"
ZONE_GOAL = "zone_goal"
ZONE_COMMAND = "/swarm/zone_command"
ZONE_GOALS = "/swarm/zone_goals"  # batched answers of a node hosting many simulated robots
POLL = "/swarm/poll"  # observation 'polling': the controller names its k-subset for a step
POLL_POSES = "/swarm/poll_poses"  # ... and only the hosts of sampled robots answer with their poses
POSE_TABLE = "/swarm/pose_table"  # every simulated robot's pose in one flat message, for nodes hosting many
TICK = "/swarm/tick"
GLOBAL_STATE = "/swarm/global_state"
METRICS = "/swarm/metrics"
SWARM_COMMAND = "/swarm/command"
DIAGNOSTICS = "/diagnostics"
START, STOP = "start", "stop"

def _reliable(depth: int, durability: DurabilityPolicy = DurabilityPolicy.VOLATILE) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=durability)


LATCHED_QOS = _reliable(1, DurabilityPolicy.TRANSIENT_LOCAL)  # the latest value reaches late joiners
POSE_QOS = LATCHED_QOS  # a new pose subscription gets the robot's latest pose as soon as it matches
# Pose subscription profiles (parameter `pose_qos` of controller_node and robot_node), by the publishers they match:
POSE_QOS_PROFILES = {
    # reliable + transient-local, depth 1: only reliable transient-local publishers (sim_node, latched
    # localization); a new subscription gets the latest pose on match (what rotating subscriptions need)
    "latched": LATCHED_QOS,
    # reliable + volatile, depth 1: reliable publishers of either durability (most odometry / EKF nodes)
    "reliable": _reliable(1),
    # best effort + volatile, depth 1 (rclpy's qos_profile_sensor_data with depth 1): every publisher,
    # including best-effort drivers and mocap; the first pose arrives with the publisher's next message
    "sensor_data": QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                              durability=DurabilityPolicy.VOLATILE),
}
ANSWER_QOS = _reliable(10)
# one shared topic for every robot host, several batches each per step: deep enough never to overwrite, and
# transient-local so that a batch published before the simulator's subscription matched still arrives
GOALS_QOS = _reliable(1024, DurabilityPolicy.TRANSIENT_LOCAL)
CMD_VEL_QOS = _reliable(1)
POLL_POSES_QOS = _reliable(64, DurabilityPolicy.TRANSIENT_LOCAL)  # a reply per host and step; TL: one sent
# before the controller's subscription matched still arrives
METRICS_QOS = _reliable(1000)
DIAGNOSTICS_QOS = _reliable(100)

METRICS_FIELDS = ("step", "s_g", "a_g", "reward", "r_g", "r_l_mean", "dropped_robots", "controller_dropped",
                  "bad_answers", "late_answers", "duplicate_answers", "live_robots", "step_seconds",
                  "controller_rtt_ms")


def describe_qos(qos: QoSProfile) -> str:
    """'reliable/transient_local/keep_last(1)': the policies that decide whether two endpoints match (the
    history only when known: the graph does not carry a remote endpoint's)."""
    text = f"{qos.reliability.name.lower()}/{qos.durability.name.lower()}"
    if qos.history == HistoryPolicy.KEEP_LAST:
        return f"{text}/keep_last({qos.depth})"
    return text if qos.history == HistoryPolicy.UNKNOWN else f"{text}/{qos.history.name.lower()}"


def robot_topic(robot: str, leaf: str) -> str:
    """Absolute per-robot topic for swarm-wide nodes: robot_topic('robot_3', 'pose') -> '/robot_3/pose'."""
    return f"/{robot.strip('/')}/{leaf}"


class Tick(NamedTuple):
    step: int
    s_g: int
    stamp_ns: int


class Answer(NamedTuple):
    step: int
    value: int


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _labelled(msg, labels: tuple[str, ...]):
    msg.layout.dim = [MultiArrayDimension(label=",".join(labels), size=len(labels), stride=len(labels))]
    return msg


def tick_msg(tick: Tick) -> Int64MultiArray:
    return _labelled(Int64MultiArray(data=[int(tick.step), int(tick.s_g), int(tick.stamp_ns)]),
                     ("step", "s_g", "stamp_ns"))


def parse_tick(msg: Int64MultiArray, n_global_states: int | None = None) -> Tick:
    """Raises ValueError for a malformed tick, or one whose s_g is not below `n_global_states`."""
    data = list(msg.data)
    if len(data) != 3 or data[0] < 0 or data[1] < 0:
        raise ValueError(f"malformed tick {data}: expected [step >= 0, s_g >= 0, stamp_ns]")
    if n_global_states is not None and data[1] >= n_global_states:
        raise ValueError(f"tick {data[0]}: global state {data[1]} out of range, ignored")
    return Tick(int(data[0]), int(data[1]), int(data[2]))


def answer_msg(step: int, value: int, label: str) -> Int32MultiArray:
    return _labelled(Int32MultiArray(data=[int(step), int(value)]), ("step", label))


def parse_answer(msg: Int32MultiArray) -> Answer:
    """Raises ValueError for a malformed answer."""
    data = list(msg.data)
    if len(data) != 2:
        raise ValueError(f"malformed answer {data}: expected [step, value]")
    return Answer(int(data[0]), int(data[1]))


class Goals(NamedTuple):
    """A batch of robot answers for one step: registry indices (m,) and goal zones (m,)."""

    step: int
    indices: np.ndarray
    goals: np.ndarray


def goals_msg(step: int, indices: np.ndarray, goals: np.ndarray) -> Int32MultiArray:
    """[step, i_0, goal_0, i_1, goal_1, ...]: one message for the answers of many hosted robots."""
    pairs = np.stack([np.asarray(indices), np.asarray(goals)], axis=-1).ravel()
    return Int32MultiArray(data=[int(step), *map(int, pairs)])


def parse_goals(msg: Int32MultiArray) -> Goals:
    """Raises ValueError for a malformed batch."""
    data = np.asarray(msg.data, dtype=np.int64)
    if data.size < 3 or data.size % 2 == 0 or data[0] < 0:
        raise ValueError(f"malformed zone-goal batch of {data.size} values: expected [step, i_0, goal_0, ...]")
    pairs = data[1:].reshape(-1, 2)
    return Goals(int(data[0]), pairs[:, 0], pairs[:, 1])


def metrics_msg(values: dict[str, float]) -> Float64MultiArray:
    return _labelled(Float64MultiArray(data=[float(values[f]) for f in METRICS_FIELDS]), METRICS_FIELDS)


def parse_metrics(msg: Float64MultiArray) -> dict[str, float]:
    if len(msg.data) != len(METRICS_FIELDS):
        raise ValueError(f"malformed metrics: {len(msg.data)} values, expected {len(METRICS_FIELDS)}")
    return dict(zip(METRICS_FIELDS, (float(v) for v in msg.data), strict=True))


def pose_msg(x: float, y: float, yaw: float, stamp_ns: int, frame_id: str) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.pose.position.x = float(x)
    msg.pose.position.y = float(y)
    msg.pose.orientation.z = math.sin(yaw / 2.0)
    msg.pose.orientation.w = math.cos(yaw / 2.0)
    return msg


def pose_table_msg(xy: np.ndarray, yaw: np.ndarray, stamp_ns: int) -> Float64MultiArray:
    """Every robot's pose as one flat array: data_offset 2 ([sec, nanosec] of the stamp), then n rows of
    (x, y, yaw) in registry order. Flat float64 arrays cross rclpy without a Python object per robot
    (a 1000-pose PoseArray costs every reader ~1000 Pose objects per step: measured, bench/README.md)."""
    rows = np.column_stack([xy, yaw]).astype(np.float64)
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="robot", size=rows.shape[0], stride=rows.size),
                      MultiArrayDimension(label="x,y,yaw", size=3, stride=3)]
    msg.layout.data_offset = 2
    head = np.array([stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000], dtype=np.float64)
    msg.data = array.array("d", np.concatenate([head, rows.ravel()]).tobytes())
    return msg


def poll_msg(step: int, sample: np.ndarray) -> Int32MultiArray:
    return Int32MultiArray(data=[int(step), *map(int, sample)])


def parse_poll(msg: Int32MultiArray) -> tuple[int, np.ndarray]:
    """(step, sampled registry indices); raises ValueError for a malformed poll."""
    data = np.asarray(msg.data, dtype=np.int64)
    if data.size < 2 or data[0] < 0 or (data[1:] < 0).any():
        raise ValueError(f"malformed poll {data.tolist()[:8]}: expected [step, i_0, ...] with indices >= 0")
    return int(data[0]), data[1:]


class PollReply(NamedTuple):
    """Poses answered to a poll: registry indices (m,), xy (m, 2), yaw (m,), stamps (m,) ns."""

    step: int
    indices: np.ndarray
    xy: np.ndarray
    yaw: np.ndarray
    stamp_ns: np.ndarray


def poll_reply_msg(step: int, indices: np.ndarray, xy: np.ndarray, yaw: np.ndarray,
                   stamp_ns: np.ndarray) -> Float64MultiArray:
    """[step; rows of (i, x, y, yaw, stamp_ns)] (data_offset 1; stamps as float64: exact below 2^53 ns)."""
    rows = np.column_stack([indices, xy, yaw, stamp_ns]).astype(np.float64)
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="robot", size=rows.shape[0], stride=rows.size),
                      MultiArrayDimension(label="i,x,y,yaw,stamp_ns", size=5, stride=5)]
    msg.layout.data_offset = 1
    msg.data = array.array("d", np.concatenate([[float(step)], rows.ravel()]).tobytes())
    return msg


def parse_poll_reply(msg: Float64MultiArray) -> PollReply:
    data = np.asarray(msg.data, dtype=np.float64)
    if data.size < 1 or (data.size - 1) % 5 or int(msg.layout.data_offset) != 1 or not np.isfinite(data[0]):
        raise ValueError(f"malformed poll reply of {data.size} values: expected [step; i, x, y, yaw, stamp_ns ...]")
    rows = data[1:].reshape(-1, 5)
    return PollReply(int(data[0]), rows[:, 0].astype(np.int64), rows[:, 1:3], rows[:, 3], rows[:, 4].astype(np.int64))


class PoseBlock(NamedTuple):
    """A slice of the pose table: positions (m, 2), yaw (m,), finite (m,) mask, the message stamp."""

    xy: np.ndarray
    yaw: np.ndarray
    finite: np.ndarray
    stamp_ns: int


def parse_pose_block(msg: Float64MultiArray, start: int, count: int) -> PoseBlock:
    """Robots start..start+count-1 of a pose table; raises ValueError when it is malformed or holds fewer."""
    data = np.asarray(msg.data, dtype=np.float64)
    offset = int(msg.layout.data_offset)
    if offset != 2 or (data.size - 2) % 3 or not np.isfinite(data[:2]).all():
        raise ValueError(f"malformed pose table ({data.size} values, data_offset {offset}): expected "
                         "[sec, nanosec, x_0, y_0, yaw_0, ...]")
    rows = data[2:].reshape(-1, 3)
    if rows.shape[0] < start + count:
        raise ValueError(f"pose table holds {rows.shape[0]} poses, robots up to index {start + count - 1} needed")
    block = rows[start:start + count]
    finite = np.asarray(np.isfinite(block).all(-1))
    return PoseBlock(block[:, :2], block[:, 2], finite, int(data[0]) * 1_000_000_000 + int(data[1]))


def pose_xy(msg: PoseStamped) -> tuple[float, float]:
    return msg.pose.position.x, msg.pose.position.y


def pose_yaw(msg: PoseStamped) -> float:
    q = msg.pose.orientation
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def pose_is_finite(msg: PoseStamped) -> bool:
    p, q = msg.pose.position, msg.pose.orientation
    return all(math.isfinite(v) for v in (p.x, p.y, p.z, q.x, q.y, q.z, q.w))


def goal_zone(s_l: np.ndarray | int, a_l: np.ndarray | int, n_zones: int) -> np.ndarray:
    """The zone a robot in s_l heads for under local action a_l (a move around the ring)."""
    return (np.asarray(s_l) + np.asarray(MOVES)[np.asarray(a_l)]) % n_zones


def action_from_goal(s_l: np.ndarray, goal: np.ndarray, n_zones: int) -> np.ndarray:
    """Inverse of goal_zone: a_l per robot, or -1 where the goal is not one move away (or out of range)."""
    s_l = np.asarray(s_l)
    goal = np.asarray(goal)
    out = np.full(s_l.shape, -1, dtype=np.int64)
    for a, move in reversed(list(enumerate(MOVES))):  # lowest action wins ties (n_zones = 2: +1 == -1)
        out = np.where((goal >= 0) & (goal < n_zones) & ((s_l + move) % n_zones == goal), a, out)
    return out
