"""What a dispatcher observes, and episodes of a memoryless dispatcher table on the true n-agent system.

An `Observer` turns the true state into the index of an observation entry of a dispatcher table
pi_g[s_g, obs]: the fresh k-sample count vector of Algorithm 4 (`KSampleObserver`, the paper), or a
filtered estimate pooled over successive k-samples (`pooled.PooledObserver`, beyond the paper). Its
per-episode state lives in the observer's `start`/`observe` values, so a controller that keeps it (the
ROS node) and a batched simulation run the same code.

`table_rollouts` simulates a table exactly as `sim.evaluate` does (same environment / observation /
action streams of `gaps.fresh_rng(seed)`; with a `KSampleObserver` the draws are those of
`TabularGlobalPolicy.act_on`, so the returns equal `sim.evaluate`'s up to float summation order), and records what the
restricted best response needs: the global path, the observation entries and the per-step rewards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl import sim
from altmarl_ros.marl.deviations import SeedLike, fresh_rng
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.policy import TabularLocalPolicy


class Observer(Protocol):
    """Maps the true state to observation entries; `n_observations` entries per global state."""

    @property
    def n_observations(self) -> int: ...

    def start(self, batch: int) -> Any:
        """The per-episode observer state for `batch` episodes (None for a memoryless observation)."""

    def observe(self, rng: np.random.Generator, memory: Any, s_g: np.ndarray,
                s_l: np.ndarray) -> tuple[np.ndarray, Any]:
        """(B,) s_g, (B, n) s_l -> ((B,) observation entries, the next observer state)."""


@dataclass(frozen=True)
class KSampleObserver:
    """Algorithm 4's observation: the count vector of a fresh uniform k-subset (entry = its rank)."""

    k: int
    n_local_states: int

    @property
    def n_observations(self) -> int:
        return cv.n_count_vectors(self.k, self.n_local_states)

    def start(self, batch: int) -> None:
        return None

    def observe(self, rng: np.random.Generator, memory: Any, s_g: np.ndarray,
                s_l: np.ndarray) -> tuple[np.ndarray, None]:
        idx = cv.subsample(rng, s_l.shape[1], self.k, s_l.shape[0])
        sampled = np.take_along_axis(s_l, idx, axis=1)
        return cv.rank(cv.counts_from_states(sampled, self.n_local_states), self.k), None


class TableRollouts(NamedTuple):
    """Per-episode records of `table_rollouts` (E episodes, horizon H)."""

    returns: np.ndarray  # (E,) discounted return sum_t gamma^t r(t)
    s_g: np.ndarray  # (E, H + 1) global path
    obs: np.ndarray  # (E, H) observation entry at each step
    rewards: np.ndarray  # (E, H) system reward r_g + (1/n) sum_i r_l at each step


def table_rollouts(game: TabularGame, table: np.ndarray, observer: Observer, pi_l: TabularLocalPolicy,
                   seed: SeedLike, *, n_agents: int, horizon: int, n_episodes: int,
                   batch_size: int = 64) -> TableRollouts:
    """Episodes of the dispatcher a_g = table[s_g, observer(...)] with every robot on pi_l (paper ordering)."""
    table = np.asarray(table)
    if table.shape != (game.n_global_states, observer.n_observations):
        raise InputError(f"table must have shape (S_g, {observer.n_observations}), got {table.shape}")
    env_rng, obs_rng, act_rng = fresh_rng(seed).spawn(3)
    returns = np.empty(n_episodes)
    path = np.empty((n_episodes, horizon + 1), dtype=np.int64)
    obs = np.empty((n_episodes, horizon), dtype=np.int64)
    rewards = np.empty((n_episodes, horizon))
    discounts = game.gamma ** np.arange(horizon)
    for start in range(0, n_episodes, batch_size):
        B = min(batch_size, n_episodes - start)
        rows = slice(start, start + B)
        state = sim.reset(game, env_rng, n_agents=n_agents, batch=B)
        memory = observer.start(B)
        for t in range(horizon):
            path[rows, t] = state.s_g
            entry, memory = observer.observe(obs_rng, memory, state.s_g, state.s_l)
            obs[rows, t] = entry
            a_g = table[state.s_g, entry]
            a_l = pi_l.sample(act_rng, state.s_g, state.s_l)
            result = sim.step(game, env_rng, state, a_g, a_l)
            rewards[rows, t] = result.reward
            state = result.state
        path[rows, horizon] = state.s_g
        returns[rows] = rewards[rows] @ discounts
    return TableRollouts(returns, path, obs, rewards)
