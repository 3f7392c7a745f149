"""Named Nash-gap estimators on the n-agent system (PAPER.md 7.3, DESIGN.md "names are claims").

Every gap is the paired gain V(deviation) - V(pi_g, pi_l) of ONE deviation found by a search, and every
search is independent of the learner that produced the policies (no L-LEARN here; G-LEARN only as a
global oracle, with other settings than training: see `gap_g_restricted` for the one exception).
Two episode sets, from two of the three streams of one seed (`streams`):

- the SEARCH set (`search_episodes` episodes on min(n, `search_agents`) agents; min(n, max(search_agents,
  10 k)) for dispatchers, whose value depends on the sampled fraction k / n) ranks candidates;
- the FINAL set (`n_episodes` fresh episodes on n agents) re-estimates the chosen deviation's gain,
  paired with V(pi_g, pi_l) on the same episodes (common random numbers: `rollouts` and
  `sim.evaluate` run the one episode loop `sim.run_episodes`, with the same environment / observation /
  action streams and one uniform per agent and step, so the robots that keep pi_l draw identical
  numbers in both arms).

Hence each reported gap is an unbiased estimate (mean +- stderr over the final episodes) of the gain
of the deviation it found, and so an estimate of a LOWER BOUND of the corresponding best-response gap
(the search may miss the best deviation). A search that finds nothing better returns the current
policy, whose gain is exactly 0 (stderr 0). Values are discounted returns over `horizon` steps.

- `gap_l_unilateral`: one tagged robot (agent 0) deviates, n - 1 keep pi_l.
- `gap_l_shared`: every robot switches to one shared policy pi_l' (a (s_g, s_l) table, or uniform).
- `gap_g_restricted`: the dispatcher switches to another pi_g' over count vectors of the same k.
- `gap_g_full`: the dispatcher switches to one observing the whole population.
Exact brute-force counterparts for tiny games: `metrics.exact_unilateral_gap`, `exact_shared_gap`,
`exact_restricted_global_gap`, `exact_full_information_gap`.
The candidate panels and searches the estimators use are in `marl.deviations` (re-exported here).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl import sim
from altmarl_ros.marl.deviations import (
    M_TRAIN,
    OracleRule,
    SeedLike,
    coordinate_ascent,
    fresh_rng,
    local_panel,
    one_hot,
    own_returns_on_paths,
    restricted_candidates,
    restricted_oracle_rule,
    shared_returns,
)
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.metrics import global_oracle
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy, TaggedLocalPolicy
from altmarl_ros.marl.sim import Estimate, GlobalController, LocalController, Ordering

__all__ = [
    "METRIC_NAMES",
    "M_TRAIN",
    "Deviation",
    "Gaps",
    "OracleRule",
    "Rollouts",
    "Streams",
    "UnilateralGap",
    "estimate_gaps",
    "fresh_rng",
    "gap_g_full",
    "gap_g_restricted",
    "gap_l_shared",
    "gap_l_unilateral",
    "local_panel",
    "own_returns_on_paths",
    "restricted_candidates",
    "restricted_oracle_rule",
    "rollouts",
    "shared_returns",
    "streams",
]


class Rollouts(NamedTuple):
    """Per-episode results of `rollouts`."""

    system: np.ndarray  # (E,) discounted system return sum_t gamma^t (r_g + (1/n) sum_i r_l)
    own: np.ndarray  # (E,) discounted own local return of agent 0, sum_t gamma^t r_l(s_0, s_g, a_0)
    s_g: np.ndarray  # (E, horizon + 1) global-state path
    s_l0: np.ndarray  # (E,) agent 0's initial local state


def rollouts(game: TabularGame, pi_g: GlobalController, pi_l: LocalController, seed: SeedLike, *,
             n_agents: int, horizon: int, n_episodes: int, ordering: Ordering = "paper",
             batch_size: int = 64) -> Rollouts:
    """The episodes of `sim.evaluate(..., fresh_rng(seed))`: the same loop (`sim.run_episodes`), so the same
    draws and `system` equal to its `returns`; also agent 0's own return and the s_g path."""
    ep = sim.run_episodes(game, pi_g, pi_l, fresh_rng(seed), n_agents=n_agents, horizon=horizon,
                          n_episodes=n_episodes, ordering=ordering, batch_size=batch_size, mode_accuracy=False)
    return Rollouts(ep.returns, ep.own, ep.s_g, ep.s_l0)


