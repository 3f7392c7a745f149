"""The named Nash-gap estimators against exact brute force on tiny games.

For each estimator: (a) the Monte Carlo gain of the deviation it found is within 3 stderr of the EXACT
finite-horizon gain of that same deviation (unbiasedness of the final, fresh-episode estimate), and
(b) the lower-bound property, estimate <= exact best-response gap + 3 stderr, or, where the search is
claimed to find the best response, the found deviation's exact value equals the exact optimum.
"""

import numpy as np
import pytest

from altmarl_ros.marl import sim
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.gaps import (
    METRIC_NAMES,
    estimate_gaps,
    fresh_rng,
    gap_g_full,
    gap_g_restricted,
    gap_l_shared,
    gap_l_unilateral,
    own_returns_on_paths,
    restricted_candidates,
    restricted_oracle_rule,
    rollouts,
    shared_returns,
    streams,
)
from altmarl_ros.marl.metrics import (
    exact_full_information_gap,
    exact_restricted_global_gap,
    exact_shared_gap,
    exact_tagged_value,
    exact_unilateral_gap,
    exact_value,
    global_oracle,
)
from altmarl_ros.marl.policy import FullInformationPolicy, TabularGlobalPolicy, TabularLocalPolicy, TaggedLocalPolicy

H = 20  # horizon of every simulation here; exact values use the same finite horizon
STAY = TabularLocalPolicy(np.tile([1.0, 0.0], (2, 2, 1)))
FOLLOW = TabularLocalPolicy(np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]]], float))


def random_game(seed: int, S_g: int = 2, S_l: int = 3, A_g: int = 2, A_l: int = 2) -> TabularGame:
    rng = np.random.default_rng(seed)
    return TabularGame(P_g=rng.dirichlet(np.ones(S_g), size=(S_g, A_g)),
                       P_l=rng.dirichlet(np.full(S_l, 0.5), size=(S_l, S_g, A_l)),
                       r_g=rng.uniform(0, 1, (S_g, A_g)), r_l=rng.uniform(0, 2, (S_l, S_g, A_l)), gamma=0.9,
                       init_g=np.full(S_g, 1.0 / S_g), init_l_concentration=0.5, name=f"random{seed}")


def ring(n_zones: int = 3) -> TabularGame:
    """The warehouse on a 3-zone ring with actions (stay, up) only (2^9 shared tables to enumerate)."""
    w = make_game("warehouse", n_zones=n_zones, r_g="distance")
    return TabularGame(P_g=w.P_g, P_l=w.P_l[:, :, :2], r_g=w.r_g, r_l=w.r_l[:, :, :2], gamma=0.9, init_g=w.init_g,
                       init_l_concentration=0.3, name="ring")


def within(est, exact: float, k: float = 3.0) -> bool:
    return abs(est.mean - exact) <= k * est.stderr + 1e-9


# ----------------------------------------------------------------------------------------------
# The paired simulator
# ----------------------------------------------------------------------------------------------

def test_rollouts_reproduce_sim_evaluate_and_the_tagged_robot_keeps_the_others_draws():
    game = random_game(0)
    rng = np.random.default_rng(1)
    pi_g = TabularGlobalPolicy(rng.integers(0, 2, (2, 6)), 2, 3, 2)
    pi_l = TabularLocalPolicy(rng.dirichlet([1, 1], size=(2, 3)))
    seed = streams(5).final
    ev = sim.evaluate(game, pi_g, pi_l, fresh_rng(seed), n_agents=4, horizon=H, n_episodes=100)
    ro = rollouts(game, pi_g, pi_l, seed, n_agents=4, horizon=H, n_episodes=100)
    np.testing.assert_array_equal(ro.system, ev.returns)
    # TaggedLocalPolicy: agents 1.. draw exactly what pi_l draws from the same rng state; agent 0 follows pi_dev
    dev = TabularLocalPolicy(np.eye(2)[rng.integers(0, 2, (2, 3))])
    s_g, s_l = rng.integers(0, 2, 50), rng.integers(0, 3, (50, 6))
    a_tag = TaggedLocalPolicy(pi_l, dev).sample(np.random.default_rng(9), s_g, s_l)
    a_all = pi_l.sample(np.random.default_rng(9), s_g, s_l)
    np.testing.assert_array_equal(a_tag[:, 1:], a_all[:, 1:])
    np.testing.assert_array_equal(a_tag[:, 0], dev.probs[s_g, s_l[:, 0]].argmax(-1))


