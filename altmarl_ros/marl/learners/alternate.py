"""The alternating loop of ALTERNATING-MARL (PAPER.md 2.4, 2.6), written once, and equilibrium selection.

Each round proposes a global best response (G-LEARN against the current pi_l), then a local best
response (L-LEARN against the current pi_g). What happens to a proposal is the `UpdateRule`:

- "two_eta" (the paper's UPDATE, made statistically sound): the proposal and the incumbent pair are
  evaluated on the SAME fresh episodes (common random numbers; every comparison has its own integer
  seed), and the proposal is accepted only when the lower confidence bound of the paired improvement
  exceeds 2 * eta. After an acceptance the kept pair is re-evaluated on fresh episodes for the record,
  so no selected (upward-biased) estimate is ever used as a bar. A round in which neither proposal is
  accepted stops the loop ("fixed_point"). What that proves, and no more: the pair is a fixed point of
  the two learners within 2 * eta plus estimation error, i.e. neither learner's best response improves
  the evaluated system value by more than 2 * eta at the confidence level of the test (the recorded
  upper confidence bounds say by how much at most). It is not a certificate of an approximate Nash
  equilibrium: the learners' best responses are approximate (mean-field G-LEARN over k-sample count
  vectors, representative-agent L-LEARN), so the true gaps are measured separately (`marl.gaps`).
- "revert" (the authors' code, PAPER.md 2.7): both proposals are taken unevaluated; the pair is
  evaluated once per round; the best pair so far is kept and restored when the value drops by more
  than rtol * |best|; the loop stops when two consecutive values differ by less than rtol.

eta is on the value scale (`UpdateRule.eta`): eta = c * R / ((1 - gamma) sqrt(k)), R the range of the
per-step system reward, so R / (1 - gamma) bounds the range of discounted values and c is a fraction of
it; the 1 / sqrt(k) is the paper's rate for the k-subsampling error (PAPER.md 3.5).

`select_equilibrium` picks, among several runs of the loop from different starting pairs, the pair with
the best welfare on common episodes among those that stopped at a fixed point (equilibrium selection).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import norm

from altmarl_ros.errors import InputError
from altmarl_ros.marl.policy import TabularLocalPolicy
from altmarl_ros.marl.sim import Estimate

GlobalPolicy = Any  # a TabularGlobalPolicy, or a FullInformationPolicy for the full-information reference
Pair = tuple[GlobalPolicy, TabularLocalPolicy]
GlobalLearner = Callable[[TabularLocalPolicy], GlobalPolicy]
LocalLearner = Callable[[GlobalPolicy, TabularLocalPolicy], TabularLocalPolicy]
# evaluate(pairs, seed) -> (len(pairs), episodes) discounted returns, every pair on the same episodes
PairedEvaluator = Callable[[Sequence[Pair], int], np.ndarray]

RULES = ("two_eta", "revert")


@dataclass(frozen=True)
class UpdateRule:
    """How proposals are accepted. "two_eta": accept iff LCB(improvement) > 2 eta, the LCB one-sided at
    `confidence`; eta = c * value_scale / sqrt(k). "revert": the authors' rule with `rtol`."""

    kind: str = "two_eta"
    c: float = 0.01
    confidence: float = 0.95
    rtol: float = 0.01

    def __post_init__(self) -> None:
        if self.kind not in RULES:
            raise InputError(f"update rule must be one of {RULES}, got {self.kind!r}")
        if not self.c >= 0 or not self.rtol >= 0:
            raise InputError("update rule: c and rtol must be >= 0")
        if not 0.5 <= self.confidence < 1:
            raise InputError(f"update rule: confidence must lie in [0.5, 1), got {self.confidence}")

    @property
    def z(self) -> float:
        """One-sided normal quantile of `confidence`."""
        return float(norm.ppf(self.confidence))

    def eta(self, k: int, value_scale: float) -> float:
        """eta = c * value_scale / sqrt(k); value_scale = R / (1 - gamma) (see the module doc)."""
        return self.c * value_scale / math.sqrt(k)


class Comparison(NamedTuple):
    """One UPDATE decision: a proposal against the incumbent pair, on common episodes."""

    player: str  # "global" | "local": whose best response was proposed
    incumbent: tuple[int, int]  # (version of pi_g, version of pi_l); version 0 is the starting policy
    proposal: tuple[int, int]
    improvement: Estimate  # paired V(proposal) - V(incumbent); stderr 0 when the proposal equals the incumbent
    lcb: float  # improvement.mean - z * stderr
    ucb: float  # improvement.mean + z * stderr
    threshold: float  # 2 eta
    accepted: bool  # lcb > threshold


class RoundRecord(NamedTuple):
    """One round of the loop."""

    round: int
    comparisons: tuple[Comparison, ...]  # two_eta: (global, local); revert: ()
    value: Estimate  # value of the pair kept after the round, on fresh episodes (revert: before a revert)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every comparison with its paired improvement, bounds, threshold and decision."""
        return {"round": self.round, "value": self.value._asdict(), "seconds": self.seconds,
                "comparisons": [{**c._asdict(), "improvement": c.improvement._asdict()} for c in self.comparisons]}

    @property
    def accepted(self) -> str:
        """'G'/'g' and 'L'/'l': upper case where that player's proposal was accepted."""
        flags = {c.player: c.accepted for c in self.comparisons}
        return ("G" if flags.get("global", True) else "g") + ("L" if flags.get("local", True) else "l")


