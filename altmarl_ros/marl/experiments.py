"""Experiments: train from a config, evaluate on the n-agent system, and k sweeps as tidy rows.

Seeds become generators only here: `np.random.SeedSequence(seed)` is spawned into independent
streams for learning, in-loop evaluation, final evaluation and the Nash gap.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np

from altmarl_ros.marl import sim
from altmarl_ros.marl.artifacts import atomic_write_text
from altmarl_ros.marl.config import TrainConfig
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.learners.alternate import AlternatingResult, RoundRecord, UpdateRule, alternate
from altmarl_ros.marl.learners.g_learn import Stopping, Transition, g_learn
from altmarl_ros.marl.learners.l_learn import l_learn, l_learn_authors
from altmarl_ros.marl.metrics import NashGap, global_oracle, nash_gap
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy

ROW_FIELDS = ("k", "seed", "metric", "value", "stderr")


class TrainResult(NamedTuple):
    pi_g: TabularGlobalPolicy
    pi_l: TabularLocalPolicy
    game: TabularGame
    game_spec: dict[str, Any]
    alternation: AlternatingResult
    train_seconds: float
    g_learn_calls: int  # G-LEARN computations actually run (identical deterministic calls are reused)


class FinalEvaluation(NamedTuple):
    """Final evaluation over `seeds` x `episodes` episodes."""

    reward_mean: float  # mean of the per-seed mean returns
    reward_std: float  # std over the per-seed means (the authors' error bars)
    reward_stderr: float  # standard error over all episodes
    mode_accuracy: float
    mode_accuracy_stderr: float
    seed_means: np.ndarray  # (seeds,)


def _streams(seed: int, n: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(n)


def train_policies(config: TrainConfig, *, k: int, seed: int,
                   progress: Callable[[RoundRecord], None] | None = None) -> TrainResult:
    """Run ALTERNATING-MARL on the config's game for budget k; `progress` is called after each round."""
    t0 = time.perf_counter()
    game = make_game(config.game, **config.game_options)
    if not 1 <= k <= config.n_agents:
        raise ValueError(f"k must satisfy 1 <= k <= n_agents={config.n_agents}, got {k}")
    learn_seq, eval_seq = _streams(seed, 2)
    learn_rng = np.random.default_rng(learn_seq)
    gc, lc, loop = config.g_learn, config.l_learn, config.loop
    state: dict[str, Any] = {"V": None, "cache_key": None, "cache": None, "calls": 0}
    pure = gc.transition != "sampled" and not gc.warm_start  # then G-LEARN is a function of pi_l alone

    def learn_global(pi_l: TabularLocalPolicy) -> TabularGlobalPolicy:
        key = pi_l.probs.tobytes()
        if pure and key == state["cache_key"]:
            return state["cache"]  # the authors' loop recomputes identical candidates (REFERENCE.md B7)
        result = g_learn(game, pi_l, k=k, rng=learn_rng, transition=cast(Transition, gc.transition), m=gc.m,
                         tol=gc.tol, max_iter=gc.max_iter, stopping=cast(Stopping, gc.stopping),
                         V0=state["V"] if gc.warm_start else None)
        state.update(V=result.V, cache_key=key, cache=result.pi_g, calls=state["calls"] + 1)
        return result.pi_g

    def learn_local(pi_g: TabularGlobalPolicy, pi_l: TabularLocalPolicy) -> TabularLocalPolicy:
        if lc.kind == "authors":
            return l_learn_authors(game, pi_g, pi_l, n_mc=lc.n_mc, mc_seed=lc.mc_seed, mu_iters=lc.mu_iters,
                                   max_iter=lc.max_iter, tau_scale=lc.tau_scale, tau_min=lc.tau_min).pi_l
        return l_learn(game, pi_g, pi_l, tol=lc.tol).pi_l

    def evaluate(pi_g: TabularGlobalPolicy, pi_l: TabularLocalPolicy, rnd: int) -> float:
        # two_eta: one stream for every evaluation (paired comparisons); revert: a new stream per round,
        # as the authors' evaluate(seed=iteration)
        entropy = eval_seq if loop.rule == "two_eta" else eval_seq.spawn(rnd + 1)[rnd]
        return sim.evaluate(game, pi_g, pi_l, np.random.default_rng(entropy), n_agents=config.n_agents,
                            horizon=loop.eval_horizon, n_episodes=loop.eval_episodes,
                            ordering=config.ordering).reward.mean  # type: ignore[arg-type]

    S_g, S_l = game.n_global_states, game.n_local_states
    pi_g0 = TabularGlobalPolicy.constant(0, n_global_states=S_g, n_local_states=S_l,
                                         n_global_actions=game.n_global_actions, k=k)
    pi_l0 = TabularLocalPolicy.uniform(S_g, S_l, game.n_local_actions)
    result = alternate(learn_global=learn_global, learn_local=learn_local, evaluate=evaluate, pi_g0=pi_g0,
                       pi_l0=pi_l0, rule=UpdateRule(loop.rule, c=loop.c, rtol=loop.rtol),
                       max_rounds=loop.max_rounds, on_round=progress)
    return TrainResult(result.pi_g, result.pi_l, game, config.game_spec, result, time.perf_counter() - t0,
                       state["calls"])