class _Recording:
    """A global controller that records every state it is shown, then acts as the wrapped pi_g."""

    def __init__(self, pi_g):
        self.pi_g, self.k, self.seen = pi_g, pi_g.k, []

    def act_on(self, rng, s_g, s_l):
        self.seen.append((s_g.copy(), s_l.copy()))
        return self.pi_g.act_on(rng, s_g, s_l)


@pytest.mark.parametrize("ordering", ["paper", "authors"])
def test_gap_code_and_sim_evaluate_draw_the_same_episodes_for_the_same_seed(ordering):
    """Common random numbers between the gap estimators and sim.evaluate: one episode loop, so the same
    seed gives the same states at every step of every episode (batches of 32 over 70 episodes), the same
    returns, and estimate_gaps' baseline value is sim.evaluate's value on the final stream."""
    game = random_game(2)
    rng = np.random.default_rng(3)
    pi_g = TabularGlobalPolicy(rng.integers(0, 2, (2, 6)), 2, 3, 2)
    pi_l = TabularLocalPolicy(rng.dirichlet([1, 1], size=(2, 3)))
    seed = streams(11).final
    in_eval, in_gaps = _Recording(pi_g), _Recording(pi_g)
    ev = sim.evaluate(game, in_eval, pi_l, fresh_rng(seed), n_agents=5, horizon=H, n_episodes=70,
                      ordering=ordering, batch_size=32)
    ro = rollouts(game, in_gaps, pi_l, seed, n_agents=5, horizon=H, n_episodes=70, ordering=ordering,
                  batch_size=32)
    assert len(in_eval.seen) == len(in_gaps.seen) == 3 * H
    for (g1, l1), (g2, l2) in zip(in_eval.seen, in_gaps.seen, strict=True):
        np.testing.assert_array_equal(g1, g2)
        np.testing.assert_array_equal(l1, l2)
    np.testing.assert_array_equal(ro.system, ev.returns)
    seen_s_g = np.concatenate([np.stack([g for g, _ in in_gaps.seen[b * H:(b + 1) * H]], 1) for b in range(3)])
    np.testing.assert_array_equal(ro.s_g[:, :H], seen_s_g)
    np.testing.assert_array_equal(ro.s_l0, np.concatenate([in_gaps.seen[b * H][1][:, 0] for b in range(3)]))
    other = TabularGlobalPolicy(1 - pi_g.actions, 2, 3, 2)  # a different dispatcher: same environment draws
    ev_other = sim.evaluate(game, other, pi_l, fresh_rng(seed), n_agents=5, horizon=H, n_episodes=70,
                            ordering=ordering, batch_size=32)
    assert not np.array_equal(ev_other.returns, ev.returns)
    gaps = estimate_gaps(game, pi_g, pi_l, seed=11, n_agents=5, horizon=H, n_episodes=70, ordering=ordering,
                         k_oracle=2, search_episodes=8, unilateral_search_episodes=8)
    base = sim.evaluate(game, pi_g, pi_l, fresh_rng(streams(11).final), n_agents=5, horizon=H, n_episodes=70,
                        ordering=ordering)
    assert gaps.value == sim.Estimate.of(base.returns)


def test_shared_returns_share_random_numbers_across_candidates_and_are_unbiased():
    game = random_game(6)
    rng = np.random.default_rng(6)
    pi_g = TabularGlobalPolicy(rng.integers(0, 2, (2, 6)), 2, 3, 2)
    probs = rng.dirichlet([1, 1], size=(3, 2, 3))  # three stochastic shared policies
    together = shared_returns(game, pi_g, probs, 11, n_agents=3, horizon=H, n_episodes=3000)
    alone = shared_returns(game, pi_g, probs[2:], 11, n_agents=3, horizon=H, n_episodes=3000)
    np.testing.assert_array_equal(together[2], alone[0])  # a candidate's episodes do not depend on the others
    for c in range(3):
        exact = exact_value(game, pi_g, TabularLocalPolicy(probs[c]), n_agents=3, horizon=H)
        assert within(sim.Estimate.of(together[c]), exact)
    diff = sim.Estimate.of(together[0] - together[1])  # paired differences are unbiased too
    exact_diff = (exact_value(game, pi_g, TabularLocalPolicy(probs[0]), n_agents=3, horizon=H)
                  - exact_value(game, pi_g, TabularLocalPolicy(probs[1]), n_agents=3, horizon=H))
    assert within(diff, exact_diff)