class Streams(NamedTuple):
    search: np.random.SeedSequence  # episodes that rank candidate deviations
    final: np.random.SeedSequence  # fresh episodes that estimate the chosen deviation's gain
    learn: np.random.SeedSequence  # G-LEARN's sampled transitions in the restricted oracle


def streams(seed: int) -> Streams:
    """The three independent streams of one gap seed (identical for every estimator, so that
    `estimate_gaps` shares one baseline)."""
    return Streams(*np.random.SeedSequence(seed).spawn(3))


class _Setup(NamedTuple):
    streams: Streams
    search_agents: int
    kwargs: dict[str, object]  # horizon, ordering


def _setup(seed: int, n_agents: int, search_agents: int, horizon: int, ordering: Ordering,
           min_agents: int = 1) -> _Setup:
    if n_agents < 1 or horizon < 1:
        raise InputError(f"need n_agents >= 1 and horizon >= 1, got {n_agents}, {horizon}")
    return _Setup(streams(seed), min(n_agents, max(search_agents, min_agents)),
                  {"horizon": horizon, "ordering": ordering})


def _paired(dev: np.ndarray, base: np.ndarray, scale: float = 1.0) -> Estimate:
    return Estimate.of(scale * (dev - base))


def _zero(n_episodes: int) -> Estimate:
    """The gain of the current policy against itself on paired episodes: exactly 0."""
    return Estimate(0.0, 0.0, n_episodes)


# ----------------------------------------------------------------------------------------------
# gap_l_unilateral
# ----------------------------------------------------------------------------------------------

class UnilateralGap(NamedTuple):
    """`gap_l_unilateral`: agent 0 deviates to `pi_dev`, agents 1..n-1 keep pi_l, pi_g fixed.

    gain: n x [V(agent 0 on pi_dev) - V(pi_g, pi_l)], paired on the final episodes. In this cooperative
        game every robot's payoff is the system value V (Eq. 1), so a robot's Nash deviation gain is the
        change of V; one robot moves V by O(1/n), and n x that change puts it on the scale of one robot's
        return (comparable with `gap_l_shared`). It is own_gain plus the externality
        Delta[n r_g + sum_{j>0} r_l^j] that the robot causes through the k-subsampled dispatcher (it is
        observed with probability k/n per step); that externality dominates the variance.
    own_gain: the tagged robot's own discounted local return, pi_dev minus pi_l, on the same episodes
        (the representative-agent objective of the paper's L-LEARN).
    Both are unbiased estimates for the found deviation and hence estimates of lower bounds of the best
    unilateral gains over (s_g, s_l) tables (exact: `metrics.exact_unilateral_gap`).
    """

    gain: Estimate
    own_gain: Estimate
    pi_dev: TabularLocalPolicy
    source: str  # panel member the search started from ("pi_l" when nothing better was found)
    search_gain: float  # own-return gain predicted on the search paths (optimistic: selected there)


