"""The exact population-histogram chain of the dispatcher's problem against a fixed pi_l (small n).

Against a fixed shared pi_l the local agents are exchangeable, so the n-agent system is a Markov chain
on (s_g, h), h the histogram of the n local states (a count vector of n over S_l; H = C(n + S_l - 1,
S_l - 1) of them), and a k-subsampling dispatcher sees o ~ the multivariate hypergeometric law of k
draws without replacement from h (Algorithm 4, PAPER.md 2.5). This is the partially observed problem
the restricted best response solves: hidden state (s_g, h), observation (s_g, o), memoryless policy
pi_g(s_g, o). Everything here is exact (no sampling); it is an independent route to the values of
`metrics.exact_value` (which enumerates S_l^n joint configurations instead of histograms).

Shapes: T[s_g] (H, H) histogram transition (`g_learn.count_transitions` exact at k = n), O (H, D)
observation kernel, R_l (S_g, H) mean local reward, init (S_g, H).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.special import gammaln

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.game import TabularGame, marginal_local
from altmarl_ros.marl.learners.g_learn import count_transitions
from altmarl_ros.marl.policy import TabularLocalPolicy

MAX_HISTOGRAMS = 5_000


def hypergeometric_kernel(n: int, k: int, n_states: int) -> np.ndarray:
    """(H, D) P(o | h): the count vector o of k draws without replacement from a population histogram h.

    O[h, o] = prod_j C(h_j, o_j) / C(n, k) (multivariate hypergeometric); rows in `counts.rank` order."""
    hists = cv.enumerate_counts(n, n_states).astype(np.float64)
    obs = cv.enumerate_counts(k, n_states).astype(np.float64)
    h, o = hists[:, None, :], obs[None, :, :]
    with np.errstate(invalid="ignore"):
        log_terms = gammaln(h + 1) - gammaln(o + 1) - gammaln(np.maximum(h - o, 0) + 1)
    log_p = np.where(o <= h, log_terms, -np.inf).sum(-1)
    log_p -= gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    return np.exp(log_p)


def initial_histograms(game: TabularGame, n: int) -> np.ndarray:
    """(H,) law of the initial histogram: multinomial(n, uniform), or Dirichlet-multinomial(n, c) when
    the game's init_l_concentration c > 0 (as `game.sample_population` + i.i.d. draws)."""
    S = game.n_local_states
    h = cv.enumerate_counts(n, S).astype(np.float64)
    log_coef = gammaln(n + 1) - gammaln(h + 1).sum(-1)
    c = game.init_l_concentration
    if c == 0.0:
        return np.exp(log_coef - n * np.log(S))
    return np.exp(log_coef + gammaln(S * c) - gammaln(S * c + n) + (gammaln(c + h) - gammaln(c)).sum(-1))


@dataclass(frozen=True, eq=False)
class PopulationModel:
    """The exact (s_g, histogram) chain of `game` against `pi_l` with n agents and a k-sample observation."""

    game: TabularGame
    n_agents: int
    k: int
    T: tuple[np.ndarray, ...]  # S_g dense (H, H) histogram transitions
    O: np.ndarray  # noqa: E741  (H, D) observation kernel P(o | h)
    R_l: np.ndarray  # (S_g, H) (1/n) sum_i r~_l(s_i, s_g)
    init: np.ndarray  # (S_g, H)

    @property
    def n_histograms(self) -> int:
        return self.O.shape[0]

    @property
    def n_observations(self) -> int:
        return self.O.shape[1]


def population_model(game: TabularGame, pi_l: TabularLocalPolicy, *, n_agents: int, k: int) -> PopulationModel:
    """Build the exact histogram chain; refuses more than MAX_HISTOGRAMS histograms."""
    S_l = game.n_local_states
    if not 1 <= k <= n_agents:
        raise ValueError(f"need 1 <= k <= n_agents, got k={k}, n_agents={n_agents}")
    H = cv.n_count_vectors(n_agents, S_l)
    if H > MAX_HISTOGRAMS:
        raise ValueError(f"the exact population model has {H} histograms for n_agents={n_agents}, S_l={S_l} "
                         f"(> {MAX_HISTOGRAMS}); use the Monte Carlo restricted best response")
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)
    T = tuple(sp.csr_matrix(M).toarray() for M in count_transitions(game, P_tilde, k=n_agents, transition="exact"))
    hists = cv.enumerate_counts(n_agents, S_l).astype(np.float64)
    R_l = (hists @ r_tilde).T / n_agents  # (S_g, H)
    init = game.init_g[:, None] * initial_histograms(game, n_agents)[None, :]
    return PopulationModel(game, n_agents, k, T, hypergeometric_kernel(n_agents, k, S_l), R_l, init)


