"""L-LEARN: the shared local policy's best response to a fixed pi_g (PAPER.md 2.3, Algorithm 2).

A representative local agent sees (s_g, s_l). Its environment is not Markov in (s_g, s_l): s_g moves
by pi_g applied to the count vector of k sampled agents, which depends on the whole population. The
paper builds a k-chained MDP and runs UCFH on it; its state space grows like |S_l|^k and the paper
gives no projection back to a stationary pi_l(s_l, s_g) (PAPER.md 2.3, reviewer concerns). We use the
induced MDP on (s_g, s_l) instead, computed exactly from the model:

    P_g_eff(s_g' | s_g) = sum_d Multinomial(d; k, mu(. | s_g)) P_g(s_g' | s_g, pi_g(s_g, d))
    P((s_g', s_l') | (s_g, s_l), a_l) = P_g_eff(s_g' | s_g) P_l(s_l' | s_l, s_g, a_l)
    reward r_l(s_l, s_g, a_l)

where mu(. | s_g) is the population's local-state distribution given s_g: the conditional of the
stationary distribution of the joint (s_g, s_l) chain under (pi_g, pi_l), found as a fixed point
(mu determines P_g_eff, which determines the chain). The approximations, stated: (i) the k sampled
agents are i.i.d. from mu(. | s_g), i.e. the population is replaced by its conditional mean field
(exact as n -> infinity when the population is stationary); (ii) the representative agent's own
effect on the sample, O(k/n), is ignored; (iii) the raw r_l is used instead of r_l / n, which does
not change the argmax because r_g and P_g do not depend on a_l. The best response is then exact
value iteration on |S_g| |S_l| states and is greedy (deterministic).

The authors' variant (PAPER.md 2.7) is `l_learn_authors`: mu from 50 power iterations with s_g
averaged uniformly, P_g_eff from 200 Monte Carlo multinomial draws (their seed 999), 100 truncated
value-iteration sweeps, and a softmax policy with temperature max(0.3, range(Q) / 3).
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy.special import gammaln

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.game import TabularGame, marginal_local
from altmarl_ros.marl.mdp import stationary_distribution, value_iteration
from altmarl_ros.marl.policy import FullInformationPolicy, TabularGlobalPolicy, TabularLocalPolicy


class LLearnResult(NamedTuple):
    pi_l: TabularLocalPolicy
    Q: np.ndarray  # (S_g, S_l, A_l) action values of the representative agent
    P_g_eff: np.ndarray  # (S_g, S_g) global chain seen by the representative agent
    mu: np.ndarray  # (S_g, S_l) population distribution given s_g (authors: the same row repeated)
    seconds: float


def effective_global_chain(game: TabularGame, pi_g: TabularGlobalPolicy | FullInformationPolicy,
                           mu: np.ndarray) -> np.ndarray:
    """P_g_eff[s_g, s_g'] = E_{d ~ Multinomial(k, mu[s_g])} P_g(s_g' | s_g, pi_g(s_g, d)), exactly.

    mu : (S_g, S_l) sampling distribution per s_g. Sums over all C(k + S_l - 1, S_l - 1) count vectors.
    A FullInformationPolicy observes the population itself, mu[s_g] rounded to k counts, without sampling.
    """
    if isinstance(pi_g, FullInformationPolicy):
        d = cv.round_to_counts(mu * pi_g.k, pi_g.k)  # (S_g, S_l)
        a_g = pi_g.pi_g.act(np.arange(game.n_global_states), d)
        return game.P_g[np.arange(game.n_global_states), a_g]
    k = pi_g.k
    all_d = cv.enumerate_counts(k, game.n_local_states)
    # log Multinomial(d; k, mu[s_g]) = log k! - sum_j log d_j! + sum_j d_j log mu_j: one (D, S_l) @ (S_l, S_g)
    # product. log 0 is clipped to -1e4, so a d with d_j > 0 where mu_j = 0 gets exactly probability 0.
    log_mu = np.log(np.maximum(mu, 1e-300))
    log_mu[mu <= 0] = -1e4
    pmf = np.exp(_log_multinomial_coef(k, game.n_local_states)[:, None] + all_d @ log_mu.T).T  # (S_g, D)
    P_eff = np.empty((game.n_global_states, game.n_global_states))
    for g in range(game.n_global_states):
        a_mass = np.bincount(pi_g.actions[g], weights=pmf[g], minlength=game.n_global_actions)
        P_eff[g] = a_mass @ game.P_g[g]
    return P_eff / P_eff.sum(-1, keepdims=True)


@lru_cache(maxsize=8)
def _log_multinomial_coef(k: int, n_states: int) -> np.ndarray:
    """(D,) log k! - sum_j log d_j! for every count vector d of k over n_states (rank order)."""
    return gammaln(k + 1) - gammaln(cv.enumerate_counts(k, n_states) + 1).sum(-1)


def chase_policy(game: TabularGame, *, tol: float = 1e-8) -> TabularLocalPolicy:
    """The best response of a robot that believes s_g never changes (P_g_eff = identity in the induced
    MDP): for the warehouse, "go where s_g is". A starting pair of the multi-start alternation."""
    P, r = _induced_mdp(game, np.eye(game.n_global_states))
    Q = value_iteration(P, r, game.gamma, tol=tol).Q
    return TabularLocalPolicy.greedy(Q.reshape(game.n_global_states, game.n_local_states, game.n_local_actions))


def _induced_mdp(game: TabularGame, P_g_eff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s_g, s_l) MDP: P[(g,l), a, (g',l')] = P_g_eff[g,g'] P_l[l,g,a,l'], r[(g,l), a] = r_l[l,g,a]."""
    S_g, S_l, A_l = game.n_global_states, game.n_local_states, game.n_local_actions
    P = np.einsum("gh,lgam->glahm", P_g_eff, game.P_l).reshape(S_g * S_l, A_l, S_g * S_l)
    r = np.transpose(game.r_l, (1, 0, 2)).reshape(S_g * S_l, A_l)
    return P, r


