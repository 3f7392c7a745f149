"""Tiny games with hand-derivable answers, for tests and documentation.

`coordination`: two zones. The global agent picks the zone it will be in next (deterministically);
local agents earn 1 when they sit in the global zone, and choose to stay or switch (deterministically).
r_g = 0. Equilibria: the locals follow s_g ("go to the active zone"), and the global agent steers
towards the zone that holds most agents. Useful facts (see the tests):
  * against "locals follow s_g", every global policy gives each agent reward 1 from t = 1 on;
  * against "locals stay", the global agent's best response is "go to the majority zone".

`broadcast`: one local state (S_l = 1), so the global agent's observation carries no information;
its problem is a plain MDP and G-LEARN must equal the full-information optimum for every k.
"""

from __future__ import annotations

import numpy as np

from altmarl_ros.marl.game import TabularGame


def coordination(*, gamma: float = 0.9, slip: float = 0.0, dirichlet: float = 0.0) -> TabularGame:
    """Two-zone coordination game. `slip` is the probability that any move fails (stays put)."""
    if not 0.0 <= slip < 1.0:
        raise ValueError(f"slip must be in [0, 1), got {slip!r}")
    P_g = np.zeros((2, 2, 2))
    for s in range(2):
        for a in range(2):
            P_g[s, a, a] += 1.0 - slip
            P_g[s, a, s] += slip
    P_l = np.zeros((2, 2, 2, 2))  # a_l: 0 = stay, 1 = switch
    for s in range(2):
        for g in range(2):
            P_l[s, g, 0, s] = 1.0
            P_l[s, g, 1, 1 - s] += 1.0 - slip
            P_l[s, g, 1, s] += slip
    r_l = np.zeros((2, 2, 2))
    for s in range(2):
        r_l[s, s, :] = 1.0
    return TabularGame(P_g=P_g, P_l=P_l, r_g=np.zeros((2, 2)), r_l=r_l, gamma=gamma,
                       init_g=np.full(2, 0.5), init_l_concentration=dirichlet, name="coordination")


def broadcast(*, gamma: float = 0.9) -> TabularGame:
    """Three global states on a line, one local state; r_g rewards reaching state 2."""
    P_g = np.zeros((3, 2, 3))  # a_g: 0 = left, 1 = right
    for s in range(3):
        P_g[s, 0, max(s - 1, 0)] = 1.0
        P_g[s, 1, min(s + 1, 2)] = 1.0
    r_g = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    P_l = np.ones((1, 3, 2, 1))
    r_l = np.zeros((1, 3, 2))
    r_l[0, :, 1] = 0.1  # local action 1 is strictly better
    return TabularGame(P_g=P_g, P_l=P_l, r_g=r_g, r_l=r_l, gamma=gamma, init_g=np.array([1.0, 0.0, 0.0]),
                       name="broadcast")
