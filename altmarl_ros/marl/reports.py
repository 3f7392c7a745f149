"""Honest report fields as pure functions (issue 15 item 3).

- `GapReport`: a search-based gap says how many candidates it tried and which family won; when the
  search found nothing better than the current policy the text says so ("nothing found among N
  candidates"), never "0.00 +- 0.00", which reads as a precise zero.
- `fit_slope_by_regime`: a log-log slope of a gap against k fitted only over the k whose policies
  differ (a k whose trained pair is the same table as another k's is one policy evaluated again, not a
  new point of a 1/sqrt(k) law), with the regime stated.
- `StopReport`: the alternation's stop named for what it is: "no significant improvement" (neither
  proposal's paired lower confidence bound cleared 2 eta), with each proposal's upper bound listed
  and the stop flagged when an upper bound exceeds 2 eta (an improvement larger than 2 eta is then
  not excluded: the stop does not certify a 2 eta-approximate equilibrium).
- `nash_gap_lower_bound`: a (1 - alpha) lower confidence bound of the Nash gap from the gains of
  feasible deviations: max_i (mean_i - z_{1 - alpha / m} stderr_i) (Bonferroni over the m gaps). Each
  gain's expectation is at most the Nash gap, so with probability >= 1 - alpha the bound is below the
  Nash gap. (The former "max of the estimates" is biased upward: not a lower bound.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from altmarl_ros.errors import InputError
from altmarl_ros.marl.sim import Estimate

NOTHING_FOUND = "nothing found"
STOP_NO_IMPROVEMENT = "no significant improvement"


class GapReport(NamedTuple):
    """One search-based gap: the found deviation's paired gain, the candidates tried and the winner."""

    name: str  # e.g. "gap_g_restricted"
    gain: Estimate  # paired gain of the chosen deviation on the final episodes
    candidates_tried: int
    winner: str  # the family of the winning candidate, or "" when none beat the current policy

    @property
    def found(self) -> bool:
        return bool(self.winner)

    def text(self) -> str:
        if not self.found:
            return f"{self.name}: {NOTHING_FOUND} among {self.candidates_tried} candidates"
        return (f"{self.name}: {self.gain.mean:+.2f} +- {self.gain.stderr:.2f} "
                f"(winner {self.winner}, {self.candidates_tried} candidates tried)")

    def cell(self) -> str:
        """A table cell: 'none found (N)' or 'mean +- stderr [family]'."""
        if not self.found:
            return f"none found ({self.candidates_tried})"
        return f"{self.gain.mean:.2f} +- {self.gain.stderr:.2f} [{self.winner}]"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "mean": self.gain.mean if self.found else None,
                "stderr": self.gain.stderr if self.found else None, "n": self.gain.n,
                "candidates_tried": self.candidates_tried, "winner": self.winner or None, "found": self.found}


def gap_report(name: str, gain: Estimate, candidates_tried: int, source: str, *, current: str = "pi_g") -> GapReport:
    """A GapReport from an estimator's (gain, source): `source == current` means nothing beat the policy."""
    if candidates_tried < 0:
        raise InputError(f"candidates_tried must be >= 0, got {candidates_tried}")
    return GapReport(name, gain, candidates_tried, "" if source == current else source)


class RegimeSlope(NamedTuple):
    """A log-log slope over one regime of k (`fit_slope_by_regime`)."""

    slope: float  # nan when fewer than 3 usable points
    ci_low: float
    ci_high: float
    ks: tuple[int, ...]  # the k used in the fit
    excluded: tuple[int, ...]  # k left out (repeated policies, non-positive means)
    regime: str  # stated in words

    def text(self) -> str:
        if np.isnan(self.slope):
            return f"no slope: {self.regime}"
        return f"slope {self.slope:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}] over {self.regime}"


