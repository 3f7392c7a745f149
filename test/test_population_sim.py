"""The simulator by counts (`population_sim`) against the agent-by-agent simulator (`sim.run_episodes`) and
the exact values of tiny games: same law of returns, step rewards, mode accuracy and s_g paths."""

import numpy as np
import pytest
from scipy import stats

from altmarl_ros.errors import InputError
from altmarl_ros.marl import population_sim as ps
from altmarl_ros.marl import sim
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.metrics import exact_value
from altmarl_ros.marl.policy import (
    FullInformationPolicy,
    RandomGlobalPolicy,
    TabularGlobalPolicy,
    TabularLocalPolicy,
    TaggedLocalPolicy,
)
from altmarl_ros.marl.pooled import pooled_policy

Z = stats.norm.ppf(1 - 0.001 / 2)  # two-sided z-test at alpha = 0.001


def random_game(seed: int, S_g: int, S_l: int, A_g: int, A_l: int) -> TabularGame:
    rng = np.random.default_rng(seed)
    return TabularGame(P_g=rng.dirichlet(np.ones(S_g), size=(S_g, A_g)),
                       P_l=rng.dirichlet(np.full(S_l, 0.5), size=(S_l, S_g, A_l)),
                       r_g=rng.uniform(0, 1, (S_g, A_g)), r_l=rng.uniform(0, 2, (S_l, S_g, A_l)), gamma=0.9,
                       init_g=rng.dirichlet(np.ones(S_g)), init_l_concentration=0.5, name=f"random{seed}")


def random_pair(game: TabularGame, k: int, seed: int) -> tuple[TabularGlobalPolicy, TabularLocalPolicy]:
    """A random dispatcher table over count vectors of k (so the k-sample matters) and a random stochastic pi_l."""
    rng = np.random.default_rng(seed)
    pi_g = TabularGlobalPolicy.constant(0, n_global_states=game.n_global_states, n_local_states=game.n_local_states,
                                        n_global_actions=game.n_global_actions, k=k)
    table = rng.integers(0, game.n_global_actions, size=pi_g.actions.shape)
    pi_l = TabularLocalPolicy(rng.dirichlet(np.ones(game.n_local_actions), size=(game.n_global_states,
                                                                                  game.n_local_states)))
    return TabularGlobalPolicy(table, k, game.n_local_states, game.n_global_actions), pi_l