def gap_l_unilateral(game: TabularGame, pi_g: GlobalController, pi_l: TabularLocalPolicy, *, seed: int,
                     n_agents: int, horizon: int, n_episodes: int, ordering: Ordering = "paper",
                     search_agents: int = 100, search_episodes: int = 256, max_passes: int = 3,
                     baseline: Rollouts | None = None) -> UnilateralGap:
    """Unilateral local gap of agent 0 on the n-agent simulator (see `UnilateralGap` for the scale).

    Search (independent of L-LEARN): simulate (pi_g, pi_l) on the search episodes, record each episode's
    s_g path and agent 0's initial state, then maximise agent 0's exact own return on those paths
    (`own_returns_on_paths`: its influence on s_g is ignored during the search only) over deterministic
    (s_g, s_l) tables: the best of `local_panel` and pi_l, then coordinate ascent. The chosen table is
    re-evaluated on the final episodes with the full n-agent dynamics (its externality included).
    `baseline`: the (pi_g, pi_l) rollouts on the final stream, to share between estimators."""
    setup = _setup(seed, n_agents, search_agents, horizon, ordering, _k_of(pi_g))
    search = rollouts(game, pi_g, pi_l, setup.streams.search, n_agents=setup.search_agents,
                      n_episodes=search_episodes, **setup.kwargs)  # type: ignore[arg-type]

    def objective(tables: np.ndarray) -> np.ndarray:
        return own_returns_on_paths(game, one_hot(game, tables), search.s_g, search.s_l0, ordering=ordering)

    own_base = float(own_returns_on_paths(game, pi_l.probs[None], search.s_g, search.s_l0, ordering=ordering)[0])
    panel = local_panel(game, pi_l)
    names = list(panel)
    values = objective(np.stack([panel[n] for n in names]))
    start = int(values.argmax())
    table, value = coordinate_ascent(objective, panel[names[start]], float(values[start]),
                                      game.n_local_actions, max_passes)
    if value <= own_base + 1e-12:
        return UnilateralGap(_zero(n_episodes), _zero(n_episodes), pi_l, "pi_l", 0.0)
    pi_dev = TabularLocalPolicy(one_hot(game, table))
    base = baseline if baseline is not None else rollouts(game, pi_g, pi_l, setup.streams.final, n_agents=n_agents,
                                                          n_episodes=n_episodes, **setup.kwargs)  # type: ignore[arg-type]
    dev = rollouts(game, pi_g, TaggedLocalPolicy(pi_l, pi_dev), setup.streams.final, n_agents=n_agents,
                   n_episodes=n_episodes, **setup.kwargs)  # type: ignore[arg-type]
    return UnilateralGap(_paired(dev.system, base.system, n_agents), _paired(dev.own, base.own), pi_dev,
                         names[start], value - own_base)


# ----------------------------------------------------------------------------------------------
# gap_l_shared
# ----------------------------------------------------------------------------------------------

class Deviation(NamedTuple):
    """A gap as the paired gain of one found deviation: gain = V(deviation) - V(pi_g, pi_l) on the final
    episodes (an unbiased estimate for that deviation, a lower bound of the best-response gap)."""

    gain: Estimate
    policy: TabularLocalPolicy | GlobalController  # the deviation (the current policy when none was better)
    source: str  # which candidate won
    search_gain: float  # its gain on the search episodes (optimistic: it was selected there)
    candidates_tried: int = 0  # how many candidates (or oracle starts) the search tried


def gap_l_shared(game: TabularGame, pi_g: GlobalController, pi_l: TabularLocalPolicy, *, seed: int,
                 n_agents: int, horizon: int, n_episodes: int, ordering: Ordering = "paper",
                 search_agents: int = 100, search_episodes: int = 64, max_passes: int = 1,
                 baseline: Rollouts | None = None) -> Deviation:
    """`gap_l_shared`: every robot switches to one shared policy pi_l'(a | s_l, s_g).

    gain = V(pi_g, pi_l') - V(pi_g, pi_l) on the final n-agent episodes: an estimate of a lower bound of
    the shared local gap max_{pi_l'} V(pi_g, pi_l') - V(pi_g, pi_l) (exact: `metrics.exact_shared_gap`).
    Search (independent of L-LEARN), candidates scored by `shared_returns` on the search episodes
    (common random numbers across candidates): pi_l, uniform and `local_panel`; then coordinate ascent
    over deterministic (s_g, s_l) tables from the best panel table (each entry's alternatives in one
    simulation). The search runs on min(n, search_agents) agents, so it only ranks candidates."""
    setup = _setup(seed, n_agents, search_agents, horizon, ordering, _k_of(pi_g))

    def values(probs: np.ndarray) -> np.ndarray:
        return shared_returns(game, pi_g, probs, setup.streams.search, n_agents=setup.search_agents,
                              n_episodes=search_episodes, **setup.kwargs).mean(1)  # type: ignore[arg-type]

    uniform = TabularLocalPolicy.uniform(*pi_l.probs.shape)
    panel = local_panel(game, pi_l)
    names = list(panel)
    scores = values(np.stack([pi_l.probs, uniform.probs, *(one_hot(game, panel[n]) for n in names)]))
    v_base, v_uniform, scores = float(scores[0]), float(scores[1]), scores[2:]
    start = int(scores.argmax())
    table, value = coordinate_ascent(lambda tables: values(one_hot(game, tables)), panel[names[start]],
                                      float(scores[start]), game.n_local_actions, max_passes)
    if max(value, v_uniform) <= v_base + 1e-12:
        return Deviation(_zero(n_episodes), pi_l, "pi_l", 0.0, 2 + len(names))
    if v_uniform > value:
        pi_dev, source, value = uniform, "uniform", v_uniform
    else:
        pi_dev, source = TabularLocalPolicy(one_hot(game, table)), names[start]
    base = baseline if baseline is not None else rollouts(game, pi_g, pi_l, setup.streams.final, n_agents=n_agents,
                                                          n_episodes=n_episodes, **setup.kwargs)  # type: ignore[arg-type]
    dev = rollouts(game, pi_g, pi_dev, setup.streams.final, n_agents=n_agents, n_episodes=n_episodes,
                   **setup.kwargs)  # type: ignore[arg-type]
    return Deviation(_paired(dev.system, base.system), pi_dev, source, value - v_base, 2 + len(names))


