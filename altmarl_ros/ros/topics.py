"""The rclpy side of the swarm's contract: QoS profiles and message <-> state conversions.

The contract itself (topic and node names, QoS settings, encodings, enumerations) is plain data in
`altmarl_ros.contract`; its names are re-exported here so that nodes write `topics.TICK` next to
`topics.tick_msg`. This module adds only what needs rclpy: `QoSProfile` objects built from the
contract's `Qos` data, and the messages.
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

from altmarl_ros import contract
from altmarl_ros.contract import (  # noqa: F401  (re-exported: the names nodes use with the messages below)
    CLOCK,
    CMD_VEL,
    DIAGNOSTICS,
    GLOBAL_STATE,
    METRICS,
    METRICS_FIELDS,
    POLL,
    POLL_POSES,
    POSE,
    POSE_TABLE,
    START,
    STOP,
    SWARM_COMMAND,
    TICK,
    ZONE_COMMAND,
    ZONE_GOAL,
    ZONE_GOALS,
    Answer,
    Tick,
    robot_topic,
)


def qos_profile(qos: contract.Qos) -> QoSProfile:
    """The rclpy QoSProfile of a contract QoS setting (history keep_last)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=qos.depth,
                      reliability=ReliabilityPolicy.RELIABLE if qos.reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if qos.transient_local else DurabilityPolicy.VOLATILE)


LATCHED_QOS = qos_profile(contract.LATCHED_QOS)
POSE_QOS = qos_profile(contract.POSE_QOS)
POSE_QOS_PROFILES = {name: qos_profile(qos) for name, qos in contract.POSE_QOS_PROFILES.items()}
ANSWER_QOS = qos_profile(contract.ANSWER_QOS)
TICK_READER_QOS = qos_profile(contract.TICK_READER_QOS)
COMMAND_READER_QOS = qos_profile(contract.COMMAND_READER_QOS)
GOALS_QOS = qos_profile(contract.GOALS_QOS)
CMD_VEL_QOS = qos_profile(contract.CMD_VEL_QOS)
POLL_POSES_QOS = qos_profile(contract.POLL_POSES_QOS)
METRICS_QOS = qos_profile(contract.METRICS_QOS)
DIAGNOSTICS_QOS = qos_profile(contract.DIAGNOSTICS_QOS)
CLOCK_QOS = qos_profile(contract.CLOCK_QOS)


def describe_qos(qos: QoSProfile) -> str:
    """'reliable/transient_local/keep_last(1)': the policies that decide whether two endpoints match (the
    history only when known: the graph does not carry a remote endpoint's)."""
    text = f"{qos.reliability.name.lower()}/{qos.durability.name.lower()}"
    if qos.history == HistoryPolicy.KEEP_LAST:
        return f"{text}/keep_last({qos.depth})"
    return text if qos.history == HistoryPolicy.UNKNOWN else f"{text}/{qos.history.name.lower()}"


def ns_to_stamp(ns: int) -> Time:
    sec, nanosec = contract.ns_to_sec_nanosec(ns)
    return Time(sec=sec, nanosec=nanosec)


def stamp_to_ns(stamp: Time) -> int:
    return contract.stamp_ns(stamp)


def _labelled(msg, labels: tuple[str, ...]):
    msg.layout.dim = [MultiArrayDimension(label=",".join(labels), size=len(labels), stride=len(labels))]
    return msg


def tick_msg(tick: Tick) -> Int64MultiArray:
    return _labelled(Int64MultiArray(data=[int(tick.step), int(tick.s_g), int(tick.stamp_ns)]),
                     ("step", "s_g", "stamp_ns"))


def parse_tick(msg: Int64MultiArray, n_global_states: int | None = None) -> Tick:
    """Raises ValueError for a malformed tick, or one whose s_g is not below `n_global_states`."""
    return contract.decode_tick(msg.data, n_global_states)


def answer_msg(step: int, value: int, label: str) -> Int32MultiArray:
    return _labelled(Int32MultiArray(data=[int(step), int(value)]), ("step", label))


def parse_answer(msg: Int32MultiArray) -> Answer:
    """Raises ValueError for a malformed answer."""
    return contract.decode_answer(msg.data)


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
