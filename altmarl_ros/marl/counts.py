"""Count vectors of k samples over S_l local states (the mean-field state F_{s_Delta}, PAPER.md 2.2).

A count vector d has S entries, d_j >= 0, sum d = k. There are C(k + S - 1, S - 1) of them. They are
indexed by a combinatorial rank (stars and bars + the colexicographic combinatorial number system):
the bars sit at positions b_j = d_0 + ... + d_j + j (j = 0..S-2), strictly increasing in
[0, k + S - 2], and rank(d) = sum_j C(b_j, j + 1). Ranking and unranking are vectorized.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import comb

import numpy as np

from altmarl_ros.errors import InputError


def n_count_vectors(k: int, n_states: int) -> int:
    """Number of count vectors of k samples over n_states states: C(k + S - 1, S - 1)."""
    if k < 0 or n_states < 1:
        raise InputError(f"need k >= 0 and n_states >= 1, got k={k}, n_states={n_states}")
    return comb(k + n_states - 1, n_states - 1)


@lru_cache(maxsize=32)
def _binom_table(n_max: int, r_max: int) -> np.ndarray:
    """(n_max + 1, r_max + 1) int64 table of C(n, r)."""
    table = np.zeros((n_max + 1, r_max + 1), dtype=np.int64)
    for n in range(n_max + 1):
        for r in range(min(n, r_max) + 1):
            table[n, r] = comb(n, r)
    table.setflags(write=False)
    return table


def rank(counts: np.ndarray, k: int) -> np.ndarray:
    """Rank count vectors.

    Parameters
    ----------
    counts : (..., S) integer array, each row summing to k.

    Returns
    -------
    (...,) int64 ranks in [0, C(k + S - 1, S - 1)).
    """
    counts = np.asarray(counts)
    S = counts.shape[-1]
    if S == 1:
        return np.zeros(counts.shape[:-1], dtype=np.int64)
    table = _binom_table(k + S - 1, S - 1)
    bars = np.cumsum(counts[..., :-1], axis=-1, dtype=np.int64) + np.arange(S - 1)
    return table[bars, np.arange(1, S)].sum(axis=-1)


def unrank(ranks: np.ndarray, k: int, n_states: int) -> np.ndarray:
    """Inverse of `rank`: (...,) ranks -> (..., S) int64 count vectors."""
    ranks = np.asarray(ranks, dtype=np.int64)
    S = n_states
    out = np.empty((*ranks.shape, S), dtype=np.int64)
    if S == 1:
        out[..., 0] = k
        return out
    table = _binom_table(k + S - 1, S - 1)
    rest = ranks.copy()
    bars = np.empty((*ranks.shape, S - 1), dtype=np.int64)
    for j in range(S - 2, -1, -1):
        # largest b with C(b, j + 1) <= rest; column j+1 of the table is non-decreasing in b
        col = table[:, j + 1]
        b = np.searchsorted(col, rest, side="right") - 1
        bars[..., j] = b
        rest -= col[b]
    prev = np.concatenate([np.full((*ranks.shape, 1), -1, dtype=np.int64), bars], axis=-1)
    out[..., :-1] = np.diff(prev, axis=-1) - 1
    out[..., -1] = k + S - 2 - bars[..., -1]
    return out


@dataclass(frozen=True, eq=False)
class PrefixCodec:
    """Count vectors packed into one integer whose rank is two or three small-table lookups.

    code(d) = sum_l (d_0 + ... + d_l) << (bits * l), l = 0..S-2: each field holds a prefix sum (<= k), so
    code is additive over count vectors whose total is <= k: code(d + e) = code(d) + code(e) with no
    carries. That turns "sum the per-state draws, then rank" into "sum the per-state codes, then look up":
    rank(d) = sum_l C(b_l, l + 1) with b_l = prefix_l + l is separable over fields, so it is a sum of
    `tables[t][(code >> shifts[t]) & masks[t]]` over groups of fields (each table <= 2^16 entries).
    """

    k: int
    n_states: int
    bits: int
    dtype: type
    shifts: tuple[int, ...]
    masks: tuple[int, ...]
    tables: tuple[np.ndarray, ...]

    def encode(self, counts: np.ndarray) -> np.ndarray:
        """(..., S) count vectors (totals <= k) -> (...,) codes of `dtype`."""
        counts = np.asarray(counts)
        prefix = np.cumsum(counts[..., :-1], axis=-1, dtype=np.int64)
        weights = np.left_shift(np.int64(1), self.bits * np.arange(self.n_states - 1, dtype=np.int64))
        return (prefix @ weights).astype(self.dtype)

    def rank(self, codes: np.ndarray) -> np.ndarray:
        """(...,) codes of count vectors summing to k -> (...,) int32/int64 ranks (as `rank`)."""
        out = self.tables[0][codes & self.masks[0]]
        for table, shift, mask in zip(self.tables[1:], self.shifts[1:], self.masks[1:], strict=True):
            out += table[(codes >> shift) & mask]
        return out


@lru_cache(maxsize=16)
def prefix_codec(k: int, n_states: int) -> PrefixCodec | None:
    """The `PrefixCodec` of count vectors of k over n_states states, or None when S - 1 prefix sums of
    bit length of k do not fit in 62 bits (callers then use `rank`)."""
    S = n_states
    if S < 2:
        return None
    bits = max(1, int(k).bit_length())
    total = bits * (S - 1)
    if total > 62:
        return None
    dtype = np.int32 if total <= 31 else np.int64
    per_group = max(1, 16 // bits)
    binom = _binom_table(k + S - 1, S - 1)
    rank_dtype = np.int32 if comb(k + S - 1, S - 1) < 2**31 else np.int64
    shifts, masks, tables = [], [], []
    for first in range(0, S - 1, per_group):
        fields = range(first, min(first + per_group, S - 1))
        codes = np.arange(1 << (bits * len(fields)), dtype=np.int64)
        table = np.zeros(codes.size, dtype=np.int64)
        for t, field_index in enumerate(fields):
            prefix = (codes >> (bits * t)) & ((1 << bits) - 1)
            table += np.where(prefix <= k, binom[np.minimum(prefix, k) + field_index, field_index + 1], 0)
        table = table.astype(rank_dtype)
        table.setflags(write=False)
        shifts.append(bits * first)
        masks.append((1 << (bits * len(fields))) - 1)
        tables.append(table)
    return PrefixCodec(k, S, bits, dtype, tuple(shifts), tuple(masks), tuple(tables))


@lru_cache(maxsize=16)
def _enumerate_cached(k: int, n_states: int) -> np.ndarray:
    out = unrank(np.arange(n_count_vectors(k, n_states)), k, n_states)
    out.setflags(write=False)
    return out


def enumerate_counts(k: int, n_states: int) -> np.ndarray:
    """All count vectors in rank order, shape (C(k + S - 1, S - 1), S), read-only int64."""
    return _enumerate_cached(k, n_states)


def counts_from_states(states: np.ndarray, n_states: int) -> np.ndarray:
    """Histogram of the last axis: (..., k) states in [0, S) -> (..., S) int64 counts."""
    states = np.asarray(states)
    lead = states.shape[:-1]
    flat = states.reshape(-1, states.shape[-1]) if states.ndim > 1 else states[None]
    offsets = (np.arange(flat.shape[0]) * n_states)[:, None]
    hist = np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * n_states)
    return hist.reshape((*lead, n_states))


def subsample(rng: np.random.Generator, n_agents: int, k: int, batch: int) -> np.ndarray:
    """Draw a uniform k-subset of [n] without replacement for each batch row: (batch, k) int64."""
    if not 1 <= k <= n_agents:
        raise InputError(f"need 1 <= k <= n_agents, got k={k}, n_agents={n_agents}")
    if k == n_agents:
        return np.broadcast_to(np.arange(n_agents), (batch, n_agents)).copy()
    keys = rng.random((batch, n_agents))
    return np.argpartition(keys, k - 1, axis=1)[:, :k]


def round_to_counts(expected: np.ndarray, k: int) -> np.ndarray:
    """Largest-remainder rounding of (..., S) real vectors summing to k into integer count vectors.

    Ties between equal remainders go to the lower state index (stable sort), as in the authors' code.
    """
    floored = np.floor(expected + 1e-12).astype(np.int64)
    deficit = k - floored.sum(axis=-1)
    # rank of each entry in the descending order of residuals (ties to the lower index), one state
    # column at a time: S^2 vector comparisons beat argsort on the few states of a count vector
    residual = np.moveaxis(expected - floored, -1, 0)  # (S, ...)
    S = residual.shape[0]
    out = np.moveaxis(floored, -1, 0).copy()
    for i in range(S):
        position = np.zeros(residual.shape[1:], dtype=np.int8)
        for j in range(S):
            position += (residual[j] >= residual[i]) if j < i else (residual[j] > residual[i])
        out[i] += position < deficit
    return np.clip(np.moveaxis(out, 0, -1), 0, k)
