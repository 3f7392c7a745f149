"""The pooled dispatcher in the swarm over DDS (issue 15 item 2): the controller node keeps the filter.

A pooled heuristic artifact (`heuristics.save_pooled_heuristic`: hold-or-mode on the filtered estimate rounded
to K counts) runs in `altmarl swarm` (separate processes, model mode, rotating observation). Two checks:
- every zone command the controller published is the pooled policy's decision, replayed offline from the
  controller's own record (its s_g and k-sample counts per step) through the same filter: the node runs the
  filter, not the k-sample table;
- the closed-loop reward passes the z-test against the NumPy evaluation of the same pooled policies
  (test_ros_closed_loop's test, |z| <= 3.29), with enough steps to detect a shift of SHIFT at power 0.8.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from altmarl_ros.marl.artifacts import load_policies

N, K_SAMPLE, K_GRID, STEPS = 20, 3, 9, 1000
Z_ALPHA, Z_POWER, SHIFT = 3.29, 0.84, 0.5  # as test_grid_game


def test_pooled_controller_runs_the_filter_and_matches_numpy(ros_domain, tmp_path):
    pytest.importorskip("rclpy")
    from altmarl_ros.ros.heuristics import save_pooled_heuristic

    policy = save_pooled_heuristic(tmp_path / "pooled", k=K_SAMPLE, K=K_GRID, n_agents=1000)  # n differs: resized
    out = tmp_path / "run"
    run = subprocess.run([sys.executable, "-m", "altmarl_ros.ros.swarm", "--n-robots", str(N), "--k", str(K_SAMPLE),
                          "--steps", str(STEPS), "--mode", "model", "--policy", str(policy), "--robots-per-process",
                          "10", "--seed", "2", "--numpy-episodes", "60", "--out", str(out), "--no-plots"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["steps"] == STEPS and s["dropped_answers"] == 0 and s["controller_dropped"] == 0

    record = json.loads((out / "sim_record.controller.json").read_text())["per_step"]
    assert all(r["missing"] == 0 for r in record)
    pi_g = load_policies(policy).pi_g.for_population(N)
    memory, replayed = pi_g.start(1), []
    for r in record:
        counts = np.array([int(c) for c in r["counts"].split(",")])
        actions, memory = pi_g.decide(memory, np.array([r["s_g"]]), counts[None, :])
        replayed.append(int(actions[0]))
    assert replayed == [r["a_g"] for r in record]
    plain = [int(pi_g.actions[r["s_g"], 0]) for r in record]  # not a constant controller either
    assert replayed != plain

    spread = float(np.hypot(s["numpy_episode_std"], s["numpy_reward_stderr"]))
    assert (Z_ALPHA + Z_POWER) * spread <= SHIFT, f"s = {spread:.3f}: too few steps to detect a shift of {SHIFT}"
    z = (s["closed_loop_reward"] - s["numpy_reward"]) / spread
    assert abs(z) <= Z_ALPHA, (z, s["closed_loop_reward"], s["numpy_reward"], spread)
