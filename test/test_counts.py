"""Count vectors: enumeration, ranking (bijection), rounding and subsampling."""

from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from altmarl_ros.marl import counts as cv


@given(k=st.integers(0, 12), n_states=st.integers(1, 6))
@settings(max_examples=60, deadline=None)
def test_enumeration_is_a_bijection_onto_ranks(k, n_states):
    all_d = cv.enumerate_counts(k, n_states)
    assert len(all_d) == comb(k + n_states - 1, n_states - 1) == cv.n_count_vectors(k, n_states)
    assert np.all(all_d.sum(-1) == k) and np.all(all_d >= 0)
    assert len({tuple(d) for d in all_d}) == len(all_d)
    assert np.array_equal(cv.rank(all_d, k), np.arange(len(all_d)))
    assert np.array_equal(cv.unrank(cv.rank(all_d, k), k, n_states), all_d)


@given(states=st.lists(st.integers(0, 4), min_size=1, max_size=40))
def test_counts_of_states_sum_to_k(states):
    counts = cv.counts_from_states(np.array([states]), 5)[0]
    assert counts.sum() == len(states)
    assert np.array_equal(counts, np.bincount(states, minlength=5))


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=6), st.integers(1, 60))
def test_largest_remainder_rounding(weights, k):
    w = np.asarray(weights) + 1e-3
    expected = k * w / w.sum()
    rounded = cv.round_to_counts(expected[None], k)[0]
    assert rounded.sum() == k
    assert np.all(np.abs(rounded - expected) < 1 + 1e-9)


def test_rounding_breaks_ties_towards_the_lower_state():
    assert cv.round_to_counts(np.array([[0.5, 0.5, 1.0]]), 2).tolist() == [[1, 0, 1]]


def test_subsample_is_without_replacement_and_uniform():
    rng = np.random.default_rng(0)
    idx = cv.subsample(rng, 10, 3, 20000)
    assert np.all(np.sort(idx, axis=1)[:, 1:] != np.sort(idx, axis=1)[:, :-1])
    freq = np.bincount(idx.ravel(), minlength=10) / idx.size
    assert np.allclose(freq, 0.1, atol=0.01)
    with pytest.raises(ValueError, match="k <= n_agents"):
        cv.subsample(rng, 3, 4, 1)


@given(k=st.integers(0, 40), n_states=st.integers(2, 7), seed=st.integers(0, 1000))
@settings(max_examples=60, deadline=None)
def test_prefix_codes_add_like_count_vectors_and_rank_like_rank(k, n_states, seed):
    """code(d + e) = code(d) + code(e) for totals <= k, and the code's rank is `rank`."""
    codec = cv.prefix_codec(k, n_states)
    assert codec is not None
    rng = np.random.default_rng(seed)
    split = rng.integers(0, k + 1)
    d = rng.multinomial(split, np.ones(n_states) / n_states, size=50)
    e = rng.multinomial(k - split, rng.dirichlet(np.ones(n_states)), size=50)
    assert np.array_equal(codec.encode(d) + codec.encode(e), codec.encode(d + e))
    assert np.array_equal(codec.rank(codec.encode(d + e)), cv.rank(d + e, k))


def test_prefix_codec_covers_large_k_and_declines_what_does_not_fit():
    codec = cv.prefix_codec(1000, 5)  # 10 bits a field: four one-field tables
    assert codec is not None and len(codec.tables) == 4
    d = np.random.default_rng(0).multinomial(1000, np.ones(5) / 5, size=100)
    assert np.array_equal(codec.rank(codec.encode(d)), cv.rank(d, 1000))
    assert cv.prefix_codec(5, 1) is None  # one state: nothing to encode
    assert cv.prefix_codec(300, 12) is None  # 11 fields of 9 bits > 62 bits
