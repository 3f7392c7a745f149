"""Known answers for G-LEARN, L-LEARN and the alternating loop on toy games."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.game import TabularGame, marginal_local
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.learners.g_learn import count_transitions, g_learn, recurrence_chain
from altmarl_ros.marl.learners.l_learn import effective_global_chain, l_learn, l_learn_authors
from altmarl_ros.marl.mdp import value_iteration
from altmarl_ros.marl.metrics import exact_global_best_response, exact_nash_gap
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy

STAY = TabularLocalPolicy(np.tile([1.0, 0.0], (2, 2, 1)))
FOLLOW = TabularLocalPolicy(np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]]], float))  # switch iff s_l != s_g


def global_stay(k):
    """The coordination game's "stay where you are" global policy: a_g = s_g."""
    return TabularGlobalPolicy(np.array([[0] * (k + 1), [1] * (k + 1)]), k, 2, 2)


@pytest.mark.parametrize("slip", [0.0, 0.2])
@pytest.mark.parametrize("n", [2, 3])
def test_g_learn_with_k_equal_n_is_the_full_information_optimum(slip, n):
    game = make_game("coordination", slip=slip)
    pi_l = TabularLocalPolicy.uniform(2, 2, 2)
    result = g_learn(game, pi_l, k=n, transition="exact", stopping="sup", tol=1e-12, max_iter=100_000)
    V_full = exact_global_best_response(game, pi_l, n_agents=n)  # (S_g, 2^n) over every joint state
    joint = np.array(list(itertools.product(range(2), repeat=n)))
    ranks = cv.rank(cv.counts_from_states(joint, 2), n)
    assert np.allclose(result.V[:, ranks], V_full, atol=1e-9)


def test_g_learn_without_local_information_solves_the_global_mdp():
    game = make_game("broadcast")  # S_l = 1: observing agents tells nothing
    pi_l = TabularLocalPolicy(np.tile([0.0, 1.0], (3, 1, 1)))
    expected = value_iteration(game.P_g, game.r_g + 0.1, game.gamma, tol=1e-12).V
    for k in (1, 4):
        result = g_learn(game, pi_l, k=k, transition="exact", stopping="span", tol=1e-10)
        assert np.allclose(result.V[:, 0], expected, atol=1e-8)
        assert np.all(result.pi_g.actions == 1)  # always move right, towards the rewarding state


def test_sampled_g_learn_approaches_the_exact_operator():
    game = make_game("warehouse")
    pi_l = TabularLocalPolicy.uniform(5, 5, 3)
    exact = g_learn(game, pi_l, k=3, transition="exact", stopping="span", tol=1e-6)
    sampled = g_learn(game, pi_l, k=3, transition="sampled", m=400, rng=np.random.default_rng(0),
                      stopping="span", tol=1e-6)
    assert np.abs(sampled.V - exact.V).max() < 0.02 * np.abs(exact.V).max()
    assert (sampled.pi_g.actions == exact.pi_g.actions).mean() > 0.9


def test_deterministic_transition_recurrent_schedule_equals_plain_truncated_vi():
    """The recurrent-set schedule of a fixed sweep budget reproduces plain value iteration exactly."""
    game = make_game("warehouse")
    pi_l = TabularLocalPolicy.uniform(5, 5, 3)
    k = 12
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)
    nxt = np.stack(count_transitions(game, P_tilde, k=k, transition="deterministic"))
    assert len(recurrence_chain(nxt)) > 2  # the schedule really skips work here
    all_d = cv.enumerate_counts(k, 5)
    C = game.r_g[:, :, None] + ((all_d @ r_tilde).T / k)[:, None, :]
    V = np.zeros((5, len(all_d)))
    for _ in range(99):
        V = (np.einsum("gas,sgd->gad", game.gamma * game.P_g, V[:, nxt]) + C).max(1)
    Q = np.einsum("gas,sgd->gad", game.gamma * game.P_g, V[:, nxt]) + C
    result = g_learn(game, pi_l, k=k, transition="deterministic", stopping="fixed", max_iter=100)
    assert np.allclose(result.V, Q.max(1), atol=1e-9)
    chosen = np.take_along_axis(Q, result.pi_g.actions[:, None, :], axis=1)[:, 0]
    assert np.allclose(chosen, Q.max(1), atol=1e-9)  # greedy (exact ties may break either way)


