"""A hand-written pair in the trained policies' class (tanh MLPs), for deployment tests and as a baseline.

- dispatcher: the sampled histogram's mode (argmax of the k-histogram, ties to the lowest bin), s_g ignored;
- robots: move towards s_g when |s_g - s_l| > threshold, else stay.

The weights implement these rules exactly (up to tanh saturation: hist differences below ~1e-6 and |s_g - s_l|
within ~1e-4 of the threshold); the critics are freshly initialised (unused by greedy deployment).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from altmarl_ros.errors import InputError
from altmarl_ros.marl.continuous.nets import N_FEATURES_L, ActorCritic, init_actor_critic
from altmarl_ros.marl.continuous.warehouse import ContinuousWarehouse, n_features_g

GAIN = 200.0  # tanh slope of the decision units


def _layer(w, b) -> dict[str, jnp.ndarray]:
    return {"w": jnp.asarray(w, jnp.float32), "b": jnp.asarray(b, jnp.float32)}


def handwritten_pair(env: ContinuousWarehouse, key: jax.Array, width: int = 8,
                     threshold: float = 0.05) -> tuple[ActorCritic, ActorCritic]:
    """(dispatcher, robots) as ActorCritics with hidden widths (width, width), width >= n_bins."""
    if width < env.n_bins or env.offsets[:3] != (0.0, abs(env.offsets[1]), -abs(env.offsets[1])):
        raise InputError("handwritten_pair needs width >= n_bins and offsets (stay, +d, -d)")
    k_g, k_l = jax.random.split(key)
    nb = env.n_bins
    # dispatcher: features (s_g, hist_0..hist_{nb-1}, s_g's bin one-hot (unused)); unit j = tanh(hist_j), then
    # tanh(2 h_j), logits 10 u_j
    w0 = jnp.zeros((n_features_g(env), width)).at[1 + jnp.arange(nb), jnp.arange(nb)].set(1.0)
    w1 = jnp.zeros((width, width)).at[jnp.arange(nb), jnp.arange(nb)].set(2.0)
    w2 = jnp.zeros((width, env.n_ga)).at[jnp.arange(nb), jnp.arange(nb)].set(10.0 * GAIN)
    ac_g = init_actor_critic(k_g, n_features_g(env), env.n_ga, (width, width))
    pi_g = (_layer(w0, jnp.zeros(width)), _layer(w1, jnp.zeros(width)), _layer(w2, jnp.zeros(env.n_ga)))
    # robots: features (s_g, s_l, d = s_g - s_l, tau(s_g) - s_l (unused)); u0 = tanh(G (d - th)) > 0 iff d > th,
    # u1 iff d < -th;
    # logits: stay 0, right c u0', left c u1' (u' = tanh(3 u) keeps the sign)
    v0 = jnp.zeros((N_FEATURES_L, width)).at[2, 0].set(GAIN).at[2, 1].set(-GAIN)
    c0 = jnp.zeros(width).at[0].set(-GAIN * threshold).at[1].set(-GAIN * threshold)
    v1 = jnp.zeros((width, width)).at[0, 0].set(3.0).at[1, 1].set(3.0)
    v2 = jnp.zeros((width, env.n_al)).at[0, 1].set(10.0).at[1, 2].set(10.0)
    ac_l = init_actor_critic(k_l, N_FEATURES_L, env.n_al, (width, width))
    pi_l = (_layer(v0, c0), _layer(v1, jnp.zeros(width)), _layer(v2, jnp.zeros(env.n_al)))
    return ActorCritic(pi_g, ac_g.v), ActorCritic(pi_l, ac_l.v)