def policy_identity(pi_g_actions: np.ndarray, pi_l_probs: np.ndarray) -> str:
    """An identifier of a trained pair as a behaviour, comparable across k: the hash of pi_l and of the
    dispatcher, where a dispatcher that ignores its sample (every (S_g, D) row constant) is identified by
    its per-s_g actions alone (the same policy at every k), else by its table (k-specific)."""
    actions = np.asarray(pi_g_actions)
    digest = hashlib.sha256(np.ascontiguousarray(pi_l_probs, dtype=np.float64).tobytes())
    if np.all(actions == actions[:, :1]):
        digest.update(b"sample-independent" + np.ascontiguousarray(actions[:, 0], dtype=np.int64).tobytes())
    else:
        digest.update(repr(actions.shape).encode() + np.ascontiguousarray(actions, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def fit_slope_by_regime(ks: Sequence[int], means: Sequence[float], policy_ids: Sequence[str], *,
                        confidence: float = 0.95) -> RegimeSlope:
    """Fit log(mean) = a + b log k over the k whose policy is not shared with another k and whose mean > 0.

    policy_ids : one identifier per k of the trained pair there (e.g. a hash of both tables, or a tuple
    of the per-seed hashes joined); k sharing an id are one policy evaluated several times and form a
    separate, constant regime, excluded from the fit."""
    ks_arr, y = np.asarray(ks, dtype=float), np.asarray(means, dtype=float)
    if not (ks_arr.size == y.size == len(policy_ids)):
        raise InputError("ks, means and policy_ids must have the same length")
    counts: dict[str, int] = {}
    for pid in policy_ids:
        counts[pid] = counts.get(pid, 0) + 1
    distinct = np.array([counts[pid] == 1 for pid in policy_ids])
    keep = distinct & (y > 0) & (ks_arr > 0)
    used = tuple(int(k) for k in ks_arr[keep])
    repeated = tuple(int(k) for k in ks_arr[~distinct])
    excluded = tuple(int(k) for k in ks_arr[~keep])
    regime = f"k in {{{', '.join(map(str, used))}}} (policies differ, mean > 0)"
    if repeated:
        regime += f"; k in {{{', '.join(map(str, repeated))}}} share one policy (excluded)"
    if len(used) < 3:
        return RegimeSlope(float("nan"), float("nan"), float("nan"), used, excluded,
                           f"fewer than 3 usable k; {regime}")
    fit = stats.linregress(np.log(ks_arr[keep]), np.log(y[keep]))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(used) - 2) * fit.stderr)
    return RegimeSlope(float(fit.slope), float(fit.slope - half), float(fit.slope + half), used, excluded, regime)


class StopReport(NamedTuple):
    """How the alternation stopped and what that stop certifies."""

    name: str  # STOP_NO_IMPROVEMENT, or the loop's own reason (e.g. "max_rounds")
    two_eta: float
    upper_bounds: dict[str, float]  # player -> upper confidence bound of its last proposal's improvement
    flagged: bool  # some upper bound > 2 eta: an improvement above 2 eta is not excluded

    def text(self) -> str:
        bounds = ", ".join(f"{p} <= {u:+.2f}" for p, u in self.upper_bounds.items())
        flag = " FLAGGED: an upper bound exceeds 2 eta, so this is not a 2 eta-equilibrium certificate" \
            if self.flagged else " (all upper bounds below 2 eta)"
        return f"{self.name} (2 eta = {self.two_eta:.2f}; upper bounds: {bounds}){flag}"

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def stop_report(stop_reason: str, comparisons: Sequence[Any]) -> StopReport:
    """From the last round's comparisons (each with .player, .ucb, .threshold = 2 eta, .accepted).

    A "fixed_point" stop (no proposal accepted) is renamed "no significant improvement"."""
    if not comparisons:
        return StopReport(stop_reason, float("nan"), {}, False)
    two_eta = float(comparisons[0].threshold)
    upper = {str(c.player): float(c.ucb) for c in comparisons}
    name = STOP_NO_IMPROVEMENT if stop_reason == "fixed_point" else stop_reason
    flagged = name == STOP_NO_IMPROVEMENT and any(u > two_eta for u in upper.values())
    return StopReport(name, two_eta, upper, flagged)


class LowerBound(NamedTuple):
    """A one-sided lower confidence bound."""

    value: float
    confidence: float
    attained_by: str  # which gap gives the bound ("" when every bound is <= 0: the trivial bound 0)


def nash_gap_lower_bound(gains: Mapping[str, Estimate], *, confidence: float = 0.95) -> LowerBound:
    """max(0, max_i mean_i - z_{1 - alpha / m} stderr_i): a (1 - alpha) lower confidence bound of the Nash
    gap from m paired gains of feasible unilateral deviations (the Nash gap is >= 0 by definition)."""
    if not gains:
        raise InputError("nash_gap_lower_bound needs at least one gain")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / len(gains))
    bounds = {name: g.mean - z * (g.stderr if np.isfinite(g.stderr) else np.inf) for name, g in gains.items()}
    best = max(bounds, key=lambda n: bounds[n])
    if bounds[best] <= 0:
        return LowerBound(0.0, confidence, "")
    return LowerBound(float(bounds[best]), confidence, best)
