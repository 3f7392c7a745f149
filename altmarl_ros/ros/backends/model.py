"""`model` backend: transitions drawn exactly from the game's P_g and P_l.

Each decision step samples s_l' ~ P_l(.|s_l, s_g, a_l) and s_g' ~ P_g(.|s_g, a_g) with
`altmarl_ros.marl.sim.step` (batch 1), so the ROS closed loop can be compared with the NumPy
evaluation of the same policies. A robot's pose is its zone's centre (the floor map's zone of its local
state) plus a fixed per-robot offset.
"""

from __future__ import annotations

import numpy as np

from altmarl_ros.marl.game import TabularGame as Game
from altmarl_ros.marl.games.floor import FloorMap
from altmarl_ros.ros.backends.base import ParamFn, SimBackend, Snapshot, StepOutcome, game_step, initial_layout, outcome
from altmarl_ros.zones import Zones


class ModelBackend(SimBackend):
    drives = False

    def __init__(self, game: Game, zones: Zones, n: int, param: ParamFn, floor: FloorMap | None = None) -> None:
        super().__init__(game, zones, n, param, floor)
        self.jitter = param("pose_jitter", 0.5, "m, radius of each robot's fixed offset in its zone", low=0.0,
                            high=10.0)

    def reset(self, rng: np.random.Generator) -> Snapshot:
        self.rng = rng
        self.s_g, self.s_l, self.xy, self.yaw, self.offset = initial_layout(self.game, self.zones, self.n, rng,
                                                                             self.jitter, self.floor)
        return self.observe()

    def observe(self) -> Snapshot:
        return Snapshot(self.xy, self.yaw, self.s_l, self.s_g)

    def apply(self, a_g: int, a_l: np.ndarray) -> StepOutcome:
        result = game_step(self.game, self.rng, self.s_g, self.s_l, a_g, a_l)
        self.s_g = int(result.state.s_g[0])
        self.s_l = result.state.s_l[0].copy()
        self.xy = self.zones.centres[self.floor.local_state_zone[self.s_l]] + self.offset
        return outcome(result)

    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        return self.xy, self.yaw
