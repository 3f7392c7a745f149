"""Rollouts of the whole n-robot system and the authors' evaluation protocol (PAPER.md 4.3).

The protocol: for each evaluation seed s in 0..9, 30 fresh rollouts of horizon 50 with greedy policies;
the reported reward is the mean of the discounted returns sum_t gamma^t (r_g + mean_i r_l); the authors
quote mean +- std over the 10 per-seed means. Evaluation keys come from their own domain
(`eval_key`), disjoint from every training key, and nothing is selected on them.

Every rollout is one `lax.scan` over time, jitted, vectorised over (rollout, robot).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from altmarl_ros.marl.continuous import env as wh
from altmarl_ros.marl.continuous.nets import MLP, features_g, features_l, greedy, robot_table, table_lookup

EVAL_DOMAIN = 0x5EED_E7A1  # evaluation keys: fold_in(key(EVAL_DOMAIN), seed)
TRAIN_DOMAIN = 0x7EA1_0001  # training keys: fold_in(key(TRAIN_DOMAIN), seed)


def eval_key(seed: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(EVAL_DOMAIN), seed)


def train_key(seed: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(TRAIN_DOMAIN), seed)


class Rollouts(NamedTuple):
    returns: jnp.ndarray  # (R,) discounted returns
    mode_accuracy: jnp.ndarray  # (R,) fraction of steps with a_g == the bin holding most robots


def _rollouts(env: wh.ContinuousWarehouse, horizon: int, n_rollouts: int, key: jax.Array,
              act: Callable[[wh.EnvState, jax.Array], tuple[jnp.ndarray, jnp.ndarray, jax.Array]]) -> Rollouts:
    """The one rollout loop: `act(state, key_t)` -> (a_g (R,), a_l (R, n), the step's environment key)."""
    k_reset, k_run = jax.random.split(key)
    state0 = wh.reset(env, k_reset, n_rollouts)

    def body(carry: tuple[wh.EnvState, jnp.ndarray, jnp.ndarray], t_key: tuple[jnp.ndarray, jax.Array]):
        state, ret, hits = carry
        t, key_t = t_key
        a_g, a_l, k_s = act(state, key_t)
        hits = hits + (a_g == wh.full_mode(env, state.s_l))
        out = wh.step(env, state, a_g, a_l, k_s)
        return (out.state, ret + env.gamma**t * out.reward, hits), None

    ts = jnp.arange(horizon, dtype=jnp.float32)
    init = (state0, jnp.zeros(n_rollouts), jnp.zeros(n_rollouts))
    (_, ret, hits), _ = jax.lax.scan(body, init, (ts, jax.random.split(k_run, horizon)))
    return Rollouts(ret, hits / horizon)


Robots = MLP | jnp.ndarray  # the greedy robots: their network (exact) or its (grid, grid) table (`robots_of`)


@partial(jax.jit, static_argnames=("env", "grid"))
def _robot_table(pi_l: MLP, env: wh.ContinuousWarehouse, grid: int) -> jnp.ndarray:
    return robot_table(pi_l, env, grid)


def robots_of(env: wh.ContinuousWarehouse, pi_l: MLP, grid: int) -> Robots:
    """The greedy robots as `robot_actions` reads them. grid = 0: the network itself (exact); grid > 0: its
    greedy actions tabulated on a grid x grid lattice of (s_g, s_l) (nearest point, `nets.robot_table`, ~50 ms
    at 401), computed once per policy, so that each step costs a gather, not n network passes, and the
    training loop reuses one table in every step and comparison that the same pi_l plays in."""
    return pi_l if grid <= 0 else _robot_table(pi_l, env, grid)


def robot_actions(env: wh.ContinuousWarehouse, robots: Robots, s_g: jnp.ndarray, s_l: jnp.ndarray) -> jnp.ndarray:
    """s_g (B, 1), s_l (B, n) -> (B, n) greedy actions of `robots` (`robots_of`)."""
    if isinstance(robots, tuple):
        return greedy(robots, features_l(env, s_g, s_l))
    return table_lookup(robots, env, s_g, s_l)


@partial(jax.jit, static_argnames=("env", "k", "horizon", "n_rollouts"))
def greedy_rollouts(env: wh.ContinuousWarehouse, k: int, horizon: int, n_rollouts: int, pi_g: MLP, robots: Robots,
                    key: jax.Array) -> Rollouts:
    """R = n_rollouts systems of n robots under greedy (pi_g, robots); pi_g sees s_g and k sampled robots.
    Robots (`robots_of`): the exact network pi_l on the protocol, its table in the in-loop comparisons of
    training."""

    def act(state: wh.EnvState, key_t: jax.Array) -> tuple[jnp.ndarray, jnp.ndarray, jax.Array]:
        k_h, k_s = jax.random.split(key_t)
        a_g = greedy(pi_g, features_g(env, state.s_g, wh.histogram(env, state.s_l, k, k_h)))
        return a_g, robot_actions(env, robots, state.s_g[:, None], state.s_l), k_s

    return _rollouts(env, horizon, n_rollouts, key, act)


@partial(jax.jit, static_argnames=("env", "horizon", "n_rollouts"))
def random_rollouts(env: wh.ContinuousWarehouse, horizon: int, n_rollouts: int, key: jax.Array) -> Rollouts:
    """Both players uniformly random at every step (the authors' `uniform_baseline.py`)."""

    def act(state: wh.EnvState, key_t: jax.Array) -> tuple[jnp.ndarray, jnp.ndarray, jax.Array]:
        k_g, k_l, k_s = jax.random.split(key_t, 3)
        return (jax.random.randint(k_g, (n_rollouts,), 0, env.n_ga),
                jax.random.randint(k_l, state.s_l.shape, 0, env.n_al), k_s)

    return _rollouts(env, horizon, n_rollouts, key, act)


class Protocol(NamedTuple):
    """The authors' evaluation protocol; every rollout's return is kept."""

    seeds: int = 10
    rollouts: int = 30
    horizon: int = 50


PROTOCOL = Protocol()


class ProtocolResult(NamedTuple):
    returns: np.ndarray  # (seeds, rollouts)
    mode_accuracy: float  # mean over all rollouts and steps

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def seed_std(self) -> float:
        """Std over the per-seed means (the authors' +-)."""
        return float(self.returns.mean(axis=1).std())

    @property
    def stderr(self) -> float:
        """Standard error of the mean over all rollouts (i.i.d.)."""
        x = self.returns.ravel()
        return float(x.std(ddof=1) / np.sqrt(x.size))

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "stderr": self.stderr, "seed_std": self.seed_std,
                "n": int(self.returns.size), "mode_accuracy": self.mode_accuracy}


def evaluate_pair(env: wh.ContinuousWarehouse, pi_g: MLP, pi_l: MLP, k: int,
                  protocol: Protocol = PROTOCOL) -> ProtocolResult:
    """Greedy (pi_g, pi_l) on the protocol: seed s uses eval_key(s), one batch of `rollouts` systems."""
    rets, accs = [], []
    for s in range(protocol.seeds):
        out = greedy_rollouts(env, k, protocol.horizon, protocol.rollouts, pi_g, pi_l, eval_key(s))
        rets.append(np.asarray(out.returns))
        accs.append(np.asarray(out.mode_accuracy))
    return ProtocolResult(np.stack(rets), float(np.mean(accs)))


def evaluate_random(env: wh.ContinuousWarehouse, protocol: Protocol = PROTOCOL) -> ProtocolResult:
    """Uniformly random players on the protocol (the authors' 37.8 +- 10.9, std over 300 rollouts)."""
    rets, accs = [], []
    for s in range(protocol.seeds):
        out = random_rollouts(env, protocol.horizon, protocol.rollouts, eval_key(s))
        rets.append(np.asarray(out.returns))
        accs.append(np.asarray(out.mode_accuracy))
    return ProtocolResult(np.stack(rets), float(np.mean(accs)))
