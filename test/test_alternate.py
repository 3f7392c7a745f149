"""The alternating loop: the paired UPDATE rule, its round records, and equilibrium selection."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from altmarl_ros.marl.config import ConfigError, Start, StartKind, config_from_dict, expand_starts, parse_start
from altmarl_ros.marl.experiments import train_policies
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.learners.alternate import UpdateRule, alternate, select_equilibrium
from altmarl_ros.marl.learners.g_learn import g_learn
from altmarl_ros.marl.learners.l_learn import l_learn
from altmarl_ros.marl.metrics import exact_nash_gap, exact_value
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy

S = 2


def _pi_g(action: int) -> TabularGlobalPolicy:
    return TabularGlobalPolicy.constant(action, n_global_states=S, n_local_states=S, n_global_actions=S, k=1)


def _pi_l(p: float) -> TabularLocalPolicy:
    return TabularLocalPolicy(np.broadcast_to([p, 1 - p], (S, S, 2)).copy())


def _synthetic(values: dict[tuple[int, float], float], noise: float, shared: float, episodes: int = 400):
    """A paired evaluator over known values V(pi_g, pi_l) keyed by (constant action, pi_l's p):
    returns = V + shared episode noise (common to every pair on a seed) + independent noise."""
    calls: list[int] = []

    def evaluate(pairs, seed):
        calls.append(seed)
        rng = np.random.default_rng(seed)
        common = shared * rng.standard_normal(episodes)
        return np.stack([values[(int(g.actions[0, 0]), float(pl.probs[0, 0, 0]))] + common
                         + noise * rng.standard_normal(episodes) for g, pl in pairs])

    return evaluate, calls


def _run(values, *, proposals_g, proposals_l, noise=0.0, shared=5.0, c=0.01, k=4, scale=100.0, rounds=5):
    evaluate, calls = _synthetic(values, noise, shared)
    return alternate(learn_global=lambda pi_l: _pi_g(proposals_g[float(pi_l.probs[0, 0, 0])]),
                     learn_local=lambda pi_g, pi_l: _pi_l(proposals_l[int(pi_g.actions[0, 0])]),
                     evaluate=evaluate, pi_g0=_pi_g(0), pi_l0=_pi_l(0.5), rule=UpdateRule("two_eta", c=c),
                     max_rounds=rounds, k=k, value_scale=scale, eval_seed=7), calls


def test_eta_is_on_the_value_scale_and_falls_like_one_over_sqrt_k():
    rule = UpdateRule("two_eta", c=0.01)
    assert rule.eta(4, 200.0) == pytest.approx(1.0)
    assert rule.eta(16, 200.0) == pytest.approx(0.5)
    assert rule.z == pytest.approx(1.6448536, abs=1e-6)
    with pytest.raises(ValueError, match="confidence"):
        UpdateRule("two_eta", confidence=0.3)


def test_paired_update_accepts_a_clear_improvement_and_rejects_one_below_two_eta():
    # 2 eta = 2 * 0.01 * 100 / sqrt(4) = 1. Global: 0 -> 1 gains 3 (accepted); local: 0.5 -> 1.0 gains 0.6 (< 1).
    values = {(0, 0.5): 10.0, (1, 0.5): 13.0, (1, 1.0): 13.6, (0, 1.0): 9.0}
    result, _ = _run(values, proposals_g={0.5: 1, 1.0: 1}, proposals_l={0: 1.0, 1: 1.0}, noise=0.3)
    first = result.history[0]
    g, loc = first.comparisons
    assert (g.player, g.accepted, loc.player, loc.accepted) == ("global", True, "local", False)
    assert g.improvement.mean == pytest.approx(3.0, abs=4 * g.improvement.stderr)
    assert loc.improvement.mean == pytest.approx(0.6, abs=4 * loc.improvement.stderr)
    assert result.fixed_point and len(result.history) == 2  # round 2 proposes nothing new
    assert int(result.pi_g.actions[0, 0]) == 1 and result.pi_l.probs[0, 0, 0] == 0.5


def test_paired_update_rejects_a_noisy_improvement_whose_lower_bound_is_below_two_eta():
    # the mean gain 1.5 exceeds 2 eta = 1, but with independent noise 20 per episode its 95 % LCB does not
    values = {(0, 0.5): 10.0, (1, 0.5): 11.5}
    result, _ = _run(values, proposals_g={0.5: 1}, proposals_l={0: 0.5, 1: 0.5}, noise=20.0)
    g = result.history[0].comparisons[0]
    assert not g.accepted and g.lcb < g.threshold < g.ucb
    assert int(result.pi_g.actions[0, 0]) == 0


def test_common_random_numbers_cancel_the_shared_episode_noise():
    # shared noise of 50 per episode, no independent noise: the paired difference is exact
    values = {(0, 0.5): 10.0, (1, 0.5): 11.2}
    result, _ = _run(values, proposals_g={0.5: 1}, proposals_l={0: 0.5, 1: 0.5}, noise=0.0, shared=50.0)
    g = result.history[0].comparisons[0]
    assert g.improvement.mean == pytest.approx(1.2) and g.improvement.stderr == pytest.approx(0.0, abs=1e-9)
    assert g.accepted


def test_round_records_are_consistent_and_every_evaluation_has_its_own_seed():
    values = {(0, 0.5): 10.0, (1, 0.5): 13.0, (1, 1.0): 17.0, (0, 1.0): 9.0}
    result, calls = _run(values, proposals_g={0.5: 1, 1.0: 1}, proposals_l={0: 1.0, 1: 1.0}, noise=1.0)
    assert len(calls) == len(set(calls))  # fresh episodes for every evaluation
    versions = (0, 0)
    for record in result.history:
        for cmp in record.comparisons:
            assert cmp.incumbent == versions
            assert cmp.lcb == pytest.approx(cmp.improvement.mean - UpdateRule().z * cmp.improvement.stderr)
            assert cmp.ucb == pytest.approx(cmp.improvement.mean + UpdateRule().z * cmp.improvement.stderr)
            assert cmp.threshold == pytest.approx(2 * result.eta)
            assert cmp.accepted == (cmp.lcb > cmp.threshold)
            if cmp.accepted:
                versions = cmp.proposal
        # the kept pair is re-evaluated on fresh episodes: its value estimates the true value
        assert record.value.mean == pytest.approx(values[(int(result.pi_g.actions[0, 0]), 1.0)]
                                                  if record.round > 1 or record.comparisons[1].accepted
                                                  else values[(1, 0.5)], abs=5 * record.value.stderr + 1.0)
    assert versions == (1, 1) and result.history[0].accepted == "GL"
    assert record.to_dict()["comparisons"][0]["improvement"]["stderr"] >= 0


def test_the_loop_stops_at_a_fixed_point_of_exact_learners_on_the_coordination_game():
    game = make_game("coordination", slip=0.1)
    k, n = 2, 3

    def evaluate(pairs, seed):  # exact values: a paired test with zero variance
        return np.array([[exact_value(game, g, pl, n_agents=n)] * 4 for g, pl in pairs])

    result = alternate(learn_global=lambda pi_l: g_learn(game, pi_l, k=k, transition="exact").pi_g,
                       learn_local=lambda pi_g, pi_l: l_learn(game, pi_g, pi_l).pi_l, evaluate=evaluate,
                       pi_g0=TabularGlobalPolicy.constant(0, n_global_states=2, n_local_states=2,
                                                          n_global_actions=2, k=k),
                       pi_l0=TabularLocalPolicy.uniform(2, 2, 2), rule=UpdateRule("two_eta", c=0.001),
                       max_rounds=10, k=k, value_scale=10.0, eval_seed=0)
    assert result.fixed_point
    values = [r.value.mean for r in result.history]
    assert values == sorted(values)  # exact evaluation: accepted proposals only increase the value
    gap = exact_nash_gap(game, result.pi_g, result.pi_l, n_agents=n)
    # a fixed point of the learners; the exact gaps need not be below 2 eta (the learners are approximate),
    # but here the exact learners' responses are exact best responses within the restricted classes
    assert gap.gap_l <= 2 * result.eta + 1e-9


def test_revert_rule_keeps_the_best_pair_and_reports_convergence():
    game = make_game("coordination", slip=0.1)
    result = alternate(learn_global=lambda pi_l: g_learn(game, pi_l, k=2, transition="exact").pi_g,
                       learn_local=lambda pi_g, pi_l: l_learn(game, pi_g, pi_l).pi_l,
                       evaluate=lambda pairs, seed: np.array([[exact_value(game, g, pl, n_agents=3)] * 2
                                                              for g, pl in pairs]),
                       pi_g0=TabularGlobalPolicy.constant(0, n_global_states=2, n_local_states=2,
                                                          n_global_actions=2, k=2),
                       pi_l0=TabularLocalPolicy.uniform(2, 2, 2), rule=UpdateRule("revert", rtol=0.01),
                       max_rounds=10, k=2, value_scale=10.0, eval_seed=0)
    assert result.stop_reason == "converged"
    with pytest.raises(ValueError, match="update rule"):
        UpdateRule("sometimes")


def test_selection_keeps_the_best_start_that_reached_a_fixed_point():
    values = {(0, 0.5): 10.0, (1, 0.5): 12.0, (1, 1.0): 15.0}
    evaluate, _ = _synthetic(values, noise=0.5, shared=5.0)
    stopped, _ = _run(values, proposals_g={0.5: 0}, proposals_l={0: 0.5})
    better_unstopped, _ = _run(values, proposals_g={0.5: 1, 1.0: 1}, proposals_l={0: 1.0, 1: 1.0}, rounds=1)
    assert stopped.fixed_point and not better_unstopped.fixed_point
    selection = select_equilibrium(["a", "b"], [stopped, better_unstopped], evaluate, seed=3)
    assert selection.best.start == "a" and selection.reason == "best fixed point"
    assert selection.outcomes[1].welfare.mean > selection.outcomes[0].welfare.mean
    record = selection.to_dict()
    assert record["chosen"] == "a" and [s["start"] for s in record["starts"]] == ["a", "b"]


def _two_zone_game() -> TabularGame:
    """The coordination game with zone 1 worth 2 to a robot (zone 0: 1) and r_g = 0.5 for holding the
    active zone. Two equilibria: everything in zone 0 (dispatcher holds 0, robots go to 0) and everything in
    zone 1; neither player gains alone by leaving, and zone 1 is worth more."""
    base = make_game("coordination")
    r_l = np.array(base.r_l)
    r_l[1, 1, :] = 2.0
    return TabularGame(P_g=base.P_g, P_l=base.P_l, r_g=0.5 * np.eye(2), r_l=r_l, gamma=0.9, init_g=np.full(2, 0.5))


def test_multi_start_picks_the_better_of_two_known_equilibria():
    game, k, n = _two_zone_game(), 2, 3

    def evaluate(pairs, seed):
        return np.array([[exact_value(game, g, pl, n_agents=n)] * 4 for g, pl in pairs])

    def run(a: int):  # start at (hold zone a, the robots' best response to that)
        pi_g0 = TabularGlobalPolicy.constant(a, n_global_states=2, n_local_states=2, n_global_actions=2, k=k)
        return alternate(learn_global=lambda pi_l: g_learn(game, pi_l, k=k, transition="exact").pi_g,
                         learn_local=lambda pi_g, pi_l: l_learn(game, pi_g, pi_l).pi_l, evaluate=evaluate,
                         pi_g0=pi_g0, pi_l0=l_learn(game, pi_g0, TabularLocalPolicy.uniform(2, 2, 2)).pi_l,
                         rule=UpdateRule("two_eta", c=0.001), max_rounds=10, k=k, value_scale=10.0, eval_seed=a)

    results = [run(0), run(1)]
    assert all(r.fixed_point for r in results)
    for a, r in enumerate(results):  # each start stays in its own zone: two distinct equilibria
        assert np.all(r.pi_g.actions == a)
        assert np.all(r.pi_l.probs.argmax(-1)[:, a] == 0) and np.all(r.pi_l.probs.argmax(-1)[:, 1 - a] == 1)
    values = [exact_value(game, r.pi_g, r.pi_l, n_agents=n) for r in results]
    assert values[1] > values[0] + 1.0
    selection = select_equilibrium(["constant:0", "constant:1"], results, evaluate, seed=0)
    assert selection.best.start == "constant:1" and selection.reason == "best fixed point"


def _coordination_config(**loop):
    return config_from_dict({"game": "coordination", "game_options": {"slip": 0.1}, "n_agents": 4, "k": 2,
                             "g_learn": {"transition": "exact"},
                             "loop": {"eval_episodes": 50, "eval_horizon": 20, "c": 0.001, **loop},
                             "evaluation": {"horizon": 20, "episodes": 20, "seeds": 2}})


def test_train_policies_records_every_start():
    trained = train_policies(_coordination_config(starts=["constant", "l_first:1", "g_first", "chase"]), k=2, seed=0)
    record = trained.selection.to_dict()
    names = ["constant:0", "constant:1", "l_first:1", "g_first", "chase"]
    assert [s["start"] for s in record["starts"]] == names and record["chosen"] in names
    chosen = trained.selection.best
    assert trained.alternation is chosen.result and trained.pi_g is chosen.result.pi_g


def test_full_information_start_begins_from_the_reference_robots(monkeypatch):
    config = _coordination_config(starts=["constant:0", "full_information"], max_rounds=1)
    reference = train_policies(config, k=2, seed=0, full_information=True)
    assert [s["start"] for s in reference.selection.to_dict()["starts"]] == ["constant:0"]  # no self-reference
    import altmarl_ros.marl.experiments as experiments

    started_from = []
    real_alternate = experiments.alternate

    def spy(**kwargs):
        started_from.append(kwargs["pi_l0"])
        return real_alternate(**kwargs)

    monkeypatch.setattr(experiments, "alternate", spy)
    trained = train_policies(config, k=2, seed=0)
    assert [s["start"] for s in trained.selection.to_dict()["starts"]] == ["constant:0", "full_information"]
    assert len(started_from) == 3  # constant:0, the reference's own constant:0, full_information
    np.testing.assert_array_equal(started_from[-1].probs, reference.pi_l.probs)



def test_posterior_start_begins_from_the_reference_robots_and_its_posterior_dispatcher(monkeypatch):
    config = _coordination_config(starts=["constant:0", "posterior"])
    reference = train_policies(config, k=2, seed=0, full_information=True)
    assert [s["start"] for s in reference.selection.to_dict()["starts"]] == ["constant:0"]  # no self-reference
    assert reference.alternation.fixed_point and reference.values is not None  # kept for the posterior's Q
    import altmarl_ros.marl.experiments as experiments
    from altmarl_ros.marl.posterior import posterior_dispatcher

    started_from = []
    real_alternate = experiments.alternate

    def spy(**kwargs):
        started_from.append((kwargs["pi_g0"], kwargs["pi_l0"]))
        return real_alternate(**kwargs)

    monkeypatch.setattr(experiments, "alternate", spy)
    trained = train_policies(config, k=2, seed=0)
    assert [s["start"] for s in trained.selection.to_dict()["starts"]] == ["constant:0", "posterior"]
    pi_g0, pi_l0 = started_from[-1]
    np.testing.assert_array_equal(pi_l0.probs, reference.pi_l.probs)
    expected = posterior_dispatcher(trained.game, reference.pi_g, reference.pi_l, k=2,  # V solved again here
                                    rng=np.random.default_rng([0, 16]), n_agents=4, horizon=20, tol=1e-3, max_iter=2000)
    assert pi_g0.k == 2 and np.array_equal(pi_g0.actions, expected.actions)

def test_starts_are_validated_with_the_key_named():
    with pytest.raises(ConfigError, match=r"loop\.starts: unknown start 'sideways'"):
        _coordination_config(starts=["sideways"])
    with pytest.raises(ValueError, match="2 global actions"):
        train_policies(replace(_coordination_config(), loop=replace(_coordination_config().loop,
                                                                    starts=("constant:7",))), k=2, seed=0)


def test_starts_are_parsed_once_into_typed_values():
    assert parse_start("constant") == Start(StartKind.CONSTANT, None)
    assert parse_start("l_first:2") == Start(StartKind.L_FIRST, 2)
    for kind in (StartKind.G_FIRST, StartKind.CHASE, StartKind.FULL_INFORMATION, StartKind.POSTERIOR):
        assert parse_start(kind.value) == Start(kind) and Start(kind).name == kind.value
    expanded = expand_starts(["constant", "l_first:1", "constant:1", "g_first", "chase", "full_information"], 3)
    assert [s.name for s in expanded] == ["constant:0", "constant:1", "constant:2", "l_first:1", "g_first", "chase",
                                          "full_information"]  # duplicates dropped, first kept
    assert _coordination_config(starts=["constant", "chase"]).loop.parsed_starts == (
        Start(StartKind.CONSTANT), Start(StartKind.CHASE))


@pytest.mark.parametrize("name", ["sideways", "g_first:1", "constant:x", "chase:0", "constant:", "Chase"])
def test_an_unknown_start_is_a_config_error_listing_the_valid_ones(name):
    with pytest.raises(ConfigError) as info:
        parse_start(name)
    message = str(info.value)
    assert f"unknown start {name!r}" in message
    for form in ("constant[:<a_g>]", "l_first[:<a_g>]", "g_first", "chase", "full_information"):
        assert form in message
    with pytest.raises(ConfigError, match="the game has 2 global actions"):
        expand_starts(["l_first:2"], 2)
