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
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.special import gammaln

from altmarl_ros.errors import InputError
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


class SampledKernel(NamedTuple):
    """An observation kernel given by m draws of the observation per hidden state: samples (H, m) int entries.
    P(o | h) is estimated by the fraction of the m draws equal to o (unbiased; used when dense (H, D) is big)."""

    samples: np.ndarray  # (H, m)
    n_observations: int


Kernel = np.ndarray | SampledKernel


def kernel_shape(O: Kernel) -> tuple[int, int]:  # noqa: E741
    """(H, D) of a dense or sampled observation kernel."""
    return (O.samples.shape[0], O.n_observations) if isinstance(O, SampledKernel) else (O.shape[0], O.shape[1])


def action_probs(O: Kernel, table: np.ndarray, n_actions: int) -> np.ndarray:  # noqa: E741
    """(S_g, H, A_g) P(a_g | s_g, h) = sum_o P(o | h) [table[s_g, o] == a_g] for an (S_g, D) int table."""
    if isinstance(O, SampledKernel):
        acts = table[:, O.samples]  # (S_g, H, m)
        return np.stack([(acts == a).mean(-1) for a in range(n_actions)], -1)
    one_hot = np.eye(n_actions)[table]  # (S_g, D, A_g)
    return np.stack([O @ one_hot[g] for g in range(table.shape[0])])  # BLAS products, not an einsum loop


def kernel_transpose(O: Kernel, weights: np.ndarray) -> np.ndarray:  # noqa: E741
    """(H, X) weights -> (D, X) sum_h P(o | h) weights[h]."""
    if isinstance(O, SampledKernel):
        m = O.samples.shape[1]
        flat = O.samples.ravel()
        return np.stack([np.bincount(flat, np.repeat(weights[:, x] / m, m), O.n_observations)
                         for x in range(weights.shape[1])], axis=1)
    return O.T @ weights


@dataclass(frozen=True, eq=False)
class PopulationModel:
    """The exact (s_g, histogram) chain of `game` against `pi_l` with n agents and a k-sample observation."""

    game: TabularGame
    n_agents: int  # n (exact model) or the grid resolution K (`meanfield_grid`)
    k: int
    T: tuple[Any, ...]  # S_g (H, H) hidden-state transitions given s_g (dense arrays or sparse matrices)
    O: Kernel  # noqa: E741  (H, D) observation kernel P(o | h), dense or sampled
    R_l: np.ndarray  # (S_g, H) (1/n) sum_i r~_l(s_i, s_g)
    init: np.ndarray  # (S_g, H)

    @property
    def n_histograms(self) -> int:
        return kernel_shape(self.O)[0]

    @property
    def n_observations(self) -> int:
        return kernel_shape(self.O)[1]

    @cached_property
    def reward_base(self) -> np.ndarray:
        """(S_g, H, A_g) r_g(s_g, a) + R_l(s_g, h), the immediate part of every action value."""
        return self.game.r_g[:, None, :] + self.R_l[:, :, None]

    @cached_property
    def T_transposed(self) -> tuple[Any, ...]:
        """T[s_g]^T per s_g (CSR for sparse T: the forward pass's products without a transpose per call)."""
        return tuple(M.T.tocsr() if sp.issparse(M) else M.T for M in self.T)

    @cached_property
    def P_g_T(self) -> np.ndarray:
        """(S_g, S_g', A_g) P_g transposed per s_g (the right factor of the continuation's batched product)."""
        return np.ascontiguousarray(np.transpose(self.game.P_g, (0, 2, 1)))


def population_model(game: TabularGame, pi_l: TabularLocalPolicy, *, n_agents: int, k: int) -> PopulationModel:
    """Build the exact histogram chain; refuses more than MAX_HISTOGRAMS histograms."""
    S_l = game.n_local_states
    if not 1 <= k <= n_agents:
        raise InputError(f"need 1 <= k <= n_agents, got k={k}, n_agents={n_agents}")
    H = cv.n_count_vectors(n_agents, S_l)
    if H > MAX_HISTOGRAMS:
        raise InputError(f"the exact population model has {H} histograms for n_agents={n_agents}, S_l={S_l} "
                         f"(> {MAX_HISTOGRAMS}); use the Monte Carlo restricted best response")
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)
    T = tuple(sp.csr_matrix(M).toarray() for M in count_transitions(game, P_tilde, k=n_agents, transition="exact"))
    hists = cv.enumerate_counts(n_agents, S_l).astype(np.float64)
    R_l = (hists @ r_tilde).T / n_agents  # (S_g, H)
    init = game.init_g[:, None] * initial_histograms(game, n_agents)[None, :]
    return PopulationModel(game, n_agents, k, T, hypergeometric_kernel(n_agents, k, S_l), R_l, init)


class MemorylessChain(NamedTuple):
    """The dense chain of a memoryless dispatcher table on a small model (tests, exact linear algebra)."""

    action_probs: np.ndarray  # (S_g, H, A_g) P(a_g | s_g, h) = sum_o O[h, o] [table[s_g, o] == a_g]
    P: np.ndarray  # (S_g H, S_g H)
    r: np.ndarray  # (S_g H,)


def memoryless_chain(model: PopulationModel, table: np.ndarray) -> MemorylessChain:
    """(S_g, D) int dispatcher table -> its chain on (s_g, h)."""
    game = model.game
    S_g, A_g, H = game.n_global_states, game.n_global_actions, model.n_histograms
    probs = action_probs(model.O, np.asarray(table), A_g)
    P = np.empty((S_g, H, S_g, H))
    for g in range(S_g):
        P_next_g = probs[g] @ game.P_g[g]  # (H, S_g')
        P[g] = P_next_g[:, :, None] * np.asarray(model.T[g])[:, None, :]
    r = np.einsum("gha,ga->gh", probs, game.r_g) + model.R_l
    return MemorylessChain(probs, P.reshape(S_g * H, S_g * H), r.ravel())


