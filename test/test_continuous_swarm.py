"""Continuous policies deployed on the swarm over real DDS (issue 17, item 4): `altmarl swarm --policy <continuous
artifact>` on the corridor (config/zones_corridor.yaml).

(1) Model mode, n = 500, k = 20, every node in one process, LONG_STEPS lockstep steps: the closed loop's mean
per-step reward is z-tested against the NumPy reference of the same policies (`continuous.deploy.rollout_rewards`,
60 episodes of the same length), as test_ros_closed_loop does for tabular policies, with enough steps to detect
a shift of SHIFT at power 0.8; and it is far above the random players. (2) Kinematic mode in separate processes
(each node loads the artifact itself), n = 100, 0.5 s of simulated time per step: robots drive along the
corridor by cmd_vel and the loop beats the random players. (3) Physics mode (MuJoCo robots in the warehouse's
walls), n = 30: the loop beats the random players run in the same physics (the summary's one-sided test).
(4) Refusals before anything starts: a zones file that is no corridor, a policy trained for another k.

The policies are the hand-written pair in the trained policies' class (`continuous.handwritten`): this tests the
deployment, not training.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")

ROOT = Path(__file__).resolve().parents[1]
N, K, LONG_STEPS = 500, 20, 600
KIN_N, KIN_STEPS = 100, 100  # 100 steps: the policies' episode sd is 1.0 (2.6 at 30 steps), random's 0.4
Z_ALPHA = 3.29  # two-sided alpha = 0.001
Z_POWER = 0.84  # power 0.8
SHIFT = 1.0  # per-step reward (the policies' ~13, random ~2): the smallest shift the test must detect


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    import jax

    from altmarl_ros.marl.continuous import artifacts
    from altmarl_ros.marl.continuous.handwritten import handwritten_pair
    from altmarl_ros.marl.continuous.warehouse import ContinuousWarehouse

    env = ContinuousWarehouse()
    return artifacts.save(tmp_path_factory.mktemp("policy") / "policy", *handwritten_pair(env, jax.random.key(0)),
                          env=env, k=K, trainer="handwritten")


def swarm(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "altmarl_ros.ros.swarm", "--no-plots", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def model_run(ros_domain, policy, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    result = swarm("--policy", str(policy), "--n-robots", str(N), "--k", str(K), "--steps", str(LONG_STEPS),
                   "--single-process", "--robots-per-process", "250", "--numpy-episodes", "60", "--seed", "4",
                   "--out", str(out))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return json.loads((out / "summary.json").read_text()), json.loads((out / "sim_record.json").read_text())


@pytest.fixture(scope="module")
def kinematic_run(ros_domain, policy, tmp_path_factory):
    out = tmp_path_factory.mktemp("kinematic")
    result = swarm("--policy", str(policy), "--n-robots", str(KIN_N), "--k", str(K), "--steps", str(KIN_STEPS),
                   "--mode", "kinematic", "--step-period", "0.5", "--robots-per-process", "50",
                   "--numpy-episodes", "40", "--seed", "2", "--out", str(out))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return json.loads((out / "summary.json").read_text())


def test_model_reward_matches_numpy(model_run):
    """z-test of H0 "the ROS loop is the process the NumPy twin simulates" (see test_ros_closed_loop)."""
    s, _ = model_run
    assert s["steps"] == LONG_STEPS and s["dropped_answers"] == 0 and s["controller_dropped"] == 0
    assert s["bad_answers"] == 0 and s["numpy_comparable"]
    spread = float(np.hypot(s["numpy_episode_std"], s["numpy_reward_stderr"]))
    assert (Z_ALPHA + Z_POWER) * spread <= SHIFT, f"s = {spread:.3f}: too few steps to detect a shift of {SHIFT}"
    z = (s["closed_loop_reward"] - s["numpy_reward"]) / spread
    assert abs(z) <= Z_ALPHA, (z, s["closed_loop_reward"], s["numpy_reward"], spread)


def test_model_reward_clearly_above_random(model_run):
    s, _ = model_run
    spread = float(np.hypot(s["numpy_episode_std"], s["random_policy_reward_stderr"]))
    assert s["closed_loop_reward"] - s["random_policy_reward"] > Z_ALPHA * spread, s


def test_the_run_records_the_continuous_game(model_run):
    """The summary names the game; each step's row has s_g's value and its code on the tick; the controller read
    at most 2k pose topics at any time (rotating samples)."""
    s, record = model_run
    assert s["game"]["name"] == "continuous_warehouse" and s["game"]["options"]["n_agents"] == 500
    rows = record["per_step"]
    values = np.array([r["s_g_value"] for r in rows])
    codes = np.array([r["s_g"] for r in rows])
    assert np.all((values >= -2) & (values <= 2)) and values.std() > 0
    np.testing.assert_allclose(-2 + codes * 1e-6, values, atol=1e-6)
    assert set(int(r["a_g"]) for r in rows) <= set(range(5))
    assert 0 < s["max_pose_subscriptions"] <= 2 * K


def test_kinematic_robots_drive_and_beat_random(kinematic_run):
    """Robots drive along the corridor (cmd_vel, separate processes): the loop earns more than the random
    players (one-sided, 3.29 spreads), and no answer was lost."""
    s = kinematic_run
    assert s["steps"] == KIN_STEPS and s["dropped_answers"] == 0 and s["bad_answers"] == 0
    assert not s["numpy_comparable"]
    spread = float(np.hypot(s["numpy_episode_std"], s["random_policy_reward_stderr"]))
    assert s["closed_loop_reward"] - s["random_policy_reward"] > Z_ALPHA * spread, s


def test_physics_robots_beat_random_in_the_same_physics(ros_domain, policy, tmp_path):
    """MuJoCo robots on the corridor: the loop's reward beats the random players' in the same physics by the
    summary's conservative one-sided 1 % test (z > 2.82, batch-means stderrs); every answer arrived."""
    pytest.importorskip("mujoco", reason="mode physics needs MuJoCo")
    result = swarm("--policy", str(policy), "--n-robots", "30", "--k", str(K), "--steps", "30", "--mode", "physics",
                   "--robots-per-process", "15", "--numpy-episodes", "20", "--physics-baseline-episodes", "2",
                   "--seed", "1", "--out", str(tmp_path))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["steps"] == 30 and s["dropped_answers"] == 0 and s["bad_answers"] == 0
    assert s["physics_fidelity"] == "planar" and s["max_overlap_m"] < 0.05 and 0 <= s["spawn_displacement_m"] < 1
    assert s["physics_vs_random_z"] > 2.82, s


@pytest.mark.parametrize("extra, message", [
    (["--zones", str(ROOT / "config/zones.yaml")], "corridor zones file"),
    (["--k", "5"], "trained for k = 20"),
])
def test_refusals_name_the_problem(ros_domain, policy, tmp_path, extra, message):
    args = ["--policy", str(policy), "--n-robots", "50", "--k", str(K), "--steps", "5", "--out", str(tmp_path)]
    result = swarm(*args, *extra, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
