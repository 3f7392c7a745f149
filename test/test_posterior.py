"""The posterior dispatcher (marl/posterior.py): the full-information reference projected onto the k-sample."""

from __future__ import annotations

import numpy as np
import pytest

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl import population_sim
from altmarl_ros.marl.game import marginal_local
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.learners.g_learn import count_transitions, g_learn
from altmarl_ros.marl.learners.l_learn import chase_policy
from altmarl_ros.marl.policy import FullInformationPolicy, TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.posterior import occupancy, posterior_table, reference_q
from altmarl_ros.marl.sim import Estimate


def _reference(game, pi_l, K):
    res = g_learn(game, pi_l, k=K, transition="deterministic", stopping="span", tol=1e-3, max_iter=2000)
    return FullInformationPolicy(res.pi_g), res


def test_reference_q_is_the_action_value_the_reference_dispatcher_is_greedy_for():
    game = make_game("warehouse")
    pi_l = chase_policy(game)
    reference, res = _reference(game, pi_l, 8)
    Q = reference_q(game, pi_l, K=8, tol=1e-3, max_iter=2000)
    assert Q.shape == (5, cv.n_count_vectors(8, 5), 5)
    chosen = np.take_along_axis(Q, reference.pi_g.actions[..., None], -1)[..., 0]
    top = Q.max(-1)
    np.testing.assert_allclose(chosen, top, rtol=1e-12)  # greedy up to rounding: exact ties (actions with equal
    clear = np.sort(Q, -1)[..., -2] < top - 1e-9 * np.abs(top)  # P_g rows) break by the last bit, which the BLAS
    np.testing.assert_array_equal(Q.argmax(-1)[clear], reference.pi_g.actions[clear])  # kernel of the machine sets
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)
    nxt = count_transitions(game, P_tilde, k=8, transition="deterministic")
    d = cv.enumerate_counts(8, 5)[37]
    for g, a in [(0, 0), (2, 4), (4, 1)]:  # Q = r_g + (1/K) sum_j d_j r~(j, g) + gamma sum_g' P_g(g' | g, a) V(g', d')
        expected = game.r_g[g, a] + d @ r_tilde[:, g] / 8 + game.gamma * game.P_g[g, a] @ res.V[:, nxt[g][37]]
        assert Q[g, 37, a] == pytest.approx(expected, rel=1e-12)


def test_posterior_table_is_the_bayes_decision_on_the_occupancy_particles():
    game = make_game("coordination", slip=0.1)
    pi_l = chase_policy(game)
    S_l = game.n_local_states
    reference, _ = _reference(game, pi_l, 4)
    Q = reference_q(game, pi_l, K=4, tol=1e-3, max_iter=2000)
    occ = occupancy(game, reference, pi_l, k=2, rng=np.random.default_rng(0), n_agents=6, horizon=15, episodes=60,
                    samples=2)
    table = posterior_table(game, reference, Q, occ, k=2)
    assert np.array_equal(posterior_table(game, reference, Q, occ, k=2, chunk=1), table)  # chunks are rows apart
    all_d = cv.enumerate_counts(2, S_l)
    plug_in = reference.pi_g.actions[:, cv.rank(cv.round_to_counts(all_d * 2, 4), 4)]
    for g in range(game.n_global_states):
        for e in range(len(all_d)):
            if e not in occ.entries[g]:
                assert table[g, e] == plug_in[g, e]
                continue
            value = np.zeros(game.n_global_actions)  # sum_h w(h) prod_j (h_j / n)^d_j Q(g, round(h), .)
            for h, w in zip(occ.h[g], occ.weight[g], strict=True):
                likelihood = np.prod((h / 6.0) ** all_d[e])
                value += w * likelihood * Q[g, cv.rank(cv.round_to_counts(h[None] * (4 / 6), 4), 4)[0]]
            assert table[g, e] == value.argmax()
    assert sum(len(e) for e in occ.entries) > 0 and all(w.min() > 0 for w in occ.weight if w.size)