class MemorylessChain(NamedTuple):
    """The chain of a memoryless dispatcher table on the model."""

    action_probs: np.ndarray  # (S_g, H, A_g) P(a_g | s_g, h) = sum_o O[h, o] [table[s_g, o] == a_g]
    P: np.ndarray  # (S_g H, S_g H)
    r: np.ndarray  # (S_g H,)


def memoryless_chain(model: PopulationModel, table: np.ndarray) -> MemorylessChain:
    """(S_g, D) int dispatcher table -> its chain on (s_g, h)."""
    game = model.game
    S_g, A_g, H = game.n_global_states, game.n_global_actions, model.n_histograms
    one_hot = np.eye(A_g)[np.asarray(table)]  # (S_g, D, A_g)
    probs = np.einsum("hd,gda->gha", model.O, one_hot)
    P = np.empty((S_g, H, S_g, H))
    for g in range(S_g):
        P_next_g = probs[g] @ game.P_g[g]  # (H, S_g')
        P[g] = P_next_g[:, :, None] * model.T[g][:, None, :]
    r = np.einsum("gha,ga->gh", probs, game.r_g) + model.R_l
    return MemorylessChain(probs, P.reshape(S_g * H, S_g * H), r.ravel())


def _values(P: np.ndarray, r: np.ndarray, gamma: float, horizon: int | None) -> list[np.ndarray]:
    """[V_0 = 0, V_1, ..., V_H] (finite horizon: V_j = value with j steps left) or [V_inf]."""
    if horizon is None:
        return [np.linalg.solve(np.eye(P.shape[0]) - gamma * P, r)]
    out = [np.zeros_like(r)]
    for _ in range(horizon):
        out.append(r + gamma * (P @ out[-1]))
    return out


def memoryless_value(model: PopulationModel, table: np.ndarray, *, horizon: int | None = None) -> float:
    """Exact expected discounted return of the dispatcher `table` (S_g, D) against pi_l on n agents:
    infinite horizon, or sum_{t < horizon} gamma^t r(t) (what `sim.evaluate` estimates)."""
    chain = memoryless_chain(model, table)
    return float(model.init.ravel() @ _values(chain.P, chain.r, model.game.gamma, horizon)[-1])


def observation_q(model: PopulationModel, table: np.ndarray, *, horizon: int | None = None) -> np.ndarray:
    """(S_g, D, A_g) occupancy-weighted action values of the observation entries under `table`:

        Qobs(s_g, o, a) = sum_t gamma^t sum_h d_t(s_g, h) O[h, o] Q_{H - t}(s_g, h, a),

    d_t the law of (s_g, h) at step t under `table`, Q_j the j-steps-to-go action value of the hidden
    state (infinite horizon: the discounted occupancy and Q^pi). Switching entry (s_g, o) to the
    argmax is the first-order (performance-difference) improvement of a memoryless policy; it is only
    a proposal (a memoryless POMDP policy is not improved monotonically by it), to be verified."""
    game = model.game
    S_g, A_g, H = game.n_global_states, game.n_global_actions, model.n_histograms
    chain = memoryless_chain(model, table)
    gamma = game.gamma
    values = _values(chain.P, chain.r, gamma, horizon)
    R_l = model.R_l

    def q_of(V: np.ndarray) -> np.ndarray:  # (S_g, H, A_g)
        TV = np.stack([model.T[g] @ V.reshape(S_g, H).T for g in range(S_g)])  # (S_g, H, S_g')
        return game.r_g[:, None, :] + R_l[:, :, None] + gamma * np.einsum("gax,ghx->gha", game.P_g, TV)

    if horizon is None:
        occupancy = np.linalg.solve((np.eye(S_g * H) - gamma * chain.P).T, model.init.ravel()).reshape(S_g, H)
        weighted = occupancy[:, :, None] * q_of(values[0])
    else:
        d = model.init.ravel()
        weighted = np.zeros((S_g, H, A_g))
        for t in range(horizon):
            weighted += gamma ** t * d.reshape(S_g, H)[:, :, None] * q_of(values[horizon - t - 1])
            d = d @ chain.P
    return np.einsum("hd,gha->gda", model.O, weighted)
