"""The pooled dispatcher end to end, ROS-free (issue 15 item 2): the policy, its artifact, its evaluation on
common random numbers with the k-sample dispatcher, and its training by the alternating loop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl import sim
from altmarl_ros.marl.artifacts import PolicyFileError, load_policies, save_policies
from altmarl_ros.marl.config import PooledConfig, load_train_config
from altmarl_ros.marl.experiments import paired_evaluator
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.learners.alternate import UpdateRule
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.pooled import PooledGlobalPolicy, lift_table, pooled_policy
from altmarl_ros.marl.pooled_training import mean_field_view, train_pooled
from altmarl_ros.marl.run_learners import LocalLearner
from altmarl_ros.ros.heuristics import follow_local_policy, hold_or_mode_global_policy

GAME = make_game("warehouse", r_g="constant")
SPEC = {"name": "warehouse", "options": {"r_g": "constant"}}


def heuristic(k: int, K: int, n: int) -> tuple[TabularGlobalPolicy, PooledGlobalPolicy, TabularLocalPolicy]:
    pi_l = follow_local_policy(GAME)
    plain = hold_or_mode_global_policy(GAME, k)
    return plain, pooled_policy(GAME, pi_l, hold_or_mode_global_policy(GAME, K).actions, k=k, K=K, n_agents=n), pi_l


def test_lift_table_reads_a_table_on_finer_count_vectors():
    plain = hold_or_mode_global_policy(GAME, 4)
    assert np.array_equal(lift_table(plain.actions, 4, 4, 5), plain.actions)  # K = k: the same table
    lifted = lift_table(plain.actions, 4, 12, 5)
    grid = cv.enumerate_counts(12, 5)
    for i in (0, 17, 100, len(grid) - 1):
        coarse = cv.round_to_counts(grid[i] * (4 / 12), 4)
        assert (lifted[:, i] == plain.act(np.arange(5), np.tile(coarse, (5, 1)))).all()


def test_act_with_draws_the_k_sample_of_the_plain_dispatcher_and_decide_is_its_controller_form():
    _, pooled, _ = heuristic(3, 9, 40)
    rng = np.random.default_rng(1)
    s_g, s_l = rng.integers(0, 5, 6), rng.integers(0, 5, (6, 40))
    memory = pooled.start(6)
    acted, memory_a = pooled.act_with(np.random.default_rng(7), memory, s_g, s_l)
    idx = cv.subsample(np.random.default_rng(7), 40, 3, 6)  # the draws of TabularGlobalPolicy.act_on
    counts = cv.counts_from_states(np.take_along_axis(s_l, idx, 1), 5)
    decided, memory_d = pooled.decide(memory, s_g, counts)
    assert np.array_equal(acted, decided) and np.allclose(memory_a.mu, memory_d.mu)
    assert np.array_equal(memory_a.s_g, s_g) and (memory_a.ess > pooled.start(6).ess).all()


def test_a_constant_pooled_dispatcher_has_the_plain_ones_episodes():
    """Common random numbers: with the same rng state, a pooled and a plain dispatcher see the same samples and
    the environment's draws; constant tables act alike, so the returns are equal episode by episode."""
    pi_l = follow_local_policy(GAME)
    plain = TabularGlobalPolicy.constant(2, n_global_states=5, n_local_states=5, n_global_actions=5, k=3)
    pooled = pooled_policy(GAME, pi_l, np.full((5, cv.n_count_vectors(6, 5)), 2), k=3, K=6, n_agents=30)
    a = sim.evaluate(GAME, plain, pi_l, np.random.default_rng(3), n_agents=30, horizon=12, n_episodes=20)
    b = sim.evaluate(GAME, pooled, pi_l, np.random.default_rng(3), n_agents=30, horizon=12, n_episodes=20)
    assert np.array_equal(a.returns, b.returns)


def test_pooled_artifact_round_trips_as_version_4_and_refuses_a_bad_dispatcher(tmp_path):
    _, pooled, pi_l = heuristic(3, 8, 50)
    path = save_policies(tmp_path / "p", pooled, pi_l, game=GAME, game_spec=SPEC)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["version"] == 4 and meta["dispatcher"] == {"observation": "pooled", "K": 8, "n_agents": 50}
    loaded = load_policies(path, expect_k=3)
    assert isinstance(loaded.pi_g, PooledGlobalPolicy) and loaded.pi_g.K == 8 and loaded.k == 3
    assert np.array_equal(loaded.pi_g.actions, pooled.actions)
    assert np.allclose(loaded.pi_g.observer.filter.P_tilde, pooled.observer.filter.P_tilde)
    resized = loaded.pi_g.for_population(1000)
    assert resized.observer.filter.n_agents == 1000  # the prior stays the game's Dirichlet(0.3): S_l c
    assert resized.observer.filter.prior_ess == pytest.approx(5 * GAME.init_l_concentration)
    plain_path = save_policies(tmp_path / "q", hold_or_mode_global_policy(GAME, 3), pi_l, game=GAME, game_spec=SPEC)
    assert json.loads(plain_path.with_suffix(".json").read_text())["version"] == 3  # k-sample files stay v3
    for bad in ({"observation": "fresh"}, {"observation": "pooled", "K": 0, "n_agents": 50},
                {"observation": "pooled", "K": 8, "n_agents": 2}):
        meta["dispatcher"] = bad
        path.with_suffix(".json").write_text(json.dumps(meta))
        with pytest.raises(PolicyFileError, match="dispatcher"):
            load_policies(path)


def test_mean_field_view_reads_the_true_histogram_on_K_counts():
    _, pooled, _ = heuristic(3, 10, 50)
    view = mean_field_view(pooled)
    s_l = np.array([[0] * 30 + [3] * 20])
    expected = pooled.actions[1, cv.rank(np.array([[6, 0, 0, 4, 0]]), 10)]
    assert view.act_on(np.random.default_rng(0), np.array([1]), s_l).tolist() == expected.tolist()


def test_train_pooled_keeps_a_better_pair_only_if_significantly_better():
    """The alternation with the pooled observation, from the k-sample pair and the reference pair: the record
    holds both runs, and the pooled pair is kept exactly when its paired improvement is significant at the
    loop's confidence (else the k-sample pair comes back unchanged)."""
    config = load_train_config("config/train_warehouse_pooled.yaml", n_agents=30, k=3)
    plain, _, pi_l = heuristic(3, 6, 30)
    rule = UpdateRule("two_eta", c=0.01, confidence=0.95)
    reference = (hold_or_mode_global_policy(GAME, 12).actions, 12, pi_l)
    (pi_g, kept_pi_l), step = train_pooled(
        GAME, (plain, pi_l), PooledConfig(enabled=True, K=6, episodes=64, rounds=2),
        learn_local=LocalLearner(GAME, config.l_learn), n_agents=30, horizon=20, rule=rule, max_rounds=2,
        value_scale=202.6, seed=0, reference=reference,
        evaluate=paired_evaluator(config, GAME, episodes=32, horizon=20),
        decide=paired_evaluator(config, GAME, episodes=64, horizon=20))
    assert set(step.runs) == {"k_sample", "full_information"} and step.K == 6
    assert step.lcb == pytest.approx(step.improvement.mean - rule.z * step.improvement.stderr)
    assert step.kept == (step.lcb > 0)
    if step.kept:
        assert isinstance(pi_g, PooledGlobalPolicy)
    else:
        assert pi_g is plain and kept_pi_l is pi_l
