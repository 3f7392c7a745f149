"""Decision-step transitions from a rosbag2 of the swarm's topics (ROS-free: `rosbags`, no rclpy).

Works on any bag with the swarm's topic contract (README "Topics"): a physics, kinematic or model
run of `altmarl swarm --bag`, or a real deployment recorded with `ros2 bag record`. Used topics:

- `/swarm/tick` (std_msgs/Int64MultiArray [step, s_g, stamp_ns]): the decision steps, s_g, and the
  time at which the step's zones are read (required);
- `/robot_<i>/pose` (geometry_msgs/PoseStamped): each robot's zone at step t is the zone of its latest
  pose stamped at or before the tick's stamp (required);
- `/swarm/zone_goals` ([step, i, goal, ...]) and/or `/robot_<i>/zone_goal` ([step, goal]): the goal
  zone each robot chose at step t, hence a_l (required; a goal not one move away is left out);
- `/swarm/zone_command` ([step, a_g]): a_g, for checking P_g (optional).

s_l(t+1) is the robot's zone at tick t+1. Robot i of /swarm/zone_goals is `robot_<i>` (the registry
order of `altmarl swarm`). Message times in the bag are not used; header stamps and steps are.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from altmarl_ros.errors import UserError
from altmarl_ros.marl.games.warehouse import MOVES
from altmarl_ros.marl.identify import Transitions
from altmarl_ros.zones import Zones

TICK, COMMAND, GOALS = "/swarm/tick", "/swarm/zone_command", "/swarm/zone_goals"
POSE = re.compile(r"^/robot_(\d+)/pose$")
GOAL = re.compile(r"^/robot_(\d+)/zone_goal$")


class BagError(UserError, ValueError):
    """The bag cannot be read or lacks the topics identification needs (the message names them)."""


def _stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def read_transitions(path: str | Path, zones: Zones) -> Transitions:
    """Transitions (see `altmarl_ros.marl.identify.Transitions`) of every decision step recorded in the bag."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise BagError(f"{path}: not a rosbag2 directory (no metadata.yaml)")
    ticks: dict[int, tuple[int, int]] = {}
    commands: dict[int, int] = {}
    goals: dict[int, dict[int, int]] = defaultdict(dict)
    poses: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    try:
        reader_cm = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED))
        with reader_cm as reader:
            topics = {c.topic for c in reader.connections}
            missing = [t for t in (TICK,) if t not in topics]
            if not any(POSE.match(t) for t in topics):
                missing.append("/robot_<i>/pose")
            if GOALS not in topics and not any(GOAL.match(t) for t in topics):
                missing.append(f"{GOALS} or /robot_<i>/zone_goal")
            if missing:
                raise BagError(f"{path}: the bag lacks {', '.join(missing)} (has {sorted(topics)[:8]}"
                               f"{' ...' if len(topics) > 8 else ''}); identification needs the ticks, the robots' "
                               "poses and their zone goals")
            def decode(raw: bytes, conn: Any) -> Any:
                return reader.deserialize(raw, conn.msgtype)

            for conn, _, raw in reader.messages():
                topic = conn.topic
                if topic == TICK:
                    data = decode(raw, conn).data
                    if len(data) == 3:
                        ticks.setdefault(int(data[0]), (int(data[1]), int(data[2])))
                elif topic == COMMAND:
                    data = decode(raw, conn).data
                    if len(data) == 2:
                        commands.setdefault(int(data[0]), int(data[1]))
                elif topic == GOALS:
                    data = np.asarray(decode(raw, conn).data, dtype=np.int64)
                    if data.size >= 1 and data.size % 2 == 1:
                        step_goals = goals[int(data[0])]
                        for i, g in zip(data[1::2].tolist(), data[2::2].tolist(), strict=True):
                            step_goals.setdefault(i, g)
                elif (m := POSE.match(topic)) is not None:
                    msg = decode(raw, conn)
                    p = msg.pose.position
                    poses[int(m.group(1))].append((_stamp_ns(msg.header.stamp), float(p.x), float(p.y)))
                elif (m := GOAL.match(topic)) is not None:
                    data = decode(raw, conn).data
                    if len(data) == 2:
                        goals[int(data[0])].setdefault(int(m.group(1)), int(data[1]))
    except BagError:
        raise
    except Exception as exc:  # rosbags raises its own types for unreadable/corrupt bags
        raise BagError(f"{path}: cannot read the bag: {exc}") from exc
    if len(ticks) < 2:
        raise BagError(f"{path}: {len(ticks)} decision step(s) on {TICK}; at least 2 are needed for one transition")
    steps = np.array(sorted(ticks))
    n = max(poses) + 1
    s_g = np.array([ticks[s][0] for s in steps])
    stamps = np.array([ticks[s][1] for s in steps])
    zone = np.full((steps.size, n), -1, dtype=np.int64)
    for i, samples in poses.items():  # per robot: its latest pose at or before each tick
        arr = np.array(sorted(samples))
        at = np.searchsorted(arr[:, 0], stamps, side="right") - 1
        ok = at >= 0
        zone[ok, i] = zones.zone_of(arr[at[ok], 1:3])
    goal = np.full((steps.size, n), -1, dtype=np.int64)
    for row, step in enumerate(steps.tolist()):
        for i, g in goals.get(step, {}).items():
            if 0 <= i < n:
                goal[row, i] = g
    action = np.full(goal.shape, -1, dtype=np.int64)
    Z = zones.n_zones
    for a, move in reversed(list(enumerate(MOVES))):  # as topics.action_from_goal: the lowest action wins ties
        hit = (zone >= 0) & (goal >= 0) & (goal < Z) & ((zone + move) % Z == goal)
        action = np.where(hit, a, action)
    consecutive = np.diff(steps) == 1  # a transition needs tick t+1 recorded too
    a_g = np.array([commands.get(s, -1) for s in steps.tolist()])
    keep = np.flatnonzero(consecutive)
    return Transitions(s_g=s_g[keep], a_g=a_g[keep], s_g_next=s_g[keep + 1], s_l=np.maximum(zone[keep], 0),
                       a_l=np.where(zone[keep] >= 0, action[keep], -1), s_l_next=zone[keep + 1])