def evaluate_policies(config: TrainConfig, game: TabularGame, pi_g: TabularGlobalPolicy,
                      pi_l: TabularLocalPolicy, *, seed: int) -> FinalEvaluation:
    """Final evaluation: config.evaluation.seeds independent seeds x episodes on n agents."""
    ev = config.evaluation
    means, returns, hits = [], [], []
    for seq in _streams(seed, ev.seeds):
        result = sim.evaluate(game, pi_g, pi_l, np.random.default_rng(seq), n_agents=config.n_agents,
                              horizon=ev.horizon, n_episodes=ev.episodes,
                              ordering=config.ordering)  # type: ignore[arg-type]
        means.append(result.reward.mean)
        returns.append(result.returns)
        hits.append(result.mode_accuracy.mean)
    all_returns = sim.Estimate.of(np.concatenate(returns))
    acc = sim.Estimate.of(np.asarray(hits))
    seed_means = np.asarray(means)
    return FinalEvaluation(float(seed_means.mean()), float(seed_means.std()), all_returns.stderr, acc.mean,
                           acc.stderr, seed_means)


def estimate_nash_gap(config: TrainConfig, game: TabularGame, pi_g: TabularGlobalPolicy,
                      pi_l: TabularLocalPolicy, *, seed: int, oracle_cache: dict[bytes, Any] | None = None) -> NashGap:
    """The Nash gap of config.nash_gap on n agents; oracles are cached by pi_l when a dict is given."""
    key = pi_l.probs.tobytes()
    oracle = None if oracle_cache is None else oracle_cache.get(key)
    if oracle is None:
        oracle = global_oracle(game, pi_l, k_oracle=config.nash_gap.k_oracle)
        if oracle_cache is not None:
            oracle_cache[key] = oracle
    gap_seed = int(_streams(seed, 4)[3].generate_state(1)[0])
    return nash_gap(game, pi_g, pi_l, seed=gap_seed, n_agents=config.n_agents, horizon=config.evaluation.horizon,
                    n_episodes=config.nash_gap.episodes, k_oracle=config.nash_gap.k_oracle,
                    ordering=config.ordering, oracle_g=oracle)  # type: ignore[arg-type]


class SweepRow(NamedTuple):
    k: int
    seed: int
    metric: str
    value: float
    stderr: float


def run_one(config: TrainConfig, *, k: int, seed: int, with_gap: bool = True,
            oracle_cache: dict[bytes, Any] | None = None) -> list[SweepRow]:
    """Train at (k, seed), evaluate, and return tidy rows (one per metric)."""
    trained = train_policies(config, k=k, seed=seed)
    final = evaluate_policies(config, trained.game, trained.pi_g, trained.pi_l, seed=seed)
    nan = float("nan")
    rows = [
        SweepRow(k, seed, "reward", final.reward_mean, final.reward_stderr),
        SweepRow(k, seed, "reward_seed_std", final.reward_std, nan),
        SweepRow(k, seed, "mode_accuracy", final.mode_accuracy, final.mode_accuracy_stderr),
        SweepRow(k, seed, "train_seconds", trained.train_seconds, nan),
        SweepRow(k, seed, "rounds", float(len(trained.alternation.history)), nan),
        SweepRow(k, seed, "certified", float(trained.alternation.certified), nan),
    ]
    if config.ordering != "paper":  # the same policies under the model's ordering (REFERENCE.md B1)
        paper = evaluate_policies(replace(config, ordering="paper"), trained.game, trained.pi_g, trained.pi_l,
                                  seed=seed)
        rows.append(SweepRow(k, seed, "reward_paper_ordering", paper.reward_mean, paper.reward_stderr))
    if with_gap:
        gap = estimate_nash_gap(config, trained.game, trained.pi_g, trained.pi_l, seed=seed,
                                oracle_cache=oracle_cache)
        rows += [SweepRow(k, seed, "gap_g", gap.gap_g.mean, gap.gap_g.stderr),
                 SweepRow(k, seed, "gap_l", gap.gap_l.mean, gap.gap_l.stderr),
                 SweepRow(k, seed, "nash_gap", gap.nash_gap.mean, gap.nash_gap.stderr)]
    return rows


def sweep(config: TrainConfig, ks: Sequence[int], seeds: Iterable[int], *, gap_seeds: int | None = None,
          on_row: Callable[[list[SweepRow]], None] | None = None) -> list[SweepRow]:
    """Run `run_one` over the grid (k outer, seeds inner); the Nash gap only for the first `gap_seeds`
    seeds (None: all); `on_row` receives each run's rows as soon as it finishes."""
    rows: list[SweepRow] = []
    seeds = list(seeds)
    cache: dict[bytes, Any] = {}
    for k in ks:
        for i, seed in enumerate(seeds):
            out = run_one(config, k=k, seed=seed, with_gap=gap_seeds is None or i < gap_seeds, oracle_cache=cache)
            rows += out
            if on_row is not None:
                on_row(out)
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
            raise ValueError(f"{path}: expected the columns {','.join(ROW_FIELDS)}, got {header}")
        try:
            return [SweepRow(int(r[0]), int(r[1]), r[2], float(r[3]), float(r[4])) for r in reader]
        except (ValueError, IndexError) as exc:
            raise ValueError(f"{path}: malformed row: {exc}") from exc


def with_overrides(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """dataclasses.replace, ignoring None values (CLI flags left unset)."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