# ----------------------------------------------------------------------------------------------
# gap_g_restricted and gap_g_full
# ----------------------------------------------------------------------------------------------

def _k_of(pi_g: GlobalController) -> int:
    return int(getattr(pi_g, "k", 1))


def _select_global(game: TabularGame, pi_g: GlobalController, pi_l: TabularLocalPolicy,
                   candidates: dict[str, GlobalController], setup: _Setup, *, n_agents: int, n_episodes: int,
                   search_episodes: int, baseline: Rollouts | None,
                   known: dict[str, Estimate] | None = None) -> Deviation:
    """Score candidates on the search episodes, re-estimate the best on the final episodes (`known`:
    gains already estimated on the same final episodes, not simulated again)."""
    def value_of(ctrl: GlobalController) -> float:
        return float(rollouts(game, ctrl, pi_l, setup.streams.search, n_agents=setup.search_agents,
                              n_episodes=search_episodes, **setup.kwargs).system.mean())  # type: ignore[arg-type]

    v_base = value_of(pi_g)
    scores = {name: value_of(c) for name, c in candidates.items()}
    name = max(scores, key=lambda n: scores[n])
    tried = len(candidates)
    if scores[name] <= v_base + 1e-12:
        return Deviation(_zero(n_episodes), pi_g, "pi_g", 0.0, tried)
    if known and name in known:
        return Deviation(known[name], candidates[name], name, scores[name] - v_base, tried)
    base = baseline if baseline is not None else rollouts(game, pi_g, pi_l, setup.streams.final, n_agents=n_agents,
                                                          n_episodes=n_episodes, **setup.kwargs)  # type: ignore[arg-type]
    dev = rollouts(game, candidates[name], pi_l, setup.streams.final, n_agents=n_agents, n_episodes=n_episodes,
                   **setup.kwargs)  # type: ignore[arg-type]
    return Deviation(_paired(dev.system, base.system), candidates[name], name, scores[name] - v_base, tried)


