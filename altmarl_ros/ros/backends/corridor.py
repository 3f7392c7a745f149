"""Backends of sim_node for continuous policies (issue 17): the continuous warehouse on a corridor.

The world is `marl.continuous` 's (the authors' continuous warehouse, PAPER.md 4.3) with the state line laid
along x (`ros.corridor.CorridorFrame`); the robots' answers are their local actions a_l (0 stay, 1 and 2 the
two moves), the controller's its target a_g. Snapshot.s_l holds each robot's bin (= zone), Snapshot.s_g the
tick's fixed-point code of s_g (`continuous.deploy.encode_s_g`); the continuous values are the backend's.

- `CorridorModelBackend` (mode `model`): transitions drawn exactly from the environment's dynamics in NumPy
  (`continuous.deploy.step`), so the closed loop can be compared with `deploy.rollout_rewards`.
- `CorridorKinematicBackend` (mode `kinematic`): unicycles driven by their cmd_vel (`kinematic.unicycle_step`);
  s_l is read from x at the start of each decision step; s_g follows the environment's P_g; the reward is the
  environment's r for the observed positions and the answered actions.
- `corridor_physics.CorridorPhysicsBackend` (mode `physics`, MuJoCo; its own module so that the other modes never
  import MuJoCo).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from altmarl_ros.marl.continuous import deploy
from altmarl_ros.ros.backends.base import ParamFn, SimBackend, Snapshot, StepOutcome
from altmarl_ros.ros.backends.kinematic import ARENA_MARGIN, unicycle_step
from altmarl_ros.ros.corridor import CorridorFrame
from altmarl_ros.zones import Zones


class ActionAnswers:
    """sim_node's view of continuous answers: the answered value is a_l itself (`action_from_goal`'s role in a
    tabular floor map); -1 marks one no local action has."""

    def __init__(self, n_al: int, n_bins: int) -> None:
        self.n_al = n_al
        self.stay_action = np.zeros(n_bins, dtype=np.int64)  # offsets[0] = 0: stay, whatever the bin

    def action_from_goal(self, s_l: np.ndarray, goals: np.ndarray) -> np.ndarray:
        goals = np.asarray(goals, dtype=np.int64)
        return np.where((goals >= 0) & (goals < self.n_al), goals, -1)


class CorridorBackend(SimBackend):
    """The shared part: state, reset, snapshot and the step's reward and s_g transition."""

    def __init__(self, policy: deploy.Deployed, zones: Zones, n: int, param: ParamFn) -> None:
        self.env = dataclasses.replace(policy.env, n_agents=n)  # this swarm's n (the clusters' split is per n)
        self.zones, self.n = zones, n
        self.frame = CorridorFrame.of(zones, self.env)
        self.answers = ActionAnswers(self.env.n_al, self.env.n_bins)
        self.observed_s_g, self.observed_s_l = 0.0, np.zeros(n)

    def reset(self, rng: np.random.Generator) -> Snapshot:
        self.rng = rng
        s_g, s_l = deploy.reset(self.env, rng, 1)
        self.s_g, self.s_l = float(s_g[0]), s_l[0]
        self.xy = np.stack([self.frame.x_of(self.s_l), self.frame.lanes(rng, self.n)], -1)
        self.yaw = np.zeros(self.n)
        return self.observe()

    def observe(self) -> Snapshot:
        self.observed_s_g, self.observed_s_l = self.s_g, self.s_l
        return Snapshot(self.xy, self.yaw, deploy.bins(self.env, self.s_l), deploy.encode_s_g(self.env, self.s_g))

    def _transition(self, a_g: int, a_l: np.ndarray) -> tuple[StepOutcome, np.ndarray]:
        """The environment's step from the observed state: the outcome and the model's next s_l (n,)."""
        out = deploy.step(self.env, self.rng, np.array([self.s_g]), self.s_l[None, :], np.array([a_g]), a_l[None, :])
        self.s_g = float(out.s_g[0])
        result = StepOutcome(float(out.reward[0]), float(out.r_g[0]), float(out.r_l_mean[0]),
                             deploy.encode_s_g(self.env, self.s_g))
        return result, out.s_l[0]

    def apply(self, a_g: int, a_l: np.ndarray) -> StepOutcome:
        """Driving backends: the robots' positions follow their motion, not the model (model mode overrides)."""
        return self._transition(a_g, a_l)[0]

    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        return self.xy, self.yaw

    def marker_view(self, snap: Snapshot, goals: np.ndarray) -> tuple[int, np.ndarray]:
        """The bin of s_g, and each answering robot's target bin (answers are local actions)."""
        a_l = self.answers.action_from_goal(snap.s_l, goals)
        delta = np.asarray(self.env.offsets)[np.maximum(a_l, 0)]
        target = deploy.bins(self.env, np.clip(self.observed_s_l + delta, self.env.low, self.env.high))
        return int(deploy.bins(self.env, np.asarray(self.observed_s_g))), np.where(a_l >= 0, target, -1)

    def step_metrics(self) -> dict[str, float]:
        return {"s_g_value": self.observed_s_g}


class CorridorModelBackend(CorridorBackend):
    drives: ClassVar[bool] = False

    def apply(self, a_g: int, a_l: np.ndarray) -> StepOutcome:
        result, self.s_l = self._transition(a_g, a_l)
        self.xy = np.stack([self.frame.x_of(self.s_l), self.xy[:, 1]], -1)
        return result


class CorridorKinematicBackend(CorridorBackend):
    drives: ClassVar[bool] = True

    def __init__(self, policy: deploy.Deployed, zones: Zones, n: int, param: ParamFn) -> None:
        super().__init__(policy, zones, n, param)
        self.noise_std = param("noise_std", 0.02, "m/sqrt(s) position noise (kinematic)", low=0.0, high=10.0)
        self.max_speed = param("max_speed", 1.0, "m/s speed clamp (kinematic)", low=0.0, high=20.0)

    def observe(self) -> Snapshot:
        self.s_l = self.frame.s_of(self.xy[:, 0])
        return super().observe()

    def integrate(self, cmd: np.ndarray, dt: float) -> None:
        self.xy, self.yaw = unicycle_step(self.xy, self.yaw, cmd, dt, rng=self.rng, noise_std=self.noise_std,
                                          max_speed=self.max_speed, bound=self.zones.arena_half_size - ARENA_MARGIN)