class AlternatingResult(NamedTuple):
    pi_g: GlobalPolicy
    pi_l: TabularLocalPolicy
    history: tuple[RoundRecord, ...]
    stop_reason: str  # "fixed_point" | "converged" | "max_rounds"
    eta: float  # the tolerance used (nan for the "revert" rule)
    seconds: float

    @property
    def fixed_point(self) -> bool:
        return self.stop_reason == "fixed_point"


def _same(a: Any, b: Any) -> bool:
    """Whether two policies are the same table (global: actions, local: probabilities)."""
    ta = getattr(getattr(a, "pi_g", a), "actions", None)
    if ta is not None:
        return bool(np.array_equal(ta, getattr(b, "pi_g", b).actions))
    return bool(np.array_equal(a.probs, b.probs))


class _Seeds:
    """Integer seeds, one per evaluation: SeedSequence([base, i]) for i = 0, 1, 2, ..."""

    def __init__(self, base: int) -> None:
        self.base, self.count = base, 0

    def next(self) -> int:
        self.count += 1
        return int(np.random.SeedSequence([self.base, self.count]).generate_state(1)[0])


def alternate(*, learn_global: GlobalLearner, learn_local: LocalLearner, evaluate: PairedEvaluator,
              pi_g0: GlobalPolicy, pi_l0: TabularLocalPolicy, rule: UpdateRule, max_rounds: int, k: int,
              value_scale: float, eval_seed: int,
              on_round: Callable[[RoundRecord], None] | None = None) -> AlternatingResult:
    """Run best-response alternation from (pi_g0, pi_l0) for at most `max_rounds` rounds.

    k : the global agent's sampling budget (eta's 1/sqrt(k)). value_scale : R / (1 - gamma).
    eval_seed : base of the evaluations' integer seeds (each evaluation draws fresh episodes).
    """
    if max_rounds < 1:
        raise InputError(f"max_rounds must be >= 1, got {max_rounds}")
    loop = _Loop(learn_global, learn_local, evaluate, _Seeds(eval_seed), on_round)
    if rule.kind == "revert":
        return loop.revert(pi_g0, pi_l0, rule.rtol, max_rounds)
    return loop.two_eta(pi_g0, pi_l0, rule.z, rule.eta(k, value_scale), max_rounds)


class _Loop:
    """The rounds of `alternate` under each update rule (the learners, evaluator and seeds they share)."""

    def __init__(self, learn_global: GlobalLearner, learn_local: LocalLearner, evaluate: PairedEvaluator,
                 seeds: _Seeds, on_round: Callable[[RoundRecord], None] | None) -> None:
        self.learn_global, self.learn_local, self.evaluate = learn_global, learn_local, evaluate
        self.seeds, self.on_round = seeds, on_round
        self.t_start = time.perf_counter()
        self.history: list[RoundRecord] = []

    def fresh_value(self, pair: Pair) -> Estimate:
        return Estimate.of(self.evaluate([pair], self.seeds.next())[0])

    def record(self, record: RoundRecord) -> None:
        self.history.append(record)
        if self.on_round is not None:
            self.on_round(record)

    def result(self, pi_g: GlobalPolicy, pi_l: TabularLocalPolicy, stop_reason: str, eta: float) -> AlternatingResult:
        return AlternatingResult(pi_g, pi_l, tuple(self.history), stop_reason, eta, time.perf_counter() - self.t_start)

    def revert(self, pi_g: GlobalPolicy, pi_l: TabularLocalPolicy, rtol: float, max_rounds: int) -> AlternatingResult:
        """The authors' rule: take both proposals, keep the best pair, revert on a drop, stop on no change."""
        best: tuple[float, GlobalPolicy, TabularLocalPolicy] = (-math.inf, pi_g, pi_l)
        previous = math.nan
        for rnd in range(1, max_rounds + 1):
            t0 = time.perf_counter()
            pi_g = self.learn_global(pi_l)
            pi_l = self.learn_local(pi_g, pi_l)
            value = self.fresh_value((pi_g, pi_l))
            if value.mean > best[0]:
                best = (value.mean, pi_g, pi_l)
            elif value.mean < best[0] - abs(best[0]) * rtol:
                _, pi_g, pi_l = best
            self.record(RoundRecord(rnd, (), value, time.perf_counter() - t0))
            if rnd > 1 and abs(value.mean - previous) < rtol * max(abs(previous), 1e-6):
                return self.result(pi_g, pi_l, "converged", math.nan)
            previous = value.mean
        return self.result(pi_g, pi_l, "max_rounds", math.nan)

    def compare(self, player: str, proposal: Pair, incumbent: Pair, versions: tuple[int, int], z: float,
                threshold: float) -> Comparison:
        """The paired test of one proposal against the incumbent pair (accepted iff LCB > threshold)."""
        index = 0 if player == "global" else 1
        if _same(proposal[index], incumbent[index]):  # nothing to test: the improvement is exactly 0
            diff = Estimate(0.0, 0.0, 0)
        else:
            returns = self.evaluate([proposal, incumbent], self.seeds.next())
            diff = Estimate.of(returns[0] - returns[1])
        lcb, ucb = diff.mean - z * diff.stderr, diff.mean + z * diff.stderr
        new_versions = (versions[0] + (index == 0), versions[1] + (index == 1))
        return Comparison(player, versions, new_versions, diff, lcb, ucb, threshold, lcb > threshold)

    def two_eta(self, pi_g: GlobalPolicy, pi_l: TabularLocalPolicy, z: float, eta: float,
                max_rounds: int) -> AlternatingResult:
        """The paper's UPDATE with a paired test: a round with no accepted proposal is a fixed point."""
        threshold = 2 * eta
        versions = (0, 0)
        value = self.fresh_value((pi_g, pi_l))
        for rnd in range(1, max_rounds + 1):
            t0 = time.perf_counter()
            cand_g = self.learn_global(pi_l)
            cmp_g = self.compare("global", (cand_g, pi_l), (pi_g, pi_l), versions, z, threshold)
            if cmp_g.accepted:
                pi_g, versions = cand_g, cmp_g.proposal
            cand_l = self.learn_local(pi_g, pi_l)
            cmp_l = self.compare("local", (pi_g, cand_l), (pi_g, pi_l), versions, z, threshold)
            if cmp_l.accepted:
                pi_l, versions = cand_l, cmp_l.proposal
            if cmp_g.accepted or cmp_l.accepted:
                value = self.fresh_value((pi_g, pi_l))
            self.record(RoundRecord(rnd, (cmp_g, cmp_l), value, time.perf_counter() - t0))
            if not (cmp_g.accepted or cmp_l.accepted):
                return self.result(pi_g, pi_l, "fixed_point", eta)
        return self.result(pi_g, pi_l, "max_rounds", eta)