def gap_g_restricted(game: TabularGame, pi_g: TabularGlobalPolicy, pi_l: TabularLocalPolicy, *, seed: int,
                     n_agents: int, horizon: int, n_episodes: int, ordering: Ordering = "paper",
                     search_agents: int = 100, search_episodes: int = 64, exact_max_d: int = 210,
                     sample_budget: int = 1_500_000, baseline: Rollouts | None = None,
                     oracle: str = "restricted_best_response") -> Deviation:
    """`gap_g_restricted`: the dispatcher switches to another pi_g' over count vectors of the same k,
    executed as in training (a fresh uniform k-subset of the n robots per step).

    gain = V(pi_g', pi_l) - V(pi_g, pi_l) on the final n-agent episodes: an estimate of a LOWER bound of
    the restricted gap (exact: `metrics.exact_restricted_global_gap`). oracle "restricted_best_response"
    (default, paper ordering): `restricted_gap.gap_g_restricted_oracle`, policy iteration over memoryless
    tables on the exact population model (small n) or the large-n grid model, from pi_g and every
    constant table, independent of G-LEARN; `search_gain` is then the oracle's model gain. oracle
    "g_learn" (the former estimator; always for the authors' ordering): `restricted_candidates` (G-LEARN
    exact / more samples / deterministic) chosen on the search episodes. `candidates_tried` says how many
    starts or candidates were tried; source "pi_g" means nothing was found (reported as such)."""
    if oracle not in ("restricted_best_response", "g_learn"):
        raise InputError(f"oracle must be 'restricted_best_response' or 'g_learn', got {oracle!r}")
    setup = _setup(seed, n_agents, search_agents, horizon, ordering, 10 * pi_g.k)
    if oracle == "restricted_best_response" and ordering == "paper":
        from altmarl_ros.marl.restricted_gap import gap_g_restricted_oracle

        found = gap_g_restricted_oracle(game, pi_g, pi_l, seed=setup.streams.final, n_agents=n_agents,
                                        horizon=horizon, n_episodes=n_episodes,
                                        rng=np.random.default_rng(setup.streams.learn))
        return Deviation(found.report.gain, found.policy, found.report.winner or "pi_g", found.model_gain,
                         found.report.candidates_tried)
    cands: dict[str, GlobalController] = dict(restricted_candidates(
        game, pi_l, pi_g.k, np.random.default_rng(setup.streams.learn), exact_max_d=exact_max_d,
        sample_budget=sample_budget))
    return _select_global(game, pi_g, pi_l, cands, setup, n_agents=n_agents, n_episodes=n_episodes,
                          search_episodes=search_episodes, baseline=baseline)


def gap_g_full(game: TabularGame, pi_g: GlobalController, pi_l: TabularLocalPolicy, *, seed: int,
               n_agents: int, horizon: int, n_episodes: int, ordering: Ordering = "paper", k_oracle: int = 100,
               oracle_g: GlobalController | None = None, extra: dict[str, GlobalController] | None = None,
               search_agents: int = 100, search_episodes: int = 64, baseline: Rollouts | None = None,
               known: dict[str, Estimate] | None = None) -> Deviation:
    """`gap_g_full`: the dispatcher switches to one that observes the whole population.

    gain = V(oracle, pi_l) - V(pi_g, pi_l) on the final n-agent episodes: an estimate of a LOWER bound of
    the full-information gap sup_{any dispatcher} V(., pi_l) - V(pi_g, pi_l) (exact:
    `metrics.exact_full_information_gap`), because every candidate is a feasible dispatcher. Candidates:
    `metrics.global_oracle` (deterministic mean-field G-LEARN at k_oracle on the rounded whole-population
    histogram; pass `oracle_g` to reuse one, it costs ~45 s at k_oracle = 100 on the warehouse) and the
    `extra` ones (e.g. the restricted winner: a k-subsampling dispatcher is also feasible here), chosen on
    the search episodes on min(n, max(search_agents, 10 k)) robots."""
    setup = _setup(seed, n_agents, search_agents, horizon, ordering, 10 * _k_of(pi_g))
    oracle = oracle_g if oracle_g is not None else global_oracle(game, pi_l, k_oracle=k_oracle)
    cands = {"full_information_oracle": oracle, **(extra or {})}
    return _select_global(game, pi_g, pi_l, cands, setup, n_agents=n_agents, n_episodes=n_episodes,
                          search_episodes=search_episodes, baseline=baseline, known=known)


# ----------------------------------------------------------------------------------------------
# All four
# ----------------------------------------------------------------------------------------------