def assert_same_mean(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """Two independent samples: |mean difference| within Z standard errors."""
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    z = (a.mean() - b.mean()) / se if se > 0 else 0.0
    assert abs(z) < Z, f"{what}: {a.mean():.4f} vs {b.mean():.4f}, z = {z:.2f}"


def assert_same_law(game, pi_g, pi_l, *, n_agents: int, horizon: int, episodes: int, ordering: str) -> None:
    kw = dict(n_agents=n_agents, horizon=horizon, n_episodes=episodes, ordering=ordering)
    agents = sim.run_episodes(game, pi_g, pi_l, np.random.default_rng(1), **kw)
    counts = ps.run_count_episodes(game, [(pi_g, pi_l)], np.random.default_rng(2), **kw)
    assert_same_mean(agents.returns, counts.returns[0], "discounted return")
    assert_same_mean(agents.step_rewards, counts.step_rewards[0], "mean step reward")
    assert_same_mean(agents.mode_hits, counts.mode_hits[0], "mode accuracy")
    for j in range(game.n_global_states):  # the s_g path, at the last step
        assert_same_mean(agents.s_g[:, -1] == j, counts.s_g[0, :, -1] == j, f"P(s_g(H) = {j})")


CASES = [  # (game seed, S_g, S_l, A_g, A_l, n, k): k close to n where sampling without replacement matters
    (0, 2, 2, 2, 2, 3, 2), (1, 2, 3, 2, 2, 4, 3), (2, 3, 2, 2, 3, 5, 1), (3, 3, 3, 3, 2, 20, 4),
    (4, 2, 4, 3, 2, 12, 12),
]


@pytest.mark.parametrize("ordering", ["paper", "authors"])
@pytest.mark.parametrize("case", CASES)
def test_counts_and_agents_agree_in_law_on_random_games(case, ordering):
    seed, S_g, S_l, A_g, A_l, n, k = case
    game = random_game(seed, S_g, S_l, A_g, A_l)
    pi_g, pi_l = random_pair(game, k, seed)
    assert_same_law(game, pi_g, pi_l, n_agents=n, horizon=12, episodes=3000, ordering=ordering)


@pytest.mark.parametrize("ordering", ["paper", "authors"])
def test_counts_and_agents_agree_in_law_on_the_warehouse(ordering):
    game = make_game("warehouse", r_g="distance")
    pi_g, pi_l = random_pair(game, 5, 7)
    assert_same_law(game, pi_g, pi_l, n_agents=200, horizon=20, episodes=1500, ordering=ordering)


@pytest.mark.parametrize("case", CASES[:3])
def test_counts_match_the_exact_value_of_tiny_games(case):
    """The paper ordering's exact finite-horizon value (`metrics.exact_value`, the joint-configuration chain)."""
    seed, S_g, S_l, A_g, A_l, n, k = case
    game = random_game(seed, S_g, S_l, A_g, A_l)
    pi_g, pi_l = random_pair(game, k, seed)
    for policy in (pi_g, FullInformationPolicy(pi_g)):
        exact = exact_value(game, policy, pi_l, n_agents=n, horizon=10)
        est = ps.evaluate(game, policy, pi_l, np.random.default_rng(seed), n_agents=n, horizon=10,
                          n_episodes=4000).reward
        assert abs(est.mean - exact) < Z * est.stderr, (type(policy).__name__, est, exact)


def test_pooled_full_information_and_random_dispatchers_agree_in_law():
    game = make_game("warehouse")
    pi_g, pi_l = random_pair(game, 3, 11)
    pooled = pooled_policy(game, pi_l, np.random.default_rng(0).integers(0, 5, (5, 126)), k=3, K=5, n_agents=60)
    for policy in (pooled, FullInformationPolicy(pi_g), RandomGlobalPolicy(5)):
        assert_same_law(game, policy, pi_l, n_agents=60, horizon=15, episodes=1500, ordering="paper")


def test_sample_counts_is_the_multivariate_hypergeometric_law():
    rng = np.random.default_rng(3)
    h = np.array([4, 0, 3, 5])
    draws = ps.sample_counts(rng.random((3, 20000)), np.tile(h, (20000, 1)), 5)
    assert np.all(draws.sum(1) == 5) and np.all(draws <= h) and np.all(draws >= 0)
    support, observed = np.unique(draws, axis=0, return_counts=True)
    pmf = stats.multivariate_hypergeom.pmf(support, m=h, n=5)
    assert abs(pmf.sum() - 1) < 1e-9  # every reachable count vector was drawn
    assert stats.chisquare(observed, pmf * observed.sum()).pvalue > 1e-3
    assert np.array_equal(ps.sample_counts(rng.random((3, 1)), h[None], 12), h[None])  # k = n reads everyone


def test_counts_are_conserved_and_runs_are_reproducible():
    game = make_game("warehouse")
    pi_g, pi_l = random_pair(game, 4, 5)
    rng = np.random.default_rng(0)
    tables = ps.count_tables(game, [pi_l])
    state = ps.reset_counts(game, rng, n_agents=37, batch=50)
    for ordering in ("paper", "authors"):
        for _ in range(20):
            assert np.all(state.h.sum(1) == 37) and np.all(state.h >= 0)
            sample = ps.sample_counts(rng.random((4, 50)), state.h, 4)
            assert np.all(sample.sum(1) == 4) and np.all(sample <= state.h)
            state, reward = ps.step_counts(game, (rng, rng), tables, state, pi_g.act(state.s_g, sample),
                                           ordering=ordering)
            assert reward.shape == (50,)
    kw = dict(n_agents=100, horizon=10, n_episodes=70, batch_size=32)
    a = ps.run_count_episodes(game, [(pi_g, pi_l)], np.random.default_rng(9), **kw)
    b = ps.run_count_episodes(game, [(pi_g, pi_l)], np.random.default_rng(9), **kw)
    assert np.array_equal(a.returns, b.returns) and np.array_equal(a.s_g, b.s_g) and np.array_equal(a.h, b.h)
    assert np.all(a.h.sum(-1) == 100)


def test_pairs_side_by_side_share_their_random_numbers():
    """Two copies of a pair run side by side have the same episodes until the local draws (drawn per pair)
    differ: identical initial states; with a deterministic population (P_l = identity), identical episodes.
    Each pair alone has the law of `evaluate` (checked on the warehouse against the agent simulator)."""
    game = make_game("warehouse")
    pi_g, pi_l = random_pair(game, 4, 5)
    kw = dict(n_agents=50, horizon=8, n_episodes=40)
    ep = ps.run_count_episodes(game, [(pi_g, pi_l), (pi_g, pi_l)], np.random.default_rng(4), **kw)
    assert np.array_equal(ep.s_g[0, :, 0], ep.s_g[1, :, 0])
    frozen = TabularGame(P_g=game.P_g, P_l=np.broadcast_to(np.eye(5)[:, None, None, :], game.P_l.shape),
                         r_g=game.r_g, r_l=game.r_l, gamma=game.gamma, init_g=game.init_g,
                         init_l_concentration=0.5, name="frozen")
    ep = ps.run_count_episodes(frozen, [(pi_g, pi_l), (pi_g, TabularLocalPolicy.uniform(5, 5, 3))],
                               np.random.default_rng(4), **kw)
    assert np.array_equal(ep.s_g[0], ep.s_g[1]) and np.array_equal(ep.h[0], ep.h[1])
    other = TabularGlobalPolicy(np.roll(pi_g.actions, 1, axis=0), 4, 5, 5)
    both = ps.run_count_episodes(game, [(pi_g, pi_l), (other, pi_l)], np.random.default_rng(6), n_agents=100,
                                 horizon=20, n_episodes=1500)
    agents = sim.run_episodes(game, other, pi_l, np.random.default_rng(7), n_agents=100, horizon=20,
                              n_episodes=1500)
    assert_same_mean(agents.returns, both.returns[1], "the second pair's discounted return")


def test_count_simulation_refuses_what_needs_agent_identity():
    game = make_game("warehouse")
    pi_g, pi_l = random_pair(game, 4, 5)
    with pytest.raises(InputError, match="cannot be simulated by counts"):
        ps.evaluate(game, pi_g, TaggedLocalPolicy(pi_l, pi_l), np.random.default_rng(0), n_agents=10, horizon=3,
                    n_episodes=2)
    with pytest.raises(InputError, match="k <= n"):
        ps.evaluate(game, pi_g, pi_l, np.random.default_rng(0), n_agents=3, horizon=3, n_episodes=2)
