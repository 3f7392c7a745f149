"""Named Nash-gap estimates of a trained continuous pair (the tabular names, `marl.gaps`).

Each gap is the paired gain V(deviation) - V(pi_g, pi_l) of ONE deviation found by continued training
from the final pair (PPO for `nash_gap.iterations` iterations, on training keys of its own), measured on
`nash_gap.episodes` fresh episodes shared by both arms (same JAX key: same resets, samples and noise).
So each is an unbiased estimate (mean +- stderr) of the gain of the deviation found, i.e. of a LOWER
BOUND of the corresponding best-response gap (the search may miss a better deviation); it may be
negative when continued training found nothing better.

- `gap_g_restricted`: the dispatcher deviates within its own class (same k), system value.
- `gap_g_full`: the dispatcher deviates to one observing the whole population (k = n), system value.
- `gap_l_unilateral`: one robot (uniform per episode) deviates, n - 1 keep pi_l; that robot's own
  discounted r_l (the representative agent's objective).
- `gap_l_shared`: every robot switches to the deviation; system value.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from altmarl_ros.marl.continuous import env as wh
from altmarl_ros.marl.continuous import learners as br
from altmarl_ros.marl.continuous.evaluate import greedy_rollouts, robots_of
from altmarl_ros.marl.continuous.nets import MLP, ActorCritic, features_g, features_l, greedy
from altmarl_ros.marl.continuous.settings import ContinuousConfig
from altmarl_ros.marl.sim import Estimate

GAP_DOMAIN = 0x6A95_0000  # keys of the gap searches and their fresh episodes


@partial(jax.jit, static_argnames=("env", "k", "horizon", "n_rollouts"))
def tagged_returns(env: wh.ContinuousWarehouse, k: int, horizon: int, n_rollouts: int, pi_g: MLP, pi_l: MLP,
                   pi_dev: MLP, key: jax.Array) -> jnp.ndarray:
    """(R,) discounted r_l of one robot per system (uniform index) acting greedily with pi_dev while
    the others act greedily with pi_l."""
    k_reset, k_tag, k_run = jax.random.split(key, 3)
    state0 = wh.reset(env, k_reset, n_rollouts)
    tag = jax.random.randint(k_tag, (n_rollouts, 1), 0, env.n_agents)
    rows = jnp.arange(n_rollouts)[:, None]

    def body(carry: tuple[wh.EnvState, jnp.ndarray], t_key: tuple[jnp.ndarray, jax.Array]):
        state, ret = carry
        t, key_t = t_key
        k_h, k_s = jax.random.split(key_t)
        a_g = greedy(pi_g, features_g(env, state.s_g, wh.histogram(env, state.s_l, k, k_h)))
        own = jnp.take_along_axis(state.s_l, tag, axis=1)
        a_l = greedy(pi_l, features_l(env, state.s_g[:, None], state.s_l))
        a_l = a_l.at[rows, tag].set(greedy(pi_dev, features_l(env, state.s_g[:, None], own)))
        out = wh.step(env, state, a_g, a_l, k_s)
        return (out.state, ret + env.gamma**t * jnp.take_along_axis(out.r_l, tag, axis=1)[:, 0]), None

    ts = jnp.arange(horizon, dtype=jnp.float32)
    (_, ret), _ = jax.lax.scan(body, (state0, jnp.zeros(n_rollouts)), (ts, jax.random.split(k_run, horizon)))
    return ret


class Gaps(NamedTuple):
    gap_g_restricted: Estimate
    gap_g_full: Estimate
    gap_l_unilateral: Estimate
    gap_l_shared: Estimate

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {name: est._asdict() for name, est in self._asdict().items()}


def _diff(a: jnp.ndarray, b: jnp.ndarray) -> Estimate:
    return Estimate.of(np.asarray(a, np.float64) - np.asarray(b, np.float64))


def nash_gaps(cfg: ContinuousConfig, k: int, ac_g: ActorCritic, ac_l: ActorCritic, seed: int) -> Gaps:
    """The four gaps of (ac_g, ac_l) at budget k (module doc); `seed` picks the search and episode keys."""
    env, h, m = cfg.env, cfg.horizon, cfg.nash_gap.episodes
    base = jax.random.fold_in(jax.random.key(GAP_DOMAIN), seed)
    k_sg, k_sf, k_sl, k_ev = jax.random.split(base, 4)
    its = cfg.nash_gap.iterations
    robots = robots_of(env, ac_l.pi, cfg.grid)  # the searches simulate the robots as training does
    dev_g, _ = br.learn_global(env, k, cfg.g_step, ac_g, robots, k_sg, its)
    dev_full, _ = br.learn_global(env, env.n_agents, cfg.g_step, ac_g, robots, k_sf, its)
    dev_l, _ = br.learn_local(env, k, cfg.l_step, ac_g.pi, ac_l, robots, k_sl, iterations=its)
    base_v = greedy_rollouts(env, k, h, m, ac_g.pi, ac_l.pi, k_ev).returns
    g_restricted = _diff(greedy_rollouts(env, k, h, m, dev_g.pi, ac_l.pi, k_ev).returns, base_v)
    g_full = _diff(greedy_rollouts(env, env.n_agents, h, m, dev_full.pi, ac_l.pi, k_ev).returns, base_v)
    l_shared = _diff(greedy_rollouts(env, k, h, m, ac_g.pi, dev_l.pi, k_ev).returns, base_v)
    own_base = tagged_returns(env, k, h, m, ac_g.pi, ac_l.pi, ac_l.pi, k_ev)
    l_unilateral = _diff(tagged_returns(env, k, h, m, ac_g.pi, ac_l.pi, dev_l.pi, k_ev), own_base)
    return Gaps(g_restricted, g_full, l_unilateral, l_shared)
