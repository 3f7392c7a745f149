"""Continuous policies as the ROS nodes run them (issue 17, item 4), without ROS: the NumPy networks and
dynamics against the JAX ones, the tick's s_g code, the corridor frame and the artifact refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from altmarl_ros.errors import InputError
from altmarl_ros.marl.continuous import artifacts, deploy
from altmarl_ros.marl.continuous import env as wh
from altmarl_ros.marl.continuous.evaluate import evaluate_pair
from altmarl_ros.marl.continuous.handwritten import handwritten_pair
from altmarl_ros.marl.continuous.nets import features_g, features_l, greedy, init_actor_critic
from altmarl_ros.marl.continuous.warehouse import N_FEATURES_L, n_features_g
from altmarl_ros.ros.corridor import CorridorFrame, corridor_drive
from altmarl_ros.zones import load_zones

ROOT = Path(__file__).resolve().parents[1]
ENV = wh.ContinuousWarehouse()
Z = 3.29  # two-sided 99.9 %


@pytest.fixture(scope="module")
def pair():
    return handwritten_pair(ENV, jax.random.key(0))


@pytest.fixture(scope="module")
def saved(pair, tmp_path_factory):
    return artifacts.save(tmp_path_factory.mktemp("policy") / "policy", *pair, env=ENV, k=20, trainer="test")


def _deployed(ac_g, ac_l, where: Path) -> deploy.Deployed:
    """Saved by the training side (JAX), loaded by the nodes' side (NumPy)."""
    return deploy.load_deployed(artifacts.save(where / "policy", ac_g, ac_l, env=ENV, k=20))


def _sharpened(ac, scale: float = 100.0):
    """Random weights with large logits (an untrained network has near-ties everywhere)."""
    return ac._replace(pi=jax.tree_util.tree_map(lambda w: scale * w, ac.pi))


def test_numpy_networks_act_as_the_jax_ones(pair, tmp_path):
    """Greedy actions of the NumPy networks equal JAX's, for the hand-written pair and for random weights; the
    hand-written pair implements its rules exactly."""
    rng = np.random.default_rng(0)
    s_g, s_l = rng.uniform(-2, 2, (2, 2000)).astype(np.float32)
    hist = rng.dirichlet(np.ones(ENV.n_bins), 2000).astype(np.float32)
    random_pair = (_sharpened(init_actor_critic(jax.random.key(1), n_features_g(ENV), ENV.n_ga, (64, 64))),
                   _sharpened(init_actor_critic(jax.random.key(2), N_FEATURES_L, ENV.n_al, (64, 64))))
    for i, (ac_g, ac_l) in enumerate((pair, random_pair)):
        (tmp_path / str(i)).mkdir()
        policy = _deployed(ac_g, ac_l, tmp_path / str(i))
        a_g = np.asarray(greedy(ac_g.pi, features_g(ENV, jnp.asarray(s_g), jnp.asarray(hist))))
        a_l = np.asarray(greedy(ac_l.pi, features_l(ENV, jnp.asarray(s_g), jnp.asarray(s_l))))
        assert np.mean(policy.dispatch(s_g, hist) == a_g) >= 0.999
        assert np.mean(policy.local_actions(s_g, s_l) == a_l) >= 0.999
        assert len(set(a_g.tolist())) > 1 and len(set(a_l.tolist())) > 1  # not a constant policy
    policy = _deployed(*pair, tmp_path / "0")
    assert np.array_equal(policy.dispatch(s_g, hist), hist.argmax(1))
    d = s_g - s_l
    clear = np.abs(np.abs(d) - 0.05) > 1e-3
    expect = np.where(d > 0.05, 1, np.where(d < -0.05, 2, 0))
    assert np.array_equal(policy.local_actions(s_g, s_l)[clear], expect[clear])


def test_numpy_step_is_the_jax_step():
    """Same states and actions: equal rewards; next states with the environment's means and spreads."""
    rng = np.random.default_rng(1)
    B = 4000
    s_g = np.full(B, 0.3)
    s_l = np.tile(rng.uniform(-1.9, 1.9, 50), (B, 1))
    a_g = np.full(B, 3)
    a_l = np.tile(rng.integers(0, 3, 50), (B, 1))
    out = deploy.step(ENV, rng, s_g, s_l, a_g, a_l)
    ref = wh.step(ENV, wh.EnvState(jnp.asarray(s_g, jnp.float32), jnp.asarray(s_l, jnp.float32),
                                   jnp.zeros(B, jnp.int32)), jnp.asarray(a_g), jnp.asarray(a_l), jax.random.key(0))
    np.testing.assert_allclose(out.reward, np.asarray(ref.reward), rtol=1e-5)
    mean_g = 0.3 + ENV.steer * (0.8 - 0.3)
    assert abs(out.s_g.mean() - mean_g) < Z * ENV.sigma_g / np.sqrt(B)
    assert abs(out.s_g.std() / ENV.sigma_g - 1) < 0.05
    expect_l = s_l[0] + np.asarray(ENV.offsets)[a_l[0]]
    assert np.all(np.abs(out.s_l.mean(0) - expect_l) < Z * ENV.sigma_l / np.sqrt(B) + 1e-9)


