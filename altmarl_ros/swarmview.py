"""What a viewer needs of a swarm run, per decision step, read from its rosbag2 (ROS-free: `rosbags`, no rclpy).

A bag of `altmarl swarm --bag` or `bag_path:=` (or `ros2 bag record` of a deployment with the same topic
contract, see altmarl_ros.bagdata) holds `/swarm/tick` ([step, s_g, stamp_ns]), every robot's
`/robot_<i>/pose`, the goals (`/swarm/zone_goals` or `/robot_<i>/zone_goal`), `/swarm/zone_command` and
`/swarm/metrics`. `read_frames` turns them into one `SwarmFrames` record: robot i's position at step t is
its latest pose stamped at or before the tick's stamp. Also the zone colours shared by the video and the
RViz/Foxglove markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from altmarl_ros.errors import UserError
from altmarl_ros.zones import Zones

TICK, COMMAND, GOALS, METRICS = "/swarm/tick", "/swarm/zone_command", "/swarm/zone_goals", "/swarm/metrics"
POSE = re.compile(r"^/robot_(\d+)/pose$")
GOAL = re.compile(r"^/robot_(\d+)/zone_goal$")
# Zone i's colour (RGB in [0, 1]), matplotlib's tab10 order; zones beyond 10 reuse it.
ZONE_COLOURS = np.array([(0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16),
                         (0.58, 0.4, 0.74), (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.5, 0.5, 0.5),
                         (0.74, 0.74, 0.13), (0.09, 0.75, 0.81)])
MODEL_OFFSET_STD = 1e-6  # m: a robot whose offset from its zone centre never changes was placed, not driven


def zone_colours(zone: np.ndarray) -> np.ndarray:
    """(...,) zone ids -> (..., 3) RGB; -1 (unknown) is grey."""
    zone = np.asarray(zone)
    return np.where((zone >= 0)[..., None], ZONE_COLOURS[np.maximum(zone, 0) % len(ZONE_COLOURS)], 0.8)


class ViewError(UserError, ValueError):
    """The bag cannot be read or lacks what a view needs (the message names it)."""


@dataclass(frozen=True)
class SwarmFrames:
    """Per decision step t (T steps, n robots): steps (T,), s_g (T,), a_g (T,) (-1 unknown), reward (T,) (NaN
    unknown), xy (T, n, 2) robot positions in metres (NaN before a robot's first pose), zone (T, n) and goal
    (T, n) zone ids (-1 unknown)."""

    steps: np.ndarray
    s_g: np.ndarray
    a_g: np.ndarray
    reward: np.ndarray
    xy: np.ndarray
    zone: np.ndarray
    goal: np.ndarray
    zones: Zones

    @property
    def n_robots(self) -> int:
        return int(self.xy.shape[1])

    def placed(self) -> bool:
        """True when every robot keeps one offset from its zone centre (sim_node's `model` mode places robots in
        their zones): positions carry no motion, so a view should show zone occupancy instead."""
        known = (self.zone >= 0) & np.isfinite(self.xy).all(-1)
        if not known.any():
            return True
        offset = np.where(known[..., None], self.xy - self.zones.centres[np.maximum(self.zone, 0)], np.nan)
        with np.errstate(invalid="ignore"):
            spread = np.nanstd(offset, axis=0)
        return bool(np.nanmax(spread) <= MODEL_OFFSET_STD)

    def occupancy(self) -> np.ndarray:
        """(T, n_zones) robots per zone at each step."""
        Z = self.zones.n_zones
        counts = np.zeros((self.steps.size, Z), dtype=np.int64)
        for z in range(Z):
            counts[:, z] = (self.zone == z).sum(1)
        return counts


def _stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _labelled(msg: Any) -> dict[str, float]:
    """A Float64MultiArray whose one layout dimension labels its fields ("step,s_g,...", as /swarm/metrics
    does) -> {label: value}."""
    labels = msg.layout.dim[0].label.split(",") if len(msg.layout.dim) == 1 else []
    return dict(zip(labels, np.asarray(msg.data, dtype=np.float64).tolist(), strict=False))


class _Collector:
    def __init__(self) -> None:
        self.ticks: dict[int, tuple[int, int]] = {}
        self.commands: dict[int, int] = {}
        self.rewards: dict[int, float] = {}
        self.goals: dict[int, dict[int, int]] = {}
        self.poses: dict[int, list[tuple[int, float, float]]] = {}

    def take(self, topic: str, msg: Any) -> None:
        if topic == TICK and len(msg.data) == 3:
            self.ticks.setdefault(int(msg.data[0]), (int(msg.data[1]), int(msg.data[2])))
        elif topic == COMMAND and len(msg.data) == 2:
            self.commands.setdefault(int(msg.data[0]), int(msg.data[1]))
        elif topic == METRICS:
            row = _labelled(msg)
            if "step" in row and "reward" in row:
                self.rewards.setdefault(int(row["step"]), row["reward"])
        elif topic == GOALS:
            data = np.asarray(msg.data, dtype=np.int64)
            if data.size % 2 == 1:
                step = self.goals.setdefault(int(data[0]), {})
                for i, g in zip(data[1::2].tolist(), data[2::2].tolist(), strict=True):
                    step.setdefault(i, g)
        elif (m := POSE.match(topic)) is not None:
            p = msg.pose.position
            self.poses.setdefault(int(m.group(1)), []).append((_stamp_ns(msg.header.stamp), float(p.x), float(p.y)))
        elif (m := GOAL.match(topic)) is not None and len(msg.data) == 2:
            self.goals.setdefault(int(msg.data[0]), {}).setdefault(int(m.group(1)), int(msg.data[1]))


def read_frames(path: str | Path, zones: Zones) -> SwarmFrames:
    """Every recorded decision step of the bag at `path` as a `SwarmFrames` (raises ViewError naming what is
    missing)."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise ViewError(f"{path}: not a rosbag2 directory (no metadata.yaml)")
    wanted = (TICK, COMMAND, GOALS, METRICS)
    got = _Collector()
    try:
        with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
            conns = [c for c in reader.connections if c.topic in wanted or POSE.match(c.topic) or GOAL.match(c.topic)]
            for conn, _, raw in reader.messages(connections=conns):
                got.take(conn.topic, reader.deserialize(raw, conn.msgtype))
    except Exception as exc:  # rosbags raises its own types for unreadable/corrupt bags
        raise ViewError(f"{path}: cannot read the bag: {exc}") from exc
    if not got.ticks:
        raise ViewError(f"{path}: no decision steps on {TICK}")
    if not got.poses:
        raise ViewError(f"{path}: no /robot_<i>/pose messages: nothing to draw")
    steps = np.array(sorted(got.ticks))
    stamps = np.array([got.ticks[s][1] for s in steps.tolist()])
    n = max(got.poses) + 1
    xy = np.full((steps.size, n, 2), np.nan)
    for i, samples in got.poses.items():  # per robot: its latest pose at or before each tick
        arr = np.array(sorted(samples))
        at = np.searchsorted(arr[:, 0], stamps, side="right") - 1
        xy[at >= 0, i] = arr[at[at >= 0], 1:3]
    known = np.isfinite(xy).all(-1)
    zone = np.full((steps.size, n), -1, dtype=np.int64)
    zone[known] = zones.zone_of(xy[known])
    goal = np.full((steps.size, n), -1, dtype=np.int64)
    for row, step in enumerate(steps.tolist()):
        for i, g in got.goals.get(step, {}).items():
            if 0 <= i < n:
                goal[row, i] = g
    return SwarmFrames(steps=steps, s_g=np.array([got.ticks[s][0] for s in steps.tolist()]),
                       a_g=np.array([got.commands.get(s, -1) for s in steps.tolist()]),
                       reward=np.array([got.rewards.get(s, np.nan) for s in steps.tolist()]),
                       xy=xy, zone=zone, goal=goal, zones=zones)
