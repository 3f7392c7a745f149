"""The continuous warehouse on the floor (issue 17, item 4): its state line laid along a corridor. ROS-free.

The zones file of a continuous deployment (config/zones_corridor.yaml) is a one-row grid whose zones are the
environment's histogram bins: zone i = bin i, so the controller's zone counts of its k sampled robots are k
times the histogram pi_g reads, with no further mapping. A robot's local state s_l is its x along the corridor
(`CorridorFrame.s_of`); its action a_l moves it by offsets[a_l] state units (`target_x`); each robot keeps a
lane (a fixed y) so that the swarm is visible.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl.continuous.warehouse import ContinuousWarehouse
from altmarl_ros.zones import Zones

CORRIDOR_ZONES = "config/zones_corridor.yaml"  # the package's default zones for continuous policies
CORRIDOR_STEP_PERIOD = 1.0  # s of simulated time per decision when robots drive: a 0.125 m move settles in ~0.9 s
CORRIDOR_TOLERANCE = 0.02  # m: robot_node's default goal_tolerance with a continuous policy (a move is 0.125 m)
LANE_FRACTION = 0.8  # lanes within +- this fraction of zone_radius of the axis


class CorridorFrame(NamedTuple):
    """State units <-> metres: x = metres_per_unit (s - centre)."""

    env: ContinuousWarehouse
    metres_per_unit: float
    centre: float  # the state at x = 0
    lane_half_width: float  # m

    @classmethod
    def of(cls, zones: Zones, env: ContinuousWarehouse) -> CorridorFrame:
        """The frame of `zones`, which must be one row of env.n_bins zones (InputError naming what differs)."""
        if zones.layout != "grid" or zones.grid_cols != zones.n_zones or zones.n_zones != env.n_bins:
            raise InputError(f"continuous policies need a corridor zones file: layout 'grid', one row of "
                             f"{env.n_bins} zones (n_zones = grid_cols = {env.n_bins}), as {CORRIDOR_ZONES}; got "
                             f"layout {zones.layout!r}, n_zones {zones.n_zones}, grid_cols {zones.grid_cols}")
        bin_width = (env.high - env.low) / env.n_bins
        return cls(env, zones.grid_pitch / bin_width, (env.low + env.high) / 2, LANE_FRACTION * zones.zone_radius)

    def x_of(self, s: np.ndarray) -> np.ndarray:
        return self.metres_per_unit * (np.asarray(s, dtype=np.float64) - self.centre)

    def s_of(self, x: np.ndarray) -> np.ndarray:
        """x (m) -> s_l, clipped to the line [low, high]."""
        s = self.centre + np.asarray(x, dtype=np.float64) / self.metres_per_unit
        return np.clip(s, self.env.low, self.env.high)

    def lanes(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n,) a fixed y per robot, uniform across the corridor."""
        return rng.uniform(-self.lane_half_width, self.lane_half_width, n)

    def target_x(self, x: np.ndarray, a_l: np.ndarray) -> np.ndarray:
        """Where local actions a_l send robots at x: x + offsets[a_l] in metres, inside the line."""
        s = self.s_of(x) + np.asarray(self.env.offsets, dtype=np.float64)[np.asarray(a_l)]
        return self.x_of(np.clip(s, self.env.low, self.env.high))


def corridor_drive(xy: np.ndarray, yaw: np.ndarray, target_x: np.ndarray, *, max_speed: float, max_turn: float,
                   tolerance: float) -> np.ndarray:
    """(n, 2) xy, (n,) yaw, (n,) target x -> (n, 2) cmd_vel (v, w): drive forward or backward along the corridor
    (heading held at +x: w = clip(-2 yaw), v = clip(2 dx, +-max_speed) cos yaw), stop within `tolerance` m."""
    dx = np.asarray(target_x, dtype=np.float64) - np.asarray(xy, dtype=np.float64)[:, 0]
    err = np.arctan2(np.sin(yaw), np.cos(yaw))
    w = np.clip(-2.0 * err, -max_turn, max_turn)
    v = np.clip(2.0 * dx, -max_speed, max_speed) * np.maximum(0.0, np.cos(err))
    far = np.abs(dx) > tolerance
    return np.stack([np.where(far, v, 0.0), w], -1)
