"""G-LEARN's Bellman operator over (s_g, count vector) and the one loop that solves it (PAPER.md 2.2).

The operator (one class per way of forming E[V(s_g', d') | s_g, d], see `g_learn`) is

    (T V)(s_g, d) = max_a [ C(s_g, a, d) + sum_{s_g'} gamma P_g(s_g' | s_g, a) E[V(s_g', d') | s_g, d] ],

with V stored as V[s_g, rank(d)] (S_g, D), C the (S_g, A_g, D) reward r_Delta. `solve` is value iteration on
the operator's schedule (`chain`: iterate on the last index set, then one backward pass over the others,
then one greedy backup over every count vector); what stops it is a `StopRule` ("span", "sup", "fixed"),
and the points T is applied to may be extrapolated by `Anderson`. Float64 throughout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import scipy.sparse as sp

from altmarl_ros.errors import InputError

THREADS = len(os.sched_getaffinity(0))  # the cores this process may use: the learners' thread pools' size
_FUSED_MAX_GLOBAL_STATES = 8  # `kernels.sampled_backup` keeps a row's S_g' expectations in 8 registers
_FUSED_BLOCKS = 4  # row blocks per global state in a fused sampled backup (balances S_g tasks on the threads)


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


class BellmanOperator:
    """T on V[s_g, rank(d)] given the (S_g, A_g, D) reward C and gamma * P_g (S_g, A_g, S_g').

    Subclasses say how W[s_g', d] = E[V(s_g', d') | s_g, d] is formed (`expectations`) and which count
    vectors value iteration has to sweep (`chain`). Use as a context manager (it may hold a thread pool).
    """

    def __init__(self, C: np.ndarray, gamma_P_g: np.ndarray, chain: list[np.ndarray]) -> None:
        self.C, self.gamma_P_g, self.chain = C, gamma_P_g, chain
        self.S_g, self.A_g, self.D = C.shape

    def __enter__(self) -> BellmanOperator:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def expectations(self, V: np.ndarray, rows: np.ndarray) -> Iterator[np.ndarray]:
        """Per s_g in order, the (S_g', |rows|) expectation of V at the next count vector of each row."""
        raise NotImplementedError

    def action_values(self, V: np.ndarray, rows: np.ndarray) -> Iterator[np.ndarray]:
        """Per s_g in order, the (A_g, |rows|) Q(s_g, d, a) = C + sum_{s_g'} gamma P_g E[V(s_g', d')]."""
        every = rows.size == self.D
        for g, W in enumerate(self.expectations(V, rows)):
            Q = self.gamma_P_g[g] @ W  # (A_g, |rows|)
            Q += self.C[g] if every else self.C[g][:, rows]
            yield Q

    def backup(self, V: np.ndarray, rows: np.ndarray, greedy: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """One Bellman backup on the count vectors `rows`: (S_g, |rows|) max_a Q and, if greedy, argmax_a Q."""
        V_new = np.empty((self.S_g, rows.size))
        actions = np.zeros((self.S_g, rows.size), dtype=np.int64) if greedy else None
        for g, Q in enumerate(self.action_values(V, rows)):
            best = V_new[g]
            best[:] = Q[0]
            for a in range(1, self.A_g):  # running max; ties keep the lowest action, like np.argmax
                better = Q[a] > best
                np.maximum(best, Q[a], out=best)
                if actions is not None:
                    actions[g, better] = a
        return V_new, actions


class ExpectationOperator(BellmanOperator):
    """W from S_g (D, D) row-stochastic sparse matrices ("sampled", "exact"): S_g sparse products run on
    a thread pool (scipy and the compiled kernel release the GIL) opened by `with`. `samples` = m says that
    every row holds m entries 1/m ("sampled"): the products over all rows then run in
    `kernels.sampled_expectation` (the same sums as scipy's, bit for bit, with less memory traffic)."""

    def __init__(self, C: np.ndarray, gamma_P_g: np.ndarray, matrices: Sequence[sp.csr_matrix],
                 samples: int | None = None) -> None:
        super().__init__(C, gamma_P_g, [np.arange(C.shape[2])])
        if samples is not None and any(M.nnz != M.shape[0] * samples for M in matrices):
            raise InputError(f"samples={samples}: every row of a sampled transition holds exactly that many entries")
        self.matrices = matrices
        self.samples = samples
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> ExpectationOperator:
        self._pool = ThreadPoolExecutor(max_workers=min(self.S_g, THREADS))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def expectations(self, V: np.ndarray, rows: np.ndarray) -> Iterator[np.ndarray]:
        if self._pool is None:
            raise RuntimeError("ExpectationOperator is used inside `with operator:`")
        every = rows.size == self.D
        VT = np.ascontiguousarray(V.T)  # (D, S_g'), shared by every s_g
        M, m = self.matrices, self.samples
        from altmarl_ros.marl.learners import kernels  # numba: imported by the learners' first use, not by the nodes

        def product(g: int) -> np.ndarray:
            if m is not None and every:
                return kernels.sampled_expectation(M[g].indices, m, 1.0 / m, VT)
            return (M[g] if every else M[g][rows]) @ VT

        expected = list(self._pool.map(product, range(self.S_g)))
        for g in range(self.S_g):
            yield expected[g].T

    def backup(self, V: np.ndarray, rows: np.ndarray, greedy: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """A sampled transition's backup over every count vector is one compiled pass per (s_g, block of rows)
        (`kernels.sampled_backup`: the expectation, Q and its running max without the (S_g', D) W and (A_g, D) Q
        arrays; the same values bit for bit); other cases as `BellmanOperator.backup`."""
        m = self.samples
        if m is None or rows.size != self.D or self.S_g > _FUSED_MAX_GLOBAL_STATES or self._pool is None:
            return super().backup(V, rows, greedy)
        from altmarl_ros.marl.learners import kernels

        VT = np.ascontiguousarray(V.T)
        V_new = np.empty((self.S_g, self.D))
        actions = np.empty((self.S_g, self.D), dtype=np.int64)
        bounds = np.linspace(0, self.D, _FUSED_BLOCKS + 1).astype(np.int64)

        def block(task: tuple[int, int]) -> None:
            g, b = task
            kernels.sampled_backup(self.matrices[g].indices, m, 1.0 / m, VT, self.gamma_P_g[g], self.C[g],
                                   int(bounds[b]), int(bounds[b + 1]), V_new[g], actions[g])

        list(self._pool.map(block, [(g, b) for g in range(self.S_g) for b in range(_FUSED_BLOCKS)]))
        return V_new, actions if greedy else None


class GatherOperator(BellmanOperator):
    """W by gathering V at the one next count vector nxt[s_g, d] ("deterministic"); value iteration
    sweeps the recurrent set of nxt (`recurrence_chain`)."""

    def __init__(self, C: np.ndarray, gamma_P_g: np.ndarray, nxt: np.ndarray) -> None:
        super().__init__(C, gamma_P_g, recurrence_chain(nxt))
        self.nxt = nxt  # (S_g, D) rank of d' per (s_g, d)

    def expectations(self, V: np.ndarray, rows: np.ndarray) -> Iterator[np.ndarray]:
        targets = self.nxt[:, rows]
        for g in range(self.S_g):
            yield np.take(V, targets[g], axis=1)


class StopRule(Protocol):
    """Decides, from T V and diff = T V - x (x the point T was applied to), whether value iteration stops."""

    def __call__(self, TV: np.ndarray, diff: np.ndarray) -> tuple[float, np.ndarray | None]:
        """(residual, the values to keep when stopping, else None)."""
        ...

    def recurrent_sweeps(self, max_iter: int, n_levels: int) -> int:
        """How many sweeps of the recurrent set `solve` may run (n_levels = len(operator.chain))."""
        ...


@dataclass(frozen=True)
class SpanStop:
    """Stop when gamma / (1 - gamma) * span(T V - V) < tol (MacQueen bounds); keep T V shifted to the middle
    of those bounds."""

    factor: float  # gamma / (1 - gamma)
    tol: float

    def __call__(self, TV: np.ndarray, diff: np.ndarray) -> tuple[float, np.ndarray | None]:
        lo, hi = float(diff.min()), float(diff.max())
        residual = hi - lo
        return residual, (TV + self.factor * 0.5 * (lo + hi) if self.factor * residual < self.tol else None)

    def recurrent_sweeps(self, max_iter: int, n_levels: int) -> int:
        return max_iter


@dataclass(frozen=True)
class SupStop:
    """Stop when max |T V - V| < tol; keep T V."""

    tol: float

    def __call__(self, TV: np.ndarray, diff: np.ndarray) -> tuple[float, np.ndarray | None]:
        residual = float(np.abs(diff).max())
        return residual, (TV if residual < self.tol else None)

    def recurrent_sweeps(self, max_iter: int, n_levels: int) -> int:
        return max_iter


@dataclass(frozen=True)
class FixedBudget:
    """Exactly `max_iter` backups in all (truncated value iteration: the authors' code, REFERENCE.md B3);
    the residual reported is max |T V - V|."""

    def __call__(self, TV: np.ndarray, diff: np.ndarray) -> tuple[float, np.ndarray | None]:
        return float(np.abs(diff).max()), None

    def recurrent_sweeps(self, max_iter: int, n_levels: int) -> int:
        # sweep t of the budget only needs V on R_{max_iter - t}: the recurrent set while max_iter - t >= J
        return max_iter - max(n_levels - 1, 1)


class Anderson:
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


class Solution(NamedTuple):
    V: np.ndarray  # (S_g, D) the last backup over every count vector
    actions: np.ndarray  # (S_g, D) its greedy action (ties to the lowest)
    n_sweeps: int  # Bellman backups applied (each over the recurrent set, the last over every d)
    residual: float  # the stop rule's last residual (nan when no sweep of the recurrent set ran)


def solve(T: BellmanOperator, V: np.ndarray, *, stop: StopRule, max_iter: int,
          anderson: Anderson | None = None) -> Solution:
    """Value iteration of T from V (modified in place) on T's schedule: sweeps of the recurrent set
    T.chain[-1] until `stop` says so (at most stop.recurrent_sweeps(max_iter, len(chain))), each applied to
    the previous image or to Anderson's extrapolation of it (restarted when the residual did not
    decrease), then one backward pass over R_{J-1}, ..., R_1, then one greedy backup over every d."""
    chain = T.chain
    recurrent = chain[-1]
    residual, previous = float("nan"), float("inf")
    with T:
        x = V[:, recurrent]  # the point T is applied to
        sweeps = 0
        for sweeps in range(1, stop.recurrent_sweeps(max_iter, len(chain)) + 1):
            TV, _ = T.backup(V, recurrent)
            diff = TV - x
            residual, final = stop(TV, diff)
            if final is not None:
                V[:, recurrent] = final
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
            V[:, rows] = T.backup(V, rows)[0]
            sweeps += 1
        V, actions = T.backup(V, chain[0], greedy=True)
    assert actions is not None
    return Solution(V, actions, sweeps + 1, residual)
