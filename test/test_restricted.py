"""The restricted global best response against exact brute force on random tiny games (issue 15 item 1)."""

import numpy as np
import pytest

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.gaps import fresh_rng
from altmarl_ros.marl.metrics import exact_restricted_global_gap, exact_value
from altmarl_ros.marl.observe import KSampleObserver, table_rollouts
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.population import (
    hypergeometric_kernel,
    memoryless_chain,
    memoryless_value,
    observation_q,
    population_model,
)
from altmarl_ros.marl.restricted import (
    constant_starts,
    entry_advantages,
    exhaustive_best_response,
    mc_best_response,
    model_best_response,
)
from altmarl_ros.marl.restricted_gap import gap_g_restricted_oracle, heuristic_dispatchers
from altmarl_ros.marl.sim import Estimate, evaluate

SHAPES = [(2, 2, 2), (2, 2, 3), (2, 3, 2), (3, 2, 2)]  # (S_g, S_l, A_g)


def random_game(seed: int, S_g: int, S_l: int, A_g: int, A_l: int = 2) -> TabularGame:
    rng = np.random.default_rng(seed)
    return TabularGame(P_g=rng.dirichlet(np.ones(S_g), size=(S_g, A_g)),
                       P_l=rng.dirichlet(np.full(S_l, 0.5), size=(S_l, S_g, A_l)),
                       r_g=rng.uniform(0, 1, (S_g, A_g)), r_l=rng.uniform(0, 2, (S_l, S_g, A_l)), gamma=0.9,
                       init_g=np.full(S_g, 1.0 / S_g), init_l_concentration=0.5, name=f"random{seed}")


def case(seed: int, n: int | None = None, k: int | None = None):
    """A random tiny game, a random pi_l, n <= 4 agents, k <= 2 and a random dispatcher table."""
    rng = np.random.default_rng(1000 + seed)
    S_g, S_l, A_g = SHAPES[seed % len(SHAPES)]
    n = n if n is not None else int(rng.integers(2, 5))
    k = k if k is not None else int(rng.integers(1, min(n, 2) + 1))
    game = random_game(seed, S_g, S_l, A_g)
    pi_l = TabularLocalPolicy(rng.dirichlet(np.ones(2), size=(S_g, S_l)))
    model = population_model(game, pi_l, n_agents=n, k=k)
    table = rng.integers(0, A_g, size=(S_g, model.n_observations))
    return game, pi_l, model, table


def test_hypergeometric_kernel_is_a_distribution_with_the_sample_mean():
    kernel = hypergeometric_kernel(6, 3, 3)
    assert np.allclose(kernel.sum(1), 1.0)
    hists, obs = cv.enumerate_counts(6, 3), cv.enumerate_counts(3, 3)
    assert np.allclose(kernel @ obs, hists * 3 / 6)  # E[o] = k h / n


@pytest.mark.parametrize("horizon", [None, 25])
def test_population_model_values_equal_the_joint_chain(horizon):
    """Two independent exact routes: histograms (here) and S_l^n joint configurations (metrics)."""
    for seed in range(4):
        game, pi_l, model, table = case(seed)
        pi_g = TabularGlobalPolicy(table, model.k, game.n_local_states, game.n_global_actions)
        assert memoryless_value(model, table, horizon=horizon) == pytest.approx(
            exact_value(game, pi_g, pi_l, n_agents=model.n_agents, horizon=horizon), rel=1e-10)


def test_observation_q_of_the_table_action_is_the_table_value():
    """Infinite horizon: sum_{s_g, o} Qobs(s_g, o, table[s_g, o]) = sum_s d(s) V(s), d the discounted occupancy."""
    game, _, model, table = case(1)
    q = observation_q(model, table)
    own = np.take_along_axis(q, table[..., None], -1)[..., 0].sum()
    chain = memoryless_chain(model, table)
    eye = np.eye(chain.P.shape[0])
    V = np.linalg.solve(eye - game.gamma * chain.P, chain.r)
    d = np.linalg.solve((eye - game.gamma * chain.P).T, model.init.ravel())
    assert own == pytest.approx(d @ V, rel=1e-10)


@pytest.mark.parametrize("horizon", [None, 30])
def test_model_best_response_is_the_exact_restricted_best_response(horizon):
    """Policy iteration + coordinate ascent on the exact population model reaches the brute-force optimum
    over every deterministic memoryless k-sample table, on 16 random tiny games (n <= 4)."""
    for seed in range(16):
        _, _, model, table = case(seed)
        exact = exhaustive_best_response(model, horizon=horizon)
        found = model_best_response(model, starts={"pi_g": table}, horizon=horizon)
        assert found.value == pytest.approx(exact.value, abs=1e-9), (seed, found.value, exact.value)
        assert memoryless_value(model, found.table, horizon=horizon) == pytest.approx(found.value, abs=1e-12)


