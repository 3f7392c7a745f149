"""Compiled loops (numba) for G-LEARN's two memory-bound steps over the (s_g, count vector) table.

Each kernel performs the same floating-point operations in the same order as the NumPy / SciPy expression it
replaces, so results are bit for bit those of that expression (tested against it in test/test_kernels.py);
what changes is memory traffic and per-element overhead:

- `sampled_expectation`: W = M @ V^T for a "sampled" transition matrix M (m entries of value 1/m per row,
  `g_learn.count_transitions`). SciPy's CSR product reads the m float64 data of each row and accumulates every
  column through memory; here the data are one constant and the (up to 8) columns stay in registers: ~1.6x
  faster than `M @ VT` at k = 50 on one thread, ~25 % on the trainer's two (bench/README 2.5). Accumulation
  order per entry: y += (1/m) * V[j] over the row's samples in order, as in SciPy's csr_matvecs.
- `round_and_rank`: rank(round_to_counts(E, k), k) of `counts` fused over the rows of E, for the deterministic
  transition's (D, S) tables: one pass instead of S^2 vectorised comparisons and a cumsum over D rows.

Compiled on first use and cached beside this file (`cache=True`); loaded only by the learners, never by the
ROS nodes. `nogil`: the sampled products of the S_g global states run on G-LEARN's thread pool.
"""

from __future__ import annotations

import numba
import numpy as np

from altmarl_ros.marl import counts as cv

_BLOCK = 8  # value columns (global states) accumulated in registers per pass over a row's samples


@numba.njit(nogil=True, cache=True)
def _expect_block(indices: np.ndarray, m: int, a: float, VT: np.ndarray, out: np.ndarray, b: int) -> None:
    """out[:, b:b + 8] = rows of m samples (indices (D * m,)) averaged with weight a, columns b.. of VT."""
    # Eight scalar accumulators written out: numba keeps scalars in registers but not a small array (a loop over
    # an accumulator array measured no faster than SciPy). The guards on n are loop-invariant (LLVM unswitches them).
    n = VT.shape[1] - b  # columns in this block
    for i in range(out.shape[0]):
        w0 = w1 = w2 = w3 = w4 = w5 = w6 = w7 = 0.0
        base = i * m
        for s in range(m):
            j = indices[base + s]
            w0 += a * VT[j, b]
            if n > 1:
                w1 += a * VT[j, b + 1]
            if n > 2:
                w2 += a * VT[j, b + 2]
            if n > 3:
                w3 += a * VT[j, b + 3]
            if n > 4:
                w4 += a * VT[j, b + 4]
            if n > 5:
                w5 += a * VT[j, b + 5]
            if n > 6:
                w6 += a * VT[j, b + 6]
            if n > 7:
                w7 += a * VT[j, b + 7]
        out[i, b] = w0
        if n > 1:
            out[i, b + 1] = w1
        if n > 2:
            out[i, b + 2] = w2
        if n > 3:
            out[i, b + 3] = w3
        if n > 4:
            out[i, b + 4] = w4
        if n > 5:
            out[i, b + 5] = w5
        if n > 6:
            out[i, b + 6] = w6
        if n > 7:
            out[i, b + 7] = w7


def sampled_expectation(indices: np.ndarray, m: int, weight: float, VT: np.ndarray) -> np.ndarray:
    """(D, S) = M @ VT for the CSR matrix M with row i = `weight` at indices[i * m:(i + 1) * m] (in that order)
    and VT (D', S) C-contiguous float64: bit for bit `M @ VT`."""
    out = np.empty((indices.size // m, VT.shape[1]))
    for b in range(0, VT.shape[1], _BLOCK):
        _expect_block(indices, m, weight, VT, out, b)
    return out


@numba.njit(nogil=True, cache=True)
def _round_and_rank(expected: np.ndarray, k: int, binom: np.ndarray, out: np.ndarray) -> None:
    N, S = expected.shape
    floored = np.empty(S, np.int64)
    residual = np.empty(S)
    for r in range(N):
        deficit = k
        for i in range(S):
            f = int(np.floor(expected[r, i] + 1e-12))
            floored[i] = f
            deficit -= f
            residual[i] = expected[r, i] - f
        code = 0
        prefix = 0
        for i in range(S - 1):
            position = 0  # place of entry i in the descending order of residuals, ties to the lower index
            for j in range(S):
                if j < i:
                    position += residual[j] >= residual[i]
                else:
                    position += residual[j] > residual[i]
            c = floored[i] + (1 if position < deficit else 0)
            prefix += min(max(c, 0), k)
            code += binom[prefix + i, i + 1]
        out[r] = code


def round_and_rank(expected: np.ndarray, k: int) -> np.ndarray:
    """(N, S) real rows summing to k -> (N,) int64 `counts.rank(counts.round_to_counts(expected, k), k)`."""
    expected = np.ascontiguousarray(expected, dtype=np.float64)
    out = np.empty(expected.shape[0], dtype=np.int64)
    S = expected.shape[1]
    _round_and_rank(expected, k, cv._binom_table(k + S - 1, S - 1), out)
    return out
