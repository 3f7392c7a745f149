"""The continuous warehouse of the authors' function-approximation experiment (PAPER.md 4.3), in JAX.

One dispatcher and n robots on the line [low, high] = [-2, 2]. The dispatcher's action a_g picks one of
5 targets tau (the centres of 5 equal bins over the line); each robot's action a_l moves it by
delta in (0, +0.05, -0.05). With eps ~ N(0, 1) drawn fresh for every state variable:

    s_g' = clip(s_g + steer (tau_{a_g} - s_g) + sigma_g eps),   s_l' = clip(s_l + delta_{a_l} + sigma_l eps)
    r_g  = A_g exp(-(s_g - tau_{a_g})^2 / (2 w_g^2)),  r_l = A_l exp(-(s_l - s_g)^2 / (2 w_l^2)) - c |delta_{a_l}|
    r    = r_g + (1/n) sum_i r_l(s_l_i, s_g, a_l_i)   (both rewards on the state before the step)

Reset: s_g ~ U(-1, 1); two distinct bins drawn uniformly, floor(0.55 n) robots ~ N(c_main, 0.18^2) and the
rest ~ N(c_second, 0.18^2), clipped. The dispatcher observes s_g and the normalised 5-bin histogram of k
robots drawn without replacement afresh at every step (np.histogram's bins: [e_j, e_{j+1}), the last bin
closed). The authors' code has a local drift term with coefficient 0 (so the order in which s_g and s_l
are updated does not matter) and does not shuffle the robots after reset in any way that matters here
(robots are exchangeable and every sample is a fresh uniform subset), so neither appears here.

Shapes: a batch of B independent systems; s_g (B,), s_l (B, n). Randomness: explicit JAX keys.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from altmarl_ros.marl.continuous.warehouse import ContinuousWarehouse, bin_of


def tau(env: ContinuousWarehouse) -> jnp.ndarray:
    """(n_bins,) the targets as a JAX array (indexable by traced actions)."""
    return jnp.asarray(env.targets)


class EnvState(NamedTuple):
    s_g: jnp.ndarray  # (B,)
    s_l: jnp.ndarray  # (B, n)
    mode: jnp.ndarray  # (B,) int: the bin of the larger cluster's centre at reset (the authors' "true mode" label)


def reset(env: ContinuousWarehouse, key: jax.Array, batch: int) -> EnvState:
    """A batch of fresh systems (PAPER.md 4.3 reset)."""
    k_g, k_pair, k_l = jax.random.split(key, 3)
    s_g = jax.random.uniform(k_g, (batch,), minval=-env.start_g, maxval=env.start_g)
    order = jnp.argsort(jax.random.uniform(k_pair, (batch, env.n_bins)), axis=1)  # a uniform permutation
    main, second = order[:, 0], order[:, 1]
    n_main = int(env.major_share * env.n_agents)
    is_main = jnp.arange(env.n_agents) < n_main
    centre = jnp.where(is_main[None, :], tau(env)[main][:, None], tau(env)[second][:, None])
    s_l = centre + env.cluster_sigma * jax.random.normal(k_l, (batch, env.n_agents))
    return EnvState(s_g, jnp.clip(s_l, env.low, env.high), main)


def reward_global(env: ContinuousWarehouse, s_g: jnp.ndarray, a_g: jnp.ndarray) -> jnp.ndarray:
    """r_g(s_g, a_g), elementwise."""
    return env.r_g_scale * jnp.exp(-((s_g - tau(env)[a_g]) ** 2) / (2 * env.r_g_width**2))


def reward_local(env: ContinuousWarehouse, s_l: jnp.ndarray, s_g: jnp.ndarray, a_l: jnp.ndarray) -> jnp.ndarray:
    """r_l(s_l, s_g, a_l), elementwise (s_g broadcast against s_l by the caller)."""
    delta = jnp.asarray(env.offsets, dtype=jnp.float32)[a_l]
    return env.align_scale * jnp.exp(-((s_l - s_g) ** 2) / (2 * env.align_width**2)) - env.move_cost * jnp.abs(delta)


class Step(NamedTuple):
    state: EnvState
    reward: jnp.ndarray  # (B,) r_g + mean_i r_l
    r_l: jnp.ndarray  # (B, n) each robot's r_l


def step(env: ContinuousWarehouse, state: EnvState, a_g: jnp.ndarray, a_l: jnp.ndarray, key: jax.Array) -> Step:
    """One transition of B systems: a_g (B,), a_l (B, n) -> next state and the rewards of this step."""
    k_g, k_l = jax.random.split(key)
    s_g, s_l = state.s_g, state.s_l
    r_l = reward_local(env, s_l, s_g[:, None], a_l)
    reward = reward_global(env, s_g, a_g) + r_l.mean(axis=1)
    s_g_next = s_g + env.steer * (tau(env)[a_g] - s_g) + env.sigma_g * jax.random.normal(k_g, s_g.shape)
    delta = jnp.asarray(env.offsets, dtype=jnp.float32)[a_l]
    s_l_next = s_l + delta + env.sigma_l * jax.random.normal(k_l, s_l.shape)
    nxt = EnvState(jnp.clip(s_g_next, env.low, env.high), jnp.clip(s_l_next, env.low, env.high), state.mode)
    return Step(nxt, reward, r_l)


def bins_of(env: ContinuousWarehouse, s: jnp.ndarray) -> jnp.ndarray:
    """Histogram bin of each position (np.histogram over linspace(low, high, n_bins + 1)), int, same shape."""
    return bin_of(jnp, env, s)


def bin_counts(env: ContinuousWarehouse, s_l: jnp.ndarray) -> jnp.ndarray:
    """(B, n) -> (B, n_bins) int32: robots per histogram bin."""
    return jax.nn.one_hot(bins_of(env, s_l), env.n_bins, dtype=jnp.int32).sum(axis=1)


def _cumsum(x: jnp.ndarray) -> jnp.ndarray:
    """Cumulative sum over the last axis (length L) as a product with a triangular matrix: O(L^2) per row, but
    on XLA's CPU backend 2-3x faster than jnp.cumsum for the L <= n / 2 + 1 of `hypergeometric`."""
    return x @ jnp.triu(jnp.ones((x.shape[-1], x.shape[-1]), x.dtype))


