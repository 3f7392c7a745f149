"""The alternating loop of ALTERNATING-MARL (PAPER.md 2.4, 2.6), written once.

Each round proposes a global best response (G-LEARN against the current pi_l), then a local best
response (L-LEARN against the current pi_g). What happens to a proposal is the `UpdateRule`:

- "two_eta" (the paper's UPDATE): each proposal is evaluated and accepted only if it improves the
  evaluated system value by more than 2 * eta, eta = c / sqrt(k). A round in which neither proposal
  is accepted stops the loop with a certificate: no unilateral best response (as computed by the
  learners) improves the value by more than 2 eta, i.e. (pi_g, pi_l) is a 2 eta-approximate Nash
  equilibrium up to the learners' own error. Evaluations share one random stream seed (common random
  numbers), so the comparisons are paired.
- "revert" (the authors' code, PAPER.md 2.7): both proposals are taken unevaluated; the pair is
  evaluated once per round; the best pair so far is kept and restored when the value drops by more
  than rtol * |best|; the loop stops when two consecutive values differ by less than rtol.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy

GlobalLearner = Callable[[TabularLocalPolicy], TabularGlobalPolicy]
LocalLearner = Callable[[TabularGlobalPolicy, TabularLocalPolicy], TabularLocalPolicy]
Evaluator = Callable[[TabularGlobalPolicy, TabularLocalPolicy, int], float]  # (pi_g, pi_l, round) -> value

RULES = ("two_eta", "revert")


@dataclass(frozen=True)
class UpdateRule:
    """How proposals are accepted. kind "two_eta": eta = c / sqrt(k); kind "revert": rtol."""

    kind: str = "two_eta"
    c: float = 1.0
    rtol: float = 0.01

    def __post_init__(self) -> None:
        if self.kind not in RULES:
            raise ValueError(f"update rule must be one of {RULES}, got {self.kind!r}")
        if not self.c >= 0 or not self.rtol >= 0:
            raise ValueError("update rule: c and rtol must be >= 0")

    def eta(self, k: int) -> float:
        return self.c / math.sqrt(k)


class RoundRecord(NamedTuple):
    """One round of the loop."""

    round: int
    value: float  # two_eta: value of the pair kept; revert: value evaluated this round (before a revert)
    global_value: float  # evaluated value with the global proposal (nan if not evaluated)
    local_value: float  # evaluated value with the local proposal (nan if not evaluated)
    global_accepted: bool
    local_accepted: bool
    seconds: float


class AlternatingResult(NamedTuple):
    pi_g: TabularGlobalPolicy
    pi_l: TabularLocalPolicy
    history: tuple[RoundRecord, ...]
    stop_reason: str  # "certified" | "converged" | "max_rounds"
    eta: float  # the tolerance used (nan for the "revert" rule)
    seconds: float

    @property
    def certified(self) -> bool:
        return self.stop_reason == "certified"


def alternate(*, learn_global: GlobalLearner, learn_local: LocalLearner, evaluate: Evaluator,
              pi_g0: TabularGlobalPolicy, pi_l0: TabularLocalPolicy, rule: UpdateRule, max_rounds: int,
              on_round: Callable[[RoundRecord], None] | None = None) -> AlternatingResult:
    """Run best-response alternation from (pi_g0, pi_l0) for at most `max_rounds` rounds."""
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
    t_start = time.perf_counter()
    pi_g, pi_l = pi_g0, pi_l0
    nan = float("nan")
    history: list[RoundRecord] = []
    stop_reason = "max_rounds"
    eta = rule.eta(pi_g0.k) if rule.kind == "two_eta" else nan
    value = evaluate(pi_g, pi_l, 0) if rule.kind == "two_eta" else nan
    best = (-math.inf, pi_g, pi_l)
    for rnd in range(1, max_rounds + 1):
        t0 = time.perf_counter()
        if rule.kind == "two_eta":
            cand_g = learn_global(pi_l)
            v_g = evaluate(cand_g, pi_l, rnd)
            acc_g = v_g > value + 2 * eta
            if acc_g:
                pi_g, value = cand_g, v_g
            cand_l = learn_local(pi_g, pi_l)
            v_l = evaluate(pi_g, cand_l, rnd)
            acc_l = v_l > value + 2 * eta
            if acc_l:
                pi_l, value = cand_l, v_l
            done = not (acc_g or acc_l)
            reason = "certified"
        else:
            pi_g = learn_global(pi_l)
            pi_l = learn_local(pi_g, pi_l)
            v_g = v_l = nan
            acc_g = acc_l = True
            previous = value
            value = evaluate(pi_g, pi_l, rnd)
            if value > best[0]:
                best = (value, pi_g, pi_l)
            elif value < best[0] - abs(best[0]) * rule.rtol:
                _, pi_g, pi_l = best
            done = rnd > 1 and abs(value - previous) < rule.rtol * max(abs(previous), 1e-6)
            reason = "converged"
        record = RoundRecord(rnd, value, v_g, v_l, acc_g, acc_l, time.perf_counter() - t0)
        history.append(record)
        if on_round is not None:
            on_round(record)
        if done:
            stop_reason = reason
            break
    return AlternatingResult(pi_g, pi_l, tuple(history), stop_reason, eta, time.perf_counter() - t_start)