def test_the_brute_force_agrees_with_metrics_exact_restricted_global_gap():
    for seed in (0, 3, 5):
        game, pi_l, model, table = case(seed, n=3, k=1)
        pi_g = TabularGlobalPolicy(table, 1, game.n_local_states, game.n_global_actions)
        gap = exact_restricted_global_gap(game, pi_g, pi_l, n_agents=3)
        assert exhaustive_best_response(model).value == pytest.approx(gap.value + gap.gap, abs=1e-9)


def test_table_rollouts_reproduce_sim_evaluate():
    game, pi_l, _, table = case(2, n=4, k=2)
    pi_g = TabularGlobalPolicy(table, 2, game.n_local_states, game.n_global_actions)
    ours = table_rollouts(game, table, KSampleObserver(2, game.n_local_states), pi_l, 5, n_agents=4,
                          horizon=15, n_episodes=70)
    theirs = evaluate(game, pi_g, pi_l, fresh_rng(5), n_agents=4, horizon=15, n_episodes=70)
    assert np.allclose(ours.returns, theirs.returns, atol=1e-12)


def test_entry_advantages_recover_the_exact_observation_q_differences():
    """The Monte Carlo per-entry advantages estimate the exact occupancy-weighted ones (within 4 stderr)."""
    game, pi_l, model, table = case(0, n=3, k=1)
    H = 20
    run = table_rollouts(game, table, KSampleObserver(1, game.n_local_states), pi_l, 11, n_agents=3, horizon=H,
                         n_episodes=6000)
    adv = entry_advantages(game, table, run.s_g, run.obs, run.rewards)
    q = observation_q(model, table, horizon=H)
    exact = q - np.take_along_axis(q, table[..., None], -1)
    est = adv.q - np.take_along_axis(adv.q, table[..., None], -1)
    weight = _visit_weight(model, table, H)  # Qobs is a sum over visits, the estimate a per-visit mean
    checked = 0
    for g, o in np.ndindex(table.shape):
        for a in range(game.n_global_actions):
            if a == table[g, o] or adv.stderr[g, o, a] == 0:
                continue
            z = (est[g, o, a] - exact[g, o, a] / weight[g, o]) / adv.stderr[g, o, a]
            assert abs(z) < 4.5, (g, o, a, z)
            checked += 1
    assert checked >= 2


def _visit_weight(model, table, H):
    """sum_t gamma^t P(s_g(t) = g, o(t) = o): the normaliser that turns Qobs into a per-visit mean."""
    chain = memoryless_chain(model, table)
    S_g, Hn = model.init.shape
    d = model.init.ravel()
    w = np.zeros(table.shape)
    for t in range(H):
        w += model.game.gamma ** t * d.reshape(S_g, Hn) @ model.O
        d = d @ chain.P
    return w


def test_monte_carlo_best_response_is_within_three_stderr_of_the_exact_optimum():
    """On the true n-agent simulator (n = 4): the exact value of the table found by Monte Carlo policy
    iteration is within 3 paired stderr (same episode budget) of the exact restricted optimum."""
    H, E = 30, 384
    for seed in range(4):
        game, pi_l, model, table = case(seed, n=4, k=1 + seed % 2)
        exact = model_best_response(model, starts={"pi_g": table}, horizon=H)
        obs = KSampleObserver(model.k, game.n_local_states)
        starts = {"pi_g": table, **constant_starts(game.n_global_states, model.n_observations,
                                                   game.n_global_actions)}
        found = mc_best_response(game, pi_l, obs, starts=starts, seed=seed, n_agents=4, horizon=H, episodes=E)
        value = memoryless_value(model, found.table, horizon=H)
        a = table_rollouts(game, exact.table, obs, pi_l, 77, n_agents=4, horizon=H, n_episodes=E).returns
        b = table_rollouts(game, found.table, obs, pi_l, 77, n_agents=4, horizon=H, n_episodes=E).returns
        se = Estimate.of(a - b).stderr
        assert exact.value - value <= 3 * se + 1e-9, (seed, exact.value, value, se)
        assert found.starts_tried == len(starts)


