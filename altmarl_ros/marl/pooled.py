"""Samples pooled over time (beyond the paper): a filtered estimate of the population histogram.

The dispatcher sees s_g and a fresh k-sample each step, and knows pi_l, hence how the population moves:
given s_g(t), each robot moves by P~_l(. | s_l, s_g(t)) (pi_l marginalised), so the population
distribution mu_t = h_t / n follows mu_{t+1} = mu_t P~_l(s_g(t)) up to O(1/sqrt n) noise. Two filters:

- `exact_posterior` (small n): the Bayes filter over histograms, exact: b_t ∝ b_t^- * P(o_t | h)
  (multivariate hypergeometric), b_{t+1}^- = b_t T_{s_g(t)} (the exact histogram transition). Exact
  because a_g(t), hence s_g(t + 1), depends on observed quantities only (paper ordering).
- `PopulationFilter` (any n, what the controller runs): the moment (Kalman-type) form of that filter
  with a pseudo-count precision `ess` (the effective sample size, in robots):
    predict  mu^- = mu P~_l(s_g),   1 / ess^- = rho / ess + q / n,
    update   w = k' / (ess^- + k'),  mu = (1 - w) mu^- + w o / k,  ess = ess^- + k',
  with traces of covariances relative to one draw's at mu^- (tr Sigma' = sum_j mu'_j (1 - mu'_j)):
  rho = tr(P~^T Sigma(mu) P~) / tr Sigma' (the estimation error carried, and shrunk, through P~) and
  q = sum_j sum_s mu_s p_sj (1 - p_sj) / tr Sigma' (what the n robots' independent moves add;
  rho + q = 1: a population of fresh independent draws), and k' = k (n - 1) / (n - k)
  is the k-sample's precision without replacement. The prior is the game's initial law: mean uniform,
  ess = S_l c for the Dirichlet(c) initial population (n for c = 0: i.i.d. uniform robots). The
  prediction is exact in the mean; the covariances are reduced to their traces (one scalar
  precision). An exponential moving average with fixed weight w has no prediction step (it
  lags the population) and a fixed ess of k (2 - w) / w; this filter adapts w to the dynamics.

`PooledObserver` discretises the filtered mu to count vectors of K (largest remainder) so that a
dispatcher table pi_g[s_g, rank] can be trained and executed on it (`observe.Observer`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.game import TabularGame, marginal_local
from altmarl_ros.marl.policy import TabularLocalPolicy, dispatcher_table

if TYPE_CHECKING:  # a type only: importing population (SciPy) slowed every node's start by ~0.45 s
    from altmarl_ros.marl.population import PopulationModel


class FilterState(NamedTuple):
    """Per-episode filter state (B episodes)."""

    mu: np.ndarray  # (B, S_l) estimated population distribution
    ess: np.ndarray  # (B,) effective sample size (precision in robots)
    s_g: np.ndarray  # (B,) the global state of the last update (-1 before the first)


@dataclass(frozen=True, eq=False)
class PopulationFilter:
    """The moment filter of the module docstring for `k`-samples of `n_agents` robots."""

    P_tilde: np.ndarray  # (S_l, S_g, S_l) P~_l(s_l' | s_l, s_g)
    n_agents: int
    k: int
    init_concentration: float  # the game's Dirichlet(c) initial population (0: i.i.d. uniform robots)

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n_agents:
            raise InputError(f"need 1 <= k <= n_agents, got k={self.k}, n_agents={self.n_agents}")

    @classmethod
    def for_game(cls, game: TabularGame, pi_l: TabularLocalPolicy, *, n_agents: int, k: int) -> PopulationFilter:
        return cls(marginal_local(game, pi_l.probs).P_tilde, n_agents, k, game.init_l_concentration)

    @property
    def prior_ess(self) -> float:
        """The prior's precision: n for i.i.d. uniform robots, S_l c for a Dirichlet(c) population."""
        c = self.init_concentration
        return float(self.n_agents) if c == 0.0 else self.P_tilde.shape[0] * c

    @property
    def sample_precision(self) -> float:
        """k' = k (n - 1) / (n - k): a k-sample without replacement's precision (inf when k = n)."""
        n, k = self.n_agents, self.k
        return np.inf if k >= n else k * (n - 1) / (n - k)

    def start(self, batch: int) -> FilterState:
        S = self.P_tilde.shape[0]
        return FilterState(np.full((batch, S), 1.0 / S), np.full(batch, self.prior_ess),
                           np.full(batch, -1, dtype=np.int64))

    def predict(self, state: FilterState, s_g: np.ndarray) -> FilterState:
        """mu^- = mu P~_l(s_g) and the process noise of n robots' moves, for (B,) s_g."""
        P = np.transpose(self.P_tilde, (1, 0, 2))[s_g]  # (B, S, S')
        mu = np.einsum("bs,bst->bt", state.mu, P)
        second = np.einsum("bs,bst->b", state.mu, P * P)  # sum_j sum_s mu_s p_sj^2
        spread = np.maximum((mu * (1 - mu)).sum(-1), 1e-12)  # tr of one draw's covariance at mu^-
        rho = np.clip((second - (mu * mu).sum(-1)) / spread, 0.0, 1.0)  # the error carried through P~
        q = np.clip((mu.sum(-1) - second) / spread, 0.0, 1.0)  # the n robots' own moves
        ess = 1.0 / (rho / state.ess + q / self.n_agents)
        return FilterState(mu, ess, state.s_g)

    def update(self, state: FilterState, s_g: np.ndarray, counts: np.ndarray) -> FilterState:
        """One step: predict from the previous s_g (rows that have one), then fold in (B, S) counts of k."""
        moved = state.s_g >= 0
        if moved.any():
            pred = self.predict(state, np.where(moved, state.s_g, 0))
            mu = np.where(moved[:, None], pred.mu, state.mu)
            ess = np.where(moved, pred.ess, state.ess)
        else:
            mu, ess = state.mu, state.ess
        kp = self.sample_precision
        w = np.ones_like(ess) if np.isinf(kp) else kp / (ess + kp)
        mu = (1 - w)[:, None] * mu + w[:, None] * (counts / self.k)
        return FilterState(mu, ess + kp, np.asarray(s_g, dtype=np.int64))


