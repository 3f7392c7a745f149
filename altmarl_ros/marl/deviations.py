"""Candidate deviations and the searches over them, for the gap estimators of `marl.gaps`.

Independent of the learners that produced the policies (no L-LEARN here; G-LEARN only as an oracle with
other settings than training): the panel of local tables a search starts from, greedy coordinate
ascent over deterministic (S_g, S_l) tables, the exact own return of one robot on recorded paths, the
vectorised system returns of many shared local policies on common episodes, and the restricted global
oracle's candidates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl import sim
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.learners.g_learn import g_learn
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.sim import GlobalController, Ordering

M_TRAIN = 30  # G-LEARN's training sample size; the restricted oracle uses more samples or exact transitions
SeedLike = int | np.random.SeedSequence
ObjectiveFn = Callable[[np.ndarray], np.ndarray]  # (C, S_g, S_l) int tables -> (C,) values


def fresh_rng(seed: SeedLike) -> np.random.Generator:
    """A generator from `seed` that is the same on every call. (`Generator.spawn` advances the
    SeedSequence it was built from, so reusing one SeedSequence object would silently break the
    common random numbers; a SeedSequence is copied with no children spawned.)"""
    if isinstance(seed, np.random.SeedSequence):
        seed = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------------------------
# Candidate panel for local tables (independent of L-LEARN)
# ----------------------------------------------------------------------------------------------

def one_hot(game: TabularGame, table: np.ndarray) -> np.ndarray:
    return np.eye(game.n_local_actions)[table]


def local_panel(game: TabularGame, pi_l: TabularLocalPolicy) -> dict[str, np.ndarray]:
    """Named deterministic (S_g, S_l) action tables that start a local search: every constant action,
    the mode of pi_l, the myopic argmax_a r_l(s_l, s_g, a), and, when S_l == S_g (zones), "go where s_g
    is" (argmax_a P_l(s_l' = s_g | s_l, s_g, a), ties to the larger immediate reward)."""
    S_g, S_l, A_l = game.n_global_states, game.n_local_states, game.n_local_actions
    panel = {f"constant_{a}": np.full((S_g, S_l), a, dtype=np.int64) for a in range(A_l)}
    panel["mode_of_pi_l"] = pi_l.probs.argmax(-1)
    panel["myopic"] = np.transpose(game.r_l, (1, 0, 2)).argmax(-1)
    if S_l == S_g:
        g = np.arange(S_g)
        p_reach = game.P_l[:, g, :, g]  # (S_g, S_l, A_l): P_l(s_l' = g | s_l, g, a)
        r = np.transpose(game.r_l, (1, 0, 2))
        panel["go_to_s_g"] = (p_reach + 1e-9 * (r - r.min()) / max(np.ptp(r), 1e-12)).argmax(-1)
    return panel


def coordinate_ascent(objective: ObjectiveFn, start: np.ndarray, start_value: float, n_actions: int,
                       max_passes: int) -> tuple[np.ndarray, float]:
    """Greedy coordinate ascent over a deterministic (S_g, S_l) table: for each entry in turn, try every
    other action (all at once, `objective` maps (C, S_g, S_l) tables -> (C,) values) and keep the best
    strict improvement; stop after a pass without improvement or `max_passes` passes."""
    table, value = start.copy(), start_value
    for _ in range(max_passes):
        improved = False
        for idx in np.ndindex(table.shape):
            others = [a for a in range(n_actions) if a != table[idx]]
            cands = np.repeat(table[None], len(others), 0)
            cands[(slice(None), *idx)] = others
            values = objective(cands)
            best = int(values.argmax())
            if values[best] > value + 1e-12:
                table, value, improved = cands[best], float(values[best]), True
        if not improved:
            break
    return table, value


def own_returns_on_paths(game: TabularGame, probs: np.ndarray, s_g: np.ndarray, s_l0: np.ndarray, *,
                         ordering: Ordering = "paper") -> np.ndarray:
    """Exact expected discounted own return of one robot on recorded global paths, ignoring its own
    influence on s_g: (C, S_g, S_l, A_l) policies, (E, H + 1) paths, (E,) initial states -> (C,) mean over E.

    Forward recursion on the robot's state distribution p_t (C, E, S_l) given s_g(t) of each episode."""
    H1 = s_g.shape[1]
    # policy-marginalised local chain and reward per candidate: P_pi[c, g, h, s, s'] (h drives the move)
    P_pi = np.einsum("cgsa,shat->cghst", probs, game.P_l)
    r_pi = np.einsum("cgsa,sga->cgs", probs, game.r_l)
    p = np.repeat(np.eye(game.n_local_states)[s_l0][None], probs.shape[0], 0)  # (C, E, S_l)
    total = np.zeros(probs.shape[0])
    discount = 1.0
    for t in range(H1 - 1):
        g = s_g[:, t]
        drive = s_g[:, t + 1] if ordering == "authors" else g
        total += discount * (p * r_pi[:, g]).sum(-1).mean(-1)
        p = np.matmul(p[:, :, None, :], P_pi[:, g, drive])[:, :, 0, :]
        discount *= game.gamma
    return total