def conditional_mean_field(game: TabularGame, pi_g: TabularGlobalPolicy | FullInformationPolicy,
                           pi_l: TabularLocalPolicy, *, tol: float = 1e-10,
                           max_iter: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Fixed point (mu(. | s_g), P_g_eff) of the joint (s_g, s_l) chain under (pi_g, pi_l)."""
    S_g, S_l = game.n_global_states, game.n_local_states
    P_tilde, _ = marginal_local(game, pi_l.probs)  # (S_l, S_g, S_l')
    mu = np.full((S_g, S_l), 1.0 / S_l)
    P_eff = effective_global_chain(game, pi_g, mu)
    for _ in range(max_iter):
        T = np.einsum("gh,lgm->glhm", P_eff, P_tilde).reshape(S_g * S_l, S_g * S_l)
        nu = stationary_distribution(T).reshape(S_g, S_l)
        mass = nu.sum(-1, keepdims=True)
        new_mu = np.where(mass > 1e-300, nu / np.maximum(mass, 1e-300), 1.0 / S_l)
        done = np.abs(new_mu - mu).max() < tol
        mu = new_mu
        P_eff = effective_global_chain(game, pi_g, mu)
        if done:
            break
    return mu, P_eff


def l_learn(game: TabularGame, pi_g: TabularGlobalPolicy | FullInformationPolicy, pi_l: TabularLocalPolicy, *,
            tol: float = 1e-8) -> LLearnResult:
    """Best response of the shared local policy to `pi_g`, the others playing `pi_l` (see module doc)."""
    t0 = time.perf_counter()
    mu, P_eff = conditional_mean_field(game, pi_g, pi_l)
    P, r = _induced_mdp(game, P_eff)
    result = value_iteration(P, r, game.gamma, tol=tol)
    Q = result.Q.reshape(game.n_global_states, game.n_local_states, game.n_local_actions)
    return LLearnResult(TabularLocalPolicy.greedy(Q), Q, P_eff, mu, time.perf_counter() - t0)


def l_learn_authors(game: TabularGame, pi_g: TabularGlobalPolicy, pi_l: TabularLocalPolicy, *,
                    n_mc: int = 200, mc_seed: int = 999, mu_iters: int = 50, max_iter: int = 100,
                    tol: float = 1e-6, tau_scale: float = 3.0, tau_min: float = 0.3) -> LLearnResult:
    """The authors' L-LEARN (PAPER.md 2.7), reproduced step by step, vectorized."""
    t0 = time.perf_counter()
    S_g, S_l = game.n_global_states, game.n_local_states
    mu = _authors_mean_field(game, pi_l, mu_iters)
    rng = np.random.default_rng(mc_seed)
    P_eff = np.zeros((S_g, S_g))
    for g in range(S_g):
        draws = rng.multinomial(pi_g.k, mu, size=n_mc)  # same stream as n_mc sequential draws
        P_eff[g] = game.P_g[g][pi_g.act(np.full(n_mc, g), draws)].mean(0)
    P, r = _induced_mdp(game, P_eff)
    V = np.zeros(S_g * S_l)
    for _ in range(max_iter):
        V_new = (r + game.gamma * P @ V).max(-1)
        converged = np.abs(V_new - V).max() < tol
        V = V_new
        if converged:
            break
    Q = (r + game.gamma * P @ V).reshape(S_g, S_l, -1)
    tau = np.maximum(tau_min, (Q.max(-1) - Q.min(-1)) / tau_scale)[..., None]
    z = np.exp((Q - Q.max(-1, keepdims=True)) / tau)
    probs = z / z.sum(-1, keepdims=True)
    mu_rows = np.broadcast_to(mu, (S_g, S_l)).copy()
    return LLearnResult(TabularLocalPolicy(probs), Q, P_eff, mu_rows, time.perf_counter() - t0)


def _authors_mean_field(game: TabularGame, pi_l: TabularLocalPolicy, n_iter: int) -> np.ndarray:
    """The authors' stationary mean field with s_g averaged uniformly, in their order of floating-point
    operations: their Monte Carlo draws of count vectors depend on the last bits of mu."""
    S_g, S_l, A_l = game.n_global_states, game.n_local_states, game.n_local_actions
    P_tilde = np.zeros((S_l, S_g, S_l))
    for s_l in range(S_l):
        for s_g in range(S_g):
            for a in range(A_l):
                if pi_l.probs[s_g, s_l, a] > 1e-12:
                    P_tilde[s_l, s_g] += pi_l.probs[s_g, s_l, a] * game.P_l[s_l, s_g, a]
    mu = np.ones(S_l) / S_l
    for _ in range(n_iter):
        nxt = np.zeros(S_l)
        for s_l in range(S_l):
            if mu[s_l] > 1e-12:
                for s_g in range(S_g):
                    nxt += (mu[s_l] / S_g) * P_tilde[s_l, s_g]
        if nxt.sum() > 0:
            mu = nxt / nxt.sum()
    return mu
