"""Clipped policy-gradient (PPO) on a batch of on-policy samples, in JAX + optax.

Generic over the player: a batch holds policy features x (N, d), critic features x_v (N, d + 1), the
actions taken (N,), their log-probabilities under the behaviour policy (N,), GAE advantages (N,) and
value targets (N,). `update` runs `epochs` passes of `minibatches` shuffled minibatches of the loss

    L = -E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)] + c_v E[(V - R)^2] - c_H E[entropy],  rho = pi / pi_old,

with advantages normalised per minibatch and the gradient's global norm clipped (Schulman et al. 2017).
Advantages: GAE(gamma, lambda) over a finite horizon (no bootstrap after the last step).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from altmarl_ros.errors import InputError
from altmarl_ros.marl.continuous.nets import ActorCritic, mlp


@dataclass(frozen=True)
class PPOConfig:
    """One best-response step: `iterations` rounds of (collect `envs` x `horizon`, `epochs` PPO passes);
    `refine_iterations` rounds instead when the step continues from a policy an earlier step of the same
    player already trained (None: `iterations`)."""

    iterations: int = 25
    refine_iterations: int | None = None
    envs: int = 32
    horizon: int = 50
    epochs: int = 4
    minibatches: int = 4
    lr: float = 3e-3
    clip: float = 0.2
    gae_lambda: float = 0.95
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 1.0
    learners: int = 16  # robots only: representative agents sampled per system (the rest act greedily)

    def validate(self, key: str) -> None:
        for name in ("iterations", "envs", "horizon", "epochs", "minibatches", "learners"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise InputError(f"{key}.{name}: must be an integer >= 1, got {getattr(self, name)!r}")
        if self.refine_iterations is not None and not (isinstance(self.refine_iterations, int)
                                                       and self.refine_iterations >= 1):
            raise InputError(f"{key}.refine_iterations: must be an integer >= 1 or null, got "
                             f"{self.refine_iterations!r}")
        checks = {"lr": self.lr > 0, "clip": 0 < self.clip < 1, "gae_lambda": 0 <= self.gae_lambda <= 1,
                  "vf_coef": self.vf_coef >= 0, "ent_coef": self.ent_coef >= 0,
                  "max_grad_norm": self.max_grad_norm > 0}
        for name, ok in checks.items():
            if not ok:
                raise InputError(f"{key}.{name}: out of range ({getattr(self, name)!r})")

    def iterations_from(self, trained: bool) -> int:
        """PPO iterations of a step whose starting policy was (trained) or was not already trained."""
        return (self.refine_iterations or self.iterations) if trained else self.iterations


class Batch(NamedTuple):
    x: jnp.ndarray  # (N, d)
    x_v: jnp.ndarray  # (N, d + 1)
    action: jnp.ndarray  # (N,)
    logp: jnp.ndarray  # (N,)
    adv: jnp.ndarray  # (N,)
    ret: jnp.ndarray  # (N,)


def gae(rewards: jnp.ndarray, values: jnp.ndarray, gamma: float, lam: float) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(T, ...) rewards and values of a finite-horizon episode -> (advantages, value targets), (T, ...)."""
    nxt = jnp.concatenate([values[1:], jnp.zeros_like(values[:1])], axis=0)
    deltas = rewards + gamma * nxt - values

    def back(acc: jnp.ndarray, d: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        acc = d + gamma * lam * acc
        return acc, acc

    _, adv = jax.lax.scan(back, jnp.zeros_like(values[0]), deltas, reverse=True)
    return adv, adv + values


@cache
def optimizer(lr: float, max_grad_norm: float) -> optax.GradientTransformation:
    """Adam with global-norm clipping (cached, so jitted updates see the same static object)."""
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(lr))


def _loss(ac: ActorCritic, mb: Batch, cfg: PPOConfig) -> tuple[jnp.ndarray, jnp.ndarray]:
    logits = mlp(ac.pi, mb.x)
    logp_all = jax.nn.log_softmax(logits)
    logp = jnp.take_along_axis(logp_all, mb.action[:, None], axis=1)[:, 0]
    adv = (mb.adv - mb.adv.mean()) / (mb.adv.std() + 1e-8)
    ratio = jnp.exp(logp - mb.logp)
    pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - cfg.clip, 1 + cfg.clip) * adv).mean()
    v = mlp(ac.v, mb.x_v)[:, 0]
    vf = ((v - mb.ret) ** 2).mean()
    ent = -(jnp.exp(logp_all) * logp_all).sum(axis=1).mean()
    approx_kl = (mb.logp - logp).mean()
    return pg + cfg.vf_coef * vf - cfg.ent_coef * ent, approx_kl


@partial(jax.jit, static_argnames=("cfg",))
def update(ac: ActorCritic, opt_state: optax.OptState, batch: Batch, key: jax.Array,
           cfg: PPOConfig) -> tuple[ActorCritic, optax.OptState, jnp.ndarray]:
    """`cfg.epochs` x `cfg.minibatches` Adam steps on the PPO loss; returns the mean approximate KL."""
    opt = optimizer(cfg.lr, cfg.max_grad_norm)
    n = batch.action.shape[0]
    size = n // cfg.minibatches

    def epoch(carry: tuple[ActorCritic, optax.OptState], k: jax.Array):
        perm = jax.random.permutation(k, n)[: size * cfg.minibatches].reshape(cfg.minibatches, size)

        def minibatch(carry: tuple[ActorCritic, optax.OptState], idx: jnp.ndarray):
            params, state = carry
            mb = jax.tree_util.tree_map(lambda a: a[idx], batch)
            (_, kl), grads = jax.value_and_grad(_loss, has_aux=True)(params, mb, cfg)
            upd, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, upd), state), kl

        return jax.lax.scan(minibatch, carry, perm)

    (ac, opt_state), kls = jax.lax.scan(epoch, (ac, opt_state), jax.random.split(key, cfg.epochs))
    return ac, opt_state, kls.mean()
