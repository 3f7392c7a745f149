"""`gap_g_restricted` with the restricted best response as its oracle, independent of G-LEARN (issue 15).

The oracle searches memoryless k-sample dispatchers by `restricted.restricted_best_response` (policy
iteration on the exact population model, or on the consistent large-n grid model) from the current
table and every constant table; it never calls G-LEARN. The found table's gain over pi_g is then
estimated on the true n-agent system on fresh final episodes (common random numbers: `table_rollouts`
draws exactly what `gaps.rollouts` / `sim.evaluate` draw), so the reported gap is an unbiased estimate
of the found deviation's gain and an estimate of a lower bound of the restricted gap. When the oracle
returns pi_g itself the report says "nothing found" with the number of starts tried.

`heuristic_dispatchers` is a family the oracle does not search by construction (hand-written rules on
the sampled mode with a threshold, sticky to s_g or to a fixed zone), for checking the oracle from
outside (issue 15 target (ii)); it needs zones (S_l == A_g, action a activates zone a).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.deviations import SeedLike
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.observe import KSampleObserver, table_rollouts
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.reports import GapReport, gap_report
from altmarl_ros.marl.restricted import BestResponse, restricted_best_response
from altmarl_ros.marl.sim import Estimate

ORACLE_FAMILY = "restricted_best_response"


class RestrictedGap(NamedTuple):
    """The restricted global gap with the restricted-best-response oracle."""

    report: GapReport  # gain on the final episodes, candidates tried, winner ("" = nothing found)
    oracle: BestResponse  # what the oracle found (its table, model value, start, evaluations, seconds)
    policy: TabularGlobalPolicy  # the deviation (pi_g itself when nothing was found)
    model_gain: float  # the oracle's model value of the deviation minus the model value of pi_g


def paired_table_gain(game: TabularGame, table: np.ndarray, base: np.ndarray, pi_l: TabularLocalPolicy,
                      seed: SeedLike, *, k: int, n_agents: int, horizon: int, n_episodes: int) -> Estimate:
    """V(table) - V(base) on the same `n_episodes` n-agent episodes of `seed` (paired)."""
    obs = KSampleObserver(k, game.n_local_states)
    kw = {"n_agents": n_agents, "horizon": horizon, "n_episodes": n_episodes}
    return Estimate.of(table_rollouts(game, table, obs, pi_l, seed, **kw).returns
                       - table_rollouts(game, base, obs, pi_l, seed, **kw).returns)


def gap_g_restricted_oracle(game: TabularGame, pi_g: TabularGlobalPolicy, pi_l: TabularLocalPolicy, *,
                            seed: SeedLike, n_agents: int, horizon: int, n_episodes: int,
                            rng: np.random.Generator, K: int | None = None) -> RestrictedGap:
    """Oracle search (see the module docstring), then the paired gain on the final episodes of `seed`."""
    br = restricted_best_response(game, pi_l, k=pi_g.k, n_agents=n_agents, horizon=horizon, rng=rng,
                                  starts={"pi_g": pi_g.actions}, K=K)
    if np.array_equal(br.table, pi_g.actions):
        zero = Estimate(0.0, 0.0, n_episodes)
        return RestrictedGap(gap_report("gap_g_restricted", zero, br.starts_tried, "pi_g"), br, pi_g, 0.0)
    gain = paired_table_gain(game, br.table, pi_g.actions, pi_l, seed, k=pi_g.k, n_agents=n_agents,
                             horizon=horizon, n_episodes=n_episodes)
    policy = TabularGlobalPolicy(br.table, pi_g.k, pi_g.n_local_states, pi_g.n_global_actions)
    base_value = (br.start_values or {}).get("pi_g", float("nan"))
    return RestrictedGap(gap_report("gap_g_restricted", gain, br.starts_tried, f"{ORACLE_FAMILY}({br.start})"),
                         br, policy, br.value - base_value)


def heuristic_dispatchers(game: TabularGame, k: int) -> dict[str, np.ndarray]:
    """(S_g, D) tables over count vectors of k: for each threshold t in 1..k, activate the sampled modal
    zone when it holds at least t of the k samples, else keep s_g ("sticky_t") or zone 0 ("zero_t")."""
    S_g, S_l, A_g = game.n_global_states, game.n_local_states, game.n_global_actions
    if not S_l == A_g == S_g:
        raise InputError(f"heuristic dispatchers need zones: S_g == S_l == A_g, got {S_g}, {S_l}, {A_g}")
    d = cv.enumerate_counts(k, S_l)
    mode, top = d.argmax(1), d.max(1)
    out: dict[str, np.ndarray] = {}
    for t in range(1, k + 1):
        hit = top >= t
        out[f"sticky_{t}"] = np.where(hit[None, :], mode[None, :], np.arange(S_g)[:, None])
        out[f"zero_{t}"] = np.tile(np.where(hit, mode, 0), (S_g, 1))
    return out
