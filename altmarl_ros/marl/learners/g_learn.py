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
per s_g and an elementwise max over A_g rows; float64 throughout.

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
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, NamedTuple

import numpy as np
import scipy.sparse as sp

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.game import TabularGame, marginal_local
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
_THREADS = len(os.sched_getaffinity(0))  # the sampled sweep's S_g sparse products run on this many threads


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
    if transition == "deterministic":
        return [cv.rank(cv.round_to_counts(all_d @ P_tilde[:, g, :], k), k) for g in range(S_g)]
    if transition == "exact":
        if D > _EXACT_MAX_D:
            raise ValueError(f"transition='exact' enumerates all next count vectors; D={D} > {_EXACT_MAX_D}")
        return [_exact_matrix(P_tilde[:, g, :], k) for g in range(S_g)]
    if transition != "sampled":
        raise ValueError(f"transition must be one of {TRANSITIONS}, got {transition!r}")
    if rng is None:
        raise ValueError("transition='sampled' needs an rng")
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
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


def recurrence_chain(nxt: np.ndarray) -> list[np.ndarray]:
    """Nested index sets R_0 = all count vectors, R_{j+1} = union_g nxt[g, R_j], down to the closed set R_J.

    For a deterministic transition d -> nxt[s_g, d], V(., d) for d outside R_j is never read after
    sweep j of a backward schedule, so value iteration only has to sweep R_J (the recurrent set, a few
    percent of all count vectors for the warehouse) plus one pass over each R_j (REFERENCE.md 3: the
    mean-field map contracts the simplex).
    """
    D = nxt.shape[1]
    chain = [np.arange(D)]
    while True:
        mask = np.zeros(D, dtype=bool)
        mask[nxt[:, chain[-1]]] = True
        successors = np.flatnonzero(mask)
        if successors.size == chain[-1].size:  # R_{j+1} is a subset of R_j, so equal sizes mean equal sets
            return chain
        chain.append(successors)


