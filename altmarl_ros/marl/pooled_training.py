"""Training the pooled dispatcher (beyond the paper; its observation is `pooled.PooledObserver`).

The alternating loop of the paper (`learners.alternate`, the same paired UPDATE rule with 2 eta(k)), run
with the dispatcher reading the filtered population estimate instead of a fresh k-sample:
- G-step: the restricted best response to pi_l over the pooled observation (`restricted.mc_best_response`:
  Monte Carlo policy iteration on the n-agent system, every switch verified on paired episodes), from the
  loop's start table;
- L-step: L-LEARN against the dispatcher's mean-field view, a dispatcher that reads the population's true
  histogram rounded to K counts (`FullInformationPolicy`): the filter's estimate tends to it as its
  effective sample size grows; the UPDATE rule then judges the proposal on the true system.

Start pairs: the k-sample pair (its table read on K-count vectors, `pooled.lift_table`) and, when given,
the full-information reference pair (its dispatcher read on the filtered estimate, with its robots). Why
the second: against robots trained for a k-sample dispatcher that holds one zone, no dispatcher gains
much (measured at k = 5: even full information +0.6), while the reference pair with its dispatcher
reading the filtered estimate is already +4.6 over the k-sample pair. The best final pair (chosen on common
fresh episodes) replaces the k-sample pair only if its paired improvement, on other fresh episodes, is
significant: its lower confidence bound at the loop's confidence is above 0 (`PooledStep.kept`). That is a
choice between two fixed points, made as the selection among starts makes it; 2 eta(k) is the UPDATE's
tolerance for one learner's proposal inside an alternation, and as a bar here it kept k-sample pairs 3-4
below the pooled pair at k <= 2 (2 eta(1) = 4.05; bench/README.md 11.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from altmarl_ros.marl.config import PooledConfig
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.learners.alternate import AlternatingResult, LocalLearner, PairedEvaluator, UpdateRule, alternate
from altmarl_ros.marl.policy import FullInformationPolicy, TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.pooled import PooledGlobalPolicy, lift_table, pooled_policy
from altmarl_ros.marl.restricted import mc_best_response
from altmarl_ros.marl.sim import Estimate


class PooledStep(NamedTuple):
    """The pooled training's outcome and the decision against the k-sample pair."""

    kept: bool  # the pooled pair replaced the k-sample pair
    start: str  # the start pair of the best pooled run
    improvement: Estimate  # paired V(pooled pair) - V(k-sample pair), fresh episodes
    lcb: float  # improvement.mean - z stderr (one-sided, the loop's confidence); kept iff > 0
    runs: dict[str, AlternatingResult]  # the alternation from each start pair
    K: int

    def to_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "start": self.start, "improvement": self.improvement._asdict(), "lcb": self.lcb,
                "K": self.K,
                "runs": {name: {"stop_reason": run.stop_reason, "rounds": [r.to_dict() for r in run.history]}
                         for name, run in self.runs.items()}}


def mean_field_view(pi_g: PooledGlobalPolicy) -> FullInformationPolicy:
    """The dispatcher that reads the true histogram rounded to K counts: L-LEARN's view of a pooled one."""
    return FullInformationPolicy(TabularGlobalPolicy(pi_g.actions, pi_g.K, pi_g.n_local_states,
                                                     pi_g.n_global_actions))


@dataclass(frozen=True)
class PooledLearners:
    """The G-step and L-step of the module docstring, for one start table."""

    game: TabularGame
    config: PooledConfig
    learn_local: LocalLearner
    start: np.ndarray  # (S_g, n_count_vectors(K, S_l)) the G-step's policy iteration starts here
    k: int
    n_agents: int
    horizon: int
    seed: int

    def learn_global(self, pi_l: TabularLocalPolicy) -> PooledGlobalPolicy:
        start = pooled_policy(self.game, pi_l, self.start, k=self.k, K=self.config.K, n_agents=self.n_agents)
        br = mc_best_response(self.game, pi_l, start.observer, starts={"start": self.start}, seed=self.seed,
                              n_agents=self.n_agents, horizon=self.horizon, episodes=self.config.episodes,
                              rounds=self.config.rounds)
        return pooled_policy(self.game, pi_l, br.table, k=self.k, K=self.config.K, n_agents=self.n_agents)

    def learn_local_pooled(self, pi_g: PooledGlobalPolicy, pi_l: TabularLocalPolicy) -> TabularLocalPolicy:
        return self.learn_local(mean_field_view(pi_g), pi_l)


def train_pooled(game: TabularGame, k_sample_pair: tuple[TabularGlobalPolicy, TabularLocalPolicy],
                 config: PooledConfig, *, learn_local: LocalLearner, n_agents: int, horizon: int, rule: UpdateRule,
                 max_rounds: int, value_scale: float, evaluate: PairedEvaluator, decide: PairedEvaluator, seed: int,
                 reference: tuple[np.ndarray, int, TabularLocalPolicy] | None = None,
                 ) -> tuple[tuple[TabularGlobalPolicy | PooledGlobalPolicy, TabularLocalPolicy], PooledStep]:
    """The module docstring's training; returns the pair kept and the record. `reference`: the
    full-information reference's (dispatcher table over counts of its k, that k, its pi_l), a second start.
    `evaluate` serves the loops' UPDATE, `decide` (more episodes) the final choice against the k-sample pair."""
    pi_g, pi_l = k_sample_pair
    k, K, S_l = pi_g.k, config.K, game.n_local_states
    starts: Mapping[str, tuple[np.ndarray, TabularLocalPolicy]] = {
        "k_sample": (lift_table(pi_g.actions, k, K, S_l), pi_l),
        **({"full_information": (lift_table(reference[0], reference[1], K, S_l), reference[2])} if reference else {})}
    seeds = np.random.SeedSequence(seed).generate_state(len(starts) + 2)
    runs = {}
    for i, (name, (table, start_pi_l)) in enumerate(starts.items()):
        learners = PooledLearners(game, config, learn_local, table, k, n_agents, horizon, int(seeds[i]))
        runs[name] = alternate(learn_global=learners.learn_global, learn_local=learners.learn_local_pooled,
                               evaluate=evaluate, pi_l0=start_pi_l,
                               pi_g0=pooled_policy(game, start_pi_l, table, k=k, K=K, n_agents=n_agents),
                               rule=rule, max_rounds=max_rounds, k=k, value_scale=value_scale,
                               eval_seed=int(seeds[-2]))
    names = list(runs)
    choose = decide([(runs[nm].pi_g, runs[nm].pi_l) for nm in names], int(seeds[-1])).mean(-1)
    best = int(choose.argmax())  # chosen on these episodes, judged on fresh ones (no winner's curse)
    winner = runs[names[best]]
    returns = decide([(winner.pi_g, winner.pi_l), k_sample_pair], int(seeds[-1]) + 1)
    improvement = Estimate.of(returns[0] - returns[1])
    lcb = improvement.mean - rule.z * improvement.stderr
    kept = bool(lcb > 0)
    pair = (winner.pi_g, winner.pi_l) if kept else k_sample_pair
    return pair, PooledStep(kept, names[best], improvement, lcb, runs, K)
