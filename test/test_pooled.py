"""The pooled observation: the exact Bayes filter against a brute-force posterior, the moment filter against
the exact posterior (issue 15 item 2)."""

import itertools
from math import comb

import numpy as np
import pytest
from scipy.special import gammaln

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl import sim
from altmarl_ros.marl.game import TabularGame, marginal_local
from altmarl_ros.marl.observe import KSampleObserver, table_rollouts
from altmarl_ros.marl.policy import TabularLocalPolicy
from altmarl_ros.marl.pooled import PooledObserver, PopulationFilter, discretise, exact_posterior
from altmarl_ros.marl.population import population_model


def game_of(seed: int, S_l: int = 3, slow: float = 0.0) -> TabularGame:
    rng = np.random.default_rng(seed)
    P_l = rng.dirichlet(np.full(S_l, 0.5), size=(S_l, 2, 2))
    P_l = slow * np.eye(S_l)[:, None, None, :] + (1 - slow) * P_l
    return TabularGame(P_g=rng.dirichlet(np.ones(2), size=(2, 2)), P_l=P_l, r_g=rng.uniform(0, 1, (2, 2)),
                       r_l=rng.uniform(0, 2, (S_l, 2, 2)), gamma=0.9, init_g=np.full(2, 0.5),
                       init_l_concentration=0.5)


def episode(game, pi_l, n, k, horizon, rng, batch=1):
    """Simulate with a random dispatcher; record s_g path, observation counts and true histograms."""
    state = sim.reset(game, rng, n_agents=n, batch=batch)
    s_g, obs, truth = [], [], []
    for _ in range(horizon):
        idx = cv.subsample(rng, n, k, batch)
        obs.append(cv.counts_from_states(np.take_along_axis(state.s_l, idx, 1), game.n_local_states))
        truth.append(cv.counts_from_states(state.s_l, game.n_local_states) / n)
        s_g.append(state.s_g)
        a_l = pi_l.sample(rng, state.s_g, state.s_l)
        state = sim.step(game, rng, state, rng.integers(0, 2, batch), a_l).state
    return np.array(s_g).T, np.array(obs).transpose(1, 0, 2), np.array(truth).transpose(1, 0, 2)


def brute_force_posterior(game, pi_l, n, k, s_g, obs):
    """P(h_t | s_g(0..t), o(0..t)) by enumerating the S_l^n joint configurations and every k-subset."""
    S, c = game.n_local_states, game.init_l_concentration
    configs = np.array(list(itertools.product(range(S), repeat=n)))
    m = cv.counts_from_states(configs, S)
    b = np.exp(gammaln(S * c) - gammaln(S * c + n) + (gammaln(c + m) - gammaln(c)).sum(-1))
    subsets = list(itertools.combinations(range(n), k))
    sub_counts = np.stack([cv.counts_from_states(configs[:, list(s)], S) for s in subsets], 1)  # (X, C, S)
    P_tilde = marginal_local(game, pi_l.probs).P_tilde
    hist_rank = cv.rank(m, n)
    out = []
    for t in range(obs.shape[0]):
        like = (sub_counts == obs[t]).all(-1).sum(1) / comb(n, k)
        b = b * like
        b = b / b.sum()
        out.append(np.bincount(hist_rank, b, cv.n_count_vectors(n, S)))
        K = P_tilde[:, s_g[t], :]
        for _ in range(n - 1):
            K = np.kron(K, P_tilde[:, s_g[t], :])
        b = b @ K
    return np.array(out)


def test_exact_posterior_equals_the_brute_force_over_joint_configurations():
    game = game_of(0, S_l=2)
    pi_l = TabularLocalPolicy(np.random.default_rng(1).dirichlet(np.ones(2), size=(2, 2)))
    n, k = 4, 2
    model = population_model(game, pi_l, n_agents=n, k=k)
    s_g, obs, _ = episode(game, pi_l, n, k, 8, np.random.default_rng(3))
    ours = exact_posterior(model, s_g[0], cv.rank(obs[0], k))
    assert np.allclose(ours, brute_force_posterior(game, pi_l, n, k, s_g[0], obs[0]), atol=1e-12)