def test_own_returns_on_paths_is_exact_for_a_single_robot_without_influence():
    """With a constant dispatcher the robot cannot influence s_g, so the path recursion averaged over
    simulated paths is an unbiased estimate of the exact own value (and less noisy than the returns)."""
    game = random_game(2)
    pi_g = TabularGlobalPolicy.constant(1, n_global_states=2, n_local_states=3, n_global_actions=2, k=1)
    pi_l = TabularLocalPolicy(np.random.default_rng(3).dirichlet([1, 1], size=(2, 3)))
    ro = rollouts(game, pi_g, pi_l, 7, n_agents=1, horizon=H, n_episodes=4000)
    path_value = own_returns_on_paths(game, pi_l.probs[None], ro.s_g, ro.s_l0)[0]
    exact = exact_tagged_value(game, pi_g, pi_l, pi_l, n_agents=1, horizon=H).own
    est = sim.Estimate.of(ro.own)
    assert abs(path_value - exact) <= 3 * est.stderr  # path_value is an average over the same paths
    assert within(est, exact)


# ----------------------------------------------------------------------------------------------
# Exact counterparts
# ----------------------------------------------------------------------------------------------

def test_exact_unilateral_gap_of_a_single_robot_is_the_shared_gap_and_the_full_gap_bounds_the_restricted():
    game = random_game(4)
    rng = np.random.default_rng(4)
    pi_g = TabularGlobalPolicy(rng.integers(0, 2, (2, 3)), 1, 3, 2)
    pi_l = TabularLocalPolicy(rng.dirichlet([1, 1], size=(2, 3)))
    uni = exact_unilateral_gap(game, pi_g, pi_l, n_agents=1, horizon=H)
    shared = exact_shared_gap(game, pi_g, pi_l, n_agents=1, horizon=H)
    assert uni.gap == pytest.approx(shared.gap, abs=1e-10) and uni.gap > 0.01
    assert uni.value.system == pytest.approx(exact_value(game, pi_g, pi_l, n_agents=1, horizon=H))
    # with n = 3 agents one robot moves V by about 1/n of what all of them do
    uni3 = exact_unilateral_gap(game, pi_g, pi_l, n_agents=3, horizon=H)
    assert 0 < uni3.gap / 3 < exact_shared_gap(game, pi_g, pi_l, n_agents=3, horizon=H).gap
    restricted = exact_restricted_global_gap(game, pi_g, pi_l, n_agents=3, horizon=H)
    full = exact_full_information_gap(game, pi_g, pi_l, n_agents=3, horizon=H)
    assert full >= restricted.gap - 1e-10 and restricted.gap > 0.01


def test_exact_value_of_a_full_information_dispatcher_matches_monte_carlo():
    game = random_game(5)
    pi_l = TabularLocalPolicy(np.random.default_rng(5).dirichlet([1, 1], size=(2, 3)))
    oracle = global_oracle(game, pi_l, k_oracle=6)
    assert isinstance(oracle, FullInformationPolicy)
    exact = exact_value(game, oracle, pi_l, n_agents=3, horizon=H)
    est = sim.evaluate(game, oracle, pi_l, np.random.default_rng(0), n_agents=3, horizon=H, n_episodes=3000).reward
    assert within(est, exact)


