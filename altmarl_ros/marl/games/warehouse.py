"""The tabular robotic warehouse of the paper's experiments (PAPER.md 4.1, 7.4).

Five zones on a ring. The global agent (dispatcher) steers the active zone s_g with a_g = "go to zone
a_g"; each robot sits in zone s_l and chooses a_l in (stay, +1, -1) around the ring.

    P_g(. | s_g, a_g)       = softmax(0.1 + 3.0 e_{a_g} + 0.5 e_{s_g})
    P_l(. | s_l, s_g, a_l)  = softmax(0.1 + 3.5 e_{s_l} + 1.5 e_{s_l + move(a_l)} + 0.3 e_{s_g})
    r_l(s_l, s_g, a_l)      = (10 if s_l == s_g else 2 / (1 + d_ring(s_l, s_g))) + [0, 0.5, -0.3][a_l]
    r_g(s_g, a_g)           = 4 - |s_g - a_g| (paper) or 1 (the authors' code and figures)

s_g(0) is uniform and the initial population is drawn from Dirichlet(0.3).
"""

from __future__ import annotations

import numpy as np

from altmarl_ros.marl.game import GameLabels, TabularGame

N_ZONES = 5
MOVES = (0, +1, -1)  # a_l = stay, up, down (around the ring)
ACTION_BONUS = (0.0, 0.5, -0.3)
R_G_CHOICES = ("constant", "distance")


def _softmax(logits: np.ndarray) -> np.ndarray:
    """exp(l) / sum exp(l) without shifting: logits here are small, and this is the authors' arithmetic
    to the last bit (their Monte Carlo draws depend on it)."""
    z = np.exp(logits)
    return z / z.sum(-1, keepdims=True)


def ring_distance(a: np.ndarray | int, b: np.ndarray | int, n_zones: int = N_ZONES) -> np.ndarray:
    d = np.abs(np.asarray(a) - np.asarray(b)) % n_zones
    return np.minimum(d, n_zones - d)


def warehouse(*, r_g: str = "constant", gamma: float = 0.95, n_zones: int = N_ZONES,
              dirichlet: float = 0.3) -> TabularGame:
    """Build the warehouse game; `r_g` is "constant" (r_g = 1) or "distance" (r_g = 4 - |s_g - a_g|)."""
    if r_g not in R_G_CHOICES:
        raise ValueError(f"r_g must be one of {R_G_CHOICES}, got {r_g!r}")
    if n_zones < 3:
        raise ValueError(f"n_zones must be >= 3, got {n_zones}")
    Z = n_zones
    zones = tuple(f"zone{i}" for i in range(Z))
    eye = np.eye(Z)
    # P_g[s_g, a_g, :]
    P_g = _softmax(0.1 + 3.0 * eye[None, :, :] + 0.5 * eye[:, None, :])
    # P_l[s_l, s_g, a_l, :]
    logits = np.full((Z, Z, len(MOVES), Z), 0.1)
    s_l = np.arange(Z)
    logits[s_l, :, :, s_l] += 3.5
    for a, move in enumerate(MOVES):
        if move:
            logits[s_l, :, a, (s_l + move) % Z] += 1.5
    logits += 0.3 * eye[None, :, None, :]
    P_l = _softmax(logits)
    dist = ring_distance(s_l[:, None], s_l[None, :], Z)  # (s_l, s_g)
    base = np.where(dist == 0, 10.0, 2.0 / (1.0 + dist))
    r_l = base[:, :, None] + np.asarray(ACTION_BONUS)[None, None, :]
    if r_g == "constant":
        r_g_table = np.ones((Z, Z))
    else:
        r_g_table = 4.0 - np.abs(s_l[:, None] - s_l[None, :]).astype(float)
    return TabularGame(P_g=P_g, P_l=P_l, r_g=r_g_table, r_l=r_l, gamma=gamma, init_g=np.full(Z, 1.0 / Z),
                       init_l_concentration=dirichlet, name=f"warehouse(r_g={r_g})",
                       labels=GameLabels(zones, tuple(f"activate_{z}" for z in zones), zones, ("stay", "up", "down")))
