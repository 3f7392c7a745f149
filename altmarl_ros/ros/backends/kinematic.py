"""`kinematic` backend: unicycle robots driven by their cmd_vel, zones derived from positions.

Between decisions every robot integrates (v, w) (v clamped to `max_speed`) with Gaussian position
noise of `noise_std` m/sqrt(s), inside the arena. A robot's local state is that of the zone its position
falls in at the start of a decision step; the global state still follows the game's P_g, and the reward is
the game's r(s, a) for the observed zones and the robots' answered actions.
"""

from __future__ import annotations

import math

import numpy as np

from altmarl_ros.marl.game import TabularGame as Game
from altmarl_ros.marl.games.floor import FloorMap
from altmarl_ros.ros.backends.base import ParamFn, SimBackend, Snapshot, StepOutcome, game_step, initial_layout, outcome
from altmarl_ros.zones import Zones

ARENA_MARGIN = 0.2  # m kept between a robot and the arena's edge


class KinematicBackend(SimBackend):
    drives = True

    def __init__(self, game: Game, zones: Zones, n: int, param: ParamFn, floor: FloorMap | None = None) -> None:
        super().__init__(game, zones, n, param, floor)
        self.jitter = param("pose_jitter", 0.5, "m, radius of each robot's initial offset in its zone", low=0.0,
                            high=10.0)
        self.noise_std = param("noise_std", 0.02, "m/sqrt(s) position noise (kinematic)", low=0.0, high=10.0)
        self.max_speed = param("max_speed", 1.0, "m/s speed clamp (kinematic)", low=0.0, high=20.0)

    def reset(self, rng: np.random.Generator) -> Snapshot:
        self.rng = rng
        self.s_g, self.s_l, self.xy, self.yaw, _ = initial_layout(self.game, self.zones, self.n, rng, self.jitter,
                                                                self.floor)
        return Snapshot(self.xy, self.yaw, self.s_l, self.s_g)

    def observe(self) -> Snapshot:
        self.s_l = self.floor.local_state(self.zones.zone_of(self.xy))
        return Snapshot(self.xy, self.yaw, self.s_l, self.s_g)

    def apply(self, a_g: int, a_l: np.ndarray) -> StepOutcome:
        result = game_step(self.game, self.rng, self.s_g, self.s_l, a_g, a_l)
        self.s_g = int(result.state.s_g[0])  # the robots' zones follow their motion, not P_l
        return outcome(result)

    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        return self.xy, self.yaw

    def integrate(self, cmd: np.ndarray, dt: float) -> None:
        self.xy, self.yaw = unicycle_step(self.xy, self.yaw, cmd, dt, rng=self.rng, noise_std=self.noise_std,
                                          max_speed=self.max_speed, bound=self.zones.arena_half_size - ARENA_MARGIN)


def unicycle_step(xy: np.ndarray, yaw: np.ndarray, cmd: np.ndarray, dt: float, *, rng: np.random.Generator,
                  noise_std: float, max_speed: float, bound: float) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) xy, (n,) yaw under cmd (n, 2) = (v, w) for dt s: v clamped to max_speed, Gaussian position noise
    of noise_std m/sqrt(s), positions kept within +-bound -> the new (xy, yaw)."""
    v = np.clip(cmd[:, 0], -max_speed, max_speed)
    yaw = np.angle(np.exp(1j * (yaw + cmd[:, 1] * dt)))
    step = np.stack([v * np.cos(yaw), v * np.sin(yaw)], -1) * dt
    step += noise_std * math.sqrt(dt) * rng.standard_normal(xy.shape)
    return np.clip(xy + step, -bound, bound), yaw
