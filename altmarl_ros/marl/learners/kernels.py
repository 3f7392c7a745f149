"""Compiled loops (numba): G-LEARN's two memory-bound steps over the (s_g, count vector) table, and the k-samples
of the simulator by counts.

Each kernel performs the same floating-point operations in the same order as the NumPy / SciPy expression it
replaces, so results are bit for bit those of that expression (tested against it in test/test_kernels.py);
what changes is memory traffic and per-element overhead:

- `sampled_expectation`: W = M @ V^T for a "sampled" transition matrix M (m entries of value 1/m per row,
  `g_learn.count_transitions`). SciPy's CSR product reads the m float64 data of each row and accumulates every
  column through memory; here the data are one constant and the (up to 8) columns stay in registers: ~1.6x
  faster than `M @ VT` at k = 50 on one thread, ~25 % on the trainer's two (bench/README 2.5). Accumulation
  order per entry: y += (1/m) * V[j] over the row's samples in order, as in SciPy's csr_matvecs.
- `sampled_backup`: one global state's whole Bellman backup over a block of rows of a sampled transition: the
  expectation's sums as `sampled_expectation`, then Q[a] = gamma P_g[a] . w + C[a] and its running max, without
  writing the (S_g', D) expectations and (A_g, D) action values out and reading them back (~1.5x per backup at
  k = 50, bench/README 2.7). The action values are formed as OpenBLAS's dgemm forms gamma P_g @ W (one fused
  multiply-add per term, in order; `fastmath={"contract"}` on that helper only), so the backup equals the NumPy
  one bit for bit where NumPy's BLAS does that (test_kernels checks it).
- `round_and_rank`: rank(round_to_counts(E, k), k) of `counts` fused over the rows of E, for the deterministic
  transition's (D, S) tables: one pass instead of S^2 vectorised comparisons and a cumsum over D rows.
- `sample_counts`: the multivariate hypergeometric k-samples of `population_sim` (S - 1 inverse-CDF draws per
  row), the evaluations' and the posterior occupancy's; one pass per row instead of ~10 small NumPy calls per
  state: 5-12x faster at B = 128, k = 1-35.

Compiled on first use and cached beside this file (`cache=True`); loaded only by the learners and `population_sim`
(on first use), never by the ROS nodes. `nogil`: the sampled products of the S_g global states run on G-LEARN's
thread pool.
"""

from __future__ import annotations

import numba
import numpy as np

from altmarl_ros.marl import counts as cv

_BLOCK = 8  # value columns (global states) accumulated in registers per pass over a row's samples


@numba.njit(nogil=True, cache=True, inline="always")
def _row_sums(indices: np.ndarray, base: int, m: int, a: float, VT: np.ndarray, b: int) -> tuple[float, ...]:
    """The 8 sums a * VT[j, b + c] over one row's m samples j = indices[base:base + m], in order (0 past VT's end)."""
    # Eight scalar accumulators written out: numba keeps scalars in registers but not a small array (a loop over
    # an accumulator array measured no faster than SciPy). The guards on n are loop-invariant (LLVM unswitches them).
    n = VT.shape[1] - b  # columns in this block
    w0 = w1 = w2 = w3 = w4 = w5 = w6 = w7 = 0.0
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
    return w0, w1, w2, w3, w4, w5, w6, w7


@numba.njit(nogil=True, cache=True)
def _expect_block(indices: np.ndarray, m: int, a: float, VT: np.ndarray, out: np.ndarray, b: int) -> None:
    """out[:, b:b + 8] = rows of m samples (indices (D * m,)) averaged with weight a, columns b.. of VT."""
    n = min(VT.shape[1] - b, 8)
    for i in range(out.shape[0]):
        w = _row_sums(indices, i * m, m, a, VT, b)
        for c in range(n):
            out[i, b + c] = w[c]


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