def test_restricted_gap_oracle_estimates_the_exact_restricted_gap():
    """The oracle (no G-LEARN) finds the exact restricted best response on n = 4 robots, and its paired gain
    on the final episodes is within 3 stderr of the exact gap; a best response reports 'nothing found'."""
    H = 25
    for seed in (1, 2):
        game, pi_l, model, table = case(seed, n=4, k=2)
        pi_g = TabularGlobalPolicy(table, 2, game.n_local_states, game.n_global_actions)
        exact = model_best_response(model, starts={"pi_g": table}, horizon=H)
        gap = gap_g_restricted_oracle(game, pi_g, pi_l, seed=seed, n_agents=4, horizon=H, n_episodes=600,
                                      rng=np.random.default_rng(0))
        true_gap = exact.value - memoryless_value(model, table, horizon=H)
        assert gap.report.found and gap.report.candidates_tried == game.n_global_actions + 1
        assert gap.model_gain == pytest.approx(true_gap, abs=1e-9)
        assert abs(gap.report.gain.mean - true_gap) <= 3 * gap.report.gain.stderr + 1e-9
        again = gap_g_restricted_oracle(game, gap.policy, pi_l, seed=seed, n_agents=4, horizon=H, n_episodes=50,
                                        rng=np.random.default_rng(0))
        assert not again.report.found and "nothing found" in again.report.text()


def test_heuristic_dispatchers_follow_the_sampled_mode():
    from altmarl_ros.marl.games import make_game
    tables = heuristic_dispatchers(make_game("warehouse", n_zones=3), 4)
    d = cv.enumerate_counts(4, 3)
    row = int(cv.rank(np.array([3, 1, 0]), 4))
    assert tables["sticky_3"][2, row] == 0 and tables["sticky_4"][2, row] == 2 and tables["zero_4"][2, row] == 0
    assert len(tables) == 8 and tables["zero_1"].shape == (3, len(d))


def test_grid_model_rounding_is_mean_preserving_and_kernels_are_distributions():
    from altmarl_ros.marl.meanfield_model import meanfield_grid, multinomial_kernel, randomized_rounding
    from altmarl_ros.marl.population import SampledKernel, action_probs, kernel_transpose
    rng = np.random.default_rng(0)
    x = rng.dirichlet(np.ones(4), size=50) * 9
    ranks, probs = randomized_rounding(x, 9)
    assert np.allclose(probs.sum(1), 1.0)
    assert np.allclose((probs[..., None] * cv.unrank(ranks, 9, 4)).sum(1), x, atol=1e-12)
    assert np.allclose(multinomial_kernel(6, 3, 3).sum(1), 1.0)
    game, pi_l, _, _ = case(2)
    model = meanfield_grid(game, pi_l, k=2, K=8, rng=rng)
    assert all(np.allclose(T.sum(1), 1.0) for T in model.T) and model.init.sum() == pytest.approx(1.0)
    dense = np.asarray(model.O)
    draws = np.stack([rng.choice(dense.shape[1], size=4000, p=row) for row in dense])
    sampled = SampledKernel(draws, dense.shape[1])
    table = rng.integers(0, game.n_global_actions, (game.n_global_states, dense.shape[1]))
    assert np.abs(action_probs(sampled, table, game.n_global_actions)
                  - action_probs(dense, table, game.n_global_actions)).max() < 0.05
    w = rng.random((dense.shape[0], 2))
    counts = np.stack([np.bincount(r, minlength=dense.shape[1]) for r in draws]) / 4000
    assert np.allclose(kernel_transpose(sampled, w), counts.T @ w)


def test_global_learner_refines_g_learn_with_the_restricted_best_response():
    """g_learn.restricted: the alternation's global proposal is G-LEARN's table improved on the n-robot
    model; its exact value is at least G-LEARN's (and is the model search's result from that start)."""
    from altmarl_ros.marl.config import GLearnConfig
    from altmarl_ros.marl.run_learners import GlobalLearner
    game, pi_l, model, _ = case(1, n=3, k=1)
    plain = GlobalLearner(game, GLearnConfig(transition="exact"), k=1, seed=0, full_information=False)(pi_l)
    refined = GlobalLearner(game, GLearnConfig(transition="exact", restricted=True), k=1, seed=0,
                            full_information=False, n_agents=3, horizon=20)(pi_l)
    expected = model_best_response(model, starts={"g_learn": plain.actions}, horizon=20, constants=False)
    assert np.array_equal(refined.actions, expected.table)
    assert memoryless_value(model, refined.actions, horizon=20) >= memoryless_value(model, plain.actions,
                                                                                     horizon=20) - 1e-12
