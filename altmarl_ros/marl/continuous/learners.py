"""The two best-response steps of the alternation with neural policies, trained on return.

G-step (the paper's G-LEARN, Algorithm 1, with a policy gradient in place of value iteration): the robots'
greedy pi_l is frozen; the dispatcher's stochastic pi_g(a_g | s_g, histogram of k sampled robots) is
trained by PPO on the return of the whole subsampled system, r_g + (1/n) sum_i r_l, over the evaluation
horizon. Not the authors' supervised step on start-state labels.

L-step (L-LEARN on the representative-agent MDP, Algorithm 2): the dispatcher's greedy pi_g (with its
k-sample) is frozen; in each system `learners` robots drawn at random are representative agents acting
with the stochastic pi_l(a_l | s_g, s_l), all others act greedily with the incumbent pi_l (the step's
start: the population whose MDP the step solves); PPO on the representative agents' own r_l. Every
representative agent is an unbiased sample of the representative-agent MDP, because a robot influences
s_g only through its 1/n share of the dispatcher's k-sample.

The frozen or non-learning robots come as `evaluate.Robots` (`robots_of`: with the training grid, the
greedy pi_l tabulated once, so simulating 500 robots costs a gather, not 500 network passes; the loop passes
the table it already holds). A PPO iteration (collection and update) is one compiled program, called once per
iteration, so steps of any length share it.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from altmarl_ros.marl.continuous import compile_cache, ppo
from altmarl_ros.marl.continuous import env as wh
from altmarl_ros.marl.continuous.evaluate import Robots, robot_actions
from altmarl_ros.marl.continuous.nets import (
    MLP,
    ActorCritic,
    features_g,
    features_l,
    greedy,
    mlp,
    with_time,
)


def _sample(key: jax.Array, logits: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    a = jax.random.categorical(key, logits)
    return a, jnp.take_along_axis(jax.nn.log_softmax(logits), a[..., None], axis=-1)[..., 0]


def _to_batch(critic: MLP, x: jnp.ndarray, a: jnp.ndarray, logp: jnp.ndarray, r: jnp.ndarray,
              gamma: float, lam: float) -> ppo.Batch:
    """(T, ...) trajectories -> a flat PPO batch; the critic reads the features and t / T, evaluated here on
    the whole trajectory at once (one product per layer instead of one per step)."""
    horizon = x.shape[0]
    t = (jnp.arange(horizon, dtype=jnp.float32) / horizon).reshape((horizon,) + (1,) * (x.ndim - 2))
    x_v = with_time(x, jnp.broadcast_to(t, x.shape[:-1]))
    adv, ret = ppo.gae(r, mlp(critic, x_v)[..., 0], gamma, lam)
    flat = lambda z: z.reshape((-1, *z.shape[x.ndim - 1:]))  # noqa: E731
    return ppo.Batch(flat(x), flat(x_v), flat(a), flat(logp), flat(adv), flat(ret))


def collect_global(env: wh.ContinuousWarehouse, k: int, cfg: ppo.PPOConfig, robots: Robots, ac_g: ActorCritic,
                   key: jax.Array) -> tuple[ppo.Batch, jnp.ndarray]:
    """`cfg.envs` systems x `cfg.horizon` steps of the stochastic pi_g against the greedy `robots`
    (`evaluate.robots_of`) -> (batch, (envs,) discounted system returns). Traced inside `_global_iteration`."""
    k_reset, k_run = jax.random.split(key)
    scale = 1.0 / env.reward_range

    def body(state: wh.EnvState, key_t: jax.Array):
        k_h, k_a, k_s = jax.random.split(key_t, 3)
        x = features_g(env, state.s_g, wh.histogram(env, state.s_l, k, k_h))
        a_g, logp = _sample(k_a, mlp(ac_g.pi, x))
        out = wh.step(env, state, a_g, robot_actions(env, robots, state.s_g[:, None], state.s_l), k_s)
        return out.state, (x, a_g, logp, out.reward)

    state0 = wh.reset(env, k_reset, cfg.envs)
    _, (x, a, logp, r) = jax.lax.scan(body, state0, jax.random.split(k_run, cfg.horizon))
    disc = env.gamma ** jnp.arange(cfg.horizon, dtype=jnp.float32)
    return _to_batch(ac_g.v, x, a, logp, r * scale, env.gamma, cfg.gae_lambda), (disc[:, None] * r).sum(0)


def collect_local(env: wh.ContinuousWarehouse, k: int, cfg: ppo.PPOConfig, robots: Robots, pi_g: MLP,
                  ac_l: ActorCritic, key: jax.Array, committed: jnp.ndarray) -> tuple[ppo.Batch, jnp.ndarray]:
    """`cfg.envs` systems x `cfg.horizon` steps, `cfg.learners` representative robots each acting with the
    stochastic pi_l, the others with the greedy `robots` -> (batch, (envs, learners) discounted r_l
    returns). committed (bool scalar, traced): instead of pi_g, a dispatcher that draws a uniform target
    per system at reset and keeps it (the "l_first" start). Traced inside `_local_iteration`."""
    k_reset, k_pick, k_run = jax.random.split(key, 3)
    fixed_target = jax.random.randint(jax.random.fold_in(k_pick, 1), (cfg.envs,), 0, env.n_ga)
    state0 = wh.reset(env, k_reset, cfg.envs)
    _, idx = jax.lax.top_k(jax.random.uniform(k_pick, (cfg.envs, env.n_agents)), cfg.learners)
    rows = jnp.arange(cfg.envs)[:, None]
    scale = 1.0 / env.reward_range

    def body(state: wh.EnvState, key_t: jax.Array):
        k_h, k_a, k_s = jax.random.split(key_t, 3)
        a_g = greedy(pi_g, features_g(env, state.s_g, wh.histogram(env, state.s_l, k, k_h)))
        a_g = jnp.where(committed, fixed_target, a_g)
        x = features_l(env, state.s_g[:, None], jnp.take_along_axis(state.s_l, idx, axis=1))
        a_rep, logp = _sample(k_a, mlp(ac_l.pi, x))
        a_l = robot_actions(env, robots, state.s_g[:, None], state.s_l).at[rows, idx].set(a_rep)
        out = wh.step(env, state, a_g, a_l, k_s)
        return out.state, (x, a_rep, logp, jnp.take_along_axis(out.r_l, idx, axis=1))

    _, (x, a, logp, r) = jax.lax.scan(body, state0, jax.random.split(k_run, cfg.horizon))
    disc = env.gamma ** jnp.arange(cfg.horizon, dtype=jnp.float32)
    return _to_batch(ac_l.v, x, a, logp, r * scale, env.gamma, cfg.gae_lambda), (disc[:, None, None] * r).sum(0)


class StepStats(NamedTuple):
    """Training curve of one best-response step: mean discounted return (the learner's own objective,
    stochastic policy) and mean approximate KL per PPO iteration."""

    returns: tuple[float, ...]
    kls: tuple[float, ...]


def _iteration(cfg: ppo.PPOConfig, ac: ActorCritic, opt_state: optax.OptState, key: jax.Array, collect):
    """One PPO iteration: collect(ac, key) -> (batch, returns), then `ppo.update`;
    -> (ac, opt_state, mean return, mean KL)."""
    k_c, k_u = jax.random.split(key)
    batch, ret = collect(ac, k_c)
    ac, opt_state, kl = ppo.update(ac, opt_state, batch, k_u, cfg)
    return ac, opt_state, ret.mean(), kl


@partial(jax.jit, static_argnames=("env", "k", "cfg"))
def _global_iteration(env: wh.ContinuousWarehouse, k: int, cfg: ppo.PPOConfig, ac_g: ActorCritic,
                      opt_state: optax.OptState, robots: Robots, key_data: jnp.ndarray):
    return _iteration(cfg, ac_g, opt_state, jax.random.wrap_key_data(key_data),
                      lambda ac, k_c: collect_global(env, k, cfg, robots, ac, k_c))


@partial(jax.jit, static_argnames=("env", "k", "cfg"))
def _local_iteration(env: wh.ContinuousWarehouse, k: int, cfg: ppo.PPOConfig, ac_l: ActorCritic,
                     opt_state: optax.OptState, pi_g: MLP, robots: Robots, committed: jnp.ndarray,
                     key_data: jnp.ndarray):
    return _iteration(cfg, ac_l, opt_state, jax.random.wrap_key_data(key_data),
                      lambda ac, k_c: collect_local(env, k, cfg, robots, pi_g, ac, k_c, committed))


@partial(jax.jit, static_argnames=("cfg",))
def _adam_state(ac: ActorCritic, cfg: ppo.PPOConfig) -> optax.OptState:
    return ppo.optimizer(cfg.lr, cfg.max_grad_norm).init(ac)


def _ppo(cfg: ppo.PPOConfig, ac: ActorCritic, key: jax.Array, iterations: int | None, fn, static: tuple,
         inputs: tuple) -> tuple[ActorCritic, StepStats]:
    """`iterations` (None: cfg.iterations) PPO iterations from `ac` with a fresh Adam state, one call of the
    compiled fn(*static, cfg, ac, opt_state, *inputs, key_data) per iteration (through
    `compile_cache.exported_call`): a step of any length reuses the same program."""
    n = iterations or cfg.iterations
    cfg = replace(cfg, iterations=1, refine_iterations=None)  # the programs' static key: iteration counts out
    opt_state = _adam_state(ac, cfg)
    out_tree = jax.tree_util.tree_structure((ac, opt_state, 0.0, 0.0))
    rets, kls = [], []
    for key_i in jax.random.key_data(jax.random.split(key, n)):
        ac, opt_state, ret, kl = compile_cache.exported_call(fn, (*static, cfg), (ac, opt_state, *inputs, key_i),
                                                             out_tree)
        rets.append(ret)
        kls.append(kl)
    return ac, StepStats(tuple(np.asarray(jnp.stack(rets)).tolist()), tuple(np.asarray(jnp.stack(kls)).tolist()))


def learn_global(env: wh.ContinuousWarehouse, k: int, cfg: ppo.PPOConfig, ac_g: ActorCritic, robots: Robots,
                 key: jax.Array, iterations: int | None = None) -> tuple[ActorCritic, StepStats]:
    """G-step: PPO for pi_g from `ac_g` (continued training) against the frozen greedy robots
    (`evaluate.robots_of(env, pi_l, grid)`), for `iterations` (None: cfg.iterations) PPO iterations."""
    return _ppo(cfg, ac_g, key, iterations, _global_iteration, (env, k), (robots,))


def learn_local(env: wh.ContinuousWarehouse, k: int, cfg: ppo.PPOConfig, pi_g: MLP, ac_l: ActorCritic,
                robots: Robots, key: jax.Array, committed: bool = False,
                iterations: int | None = None) -> tuple[ActorCritic, StepStats]:
    """L-step: PPO for pi_l from `ac_l` (continued training) against the frozen greedy pi_g (committed:
    against a dispatcher keeping a uniformly drawn target per episode, see `collect_local`). The robots
    that are not learning act as `robots`, the greedy ac_l.pi of the step's start (`evaluate.robots_of`: the
    incumbent population, whose representative-agent MDP the step solves); `iterations` as in `learn_global`;
    one compiled program for both kinds of dispatcher."""
    return _ppo(cfg, ac_l, key, iterations, _local_iteration, (env, k), (pi_g, robots, jnp.asarray(committed)))
