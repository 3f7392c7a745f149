"""The compiled kernels (`learners/kernels.py`) give bit for bit what the NumPy / SciPy expressions they replace
give, on adversarial inputs (ties in the rounding, several column blocks, both index widths, empty states, k = n)."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl import population_sim as ps
from altmarl_ros.marl.game import marginal_local
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.learners import kernels
from altmarl_ros.marl.learners.bellman import Anderson, ExpectationOperator, SpanStop, solve
from altmarl_ros.marl.learners.g_learn import _rewards, count_transitions
from altmarl_ros.marl.policy import TabularLocalPolicy


@pytest.mark.parametrize("n_columns", [1, 5, 8, 9, 17])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_sampled_expectation_is_scipys_product_bit_for_bit(n_columns, index_dtype):
    rng = np.random.default_rng(n_columns)
    D, m = 300, 7
    indices = rng.integers(0, D, size=D * m).astype(index_dtype)
    M = sp.csr_matrix((np.full(D * m, 1.0 / m), indices, np.arange(0, D * m + 1, m)), shape=(D, D))
    VT = rng.normal(size=(D, n_columns)) * 10.0 ** rng.integers(-3, 4, size=(D, 1))
    got = kernels.sampled_expectation(indices, m, 1.0 / m, VT)
    assert got.shape == (D, n_columns)
    assert np.array_equal(got, M @ VT)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(1, 6), st.integers(0, 2**32 - 1), st.booleans())
def test_round_and_rank_is_rank_of_round_to_counts(k, n_states, seed, ties):
    rng = np.random.default_rng(seed)
    if ties:  # equal remainders everywhere: k / S per state, and exact thirds / halves
        expected = np.vstack([np.full(n_states, k / n_states), np.r_[np.full(n_states - 1, 0.0), k]])
    else:
        expected = rng.dirichlet(np.ones(n_states), size=64) * k
    want = cv.rank(cv.round_to_counts(expected, k), k)
    assert np.array_equal(kernels.round_and_rank(expected, k), want)


def test_deterministic_transition_is_the_rounded_mean_field_step():
    game = make_game("warehouse")
    P_tilde, _ = marginal_local(game, TabularLocalPolicy.uniform(5, 5, 3).probs)
    all_d = cv.enumerate_counts(12, 5)
    for g, nxt in enumerate(count_transitions(game, P_tilde, k=12, transition="deterministic")):
        assert np.array_equal(nxt, cv.rank(cv.round_to_counts(all_d @ P_tilde[:, g, :], 12), 12))


def test_sampled_operator_solves_as_the_scipy_products_do():
    """The operator with `samples` (the fused kernel) and without (SciPy's products) reach the same V and table."""
    game = make_game("warehouse")
    pi_l = TabularLocalPolicy.uniform(5, 5, 3)
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)
    M = count_transitions(game, P_tilde, k=6, transition="sampled", m=9, rng=np.random.default_rng(0))
    C, D = _rewards(game, r_tilde, 6), cv.n_count_vectors(6, 5)
    stop = SpanStop(game.gamma / (1 - game.gamma), 1e-3)
    kernel, plain = (solve(ExpectationOperator(C, game.gamma * game.P_g, M, samples=samples), np.zeros((5, D)),
                           stop=stop, max_iter=2000, anderson=Anderson(5, center=True)) for samples in (9, None))
    assert kernel.n_sweeps == plain.n_sweeps > 1
    np.testing.assert_allclose(kernel.V, plain.V, rtol=1e-12)  # bit for bit on this machine kind (see above)
    assert np.array_equal(kernel.actions, plain.actions)


@pytest.mark.parametrize("n_global", [1, 3, 5, 8, 9])
def test_fused_sampled_backup_is_the_generic_backup(n_global):
    """`ExpectationOperator.backup` (the fused kernel for up to 8 global states, the generic path above) gives the
    generic `BellmanOperator.backup`'s values and greedy actions, including ties (equal actions keep the lowest)."""
    rng = np.random.default_rng(n_global)
    D, m, A = 500, 7, 4
    matrices = [sp.csr_matrix((np.full(D * m, 1.0 / m), rng.integers(0, D, size=D * m).astype(np.int32),
                               np.arange(0, D * m + 1, m)), shape=(D, D)) for _ in range(n_global)]
    C = rng.normal(size=(n_global, A, D)) * 10
    C[:, 2] = C[:, 1]  # action 2 ties with action 1 wherever their transitions agree
    gamma_P_g = 0.95 * rng.dirichlet(np.ones(n_global), size=(n_global, A))
    gamma_P_g[:, 2] = gamma_P_g[:, 1]
    V = rng.normal(size=(n_global, D)) * 100
    with ExpectationOperator(C, gamma_P_g, matrices, samples=m) as T:
        fused = T.backup(V, np.arange(D), greedy=True)
        generic = super(ExpectationOperator, T).backup(V, np.arange(D), greedy=True)
    # bit for bit where NumPy's BLAS forms gamma P_g @ W with in-order fused multiply-adds (OpenBLAS' Haswell
    # kernel, this machine kind); to rounding elsewhere. Ties are exact in both paths, so the actions are equal.
    np.testing.assert_allclose(fused[0], generic[0], rtol=1e-13)
    assert np.array_equal(fused[1], generic[1])
    assert not np.any(fused[1] == 2)  # the tie went to action 1


