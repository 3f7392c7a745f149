"""`altmarl swarm`'s run summary without ROS: the report from the nodes' records, and summary.json's type.

The keys below are what tests, benchmarks (bench/ros_closed_loop.py, ros_soak.py, physics_closed_loop.py)
and users read from DIR/summary.json; they are the file's contract.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

import numpy as np
import pytest

from altmarl_ros.ros import swarm
from altmarl_ros.ros.swarm_report import summarize
from altmarl_ros.ros.swarm_runner import RunOutcome, swarm_options
from altmarl_ros.ros.swarm_summary import PHYSICS_KEYS, PhysicsReport, SwarmSummary

KEYS = {
    "steps", "steps_requested", "n_robots", "k", "mode", "observation", "lockstep", "single_process",
    "robots_per_process", "seed", "policy", "game", "dds_profile", "ros_domain_id", "ros_domain_source",
    "ros_discovery_range", "closed_loop_reward", "closed_loop_reward_stderr",
    "numpy_reward", "numpy_reward_stderr", "numpy_episode_std", "numpy_episodes", "numpy_comparable", "agreement_z",
    "random_policy_reward", "random_policy_reward_stderr", "dropped_answers", "controller_dropped", "bad_answers",
    "late_answers", "duplicate_answers", "steps_per_second", "controller_latency_ms_p50",
    "controller_latency_ms_p95", "controller_latency_ms_max", "controller_rtt_ms_p50", "controller_rtt_ms_p95",
    "step_seconds_p50", "step_seconds_p95", "missing_poses", "stale_poses", "lost_robots", "silent_at_end",
    "tolerate_lost_robots", "max_pose_subscriptions", "node_failures", "respawns", "interrupted", "stalled",
    "wall_seconds", "bag", "per_step",
}
PHYSICS_EXTRA = {"decision_period_s", "control_rate_hz", "random_policy_reward_physics",
                 "random_policy_reward_physics_stderr", "random_policy_physics_episodes", "physics_vs_random_z"}
STEPS = 6


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory as the nodes leave it: sim_record.json and the controller's record, the policy."""
    from altmarl_ros.ros.heuristics import save_heuristic

    out = tmp_path_factory.mktemp("run")
    policy = save_heuristic(out / "policy.npz", k=2)
    rows = [{"step": t, "s_g": 0, "a_g": 0, "reward": 1.0 + 0.1 * t, "r_g": 1.0, "r_l_mean": 0.1 * t,
             "dropped_robots": int(t == 2), "controller_dropped": int(t == 3), "bad_answers": 0,
             "late_answers": int(t == 3), "duplicate_answers": 0, "live_robots": 4,
             "step_seconds": 0.01 * (t + 1), "controller_rtt_ms": 2.0 * t} for t in range(STEPS)]
    record = {"n_robots": 4, "steps": STEPS, "late_answers": 3, "bad_answers": 0, "duplicate_answers": 1,
              "steps_per_second": 12.5, "lost_robots": {}, "silent_at_end": {"/robots_0": ["robot_3"]},
              "per_step": rows}
    (out / "sim_record.json").write_text(json.dumps(record))
    controller = [{"step": t, "latency_ms": 1.0 + t, "missing": int(t == 1), "stale": 0, "sample": "0,1",
                   "max_pose_subscriptions": 4} for t in range(STEPS - 1)]  # the last step's row is missing
    (out / "sim_record.controller.json").write_text(json.dumps({"per_step": controller}))
    return out, policy


def _args(out, policy, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    swarm.add_arguments(parser)
    return parser.parse_args(["--out", str(out), "--policy", str(policy), "--n-robots", "4", "--k", "2", "--steps",
                              str(STEPS), "--numpy-episodes", "12", *extra])


def _summary(run_dir) -> SwarmSummary:
    from altmarl_ros.marl.artifacts import load_policies

    out, policy = run_dir
    args = _args(out, policy)
    outcome = RunOutcome(failures=["robot host died"], wall_seconds=3.0)
    return summarize(args, swarm_options(args, policy, out), policy, load_policies(policy), out, outcome)


def test_the_report_joins_the_records_into_the_summary_keys(run_dir):
    summary = _summary(run_dir)
    data = summary.to_dict()
    assert set(data) == KEYS
    assert data["steps"] == STEPS and data["dropped_answers"] == 1 and data["controller_dropped"] == 1
    assert (data["late_answers"], data["duplicate_answers"]) == (3, 1)  # the simulator's totals win
    assert data["steps_per_second"] == 12.5 and data["silent_at_end"] == {"/robots_0": ["robot_3"]}
    assert data["missing_poses"] == 1 and data["max_pose_subscriptions"] == 4
    assert data["controller_latency_ms_max"] == 5.0 and data["controller_latency_ms_p50"] == 3.0
    assert math.isnan(data["per_step"][-1]["controller_latency_ms"]) and data["per_step"][-1]["missing_poses"] == -1
    assert data["closed_loop_reward"] == pytest.approx(np.mean([1.0 + 0.1 * t for t in range(STEPS)]))
    assert data["numpy_episodes"] == 12 and data["numpy_comparable"] and data["node_failures"] == ["robot host died"]


def test_to_json_and_from_json_round_trip_with_nan_and_plots(run_dir):
    summary = _summary(run_dir)
    text = summary.to_json()
    assert "NaN" in text  # the last step has no controller latency
    again = SwarmSummary.from_json(text)
    assert again.to_json() == text and again.physics is None and again.plots is None
    assert isinstance(again.outcome.node_failures, tuple) and isinstance(again.per_step, tuple)
    plotted = dataclasses.replace(summary, plots=("reward.png", "latency.png"))
    data = json.loads(plotted.to_json())
    assert set(data) == KEYS | {"plots"} and list(data)[-1] == "plots"
    assert SwarmSummary.from_json(plotted.to_json()).plots == ("reward.png", "latency.png")


def test_a_physics_summary_keeps_the_simulators_report_keys(run_dir):
    simulator = {key: float(i) for i, key in enumerate(PHYSICS_KEYS)}
    physics = PhysicsReport(simulator, 5.2, 10.0, 1.5, 0.1, 1, 3.0)
    summary = dataclasses.replace(_summary(run_dir), physics=physics)
    data = json.loads(summary.to_json())
    assert set(data) == KEYS | set(PHYSICS_KEYS) | PHYSICS_EXTRA
    again = SwarmSummary.from_json(summary.to_json())
    assert again.physics == physics and again.to_json() == summary.to_json()


def test_write_replaces_the_file_atomically(run_dir, tmp_path):
    summary = _summary(run_dir)
    path = tmp_path / "summary.json"
    path.write_text("{half")
    summary.write(path)
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left
    assert SwarmSummary.read(path).to_json() == summary.to_json()
