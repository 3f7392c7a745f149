"""The swarm's ROS contract in one place: topic names, QoS profiles, message <-> state conversions.

| topic | type | publisher | QoS (R reliable, TL transient-local) |
|---|---|---|---|
| /robot_<i>/pose | geometry_msgs/PoseStamped | sim_node (or localization, Gazebo bridge) | R, TL, depth 1 |
| /robot_<i>/cmd_vel | geometry_msgs/Twist | robot_node | R, depth 1 |
| /robot_<i>/zone_goal | std_msgs/Int32MultiArray [step, goal_zone] | robot_node | R, depth 10 |
| /swarm/poses | geometry_msgs/PoseArray (every robot, registry order) | sim_node | R, TL, depth 1 |
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

import math
from typing import NamedTuple

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64MultiArray, Int32MultiArray, Int64MultiArray, MultiArrayDimension

from altmarl_ros.marl.games.warehouse import MOVES

# Relative leaf names of per-robot topics, and the absolute swarm-wide channels.
POSE = "pose"
CMD_VEL = "cmd_vel"
ZONE_GOAL = "zone_goal"
ZONE_COMMAND = "/swarm/zone_command"
ZONE_GOALS = "/swarm/zone_goals"  # batched answers of a node hosting many simulated robots
POSES = "/swarm/poses"  # every simulated robot's pose in one message, for the nodes hosting many robots
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
ANSWER_QOS = _reliable(10)
# one shared topic for every robot host, several batches each per step: deep enough never to overwrite, and
# transient-local so that a batch published before the simulator's subscription matched still arrives
GOALS_QOS = _reliable(1024, DurabilityPolicy.TRANSIENT_LOCAL)
CMD_VEL_QOS = _reliable(1)
METRICS_QOS = _reliable(1000)
DIAGNOSTICS_QOS = _reliable(100)

METRICS_FIELDS = ("step", "s_g", "a_g", "reward", "r_g", "r_l_mean", "dropped_robots", "controller_dropped",
                  "bad_answers", "late_answers", "duplicate_answers", "live_robots", "step_seconds",
                  "controller_rtt_ms")


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


def poses_msg(stamped: list[PoseStamped], stamp_ns: int, frame_id: str) -> PoseArray:
    """All robots' poses (registry order) in one message, sharing the PoseStamped's pose objects."""
    msg = PoseArray(poses=[m.pose for m in stamped])
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    return msg


class PoseBlock(NamedTuple):
    """A slice of a PoseArray: positions (m, 2), yaw (m,), finite (m,) mask, the message stamp."""

    xy: np.ndarray
    yaw: np.ndarray
    finite: np.ndarray
    stamp_ns: int


def parse_pose_block(msg: PoseArray, start: int, count: int) -> PoseBlock:
    """Robots start..start+count-1 of a PoseArray; raises ValueError when it holds fewer poses."""
    if len(msg.poses) < start + count:
        raise ValueError(f"pose array holds {len(msg.poses)} poses, robots up to index {start + count - 1} needed")
    values = np.array([(p.position.x, p.position.y, p.position.z, p.orientation.x, p.orientation.y,
                        p.orientation.z, p.orientation.w) for p in msg.poses[start:start + count]], dtype=np.float64)
    values = values.reshape(count, 7)
    finite = np.asarray(np.isfinite(values).all(-1))
    qx, qy, qz, qw = values[:, 3], values[:, 4], values[:, 5], values[:, 6]
    with np.errstate(invalid="ignore"):
        yaw = np.arctan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
    return PoseBlock(values[:, :2], yaw, finite, stamp_to_ns(msg.header.stamp))


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