def _q_values(model: PopulationModel, V: np.ndarray) -> np.ndarray:
    """(S_g, H, A_g) r_g + R_l + gamma sum_g' P_g(g' | s_g, a) E[V(g', h') | s_g, h] from (S_g, H) V."""
    game = model.game
    VT = np.ascontiguousarray(V.T)  # (H, S_g'), shared by the S_g products
    cont = np.stack([np.asarray(model.T[g] @ VT) for g in range(game.n_global_states)])  # (S_g, H, S_g')
    return model.reward_base + game.gamma * np.matmul(cont, model.P_g_T)


def _forward(model: PopulationModel, probs: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The law of (s_g, h) one step after (S_g, H) d under (S_g, H, A_g) action probs."""
    game = model.game
    out = np.zeros_like(d)
    for g in range(game.n_global_states):
        moved = d[g][:, None] * (probs[g] @ game.P_g[g])  # (H, S_g')
        out += np.asarray(model.T_transposed[g] @ moved).T
    return out


def _value_sequence(model: PopulationModel, probs: np.ndarray, horizon: int | None,
                    tol: float = 1e-12, q_out: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """[V_0 = 0, ..., V_H] (S_g, H) values with j steps to go, or [V_inf] by value iteration to `tol`.
    With a finite horizon, `q_out` (a list) receives [Q_1, ..., Q_H], Q_j the action values with j steps to go."""
    out = [np.zeros(model.R_l.shape)]
    steps = horizon if horizon is not None else 1_000_000
    for _ in range(steps):
        Q = _q_values(model, out[-1])
        if q_out is not None and horizon is not None:
            q_out.append(Q)
        V = (probs * Q).sum(-1)
        if horizon is None:
            done = np.abs(V - out[-1]).max() < tol
            out = [V]
            if done:
                break
        else:
            out.append(V)
    return out


def memoryless_value(model: PopulationModel, table: np.ndarray, *,
                     horizon: int | None = None) -> float:
    """Exact expected discounted return of the dispatcher `table` (S_g, D) against pi_l on the model:
    infinite horizon, or sum_{t < horizon} gamma^t r(t) (what `sim.evaluate` estimates)."""
    if _is_small(model):
        chain = memoryless_chain(model, table)
        return float(model.init.ravel() @ _dense_values(chain.P, chain.r, model.game.gamma, horizon)[-1])
    probs = action_probs(model.O, np.asarray(table), model.game.n_global_actions)
    return float((model.init * _value_sequence(model, probs, horizon)[-1]).sum())


def _is_small(model: PopulationModel) -> bool:
    """Dense linear algebra on the (S_g H)^2 chain (exact solves) when it is small."""
    return (not isinstance(model.O, SampledKernel) and isinstance(model.T[0], np.ndarray)
            and model.game.n_global_states * model.n_histograms <= 1500)


def _dense_values(P: np.ndarray, r: np.ndarray, gamma: float, horizon: int | None) -> list[np.ndarray]:
    """[V_0 = 0, V_1, ..., V_H] (finite horizon: V_j = value with j steps left) or [V_inf] (linear solve)."""
    if horizon is None:
        return [np.linalg.solve(np.eye(P.shape[0]) - gamma * P, r)]
    out = [np.zeros_like(r)]
    for _ in range(horizon):
        out.append(r + gamma * (P @ out[-1]))
    return out


def observation_q(model: PopulationModel, table: np.ndarray, *, horizon: int | None = None) -> np.ndarray:
    """(S_g, D, A_g) occupancy-weighted action values of the observation entries under `table`:

        Qobs(s_g, o, a) = sum_t gamma^t sum_h d_t(s_g, h) O[h, o] Q_{H - t}(s_g, h, a),

    d_t the law of (s_g, h) at step t under `table`, Q_j the j-steps-to-go action value of the hidden
    state (infinite horizon: the discounted occupancy and Q^pi). Switching entry (s_g, o) to the
    argmax is the first-order (performance-difference) improvement of a memoryless policy; it is only
    a proposal (a memoryless POMDP policy is not improved monotonically by it), to be verified."""
    game = model.game
    gamma = game.gamma
    probs = action_probs(model.O, np.asarray(table), game.n_global_actions)
    d = model.init
    weighted = np.zeros(probs.shape)
    if horizon is None and _is_small(model):
        chain = memoryless_chain(model, table)
        eye = np.eye(chain.P.shape[0])
        V = np.linalg.solve(eye - gamma * chain.P, chain.r).reshape(d.shape)
        occupancy = np.linalg.solve((eye - gamma * chain.P).T, d.ravel()).reshape(d.shape)
        weighted = occupancy[:, :, None] * _q_values(model, V)
    elif horizon is None:
        Q = _q_values(model, _value_sequence(model, probs, None)[0])
        t, occupancy = 0, np.zeros(d.shape)
        while gamma ** t * d.sum() > 1e-13:
            occupancy += gamma ** t * d
            d, t = _forward(model, probs, d), t + 1
        weighted = occupancy[:, :, None] * Q
    else:
        qs: list[np.ndarray] = []
        _value_sequence(model, probs, horizon, q_out=qs)
        for t in range(horizon):
            weighted += gamma ** t * d[:, :, None] * qs[horizon - t - 1]
            d = _forward(model, probs, d)
    return np.stack([kernel_transpose(model.O, weighted[g]) for g in range(game.n_global_states)])
