"""The vectorized simulator (Algorithm 4): transition frequencies, rewards, ordering, evaluation."""

import numpy as np
import pytest
from scipy import stats

from altmarl_ros.marl import sim
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy


def _chi2_pvalue(observed, probs):
    expected = probs * observed.sum()
    keep = expected > 0
    return stats.chisquare(observed[keep], expected[keep] * observed[keep].sum() / expected[keep].sum()).pvalue


def test_empirical_transitions_match_P_g_and_P_l():
    game = make_game("warehouse")
    rng = np.random.default_rng(1)
    B, n = 4000, 50
    s_g = np.full(B, 2)
    s_l = np.full((B, n), 4)
    a_g = np.full(B, 0)
    a_l = np.full((B, n), 1)
    out = sim.step(game, rng, sim.JointState(s_g, s_l), a_g, a_l)
    assert _chi2_pvalue(np.bincount(out.state.s_g, minlength=5), game.P_g[2, 0]) > 1e-3
    assert _chi2_pvalue(np.bincount(out.state.s_l.ravel(), minlength=5), game.P_l[4, 2, 1]) > 1e-3
    # authors' ordering: the locals move with the new s_g (REFERENCE.md B1)
    out = sim.step(game, rng, sim.JointState(s_g, s_l), a_g, a_l, ordering="authors")
    mixed = sum(np.bincount(out.state.s_g, minlength=5)[h] / B * game.P_l[4, h, 1] for h in range(5))
    assert _chi2_pvalue(np.bincount(out.state.s_l.ravel(), minlength=5), mixed) > 1e-3


def test_reward_is_r_g_plus_mean_r_l():
    game = make_game("warehouse", r_g="distance")
    rng = np.random.default_rng(0)
    state = sim.reset(game, rng, n_agents=30, batch=3)
    a_g = np.array([0, 1, 4])
    a_l = rng.integers(0, 3, size=(3, 30))
    out = sim.step(game, rng, state, a_g, a_l)
    expected = game.r_g[state.s_g, a_g] + game.r_l[state.s_l, state.s_g[:, None], a_l].mean(1)
    assert np.allclose(out.reward, expected)


def test_local_policy_sampling_frequencies():
    rng = np.random.default_rng(2)
    probs = np.tile(np.array([0.2, 0.5, 0.3]), (5, 5, 1))
    pi_l = TabularLocalPolicy(probs)
    a = pi_l.sample(rng, np.zeros(200, dtype=int), np.zeros((200, 100), dtype=int))
    assert _chi2_pvalue(np.bincount(a.ravel(), minlength=3), probs[0, 0]) > 1e-3


def test_evaluate_returns_estimates_and_is_reproducible():
    game = make_game("warehouse")
    pi_g = TabularGlobalPolicy.constant(0, n_global_states=5, n_local_states=5, n_global_actions=5, k=3)
    pi_l = TabularLocalPolicy.uniform(5, 5, 3)
    kw = dict(n_agents=40, horizon=20, n_episodes=30)
    a = sim.evaluate(game, pi_g, pi_l, np.random.default_rng(5), **kw)
    b = sim.evaluate(game, pi_g, pi_l, np.random.default_rng(5), **kw)
    assert a.reward == b.reward and a.reward.n == 30 and a.reward.stderr > 0
    assert 0 <= a.mode_accuracy.mean <= 1
    # r_g = 1 contributes sum_t gamma^t; local rewards are at least 2/3 - 0.3 per step
    assert a.reward.mean > (1 - 0.95 ** 20) / 0.05
    with pytest.raises(ValueError, match="ordering"):
        sim.evaluate(game, pi_g, pi_l, np.random.default_rng(5), ordering="sideways", **kw)


def test_policies_validate_their_tables():
    with pytest.raises(ValueError, match="shape"):
        TabularGlobalPolicy(np.zeros((5, 7), dtype=int), 3, 5, 5)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        TabularGlobalPolicy(np.full((5, 35), 9), 3, 5, 5)
    with pytest.raises(ValueError, match="sum to 1"):
        TabularLocalPolicy(np.full((5, 5, 3), 0.5))
