"""G-LEARN: the global agent's best response to a fixed pi_l (PAPER.md 2.2, Algorithm 1).

The global agent's surrogate MDP has states (s_g, d), d a count vector of k sampled local agents, and

    Q(s_g, d, a_g) = r_g(s_g, a_g) + (1/k) sum_j d_j r~_l(j, s_g)
                     + gamma sum_{s_g'} P_g(s_g' | s_g, a_g) E[ V(s_g', d') | s_g, d ],

where each of the k agents moves by P~_l(. | s_l, s_g) (pi_l marginalised) and d' is their next count
vector; d' does not depend on a_g. How E[V(s_g', d')] is formed is the `transition`:

- "sampled" (the paper's empirical adapted Bellman operator): m samples of d' per (s_g, d). Draws come
  from small per-bin tables T[s_g, j, c, i] ~ Multinomial(c, P~_l(. | j, s_g)) with common random numbers:
  sample i of entry (s_g, d) is sum_j T[s_g, j, d_j, i], so each entry gets m exact i.i.d. draws while
  the whole table costs S_g * S_l * (k + 1) * m multinomials. The expectation over s_g' uses P_g
  exactly (a Rao-Blackwellised version of sampling s_g' too; same fixed point in expectation).
- "exact": the full distribution of d' (a convolution of multinomials); small k only (tests, oracle).
- "deterministic" (the authors' code): d' = largest-remainder rounding of E[d'] (REFERENCE.md 1).

The transition is stored per s_g as a (D, D) sparse row-stochastic matrix (or, when deterministic, as
the (D,) index of d'), and the value table as V[s_g, rank(d)] with the small axes first, so that a
Bellman sweep is S_g sparse (D, D) @ (D, S_g) products (or gathers), one (A_g, S_g) @ (S_g, D) product
per s_g and an elementwise max over A_g rows; float64 throughout. The operator is an object per
transition kind (`bellman.ExpectationOperator` for the matrices, `bellman.GatherOperator` for the
deterministic indices) and one loop solves it (`bellman.solve`, its stopping rule a `bellman.StopRule`).

Speed (bench/glearn_speed.py). The sampled tables are ranked through additive prefix codes
(`counts.PrefixCodec`: sum the S_l per-state codes of a sample, then two small-table lookups) into
int32 CSR matrices that share one data array, and the value iteration to a tolerance ("span"/"sup") is
Anderson-accelerated (`acceleration="anderson"`): the Bellman operator, its fixed point and the
stopping test on T V - V (hence the MacQueen bound of the result) are those of plain value iteration;
only the points T is applied to are extrapolated from the last few iterates, which takes about a third
of the sweeps. A `CountTransitions` returned in the result can be passed back to reuse the transition
(no new draws) for the same (game, pi_l, k, transition, m).
"""

from __future__ import annotations

import hashlib
import time
from typing import Literal, NamedTuple

import numpy as np
import scipy.sparse as sp

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.game import TabularGame, marginal_local
from altmarl_ros.marl.learners.bellman import (
    Anderson,
    BellmanOperator,
    ExpectationOperator,
    FixedBudget,
    GatherOperator,
    SpanStop,
    StopRule,
    SupStop,
    solve,
)
from altmarl_ros.marl.learners.bellman import recurrence_chain as recurrence_chain  # re-exported
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy

Transition = Literal["sampled", "exact", "deterministic"]
Stopping = Literal["span", "sup", "fixed"]
Acceleration = Literal["anderson", "none"]
TRANSITIONS: tuple[str, ...] = ("sampled", "exact", "deterministic")
STOPPINGS: tuple[str, ...] = ("span", "sup", "fixed")
ACCELERATIONS: tuple[str, ...] = ("anderson", "none")
_EXACT_MAX_D = 5_000
_CHUNK_ENTRIES = 1 << 18  # (count vector, sample) pairs ranked per block: ~1 MB of int32 codes
_ANDERSON_DEPTH = 5


