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


def _reference_sampled_g_learn(game, pi_l, k, m, rng, tol=1e-11):
    """G-LEARN written out plainly: the same per-bin multinomial draws, each entry's m next count vectors
    summed one by one and looked up in a dict, then dense value iteration to a sup-norm residual `tol`."""
    S_g, S_l = game.n_global_states, game.n_local_states
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)
    all_d = [tuple(int(x) for x in d) for d in cv.enumerate_counts(k, S_l)]
    index = {d: i for i, d in enumerate(all_d)}
    D = len(all_d)
    E = np.zeros((S_g, D, D))  # E[g, d, d'] = fraction of the m samples of (g, d) that are d'
    for g in range(S_g):
        table = rng.multinomial(np.arange(k + 1)[None, :, None], P_tilde[:, g, None, None, :], size=(S_l, k + 1, m))
        for r, d in enumerate(all_d):
            for i in range(m):
                E[g, r, index[tuple(sum(table[j, d[j], i] for j in range(S_l)))]] += 1 / m
    C = game.r_g[:, :, None] + (np.array(all_d) @ r_tilde).T[:, None, :] / k  # (S_g, A_g, D)
    V = np.zeros((S_g, D))
    while True:
        Q = C + game.gamma * np.einsum("gas,gds->gad", game.P_g, E @ V.T)
        if np.abs(Q.max(1) - V).max() < tol:
            return Q
        V = Q.max(1)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_fast_sampled_g_learn_equals_a_plain_reference(k):
    """Packed-code ranking + Anderson-accelerated VI reproduce the plainly written operator's fixed point."""
    game = make_game("warehouse")
    pi_l = TabularLocalPolicy(np.random.default_rng(k).dirichlet(np.ones(3), size=(5, 5)))
    Q = _reference_sampled_g_learn(game, pi_l, k, m=7, rng=np.random.default_rng(42))
    tol = 1e-8
    sweeps = {}
    for acceleration in ("anderson", "none"):
        result = g_learn(game, pi_l, k=k, rng=np.random.default_rng(42), m=7, tol=tol, stopping="span",
                         acceleration=acceleration)
        # span stopping: V is within tol / 2 of V* (MacQueen), and one more backup keeps it there
        assert np.abs(result.V - Q.max(1)).max() < tol
        chosen = np.take_along_axis(Q, result.pi_g.actions[:, None, :], axis=1)[:, 0]
        assert np.all(chosen >= Q.max(1) - 2 * tol)  # greedy up to the tolerance (exact ties either way)
        sweeps[acceleration] = result.n_sweeps
    assert sweeps["anderson"] < sweeps["none"]


def test_transitions_are_reused_without_drawing_and_only_for_their_pi_l():
    game = make_game("warehouse")
    pi_l = TabularLocalPolicy.uniform(5, 5, 3)
    rng = np.random.default_rng(7)
    first = g_learn(game, pi_l, k=4, rng=rng, m=5)
    state = rng.bit_generator.state
    again = g_learn(game, pi_l, k=4, rng=rng, m=5, V0=first.V, transitions=first.transitions)
    assert rng.bit_generator.state == state  # nothing drawn: the same empirical operator
    assert again.transitions is first.transitions
    assert np.abs(again.V - first.V).max() < 1e-3 and np.array_equal(again.pi_g.actions, first.pi_g.actions)
    fresh = g_learn(game, pi_l, k=4, rng=rng, m=5)  # new draws: another empirical operator
    assert not np.array_equal(fresh.transitions.per_global_state[0].indices,
                              first.transitions.per_global_state[0].indices)
    other = TabularLocalPolicy(np.tile([0.0, 1.0, 0.0], (5, 5, 1)))
    for kwargs in ({"pi_l": other}, {"pi_l": pi_l, "m": 6}, {"pi_l": pi_l, "transition": "exact"}):
        with pytest.raises(ValueError, match="transitions were built for another"):
            g_learn(game, k=4, rng=rng, transitions=first.transitions, **{"m": 5, **kwargs})
    with pytest.raises(ValueError, match="acceleration must be one of"):
        g_learn(game, pi_l, k=4, rng=rng, acceleration="fast")


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


def test_accelerated_deterministic_g_learn_meets_the_same_bound_on_the_recurrent_set():
    """Anderson on the recurrent set, then the backward passes: the same values as plain value iteration
    up to the span tolerance, in fewer sweeps."""
    game = make_game("warehouse")
    pi_l = TabularLocalPolicy(np.random.default_rng(1).dirichlet(np.ones(3), size=(5, 5)))
    runs = {acceleration: g_learn(game, pi_l, k=12, transition="deterministic", stopping="span", tol=1e-7,
                                  acceleration=acceleration) for acceleration in ("anderson", "none")}
    assert np.abs(runs["anderson"].V - runs["none"].V).max() < 1e-7
    assert runs["anderson"].n_sweeps < runs["none"].n_sweeps


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
    # the effective global chain is the average of P_g over every ordered sample of k agents
    mu = rng.dirichlet(np.ones(S_l), size=S_g)
    expected = np.zeros((S_g, S_g))
    for g in range(S_g):
        for sample in itertools.product(range(S_l), repeat=k):
            d = cv.counts_from_states(np.array([sample]), S_l)
            expected[g] += mu[g, list(sample)].prod() * game.P_g[g, pi_g.act(np.array([g]), d)[0]]
    assert np.allclose(effective_global_chain(game, pi_g, mu), expected)
    # L-LEARN: mu(. | s_g) is stationary for the joint chain it induces, and Q solves that chain's
    # Bellman optimality equation (the greedy pi_l is then a best response)
    result = l_learn(game, pi_g, pi_l, tol=1e-12)
    joint = np.einsum("gh,lgm->glhm", result.P_g_eff, P_tilde).reshape(S_g * S_l, S_g * S_l)
    weights = np.linalg.matrix_power(result.P_g_eff.T, 2000) @ np.ones(S_g) / S_g  # stationary s_g law
    nu = (weights[:, None] * result.mu).ravel()
    assert np.allclose(nu @ joint, nu, atol=1e-7)
    backup = result.Q.max(-1)  # (S_g, S_l)
    bellman = np.transpose(game.r_l, (1, 0, 2)) + game.gamma * np.einsum(
        "gh,lgam,hm->gla", result.P_g_eff, game.P_l, backup)
    assert np.allclose(result.Q, bellman, atol=1e-9)
