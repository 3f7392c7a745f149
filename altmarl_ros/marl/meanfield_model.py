"""A consistent large-n model of the dispatcher's partially observed problem (the restricted best
response's model at warehouse scale, where the exact histogram chain of `population` is too large).

As n grows the population distribution mu_t = h_t / n follows the mean-field map mu' = mu P~_l(s_g)
(fluctuations O(1/sqrt n)), and a k-sample of it is Multinomial(k, mu) (sampling without replacement
from n >> k robots). The model keeps mu on the grid of count vectors of K (D_K = C(K + S_l - 1,
S_l - 1) points) and moves it by **mean-preserving randomized rounding** of K mu P~_l: with X_j the
cumulative sums of x = K mu P~_l and u ~ U(0, 1), the next grid point is c_j = floor(X_j + u) -
floor(X_{j-1} + u), so E[c] = x exactly (at most S_l + 1 outcomes per point; the deterministic
largest-remainder rounding of the authors' mean field stalls slow moves on a coarse grid, this does
not). The observation kernel is the exact multinomial P(o | mu) when the dense (D_K, D_k) table is
small, else `m_obs` sampled observations per grid point (unbiased). The initial law is `n_init`
draws of mu_0 ~ Dirichlet(c) rounded the same way. The result is a `population.PopulationModel`, so
the same evaluation and the same policy iteration (`restricted.model_best_response`) run on it;
the best response it finds is then checked on the true n-agent system (paired Monte Carlo).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from scipy.special import gammaln

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.game import TabularGame, marginal_local
from altmarl_ros.marl.policy import TabularLocalPolicy
from altmarl_ros.marl.population import PopulationModel, SampledKernel

DENSE_KERNEL_MAX = 12_000_000  # entries of a dense (D_K, D_k) multinomial kernel


def randomized_rounding(x: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean-preserving rounding of (N, S) rows summing to K onto count vectors of K.

    Returns ((N, S + 1) ranks of the outcomes, (N, S + 1) probabilities; zero-probability slots have
    probability 0). E[outcome] = x row by row."""
    N, S = x.shape
    X = np.cumsum(x, axis=1)
    X[:, -1] = K  # exact total
    thresholds = np.sort(np.mod(-X, 1.0), axis=1)  # u values where some floor(X_j + u) steps up
    edges = np.concatenate([np.zeros((N, 1)), thresholds, np.ones((N, 1))], axis=1)  # (N, S + 2)
    probs = np.diff(edges, axis=1)  # (N, S + 1)
    mid = (edges[:, :-1] + edges[:, 1:]) / 2  # (N, S + 1)
    floors = np.floor(X[:, None, :] + mid[:, :, None] + 1e-12)  # (N, S + 1, S)
    counts = np.diff(np.concatenate([np.zeros((N, S + 1, 1)), floors], axis=2), axis=2).astype(np.int64)
    counts = np.clip(counts, 0, K)
    counts[..., -1] = K - counts[..., :-1].sum(-1)
    valid = (counts[..., -1] >= 0) & (probs > 0)
    counts[~valid] = 0
    counts[~valid, 0] = K
    return cv.rank(counts, K), np.where(valid, probs, 0.0)


def _grid_transition(points: np.ndarray, P_tilde_g: np.ndarray, K: int) -> sp.csr_matrix:
    """(D_K, D_K) mean-preserving randomized-rounding transition of mu -> mu P~ on the grid."""
    ranks, probs = randomized_rounding(points @ P_tilde_g, K)
    D = points.shape[0]
    rows = np.repeat(np.arange(D), ranks.shape[1])
    M = sp.csr_matrix((probs.ravel(), (rows, ranks.ravel())), shape=(D, D))
    M.sum_duplicates()
    M.eliminate_zeros()
    return M


@lru_cache(maxsize=4)
def multinomial_kernel(K: int, k: int, S: int) -> np.ndarray:
    """(D_K, D_k) P(o | mu = point / K) over the grid points of K (rank order): the count vector of k
    i.i.d. draws from mu. Read-only and cached (it does not depend on the game)."""
    points = cv.enumerate_counts(K, S).astype(np.float64)
    obs = cv.enumerate_counts(k, S).astype(np.float64)
    mu = points / K
    with np.errstate(divide="ignore"):
        log_mu = np.log(mu)
    log_p = gammaln(k + 1) - gammaln(obs + 1).sum(-1)[None, :]
    with np.errstate(invalid="ignore"):
        term = obs[None, :, :] * log_mu[:, None, :]
    term = np.where(obs[None, :, :] == 0, 0.0, term)  # 0 log 0 = 0
    out = np.exp(log_p + term.sum(-1))
    out.setflags(write=False)
    return out


def meanfield_grid(game: TabularGame, pi_l: TabularLocalPolicy, *, k: int, K: int, rng: np.random.Generator,
                   m_obs: int = 200, n_init: int = 20_000) -> PopulationModel:
    """The large-n model on the grid of count vectors of K (see the module docstring)."""
    if k < 1 or K < 1:
        raise InputError(f"need k >= 1 and K >= 1, got k={k}, K={K}")
    S_l, S_g = game.n_local_states, game.n_global_states
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)
    points = cv.enumerate_counts(K, S_l).astype(np.float64)
    D_K, D_k = points.shape[0], cv.n_count_vectors(k, S_l)
    T = tuple(_grid_transition(points, P_tilde[:, g, :], K) for g in range(S_g))
    R_l = (points @ r_tilde).T / K
    if D_K * D_k <= DENSE_KERNEL_MAX:
        O: np.ndarray | SampledKernel = multinomial_kernel(K, k, S_l)  # noqa: E741
    else:
        draws = np.stack([rng.multinomial(k, p, size=m_obs) for p in points / K])  # (D_K, m, S)
        O = SampledKernel(cv.rank(draws, k), D_k)  # noqa: E741
    mu0 = game.sample_population(rng, n_init)
    ranks, probs = randomized_rounding(mu0 * K, K)
    init_l = np.bincount(ranks.ravel(), probs.ravel(), D_K) / n_init
    return PopulationModel(game, K, k, T, O, R_l, game.init_g[:, None] * init_l[None, :])