class CountTransitions(NamedTuple):
    """The count-vector transition of one G-LEARN operator, reusable across calls with the same pi_l.

    `per_global_state` is what `count_transitions` returns: S_g (D, D) CSR matrices (sampled: with
    read-only arrays; exact) or S_g (D,) arrays of rank(d') (deterministic). `key` identifies (game,
    pi_l, k, transition, m); `g_learn(transitions=...)` refuses a transition built for another key. Memory: about
    S_g * D * m * 4 + D * m * 8 bytes when sampled (270 MB at k = 50, m = 30).
    """

    key: str
    per_global_state: list[sp.csr_matrix | np.ndarray]


class GLearnResult(NamedTuple):
    pi_g: TabularGlobalPolicy
    V: np.ndarray  # (S_g, D) value table V[s_g, rank(d)]
    n_sweeps: int  # Bellman backups applied (each over the recurrent set, the last over every d)
    residual: float  # last sup-norm (stopping "sup") or span (stopping "span") of T V - V
    seconds: float
    transitions: CountTransitions  # pass back as g_learn(transitions=...) to reuse it for the same pi_l


def transition_key(game: TabularGame, pi_l: TabularLocalPolicy, *, k: int, transition: str, m: int) -> str:
    """What a `CountTransitions` is valid for: the game, pi_l, k, the transition kind and m (sampled)."""
    digest = hashlib.sha256(np.ascontiguousarray(pi_l.probs).tobytes())
    digest.update(repr((game.fingerprint, k, transition, m if transition == "sampled" else 0)).encode())
    return digest.hexdigest()[:24]


