"""The federated-polling game (config/games/federated.yaml): it trains with the alternating loop, its
certificate and Nash gaps are reported, best responses do what the file's rewards ask, and the CLI
trains it from the shipped name or the file."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from altmarl_ros.marl.artifacts import load_policies
from altmarl_ros.marl.config import config_from_dict, load_train_config
from altmarl_ros.marl.experiments import run_one, train_policies
from altmarl_ros.marl.games import make_game, read_game_file
from altmarl_ros.marl.learners.l_learn import l_learn
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.reports import nash_gap_lower_bound
from altmarl_ros.marl.sim import Estimate
from altmarl_ros.paths import source_root

ROOT = source_root()
# The shipped config with small budgets (n = 60 phones, short evaluations): the same game and rules.
SMALL = {**load_train_config(ROOT / "config/train_federated.yaml").to_dict(), "n_agents": 60,
         "loop": {**load_train_config(ROOT / "config/train_federated.yaml").to_dict()["loop"], "max_rounds": 4,
                  "eval_episodes": 64, "eval_horizon": 30},
         "evaluation": {"horizon": 30, "episodes": 8, "seeds": 2}, "nash_gap": {"k_oracle": 10, "episodes": 16}}
SMALL["g_learn"] = {**SMALL["g_learn"], "m": 8, "tol": 1e-2}
OFFLINE, STALE, SYNCED, READY = range(4)
BROADCAST, TRAIN, AGGREGATE = range(3)
IDLE, TRAIN_A, UPLOAD = range(3)


@pytest.fixture(scope="module")
def config():
    return config_from_dict(SMALL)


def test_the_shipped_config_names_the_shipped_game():
    config = load_train_config(ROOT / "config/train_federated.yaml")
    assert config.game == "federated" and config.k == 50 and config.n_agents == 1000
    assert read_game_file(ROOT / "config/games/federated.yaml").n_agents == 1000


def test_federated_trains_and_reports_its_certificate_and_gaps(config):
    rows = {r.metric: r for r in run_one(config, k=3, seed=0, with_gap=True)}
    gaps = ("gap_l_unilateral", "gap_l_shared", "gap_g_restricted", "gap_g_full")
    assert {"reward", "fixed_point", "rounds", "nash_gap_lower_bound", *gaps} <= set(rows)
    assert rows["fixed_point"].value in (0.0, 1.0) and 1 <= rows["rounds"].value <= 4
    assert all(np.isfinite(rows[m].value) and np.isfinite(rows[m].stderr) for m in ("reward", *gaps))
    bound = nash_gap_lower_bound({m: Estimate(rows[m].value, rows[m].stderr, 1)
                                  for m in ("gap_g_restricted", "gap_l_unilateral")})
    assert rows["nash_gap_lower_bound"].value == bound.value >= 0.0  # a lower confidence bound (issue 15)
    assert rows["gap_g_restricted_candidates"].value >= 1 and rows["stop_flagged"].value in (0.0, 1.0)


def test_the_loop_certifies_and_its_clients_upload_when_it_pays(config):
    """The chosen pair is a fixed point of the learners whose clients are an L-LEARN response (a start or an
    accepted proposal): ready clients upload in aggregation rounds (the file's only reward). Which
    equilibrium it reaches (clients that train, or the "nobody works" one) depends on the budgets."""
    trained = train_policies(config, k=5, seed=0)
    assert trained.alternation.fixed_point
    assert trained.pi_l.probs[AGGREGATE, READY, UPLOAD] == 1.0
    assert trained.game.fingerprint == make_game("federated").fingerprint


@pytest.mark.parametrize("server", [BROADCAST, TRAIN, AGGREGATE])
def test_client_best_responses_follow_the_rewards(server):
    """Whatever the server does, a best-responding client uploads when ready during an aggregation (the
    only reward) and never trains a stale model (it costs and cannot pay off)."""
    game = make_game("federated")
    pi_g = TabularGlobalPolicy.constant(server, n_global_states=3, n_local_states=4, n_global_actions=3, k=4)
    pi_l = l_learn(game, pi_g, TabularLocalPolicy.uniform(3, 4, 3)).pi_l.probs
    assert pi_l[AGGREGATE, READY, UPLOAD] == 1.0
    assert np.all(pi_l[:, STALE, TRAIN_A] == 0.0)


def test_cli_trains_the_federated_game_by_name_and_by_file(tmp_path, config):
    import yaml

    cfg = tmp_path / "small.yaml"
    cfg.write_text(yaml.safe_dump(replace(config, game="warehouse", game_options={}).to_dict()))
    for game in ("federated", ROOT / "config/games/federated.yaml"):
        out = tmp_path / "pol"
        run = subprocess.run([sys.executable, "-m", "altmarl_ros.cli", "train", "--config", cfg, "--game", game,
                              "--n-agents", "60", "--k", "2", "--no-eval", "--out", out],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        art = load_policies(out.with_suffix(".npz"))
        assert art.game.fingerprint == make_game("federated").fingerprint and art.k == 2
        assert art.game.names.local_states == ("offline", "stale", "synced", "ready")
        assert json.loads(out.with_suffix(".json").read_text())["config"]["game"] == str(game)
