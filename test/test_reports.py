"""Honest report fields (issue 15 item 3)."""

from types import SimpleNamespace

import numpy as np
import pytest

from altmarl_ros.marl.reports import (
    NOTHING_FOUND,
    STOP_NO_IMPROVEMENT,
    fit_slope_by_regime,
    gap_report,
    nash_gap_lower_bound,
    policy_identity,
    stop_report,
)
from altmarl_ros.marl.sim import Estimate


def test_nothing_found_is_not_printed_as_a_precise_zero():
    none = gap_report("gap_g_restricted", Estimate(0.0, 0.0, 750), 3, "pi_g")
    assert not none.found and NOTHING_FOUND in none.text() and "0.00" not in none.text()
    assert "3 candidates" in none.text() and none.to_dict()["mean"] is None and none.cell() == "none found (3)"
    found = gap_report("gap_g_restricted", Estimate(2.03, 0.15, 750), 7, "restricted_best_response")
    assert found.found and "+2.03 +- 0.15" in found.text() and "restricted_best_response" in found.text()
    assert found.to_dict()["candidates_tried"] == 7 and found.to_dict()["winner"] == "restricted_best_response"
    with pytest.raises(ValueError):
        gap_report("x", Estimate(0, 0, 1), -1, "pi_g")


def test_slope_is_fitted_only_where_policies_differ():
    """The README's gap_g_full: k = 1-10 are one policy (4.23 each); the fit must use k >= 20 only."""
    ks = [1, 2, 5, 10, 20, 30, 35, 40, 50]
    means = [4.23, 4.23, 4.23, 4.23, 1.90, 1.70, 1.44, 0.84, 0.59]
    ids = ["A", "A", "A", "A", "B", "C", "D", "E", "F"]
    fit = fit_slope_by_regime(ks, means, ids)
    assert fit.ks == (20, 30, 35, 40, 50) and set(fit.excluded) == {1, 2, 5, 10}
    x, y = np.log([20, 30, 35, 40, 50]), np.log([1.90, 1.70, 1.44, 0.84, 0.59])
    assert fit.slope == pytest.approx(np.polyfit(x, y, 1)[0])
    assert fit.ci_low < fit.slope < fit.ci_high
    assert "share one policy" in fit.regime and "20, 30, 35, 40, 50" in fit.regime
    few = fit_slope_by_regime([1, 2, 5], [1.0, 1.0, 0.5], ["A", "A", "B"])
    assert np.isnan(few.slope) and "fewer than 3" in few.text()


def test_policy_identity_is_comparable_across_k():
    pi_l = np.full((2, 3, 2), 0.5)
    hold_5 = np.zeros((2, 21), dtype=int)  # k = 5 over 3 states: 21 count vectors
    hold_10 = np.zeros((2, 66), dtype=int)
    assert policy_identity(hold_5, pi_l) == policy_identity(hold_10, pi_l)  # ignores its sample at both k
    reacting = hold_5.copy()
    reacting[0, 3] = 1
    assert policy_identity(reacting, pi_l) != policy_identity(hold_5, pi_l)
    other_l = pi_l.copy()
    other_l[0, 0] = [1.0, 0.0]
    assert policy_identity(hold_5, other_l) != policy_identity(hold_5, pi_l)


def _cmp(player, ucb, accepted=False, threshold=0.91):
    return SimpleNamespace(player=player, ucb=ucb, threshold=threshold, accepted=accepted)


def test_stop_is_named_for_what_it_is_and_flagged_when_an_upper_bound_exceeds_two_eta():
    """k = 20 seed 3 of the README's sweep: +1.48 +- 0.91 upper bound 2.96... above 2 eta = 0.91."""
    flagged = stop_report("fixed_point", [_cmp("global", 1.48 + 1.96 * 0.91), _cmp("local", 0.2)])
    assert flagged.name == STOP_NO_IMPROVEMENT and flagged.flagged and "FLAGGED" in flagged.text()
    assert flagged.upper_bounds == {"global": pytest.approx(3.2636), "local": 0.2}
    clean = stop_report("fixed_point", [_cmp("global", 0.5), _cmp("local", 0.9)])
    assert not clean.flagged and clean.two_eta == 0.91
    assert not stop_report("max_rounds", [_cmp("global", 5.0, accepted=True)]).flagged


def test_nash_gap_lower_bound_is_a_lower_bound():
    """Coverage: over many draws of two noisy unbiased gains of true means 1.0 and 0.5 (Nash gap >= 1.0),
    the bound exceeds 1.0 in at most ~5 % of the draws; the old max-of-estimates exceeded it in ~half."""
    rng = np.random.default_rng(0)
    over_new = over_old = 0
    trials = 4000
    for _ in range(trials):
        a, b = rng.normal(1.0, 0.3), rng.normal(0.5, 0.3)
        lb = nash_gap_lower_bound({"g": Estimate(a, 0.3, 100), "l": Estimate(b, 0.3, 100)})
        over_new += lb.value > 1.0
        over_old += max(a, b) > 1.0
    assert over_new / trials < 0.05 + 3 * np.sqrt(0.05 * 0.95 / trials)
    assert over_old / trials > 0.4
    zero = nash_gap_lower_bound({"g": Estimate(0.0, 0.0, 10), "l": Estimate(-1.0, 0.5, 10)})
    assert zero.value == 0.0 and zero.attained_by == ""
    sure = nash_gap_lower_bound({"g": Estimate(2.0, 0.1, 10), "l": Estimate(0.0, 0.0, 10)})
    assert sure.attained_by == "g" and 1.7 < sure.value < 2.0