# ----------------------------------------------------------------------------------------------
# The estimators
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_gap_l_unilateral_is_unbiased_for_its_deviation_and_a_lower_bound(seed):
    game = random_game(10 + seed)
    rng = np.random.default_rng(seed)
    pi_g = TabularGlobalPolicy(rng.integers(0, 2, (2, 6)), 2, 3, 2)
    pi_l = TabularLocalPolicy(rng.dirichlet([1, 1], size=(2, 3)))  # stochastic: a pure table beats it
    n = 3
    got = gap_l_unilateral(game, pi_g, pi_l, seed=seed, n_agents=n, horizon=H, n_episodes=4000)
    assert got.source != "pi_l" and got.own_gain.mean > 3 * got.own_gain.stderr
    base = exact_tagged_value(game, pi_g, pi_l, pi_l, n_agents=n, horizon=H)
    dev = exact_tagged_value(game, pi_g, pi_l, got.pi_dev, n_agents=n, horizon=H)
    assert within(got.gain, n * (dev.system - base.system))  # (a) on the n x system-value scale
    assert within(got.own_gain, dev.own - base.own)  # (a) the tagged robot's own return
    exact = exact_unilateral_gap(game, pi_g, pi_l, n_agents=n, horizon=H)
    assert got.gain.mean <= exact.gap + 3 * got.gain.stderr  # (b) lower bound
    assert got.own_gain.mean <= exact.gap_own + 3 * got.own_gain.stderr


def test_gap_l_shared_is_clearly_positive_for_always_up_in_a_ring_warehouse():
    game = ring()
    n = 2
    up = TabularLocalPolicy(np.tile([0.0, 1.0], (3, 3, 1)))
    pi_g = TabularGlobalPolicy.constant(0, n_global_states=3, n_local_states=3, n_global_actions=3, k=1)
    got = gap_l_shared(game, pi_g, up, seed=0, n_agents=n, horizon=H, n_episodes=2000)
    assert got.gain.mean > 10 * got.gain.stderr
    assert isinstance(got.policy, TabularLocalPolicy)
    exact_dev = exact_value(game, pi_g, got.policy, n_agents=n, horizon=H) - exact_value(game, pi_g, up, n_agents=n,
                                                                                         horizon=H)
    assert within(got.gain, exact_dev)  # (a)
    exact = exact_shared_gap(game, pi_g, up, n_agents=n, horizon=H)
    assert got.gain.mean <= exact.gap + 3 * got.gain.stderr  # (b)


def test_gap_l_shared_finds_the_best_response_in_the_coordination_game_and_is_zero_at_it():
    """From (stay, stay) the exact shared best response is "follow s_g"; the search must find a table of
    the same exact value. At that best response no shared deviation gains: the estimate is ~0."""
    game = make_game("coordination", slip=0.1)
    pi_g = TabularGlobalPolicy(np.array([[0, 0], [1, 1]]), 1, 2, 2)
    n = 2
    exact = exact_shared_gap(game, pi_g, STAY, n_agents=n, horizon=H)
    got = gap_l_shared(game, pi_g, STAY, seed=1, n_agents=n, horizon=H, n_episodes=2000)
    assert isinstance(got.policy, TabularLocalPolicy)
    found = exact_value(game, pi_g, got.policy, n_agents=n, horizon=H)
    assert found == pytest.approx(exact.value + exact.gap, abs=1e-9)  # (b) the exact optimum
    assert within(got.gain, exact.gap)  # (a)
    assert isinstance(exact.best, TabularLocalPolicy)
    at_best = gap_l_shared(game, pi_g, exact.best, seed=2, n_agents=n, horizon=H, n_episodes=2000)
    assert abs(at_best.gain.mean) <= 3 * at_best.gain.stderr + 1e-12
    assert exact_shared_gap(game, pi_g, exact.best, n_agents=n, horizon=H).gap == pytest.approx(0.0, abs=1e-12)


def test_gap_g_restricted_is_unbiased_for_its_dispatcher_and_a_lower_bound():
    game = random_game(20, A_g=3)
    pi_l = TabularLocalPolicy(np.random.default_rng(20).dirichlet([1, 1], size=(2, 3)))
    pi_g = TabularGlobalPolicy.constant(0, n_global_states=2, n_local_states=3, n_global_actions=3, k=1)
    n = 3
    got = gap_g_restricted(game, pi_g, pi_l, seed=0, n_agents=n, horizon=H, n_episodes=2000)
    assert got.source != "pi_g" and got.gain.mean > 3 * got.gain.stderr
    assert isinstance(got.policy, TabularGlobalPolicy) and got.policy.k == 1
    exact_dev = exact_value(game, got.policy, pi_l, n_agents=n, horizon=H) - exact_value(game, pi_g, pi_l,
                                                                                         n_agents=n, horizon=H)
    assert within(got.gain, exact_dev)  # (a)
    exact = exact_restricted_global_gap(game, pi_g, pi_l, n_agents=n, horizon=H)
    assert got.gain.mean <= exact.gap + 3 * got.gain.stderr  # (b)


