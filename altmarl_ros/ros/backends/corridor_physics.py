"""Mode `physics` for continuous policies: the corridor backend with MuJoCo robots (issue 17).

As `corridor.CorridorKinematicBackend`, with the robots of `physics.PhysicsRig` (the warehouse's walls and robot,
collisions and their accounting) instead of unicycles. Robots cannot stack: each starts on the free place of a
hexagonal grid nearest its drawn x (at a uniform y across the hall, the most central robots first); the summary
reports how far that moved them (`spawn_displacement_m`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from altmarl_ros.marl.continuous import deploy
from altmarl_ros.ros.backends.base import ParamFn, Snapshot
from altmarl_ros.ros.backends.corridor import CorridorBackend
from altmarl_ros.ros.backends.physics import PhysicsRig, spawn_grid
from altmarl_ros.zones import Zones


class CorridorPhysicsBackend(CorridorBackend):
    drives: ClassVar[bool] = True
    lockstep_control: ClassVar[bool] = True  # lockstep: a control cycle waits for every driving robot's cmd_vel

    def __init__(self, policy: deploy.Deployed, zones: Zones, n: int, param: ParamFn) -> None:
        super().__init__(policy, zones, n, param)
        self.rig = PhysicsRig(zones, param, zones_from_world=False)

    def reset(self, rng: np.random.Generator) -> Snapshot:
        self.rng = rng
        s_g, s_l = deploy.reset(self.env, rng, 1)
        bound = self.zones.arena_half_size - self.rig.world.robot.footprint_radius
        wanted = np.stack([self.frame.x_of(s_l[0]), rng.uniform(-bound, bound, self.n)], -1)
        grid = spawn_grid(self.rig.world, self.n, self.rig.spacing)
        free = np.ones(grid.shape[0], dtype=bool)
        xy = np.empty((self.n, 2))
        for i in np.argsort(np.abs(wanted[:, 0] - wanted[:, 0].mean()), kind="stable"):  # crowded centre first
            j = np.flatnonzero(free)[np.argmin(((grid[free] - wanted[i]) ** 2).sum(-1))]
            xy[i], free[j] = grid[j], False
        self.spawn_displacement = float(np.abs(xy[:, 0] - wanted[:, 0]).mean())
        self.rig.start(xy, np.zeros(self.n))
        self.s_g = float(s_g[0])
        return self.observe()

    def observe(self) -> Snapshot:
        self.xy, self.yaw = self.rig.engine.pose()
        self.s_l = self.frame.s_of(self.xy[:, 0])
        self.rig.close_interval()
        return super().observe()

    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        return self.rig.engine.pose()

    def integrate(self, cmd: np.ndarray, dt: float) -> None:
        self.rig.advance(cmd, dt)

    def step_metrics(self) -> dict[str, float]:
        return {**super().step_metrics(), **self.rig.step_metrics()}

    def summary(self) -> dict[str, Any]:
        return {**self.rig.summary(), "spawn_displacement_m": self.spawn_displacement,
                "spawn_displacement_note": "mean |x| shift of the start places from the drawn positions (m)"}


def episode(policy: deploy.Deployed, zones: Zones, *, random: bool, n_agents: int, k: int, steps: int, seed: int,
            decision_period: float, control_period: float = 0.1, **physics: Any) -> np.ndarray:
    """(steps,) per-step rewards of one lockstep episode in physics without ROS: what `altmarl swarm --mode physics`
    runs with this continuous policy (`random`: uniformly random players instead), robots driving by
    `corridor_drive` at robot_node's defaults every `control_period` s for `decision_period` s. `seed` fixes the
    start and the environment's draws as sim_node's `seed` does; the sample and the random actions have their
    own streams (common random numbers across policies)."""
    from altmarl_ros.ros.backends.rollout import fixed_params
    from altmarl_ros.ros.corridor import CORRIDOR_TOLERANCE, corridor_drive

    obs_rng, act_rng = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    backend = CorridorPhysicsBackend(policy, zones, n_agents, fixed_params(**physics))
    backend.reset(np.random.default_rng(seed))
    env, cycles = backend.env, max(1, round(decision_period / control_period))
    rewards = np.empty(steps)
    for t in range(steps):
        snap = backend.observe()
        if random:
            a_g, a_l = int(act_rng.integers(env.n_ga)), act_rng.integers(env.n_al, size=n_agents)
        else:
            hist = deploy.sample_histogram(env, obs_rng, backend.s_l[None, :], k)
            a_g = int(policy.dispatch(np.array([backend.s_g]), hist)[0])
            a_l = policy.local_actions(backend.s_g, backend.s_l)
        rewards[t] = backend.apply(a_g, a_l).reward
        target_x = backend.frame.target_x(snap.xy[:, 0], a_l)
        for _ in range(cycles):
            xy, yaw = backend.poses()
            backend.integrate(corridor_drive(xy, yaw, target_x, max_speed=0.8, max_turn=2.0,
                                             tolerance=CORRIDOR_TOLERANCE), control_period)
    return rewards
