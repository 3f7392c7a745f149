"""The two best-response steps of the alternation with neural policies, trained on return.

G-step (the paper's G-LEARN, Algorithm 1, with a policy gradient in place of value iteration): the robots'
greedy pi_l is frozen; the dispatcher's stochastic pi_g(a_g | s_g, histogram of k sampled robots) is
trained by PPO on the return of the whole subsampled system, r_g + (1/n) sum_i r_l, over the evaluation
horizon. Not the authors' supervised step on start-state labels.

L-step (L-LEARN on the representative-agent MDP, Algorithm 2): the dispatcher's greedy pi_g (with its
k-sample) is frozen; in each system `learners` robots drawn at random are representative agents acting
with the stochastic pi_l(a_l | s_g, s_l), all others act greedily with the current pi_l (the deployed
policy); PPO on the representative agents' own r_l. Every representative agent is an unbiased sample of
the representative-agent MDP, because a robot influences s_g only through its 1/n share of the
dispatcher's k-sample.

`grid` > 0: the frozen or non-learning robots act by the greedy pi_l tabulated on a grid x grid lattice of
(s_g, s_l) (nearest point), so simulating 500 robots costs a gather, not 500 network passes; grid = 0:
the exact network. Evaluations on the protocol always use the exact network.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from altmarl_ros.marl.continuous import env as wh
from altmarl_ros.marl.continuous import ppo
from altmarl_ros.marl.continuous.nets import (
    MLP,
    ActorCritic,
    features_g,
    features_l,
    greedy,
    mlp,
    robot_table,
    table_lookup,
    with_time,
)


def _robots(env: wh.ContinuousWarehouse, pi_l: MLP, grid: int):
    """The greedy robots as a function (s_g (B, 1), s_l (B, n)) -> (B, n) actions."""
    if grid <= 0:
        return lambda s_g, s_l: greedy(pi_l, features_l(s_g, s_l))
    table = robot_table(pi_l, env.low, env.high, grid)
    return lambda s_g, s_l: table_lookup(table, env.low, env.high, s_g, s_l)


def _sample(key: jax.Array, logits: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    a = jax.random.categorical(key, logits)
    return a, jnp.take_along_axis(jax.nn.log_softmax(logits), a[..., None], axis=-1)[..., 0]


def _to_batch(x: jnp.ndarray, a: jnp.ndarray, logp: jnp.ndarray, v: jnp.ndarray, r: jnp.ndarray,
              gamma: float, lam: float) -> ppo.Batch:
    """(T, ...) trajectories -> a flat PPO batch; critic features get t / T."""
    horizon = x.shape[0]
    t = (jnp.arange(horizon, dtype=jnp.float32) / horizon).reshape((horizon,) + (1,) * (x.ndim - 2))
    adv, ret = ppo.gae(r, v, gamma, lam)
    x_v = with_time(x, jnp.broadcast_to(t, x.shape[:-1]))
    flat = lambda z: z.reshape((-1, *z.shape[x.ndim - 1:]))  # noqa: E731
    return ppo.Batch(flat(x), flat(x_v), flat(a), flat(logp), flat(adv), flat(ret))


@partial(jax.jit, static_argnames=("env", "k", "cfg", "grid"))
def collect_global(env: wh.ContinuousWarehouse, k: int, cfg: ppo.PPOConfig, grid: int, ac_g: ActorCritic,
                   pi_l: MLP, key: jax.Array) -> tuple[ppo.Batch, jnp.ndarray]:
    """`cfg.envs` systems x `cfg.horizon` steps of the stochastic pi_g against greedy robots ->
    (batch, (envs,) discounted system returns)."""
    robots = _robots(env, pi_l, grid)
    k_reset, k_run = jax.random.split(key)
    scale = 1.0 / env.reward_range

    def body(state: wh.EnvState, tk: tuple[jnp.ndarray, jax.Array]):
        t, key_t = tk
        k_h, k_a, k_s = jax.random.split(key_t, 3)
        x = features_g(state.s_g, wh.histogram(env, state.s_l, k, k_h))
        a_g, logp = _sample(k_a, mlp(ac_g.pi, x))
        v = mlp(ac_g.v, with_time(x, t / cfg.horizon))[:, 0]
        out = wh.step(env, state, a_g, robots(state.s_g[:, None], state.s_l), k_s)
        return out.state, (x, a_g, logp, v, out.reward)

    ts = jnp.arange(cfg.horizon, dtype=jnp.float32)
    state0 = wh.reset(env, k_reset, cfg.envs)
    _, (x, a, logp, v, r) = jax.lax.scan(body, state0, (ts, jax.random.split(k_run, cfg.horizon)))
    disc = env.gamma ** jnp.arange(cfg.horizon, dtype=jnp.float32)
    return _to_batch(x, a, logp, v, r * scale, env.gamma, cfg.gae_lambda), (disc[:, None] * r).sum(0)


@partial(jax.jit, static_argnames=("env", "k", "cfg", "grid", "committed"))
def collect_local(env: wh.ContinuousWarehouse, k: int, cfg: ppo.PPOConfig, grid: int, pi_g: MLP,
                  ac_l: ActorCritic, key: jax.Array, committed: bool = False) -> tuple[ppo.Batch, jnp.ndarray]:
    """`cfg.envs` systems x `cfg.horizon` steps, `cfg.learners` representative robots each ->
    (batch, (envs, learners) discounted r_l returns). committed: instead of pi_g, a dispatcher that
    draws a uniform target per system at reset and keeps it (the "l_first" start)."""
    robots = _robots(env, ac_l.pi, grid)
    k_reset, k_pick, k_run = jax.random.split(key, 3)
    fixed_target = jax.random.randint(jax.random.fold_in(k_pick, 1), (cfg.envs,), 0, env.n_ga)
    state0 = wh.reset(env, k_reset, cfg.envs)
    _, idx = jax.lax.top_k(jax.random.uniform(k_pick, (cfg.envs, env.n_agents)), cfg.learners)
    rows = jnp.arange(cfg.envs)[:, None]
    scale = 1.0 / env.reward_range

    def body(state: wh.EnvState, tk: tuple[jnp.ndarray, jax.Array]):
        t, key_t = tk
        k_h, k_a, k_s = jax.random.split(key_t, 3)
        a_g = greedy(pi_g, features_g(state.s_g, wh.histogram(env, state.s_l, k, k_h)))
        a_g = fixed_target if committed else a_g
        x = features_l(state.s_g[:, None], jnp.take_along_axis(state.s_l, idx, axis=1))
        a_rep, logp = _sample(k_a, mlp(ac_l.pi, x))
        v = mlp(ac_l.v, with_time(x, t / cfg.horizon))[..., 0]
        a_l = robots(state.s_g[:, None], state.s_l).at[rows, idx].set(a_rep)
        out = wh.step(env, state, a_g, a_l, k_s)
        return out.state, (x, a_rep, logp, v, jnp.take_along_axis(out.r_l, idx, axis=1))

    ts = jnp.arange(cfg.horizon, dtype=jnp.float32)
    _, (x, a, logp, v, r) = jax.lax.scan(body, state0, (ts, jax.random.split(k_run, cfg.horizon)))
    disc = env.gamma ** jnp.arange(cfg.horizon, dtype=jnp.float32)
    return _to_batch(x, a, logp, v, r * scale, env.gamma, cfg.gae_lambda), (disc[:, None, None] * r).sum(0)


class StepStats(NamedTuple):
    """Training curve of one best-response step: mean discounted return (the learner's own objective,
    stochastic policy) and mean approximate KL per PPO iteration."""

    returns: tuple[float, ...]
    kls: tuple[float, ...]


def learn_global(env: wh.ContinuousWarehouse, k: int, cfg: ppo.PPOConfig, grid: int, ac_g: ActorCritic,
                 pi_l: MLP, key: jax.Array) -> tuple[ActorCritic, StepStats]:
    """G-step: PPO for pi_g from `ac_g` (continued training) against the frozen greedy pi_l."""
    opt_state = ppo.optimizer(cfg.lr, cfg.max_grad_norm).init(ac_g)
    rets, kls = [], []
    for key_i in jax.random.split(key, cfg.iterations):
        k_c, k_u = jax.random.split(key_i)
        batch, ret = collect_global(env, k, cfg, grid, ac_g, pi_l, k_c)
        ac_g, opt_state, kl = ppo.update(ac_g, opt_state, batch, k_u, cfg)
        rets.append(ret.mean())
        kls.append(kl)
    return ac_g, StepStats(tuple(np.asarray(rets).tolist()), tuple(np.asarray(kls).tolist()))


def learn_local(env: wh.ContinuousWarehouse, k: int, cfg: ppo.PPOConfig, grid: int, pi_g: MLP,
                ac_l: ActorCritic, key: jax.Array, committed: bool = False) -> tuple[ActorCritic, StepStats]:
    """L-step: PPO for pi_l from `ac_l` (continued training) against the frozen greedy pi_g (committed:
    against a dispatcher keeping a uniformly drawn target per episode, see `collect_local`)."""
    opt_state = ppo.optimizer(cfg.lr, cfg.max_grad_norm).init(ac_l)
    rets, kls = [], []
    for key_i in jax.random.split(key, cfg.iterations):
        k_c, k_u = jax.random.split(key_i)
        batch, ret = collect_local(env, k, cfg, grid, pi_g, ac_l, k_c, committed)
        ac_l, opt_state, kl = ppo.update(ac_l, opt_state, batch, k_u, cfg)
        rets.append(ret.mean())
        kls.append(kl)
    return ac_l, StepStats(tuple(np.asarray(rets).tolist()), tuple(np.asarray(kls).tolist()))