def test_the_ros_nodes_do_not_load_the_offline_libraries():
    """numba (the kernels), SciPy and JAX are the offline learners' and the continuous policies': a node process
    does not pay their import (SciPy alone, through numpy.f2py, was ~0.45 of a node's 1.0 s start)."""
    import subprocess
    import sys

    code = ("import sys; import altmarl_ros.ros.controller_node, altmarl_ros.ros.robot_node, "
            "altmarl_ros.ros.sim_node; print(sorted(m for m in ('numba', 'scipy', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_a_sampled_operator_refuses_rows_without_m_entries():
    """Summed duplicates (fewer than m entries in a row) would make the kernel read the wrong indices: refused."""
    D, m = 6, 3
    M = sp.csr_matrix((np.full(D * m, 1.0 / m), np.zeros(D * m, dtype=np.int32), np.arange(0, D * m + 1, m)),
                      shape=(D, D))
    M.sum_duplicates()
    with pytest.raises(InputError, match="samples=3"):
        ExpectationOperator(np.zeros((1, 1, D)), np.ones((1, 1, 1)), [M], samples=m)


def _numpy_sample_counts(u, h, k):
    """The vectorised NumPy form the kernel replaced (population_sim before it): per state, the log pmf of every x
    in 0..k at once (negative factorial arguments wrap to log_f's +inf tail), exp, cumsum, inverse CDF."""
    log_f = ps.log_factorials(int(h.sum(-1).max()), k)
    out, left_n, left_k, x = np.empty_like(h), h.sum(-1), np.full(h.shape[0], k), np.arange(k + 1)
    for j in range(h.shape[1] - 1):
        good = h[:, j]
        log_p = -(log_f[x] + log_f[left_k[:, None] - x] + log_f[good[:, None] - x]
                  + log_f[(left_n - good - left_k)[:, None] + x])
        cdf = np.cumsum(np.exp(log_p - log_p.max(1, keepdims=True)), axis=1)
        out[:, j] = (cdf[:, :-1] <= (u[j] * cdf[:, -1])[:, None]).sum(1)
        left_n, left_k = left_n - good, left_k - out[:, j]
    out[:, -1] = left_k
    return out


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 6), st.integers(1, 1200), st.integers(1, 60), st.integers(1, 200), st.integers(0, 2**32 - 1))
def test_sample_counts_kernel_is_the_numpy_inverse_cdf_bit_for_bit(n_states, n, k, batch, seed):
    rng = np.random.default_rng(seed)
    k = min(k, n)
    h = np.array([rng.multinomial(n, p) for p in rng.dirichlet(np.full(n_states, 0.3), batch)])  # many empty states
    u = rng.random((n_states - 1, batch))
    got = ps.sample_counts(u, h, k)
    assert np.array_equal(got, _numpy_sample_counts(u, h, k))
    assert (got.sum(1) == k).all() and (got <= h).all()


def test_deterministic_action_values_reuse_the_solve_only_when_it_is_for_the_same_robots():
    """With the solve's transitions, the same Q as built again; transitions of other robots are not used."""
    from altmarl_ros.marl.learners.g_learn import deterministic_action_values, g_learn
    from altmarl_ros.marl.learners.l_learn import chase_policy

    game = make_game("warehouse")
    pi_l, uniform = chase_policy(game), TabularLocalPolicy.uniform(5, 5, game.n_local_actions)
    solved = g_learn(game, pi_l, k=6, transition="deterministic", tol=1e-3)
    built = deterministic_action_values(game, pi_l, solved.V, k=6)
    assert np.array_equal(deterministic_action_values(game, pi_l, solved.V, k=6, transitions=solved.transitions), built)
    other = g_learn(game, uniform, k=6, transition="deterministic", tol=1e-3).transitions
    assert np.array_equal(deterministic_action_values(game, pi_l, solved.V, k=6, transitions=other), built)
    assert np.array_equal(built.argmax(-1), g_learn(game, pi_l, k=6, transition="deterministic", tol=1e-3,
                                                    V0=solved.V, max_iter=1, stopping="fixed").pi_g.actions)