class StartOutcome(NamedTuple):
    """One start of the multi-start alternation, as recorded in the run record and the artifact."""

    start: str
    result: AlternatingResult
    welfare: Estimate  # V of its final pair on the selection episodes (common to every start)


class Selection(NamedTuple):
    chosen: int  # index into outcomes
    outcomes: tuple[StartOutcome, ...]
    reason: str  # "best fixed point" | "best (no fixed point)"
    returns: np.ndarray | None = None  # (n_outcomes, episodes) the selection episodes' returns (paired)

    @property
    def best(self) -> StartOutcome:
        return self.outcomes[self.chosen]

    def tied(self, z: float) -> list[int]:
        """The fixed points (the chosen one first, then by welfare) whose paired difference to the chosen one on
        the selection episodes is not significantly negative: mean + z stderr >= 0 (one-sided at z)."""
        if self.returns is None:
            return [self.chosen]
        others = []
        for i, outcome in enumerate(self.outcomes):
            diff = Estimate.of(self.returns[i] - self.returns[self.chosen])
            if i != self.chosen and outcome.result.fixed_point and diff.mean + z * diff.stderr >= 0:
                others.append(i)
        return [self.chosen, *sorted(others, key=lambda i: -self.outcomes[i].welfare.mean)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record of every start: outcome, welfare on the common episodes, rounds, and the
        last round's paired improvements of both learners' proposals (upper bounds at its confidence)."""
        starts = []
        for o in self.outcomes:
            last = o.result.history[-1] if o.result.history else None
            improvements = {c.player: {"mean": c.improvement.mean, "stderr": c.improvement.stderr, "ucb": c.ucb}
                            for c in (last.comparisons if last else ())}
            starts.append({"start": o.start, "stop_reason": o.result.stop_reason, "rounds": len(o.result.history),
                           "welfare": o.welfare._asdict(), "last_round_improvements": improvements,
                           "seconds": o.result.seconds})
        return {"chosen": self.outcomes[self.chosen].start, "reason": self.reason, "starts": starts}


def select_equilibrium(starts: Sequence[str], results: Sequence[AlternatingResult], evaluate: PairedEvaluator,
                       seed: int) -> Selection:
    """Evaluate every start's final pair on common fresh episodes; keep the best welfare among the
    runs that stopped at a fixed point (among all runs when none did)."""
    if not results or len(starts) != len(results):
        raise ValueError("select_equilibrium needs one result per start, at least one")
    returns = evaluate([(r.pi_g, r.pi_l) for r in results], seed)
    outcomes = tuple(StartOutcome(s, r, Estimate.of(x)) for s, r, x in zip(starts, results, returns, strict=True))
    pool = [i for i, r in enumerate(results) if r.fixed_point]
    reason = "best fixed point" if pool else "best (no fixed point)"
    pool = pool or list(range(len(results)))
    chosen = max(pool, key=lambda i: outcomes[i].welfare.mean)
    return Selection(chosen, outcomes, reason, np.asarray(returns))