def test_restricted_oracle_at_k_equal_n_is_the_exact_restricted_best_response():
    """G-LEARN with exact transitions at k = n solves the n-robot restricted problem itself."""
    game = random_game(21)
    pi_l = TabularLocalPolicy(np.random.default_rng(21).dirichlet([1, 1], size=(2, 3)))
    pi_g = TabularGlobalPolicy.constant(0, n_global_states=2, n_local_states=3, n_global_actions=2, k=2)
    cand = restricted_candidates(game, pi_l, 2, np.random.default_rng(0))["g_learn_exact"]
    exact = exact_restricted_global_gap(game, pi_g, pi_l, n_agents=2)  # infinite horizon, as G-LEARN
    assert exact_value(game, cand, pi_l, n_agents=2) == pytest.approx(exact.value + exact.gap, abs=1e-6)


def test_gap_g_full_is_unbiased_for_its_oracle_and_a_lower_bound_of_the_full_information_gap():
    game = make_game("coordination", slip=0.1)
    pi_g = TabularGlobalPolicy(np.array([[0, 0], [1, 1]]), 1, 2, 2)  # ignores the robots
    n = 3
    got = gap_g_full(game, pi_g, STAY, seed=0, n_agents=n, horizon=H, n_episodes=2000, k_oracle=6)
    assert got.source == "full_information_oracle" and got.gain.mean > 10 * got.gain.stderr
    assert isinstance(got.policy, FullInformationPolicy)
    exact_dev = exact_value(game, got.policy, STAY, n_agents=n, horizon=H) - exact_value(game, pi_g, STAY,
                                                                                         n_agents=n, horizon=H)
    assert within(got.gain, exact_dev)  # (a)
    exact = exact_full_information_gap(game, pi_g, STAY, n_agents=n, horizon=H)
    assert got.gain.mean <= exact + 3 * got.gain.stderr  # (b)


def test_estimate_gaps_shares_one_baseline_and_matches_the_single_estimators():
    game = random_game(30)
    rng = np.random.default_rng(30)
    pi_g = TabularGlobalPolicy(rng.integers(0, 2, (2, 3)), 1, 3, 2)
    pi_l = TabularLocalPolicy(rng.dirichlet([1, 1], size=(2, 3)))
    kw = {"seed": 3, "n_agents": 3, "horizon": H, "n_episodes": 300}
    gaps = estimate_gaps(game, pi_g, pi_l, k_oracle=6, **kw)
    assert set(gaps.metrics()) == set(METRIC_NAMES)
    ev = sim.evaluate(game, pi_g, pi_l, fresh_rng(streams(3).final), n_agents=3, horizon=H,
                      n_episodes=300)
    assert gaps.value == ev.reward
    assert gaps.gap_l_unilateral == gap_l_unilateral(game, pi_g, pi_l, **kw).gain
    assert gaps.gap_l_shared == gap_l_shared(game, pi_g, pi_l, **kw).gain
    assert gaps.gap_g_restricted == gap_g_restricted(game, pi_g, pi_l, **kw).gain
    # the full-information candidates are the oracle and the restricted winner (feasible for it too)
    extra = {} if gaps.restricted.source == "pi_g" else {f"restricted_{gaps.restricted.source}": gaps.restricted.policy}
    alone = gap_g_full(game, pi_g, pi_l, k_oracle=6, extra=extra, **kw)
    assert (gaps.full.source, gaps.gap_g_full) == (alone.source, alone.gain)


def test_restricted_oracle_rule_documents_the_warehouse_schedule():
    rule = [restricted_oracle_rule(k, 5) for k in (1, 5, 6, 10, 20, 30, 35, 50)]
    assert [r.transition if r else None for r in rule] == ["exact"] * 3 + ["sampled"] * 3 + [None, None]
    assert [r.m for r in rule[3:6] if r] == [1000, 141, 32]
    with pytest.raises(ValueError, match="k=3 robots but n_agents=2"):
        estimate_gaps(random_game(0), TabularGlobalPolicy.constant(0, n_global_states=2, n_local_states=3,
                                                                   n_global_actions=2, k=3),
                      TabularLocalPolicy.uniform(2, 3, 2), seed=0, n_agents=2, horizon=5)