def count_transitions(game: TabularGame, P_tilde: np.ndarray, *, k: int, transition: Transition,
                      m: int = 30, rng: np.random.Generator | None = None) -> list[sp.csr_matrix | np.ndarray]:
    """Per s_g, the (D, D) row-stochastic matrix of d -> d' under P~_l(s_l' | s_l, s_g) (S_l, S_g, S_l).

    "deterministic" returns, per s_g, the (D,) int array of rank(d') instead of a matrix.
    """
    S_l, S_g = game.n_local_states, game.n_global_states
    D = cv.n_count_vectors(k, S_l)
    all_d = cv.enumerate_counts(k, S_l)
    if transition == "deterministic":  # rank(round_to_counts(E[d'], k)), compiled (`kernels.round_and_rank`)
        from altmarl_ros.marl.learners import kernels  # numba: imported by the learners' first use, not by the nodes

        return [kernels.round_and_rank(all_d @ P_tilde[:, g, :], k) for g in range(S_g)]
    if transition == "exact":
        if D > _EXACT_MAX_D:
            raise InputError(f"transition='exact' enumerates all next count vectors; D={D} > {_EXACT_MAX_D}")
        return [_exact_matrix(P_tilde[:, g, :], k) for g in range(S_g)]
    if transition != "sampled":
        raise InputError(f"transition must be one of {TRANSITIONS}, got {transition!r}")
    if rng is None:
        raise InputError("transition='sampled' needs an rng")
    if m < 1:
        raise InputError(f"m must be >= 1, got {m}")
    index_dtype = np.int32 if D * m < 2**31 else np.int64
    data = np.full(D * m, 1.0 / m)  # one read-only array shared by the S_g matrices
    indptr = np.arange(0, D * m + 1, m, dtype=index_dtype)
    for shared in (data, indptr):
        shared.setflags(write=False)
    codec = cv.prefix_codec(k, S_l)
    chunk = max(1, _CHUNK_ENTRIES // m)
    c = np.arange(k + 1)
    out = []
    for g in range(S_g):
        # table[j, c, i, :] ~ Multinomial(c, P~(. | j, s_g)); sample i of d is sum_j table[j, d_j, i, :]
        table = rng.multinomial(c[None, :, None], P_tilde[:, g, None, None, :], size=(S_l, k + 1, m))
        indices = np.empty((D, m), dtype=index_dtype)
        codes = codec.encode(table) if codec is not None else None  # (S_l, k + 1, m) additive codes
        for lo in range(0, D, chunk):
            d = all_d[lo:lo + chunk]
            if codes is not None:
                acc = codes[0][d[:, 0]]
                for j in range(1, S_l):
                    acc += codes[j][d[:, j]]
                indices[lo:lo + chunk] = codec.rank(acc)  # type: ignore[union-attr]
            else:
                nxt = table[0, d[:, 0]]
                for j in range(1, S_l):
                    nxt = nxt + table[j, d[:, j]]
                indices[lo:lo + chunk] = cv.rank(nxt, k)
        indices.setflags(write=False)
        out.append(sp.csr_matrix((data, indices.ravel(), indptr), shape=(D, D)))
    return out


def _multinomial_pmf(c: int, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All outcomes (count vectors of c over S states) and their Multinomial(c, p) probabilities."""
    from scipy.special import gammaln

    outcomes = cv.enumerate_counts(c, p.size)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 * log 0 terms are masked out
        terms = np.where(outcomes > 0, outcomes * np.log(p), 0.0)
    logpmf = gammaln(c + 1) - gammaln(outcomes + 1).sum(-1) + terms.sum(-1)
    return outcomes, np.exp(logpmf)


def _exact_matrix(P_tilde_g: np.ndarray, k: int) -> sp.csr_matrix:
    """Exact (D, D) distribution of next counts: independent multinomials per source state, convolved."""
    S = P_tilde_g.shape[0]
    all_d = cv.enumerate_counts(k, S)
    D = len(all_d)
    pmfs = {(j, c): _multinomial_pmf(c, P_tilde_g[j]) for j in range(S) for c in range(k + 1)}
    rows, cols, vals = [], [], []
    for r, d in enumerate(all_d):
        support = np.zeros((1, S), dtype=np.int64)
        prob = np.ones(1)
        for j in range(S):
            outcomes, p = pmfs[(j, int(d[j]))]
            support = (support[:, None, :] + outcomes[None, :, :]).reshape(-1, S)
            prob = (prob[:, None] * p[None, :]).ravel()
        rows.append(np.full(prob.size, r))
        cols.append(cv.rank(support, k))
        vals.append(prob)
    M = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(D, D))
    M.sum_duplicates()
    return M


def _rewards(game: TabularGame, r_tilde: np.ndarray, k: int) -> np.ndarray:
    """(S_g, A_g, D) reward r_Delta(s_g, d, a_g) = r_g(s_g, a_g) + (1/k) sum_j d_j r~_l(j, s_g)."""
    local = (cv.enumerate_counts(k, game.n_local_states) @ r_tilde).T / k  # (S_g, D)
    return game.r_g[:, :, None] + local[:, None, :]


def deterministic_action_values(game: TabularGame, pi_l: TabularLocalPolicy, V: np.ndarray, *, k: int,
                                transitions: CountTransitions | None = None) -> np.ndarray:
    """(S_g, D, A_g) Q(s_g, d, a) of the "deterministic" operator at V (S_g, D): what a g_learn(...,
    transition="deterministic") result's greedy pi_g maximises when V is its V. `transitions`: that result's
    (reused when built for the same game, pi_l and k; else built here)."""
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)
    if transitions is None or transitions.key != transition_key(game, pi_l, k=k, transition="deterministic", m=0):
        transitions = CountTransitions("", count_transitions(game, P_tilde, k=k, transition="deterministic"))
    Q = np.empty((V.shape[0], V.shape[1], game.n_global_actions))
    nxt = np.stack(transitions.per_global_state)  # type: ignore[arg-type]
    with GatherOperator(_rewards(game, r_tilde, k), game.gamma * game.P_g, nxt) as T:
        for g, Q_g in enumerate(T.action_values(V, np.arange(V.shape[1]))):  # (A_g, D) per s_g
            Q[g] = Q_g.T
    return Q


def _stop_rule(stopping: str, gamma: float, tol: float) -> StopRule:
    if stopping == "span":
        return SpanStop(gamma / (1 - gamma), tol)
    return SupStop(tol) if stopping == "sup" else FixedBudget()


def g_learn(game: TabularGame, pi_l: TabularLocalPolicy, *, k: int, rng: np.random.Generator | None = None,
            transition: Transition = "sampled", m: int = 30, tol: float = 1e-3, max_iter: int = 2000,
            stopping: Stopping = "span", V0: np.ndarray | None = None,
            transitions: CountTransitions | None = None,
            acceleration: Acceleration = "anderson") -> GLearnResult:
    """Best response of the global agent observing k subsampled agents, against the fixed `pi_l`.

    Parameters
    ----------
    k : number of local agents the global agent observes.
    transition : "sampled" (paper, `m` samples per entry), "exact" (small k) or "deterministic" (authors).
    tol, stopping : "span" stops when gamma / (1 - gamma) * span(T V - V) < tol, which bounds how far
        T V + constant is from V* (MacQueen bounds; the greedy policy then changes no more), and returns
        T V shifted to the middle of those bounds. "sup" stops when max |T V - V| < tol. "fixed" runs
        exactly `max_iter` sweeps from V0 (truncated value iteration: the authors' code, whose tol 1e-6
        is never reached in its 100 sweeps, REFERENCE.md B3).
    V0 : optional (S_g, D) warm start (e.g. the previous round's V).
    transitions : optional `CountTransitions` of an earlier call (`result.transitions`) with the same
        game, pi_l, k, transition and m: reused as is, `rng` is not drawn from. Without it the transition
        is built (sampled: m fresh draws per entry from `rng`).
    acceleration : "anderson" (default) extrapolates the point T is applied to from the last few
        iterates (`bellman.Anderson`); "none" is plain value iteration. Both stop on the same test of
        T V - V, so the result carries the same bound; "fixed" is always plain (truncated value iteration).

    Returns
    -------
    GLearnResult with the greedy pi_g(s_g, d) = argmax_a Q(s_g, d, a) (ties to the lowest action), where
    Q is the last Bellman backup, and the transition used.
    """
    if stopping not in STOPPINGS:
        raise InputError(f"stopping must be one of {STOPPINGS}, got {stopping!r}")
    if acceleration not in ACCELERATIONS:
        raise InputError(f"acceleration must be one of {ACCELERATIONS}, got {acceleration!r}")
    if max_iter < 1:
        raise InputError(f"max_iter must be >= 1, got {max_iter}")
    t0 = time.perf_counter()
    S_g, S_l, A_g = game.n_global_states, game.n_local_states, game.n_global_actions
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)
    key = transition_key(game, pi_l, k=k, transition=transition, m=m)
    if transitions is None:
        transitions = CountTransitions(key, count_transitions(game, P_tilde, k=k, transition=transition, m=m,
                                                              rng=rng))
    elif transitions.key != key:
        raise InputError("transitions were built for another (game, pi_l, k, transition, m); "
                         "pass transitions=None to build this call's")
    D = cv.n_count_vectors(k, S_l)
    C = _rewards(game, r_tilde, k)
    gamma_P_g = game.gamma * game.P_g  # (S_g, A_g, S_g')
    V = np.zeros((S_g, D)) if V0 is None else np.array(V0, dtype=np.float64)
    if V.shape != (S_g, D):
        raise InputError(f"V0 must have shape {(S_g, D)}, got {V.shape}")
    M = transitions.per_global_state
    T: BellmanOperator = (GatherOperator(C, gamma_P_g, np.stack(M)) if transition == "deterministic"
                          else ExpectationOperator(C, gamma_P_g, M, samples=m if transition == "sampled" else None))
    anderson = (Anderson(_ANDERSON_DEPTH, center=stopping == "span")
                if acceleration == "anderson" and stopping != "fixed" else None)
    solution = solve(T, V, stop=_stop_rule(stopping, game.gamma, tol), max_iter=max_iter, anderson=anderson)
    pi_g = TabularGlobalPolicy(solution.actions, k, S_l, A_g)
    return GLearnResult(pi_g, solution.V, solution.n_sweeps, solution.residual, time.perf_counter() - t0,
                        transitions)
