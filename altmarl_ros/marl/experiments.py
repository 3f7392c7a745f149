"""Experiments: train from a config, evaluate on the n-agent system, and one sweep cell as tidy rows
(`run_one`; `marl.executors` runs the grid of cells).

Seeds become generators only here: a run's seed gives one integer seed per purpose (`_int_seed`: each
start's in-loop evaluations, the selection, the gaps), G-LEARN a generator per (seed, pi_l), and the
final evaluation `np.random.SeedSequence(seed).spawn(seeds)`.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl import population_sim, sim
from altmarl_ros.marl.artifacts import atomic_write_text, save_policies
from altmarl_ros.marl.config import (
    NEEDS_REFERENCE,
    REFERENCE_MAX_TABLE,
    ConfigError,
    Start,
    TrainConfig,
    expand_starts,
)
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.gaps import Gaps, estimate_gaps
from altmarl_ros.marl.learners.alternate import (
    AlternatingResult,
    RoundRecord,
    Selection,
    UpdateRule,
    alternate,
    select_equilibrium,
)
from altmarl_ros.marl.metrics import global_oracle
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.pooled_training import PooledStep, train_pooled
from altmarl_ros.marl.posterior import reference_q
from altmarl_ros.marl.reports import nash_gap_lower_bound, stop_report
from altmarl_ros.marl.restricted import restricted_best_response
from altmarl_ros.marl.run_learners import GlobalLearner, LocalLearner, Reference, restart, start_pair

ROW_FIELDS = ("k", "seed", "metric", "value", "stderr")


class TrainResult(NamedTuple):
    pi_g: Any  # TabularGlobalPolicy (FullInformationPolicy for the full-information reference)
    pi_l: TabularLocalPolicy
    game: TabularGame
    game_spec: dict[str, Any]
    alternation: AlternatingResult  # the chosen start's run
    selection: Selection  # every start's outcome and which was chosen
    train_seconds: float
    g_learn_calls: int  # G-LEARN computations actually run (each distinct pi_l is solved once)
    pooled: PooledStep | None = None  # the pooled training (config.pooled.enabled), after the alternation
    values: np.ndarray | None = None  # full information: G-LEARN's V for the chosen pi_l (the posterior start's Q)
    response: Any = None  # full information: that solve's greedy table (FullInformationPolicy), with `values`
    q: np.ndarray | None = None  # full information: `posterior.reference_q` at `values` (the posterior's Q_ref)
    responses: dict[Any, Any] | None = None  # full information: `run_learners.Reference.responses`, shared by the k


class FinalEvaluation(NamedTuple):
    """Final evaluation over `seeds` x `episodes` episodes."""

    reward_mean: float  # mean of the per-seed mean returns
    reward_std: float  # std over the per-seed means (the authors' error bars)
    reward_stderr: float  # standard error over all episodes
    mode_accuracy: float
    mode_accuracy_stderr: float
    seed_means: np.ndarray  # (seeds,)
    returns: np.ndarray  # (seeds * episodes,) every episode's return, in a fixed order (paired across policies)


def _streams(seed: int, n: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(n)


def _int_seed(seed: int, purpose: int) -> int:
    """An integer seed for one purpose of a run (0 in-loop evaluations, 1 selection, ...)."""
    return int(np.random.SeedSequence([seed, 1000 + purpose]).generate_state(1)[0])


def value_scale(game: TabularGame) -> float:
    """R / (1 - gamma), R = range(r_g) + range(r_l): an upper bound of the range of discounted values."""
    return float((np.ptp(game.r_g) + np.ptp(game.r_l)) / (1.0 - game.gamma))


def paired_evaluator(config: TrainConfig, game: TabularGame, *, episodes: int, horizon: int):
    """evaluate(pairs, seed) -> (len(pairs), episodes) returns, every pair on the episodes of `seed`
    (`population_sim.run_count_episodes`, the simulator by counts: the pairs side by side on common random
    numbers from a fresh generator)."""

    def evaluate(pairs, seed: int) -> np.ndarray:
        return population_sim.run_count_episodes(game, pairs, np.random.default_rng(seed), n_agents=config.n_agents,
                                                 horizon=horizon, n_episodes=episodes,
                                                 ordering=config.ordering).returns  # type: ignore[arg-type]

    return evaluate


def training_starts(config: TrainConfig, game: TabularGame, *, full_information: bool) -> list[Start]:
    """The run's starts: loop.starts expanded for the game. The starts built from the full-information reference
    are dropped when training the reference itself, and (with a warning) when the reference is out of reach
    for the game (`FullInfoConfig.feasible`)."""
    starts = expand_starts(config.loop.parsed_starts, game.n_global_actions)
    if full_information:
        return [s for s in starts if s.kind not in NEEDS_REFERENCE]
    needy = [s.name for s in starts if s.kind in NEEDS_REFERENCE]
    if needy and not config.full_information.feasible(game.n_local_states):
        also = " and loop.refine" if config.loop.refine else ""  # `_restarts` then says nothing
        warnings.warn(f"starts {needy}{also} skipped: {_reference_too_large(config, game)}", stacklevel=2)
        return [s for s in starts if s.kind not in NEEDS_REFERENCE]
    return starts


def _reference_too_large(config: TrainConfig, game: TabularGame) -> str:
    fi = config.full_information
    return (f"the full-information reference needs {fi.table_size(game.n_local_states):,} count vectors of "
            f"full_information.k = {fi.k} over {game.n_local_states} local states (limit {REFERENCE_MAX_TABLE:,}); "
            "lower full_information.k")


def _check_reference(config: TrainConfig, game: TabularGame) -> None:
    if not config.full_information.feasible(game.n_local_states):
        raise ConfigError(_reference_too_large(config, game) + " or set full_information.enabled: false")


def _train_reference(config: TrainConfig, game: TabularGame, *, seed: int, k: int) -> TrainResult:
    """The full-information reference pair of this seed (ConfigError when out of reach for the game)."""
    _check_reference(config, game)
    return _train(config, game, training_starts(config, game, full_information=True), seed=seed, k=k,
                  full_information=True, progress=None)


def train_policies(config: TrainConfig, *, k: int, seed: int, full_information: bool = False,
                   progress: Callable[[str, RoundRecord], None] | None = None,
                   reference: TrainResult | None = None) -> TrainResult:
    """Run ALTERNATING-MARL on the config's game for budget k from every start of config.loop.starts,
    and keep the best pair among those that stopped at a fixed point (`alternate.select_equilibrium`).

    config.pooled.enabled: then the pooled training (`pooled_training`), whose record is `TrainResult.pooled`.
    full_information: train the reference dispatcher that sees the whole population's histogram
    (rounded to config.full_information.k counts) instead of k samples; `k` is then unused. The
    full_information and posterior starts, and the pooled training, start from that reference pair of the
    same seed: `reference` when given (`reference_pair`, e.g. trained once per seed by a sweep), else it is
    trained here first. `progress(start, record)` is called after each round.
    """
    t0 = time.perf_counter()
    game = make_game(config.game, **config.game_options)
    if not 1 <= k <= config.n_agents:
        raise InputError(f"k must satisfy 1 <= k <= n_agents={config.n_agents}, got {k}")
    if full_information:
        _check_reference(config, game)
    starts = training_starts(config, game, full_information=full_information)
    pooled = config.pooled.enabled and not full_information
    if reference is None and (any(s.kind in NEEDS_REFERENCE for s in starts)
                              or (pooled and config.full_information.enabled)):
        reference = _train_reference(config, game, seed=seed, k=k)
    trained = _train(config, game, starts, seed=seed, k=k, full_information=full_information, progress=progress,
                     reference=reference)
    if pooled:
        trained = _pooled(config, game, trained, seed=seed, k=k,
                          reference=reference if config.full_information.enabled else None)
    return trained._replace(train_seconds=time.perf_counter() - t0)


def _pooled(config: TrainConfig, game: TabularGame, trained: TrainResult, *, seed: int, k: int,
            reference: TrainResult | None) -> TrainResult:
    """The pooled training (`pooled_training`) from the alternation's pair; the reference pair, when given,
    is its second start."""
    loop = config.loop
    start = None if reference is None else (reference.pi_g.pi_g.actions, config.full_information.k, reference.pi_l)
    (pi_g, pi_l), step = train_pooled(
        game, (trained.pi_g, trained.pi_l), config.pooled, learn_local=LocalLearner(game, config.l_learn),
        n_agents=config.n_agents, horizon=loop.eval_horizon, max_rounds=loop.max_rounds,
        rule=UpdateRule(loop.rule, c=loop.c, confidence=loop.confidence, rtol=loop.rtol),
        value_scale=value_scale(game), seed=_int_seed(seed, 2), reference=start,
        evaluate=paired_evaluator(config, game, episodes=loop.eval_episodes, horizon=loop.eval_horizon),
        decide=paired_evaluator(config, game, episodes=config.pooled.episodes, horizon=loop.eval_horizon))
    return trained._replace(pi_g=pi_g, pi_l=pi_l, pooled=step)


def _train(config: TrainConfig, game: TabularGame, starts: Sequence[Start], *, seed: int, k: int,
           full_information: bool, progress: Callable[[str, RoundRecord], None] | None,
           reference: TrainResult | None = None) -> TrainResult:
    """The alternation from each of `starts` that runs at k (`LoopConfig.starts_at`; in order: they share
    G-LEARN's cache and warm start), equilibrium selection, then the posterior restarts of loop.refine and the
    oracle restart of loop.oracle_max_k (`run_learners.restart`)."""
    loop = config.loop
    k_learner = config.full_information.k if full_information else k
    learn_global = GlobalLearner(game, config.g_learn, k=k_learner, n_agents=config.n_agents,
                                 horizon=loop.eval_horizon, seed=seed, full_information=full_information,
                                 ordering=config.ordering)  # type: ignore[arg-type]
    learn_local = LocalLearner(game, config.l_learn)
    evaluate = paired_evaluator(config, game, episodes=loop.eval_episodes, horizon=loop.eval_horizon)
    judge = paired_evaluator(config, game, episodes=loop.select_episodes, horizon=loop.eval_horizon) \
        if loop.select_episodes else evaluate  # equilibrium selection
    rule = UpdateRule(loop.rule, c=loop.c, confidence=loop.confidence, rtol=loop.rtol)
    names: list[str] = []
    results: list[AlternatingResult] = []
    restart_slots = itertools.count(len(starts))  # a run's in-loop evaluation seed is its slot's, whichever ran

    def run(name: str, pi_g0: Any, pi_l0: TabularLocalPolicy, slot: int | None = None) -> None:
        slot = next(restart_slots) if slot is None else slot
        results.append(alternate(learn_global=learn_global, learn_local=learn_local, evaluate=evaluate,
                                 pi_g0=pi_g0, pi_l0=pi_l0, rule=rule, max_rounds=loop.max_rounds, k=k_learner,
                                 value_scale=value_scale(game), eval_seed=_int_seed(seed, 10 + slot),
                                 on_round=None if progress is None else functools.partial(progress, name)))
        names.append(name)

    ref = None if reference is None else Reference(reference.pi_g, reference.pi_l, reference.values,
                                                   reference.response, reference.q, reference.responses)
    for slot, start in loop.starts_at(starts, k):  # the reference's starts hold no posterior start: all run
        run(start.name, *start_pair(start, game, learn_global, learn_local, ref), slot=slot)
    def select() -> Selection:
        return select_equilibrium(names, results, judge, _int_seed(seed, 1))

    def posterior(pi_g: Any, pi_l: TabularLocalPolicy) -> TabularGlobalPolicy:
        return learn_global.posterior_response(pi_l, K=config.full_information.k, reference=ref)

    def oracle(pi_g: TabularGlobalPolicy, pi_l: TabularLocalPolicy) -> TabularGlobalPolicy:
        br = restricted_best_response(game, pi_l, k=k, n_agents=config.n_agents, horizon=loop.eval_horizon,
                                      rng=np.random.default_rng([seed, 17]), starts={"best": pi_g.actions})
        return TabularGlobalPolicy(br.table, k, game.n_local_states, game.n_global_actions)

    selection = restart(select(), select, posterior, run, restarts=_restarts(config, game, full_information),
                        name="refine", tied_z=rule.z if loop.refine_from == "tied" else None)
    if not full_information and k <= loop.oracle_max_k:
        selection = restart(selection, select, oracle, run, restarts=1, name="oracle")
    best = selection.best.result
    key = best.pi_l.probs.tobytes()
    values = learn_global.values.get(key)  # full information only
    q = None if values is None else reference_q(game, best.pi_l, K=k_learner, tol=config.g_learn.tol,
                                                max_iter=config.g_learn.max_iter, V=values)  # once per reference
    return TrainResult(best.pi_g, best.pi_l, game, config.game_spec, best, selection, math.nan,
                       len(learn_global.cache), values=values,
                       response=None if values is None else learn_global.cache[key], q=q,
                       responses=None if values is None else {})


def _restarts(config: TrainConfig, game: TabularGame, full_information: bool) -> int:
    """loop.refine, or 0 for the reference itself and (with a warning) when its table is out of reach."""
    if full_information or not config.loop.refine:
        return 0
    if not config.full_information.feasible(game.n_local_states):
        if not any(s.kind in NEEDS_REFERENCE for s in config.loop.parsed_starts):  # else training_starts said it
            warnings.warn(f"loop.refine skipped: {_reference_too_large(config, game)}", stacklevel=3)
        return 0
    return config.loop.refine


def evaluate_policies(config: TrainConfig, game: TabularGame, pi_g: Any, pi_l: TabularLocalPolicy, *,
                      seed: int) -> FinalEvaluation:
    """Final evaluation: config.evaluation.seeds independent seeds x episodes on n agents, simulated by
    counts (`population_sim`). The same `seed` gives every policy the same initial states and the same uniforms
    for the global transitions and the k-samples (common random numbers), so `returns` pair up."""
    ev = config.evaluation
    means, returns, hits = [], [], []
    for seq in _streams(seed, ev.seeds):
        result = population_sim.evaluate(game, pi_g, pi_l, np.random.default_rng(seq), n_agents=config.n_agents,
                                         horizon=ev.horizon, n_episodes=ev.episodes,
                                         ordering=config.ordering)  # type: ignore[arg-type]
        means.append(result.reward.mean)
        returns.append(result.returns)
        hits.append(result.mode_accuracy.mean)
    all_returns = np.concatenate(returns)
    acc = sim.Estimate.of(np.asarray(hits))
    seed_means = np.asarray(means)
    return FinalEvaluation(float(seed_means.mean()), float(seed_means.std()), sim.Estimate.of(all_returns).stderr,
                           acc.mean, acc.stderr, seed_means, all_returns)


def ratio_estimate(num: np.ndarray, den: np.ndarray) -> sim.Estimate:
    """mean(num) / mean(den) over paired samples, with its delta-method standard error."""
    m_n, m_d = float(num.mean()), float(den.mean())
    ratio = m_n / m_d
    resid = (num - ratio * den) / m_d
    return sim.Estimate(ratio, float(resid.std(ddof=1) / np.sqrt(num.size)), int(num.size))


GAP_METRIC = "nash_gap_lower_bound"  # the row that says a cell's gaps were estimated


def estimate_gaps_for(config: TrainConfig, game: TabularGame, pi_g: TabularGlobalPolicy, pi_l: TabularLocalPolicy,
                      *, seed: int, oracle_cache: dict[bytes, Any] | None = None) -> Gaps:
    """The named gaps of `marl.gaps` on n agents with config.nash_gap's budgets; the full-information
    oracle (a function of pi_l alone) is cached by pi_l when a dict is given."""
    key = pi_l.probs.tobytes()
    oracle = None if oracle_cache is None else oracle_cache.get(key)
    if oracle is None:
        oracle = global_oracle(game, pi_l, k_oracle=config.nash_gap.k_oracle)
        if oracle_cache is not None:
            oracle_cache[key] = oracle
    return estimate_gaps(game, pi_g, pi_l, seed=_int_seed(seed, 3), n_agents=config.n_agents,
                         horizon=config.evaluation.horizon, n_episodes=config.nash_gap.episodes,
                         ordering=config.ordering,  # type: ignore[arg-type]
                         k_oracle=config.nash_gap.k_oracle, oracle_g=oracle)


def gap_rows(k: int, seed: int, gaps: Gaps) -> list[SweepRow]:
    """The gap metrics as rows; for each search-based global/shared gap also `<gap>_candidates` (how many
    candidates the search tried) and `<gap>_found` (1 if a deviation beat the policy, 0: nothing found,
    the 0.00 of the gap row is then not a measured zero); and `nash_gap_lower_bound` =
    `reports.nash_gap_lower_bound` of gap_g_restricted and gap_l_unilateral: a 95 % lower confidence bound
    of the Nash gap (Bonferroni over the two; stderr nan: it is a bound, not an estimate)."""
    metrics = gaps.metrics()
    rows = [SweepRow(k, seed, name, est.mean, est.stderr) for name, est in metrics.items() if name != "value"]
    nan = float("nan")
    for name, dev, current in (("gap_g_restricted", gaps.restricted, "pi_g"), ("gap_g_full", gaps.full, "pi_g"),
                               ("gap_l_shared", gaps.shared, "pi_l")):
        rows += [SweepRow(k, seed, f"{name}_candidates", float(dev.candidates_tried), nan),
                 SweepRow(k, seed, f"{name}_found", float(dev.source != current), nan)]
    bound = nash_gap_lower_bound({"gap_g_restricted": metrics["gap_g_restricted"],
                                  "gap_l_unilateral": metrics["gap_l_unilateral"]})
    return [*rows, SweepRow(k, seed, GAP_METRIC, bound.value, nan)]


class SweepRow(NamedTuple):
    k: int
    seed: int
    metric: str
    value: float
    stderr: float


def reference_pair(config: TrainConfig, *, seed: int, cache: dict[Any, Any] | None = None) -> TrainResult:
    """The full-information reference pair of a seed (it does not depend on k; cached by seed when a dict
    is given)."""
    if cache is not None and ("pair", seed) in cache:
        return cache[("pair", seed)]
    trained = train_policies(config, k=1, seed=seed, full_information=True)
    if cache is not None:
        cache[("pair", seed)] = trained
    return trained


def full_information_reference(config: TrainConfig, *, seed: int,
                               cache: dict[Any, Any] | None = None) -> FinalEvaluation:
    """The full-information reference of a seed, trained the same way and evaluated on the same
    episodes as every k (cached by seed when a dict is given: it does not depend on k)."""
    if cache is not None and ("final", seed) in cache:
        return cache[("final", seed)]
    trained = reference_pair(config, seed=seed, cache=cache)
    final = evaluate_policies(config, trained.game, trained.pi_g, trained.pi_l, seed=seed)
    if cache is not None:
        cache[("final", seed)] = final
    return final


def run_one(config: TrainConfig, *, k: int, seed: int, with_gap: bool = True,
            oracle_cache: dict[bytes, Any] | None = None,
            full_cache: dict[Any, Any] | None = None,
            policy_dir: str | Path | None = None) -> list[SweepRow]:
    """Train at (k, seed), evaluate, and return tidy rows (one per metric); with `policy_dir`, the
    trained pair is also saved there as `k<k>_seed<seed>.npz/.json` (with every start's outcome).
    `full_cache` keeps the seed's full-information reference (pair and evaluation) for the other k."""
    reference = reference_pair(config, seed=seed, cache=full_cache) if config.full_information.enabled else None
    trained = train_policies(config, k=k, seed=seed, reference=reference)
    if policy_dir is not None:
        save_policies(Path(policy_dir) / f"k{k}_seed{seed}", trained.pi_g, trained.pi_l, game=trained.game,
                      game_spec=config.game_spec, config=replace(config, k=k).to_dict(), seed=seed,
                      n_agents=config.n_agents, train_seconds=trained.train_seconds,
                      selection=trained.selection.to_dict(),
                      rounds=[r.to_dict() for r in trained.alternation.history])
    final = evaluate_policies(config, trained.game, trained.pi_g, trained.pi_l, seed=seed)
    nan = float("nan")
    fixed = [o.result.fixed_point for o in trained.selection.outcomes]
    rows = [
        SweepRow(k, seed, "reward", final.reward_mean, final.reward_stderr),
        SweepRow(k, seed, "reward_seed_std", final.reward_std, nan),
        SweepRow(k, seed, "mode_accuracy", final.mode_accuracy, final.mode_accuracy_stderr),
        SweepRow(k, seed, "train_seconds", trained.train_seconds, nan),
        SweepRow(k, seed, "rounds", float(len(trained.alternation.history)), nan),
        SweepRow(k, seed, "fixed_point", float(trained.alternation.fixed_point), nan),
        SweepRow(k, seed, "starts_fixed_point", float(np.mean(fixed)), nan),
    ]
    if trained.pooled is not None:  # the pooled training's outcome against the k-sample pair (pooled_training)
        step = trained.pooled
        rows += [SweepRow(k, seed, "pooled_kept", float(step.kept), nan),
                 SweepRow(k, seed, "pooled_improvement", step.improvement.mean, step.improvement.stderr)]
    history = trained.alternation.history
    stop = stop_report(trained.alternation.stop_reason, history[-1].comparisons if history else ())
    rows += [SweepRow(k, seed, "stop_flagged", float(stop.flagged), nan),  # an upper bound above 2 eta
             *(SweepRow(k, seed, f"stop_upper_bound_{p}", u, nan) for p, u in stop.upper_bounds.items())]
    if config.ordering != "paper":  # the same policies under the model's ordering (REFERENCE.md B1)
        paper = evaluate_policies(replace(config, ordering="paper"), trained.game, trained.pi_g, trained.pi_l,
                                  seed=seed)
        rows.append(SweepRow(k, seed, "reward_paper_ordering", paper.reward_mean, paper.reward_stderr))
    if config.full_information.enabled:
        full = full_information_reference(config, seed=seed, cache=full_cache)
        ratio = ratio_estimate(final.returns, full.returns)
        rows += [SweepRow(k, seed, "reward_full_information", full.reward_mean, full.reward_stderr),
                 SweepRow(k, seed, "ratio_full_information", ratio.mean, ratio.stderr)]
    if with_gap and isinstance(trained.pi_g, TabularGlobalPolicy):  # the named gaps read k-sample dispatchers
        rows += gap_rows(k, seed, estimate_gaps_for(config, trained.game, trained.pi_g, trained.pi_l, seed=seed,
                                                    oracle_cache=oracle_cache))
    return rows


def rows_to_csv(rows: Iterable[SweepRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ROW_FIELDS)
    for row in rows:
        writer.writerow([row.k, row.seed, row.metric, repr(float(row.value)), repr(float(row.stderr))])
    return buffer.getvalue()


def write_rows(path: str | Path, rows: Iterable[SweepRow]) -> None:
    """Write tidy rows as CSV atomically."""
    atomic_write_text(Path(path), rows_to_csv(rows))


def read_rows(path: str | Path) -> list[SweepRow]:
    """Read a CSV written by `write_rows`; a wrong header raises ValueError naming the file."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(header) != ROW_FIELDS:
            raise InputError(f"{path}: expected the columns {','.join(ROW_FIELDS)}, got {header}")
        try:
            return [SweepRow(int(r[0]), int(r[1]), r[2], float(r[3]), float(r[4])) for r in reader]
        except (ValueError, IndexError) as exc:
            raise InputError(f"{path}: malformed row: {exc}") from exc


def with_overrides(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """dataclasses.replace, ignoring None values (CLI flags left unset)."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
