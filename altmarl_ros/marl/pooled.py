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

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.game import TabularGame, marginal_local
from altmarl_ros.marl.policy import TabularLocalPolicy
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
    prior_ess: float

    @classmethod
    def for_game(cls, game: TabularGame, pi_l: TabularLocalPolicy, *, n_agents: int, k: int) -> PopulationFilter:
        if not 1 <= k <= n_agents:
            raise InputError(f"need 1 <= k <= n_agents, got k={k}, n_agents={n_agents}")
        c = game.init_l_concentration
        prior = float(n_agents) if c == 0.0 else game.n_local_states * c
        return cls(marginal_local(game, pi_l.probs).P_tilde, n_agents, k, prior)

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
