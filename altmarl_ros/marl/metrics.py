"""Metrics: the full-information global oracle, and exact brute-force values and gaps for tiny games.

The Monte Carlo gap estimators on the n-agent system are in `marl.gaps` (gap_l_unilateral,
gap_l_shared, gap_g_restricted, gap_g_full). `global_oracle` is G-LEARN with the deterministic
mean-field transition at a large k_oracle, executed with full information (the whole population's
histogram rounded to k_oracle counts): a feasible full-information dispatcher, so gaps against it are
lower bounds of the full-information gap.

`exact_value` and the `exact_*` gaps are exact (no sampling): they build the joint chain over
S_g x S_l^n for tiny n, and take best responses by enumerating every deterministic policy of the
restricted classes (pi_g over (s_g, count vector of k), shared pi_l over (s_g, s_l), one tagged robot's
table). They validate the estimators and the learners on toy games.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from scipy.special import gammaln

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.game import TabularGame, marginal_local
from altmarl_ros.marl.learners.g_learn import g_learn
from altmarl_ros.marl.mdp import policy_evaluation
from altmarl_ros.marl.policy import FullInformationPolicy, TabularGlobalPolicy, TabularLocalPolicy


def global_oracle(game: TabularGame, pi_l: TabularLocalPolicy, *, k_oracle: int) -> FullInformationPolicy:
    """A full-information dispatcher: deterministic mean-field G-LEARN at k_oracle, observing the whole
    population (its histogram rounded to k_oracle counts)."""
    result = g_learn(game, pi_l, k=k_oracle, transition="deterministic", stopping="span", tol=1e-3)
    return FullInformationPolicy(result.pi_g)


# ----------------------------------------------------------------------------------------------
# Exact brute force for tiny games
# ----------------------------------------------------------------------------------------------

class _JointSpace(NamedTuple):
    s_l: np.ndarray  # (L, n) every local configuration, L = S_l^n
    counts_rank: dict[int, np.ndarray]  # k -> (L, C(n, k)) ranks of the count vectors of every k-subset


def _joint_space(game: TabularGame, n_agents: int) -> _JointSpace:
    S_l = game.n_local_states
    if S_l ** n_agents * game.n_global_states > 20_000:
        raise InputError(f"exact metrics enumerate S_g * S_l^n joint states; n_agents={n_agents} is too large")
    s_l = np.array(list(itertools.product(range(S_l), repeat=n_agents)), dtype=np.int64).reshape(-1, n_agents)
    return _JointSpace(s_l, {})


def _subset_ranks(space: _JointSpace, k: int, S_l: int) -> np.ndarray:
    if k not in space.counts_rank:
        subsets = np.array(list(itertools.combinations(range(space.s_l.shape[1]), k)), dtype=np.int64)
        sampled = space.s_l[:, subsets]  # (L, C, k)
        space.counts_rank[k] = cv.rank(cv.counts_from_states(sampled, S_l), k)
    return space.counts_rank[k]


def _initial_distribution(game: TabularGame, space: _JointSpace) -> np.ndarray:
    """(S_g, L): init_g x the law of the initial population (i.i.d. uniform, or Dirichlet-multinomial)."""
    S_l = game.n_local_states
    n = space.s_l.shape[1]
    c = game.init_l_concentration
    if c == 0.0:
        p_l = np.full(space.s_l.shape[0], float(S_l) ** -n)
    else:
        m = cv.counts_from_states(space.s_l, S_l)
        p_l = np.exp(gammaln(S_l * c) - gammaln(S_l * c + n) + (gammaln(c + m) - gammaln(c)).sum(-1))
    return game.init_g[:, None] * p_l[None, :]


class _Chain(NamedTuple):
    P: np.ndarray  # (S_g L, S_g L) joint transition
    r: np.ndarray  # (S_g L,) system reward r_g + (1/n) sum_i r~_i
    r_own: np.ndarray  # (S_g L,) agent 0's own local reward r~_0(s_0, s_g)


def _joint_chain(game: TabularGame, space: _JointSpace, a_g_probs: np.ndarray, pi_l: TabularLocalPolicy,
                 pi_dev: TabularLocalPolicy | None = None) -> _Chain:
    """The joint chain given (S_g, L, A_g) a_g probs; agent 0 plays `pi_dev` (default pi_l), the others pi_l."""
    S_g = game.n_global_states
    L, n = space.s_l.shape
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)  # (S_l, S_g, S_l'), (S_l, S_g)
    P_dev, r_dev = marginal_local(game, (pi_dev or pi_l).probs)
    r_local = r_tilde[space.s_l, :]  # (L, n, S_g)
    r_local[:, 0, :] = r_dev[space.s_l[:, 0], :]
    reward = np.einsum("gxa,ga->gx", a_g_probs, game.r_g) + r_local.mean(1).T  # (S_g, L)
    P = np.zeros((S_g, L, S_g, L))
    for g in range(S_g):
        K = P_dev[:, g, :]
        for _ in range(n - 1):
            K = np.kron(K, P_tilde[:, g, :])  # agents' joint move, agent 0 most significant
        P_gh = a_g_probs[g] @ game.P_g[g]  # (L, S_g')
        P[g] = P_gh[:, :, None] * K[:, None, :]
    return _Chain(P.reshape(S_g * L, S_g * L), reward.ravel(), r_local[:, 0, :].T.ravel())


def _global_action_probs(game: TabularGame, space: _JointSpace,
                         pi_g: TabularGlobalPolicy | FullInformationPolicy) -> np.ndarray:
    """(S_g, L, A_g): probability of each a_g; a uniform k-subset (Algorithm 4) for a TabularGlobalPolicy,
    the (deterministic) rounded whole-population histogram for a FullInformationPolicy."""
    S_g, A_g = game.n_global_states, game.n_global_actions
    if isinstance(pi_g, FullInformationPolicy):
        L = space.s_l.shape[0]
        s_g = np.repeat(np.arange(S_g), L)
        actions = pi_g.act_on(np.random.default_rng(0), s_g, np.tile(space.s_l, (S_g, 1)))
        return np.eye(A_g)[actions.reshape(S_g, L)]
    ranks = _subset_ranks(space, pi_g.k, game.n_local_states)  # (L, C)
    actions = pi_g.actions[:, ranks]  # (S_g, L, C)
    one_hot = np.eye(A_g)[actions]
    return one_hot.mean(2)


def _evaluate(P: np.ndarray, r: np.ndarray, gamma: float, horizon: int | None) -> np.ndarray:
    """Discounted value of a chain: infinite horizon (horizon None), else sum_{t < horizon} gamma^t r(t)."""
    if horizon is None:
        return policy_evaluation(P, r, gamma)
    V = np.zeros_like(r)
    for _ in range(horizon):
        V = r + gamma * (P @ V)
    return V


def exact_value(game: TabularGame, pi_g: TabularGlobalPolicy | FullInformationPolicy, pi_l: TabularLocalPolicy, *,
                n_agents: int, space: _JointSpace | None = None, horizon: int | None = None) -> float:
    """Exact expected discounted return of (pi_g, pi_l) on n agents (paper ordering); infinite horizon by
    default, else sum_{t < horizon} gamma^t r(t), the quantity `sim.evaluate` estimates."""
    space = space if space is not None else _joint_space(game, n_agents)
    chain = _joint_chain(game, space, _global_action_probs(game, space, pi_g), pi_l)
    V = _evaluate(chain.P, chain.r, game.gamma, horizon)
    return float(_initial_distribution(game, space).ravel() @ V)


class TaggedValue(NamedTuple):
    system: float  # V: expected discounted system return, reward r_g + (1/n) sum_i r_l
    own: float  # expected discounted own local return of agent 0, reward r_l(s_0, s_g, a_0)


def exact_tagged_value(game: TabularGame, pi_g: TabularGlobalPolicy | FullInformationPolicy,
                       pi_l: TabularLocalPolicy, pi_dev: TabularLocalPolicy, *, n_agents: int,
                       space: _JointSpace | None = None, horizon: int | None = None) -> TaggedValue:
    """Exact values when agent 0 plays `pi_dev` and agents 1..n-1 play `pi_l` (a unilateral deviation)."""
    space = space if space is not None else _joint_space(game, n_agents)
    chain = _joint_chain(game, space, _global_action_probs(game, space, pi_g), pi_l, pi_dev)
    init = _initial_distribution(game, space).ravel()
    V = _evaluate(chain.P, np.stack([chain.r, chain.r_own], 1), game.gamma, horizon)
    return TaggedValue(float(init @ V[:, 0]), float(init @ V[:, 1]))


class ExactNashGap(NamedTuple):
    value: float
    gap_g: float  # max over deterministic pi_g' in the k-subsampled class of V(pi_g', pi_l) - V
    gap_l: float  # max over deterministic shared pi_l' of V(pi_g, pi_l') - V
    best_pi_g: TabularGlobalPolicy
    best_pi_l: TabularLocalPolicy

    @property
    def nash_gap(self) -> float:
        return max(self.gap_g, self.gap_l)


class ExactGap(NamedTuple):
    """An exact best-response gap: max over the enumerated deviations of V(deviation) - V, and the argmax."""

    value: float  # V(pi_g, pi_l)
    gap: float  # >= 0: the current policy is one of the candidates
    best: TabularGlobalPolicy | TabularLocalPolicy


def _check_count(what: str, count: int, max_policies: int) -> None:
    if count > max_policies:
        raise InputError(f"{what} would enumerate {count} deterministic policies (> max_policies={max_policies})")


def _local_tables(game: TabularGame) -> Iterator[TabularLocalPolicy]:
    eye = np.eye(game.n_local_actions)
    for table in itertools.product(range(game.n_local_actions), repeat=game.n_global_states * game.n_local_states):
        yield TabularLocalPolicy(eye[np.reshape(table, (game.n_global_states, game.n_local_states))])


def exact_shared_gap(game: TabularGame, pi_g: TabularGlobalPolicy | FullInformationPolicy,
                     pi_l: TabularLocalPolicy, *, n_agents: int, horizon: int | None = None,
                     max_policies: int = 20_000) -> ExactGap:
    """Exact shared local gap: max over every deterministic shared table pi_l'(s_g, s_l) of
    V(pi_g, pi_l') - V(pi_g, pi_l), all n agents switching (A_l^(S_g S_l) tables)."""
    _check_count("exact_shared_gap", game.n_local_actions ** (game.n_global_states * game.n_local_states),
                 max_policies)
    space = _joint_space(game, n_agents)
    value = exact_value(game, pi_g, pi_l, n_agents=n_agents, space=space, horizon=horizon)
    best, best_value = pi_l, value
    for cand in _local_tables(game):
        v = exact_value(game, pi_g, cand, n_agents=n_agents, space=space, horizon=horizon)
        if v > best_value + 1e-12:
            best, best_value = cand, v
    return ExactGap(value, best_value - value, best)


def exact_restricted_global_gap(game: TabularGame, pi_g: TabularGlobalPolicy, pi_l: TabularLocalPolicy, *,
                                n_agents: int, horizon: int | None = None, max_policies: int = 20_000) -> ExactGap:
    """Exact restricted global gap: max over every deterministic pi_g'(s_g, counts of k) of
    V(pi_g', pi_l) - V(pi_g, pi_l), executed with a fresh uniform k-subset per step (A_g^(S_g D) tables)."""
    S_g, S_l, A_g = game.n_global_states, game.n_local_states, game.n_global_actions
    D = pi_g.actions.shape[1]
    _check_count("exact_restricted_global_gap", A_g ** (S_g * D), max_policies)
    space = _joint_space(game, n_agents)
    value = exact_value(game, pi_g, pi_l, n_agents=n_agents, space=space, horizon=horizon)
    best, best_value = pi_g, value
    for table in itertools.product(range(A_g), repeat=S_g * D):
        cand = TabularGlobalPolicy(np.reshape(table, (S_g, D)), pi_g.k, S_l, A_g)
        v = exact_value(game, cand, pi_l, n_agents=n_agents, space=space, horizon=horizon)
        if v > best_value + 1e-12:
            best, best_value = cand, v
    return ExactGap(value, best_value - value, best)


def exact_nash_gap(game: TabularGame, pi_g: TabularGlobalPolicy, pi_l: TabularLocalPolicy, *, n_agents: int,
                   max_policies: int = 20_000) -> ExactNashGap:
    """Exact restricted Nash gap by enumerating every deterministic deviation of each player."""
    S_g, S_l, A_g, A_l = game.n_global_states, game.n_local_states, game.n_global_actions, game.n_local_actions
    D = pi_g.actions.shape[1]
    n_g, n_l = A_g ** (S_g * D), A_l ** (S_g * S_l)
    if max(n_g, n_l) > max_policies:
        raise InputError(f"exact_nash_gap would enumerate {n_g} global and {n_l} local policies (> {max_policies})")
    g = exact_restricted_global_gap(game, pi_g, pi_l, n_agents=n_agents, max_policies=max_policies)
    ell = exact_shared_gap(game, pi_g, pi_l, n_agents=n_agents, max_policies=max_policies)
    assert isinstance(g.best, TabularGlobalPolicy) and isinstance(ell.best, TabularLocalPolicy)
    return ExactNashGap(g.value, g.gap, ell.gap, g.best, ell.best)


class ExactUnilateralGap(NamedTuple):
    """Exact unilateral gaps of agent 0 (agents 1..n-1 keep pi_l), over every deterministic table pi'(s_g, s_l)."""

    value: TaggedValue  # values of (pi_g, pi_l)
    gap: float  # n * max_pi' [V(agent 0 on pi') - V]: the system-value gain on the scale of one robot's return
    gap_own: float  # max_pi' [own return of agent 0 on pi' - its own return on pi_l]
    best: TabularLocalPolicy  # argmax of `gap`
    best_own: TabularLocalPolicy  # argmax of `gap_own`


def exact_unilateral_gap(game: TabularGame, pi_g: TabularGlobalPolicy | FullInformationPolicy,
                         pi_l: TabularLocalPolicy, *, n_agents: int, horizon: int | None = None,
                         max_policies: int = 20_000) -> ExactUnilateralGap:
    """Exact unilateral local gaps by enumerating agent 0's A_l^(S_g S_l) deterministic tables (same scale
    as `gaps.gap_l_unilateral`: n x the system-value gain, and the own-return gain)."""
    _check_count("exact_unilateral_gap", game.n_local_actions ** (game.n_global_states * game.n_local_states),
                 max_policies)
    space = _joint_space(game, n_agents)
    value = exact_tagged_value(game, pi_g, pi_l, pi_l, n_agents=n_agents, space=space, horizon=horizon)
    best, best_v = pi_l, value.system
    best_own, best_own_v = pi_l, value.own
    for cand in _local_tables(game):
        v = exact_tagged_value(game, pi_g, pi_l, cand, n_agents=n_agents, space=space, horizon=horizon)
        if v.system > best_v + 1e-12:
            best, best_v = cand, v.system
        if v.own > best_own_v + 1e-12:
            best_own, best_own_v = cand, v.own
    return ExactUnilateralGap(value, n_agents * (best_v - value.system), best_own_v - value.own, best, best_own)


def exact_global_best_response(game: TabularGame, pi_l: TabularLocalPolicy, *, n_agents: int,
                               tol: float = 1e-12, horizon: int | None = None) -> np.ndarray:
    """Optimal value (S_g, L) of a global agent that sees the full joint state, against pi_l: exact value
    iteration to `tol` (infinite horizon), or `horizon` backward steps (the finite-horizon optimum, which
    may be non-stationary and so bounds every stationary dispatcher's finite-horizon value)."""
    space = _joint_space(game, n_agents)
    S_g, A_g = game.n_global_states, game.n_global_actions
    L = space.s_l.shape[0]
    V = np.zeros(S_g * L)
    per_action = []
    for a in range(A_g):
        probs = np.zeros((S_g, L, A_g))
        probs[..., a] = 1.0
        chain = _joint_chain(game, space, probs, pi_l)
        per_action.append((chain.P, chain.r))
    step = 0
    while True:
        V_new = np.max([r + game.gamma * P @ V for P, r in per_action], axis=0)
        step += 1
        if (horizon is not None and step >= horizon) or (horizon is None and np.abs(V_new - V).max() < tol):
            return V_new.reshape(S_g, L)
        V = V_new


def exact_full_information_gap(game: TabularGame, pi_g: TabularGlobalPolicy | FullInformationPolicy,
                               pi_l: TabularLocalPolicy, *, n_agents: int, horizon: int | None = None) -> float:
    """Exact full-information global gap: V*(a dispatcher observing the whole joint state, pi_l) - V(pi_g, pi_l)."""
    space = _joint_space(game, n_agents)
    V_star = exact_global_best_response(game, pi_l, n_agents=n_agents, horizon=horizon)
    init = _initial_distribution(game, space)
    return float((init * V_star).sum()) - exact_value(game, pi_g, pi_l, n_agents=n_agents, space=space,
                                                      horizon=horizon)
