"""Hand-written warehouse policies (ROS-free): fixtures for the ROS tests and the benchmark.

- global: "hold the active zone while the sample shows a robot there, else move it to the sample's
  most common zone" (ties to the lowest zone);
- local: "move one zone toward s_g along the ring" (stay when there);
- pooled global (`save_pooled_heuristic`): the same global rule read on the filtered population estimate
  rounded to K counts (`marl/pooled.py`) instead of the fresh sample.
They are a sensible, deterministic baseline, not the trained ALTERNATING-MARL policies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.artifacts import save_policies
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.games.warehouse import MOVES, ring_distance
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.pooled import pooled_policy


def hold_or_mode_global_policy(game: TabularGame, k: int) -> TabularGlobalPolicy:
    counts = cv.enumerate_counts(k, game.n_local_states)  # (D, S_l)
    s_g = np.arange(game.n_global_states)[:, None]
    table = np.where(counts.T[s_g[:, 0]] > 0, s_g, counts.argmax(-1)[None, :])  # (S_g, D)
    return TabularGlobalPolicy(table, k, game.n_local_states, game.n_global_actions)


def follow_local_policy(game: TabularGame) -> TabularLocalPolicy:
    Z = game.n_local_states
    probs = np.zeros((game.n_global_states, Z, len(MOVES)))
    for g in range(game.n_global_states):
        for s in range(Z):
            dists = [ring_distance((s + m) % Z, g, Z) for m in MOVES]
            probs[g, s, int(np.argmin(dists))] = 1.0
    return TabularLocalPolicy(probs)


def save_heuristic(path: str | Path, *, k: int, r_g: str = "constant") -> Path:
    """Write the heuristic policy pair for the warehouse game to `path` (.npz + .json)."""
    game = make_game("warehouse", r_g=r_g)
    return save_policies(path, hold_or_mode_global_policy(game, k), follow_local_policy(game), game=game,
                         game_spec={"name": "warehouse", "options": {"r_g": r_g}}, trainer="heuristic")


def save_pooled_heuristic(path: str | Path, *, k: int, K: int, n_agents: int, r_g: str = "constant") -> Path:
    """The heuristic pair with a pooled dispatcher (hold-or-mode on the filtered estimate rounded to K counts)."""
    game = make_game("warehouse", r_g=r_g)
    pi_l = follow_local_policy(game)
    pi_g = pooled_policy(game, pi_l, hold_or_mode_global_policy(game, K).actions, k=k, K=K, n_agents=n_agents)
    return save_policies(path, pi_g, pi_l, game=game, game_spec={"name": "warehouse", "options": {"r_g": r_g}},
                         trainer="heuristic")
