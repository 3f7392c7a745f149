"""Closed-loop episodes in physics without ROS: the same backend, policies and go-to-goal law as the swarm.

A driver of the physics backend; ROS-free like every module of `ros.backends`.

One episode = what `altmarl swarm --mode physics` runs in lockstep, in one process: at each decision
step the controller's pi_g acts on a fresh uniform k-subset of the robots' zones (Algorithm 4), every
robot samples a_l ~ pi_l(.|s_l, s_g) and heads for its goal zone's centre (with `goal_spacing` > 0: its
parking slot there, robot i in slot i, as robot_node) with `control.go_to_goal`, re-evaluated every
`control_period` s of simulated time for `decision_period` s. Used for the random-policy baseline of a
swarm run, for paired policy comparisons (common random numbers: episode e of every policy starts from
the same seed), and for benchmarks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from altmarl_ros.marl import sim
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games.floor import FloorMap
from altmarl_ros.marl.identify import Transitions
from altmarl_ros.marl.policy import RandomGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.sim import GlobalController, StatefulGlobalController
from altmarl_ros.physics.control import GOAL_SPACING, go_to_goal
from altmarl_ros.ros.backends.physics import PhysicsBackend
from altmarl_ros.zones import Zones


class Episode(NamedTuple):
    rewards: np.ndarray  # (T,) per-step system reward r_g + mean r_l
    transitions: Transitions
    summary: dict[str, Any]  # PhysicsBackend.summary()


def fixed_params(**overrides: Any):
    """A ParamFn for PhysicsBackend outside ROS: each parameter's default unless overridden."""
    def param(name: str, default: Any, description: str, *, low: float | None = None,
              high: float | None = None) -> Any:
        return overrides.get(name, default)
    return param


def episode(game: TabularGame, zones: Zones, pi_g: GlobalController | StatefulGlobalController,
            pi_l: TabularLocalPolicy, *, n_agents: int, steps: int, seed: int, decision_period: float,
            control_period: float = 0.1, goal_spacing: float = GOAL_SPACING, floor: FloorMap | None = None,
            **physics: Any) -> Episode:
    """One lockstep episode in physics. `seed` fixes the start state and the environment's draws (P_g) as
    sim_node's `seed` does (the same start as a swarm run with that seed); the controller's subsets and the
    robots' action draws use their own streams, so two policies run from one seed share the start and the
    environment's randomness (common random numbers). `floor`: the game's floor map (default: the ring's)."""
    env_rng = np.random.default_rng(seed)
    obs_rng, act_rng = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    backend = PhysicsBackend(game, zones, n_agents, fixed_params(**physics), floor)
    backend.reset(env_rng)
    cycles = max(1, round(decision_period / control_period))
    robots = np.arange(n_agents)
    rewards = np.empty(steps)
    rec: dict[str, list[Any]] = {key: [] for key in Transitions._fields}
    memory = sim.dispatcher_memory(pi_g, 1)
    for t in range(steps):
        snap = backend.observe()
        if t:
            rec["s_g_next"].append(snap.s_g)
            rec["s_l_next"].append(snap.s_l.copy())
        actions, memory = sim.global_action(pi_g, obs_rng, memory, np.array([snap.s_g]), snap.s_l[None, :])
        a_g = int(actions[0])
        a_l = pi_l.sample(act_rng, np.array([snap.s_g]), snap.s_l[None, :])[0]
        out = backend.apply(a_g, a_l)
        rewards[t] = out.reward
        for key, value in (("s_g", snap.s_g), ("a_g", a_g), ("s_l", snap.s_l.copy()), ("a_l", a_l)):
            rec[key].append(value)
        target = zones.goal_points(backend.floor.goal_zone(snap.s_l, a_l), robots, goal_spacing)
        for _ in range(cycles):
            xy, yaw = backend.poses()
            backend.integrate(go_to_goal(xy, yaw, target), control_period)
    last = backend.observe()
    rec["s_g_next"].append(last.s_g)
    rec["s_l_next"].append(last.s_l.copy())
    transitions = Transitions(*(np.asarray(rec[key]) for key in Transitions._fields))
    return Episode(rewards, transitions, backend.summary())


def random_global(game: TabularGame) -> RandomGlobalPolicy:
    return RandomGlobalPolicy(game.n_global_actions)


def random_local(game: TabularGame) -> TabularLocalPolicy:
    return TabularLocalPolicy.uniform(game.n_global_states, game.n_local_states, game.n_local_actions)