def shared_returns(game: TabularGame, pi_g: GlobalController, probs: np.ndarray, seed: SeedLike, *,
                   n_agents: int, horizon: int, n_episodes: int, ordering: Ordering = "paper",
                   batch_size: int = 64) -> np.ndarray:
    """Discounted system returns of C shared local policies, (C, S_g, S_l, A_l) probs -> (C, E), every
    candidate on the same episodes and the same uniforms (common random numbers across candidates; one
    vectorised simulation of C x batch rows, which is what makes the local search affordable). The
    dynamics are those of `sim.step`; the random streams are not those of `rollouts`."""
    C, S_l = probs.shape[0], game.n_local_states
    cum_pi, cum_g, cum_l = sim.cumulative(probs), sim.cumulative(game.P_g), sim.cumulative(game.P_l)
    env_rng, obs_rng, act_rng = fresh_rng(seed).spawn(3)
    totals = np.zeros((C, n_episodes))
    for start in range(0, n_episodes, batch_size):
        B = min(batch_size, n_episodes - start)
        rows = slice(start, start + B)
        state = sim.reset(game, env_rng, n_agents=n_agents, batch=B)
        s_g, s_l = np.tile(state.s_g, C), np.tile(state.s_l, (C, 1))  # row c * B + b
        cand = np.repeat(np.arange(C), B)[:, None]
        discount = 1.0
        for _ in range(horizon):
            if isinstance(pi_g, TabularGlobalPolicy):  # the same k-subset for every candidate
                idx = np.tile(cv.subsample(obs_rng, n_agents, pi_g.k, B), (C, 1))
                a_g = pi_g.act(s_g, cv.counts_from_states(np.take_along_axis(s_l, idx, 1), S_l))
            else:
                a_g = pi_g.act_on(obs_rng, s_g, s_l)
            a_l = sim.inverse_cdf(np.tile(act_rng.random((B, n_agents)), (C, 1)), cum_pi[cand, s_g[:, None], s_l])
            reward = game.r_g[s_g, a_g] + game.r_l[s_l, s_g[:, None], a_l].mean(-1)
            totals[:, rows] += discount * reward.reshape(C, B)
            s_g_next = sim.inverse_cdf(np.tile(env_rng.random(B), C), cum_g[s_g, a_g])
            drive = s_g_next if ordering == "authors" else s_g
            s_l = sim.inverse_cdf(np.tile(env_rng.random((B, n_agents)), (C, 1)), cum_l[s_l, drive[:, None], a_l])
            s_g = s_g_next
            discount *= game.gamma
    return totals


class OracleRule(NamedTuple):
    """How the restricted global oracle runs G-LEARN at a given k (see `restricted_oracle_rule`)."""

    transition: str  # "exact" or "sampled"
    m: int  # samples per (s_g, d) entry when sampled (0 when exact)


def restricted_oracle_rule(k: int, n_local_states: int, *, exact_max_d: int = 210,
                           sample_budget: int = 1_500_000, m_max: int = 1000) -> OracleRule | None:
    """G-LEARN with exact count transitions when D = C(k + S_l - 1, S_l - 1) <= exact_max_d (k <= 6 for the
    5-zone warehouse); else sampled with m = min(m_max, sample_budget // D) samples per entry when that is
    more than training's m = 30 (k <= 30 for the warehouse: m = 1000 at k = 10, 141 at k = 20, 32 at k = 30);
    else None (k >= 35 at the default budget: only the deterministic mean-field candidate is affordable)."""
    n_d = cv.n_count_vectors(k, n_local_states)
    if n_d <= exact_max_d:
        return OracleRule("exact", 0)
    m = min(m_max, sample_budget // n_d)
    return OracleRule("sampled", m) if m > M_TRAIN else None


def restricted_candidates(game: TabularGame, pi_l: TabularLocalPolicy, k: int, rng: np.random.Generator, *,
                          exact_max_d: int = 210, sample_budget: int = 1_500_000) -> dict[str, TabularGlobalPolicy]:
    """Candidate dispatchers over count vectors of k: G-LEARN with the deterministic mean-field
    transition, and G-LEARN by `restricted_oracle_rule` (exact or many-sample) when affordable."""
    out = {"g_learn_deterministic": g_learn(game, pi_l, k=k, transition="deterministic").pi_g}
    rule = restricted_oracle_rule(k, game.n_local_states, exact_max_d=exact_max_d, sample_budget=sample_budget)
    if rule is not None and rule.transition == "exact":
        out["g_learn_exact"] = g_learn(game, pi_l, k=k, transition="exact").pi_g
    elif rule is not None:
        out[f"g_learn_m{rule.m}"] = g_learn(game, pi_l, k=k, transition="sampled", m=rule.m, rng=rng).pi_g
    return out
