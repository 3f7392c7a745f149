"""The NumPy reference for a ROS closed-loop run (ROS-free).

The closed loop reports the mean per-step (undiscounted) reward of ONE trajectory of T steps from
`reset`. Its NumPy counterpart is the same statistic over many independent episodes of the same
length, with the same game, n, k and policies (`altmarl_ros.marl.sim`, Algorithm 4). Under the
hypothesis "the ROS loop implements the same process", the closed-loop value is one draw from the
distribution whose mean and spread `reference_rewards` estimates, so |closed - mean| is judged
against `episode_std` (plus the NumPy mean's own stderr).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from altmarl_ros.marl import sim as marl_sim
from altmarl_ros.marl.continuous.deploy import Deployed, rollout_rewards
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.policy import RandomGlobalPolicy, TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.pooled import PooledGlobalPolicy


class Reference(NamedTuple):
    """Mean per-step reward over episodes: mean, stderr of the mean, spread of one episode, episodes."""

    mean: float
    stderr: float
    episode_std: float
    episodes: int


def episode_rewards(game: TabularGame, pi_g: TabularGlobalPolicy | PooledGlobalPolicy | None, pi_l: TabularLocalPolicy,
                    rng: np.random.Generator, *, n_agents: int, steps: int, episodes: int) -> np.ndarray:
    """(episodes,) mean per-step reward of each episode. pi_g None = uniformly random global actions."""
    controller = RandomGlobalPolicy(game.n_global_actions) if pi_g is None else pi_g
    if isinstance(controller, PooledGlobalPolicy):  # its filter for this many robots, as the controller node does
        controller = controller.for_population(n_agents)
    return marl_sim.evaluate(game, controller, pi_l, rng, n_agents=n_agents, horizon=steps, n_episodes=episodes,
                             ordering="paper").step_rewards


def reference(game: TabularGame, pi_g: TabularGlobalPolicy | PooledGlobalPolicy | None, pi_l: TabularLocalPolicy,
              rng: np.random.Generator, *, n_agents: int, steps: int, episodes: int) -> Reference:
    return _reference(episode_rewards(game, pi_g, pi_l, rng, n_agents=n_agents, steps=steps, episodes=episodes))


def continuous_reference(policy: Deployed, rng: np.random.Generator, *, random: bool, n_agents: int, k: int,
                         steps: int, episodes: int) -> Reference:
    """The same statistic for a continuous policy (`continuous.deploy.rollout_rewards`, the corridor backend's
    dynamics) on n_agents robots; `random`: both players uniformly random instead."""
    env = dataclasses.replace(policy.env, n_agents=n_agents)
    rewards = rollout_rewards(None if random else policy, env, rng, k=k, steps=steps, episodes=episodes)
    return _reference(rewards.mean(axis=1))


def _reference(x: np.ndarray) -> Reference:
    """Reference of (episodes,) per-episode mean rewards."""
    std = float(x.std(ddof=1)) if x.size > 1 else float("nan")
    return Reference(float(x.mean()), std / np.sqrt(x.size), std, int(x.size))


def random_policies(game: TabularGame) -> TabularLocalPolicy:
    """The random baseline's local policy (uniform over local actions); its global actions are uniform too."""
    return TabularLocalPolicy.uniform(game.n_global_states, game.n_local_states, game.n_local_actions)


def batch_means_stderr(rewards: np.ndarray, n_batches: int = 10) -> float:
    """Stderr of a trajectory's mean reward by non-overlapping batch means (absorbs autocorrelation)."""
    x = np.asarray(rewards, dtype=np.float64)
    n_batches = min(n_batches, x.size // 2)
    if n_batches < 2:
        return float("nan")
    size = x.size // n_batches
    means = x[: size * n_batches].reshape(n_batches, size).mean(1)
    return float(means.std(ddof=1) / np.sqrt(n_batches))