def test_numpy_rollouts_match_the_protocol_returns(pair, tmp_path):
    """The NumPy twin of the rollouts (what the closed loop is compared with) agrees with the JAX evaluation on
    the authors' protocol: discounted returns of the hand-written pair, k = 20, 300 rollouts each, z-test."""
    jax_result = evaluate_pair(ENV, pair[0].pi, pair[1].pi, 20)
    policy = _deployed(*pair, tmp_path)
    rewards = deploy.rollout_rewards(policy, ENV, np.random.default_rng(2), k=20, steps=50, episodes=300)
    returns = rewards @ ENV.gamma ** np.arange(50)
    se = np.hypot(jax_result.stderr, returns.std(ddof=1) / np.sqrt(returns.size))
    assert abs(returns.mean() - jax_result.mean) < Z * se, (returns.mean(), jax_result.mean, se)
    random = deploy.rollout_rewards(None, ENV, np.random.default_rng(3), k=20, steps=50, episodes=600)
    random_returns = random @ ENV.gamma ** np.arange(50)
    se = np.hypot(random_returns.std(ddof=1) / np.sqrt(600), 10.9 / np.sqrt(300))  # theirs: 37.8, sd 10.9 of 300
    assert abs(random_returns.mean() - 37.8) < Z * se, random_returns.mean()


def test_s_g_code_round_trip():
    s = np.random.default_rng(4).uniform(ENV.low, ENV.high, 1000)
    codes = np.array([deploy.encode_s_g(ENV, v) for v in s])
    assert codes.min() >= 0 and codes.max() < deploy.n_codes(ENV) < 2**31  # fits the tick and /swarm/global_state
    assert np.abs(deploy.decode_s_g(ENV, codes) - s).max() <= deploy.S_G_RESOLUTION / 2 + 1e-12
    assert deploy.encode_s_g(ENV, ENV.low - 1) == 0 and deploy.encode_s_g(ENV, ENV.high + 1) == deploy.n_codes(ENV) - 1


def test_corridor_zones_are_the_histogram_bins():
    zones = load_zones(ROOT / "config/zones_corridor.yaml")
    frame = CorridorFrame.of(zones, ENV)
    s = np.random.default_rng(5).uniform(ENV.low, ENV.high, 5000)
    xy = np.stack([frame.x_of(s), frame.lanes(np.random.default_rng(6), s.size)], -1)
    assert np.array_equal(zones.zone_of(xy), deploy.bins(ENV, s))
    np.testing.assert_allclose(frame.s_of(frame.x_of(s)), s, atol=1e-12)
    np.testing.assert_allclose(frame.x_of(ENV.targets), zones.centres[:, 0], atol=1e-6)
    np.testing.assert_allclose(frame.target_x(frame.x_of(np.array([0.0, 0.0, 0.0, 2.0])), np.array([0, 1, 2, 1])),
                               frame.x_of(np.array([0.0, 0.05, -0.05, 2.0])), atol=1e-9)  # clipped at the end
    with pytest.raises(InputError, match="corridor zones file"):
        CorridorFrame.of(load_zones(ROOT / "config/zones.yaml"), ENV)


def test_corridor_drive_moves_along_the_axis():
    xy = np.zeros((3, 2))
    cmd = corridor_drive(xy, np.zeros(3), np.array([0.5, -0.5, 0.01]), max_speed=0.8, max_turn=2.0, tolerance=0.02)
    assert cmd[0, 0] > 0 and cmd[1, 0] < 0 and cmd[2, 0] == 0  # forward, backward, arrived
    assert np.all(cmd[:, 1] == 0)
    turned = corridor_drive(xy[:1], np.array([0.3]), np.array([1.0]), max_speed=0.8, max_turn=2.0, tolerance=0.02)
    assert turned[0, 1] < 0  # heading error corrected towards +x


def test_bad_artifacts_are_refused_naming_the_problem(saved, tmp_path):
    json_path = saved.with_suffix(".json")
    assert deploy.is_continuous_artifact(saved) and deploy.is_continuous_artifact(json_path)
    assert not deploy.is_continuous_artifact(ROOT / "policies/default.npz")
    with pytest.raises(deploy.ContinuousPolicyError, match="trained for k = 20"):
        deploy.load_deployed(saved, expect_k=5)

    def variant(edit_header=None, edit_arrays=None) -> Path:
        header = json.loads(json_path.read_text())
        with np.load(saved) as data:
            arrays = dict(data)
        if edit_arrays:
            edit_arrays(arrays)
        stem = tmp_path / f"v{len(list(tmp_path.iterdir()))}"
        np.savez(stem.with_suffix(".npz"), **arrays)
        header["npz_sha256"] = hashlib.sha256(stem.with_suffix(".npz").read_bytes()).hexdigest()
        if edit_header:
            edit_header(header)
        stem.with_suffix(".json").write_text(json.dumps(header))
        return stem.with_suffix(".npz")

    cases = [
        (variant(edit_arrays=lambda a: a.pop("l/pi/1/w")), "missing array 'l/pi/1/w'"),
        (variant(edit_arrays=lambda a: a.update({"g/pi/0/w": np.zeros((6, 3))})), r"'g/pi/0/w' has shape \(6, 3\)"),
        (variant(edit_header=lambda h: h.update(hidden_l=[64, 64])), "has shape"),
        (variant(edit_header=lambda h: h.update(version=99)), "version 99"),
        (variant(edit_header=lambda h: h.update(version=1)), "version 1 .*other input features: retrain"),
        (variant(edit_header=lambda h: h.update(k=0)), "k = 0 outside"),
        (variant(edit_header=lambda h: h.update(npz_sha256="0" * 64)), "torn pair"),
        (variant(edit_header=lambda h: h["env"].update(steer=2.0)), "env.steer"),
    ]
    for path, message in cases:
        with pytest.raises(deploy.ContinuousPolicyError, match=message):
            deploy.load_deployed(path)