@pytest.mark.parametrize("slow", [0.0, 0.8])
def test_moment_filter_mean_is_the_exact_posterior_mean(slow):
    """n = 12, k = 2, S_l = 3, 150 episodes x 25 steps: the moment filter's mean is as good as the exact
    posterior mean (measured at n = 30: squared distance to it 1e-4 to 2e-3 of the posterior's own
    error) and far better than one fresh sample or an EMA with weight 0.15."""
    game = game_of(1, slow=slow)
    pi_l = TabularLocalPolicy(np.random.default_rng(2).dirichlet(np.ones(2), size=(2, 3)))
    n, k, H, E = 12, 2, 25, 150
    model = population_model(game, pi_l, n_agents=n, k=k)
    s_g, obs, truth = episode(game, pi_l, n, k, H, np.random.default_rng(5), batch=E)
    hists = cv.enumerate_counts(n, 3) / n
    exact = np.array([exact_posterior(model, s_g[e], cv.rank(obs[e], k)) @ hists for e in range(E)])
    filt = PopulationFilter.for_game(game, pi_l, n_agents=n, k=k)
    state, mu, ema = filt.start(E), [], obs[:, 0] / k
    emas = []
    for t in range(H):
        state = filt.update(state, s_g[:, t], obs[:, t])
        ema = obs[:, t] / k if t == 0 else 0.85 * ema + 0.15 * obs[:, t] / k
        mu.append(state.mu)
        emas.append(ema)
    mu, emas = np.array(mu).transpose(1, 0, 2), np.array(emas).transpose(1, 0, 2)

    def mse(x, y):
        return ((x - y) ** 2).sum(-1)[:, 5:].mean()
    assert mse(mu, exact) < 0.05 * mse(exact, truth)
    assert mse(mu, truth) < 1.05 * mse(exact, truth)
    assert mse(mu, truth) < mse(emas, truth) and mse(mu, truth) < mse(obs / k, truth)


def test_filter_weight_and_effective_sample_size():
    game = game_of(2)
    pi_l = TabularLocalPolicy.uniform(2, 3, 2)
    filt = PopulationFilter.for_game(game, pi_l, n_agents=1000, k=5)
    assert filt.prior_ess == pytest.approx(1.5)  # S_l c for the Dirichlet(0.5) initial population
    assert filt.sample_precision == pytest.approx(5 * 999 / 995)
    state = filt.start(1)
    state = filt.update(state, np.array([0]), np.array([[5, 0, 0]]))
    w = filt.sample_precision / (1.5 + filt.sample_precision)  # no prediction before the first sample
    assert np.allclose(state.mu[0], (1 - w) / 3 + w * np.array([1, 0, 0]))
    for _ in range(200):
        state = filt.update(state, np.array([1]), np.array([[1, 2, 2]]))
    # pooled over many samples; above n is possible: it is the precision about the current histogram,
    # which given the last one is only uncertain by the n robots' own moves (ess -> about n / q + k')
    assert state.ess[0] > 20 * filt.sample_precision
    full = PopulationFilter.for_game(game, pi_l, n_agents=10, k=10)
    s = full.update(full.update(full.start(1), np.array([0]), np.array([[2, 3, 5]])), np.array([1]),
                    np.array([[4, 4, 2]]))
    assert np.allclose(s.mu[0], [0.4, 0.4, 0.2])  # k = n: the sample is the population


def test_pooled_observer_draws_the_same_samples_as_the_plain_one():
    game = game_of(3)
    pi_l = TabularLocalPolicy.uniform(2, 3, 2)
    filt = PopulationFilter.for_game(game, pi_l, n_agents=50, k=50)  # k = n: the filter is the histogram
    observer = PooledObserver(filt, 50)
    table = np.random.default_rng(0).integers(0, 2, (2, observer.n_observations))
    pooled = table_rollouts(game, table, observer, pi_l, 4, n_agents=50, horizon=10, n_episodes=8)
    plain = table_rollouts(game, table, KSampleObserver(50, 3), pi_l, 4, n_agents=50, horizon=10, n_episodes=8)
    assert np.array_equal(pooled.obs, plain.obs) and np.allclose(pooled.returns, plain.returns)
    assert np.array_equal(discretise(np.array([[0.5, 0.25, 0.25]]), 4), cv.rank(np.array([[2, 1, 1]]), 4))
