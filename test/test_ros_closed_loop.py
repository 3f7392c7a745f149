"""Closed loop over real DDS: `altmarl swarm`, model mode, lockstep.

Two runs. (1) Separate processes, n=50, k=5, 400 steps of at least 20 ms: while the swarm runs, the test
watches the ROS graph and counts the controller's pose subscriptions; afterwards it checks the summary,
drops and latencies. The run lasts well over Fast DDS's 3 s participant announcement period: the probe
sometimes misses a new node's first announcements (with either transport) and then sees the node only at
its next one, about 3 s after it started. (2) Every node in one process (same nodes, same DDS traffic,
fewer scheduler hops: it runs several times faster on a loaded machine), n=20, k=5, LONG_STEPS steps: a
statistical test of the closed-loop reward against the NumPy simulator on the same policies, with enough
steps to detect a shift of 0.3 in the mean reward, plus the random-policy loop and the uniformity of the
controller's k-subsets.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

N, K, STEPS = 50, 5, 400
LONG_N, LONG_STEPS = 20, 4500
Z_ALPHA = 3.29  # two-sided alpha = 0.001
Z_POWER = 0.84  # power 0.8
SHIFT = 0.3  # the smallest shift of the mean per-step reward the test must detect


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    from altmarl_ros.ros.heuristics import save_heuristic

    return save_heuristic(tmp_path_factory.mktemp("policy") / "policy.npz", k=K)


@pytest.fixture(scope="module")
def closed_loop(ros_domain, policy, tmp_path_factory):
    """Run the swarm once; record the controller's pose subscriptions seen in the graph meanwhile."""
    from altmarl_ros.ros.testing import probe

    out = tmp_path_factory.mktemp("swarm")
    cmd = [sys.executable, "-m", "altmarl_ros.ros.swarm", "--n-robots", str(N), "--k", str(K), "--steps",
           str(STEPS), "--policy", str(policy), "--out", str(out), "--robots-per-process", "25", "--seed", "3",
           "--numpy-episodes", "20",
           "--step-period", "0.02"]  # >= 20 ms a step, so that the graph probe sees the rotating subscriptions
    topics = [f"/robot_{i}/pose" for i in range(N)]
    graph_counts: list[int] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with probe() as p:
            end = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < end:
                count = sum(1 for t in topics for info in p.node.get_subscriptions_info_by_topic(t)
                            if info.node_name == "altmarl_controller")
                graph_counts.append(count)
                p.spin(0.05)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            import os
            import signal
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    summary_file = out / "summary.json"
    assert proc.returncode == 0, output.decode(errors="replace")[-3000:]
    return json.loads(summary_file.read_text()), graph_counts, out


def test_summary_is_complete(closed_loop):
    summary, _, out = closed_loop
    for key in ("steps", "n_robots", "k", "closed_loop_reward", "closed_loop_reward_stderr", "numpy_reward",
                "numpy_reward_stderr", "random_policy_reward", "dropped_answers", "steps_per_second",
                "controller_latency_ms_p50", "controller_latency_ms_p95", "per_step"):
        assert key in summary, key
    assert summary["steps"] == STEPS and len(summary["per_step"]) == STEPS
    assert (summary["n_robots"], summary["k"]) == (N, K)
    assert summary["dropped_answers"] == 0 and summary["controller_dropped"] == 0
    assert summary["node_failures"] == []
    for png in summary["plots"]:
        assert (out / png).stat().st_size > 1000
    assert not list(out.glob(".*.tmp")), "temporary files left behind"


@pytest.fixture(scope="module")
def long_run(ros_domain, policy, tmp_path_factory):
    """LONG_STEPS lockstep steps with every node in one process; NumPy reference on 60 episodes."""
    out = tmp_path_factory.mktemp("long")
    cmd = [sys.executable, "-m", "altmarl_ros.ros.swarm", "--n-robots", str(LONG_N), "--k", str(K), "--steps",
           str(LONG_STEPS), "--policy", str(policy), "--out", str(out), "--robots-per-process", "10", "--seed", "5",
           "--numpy-episodes", "60", "--single-process", "--no-plots"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return json.loads((out / "summary.json").read_text())


def test_reward_matches_numpy(long_run):
    """z-test of H0 "the ROS loop is the process altmarl_ros.marl.sim simulates".

    Under H0 the closed loop's mean per-step reward over one T-step trajectory from reset has the
    distribution of the NumPy episodes' means of the same T, n, k and policies: mean mu, standard
    deviation sigma (the stderr of one trajectory's mean; it includes the autocorrelation of the
    rewards). With s = sqrt(sigma^2 + stderr(mu)^2), H0 is rejected when |closed - mu| > 3.29 s
    (two-sided alpha = 0.001, the mean of thousands of steps being close to normal). The run is
    long enough that this test detects a shift of SHIFT with power >= 0.8, which is asserted first.
    """
    s = long_run
    assert s["steps"] == LONG_STEPS and s["dropped_answers"] == 0 and s["controller_dropped"] == 0
    spread = float(np.hypot(s["numpy_episode_std"], s["numpy_reward_stderr"]))
    assert (Z_ALPHA + Z_POWER) * spread <= SHIFT, f"s = {spread:.3f}: too few steps to detect a shift of {SHIFT}"
    z = (s["closed_loop_reward"] - s["numpy_reward"]) / spread
    assert abs(z) <= Z_ALPHA, (z, s["closed_loop_reward"], s["numpy_reward"], spread)


def test_reward_clearly_above_random(long_run):
    """The random-policy loop is more than SHIFT below the policies in NumPy, and the closed loop is
    above the random loop by more than 3.29 s (the same test, one-sided, against the random value)."""
    s = long_run
    spread = float(np.hypot(s["numpy_episode_std"], s["random_policy_reward_stderr"]))
    assert s["numpy_reward"] - s["random_policy_reward"] > SHIFT, s
    assert s["closed_loop_reward"] - s["random_policy_reward"] > Z_ALPHA * spread, s


def test_controller_holds_at_most_2k_pose_subscriptions(closed_loop):
    """The controller's own count is exact; the graph probe's is seen through discovery, which may announce a
    rotation's new subscriptions before the removal of the old ones (seen once: 12 for 2k = 10). So the probe
    must see at most 2k in nearly every look and never anything near a subscription to every robot."""
    summary, graph_counts, _ = closed_loop
    counts = np.asarray(graph_counts)
    assert counts.size > 20
    assert np.mean(counts > 2 * K) <= 0.05, np.bincount(counts)
    assert counts.max() < 4 * K < N, np.bincount(counts)  # a lag of one rotation shows as up to 3k
    assert counts.max() >= K  # it does subscribe (the probe saw it)
    assert summary["max_pose_subscriptions"] <= 2 * K


def test_samples_are_uniform(long_run):
    """Chi-square goodness of fit of how often each robot was sampled (k distinct robots per step)."""
    from scipy.stats import chisquare

    rows = long_run["per_step"]
    samples = [list(map(int, r["sample"].split(","))) for r in rows if r["sample"]]
    assert len(samples) >= LONG_STEPS - 2
    assert all(len(set(s)) == K for s in samples)
    hits = np.bincount(np.concatenate(samples), minlength=LONG_N)
    assert hits.size == LONG_N
    p_value = chisquare(hits).pvalue
    assert p_value > 1e-3, (p_value, hits)


def test_controller_latency_reported(closed_loop):
    s = closed_loop[0]
    assert 0 <= s["controller_latency_ms_p50"] <= s["controller_latency_ms_p95"] < 1000
    assert s["missing_poses"] == 0