class Gaps(NamedTuple):
    """The four named gaps of (pi_g, pi_l) on n agents, all paired with `value` on the same final episodes.

    Each gap is an unbiased estimate of its found deviation's gain and an estimate of a lower bound of
    the corresponding best-response gap (see the estimator of the same name)."""

    value: Estimate  # V(pi_g, pi_l), discounted over `horizon` steps on n agents
    unilateral: UnilateralGap
    shared: Deviation
    restricted: Deviation
    full: Deviation
    seconds: dict[str, float]  # wall time of `estimate_gaps`: per part (baseline, each gap) and total

    @property
    def gap_l_unilateral(self) -> Estimate:
        return self.unilateral.gain

    @property
    def gap_l_unilateral_own(self) -> Estimate:
        return self.unilateral.own_gain

    @property
    def gap_l_shared(self) -> Estimate:
        return self.shared.gain

    @property
    def gap_g_restricted(self) -> Estimate:
        return self.restricted.gain

    @property
    def gap_g_full(self) -> Estimate:
        return self.full.gain

    def metrics(self) -> dict[str, Estimate]:
        """Metric name -> estimate, the names used in sweep CSVs."""
        return {name: getattr(self, name) for name in METRIC_NAMES}


METRIC_NAMES: tuple[str, ...] = ("value", "gap_l_unilateral", "gap_l_unilateral_own", "gap_l_shared",
                                 "gap_g_restricted", "gap_g_full")


def estimate_gaps(game: TabularGame, pi_g: TabularGlobalPolicy, pi_l: TabularLocalPolicy, *, seed: int,
                  n_agents: int, horizon: int, n_episodes: int = 400, ordering: Ordering = "paper",
                  k_oracle: int = 100, oracle_g: GlobalController | None = None, search_agents: int = 100,
                  search_episodes: int = 64, unilateral_search_episodes: int = 256, shared_passes: int = 1,
                  exact_max_d: int = 210, sample_budget: int = 1_500_000) -> Gaps:
    """All four gaps with one shared baseline (final episodes of `streams(seed).final`); see each estimator.

    `oracle_g` reuses a full-information oracle (cache it by pi_l: it does not depend on pi_g or k).
    `shared_passes`: coordinate-ascent passes of the shared search (each pass scores S_g S_l (A_l - 1)
    tables; more passes find larger shared deviations at a proportional search cost)."""
    if pi_g.k > n_agents:
        raise InputError(f"pi_g observes k={pi_g.k} robots but n_agents={n_agents}")
    common = {"seed": seed, "n_agents": n_agents, "horizon": horizon, "n_episodes": n_episodes,
              "ordering": ordering, "search_agents": search_agents}
    seconds: dict[str, float] = {}
    t0 = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name], clock = now - clock, now

    base = rollouts(game, pi_g, pi_l, streams(seed).final, n_agents=n_agents, horizon=horizon,
                    n_episodes=n_episodes, ordering=ordering)
    lap("baseline")
    unilateral = gap_l_unilateral(game, pi_g, pi_l, search_episodes=unilateral_search_episodes, baseline=base,
                                  **common)  # type: ignore[arg-type]
    lap("gap_l_unilateral")
    shared = gap_l_shared(game, pi_g, pi_l, search_episodes=search_episodes, max_passes=shared_passes,
                          baseline=base, **common)  # type: ignore[arg-type]
    lap("gap_l_shared")
    restricted = gap_g_restricted(game, pi_g, pi_l, search_episodes=search_episodes, exact_max_d=exact_max_d,
                                  sample_budget=sample_budget, baseline=base, **common)  # type: ignore[arg-type]
    lap("gap_g_restricted")
    extra: dict[str, GlobalController] = {}
    known: dict[str, Estimate] = {}
    if restricted.source != "pi_g":  # a k-subsampling dispatcher is feasible for a full-information one
        extra[f"restricted_{restricted.source}"] = restricted.policy  # type: ignore[assignment]
        known[f"restricted_{restricted.source}"] = restricted.gain
    full = gap_g_full(game, pi_g, pi_l, k_oracle=k_oracle, oracle_g=oracle_g, extra=extra, known=known,
                      search_episodes=search_episodes, baseline=base, **common)  # type: ignore[arg-type]
    lap("gap_g_full")
    seconds["total"] = time.perf_counter() - t0
    return Gaps(Estimate.of(base.system), unilateral, shared, restricted, full, seconds)