@numba.njit(nogil=True, cache=True)
def _sample_counts(u: np.ndarray, h: np.ndarray, k: int, log_f: np.ndarray, out: np.ndarray) -> None:
    """`population_sim.sample_counts`, per row and state: log pmf term by term, its max, exp, the running cdf, and
    the inverse-CDF draw; the same sums in the same order as the vectorised NumPy form (test/test_kernels.py)."""
    L = log_f.shape[0]
    log_p = np.empty(k + 1)
    cdf = np.empty(k + 1)
    for b in range(h.shape[0]):
        left_n = 0
        for j in range(h.shape[1]):
            left_n += h[b, j]
        left_k = k
        for j in range(h.shape[1] - 1):
            good = h[b, j]
            bad = left_n - good - left_k
            top = -np.inf
            for x in range(k + 1):
                i1, i2, i3 = left_k - x, good - x, bad + x  # a negative index reads log_f's +inf tail, as in NumPy
                v = -(log_f[x] + log_f[i1 + L if i1 < 0 else i1] + log_f[i2 + L if i2 < 0 else i2]
                      + log_f[i3 + L if i3 < 0 else i3])
                log_p[x] = v
                top = max(top, v)
            acc = 0.0
            for x in range(k + 1):
                acc += np.exp(log_p[x] - top)
                cdf[x] = acc
            threshold = u[j, b] * cdf[k]
            draw = 0
            for x in range(k):
                draw += cdf[x] <= threshold
            out[b, j] = draw
            left_n -= good
            left_k -= draw
        out[b, h.shape[1] - 1] = left_k


def sample_counts(u: np.ndarray, h: np.ndarray, k: int, log_f: np.ndarray) -> np.ndarray:
    """(B, S) int64 multivariate hypergeometric k-samples of the rows of h from (S - 1, B) uniforms u, as
    `population_sim.sample_counts` defines them; log_f = `population_sim.log_factorials(max n, k)`."""
    out = np.empty(h.shape, dtype=np.int64)
    _sample_counts(np.ascontiguousarray(u, dtype=np.float64), np.ascontiguousarray(h, dtype=np.int64), k, log_f, out)
    return out


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def _action_value(gP: np.ndarray, a: int, w: np.ndarray) -> float:
    """sum_s gP[a, s] w[s] as one fused multiply-add per term in order: how OpenBLAS's dgemm forms (gP @ W)."""
    q = gP[a, 0] * w[0]
    for s in range(1, gP.shape[1]):
        q = q + gP[a, s] * w[s]
    return q


@numba.njit(nogil=True, cache=True)
def _sampled_backup(indices: np.ndarray, m: int, weight: float, VT: np.ndarray, gP: np.ndarray, C: np.ndarray,
                    lo: int, hi: int, V_out: np.ndarray, act_out: np.ndarray) -> None:
    """Rows lo..hi of one global state's backup: w = the m samples' mean of VT's rows (`_row_sums`),
    Q[a] = gP[a] . w + C[a, i], V_out[i] = max_a Q, act_out[i] = its first argmax."""
    w = np.empty(8)
    for i in range(lo, hi):
        w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7] = _row_sums(indices, i * m, m, weight, VT, 0)
        best = _action_value(gP, 0, w) + C[0, i]
        arg = 0
        for a in range(1, gP.shape[0]):
            q = _action_value(gP, a, w) + C[a, i]
            if q > best:  # ties keep the lowest action, like the running max of `BellmanOperator.backup`
                best = q
                arg = a
        V_out[i] = best
        act_out[i] = arg


def sampled_backup(indices: np.ndarray, m: int, weight: float, VT: np.ndarray, gP: np.ndarray, C: np.ndarray,
                   lo: int, hi: int, V_out: np.ndarray, act_out: np.ndarray) -> None:
    """One global state's Bellman backup over the rows lo..hi of a sampled transition (at most 8 global states):
    fills V_out[lo:hi] = max_a (gP @ (M @ VT).T + C) and act_out[lo:hi] its first argmax, the values
    of `sampled_expectation` then `BellmanOperator.backup` bit for bit (dgemm's fused sums: test_kernels)."""
    _sampled_backup(indices, m, weight, VT, gP, C, lo, hi, V_out, act_out)
