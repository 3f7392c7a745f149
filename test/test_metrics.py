"""Exact brute-force metrics against hand computation, and the Monte Carlo estimators against them."""

import numpy as np
import pytest

from altmarl_ros.marl import sim
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.gaps import estimate_gaps
from altmarl_ros.marl.metrics import exact_full_information_gap, exact_nash_gap, exact_value
from altmarl_ros.marl.policy import FullInformationPolicy, TabularGlobalPolicy, TabularLocalPolicy

STAY = TabularLocalPolicy(np.tile([1.0, 0.0], (2, 2, 1)))
FOLLOW = TabularLocalPolicy(np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]]], float))


def global_stay(k):
    return TabularGlobalPolicy(np.array([[0] * (k + 1), [1] * (k + 1)]), k, 2, 2)


def test_exact_values_match_hand_computation():
    """Coordination game, gamma = 0.9, uniform initial states, r = fraction of agents in the global zone.

    (stay, follow): 1/2 at t = 0, then everyone is aligned: 0.5 + 0.9 / 0.1 = 9.5, the optimum.
    (stay, stay):   nobody moves: 0.5 / 0.1 = 5.
    From (stay, stay) the locals' best response is follow (gap_l = 4.5); the global agent's best
    response goes to the sampled agent's zone: with two agents it earns 1 if they share a zone
    (probability 1/2) and 1/2 otherwise, so 0.5 + 9 * 0.75 = 7.25 (gap_g = 2.25).
    """
    game = make_game("coordination")
    assert exact_value(game, global_stay(1), FOLLOW, n_agents=2) == pytest.approx(9.5)
    assert exact_value(game, global_stay(1), STAY, n_agents=2) == pytest.approx(5.0)
    gap = exact_nash_gap(game, global_stay(1), STAY, n_agents=2)
    assert gap.gap_g == pytest.approx(2.25) and gap.gap_l == pytest.approx(4.5)
    assert np.array_equal(gap.best_pi_l.probs, FOLLOW.probs)
    assert exact_nash_gap(game, global_stay(1), FOLLOW, n_agents=2).nash_gap == pytest.approx(0.0, abs=1e-12)


def test_monte_carlo_value_matches_the_exact_value():
    game = make_game("coordination", slip=0.2, dirichlet=0.5)
    rng = np.random.default_rng(3)
    pi_g = TabularGlobalPolicy(rng.integers(0, 2, size=(2, 3)), 2, 2, 2)
    pi_l = TabularLocalPolicy(rng.dirichlet([1, 1], size=(2, 2)))
    exact = exact_value(game, pi_g, pi_l, n_agents=4)
    est = sim.evaluate(game, pi_g, pi_l, np.random.default_rng(0), n_agents=4, horizon=300,
                       n_episodes=4000).reward
    assert abs(est.mean - exact) < 4 * est.stderr


def test_common_random_numbers_pair_two_evaluations_on_the_exact_gap():
    game = make_game("coordination")
    runs = [sim.evaluate(game, global_stay(1), pi_l, np.random.default_rng(1), n_agents=2, horizon=300,
                         n_episodes=2000) for pi_l in (FOLLOW, STAY)]
    diff = sim.Estimate.of(runs[0].returns - runs[1].returns)
    assert abs(diff.mean - 4.5) < 4 * diff.stderr + 1e-9
    assert abs(runs[1].reward.mean - 5.0) < 4 * runs[1].reward.stderr
    assert diff.stderr < runs[1].reward.stderr  # pairing removes the shared episode noise


def test_named_gaps_on_the_warehouse():
    game = make_game("warehouse")
    pi_g = TabularGlobalPolicy.constant(0, n_global_states=5, n_local_states=5, n_global_actions=5, k=2)
    uniform = TabularLocalPolicy.uniform(5, 5, 3)
    gaps = estimate_gaps(game, pi_g, uniform, seed=0, n_agents=60, horizon=30, n_episodes=64, k_oracle=8,
                         search_agents=30, search_episodes=16, unilateral_search_episodes=32)
    # uniform robots are far from any best response, and a full-information dispatcher beats a constant one
    assert gaps.gap_l_shared.mean > 10 * gaps.gap_l_shared.stderr
    assert gaps.gap_l_unilateral_own.mean > 5 * gaps.gap_l_unilateral_own.stderr
    assert gaps.gap_g_full.mean > 3 * gaps.gap_g_full.stderr


def test_full_information_policy_rounds_the_population_histogram():
    pi_g = TabularGlobalPolicy(np.arange(21)[None].repeat(5, 0) % 5, 5, 3, 5)
    oracle = FullInformationPolicy(pi_g)
    s_l = np.array([[0] * 6 + [1] * 3 + [2] * 1])  # shares 0.6, 0.3, 0.1 -> counts (3, 2, 0) of 5
    from altmarl_ros.marl import counts as cv

    expected = pi_g.act(np.array([0]), np.array([[3, 2, 0]]))
    assert cv.round_to_counts(np.array([[3.0, 1.5, 0.5]]), 5).tolist() == [[3, 2, 0]]
    assert oracle.act_on(np.random.default_rng(0), np.array([0]), s_l).tolist() == expected.tolist()


def test_exact_metrics_refuse_large_problems():
    game = make_game("warehouse")
    pi_g = TabularGlobalPolicy.constant(0, n_global_states=5, n_local_states=5, n_global_actions=5, k=2)
    with pytest.raises(ValueError, match="too large"):
        exact_value(game, pi_g, TabularLocalPolicy.uniform(5, 5, 3), n_agents=8)
    with pytest.raises(ValueError, match="enumerate"):
        exact_nash_gap(game, pi_g, TabularLocalPolicy.uniform(5, 5, 3), n_agents=2)


def test_finite_horizon_exact_values_match_hand_computation():
    """(stay, stay) in the coordination game: 1/2 per step, so sum_{t<H} 0.9^t / 2; (stay, follow): 1/2 then 1.
    The full-information optimum against "stay" also earns 1/2 then, with 2 agents, 1 if they share a zone
    (probability 1/2 under uniform initial states) and 1/2 otherwise."""
    game = make_game("coordination")
    H = 7
    geo = (1 - 0.9 ** H) / 0.1
    assert exact_value(game, global_stay(1), STAY, n_agents=2, horizon=H) == pytest.approx(0.5 * geo)
    assert exact_value(game, global_stay(1), FOLLOW, n_agents=2, horizon=H) == pytest.approx(0.5 + (geo - 1))
    full = exact_full_information_gap(game, global_stay(1), STAY, n_agents=2, horizon=H)
    assert full == pytest.approx(0.5 + 0.75 * (geo - 1) - 0.5 * geo)
