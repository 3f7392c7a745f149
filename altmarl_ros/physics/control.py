"""The robots' go-to-goal law, vectorised over robots (ROS-free, no MuJoCo).

Each robot heads for its goal zone's centre, or with a goal spacing > 0 for its own parking slot in the
zone (`altmarl_ros.zones.Zones.goal_points`), so that a zone's robots spread over it. One definition for
robot_node (which publishes it as cmd_vel) and for the in-process physics rollouts
(`altmarl_ros.ros.backends.rollout`), so both drive the robots exactly alike.
"""

from __future__ import annotations

import numpy as np

MAX_SPEED = 0.8  # m/s, robot_node's default `max_speed`
MAX_TURN = 2.0  # rad/s, robot_node's default `max_turn`
GOAL_TOLERANCE = 0.3  # m, robot_node's default `goal_tolerance`
GOAL_SPACING = 0.0  # m, robot_node's default `goal_spacing` (0: the zone centre; > 0: `Zones.goal_points`)


def go_to_goal(xy: np.ndarray, yaw: np.ndarray, target: np.ndarray, *, max_speed: float = MAX_SPEED,
               max_turn: float = MAX_TURN, tolerance: float = GOAL_TOLERANCE) -> np.ndarray:
    """(n, 2) xy, (n,) yaw, (n, 2) target -> (n, 2) cmd_vel (v, w).

    Turn toward the target at w = clip(2 err, +-max_turn) (err: heading error wrapped to (-pi, pi]),
    drive at v = min(max_speed, distance) * max(0, cos err) (no reversing, slow down within 1 m), and
    stop (0, 0) within `tolerance` of the target.
    """
    d = np.asarray(target, dtype=np.float64) - np.asarray(xy, dtype=np.float64)
    dist = np.hypot(d[:, 0], d[:, 1])
    err = np.arctan2(d[:, 1], d[:, 0]) - np.asarray(yaw, dtype=np.float64)
    err = np.arctan2(np.sin(err), np.cos(err))
    w = np.clip(2.0 * err, -max_turn, max_turn)
    v = np.minimum(max_speed, dist) * np.maximum(0.0, np.cos(err))
    far = dist > tolerance
    return np.stack([np.where(far, v, 0.0), np.where(far, w, 0.0)], -1)