def test_l_learn_is_the_exact_best_response_when_pi_g_ignores_the_sample():
    for slip in (0.0, 0.3):
        game = make_game("coordination", slip=slip)
        pi_g = global_stay(1)
        br = l_learn(game, pi_g, STAY).pi_l
        exact = exact_nash_gap(game, pi_g, br, n_agents=3)
        assert exact.gap_l == pytest.approx(0.0, abs=1e-9)
    assert np.array_equal(br.probs, FOLLOW.probs)


def test_effective_global_chain_is_exact_for_a_count_dependent_policy():
    game = make_game("warehouse")
    k = 2
    pi_g = TabularGlobalPolicy(cv.enumerate_counts(k, 5).argmax(-1)[None].repeat(5, 0), k, 5, 5)  # go to mode
    mu = np.tile([0.5, 0.2, 0.1, 0.1, 0.1], (5, 1))
    P = effective_global_chain(game, pi_g, mu)
    expected = np.zeros(5)
    for a, b in itertools.product(range(5), repeat=2):  # two i.i.d. draws from mu
        expected += mu[0, a] * mu[0, b] * game.P_g[0, pi_g.act(np.array([0]), cv.counts_from_states(
            np.array([[a, b]]), 5))[0]]
    assert np.allclose(P[0], expected)


def test_authors_l_learn_is_a_softmax_policy():
    game = make_game("warehouse")
    pi_g = TabularGlobalPolicy.constant(0, n_global_states=5, n_local_states=5, n_global_actions=5, k=4)
    result = l_learn_authors(game, pi_g, TabularLocalPolicy.uniform(5, 5, 3))
    probs = result.pi_l.probs
    assert np.all(probs > 0) and np.allclose(probs.sum(-1), 1)
    assert np.array_equal(probs.argmax(-1), result.Q.argmax(-1))


@given(seed=st.integers(0, 10_000), k=st.integers(1, 4))
@settings(max_examples=25, deadline=None)
def test_every_learned_or_derived_distribution_sums_to_one(seed, k):
    rng = np.random.default_rng(seed)
    S_g, S_l, A_g, A_l = 2, 3, 2, 2
    game = TabularGame(P_g=rng.dirichlet(np.ones(S_g), size=(S_g, A_g)),
                       P_l=rng.dirichlet(np.ones(S_l), size=(S_l, S_g, A_l)),
                       r_g=rng.random((S_g, A_g)), r_l=rng.random((S_l, S_g, A_l)), gamma=0.9,
                       init_g=np.ones(S_g) / S_g)
    pi_l = TabularLocalPolicy(rng.dirichlet(np.ones(A_l), size=(S_g, S_l)))
    P_tilde, _ = marginal_local(game, pi_l.probs)
    assert np.allclose(P_tilde.sum(-1), 1)
    for transition in ("exact", "sampled"):
        for M in count_transitions(game, P_tilde, k=k, transition=transition, m=7, rng=rng):
            assert np.allclose(np.asarray(M.sum(1)).ravel(), 1)
    pi_g = g_learn(game, pi_l, k=k, transition="exact").pi_g
    assert np.allclose(effective_global_chain(game, pi_g, rng.dirichlet(np.ones(S_l), size=S_g)).sum(-1), 1)
    for result in (l_learn(game, pi_g, pi_l), l_learn_authors(game, pi_g, pi_l)):
        assert np.allclose(result.pi_l.probs.sum(-1), 1) and np.allclose(result.mu.sum(-1), 1)
