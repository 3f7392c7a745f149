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