def test_posterior_dispatcher_beats_the_reference_table_read_on_the_sample():
    """At k = 10 of 1000 robots the plug-in (the reference's table at the sample's rounding) acts on a noisy
    sample as if it were the population; the posterior dispatcher earns more on paired episodes."""
    game = make_game("warehouse")
    pi_l = chase_policy(game)
    K, k, n = 50, 10, 1000
    reference, _ = _reference(game, pi_l, K)
    Q = reference_q(game, pi_l, K=K, tol=1e-3, max_iter=2000)
    occ = occupancy(game, reference, pi_l, k=k, rng=np.random.default_rng(1), n_agents=n, horizon=50, episodes=200,
                    samples=8)
    posterior = TabularGlobalPolicy(posterior_table(game, reference, Q, occ, k=k), k, 5, 5)
    plug_in = TabularGlobalPolicy(
        reference.pi_g.actions[:, cv.rank(cv.round_to_counts(cv.enumerate_counts(k, 5) * (K / k), K), K)], k, 5, 5)
    returns = population_sim.run_count_episodes(game, [(posterior, pi_l), (plug_in, pi_l)], np.random.default_rng(2),
                                                n_agents=n, horizon=50, n_episodes=400).returns
    gain = Estimate.of(returns[0] - returns[1])
    assert gain.mean > 3 * gain.stderr, gain


def test_bad_inputs_are_refused_with_the_problem_named():
    game = make_game("coordination", slip=0.1)
    pi_l = chase_policy(game)
    reference, _ = _reference(game, pi_l, 4)
    occ = occupancy(game, reference, pi_l, k=2, rng=np.random.default_rng(0), n_agents=6, horizon=3, episodes=4,
                    samples=1)
    with pytest.raises(InputError, match=r"Q must have shape \(S_g, D_K, A_g\)"):
        posterior_table(game, reference, np.zeros((1, 2, 3)), occ, k=2)
    with pytest.raises(InputError, match="need 1 <= k <= n_agents"):
        occupancy(game, reference, pi_l, k=7, rng=np.random.default_rng(0), n_agents=6, horizon=3, episodes=4,
                  samples=1)


def test_starts_built_on_the_reference_are_skipped_with_a_warning_when_it_is_out_of_reach():
    """8 local states at full_information.k = 50: 264 million count vectors per global state. `altmarl train`
    with the default config still trains such a game (without the posterior start, saying so); asking for the
    reference itself is a ConfigError that names the size and the fix."""
    from dataclasses import replace

    from altmarl_ros.marl.config import ConfigError, load_train_config
    from altmarl_ros.marl.experiments import train_policies, training_starts
    from altmarl_ros.paths import share_path

    config = load_train_config(share_path("config/train_warehouse.yaml"), n_agents=20)
    grid = replace(config, game=str(share_path("config/games/grid.yaml")), game_options={})
    game = make_game(grid.game)
    assert "posterior" in config.loop.starts and not grid.full_information.feasible(game.n_local_states)
    with pytest.warns(UserWarning, match=r"starts \['posterior'\] and loop.refine skipped: .*264,385,836 count "
                                         r"vectors"):
        starts = training_starts(grid, game, full_information=False)
    assert [s.name for s in starts] == ["constant:0", "l_first:0", "g_first", "chase"]
    with pytest.raises(ConfigError, match=r"264,385,836 count vectors .* lower full_information.k or set "
                                          r"full_information.enabled: false"):
        train_policies(grid, k=3, seed=0, full_information=True)