def hypergeometric(key: jax.Array, total: jnp.ndarray, good: jnp.ndarray, draws: jnp.ndarray,
                   support: int) -> jnp.ndarray:
    """Number of marked items among `draws` drawn without replacement from `total` items of which `good` are
    marked (int arrays of one shape), by inverse transform on the exact pmf over the at most `support` + 1
    values x_min ... x_min + support, x_min = max(0, draws - (total - good)); `support` (static) must be >=
    min(good, draws) - x_min. The pmf comes from its ratio p(x + 1) / p(x) = (good - x)(draws - x) /
    ((x + 1)(total - good - draws + x + 1)), accumulated in logs (no factorials: float32 stays exact to ~1e-5;
    log 0 is -1e9, not -inf, which the triangular product of `_cumsum` would turn into 0 * inf = nan)."""
    x_min = jnp.maximum(0, draws - (total - good))
    x = (x_min[..., None] + jnp.arange(support, dtype=jnp.int32)).astype(jnp.float32)  # x -> x + 1 for each step
    num = (good[..., None] - x) * (draws[..., None] - x)
    den = (x + 1) * ((total - good - draws)[..., None] + x + 1)
    log_ratio = jnp.where(num > 0, jnp.log(jnp.maximum(num, 1.0)) - jnp.log(jnp.maximum(den, 1.0)), -1e9)
    log_w = jnp.concatenate([jnp.zeros_like(log_ratio[..., :1]), _cumsum(log_ratio)], axis=-1)
    cdf = _cumsum(jnp.exp(log_w - log_w.max(axis=-1, keepdims=True)))
    u = jax.random.uniform(key, total.shape) * cdf[..., -1]
    x_max = jnp.minimum(good, draws)
    return jnp.minimum(x_min + (cdf < u[..., None]).sum(axis=-1).astype(jnp.int32), x_max)


def histogram(env: ContinuousWarehouse, s_l: jnp.ndarray, k: int, key: jax.Array) -> jnp.ndarray:
    """(B, n) -> (B, n_bins): normalised histogram of k robots drawn without replacement per system
    (k >= n: the whole population). Only the sample's bin counts matter, and their law is the multivariate
    hypergeometric given the population's counts, drawn bin by bin (`hypergeometric`; for k > n / 2 the
    n - k robots left out are drawn instead): the same law as the counts of a uniform k-subset of the robots,
    at a cost independent of n after the population's counts (a top-k over n uniforms per row cost 4x more at
    n = 500, k = 75, bench/README 13.3)."""
    n = env.n_agents
    counts = bin_counts(env, s_l)
    if k >= n:
        return counts.astype(jnp.float32) / n
    m = min(k, n - k)  # draw the smaller of the sample and its complement
    left = jnp.full(counts.shape[:1], n, jnp.int32)
    draws = jnp.full(counts.shape[:1], m, jnp.int32)
    keys = jax.random.split(key, env.n_bins - 1)
    drawn = []
    for j in range(env.n_bins - 1):
        x = hypergeometric(keys[j], left, counts[:, j], draws, m)
        drawn.append(x)
        left, draws = left - counts[:, j], draws - x
    drawn.append(draws)  # the last bin takes what is left of the draws
    sample = jnp.stack(drawn, axis=1)
    sample = sample if m == k else counts - sample
    return sample.astype(jnp.float32) / k


def value_scale(env: ContinuousWarehouse) -> float:
    """R / (1 - gamma): bounds the range of discounted values (the UPDATE rule's eta scale)."""
    return env.reward_range / (1 - env.gamma)


def full_mode(env: ContinuousWarehouse, s_l: jnp.ndarray) -> jnp.ndarray:
    """(B, n) -> (B,) the bin holding most robots (ties: lowest bin)."""
    return jnp.argmax(bin_counts(env, s_l), axis=1)