class _Anderson:
    """Anderson acceleration (type II, depth `depth`) of the fixed-point iteration V <- T V.

    Given the iterates V_i and their images T V_i (residuals f_i = T V_i - V_i), the next point is
    T V_n - sum_i gamma_i (T V_{i+1} - T V_i), gamma = argmin |f_n - sum_i gamma_i (f_{i+1} - f_i)|_2
    over the last `depth` differences (Walker & Ni 2011; for value iteration: Geist & Scherrer 2018).
    With `center`, residuals are compared up to a constant: the span stopping rule ignores constants, and
    the constant mode (which T contracts only by gamma) would otherwise dominate the least squares.
    The differences live in two (depth, N) ring buffers, so a step costs O(depth * N).
    """

    def __init__(self, depth: int, center: bool) -> None:
        self.depth, self.center = depth, center
        self.dF: np.ndarray | None = None  # (depth, N) residual differences
        self.dX: np.ndarray | None = None  # (depth, N) image differences
        self.filled = 0
        self.slot = 0
        self.last: tuple[np.ndarray, np.ndarray] | None = None  # (T V, f) of the previous step, flat

    def reset(self) -> None:
        self.filled, self.slot, self.last = 0, 0, None

    def propose(self, TV: np.ndarray, f: np.ndarray) -> np.ndarray:
        """The next point to apply T to, from T V (any shape) and f = T V - V."""
        x = TV.ravel()
        r = (f - f.mean()).ravel() if self.center else f.ravel()
        if self.last is not None:
            if self.dF is None or self.dX is None:
                self.dF = np.empty((self.depth, r.size))
                self.dX = np.empty((self.depth, r.size))
            np.subtract(r, self.last[1], out=self.dF[self.slot])
            np.subtract(x, self.last[0], out=self.dX[self.slot])
            self.slot = (self.slot + 1) % self.depth
            self.filled = min(self.filled + 1, self.depth)
        self.last = (x, r)
        if self.filled == 0 or self.dF is None or self.dX is None:
            return TV
        dF, dX = self.dF[:self.filled], self.dX[:self.filled]
        gamma = np.linalg.lstsq(dF @ dF.T, dF @ r, rcond=1e-12)[0]
        return (x - gamma @ dX).reshape(TV.shape)


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
        iterates (`_Anderson`); "none" is plain value iteration. Both stop on the same test of T V - V,
        so the result carries the same bound; "fixed" is always plain (truncated value iteration).

    Returns
    -------
    GLearnResult with the greedy pi_g(s_g, d) = argmax_a Q(s_g, d, a) (ties to the lowest action), where
    Q is the last Bellman backup, and the transition used.
    """
    if stopping not in STOPPINGS:
        raise ValueError(f"stopping must be one of {STOPPINGS}, got {stopping!r}")
    if acceleration not in ACCELERATIONS:
        raise ValueError(f"acceleration must be one of {ACCELERATIONS}, got {acceleration!r}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    t0 = time.perf_counter()
    S_g, S_l, A_g = game.n_global_states, game.n_local_states, game.n_global_actions
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)
    key = transition_key(game, pi_l, k=k, transition=transition, m=m)
    if transitions is None:
        transitions = CountTransitions(key, count_transitions(game, P_tilde, k=k, transition=transition, m=m,
                                                              rng=rng))
    elif transitions.key != key:
        raise ValueError("transitions were built for another (game, pi_l, k, transition, m); "
                         "pass transitions=None to build this call's")
    M = transitions.per_global_state
    all_d = cv.enumerate_counts(k, S_l)
    D = all_d.shape[0]
    local = (all_d @ r_tilde).T / k  # (S_g, D): (1/k) sum_j d_j r~_l(j, s_g), the local part of r_Delta
    C = game.r_g[:, :, None] + local[:, None, :]  # (S_g, A_g, D) reward r_Delta(s_g, d, a_g)
    gamma_P_g = game.gamma * game.P_g  # (S_g, A_g, S_g')
    V = np.zeros((S_g, D)) if V0 is None else np.array(V0, dtype=np.float64)
    if V.shape != (S_g, D):
        raise ValueError(f"V0 must have shape {(S_g, D)}, got {V.shape}")
    deterministic = transition == "deterministic"
    nxt = np.stack(M) if deterministic else None  # (S_g, D) rank of d' per (s_g, d)
    chain = recurrence_chain(nxt) if nxt is not None else [np.arange(D)]

    def sweep(V: np.ndarray, rows: np.ndarray, greedy: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """One Bellman backup on the count vectors `rows`: (S_g, |rows|) max_a Q and, if greedy, argmax_a Q."""
        every = rows.size == D
        targets = nxt[:, rows] if nxt is not None else None
        if targets is None:  # the S_g sparse products, on `pool` (scipy releases the GIL in them)
            VT = np.ascontiguousarray(V.T)  # (D, S_g'), shared by every s_g
            expected = list(pool.map(lambda g: (M[g] if every else M[g][rows]) @ VT, range(S_g)))
        V_new = np.empty((S_g, rows.size))
        actions = np.zeros((S_g, rows.size), dtype=np.int64) if greedy else None
        for g in range(S_g):
            # W[s_g', d] = E[V(s_g', d') | s_g = g, d]
            W = np.take(V, targets[g], axis=1) if targets is not None else expected[g].T
            Q = gamma_P_g[g] @ W  # (A_g, |rows|)
            Q += C[g] if every else C[g][:, rows]
            best = V_new[g]
            best[:] = Q[0]
            for a in range(1, A_g):  # running max; ties keep the lowest action, like np.argmax
                better = Q[a] > best
                np.maximum(best, Q[a], out=best)
                if actions is not None:
                    actions[g, better] = a
        return V_new, actions

    recurrent = chain[-1]
    # Sweeps on the recurrent set first, then one backward pass over R_{J-1}, ..., R_1: sweep t of a
    # fixed budget T only needs V on R_{T - t}, which is the recurrent set while T - t >= J.
    n_rec = max_iter - max(len(chain) - 1, 1) if stopping == "fixed" else max_iter
    anderson = (_Anderson(_ANDERSON_DEPTH, center=stopping == "span")
                if acceleration == "anderson" and stopping != "fixed" else None)
    factor = game.gamma / (1 - game.gamma)
    residual = float("nan")
    previous = float("inf")
    with ThreadPoolExecutor(max_workers=min(S_g, _THREADS)) as pool:
        x = V[:, recurrent]  # the point T is applied to
        sweeps = 0
        for sweeps in range(1, n_rec + 1):
            TV, _ = sweep(V, recurrent)
            diff = TV - x
            if stopping == "span":
                lo, hi = float(diff.min()), float(diff.max())
                residual = hi - lo
                if factor * residual < tol:
                    V[:, recurrent] = TV + factor * 0.5 * (lo + hi)
                    break
            else:
                residual = float(np.abs(diff).max())
                if stopping == "sup" and residual < tol:
                    V[:, recurrent] = TV
                    break
            if anderson is None:
                x = TV
            else:
                if residual >= previous:  # safeguard: the extrapolation did not help; restart from plain VI
                    anderson.reset()
                x = anderson.propose(TV, diff)
            previous = residual
            V[:, recurrent] = x
        for rows in chain[-2:0:-1]:  # R_{J-1}, ..., R_1
            V[:, rows] = sweep(V, rows)[0]
            sweeps += 1
        V, actions = sweep(V, chain[0], greedy=True)  # the last backup, over every count vector
    assert actions is not None
    pi_g = TabularGlobalPolicy(actions, k, S_l, A_g)
    return GLearnResult(pi_g, V, sweeps + 1, residual, time.perf_counter() - t0, transitions)
