"""CLI smoke tests: every subcommand end to end on tiny budgets, in a subprocess, into tmp_path."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = """
game: warehouse
game_options: {r_g: constant}
n_agents: 30
k: 2
ordering: paper
g_learn: {transition: sampled, m: 5, stopping: span, tol: 1.0e-2, max_iter: 500, warm_start: true}
l_learn: {kind: induced}
loop: {rule: two_eta, c: 0.01, max_rounds: 3, eval_episodes: 8, eval_horizon: 15}
evaluation: {horizon: 15, episodes: 6, seeds: 2}
nash_gap: {k_oracle: 6, episodes: 8}
"""


def altmarl(*args, cwd):
    return subprocess.run([sys.executable, "-m", "altmarl_ros.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.mark.parametrize("command", ["train", "evaluate", "sweep", "plot", "swarm"])
def test_help(command, tmp_path):
    out = altmarl(command, "--help", cwd=tmp_path)
    assert out.returncode == 0 and "usage: altmarl" in out.stdout


def test_train_evaluate_sweep_plot(tiny, tmp_path):
    out = altmarl("train", "--config", tiny, "--k", 2, "--out", tmp_path / "pol", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "chosen: constant:0" in out.stdout and "rounds" in out.stderr  # progress bar on stderr
    assert (tmp_path / "pol.npz").is_file() and (tmp_path / "pol.json").is_file()

    out = altmarl("evaluate", "--policy", tmp_path / "pol.npz", "--gaps", "--out", tmp_path / "ev.json",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "ev.json").read_text())
    for name in ("gap_l_unilateral", "gap_l_shared", "gap_g_restricted", "gap_g_full"):
        assert math.isfinite(report[name]) and report[name + "_stderr"] >= 0
    assert report["nash_gap_lower_bound"] >= 0  # a lower confidence bound: no stderr (issue 15)
    assert report["gap_g_restricted_found"] in (0.0, 1.0) and report["gap_g_restricted_candidates"] >= 1

    out = altmarl("sweep", "--config", tiny, "--k", "1,2", "--seeds", 2, "--gap-seeds", 1,
                  "--out", tmp_path / "s.csv", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "s.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {"k", "seed", "metric", "value", "stderr"}
    metrics = {r["metric"] for r in rows}
    assert {"reward", "mode_accuracy", "nash_gap_lower_bound", "gap_l_unilateral", "gap_l_shared", "gap_g_restricted",
            "gap_g_full", "train_seconds", "fixed_point"} <= metrics
    assert {(r["k"], r["seed"]) for r in rows if r["metric"] == "nash_gap_lower_bound"} == {("1", "0"), ("2", "0")}

    out = altmarl("plot", tmp_path / "s.csv", "--out", tmp_path / "plots", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("reward_vs_k", "train_seconds_vs_k", "mode_accuracy_vs_k", "nash_gap_vs_k"):
        assert (tmp_path / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_one_clear_line(tiny, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("m: 5", "m: 0"))
    out = altmarl("train", "--config", bad, cwd=tmp_path)
    assert out.returncode == 2 and "g_learn.m: must be >= 1" in out.stderr and "Traceback" not in out.stderr
    out = altmarl("evaluate", "--policy", tmp_path / "missing.npz", cwd=tmp_path)
    assert out.returncode == 2 and "missing.npz does not exist" in out.stderr
    out = altmarl("sweep", "--config", tiny, "--k", "0,x", "--out", "s.csv", cwd=tmp_path)
    assert out.returncode == 2 and "expected" in out.stderr
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    out = altmarl("plot", tmp_path / "junk.csv", cwd=tmp_path)
    assert out.returncode == 2 and "expected the columns" in out.stderr


def _without_rclpy(tmp_path):
    """An environment in which `import rclpy` fails, as on a machine without ROS 2: a directory first on
    PYTHONPATH whose rclpy package raises ImportError (rclpy's absence simulated, not its behaviour)."""
    import os

    shim = tmp_path / "no_rclpy"
    (shim / "rclpy").mkdir(parents=True)
    (shim / "rclpy" / "__init__.py").write_text("raise ImportError('No module named rclpy (simulated absence)')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(shim), str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def test_swarm_without_rclpy_says_so_in_one_line_before_training(tmp_path):
    env = _without_rclpy(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import rclpy"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert probe.returncode != 0 and "simulated absence" in probe.stderr  # the shim really hides rclpy
    run = subprocess.run([sys.executable, "-m", "altmarl_ros.cli", "swarm", "--n-robots", "6", "--k", "2", "--steps",
                          "5", "--out", str(tmp_path / "run")], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith("altmarl swarm: error: ROS 2 (rclpy) is not importable here")
    assert "training" not in run.stdout and not (tmp_path / "run").exists()  # nothing trained, nothing written
    help_ = subprocess.run([sys.executable, "-m", "altmarl_ros.cli", "swarm", "--help"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and "--n-robots" in help_.stdout  # the options are documented without ROS


def test_an_unknown_start_is_one_clear_line(tiny, tmp_path):
    bad = tmp_path / "bad_start.yaml"
    bad.write_text(TINY.replace("max_rounds: 3,", "max_rounds: 3, starts: [constant:0, sideways],"))
    out = altmarl("train", "--config", bad, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "loop.starts: unknown start 'sideways'; starts are 'constant[:<a_g>]'" in out.stderr


def test_workers_are_for_continuous_sweeps(tiny, tmp_path):
    out = altmarl("sweep", "--config", tiny, "--k", "1", "--workers", 2, "--out", tmp_path / "s.csv", cwd=tmp_path)
    assert out.returncode == 2 and "--workers is for continuous configs" in out.stderr, out.stderr
