"""Neural policies and critics of the continuous warehouse: tanh MLPs as plain pytrees of JAX arrays.

An MLP is a tuple of layers, each a dict {"w": (in, out), "b": (out,)}; hidden layers use tanh. The
dispatcher's policy pi_g maps (s_g, histogram of k robots) -> logits over the 5 targets; the robots'
shared policy pi_l maps (s_g, s_l) -> logits over (stay, +, -). Both are fed fixed features of those
inputs (`warehouse.features_g` / `features_l`: the authors' inputs plus s_g's bin as a one-hot for pi_g and
the offset to the target nearest s_g for pi_l; their pi_g reads the histogram only). Critics read the
same features plus the time t / H, because the objective has a finite horizon H. Deployed policies
act greedily (argmax), as in the authors' evaluation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl.continuous import warehouse as wh
from altmarl_ros.marl.continuous.warehouse import N_FEATURES_L as N_FEATURES_L  # one definition, jax-free
from altmarl_ros.marl.continuous.warehouse import ContinuousWarehouse

MLP = tuple[dict[str, jnp.ndarray], ...]


def init_mlp(key: jax.Array, sizes: tuple[int, ...], out_scale: float) -> MLP:
    """Orthogonal weights (gain sqrt(2) inside, `out_scale` on the last layer), zero biases."""
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        gain = out_scale if i == len(sizes) - 2 else float(np.sqrt(2.0))
        w = jax.nn.initializers.orthogonal(gain)(k, (n_in, n_out), jnp.float32)
        layers.append({"w": w, "b": jnp.zeros((n_out,), jnp.float32)})
    return tuple(layers)


def mlp(params: MLP, x: jnp.ndarray) -> jnp.ndarray:
    """(..., in) -> (..., out)."""
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


class ActorCritic(NamedTuple):
    """One player's networks: the policy (logits) and its critic (a scalar value)."""

    pi: MLP
    v: MLP


def init_actor_critic(key: jax.Array, n_in: int, n_actions: int, hidden: tuple[int, ...]) -> ActorCritic:
    """Policy over n_in features (near-uniform at start), critic over n_in + 1 (the time feature)."""
    k_pi, k_v = jax.random.split(key)
    return ActorCritic(init_mlp(k_pi, (n_in, *hidden, n_actions), 0.01), init_mlp(k_v, (n_in + 1, *hidden, 1), 1.0))


def features_g(env: ContinuousWarehouse, s_g: jnp.ndarray, hist: jnp.ndarray) -> jnp.ndarray:
    """s_g (...,), hist (..., n_bins) -> (..., 1 + 2 n_bins) (`warehouse.features_g`)."""
    return wh.features_g(jnp, env, s_g, hist)


def features_l(env: ContinuousWarehouse, s_g: jnp.ndarray, s_l: jnp.ndarray) -> jnp.ndarray:
    """s_g broadcastable to s_l (...,) -> (..., 4) (`warehouse.features_l`)."""
    return wh.features_l(jnp, env, s_g, s_l)


def with_time(x: jnp.ndarray, t: jnp.ndarray | float) -> jnp.ndarray:
    """Append the time feature t / H (broadcast) to features (..., d) -> (..., d + 1)."""
    t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x.shape[:-1])
    return jnp.concatenate([x, t[..., None]], axis=-1)


def greedy(params: MLP, x: jnp.ndarray) -> jnp.ndarray:
    """Deployed action: argmax of the logits, (..., in) -> (...,) int."""
    return jnp.argmax(mlp(params, x), axis=-1)


def flatten(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    """A pytree of arrays -> {"prefix/path": array} (keys from jax.tree_util key paths)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = "/".join(str(getattr(p, "key", getattr(p, "idx", getattr(p, "name", p)))) for p in path)
        out[f"{prefix}/{name}"] = np.asarray(leaf)
    return out


def unflatten(prefix: str, like: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of `flatten` against a template pytree `like`; shapes must match (ValueError naming the key)."""
    names = list(flatten(prefix, like))
    leaves = []
    for name, ref in zip(names, jax.tree_util.tree_leaves(like), strict=True):
        if name not in arrays:
            raise InputError(f"missing array {name!r}")
        if arrays[name].shape != ref.shape:
            raise InputError(f"array {name!r} has shape {arrays[name].shape}, expected {ref.shape}")
        leaves.append(jnp.asarray(arrays[name], jnp.float32))
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), leaves)


def robot_table(pi_l: MLP, env: ContinuousWarehouse, grid: int) -> jnp.ndarray:
    """Greedy pi_l on a grid of (s_g, s_l): (grid, grid) int, entry [i, j] at (low + i h, low + j h)."""
    x = jnp.linspace(env.low, env.high, grid, dtype=jnp.float32)
    return greedy(pi_l, features_l(env, x[:, None], x[None, :])).astype(jnp.int32)


def table_lookup(table: jnp.ndarray, env: ContinuousWarehouse, s_g: jnp.ndarray, s_l: jnp.ndarray) -> jnp.ndarray:
    """Nearest grid point's greedy action, s_g broadcastable to s_l."""
    grid = table.shape[0]
    scale = (grid - 1) / (env.high - env.low)
    i = jnp.clip(jnp.round((s_g - env.low) * scale).astype(jnp.int32), 0, grid - 1)
    j = jnp.clip(jnp.round((s_l - env.low) * scale).astype(jnp.int32), 0, grid - 1)
    i, j = jnp.broadcast_arrays(i, j)
    return table[i, j]
