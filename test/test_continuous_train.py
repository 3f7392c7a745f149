"""Training with neural policies on the continuous warehouse: one short fixed-seed run, its artifact,
and the configuration's validation."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import yaml

from altmarl_ros.marl.continuous import artifacts as art_io
from altmarl_ros.marl.continuous import compile_cache
from altmarl_ros.marl.continuous.alternate import initial_pair, train
from altmarl_ros.marl.continuous.evaluate import Protocol, evaluate_pair, evaluate_random, train_key
from altmarl_ros.marl.continuous.settings import ConfigError, config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]
K = 5
SHORT = {  # one round of short best responses: small batches keep the compile and run time low
    "k": K, "rounds": 1, "loop_episodes": 30, "starts": ["random"], "grid": 101,
    "g_step": {"iterations": 5, "envs": 16, "minibatches": 2},
    "l_step": {"iterations": 5, "envs": 8, "learners": 8, "minibatches": 2},
}
Z999 = 3.09  # one-sided 99.9 % normal quantile
# The module costs ~50 s of CPU (mostly XLA compilation); on the shared 2-core machine at load 20-30 the
# training fixture took 440 s of wall time, beyond the suite's 300 s per-test limit.
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def trained():
    cfg = config_from_dict(SHORT)
    return cfg, train(cfg, K, seed=0)


def test_short_training_beats_random_and_its_start_by_a_clear_margin(trained):
    """Two one-sided tests at 99.9 % on the authors' protocol (10 seeds x 30 rollouts, horizon 50):
    (1) against uniformly random players, H0: V - V_random <= 10 % of the range of discounted values over
    the horizon (R sum_t gamma^t = 282), independent samples; (2) against the untrained greedy pair the
    training started from, H0: V - V_start <= 2 eta (the UPDATE rule's tolerance), paired episodes."""
    cfg, tr = trained
    env, protocol = cfg.env, Protocol(10, 30, 50)
    res = evaluate_pair(env, tr.ac_g.pi, tr.ac_l.pi, K, protocol)
    rnd = evaluate_random(env, protocol)
    margin = 0.1 * env.reward_range * env.discount_sum(50)
    se = math.hypot(res.stderr, rnd.stderr)
    assert res.mean - rnd.mean - Z999 * se > margin, (res.mean, rnd.mean, se)
    g0, l0 = initial_pair(cfg, K, jax.random.split(jax.random.fold_in(train_key(0), 0))[0], "random")
    start = evaluate_pair(env, g0.pi, l0.pi, K, protocol)
    diff = (res.returns - start.returns).ravel()
    eta = tr.loops[0].eta
    assert diff.mean() - Z999 * diff.std(ddof=1) / math.sqrt(diff.size) > 2 * eta, (res.mean, start.mean)
    record = tr.record()
    rnd1 = record["starts"][0]["rounds"][0]
    assert [c["player"] for c in rnd1["comparisons"]] == ["global", "local"]
    json.dumps(record)  # JSON-ready


def test_steps_after_an_acceptance_run_refine_iterations_and_after_a_rejection_the_full_count():
    """A step continuing from an incumbent trained by an accepted step (or by the l_first pre-training, for
    the robots) runs `refine_iterations`; a step after a rejection runs `iterations`; a round without
    acceptance stops the loop only when both of its steps ran the full count."""
    cfg = config_from_dict({**SHORT, "rounds": 3, "starts": ["l_first"],
                            "g_step": {**SHORT["g_step"], "refine_iterations": 2},
                            "l_step": {**SHORT["l_step"], "refine_iterations": 3}})
    loop = train(cfg, K, seed=1).loops[0]
    accepted = (False, True)  # before round 1: an untrained dispatcher, pre-trained robots
    lengths = []
    for record, curves in zip(loop.history, loop.curves, strict=True):
        lengths.append((len(curves["g_step_returns"]), len(curves["l_step_returns"])))
        assert lengths[-1] == (2 if accepted[0] else 5, 3 if accepted[1] else 5)
        accepted = tuple(c.accepted for c in record.comparisons)
    # seed 1: GL, then short steps both rejected (not a fixed point), then full steps
    assert [r.accepted for r in loop.history][:2] == ["GL", "gl"] and lengths[:3] == [(5, 3), (2, 3), (5, 5)]
    assert loop.fixed_point == (loop.history[-1].accepted == "gl")


def test_training_is_reproducible_from_its_seed(trained):
    cfg, tr = trained
    again = train(cfg, K, seed=0)
    for a, b in zip(jax_leaves(tr.ac_l), jax_leaves(again.ac_l), strict=True):
        np.testing.assert_array_equal(a, b)


def jax_leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_artifact_round_trip_and_refusals(trained, tmp_path):
    cfg, tr = trained
    path = art_io.save(tmp_path / "pair", tr.ac_g, tr.ac_l, env=cfg.env, k=K, record=tr.record())
    art = art_io.load(path)
    assert art.k == K and art.env == cfg.env
    for a, b in zip(jax_leaves((tr.ac_g, tr.ac_l)), jax_leaves((art.ac_g, art.ac_l)), strict=True):
        np.testing.assert_array_equal(a, b)
    one = Protocol(1, 30, 50)
    r1 = evaluate_pair(cfg.env, tr.ac_g.pi, tr.ac_l.pi, K, one).returns
    r2 = evaluate_pair(art.env, art.ac_g.pi, art.ac_l.pi, art.k, one).returns
    np.testing.assert_array_equal(r1, r2)
    header = json.loads(path.with_suffix(".json").read_text())
    assert header["format"] == art_io.FORMAT and header["version"] == art_io.VERSION
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert all(data[name].dtype == np.float32 for name in data.files)
    bad = dict(header, version=99)
    path.with_suffix(".json").write_text(json.dumps(bad))
    with pytest.raises(art_io.ContinuousPolicyError, match="version 99"):
        art_io.load(path)
    path.with_suffix(".json").write_text(json.dumps(dict(header, npz_sha256="0" * 64)))
    with pytest.raises(art_io.ContinuousPolicyError, match="torn pair"):
        art_io.load(path)
    with pytest.raises(art_io.ContinuousPolicyError, match="cannot read"):
        art_io.load(tmp_path / "missing")


def test_shipped_config_loads_and_the_cli_dispatches_on_its_kind():
    from altmarl_ros.marl.continuous.cli import is_continuous
    cfg = load_config(ROOT / "config" / "train_continuous.yaml")
    assert cfg.env.n_agents == 500 and cfg.evaluation == Protocol(10, 30, 50)
    assert is_continuous(ROOT / "config" / "train_continuous.yaml")
    assert not is_continuous(ROOT / "config" / "train_warehouse.yaml")


@pytest.mark.parametrize(("data", "key"), [
    ({"kk": 3}, "kk: unknown key"),
    ({"k": 0}, "k: must lie"),
    ({"k": 501}, "k: must lie"),
    ({"g_step": {"lr": "fast"}}, "g_step.lr: expected float"),
    ({"g_step": {"itrations": 3}}, "g_step.itrations: unknown key"),
    ({"g_step": {"refine_iterations": 0}}, "g_step.refine_iterations"),
    ({"l_step": {"clip": 1.5}}, "l_step.clip"),
    ({"l_step": {"learners": 0}}, "l_step.learners"),
    ({"env": {"sigma_l": -1.0}}, "env.sigma_l"),
    ({"env": {"n_agents": 2.5}}, "env.n_agents: expected int"),
    ({"hidden_l": []}, "hidden_l"),
    ({"rule": {"kind": "revert"}}, "rule.kind"),
    ({"g_step": {"horizon": 40}}, "g_step.horizon"),
    ({"grid": 1}, "grid"),
    ({"evaluation": {"seeds": 0}}, "evaluation"),
    ({"evaluation": "all"}, "evaluation: must be a mapping"),
])
def test_bad_configs_are_rejected_naming_the_key(data, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(data)


def test_bad_config_file_names_the_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("k: [1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml"):
        load_config(p)
    p.write_text("l_step: {lr: -1.0}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: l_step\.lr"):
        load_config(p)


def test_sweep_on_two_worker_processes_gives_the_same_rows(trained):
    """`altmarl sweep --workers 2` (spawned processes, one XLA thread each) writes the rows one process writes.
    At the fixture's k and config, so that this process reuses the programs it compiled for `trained` (each
    spawned worker compiles its own: its single-threaded XLA options are another cache key)."""
    from altmarl_ros.marl.continuous.experiments import sweep_cells

    cfg, _ = trained
    seen: list[tuple[int, int]] = []
    one = sweep_cells(cfg, [K], [0, 1], with_reference=False, gap_seeds=0)
    two = sweep_cells(cfg, [K], [0, 1], with_reference=False, gap_seeds=0, workers=2,
                      on_cell=lambda k, seed, rows: seen.append((k, seed)))
    assert sorted(seen) == [(K, 0), (K, 1)]
    def kept(rows):  # nan stderrs compared as equal
        return [(r.k, r.seed, r.metric, r.value, None if math.isnan(r.stderr) else r.stderr) for r in rows
                if r.metric != "train_seconds"]

    assert kept(one) == kept(two)


def test_persistent_compilation_cache_is_filled_then_used_and_changes_nothing(tmp_path, monkeypatch):
    """`altmarl train` keeps XLA programs and the exported PPO iterations in ALTMARL_JAX_CACHE
    (continuous.compile_cache): the first process fills it, the second (loading them) trains to the same
    weights byte for byte, and so does a third after the exported modules were torn."""
    config = tmp_path / "short.yaml"
    config.write_text(yaml.safe_dump({"kind": "continuous", **SHORT}))
    cache = tmp_path / "jax-cache"

    def train_cli(out: str) -> bytes:
        subprocess.run([sys.executable, "-m", "altmarl_ros.cli", "train", "--config", str(config), "--k", "2",
                        "--seed", "3", "--no-eval", "--out", str(tmp_path / out)],
                       env={**os.environ, "ALTMARL_JAX_CACHE": str(cache)}, check=True, capture_output=True,
                       timeout=900)
        return (tmp_path / f"{out}.npz").read_bytes()

    first = train_cli("first")
    assert any(cache.iterdir()), "the first training left no compiled program in the cache"
    modules = sorted((cache / "exported").glob("*.jaxexport"))
    assert len(modules) == 3, modules  # the G-step's and the L-step's PPO iteration, the in-loop rollouts
    assert train_cli("second") == first
    for module in modules:  # torn modules are exported again, and change nothing either
        module.write_bytes(module.read_bytes()[:100])
    assert train_cli("third") == first
    assert all(m.stat().st_size > 1000 for m in modules)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for choice, expect in (("", tmp_path / "xdg" / "altmarl_ros" / "jax"), ("off", None), (str(cache), cache)):
        monkeypatch.setenv("ALTMARL_JAX_CACHE", choice)
        assert compile_cache.cache_dir() == expect


def test_robot_table_is_the_network_at_the_nearest_grid_point(trained):
    """`robots_of` with a grid: the trained pi_l's greedy actions tabulated once; every robot then acts as the
    exact network would at the nearest grid point of (s_g, s_l) (on grid points: exactly as the network)."""
    from altmarl_ros.marl.continuous.evaluate import robot_actions, robots_of

    cfg, tr = trained
    env, grid = cfg.env, 41
    table = robots_of(env, tr.ac_l.pi, grid)
    assert robots_of(env, tr.ac_l.pi, 0) is tr.ac_l.pi  # grid 0: the network itself
    rng = np.random.default_rng(5)
    s_g = rng.uniform(env.low, env.high, (200, 1)).astype(np.float32)
    s_l = rng.uniform(env.low, env.high, (200, 50)).astype(np.float32)
    points = np.asarray(jax.numpy.linspace(env.low, env.high, grid, dtype=np.float32))  # the table's lattice

    def snap(x: np.ndarray) -> np.ndarray:
        return points[np.clip(np.rint((x - env.low) * (grid - 1) / (env.high - env.low)), 0, grid - 1).astype(int)]

    got = np.asarray(robot_actions(env, table, s_g, s_l))
    want = np.asarray(robot_actions(env, tr.ac_l.pi, snap(s_g), snap(s_l)))
    assert (got == want).mean() > 0.999  # a near-tie of two logits may flip with the batch's float rounding
    assert len(np.unique(got)) > 1  # the trained robots do not all act alike
