"""Fidelity of the continuous warehouse to the authors' environment (PAPER.md 4.3, their
scripts/function_approximation/continuous_env.py and uniform_baseline.py at 1190c22)."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from altmarl_ros.marl.continuous import env as wh
from altmarl_ros.marl.continuous.evaluate import Protocol, evaluate_random

ENV = wh.ContinuousWarehouse()
STEP = jax.jit(wh.step, static_argnums=0)  # one compilation each instead of one per primitive
RESET = jax.jit(wh.reset, static_argnums=(0, 2))
HIST = jax.jit(wh.histogram, static_argnums=(0, 2))
Z = 4.5  # two-sided z bound for moment checks: with ~20 checks the chance of any false alarm is < 1e-4


def _state(s_g: float, s_l: np.ndarray, batch: int) -> wh.EnvState:
    return wh.EnvState(jnp.full((batch,), s_g, jnp.float32), jnp.tile(jnp.asarray(s_l, jnp.float32), (batch, 1)),
                      jnp.zeros((batch,), jnp.int32))


def test_constants_are_the_authors():
    np.testing.assert_allclose(np.asarray(ENV.targets), [-1.6, -0.8, 0.0, 0.8, 1.6], atol=1e-6)
    assert ENV.offsets == (0.0, 0.05, -0.05) and ENV.n_agents == 500 and ENV.gamma == 0.95
    assert math.isclose(ENV.discount_sum(50), (1 - 0.95**50) / 0.05)


def test_one_step_moments_and_rewards_match_the_formulas():
    batch = 20000
    s_l = np.array([-1.0, 0.35, 1.2, 0.0], np.float32)  # far enough from +-2 that clipping never acts
    state = _state(0.3, s_l, batch)
    a_g = jnp.full((batch,), 4)  # tau = 1.6
    a_l = jnp.tile(jnp.array([0, 1, 2, 1]), (batch, 1))
    out = STEP(ENV, state, a_g, a_l, jax.random.key(11))
    sg1 = np.asarray(out.state.s_g, np.float64)
    mean_g = 0.3 + 0.6 * (1.6 - 0.3)
    assert abs(sg1.mean() - mean_g) < Z * 0.08 / math.sqrt(batch)
    # sample variance of n normals: sd(var_hat) = sigma^2 sqrt(2 / (n - 1))
    assert abs(sg1.var(ddof=1) - 0.08**2) < Z * 0.08**2 * math.sqrt(2 / (batch - 1))
    sl1 = np.asarray(out.state.s_l, np.float64)
    delta = np.array([0.0, 0.05, -0.05, 0.05])
    assert np.all(np.abs(sl1.mean(0) - (s_l + delta)) < Z * 0.04 / math.sqrt(batch))
    assert np.all(np.abs(sl1.var(0, ddof=1) - 0.04**2) < Z * 0.04**2 * math.sqrt(2 / (batch - 1)))
    # independence of the noise across robots and of s_g: correlations ~ N(0, 1 / n)
    corr = np.corrcoef(np.column_stack([sg1, sl1]).T)
    assert np.all(np.abs(corr[np.triu_indices(5, 1)]) < Z / math.sqrt(batch))
    # rewards are deterministic functions of the state before the step
    r_g = 5 * math.exp(-((0.3 - 1.6) ** 2) / (2 * 0.3**2))
    r_l = 10 * np.exp(-((s_l - 0.3) ** 2) / (2 * 0.2**2)) - 5 * np.abs(delta)
    np.testing.assert_allclose(np.asarray(out.r_l[0]), r_l, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(out.reward), r_g + r_l.mean(), rtol=1e-5)


def test_transitions_clip_to_the_line():
    state = _state(1.99, np.array([1.99, -1.99]), 4000)
    out = STEP(ENV, state, jnp.full((4000,), 4), jnp.tile(jnp.array([1, 2]), (4000, 1)), jax.random.key(3))
    assert np.all(np.abs(np.asarray(out.state.s_g)) <= 2.0)
    x = np.asarray(out.state.s_l)
    assert x.max() <= 2.0 and x.min() >= -2.0 and (np.abs(x) == 2.0).mean() > 0.5  # P(clip) = P(N > -0.04 / 0.04)


def test_reset_two_clusters_55_45():
    state = RESET(ENV, jax.random.key(5), 400)
    s_g, s_l, mode = (np.asarray(x) for x in state)
    assert np.all(np.abs(s_g) <= 1.0) and abs(s_g.mean()) < Z * (2 / math.sqrt(12)) / math.sqrt(400)
    assert np.all(np.abs(s_l) <= 2.0)
    targets = np.asarray(ENV.targets)
    main = s_l[:, :275]  # int(0.55 * 500) robots in the larger cluster, centred on the "mode" bin
    assert np.all(np.abs(np.median(main, axis=1) - targets[mode]) < 0.06)
    second = np.median(s_l[:, 275:], axis=1)
    seconds = np.abs(second[:, None] - targets[None, :]).argmin(1)
    assert np.all(seconds != mode)  # two distinct bins
    # the pair is uniform over ordered pairs of distinct bins: the mode bin is uniform over 5
    counts = np.bincount(mode, minlength=5)
    chi2 = ((counts - 80) ** 2 / 80).sum()
    assert chi2 < 18.47  # chi^2_4 quantile at 0.999
    inside = np.abs(targets[mode]) < 1.0  # clusters away from the clip
    assert abs((main[inside] - targets[mode][inside, None]).std() - 0.18) < 0.01


def test_histogram_bins_as_numpy_and_samples_without_replacement():
    # +-2 matter (clipped robots sit exactly there; np.histogram closes the last bin); interior edges are
    # hit with probability 0 by continuous states (and float32 vs float64 rounding differs there)
    x = np.concatenate([np.array([-2.0, 2.0, 2.0]), np.random.default_rng(0).uniform(-2, 2, 497)]).astype(np.float32)
    np.testing.assert_array_equal(np.bincount(np.asarray(wh.bins_of(ENV, jnp.asarray(x, jnp.float32))), minlength=5),
                                  np.histogram(x, bins=np.linspace(-2, 2, 6))[0])
    pop = np.full((200, 500), 1.7, np.float32)
    pop[:, :5] = -1.7  # 5 robots in bin 0
    h = np.asarray(HIST(ENV, jnp.asarray(pop), 499, jax.random.key(1)))
    counts0 = np.rint(h[:, 0] * 499)
    assert set(np.unique(counts0)) <= {4.0, 5.0}  # leaving out one robot: without replacement
    assert 0 < (counts0 == 4).mean() < 0.1  # each robot is left out with probability 1 / 500
    h = np.asarray(HIST(ENV, jnp.asarray(pop), 500, jax.random.key(1)))
    np.testing.assert_allclose(h[:, 0], 5 / 500, rtol=1e-6)
    h1 = np.asarray(HIST(ENV, jnp.asarray(pop[:1].repeat(20000, 0)), 1, jax.random.key(2)))
    p = 5 / 500
    assert abs(h1[:, 0].mean() - p) < Z * math.sqrt(p * (1 - p) / 20000)


@pytest.mark.parametrize("k", [5, 9])  # 9 > n / 2: the 3 robots left out are drawn instead
def test_sampled_histogram_follows_the_multivariate_hypergeometric_law(k):
    """The counts of k robots drawn without replacement from bins holding C robots have the law
    prod_j C(C_j, x_j) / C(n, k) over sum_j x_j = k: every outcome appears, and a chi-square test over all of
    them does not reject at the 0.001 level."""
    from scipy.stats import chi2

    env = wh.ContinuousWarehouse(n_agents=12)
    C = [3, 4, 1, 2, 2]  # robots per bin
    pos = np.repeat(np.asarray(env.targets), C).astype(np.float32)
    draws = 60_000
    h = np.asarray(jax.jit(wh.histogram, static_argnums=(0, 2))(env, jnp.tile(jnp.asarray(pos), (draws, 1)), k,
                                                               jax.random.key(1)))
    counts = np.rint(h * k).astype(int)
    assert np.all(counts.sum(axis=1) == k) and np.all(counts <= C)
    outcomes = [x for x in itertools.product(*(range(c + 1) for c in C)) if sum(x) == k]
    p = np.array([math.prod(math.comb(c, x) for c, x in zip(C, xs, strict=True)) for xs in outcomes]) / math.comb(12, k)
    assert abs(p.sum() - 1) < 1e-12
    seen = {tuple(x): m for x, m in zip(*np.unique(counts, axis=0, return_counts=True), strict=True)}
    observed = np.array([seen.get(xs, 0) for xs in outcomes])
    assert observed.sum() == draws and np.all(observed > 0)
    stat = ((observed - draws * p) ** 2 / (draws * p)).sum()
    assert stat < chi2.ppf(0.999, len(outcomes) - 1), stat


def test_hypergeometric_pmf_at_the_authors_scale():
    """One bin's count at n = 500, k = 75 (the sweep's largest budget): frequencies within 4.5 stderr of the
    exact pmf at every value with probability > 1e-4."""
    from scipy.stats import hypergeom

    total, good, draws = 500, 137, 75
    x = np.asarray(jax.jit(wh.hypergeometric, static_argnums=4)(
        jax.random.key(4), jnp.full(100_000, total), jnp.full(100_000, good), jnp.full(100_000, draws), draws))
    freq = np.bincount(x, minlength=draws + 1)[: draws + 1] / x.size
    p = hypergeom(total, good, draws).pmf(np.arange(draws + 1))
    big = p > 1e-4
    assert np.all(np.abs(freq - p)[big] < Z * np.sqrt(p * (1 - p) / x.size)[big])
    assert freq[~big].sum() < 5e-3


def test_random_policy_value_matches_the_authors():
    """Their uniform_baseline.py: 37.8 +- 10.9 (std over 10 seeds x 30 rollouts, horizon 50). The two
    estimates are independent, so their difference has stderr sqrt(se_ours^2 + (10.9 / sqrt(300))^2)."""
    res = evaluate_random(ENV, Protocol(10, 30, 50))
    assert res.returns.shape == (10, 30)
    x = res.returns.ravel()
    assert abs(x.std() - 10.9) < 0.2 * 10.9  # the spread of single rollouts agrees too
    se = math.hypot(res.stderr, 10.9 / math.sqrt(300))
    assert abs(res.mean - 37.8) < 3.0 * se, (res.mean, se)


def test_environment_rejects_bad_constants():
    with pytest.raises(ValueError, match=r"env\.sigma_g"):
        wh.ContinuousWarehouse(sigma_g=0.0)
    with pytest.raises(ValueError, match=r"env\.gamma"):
        wh.ContinuousWarehouse(gamma=1.0)


def test_policy_features_in_numpy_and_jax():
    """The networks' inputs (warehouse.features_g / features_l): the one-hot marks the target nearest s_g, the
    last robot feature is that target's offset; NumPy (the nodes) and JAX (training) compute the same."""
    from altmarl_ros.marl.continuous import warehouse

    rng = np.random.default_rng(3)
    s_g, s_l = rng.uniform(-2, 2, (2, 1000)).astype(np.float32)
    hist = rng.dirichlet(np.ones(5), 1000).astype(np.float32)
    nearest = np.abs(s_g[:, None] - ENV.targets[None, :]).argmin(axis=1)
    x_g = warehouse.features_g(np, ENV, s_g, hist)
    assert x_g.shape == (1000, warehouse.n_features_g(ENV)) and x_g.dtype == np.float32
    np.testing.assert_array_equal(x_g[:, 0], s_g)
    np.testing.assert_array_equal(x_g[:, 1:6], hist)
    np.testing.assert_array_equal(x_g[:, 6:].argmax(axis=1), nearest)
    np.testing.assert_array_equal(x_g[:, 6:].sum(axis=1), 1.0)
    x_l = warehouse.features_l(np, ENV, s_g, s_l)
    assert x_l.shape == (1000, warehouse.N_FEATURES_L)
    np.testing.assert_allclose(x_l, np.stack([s_g, s_l, s_g - s_l, ENV.targets[nearest] - s_l], axis=1), atol=1e-6)
    np.testing.assert_allclose(np.asarray(warehouse.features_g(jnp, ENV, jnp.asarray(s_g), jnp.asarray(hist))), x_g)
    np.testing.assert_allclose(np.asarray(warehouse.features_l(jnp, ENV, jnp.asarray(s_g), jnp.asarray(s_l))), x_l,
                               atol=1e-6)