def discretise(mu: np.ndarray, K: int) -> np.ndarray:
    """(B, S) distributions -> (B,) ranks of their largest-remainder roundings to count vectors of K."""
    return cv.rank(cv.round_to_counts(mu * K, K), K)


@dataclass(frozen=True)
class PooledObserver:
    """`observe.Observer` of a dispatcher that reads the filtered histogram rounded to K counts. Draws
    the k-sample exactly as `observe.KSampleObserver` does (same rng calls)."""

    filter: PopulationFilter
    K: int

    @property
    def n_observations(self) -> int:
        return cv.n_count_vectors(self.K, self.filter.P_tilde.shape[0])

    def start(self, batch: int) -> FilterState:
        return self.filter.start(batch)

    def observe(self, rng: np.random.Generator, memory: FilterState, s_g: np.ndarray,
                s_l: np.ndarray) -> tuple[np.ndarray, FilterState]:
        S = self.filter.P_tilde.shape[0]
        idx = cv.subsample(rng, s_l.shape[1], self.filter.k, s_l.shape[0])
        counts = cv.counts_from_states(np.take_along_axis(s_l, idx, axis=1), S)
        memory = self.filter.update(memory, s_g, counts)
        return discretise(memory.mu, self.K), memory


def exact_posterior(model: PopulationModel, s_g: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """The exact Bayes filter on a small `population.PopulationModel` (dense kernel): (H + 1,) s_g path
    and (H,) observation ranks of ONE episode -> (H, n_hist) posteriors P(h_t | s_g(0..t), o(0..t))."""
    b = model.init.sum(0)  # the law of h_0 (independent of s_g(0))
    out = []
    for t in range(obs.shape[0]):
        b = b * np.asarray(model.O)[:, obs[t]]
        b = b / b.sum()
        out.append(b)
        b = b @ np.asarray(model.T[s_g[t]])
    return np.array(out)


@dataclass(frozen=True, eq=False)
class PooledGlobalPolicy:
    """A dispatcher over the filtered population estimate: a_g = actions[s_g, rank(round(mu_hat K))].

    Unlike `TabularGlobalPolicy` it has per-episode memory (the `FilterState`): `start(B)` gives it and
    `act_with` carries it, drawing the k-sample with the same rng calls as `TabularGlobalPolicy.act_on`,
    so a pooled and a plain dispatcher evaluated from one rng state see the same samples (paired).
    `decide` is the controller node's form: the k-sample's counts are given, not drawn.
    """

    actions: np.ndarray  # (S_g, n_count_vectors(K, S_l)) int
    observer: PooledObserver
    n_global_actions: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", dispatcher_table(self.actions, self.observer.n_observations,
                                                             self.n_global_actions, "pooled pi_g", f"K={self.K}"))

    @property
    def k(self) -> int:
        return self.observer.filter.k

    @property
    def K(self) -> int:
        return self.observer.K

    @property
    def n_local_states(self) -> int:
        return self.observer.filter.P_tilde.shape[0]

    @property
    def n_global_states(self) -> int:
        return self.actions.shape[0]

    def start(self, batch: int) -> FilterState:
        return self.observer.start(batch)

    def for_population(self, n_agents: int) -> PooledGlobalPolicy:
        """The same table with its filter for `n_agents` robots (a swarm of another size than training's)."""
        observer = PooledObserver(dataclasses.replace(self.observer.filter, n_agents=n_agents), self.K)
        return PooledGlobalPolicy(self.actions, observer, self.n_global_actions)

    def act_with(self, rng: np.random.Generator, memory: FilterState, s_g: np.ndarray,
                 s_l: np.ndarray) -> tuple[np.ndarray, FilterState]:
        """(B,) s_g, (B, n) s_l -> ((B,) a_g, the next filter state)."""
        entry, memory = self.observer.observe(rng, memory, s_g, s_l)
        return self.actions[np.asarray(s_g), entry], memory

    def decide(self, memory: FilterState, s_g: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, FilterState]:
        """(B,) s_g and (B, S_l) counts of a k-sample -> ((B,) a_g, the next filter state)."""
        memory = self.observer.filter.update(memory, s_g, counts)
        return self.actions[np.asarray(s_g), discretise(memory.mu, self.K)], memory


def pooled_policy(game: TabularGame, pi_l: TabularLocalPolicy, actions: np.ndarray, *, k: int, K: int,
                  n_agents: int) -> PooledGlobalPolicy:
    """The pooled dispatcher `actions` with its filter for k-samples of `n_agents` robots on pi_l."""
    observer = PooledObserver(PopulationFilter.for_game(game, pi_l, n_agents=n_agents, k=k), K)
    return PooledGlobalPolicy(actions, observer, game.n_global_actions)


def lift_table(actions: np.ndarray, k: int, K: int, n_local_states: int) -> np.ndarray:
    """A k-count dispatcher table (S_g, D_k) read on K-count vectors: entry d -> actions[s_g, round(d k / K)]."""
    grid = cv.enumerate_counts(K, n_local_states)  # (D_K, S_l), row i has rank i
    return np.asarray(actions)[:, cv.rank(cv.round_to_counts(grid * (k / K), k), k)]
