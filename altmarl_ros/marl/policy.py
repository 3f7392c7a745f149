"""Tabular policies of the two players (PAPER.md 1.1, 2.5).

- `TabularGlobalPolicy`: deterministic pi_g(s_g, F_{s_Delta}) over count vectors of k samples, stored
  as an (S_g, D) action table indexed by count-vector rank (`counts.rank`).
- `TabularLocalPolicy`: the shared stochastic local policy pi_l(a_l | s_l, s_g), probs (S_g, S_l, A_l).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv


def dispatcher_table(actions: np.ndarray, D: int, n_global_actions: int, what: str, entries: str) -> np.ndarray:
    """A dispatcher's (S_g, D) action table as read-only int64, or InputError naming `what` and its `entries`."""
    table = np.array(actions, dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != D:
        raise InputError(f"{what} actions must have shape (S_g, {D}) for {entries}; got {table.shape}")
    if table.size and (table.min() < 0 or table.max() >= n_global_actions):
        raise InputError(f"{what} actions must lie in [0, {n_global_actions}), got [{table.min()}, {table.max()}]")
    table.setflags(write=False)
    return table


@dataclass(frozen=True, eq=False)
class TabularGlobalPolicy:
    """pi_g: actions[s_g, rank(d)] -> a_g for count vectors d of k samples over S_l states."""

    actions: np.ndarray  # (S_g, D) int
    k: int
    n_local_states: int
    n_global_actions: int

    def __post_init__(self) -> None:
        D = cv.n_count_vectors(self.k, self.n_local_states)
        object.__setattr__(self, "actions", dispatcher_table(self.actions, D, self.n_global_actions, "pi_g",
                                                             f"k={self.k}, S_l={self.n_local_states}"))

    @property
    def n_global_states(self) -> int:
        return self.actions.shape[0]

    def act(self, s_g: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """(B,) s_g and (B, S_l) count vectors summing to k -> (B,) a_g."""
        return self.actions[np.asarray(s_g), cv.rank(counts, self.k)]

    def act_on(self, rng: np.random.Generator, s_g: np.ndarray, s_l: np.ndarray) -> np.ndarray:
        """Algorithm 4 lines 1-2: a fresh uniform k-subset of each row of (B, n) s_l, then pi_g on its counts."""
        idx = cv.subsample(rng, s_l.shape[1], self.k, s_l.shape[0])
        sampled = np.take_along_axis(s_l, idx, axis=1)
        return self.act(s_g, cv.counts_from_states(sampled, self.n_local_states))

    @classmethod
    def constant(cls, action: int, *, n_global_states: int, n_local_states: int,
                 n_global_actions: int, k: int) -> TabularGlobalPolicy:
        """The policy that always plays `action` (the authors' initial pi_g is action 0)."""
        D = cv.n_count_vectors(k, n_local_states)
        return cls(np.full((n_global_states, D), action), k, n_local_states, n_global_actions)


@dataclass(frozen=True, eq=False)
class TabularLocalPolicy:
    """Shared local policy pi_l(a_l | s_l, s_g): probs[s_g, s_l, a_l]."""

    probs: np.ndarray  # (S_g, S_l, A_l)
    _cum: np.ndarray = field(init=False, repr=False)  # (S_g, S_l, A_l) cumulative probs

    def __post_init__(self) -> None:
        probs = np.array(self.probs, dtype=np.float64)
        if probs.ndim != 3:
            raise InputError(f"pi_l probs must have shape (S_g, S_l, A_l), got {probs.shape}")
        if not np.all(np.isfinite(probs)) or np.any(probs < 0):
            raise InputError("pi_l probs must be finite and non-negative")
        if np.any(np.abs(probs.sum(-1) - 1.0) > 1e-6):
            raise InputError("pi_l probs must sum to 1 over a_l (last axis)")
        probs.setflags(write=False)
        object.__setattr__(self, "probs", probs)
        cum = np.cumsum(probs, axis=-1)
        cum[..., -1] = 1.0
        cum.setflags(write=False)
        object.__setattr__(self, "_cum", cum)

    def sample(self, rng: np.random.Generator, s_g: np.ndarray, s_l: np.ndarray) -> np.ndarray:
        """Sample a_l for every agent: (B,) s_g, (B, n) s_l -> (B, n) a_l (inverse CDF)."""
        return self.actions_from(rng.random(s_l.shape), s_g, s_l)

    def actions_from(self, u: np.ndarray, s_g: np.ndarray, s_l: np.ndarray) -> np.ndarray:
        """Inverse-CDF actions from given uniforms: (B, n) u, (B,) s_g, (B, n) s_l -> (B, n) a_l."""
        S_l, A_l = self._cum.shape[1:]
        cum = self._cum.reshape(-1, A_l).take(np.asarray(s_g)[:, None] * S_l + s_l, axis=0)  # (B, n, A_l)
        a_l = np.zeros(s_l.shape, dtype=np.int64)
        for j in range(cum.shape[-1] - 1):
            a_l += u >= cum[..., j]
        return a_l

    @classmethod
    def uniform(cls, n_global_states: int, n_local_states: int, n_local_actions: int) -> TabularLocalPolicy:
        return cls(np.full((n_global_states, n_local_states, n_local_actions), 1.0 / n_local_actions))

    @classmethod
    def greedy(cls, Q: np.ndarray) -> TabularLocalPolicy:
        """Deterministic argmax policy from Q[s_g, s_l, a_l] (ties to the lowest action)."""
        probs = np.zeros_like(Q, dtype=np.float64)
        np.put_along_axis(probs, Q.argmax(-1)[..., None], 1.0, axis=-1)
        return cls(probs)


@dataclass(frozen=True, eq=False)
class TaggedLocalPolicy:
    """A unilateral deviation: agent 0 (the tagged robot) plays `pi_dev`, agents 1..n-1 play `pi_l`.

    `sample` draws one uniform per agent exactly as `TabularLocalPolicy.sample` does, so from the same
    rng state the other robots' actions are identical to an all-`pi_l` run (common random numbers).
    """

    pi_l: TabularLocalPolicy
    pi_dev: TabularLocalPolicy

    def __post_init__(self) -> None:
        if self.pi_l.probs.shape != self.pi_dev.probs.shape:
            raise InputError(f"pi_dev has shape {self.pi_dev.probs.shape}, pi_l has {self.pi_l.probs.shape}")

    def sample(self, rng: np.random.Generator, s_g: np.ndarray, s_l: np.ndarray) -> np.ndarray:
        """(B,) s_g, (B, n) s_l -> (B, n) a_l; column 0 follows pi_dev."""
        u = rng.random(s_l.shape)
        a_l = self.pi_l.actions_from(u, s_g, s_l)
        a_l[:, :1] = self.pi_dev.actions_from(u[:, :1], s_g, s_l[:, :1])
        return a_l


@dataclass(frozen=True, eq=False)
class FullInformationPolicy:
    """A global policy that observes the whole population: its histogram rounded to pi_g.k counts
    (largest remainder), then pi_g. With a large k it is the global oracle of the Nash-gap metric."""

    pi_g: TabularGlobalPolicy

    @property
    def k(self) -> int:
        return self.pi_g.k

    def act_on(self, rng: np.random.Generator, s_g: np.ndarray, s_l: np.ndarray) -> np.ndarray:
        """(B,) s_g, (B, n) s_l -> (B,) a_g; `rng` is unused (the observation is deterministic)."""
        hist = cv.counts_from_states(s_l, self.pi_g.n_local_states)
        counts = cv.round_to_counts(hist * (self.k / s_l.shape[1]), self.k)
        return self.pi_g.act(s_g, counts)


@dataclass(frozen=True)
class RandomGlobalPolicy:
    """The random baseline's global agent: a_g uniform over the n_global_actions actions."""

    n_global_actions: int

    def act_on(self, rng: np.random.Generator, s_g: np.ndarray, s_l: np.ndarray) -> np.ndarray:
        return rng.integers(self.n_global_actions, size=np.shape(s_g))
