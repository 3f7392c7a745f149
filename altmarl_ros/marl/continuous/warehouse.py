"""The continuous warehouse's constants (PAPER.md 4.3) and the policies' input features, without JAX: shared
by the JAX environment (`continuous.env`, training and evaluation) and the NumPy deployment
(`continuous.deploy`, the ROS nodes), so that a node that runs trained policies never imports JAX. The
dynamics are documented in `continuous.env`.

The feature maps take the array module `xp` (numpy or jax.numpy), so that training and deployment compute
the networks' inputs by one definition. Each feature is a fixed function of the policy's observation
((s_g, k-histogram) for pi_g, (s_g, s_l) for pi_l) and the environment's constants, so the policy class
(memoryless policies of those observations) is the same as with the raw inputs; the derived features only
make two useful rules easy to represent (bench/README 13.2): "keep the target nearest s_g unless the
sample says otherwise" (the one-hot of s_g's bin) and "move towards the target nearest s_g" (its offset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from altmarl_ros.errors import InputError


@dataclass(frozen=True)
class ContinuousWarehouse:
    """The environment's constants (defaults: the authors' `ContinuousWarehouseEnv`), validated."""

    n_agents: int = 500
    n_bins: int = 5
    low: float = -2.0
    high: float = 2.0
    offsets: tuple[float, ...] = (0.0, 0.05, -0.05)  # delta_{a_l}: stay, right, left
    steer: float = 0.6
    sigma_g: float = 0.08
    sigma_l: float = 0.04
    r_g_scale: float = 5.0
    r_g_width: float = 0.30
    align_scale: float = 10.0
    align_width: float = 0.20
    move_cost: float = 5.0
    start_g: float = 1.0  # s_g(0) ~ U(-start_g, start_g)
    cluster_sigma: float = 0.18
    major_share: float = 0.55
    gamma: float = 0.95

    def __post_init__(self) -> None:
        def need(ok: bool, key: str, msg: str) -> None:
            if not ok:
                raise InputError(f"env.{key}: {msg}")

        need(self.n_agents >= 2, "n_agents", f"must be >= 2, got {self.n_agents}")
        need(self.n_bins >= 2, "n_bins", f"must be >= 2, got {self.n_bins}")
        need(self.high > self.low, "high", "must exceed low")
        need(len(self.offsets) >= 1, "offsets", "needs at least one local action")
        need(0 < self.steer <= 1, "steer", f"must lie in (0, 1], got {self.steer}")
        for key in ("sigma_g", "sigma_l", "r_g_width", "align_width", "cluster_sigma"):
            need(getattr(self, key) > 0, key, "must be > 0")
        for key in ("r_g_scale", "align_scale", "move_cost", "start_g"):
            need(getattr(self, key) >= 0, key, "must be >= 0")
        need(0.5 <= self.major_share < 1, "major_share", "must lie in [0.5, 1)")
        need(0 <= self.gamma < 1, "gamma", f"must lie in [0, 1), got {self.gamma}")

    @property
    def n_ga(self) -> int:
        return self.n_bins

    @property
    def n_al(self) -> int:
        return len(self.offsets)

    @property
    def targets(self) -> np.ndarray:
        """(n_bins,) tau: the bin centres (float32, as the JAX environment computes with them)."""
        w = (self.high - self.low) / self.n_bins
        return (self.low + w * (np.arange(self.n_bins) + 0.5)).astype(np.float32)

    @property
    def reward_range(self) -> float:
        """R: range of the per-step system reward r_g + mean r_l (bounds of the value scale R / (1 - gamma))."""
        return self.r_g_scale + self.align_scale + self.move_cost * max(abs(d) for d in self.offsets)

    def discount_sum(self, horizon: int) -> float:
        """sum_{t < horizon} gamma^t."""
        return (1 - self.gamma**horizon) / (1 - self.gamma)


# --- the policies' input features (numpy or jax.numpy as `xp`) -----------------------------------

N_FEATURES_L = 4  # features_l's width


def n_features_g(env: ContinuousWarehouse) -> int:
    """features_g's width: 1 + 2 n_bins."""
    return 1 + 2 * env.n_bins


def bin_of(xp: Any, env: ContinuousWarehouse, s: Any) -> Any:
    """Histogram bin of each position (np.histogram's bins over [low, high], the last closed), int32; for s_g it
    is also the index of the nearest target (the targets are the bin centres)."""
    w = (env.high - env.low) / env.n_bins
    return xp.clip(xp.floor((s - env.low) / w), 0, env.n_bins - 1).astype(xp.int32)


def features_g(xp: Any, env: ContinuousWarehouse, s_g: Any, hist: Any) -> Any:
    """s_g (...,), hist (..., n_bins) -> (..., 1 + 2 n_bins) float32: (s_g, hist, one-hot of s_g's bin)."""
    s_g = xp.asarray(s_g, dtype=xp.float32)
    near = xp.eye(env.n_bins, dtype=xp.float32)[bin_of(xp, env, s_g)]
    return xp.concatenate([s_g[..., None], xp.asarray(hist, dtype=xp.float32), near], axis=-1)


def features_l(xp: Any, env: ContinuousWarehouse, s_g: Any, s_l: Any) -> Any:
    """s_g broadcastable to s_l (...,) -> (..., 4) float32: (s_g, s_l, s_g - s_l, tau(s_g) - s_l), tau(s_g) the
    target nearest s_g."""
    s_g, s_l = xp.broadcast_arrays(xp.asarray(s_g, dtype=xp.float32), xp.asarray(s_l, dtype=xp.float32))
    near = xp.asarray(env.targets)[bin_of(xp, env, s_g)]
    return xp.stack([s_g, s_l, s_g - s_l, near - s_l], axis=-1)