def test_the_cli_says_once_in_one_line_which_starts_it_skips(tmp_path):
    import subprocess
    import sys

    from altmarl_ros.paths import share_path

    run = subprocess.run([sys.executable, "-m", "altmarl_ros.cli", "train", "--game",
                          str(share_path("config/games/grid.yaml")), "--k", "2", "--n-agents", "20", "--no-eval",
                          "--out", str(tmp_path / "grid")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and (tmp_path / "grid.npz").exists(), run.stderr[-2000:]
    warned = [line for line in run.stderr.splitlines() if "warning" in line.lower()]
    assert len(warned) == 1 and warned[0].startswith("altmarl train: warning: starts ['posterior'] and loop.refine "
                                                                "skipped: "), warned


def _record_starts(monkeypatch):
    """Record (pi_g0, pi_l0, result) of every alternation `train_policies` runs, in order."""
    import altmarl_ros.marl.experiments as experiments

    started_from = []
    real_alternate = experiments.alternate

    def spy(**kwargs):
        started_from.append((kwargs["pi_g0"], kwargs["pi_l0"], real_alternate(**kwargs)))
        return started_from[-1][2]

    monkeypatch.setattr(experiments, "alternate", spy)
    return started_from


def test_refine_restarts_from_the_posterior_response_to_the_best_robots(monkeypatch):
    """loop.refine: each restart begins from (posterior_response(pi_l*), pi_l*) of the best fixed point so far, is
    recorded as start refine:<r>, the next one follows only if it became the best, and selection keeps the best
    fixed point of all runs (a small warehouse where both restarts happen, ~1 s)."""
    from dataclasses import replace

    from altmarl_ros.marl.config import config_from_dict
    from altmarl_ros.marl.experiments import train_policies
    from altmarl_ros.marl.posterior import posterior_response

    config = config_from_dict({"game": "warehouse", "n_agents": 30, "k": 3, "full_information": {"k": 8},
                               "loop": {"eval_episodes": 32, "eval_horizon": 20, "starts": ["constant:0"]},
                               "evaluation": {"horizon": 20, "episodes": 20, "seeds": 2}})
    plain = train_policies(config, k=3, seed=4)
    started_from = _record_starts(monkeypatch)
    refined = train_policies(replace(config, loop=replace(config.loop, refine=2)), k=3, seed=4)
    outcomes = refined.selection.outcomes
    assert [o.start for o in outcomes] == ["constant:0", "refine:1", "refine:2"]
    assert outcomes[1].welfare.mean > outcomes[0].welfare.mean  # refine:1 became the best, so refine:2 ran
    assert not np.array_equal(started_from[1][2].pi_l.probs, started_from[0][2].pi_l.probs)  # new robots, new step
    for (pi_g0, pi_l0, _), (_, _, best) in [(started_from[1], started_from[0]), (started_from[2], started_from[1])]:
        np.testing.assert_array_equal(pi_l0.probs, best.pi_l.probs)
        expected = posterior_response(plain.game, best.pi_l, K=8, k=3, n_agents=30, horizon=20, tol=1e-3,
                                      max_iter=2000,
                                      rng=np.random.default_rng([4, 16]))
        np.testing.assert_array_equal(pi_g0.actions, expected.actions)
    np.testing.assert_array_equal(started_from[0][2].pi_g.actions, plain.pi_g.actions)  # refine=0 is the plain run
    welfare = {o.start: o.welfare.mean for o in outcomes if o.result.fixed_point}
    assert refined.selection.best.start == max(welfare, key=welfare.get)


def test_tied_restarts_begin_from_every_fixed_point_not_significantly_below_the_best():
    """loop.refine_from: tied. `Selection.tied` keeps the fixed points whose paired difference to the chosen one is
    not significantly negative (a run that stopped at max_rounds and one clearly below are left out), and `restart`
    runs its chain from each of them, the chosen one first, once per distinct start pair (a tied fixed point with
    the same robots and response adds no run); "best" begins from the chosen one only."""
    from types import SimpleNamespace

    from altmarl_ros.marl.learners.alternate import Selection, StartOutcome
    from altmarl_ros.marl.run_learners import restart
    from altmarl_ros.marl.sim import Estimate

    rng = np.random.default_rng(0)
    base = rng.normal(100, 4, size=256)

    def pair(name, robots=None, fixed_point=True):
        robots = robots or name
        return SimpleNamespace(pi_g=SimpleNamespace(actions=np.array([len(name)])), fixed_point=fixed_point,
                               pi_l=SimpleNamespace(name=robots, probs=np.frombuffer(robots.encode(), np.uint8)))

    wobble = np.resize([0.5, -0.5], 256)  # paired differences of mean -0.01 (or -0.02), stderr 0.03: tied; -2: below
    runs = {"best": (base, "best"), "tied": (base - 0.01 + wobble, "tied"), "twin": (base - 0.02 + wobble, "tied"),
            "below": (base - 2 + wobble, "below"), "no_fixed_point": (base + 0.01, "no_fixed_point")}
    names = list(runs)
    returns = np.stack([runs[n][0] for n in names])
    outcomes = tuple(StartOutcome(n, pair(n, runs[n][1], n != "no_fixed_point"), Estimate.of(runs[n][0]))
                     for n in names)
    selection = Selection(0, outcomes, "best fixed point", returns)
    assert selection.tied(1.645) == [0, 1, 2]

    for tied_z, expected in [(1.645, [("refine:1", "best"), ("refine:2", "tied")]), (None, [("refine:1", "best")])]:
        ran = []

        def respond(pi_g, pi_l):  # like the posterior response: a function of the robots only
            return SimpleNamespace(actions=np.array([-1]))

        def run(name, pi_g0, pi_l0, ran=ran):
            ran.append((name, pi_l0.name))

        def select(ran=ran):  # every restart ends below the best: each chain stops after one run
            return selection._replace(outcomes=outcomes + tuple(
                StartOutcome(n, pair("x"), Estimate(0.0, 1.0, 256)) for n, _ in ran))

        restart(selection, select, respond, run, restarts=2, name="refine", tied_z=tied_z)
        assert ran == expected


def test_refine_stops_when_the_response_is_the_best_dispatcher_itself():
    """A restart whose robots did not move (its L-step rejected) has its own table as the response: no refine:2."""
    from altmarl_ros.marl.config import config_from_dict
    from altmarl_ros.marl.experiments import train_policies
    from altmarl_ros.marl.posterior import posterior_response

    config = config_from_dict({"game": "warehouse", "n_agents": 30, "k": 3, "full_information": {"k": 6},
                               "loop": {"eval_episodes": 32, "eval_horizon": 20, "starts": ["constant:0"],
                                        "refine": 2},
                               "evaluation": {"horizon": 20, "episodes": 20, "seeds": 2}})
    trained = train_policies(config, k=3, seed=0)
    assert [o.start for o in trained.selection.outcomes] == ["constant:0", "refine:1"]
    assert trained.selection.best.start == "refine:1"
    again = posterior_response(trained.game, trained.pi_l, K=6, k=3, n_agents=30, horizon=20, tol=1e-3,
                               max_iter=2000, rng=np.random.default_rng([0, 16]))
    np.testing.assert_array_equal(again.actions, trained.pi_g.actions)


def test_refine_reaches_the_better_equilibrium_the_update_rule_rejects_at_k_5():
    """The warehouse at k = 5 (2 eta = 1.81): every start ends at 'hold zone 0' (bench/README 1), which the
    posterior response to its robots beats by ~2 (bench/README 11.6); with refine the trained pair earns more on
    the final episodes (paired, z > 5; measured +1.98 +- 0.18 for seed 0)."""
    from dataclasses import replace

    from altmarl_ros.marl.config import load_train_config
    from altmarl_ros.marl.experiments import evaluate_policies, reference_pair, train_policies
    from altmarl_ros.paths import share_path

    config = load_train_config(share_path("config/train_warehouse.yaml"))
    plain_config = replace(config, loop=replace(config.loop, refine=0))
    reference = reference_pair(config, seed=0)
    plain = train_policies(plain_config, k=5, seed=0, reference=reference)
    refined = train_policies(config, k=5, seed=0, reference=reference)
    assert refined.selection.best.start == "refine:1" and refined.alternation.fixed_point
    diff = Estimate.of(evaluate_policies(config, refined.game, refined.pi_g, refined.pi_l, seed=0).returns
                       - evaluate_policies(config, plain.game, plain.pi_g, plain.pi_l, seed=0).returns)
    assert diff.mean > 5 * diff.stderr, diff


def test_the_reference_keeps_its_q_and_the_responses_every_k_shares(monkeypatch):
    """A sweep's cells share what the reference keeps: its Q_ref (computed once) and the full-information responses
    to robots a restart begins from (solved once per robots, at most RESPONSES_KEPT kept); the projections are
    the same as `posterior_response` computes from scratch."""
    import altmarl_ros.marl.run_learners as rl
    from altmarl_ros.marl.config import config_from_dict
    from altmarl_ros.marl.experiments import reference_pair
    from altmarl_ros.marl.posterior import posterior_response

    config = config_from_dict({"game": "warehouse", "n_agents": 30, "k": 3, "full_information": {"k": 8},
                               "loop": {"eval_episodes": 32, "eval_horizon": 20, "starts": ["constant:0"]},
                               "evaluation": {"horizon": 20, "episodes": 20, "seeds": 2}})
    reference = reference_pair(config, seed=0)
    game, gc = reference.game, config.g_learn
    assert np.array_equal(reference.q, reference_q(game, reference.pi_l, K=8, tol=gc.tol, max_iter=gc.max_iter,
                                                   V=reference.values))
    ref = rl.Reference(reference.pi_g, reference.pi_l, reference.values, reference.response, reference.q, {})
    solves = []
    real = rl.response_and_q
    monkeypatch.setattr(rl, "response_and_q", lambda *a, **kw: solves.append(1) or real(*a, **kw))
    robots = [chase_policy(game), TabularLocalPolicy.uniform(5, 5, game.n_local_actions)]
    for k in (2, 3):
        learner = rl.GlobalLearner(game, gc, k=k, seed=0, full_information=False, n_agents=30, horizon=20)
        got = learner.posterior_response(robots[0], K=8, reference=ref)
        expected = posterior_response(game, robots[0], K=8, k=k, n_agents=30, horizon=20, tol=gc.tol,
                                      max_iter=gc.max_iter, rng=np.random.default_rng([0, 16]))
        assert np.array_equal(got.actions, expected.actions)
    assert len(solves) == 1 and list(ref.responses) == [(robots[0].probs.tobytes(), 8)]
    monkeypatch.setattr(rl, "RESPONSES_KEPT", 1)
    learner.posterior_response(robots[1], K=8, reference=ref)
    assert len(solves) == 2 and list(ref.responses) == [(robots[1].probs.tobytes(), 8)]  # the oldest dropped


def test_oracle_restart_begins_from_the_restricted_best_response_to_the_best_robots(monkeypatch):
    """loop.oracle_max_k: at k <= it, after the posterior restarts, one restart "oracle:1" begins from (the restricted
    best response to the best fixed point's robots, started from its dispatcher, those robots); above it, none.
    loop.select_episodes gives the selection its own budget (the outcomes' welfare has that many episodes)."""
    from dataclasses import replace

    from altmarl_ros.marl.config import config_from_dict
    from altmarl_ros.marl.experiments import train_policies
    from altmarl_ros.marl.restricted import restricted_best_response

    config = config_from_dict({"game": "warehouse", "n_agents": 30, "k": 2, "full_information": {"k": 6},
                               "loop": {"eval_episodes": 16, "eval_horizon": 10, "starts": ["constant:0"],
                                        "oracle_max_k": 2, "select_episodes": 24},
                               "evaluation": {"horizon": 10, "episodes": 10, "seeds": 2}})
    started_from = _record_starts(monkeypatch)
    trained = train_policies(config, k=2, seed=1)
    outcomes = trained.selection.outcomes
    assert [o.start for o in outcomes] == ["constant:0", "oracle:1"]
    assert all(o.welfare.n == 24 for o in outcomes)
    best = started_from[0][2]
    expected = restricted_best_response(trained.game, best.pi_l, k=2, n_agents=30, horizon=10,
                                        rng=np.random.default_rng([1, 17]), starts={"best": best.pi_g.actions})
    np.testing.assert_array_equal(started_from[1][0].actions, expected.table)
    np.testing.assert_array_equal(started_from[1][1].probs, best.pi_l.probs)
    assert not np.array_equal(expected.table, best.pi_g.actions)  # else no restart would have run
    above = train_policies(replace(config, loop=replace(config.loop, oracle_max_k=1)), k=2, seed=1)
    assert [o.start for o in above.selection.outcomes] == ["constant:0"]


def test_from_posterior_only_from_k_the_posterior_start_runs_alone_on_its_own_evaluation_seeds(monkeypatch):
    """loop.posterior_only_from_k: at k >= it only the posterior start runs, with the in-loop evaluation seed it has
    when every start runs (its slot in loop.starts); below it, or without a posterior start, every start runs."""
    from dataclasses import replace

    import altmarl_ros.marl.experiments as experiments
    from altmarl_ros.marl.config import config_from_dict
    from altmarl_ros.marl.experiments import reference_pair, train_policies

    seeds: list[int] = []  # the eval_seed of every alternation run, in order
    real_alternate = experiments.alternate
    monkeypatch.setattr(experiments, "alternate", lambda **kw: seeds.append(kw["eval_seed"]) or real_alternate(**kw))
    config = config_from_dict({"game": "warehouse", "n_agents": 30, "full_information": {"k": 6},
                               "loop": {"eval_episodes": 8, "eval_horizon": 10, "max_rounds": 2,
                                        "starts": ["constant:0", "posterior"], "posterior_only_from_k": 3},
                               "evaluation": {"horizon": 10, "episodes": 10, "seeds": 2}})
    reference = reference_pair(config, seed=0)
    every = replace(config, loop=replace(config.loop, posterior_only_from_k=0))

    def starts_and_seeds(cfg, k):
        seeds.clear()
        trained = train_policies(cfg, k=k, seed=0, reference=reference)
        return [o.start for o in trained.selection.outcomes], list(seeds)

    alone, alone_seeds = starts_and_seeds(config, 3)
    both, both_seeds = starts_and_seeds(every, 3)
    assert alone == ["posterior"] and both == ["constant:0", "posterior"]
    assert alone_seeds == both_seeds[1:2]
    assert starts_and_seeds(config, 2)[0] == ["constant:0", "posterior"]
    no_posterior = replace(config, loop=replace(config.loop, starts=("constant:0",)))
    assert starts_and_seeds(no_posterior, 3)[0] == ["constant:0"]


def test_the_cli_says_when_only_the_posterior_start_runs(tmp_path):
    import subprocess
    import sys

    import yaml

    config = {"game": "warehouse", "n_agents": 30, "full_information": {"k": 6},
              "loop": {"eval_episodes": 8, "eval_horizon": 10, "max_rounds": 2,
                       "starts": ["constant:0", "posterior"], "posterior_only_from_k": 3},
              "evaluation": {"horizon": 10, "episodes": 10, "seeds": 2}}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))

    def train(k):
        cmd = [sys.executable, "-m", "altmarl_ros.cli", "train", "--config", str(tmp_path / "train.yaml"),
               "--k", str(k), "--no-eval", "--out", str(tmp_path / f"k{k}")]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        return [line.split()[1] for line in run.stdout.splitlines() if line.startswith("  start ")], run.stdout

    starts, out = train(3)
    assert starts == ["posterior"]
    assert "k=3 >= loop.posterior_only_from_k=3: only the posterior start runs" in out
    starts, out = train(2)
    assert starts == ["constant:0", "posterior"] and "posterior_only_from_k" not in out
