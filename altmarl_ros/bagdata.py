"""Decision-step transitions from a rosbag2 of the swarm's topics (ROS-free: `rosbags`, no rclpy).

Works on any bag with the swarm's topic contract (README "Topics"): a physics, kinematic or model
run of `altmarl swarm --bag`, or a real deployment recorded with `ros2 bag record`. Used topics:

- `/swarm/tick` (std_msgs/Int64MultiArray [step, s_g, stamp_ns]): the decision steps, s_g, and the
  time at which the step's zones are read (required);
- `/robot_<i>/pose` (geometry_msgs/PoseStamped): each robot's zone at step t is the zone of its latest
  pose stamped at or before the tick's stamp (required);
- `/swarm/zone_goals` ([step, i, goal, ...]) and/or `/robot_<i>/zone_goal` ([step, goal]): the goal
  zone each robot chose at step t, hence a_l (required; a goal no local action leads to is left out);
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

from altmarl_ros import contract
from altmarl_ros.errors import UserError
from altmarl_ros.marl.games.floor import FloorMap, ring_map
from altmarl_ros.marl.identify import Transitions
from altmarl_ros.zones import Zones

TICK, COMMAND, GOALS = contract.TICK, contract.ZONE_COMMAND, contract.ZONE_GOALS
POSE = re.compile(contract.ROBOT_TOPIC_PATTERN.format(leaf=contract.POSE))
GOAL = re.compile(contract.ROBOT_TOPIC_PATTERN.format(leaf=contract.ZONE_GOAL))


class BagError(UserError, ValueError):
    """The bag cannot be read or lacks the topics identification needs (the message names them)."""


def read_transitions(path: str | Path, zones: Zones, floor: FloorMap | None = None) -> Transitions:
    """Transitions (see `altmarl_ros.marl.identify.Transitions`) of every decision step recorded in the bag;
    `floor` turns zones into local states and goal zones into local actions (the policy artifact's map;
    default: the ring warehouse's on the zones)."""
    floor = floor if floor is not None else ring_map(zones.n_zones)
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
                try:
                    _read(topic, decode(raw, conn), ticks, commands, goals, poses)
                except ValueError:  # a malformed message (contract.decode_*): left out, as a node would
                    continue
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
    if floor.n_zones != zones.n_zones:
        raise BagError(f"{path}: the floor map has {floor.n_zones} zones, the zone map {zones.n_zones}")
    state = np.where(zone >= 0, floor.zone_state[np.maximum(zone, 0)], -1)  # zones -> local states
    action = floor.action_from_goal(state, goal)  # as sim_node: the lowest action leading to the goal
    zone = state
    consecutive = np.diff(steps) == 1  # a transition needs tick t+1 recorded too
    a_g = np.array([commands.get(s, -1) for s in steps.tolist()])
    keep = np.flatnonzero(consecutive)
    return Transitions(s_g=s_g[keep], a_g=a_g[keep], s_g_next=s_g[keep + 1], s_l=np.maximum(zone[keep], 0),
                       a_l=np.where(zone[keep] >= 0, action[keep], -1), s_l_next=zone[keep + 1])


def _read(topic: str, msg: Any, ticks: dict[int, tuple[int, int]], commands: dict[int, int],
          goals: dict[int, dict[int, int]], poses: dict[int, list[tuple[int, float, float]]]) -> None:
    """File one decoded message of the bag under its step (the first of duplicates wins)."""
    if topic == TICK:
        tick = contract.decode_tick(msg.data)
        ticks.setdefault(tick.step, (tick.s_g, tick.stamp_ns))
    elif topic == COMMAND:
        answer = contract.decode_answer(msg.data)
        commands.setdefault(answer.step, answer.value)
    elif topic == GOALS:
        step, pairs = contract.decode_goal_pairs(msg.data)
        for i, g in pairs:
            goals[step].setdefault(i, g)
    elif (m := POSE.match(topic)) is not None:
        p = msg.pose.position
        poses[int(m.group(1))].append((contract.stamp_ns(msg.header.stamp), float(p.x), float(p.y)))
    elif (m := GOAL.match(topic)) is not None:
        answer = contract.decode_answer(msg.data)
        goals[answer.step].setdefault(int(m.group(1)), answer.value)
