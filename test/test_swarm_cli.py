"""`altmarl swarm` smoke tests: arguments, --help without ROS, single process with the aggregate observation, bag,
default policy."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from altmarl_ros import cli
from altmarl_ros.ros import swarm

ROOT = Path(__file__).resolve().parents[1]


def test_arguments_parse_with_documented_defaults():
    parser = argparse.ArgumentParser()
    swarm.add_arguments(parser)
    args = parser.parse_args(["--out", "d"])
    assert (args.n_robots, args.k, args.steps, args.mode, args.observation) == (50, 5, 200, "model", "rotating")
    assert args.dds_transport == "udp"
    args = parser.parse_args(["--n-robots", "9", "--k", "2", "--steps", "3", "--mode", "kinematic", "--policy",
                              "p.npz", "--out", "d", "--single-process", "--observation", "aggregate", "--seed",
                              "4", "--bag"])
    assert args.single_process and args.bag and args.observation == "aggregate" and args.seed == 4
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "d", "--observation", "psychic"])


def _without_rclpy(tmp_path: Path) -> dict[str, str]:
    """An environment in which `import rclpy` fails as on a machine without ROS: a directory ahead of
    everything else on PYTHONPATH holds an `rclpy` package whose import raises ModuleNotFoundError (the
    ImportError Python raises for a module that is not installed)."""
    shim = tmp_path / "no_ros"
    (shim / "rclpy").mkdir(parents=True)
    (shim / "rclpy" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'rclpy' (no ROS here)\", name='rclpy')\n")
    path = [str(shim), str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def test_help_runs_without_ros(tmp_path):
    """`altmarl swarm --help` (and the module's own --help) on a Python where rclpy cannot be imported."""
    env = _without_rclpy(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import rclpy"], capture_output=True, text=True, timeout=60,
                           env=env, cwd=tmp_path)
    assert probe.returncode != 0 and "no ROS here" in probe.stderr, probe.stderr  # rclpy is really absent
    for command in (["-m", "altmarl_ros.cli", "swarm", "--help"], ["-m", "altmarl_ros.ros.swarm", "--help"]):
        result = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=60, env=env,
                                cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "--single-process" in result.stdout and "--n-robots" in result.stdout


def test_help_describes_the_udp_profile_as_every_interface(capsys):
    """The udp profile (altmarl_ros/ros/dds.py) is UDPv4 on every interface, not loopback only."""
    with pytest.raises(SystemExit) as exit_:
        swarm.main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "UDPv4 on every interface" in text and "loopback" not in text


def test_single_process_aggregate_with_bag(ros_domain, tmp_path):
    """No --policy: one is trained (or, without the training library, the heuristic is used) and saved."""
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "altmarl_ros.ros.swarm", "--n-robots", "12", "--k", "3",
                             "--steps", "40", "--single-process", "--observation", "aggregate", "--bag",
                             "--out", str(out), "--numpy-episodes", "50"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["single_process"] and summary["observation"] == "aggregate"
    assert summary["dropped_answers"] == 0 and summary["missing_poses"] == 0
    assert (out / "policy.npz").is_file() and (out / "policy.json").is_file()
    assert (out / "bag" / "metadata.yaml").is_file()
    assert "closed-loop reward" in result.stdout


def test_lead_cli_exposes_swarm(capsys):
    """The package's `altmarl` CLI has the swarm command with the module's own arguments."""
    parser = cli.build_parser()
    args = parser.parse_args(["swarm", "--out", "d", "--n-robots", "7"])
    assert args.func is cli._run_swarm and args.n_robots == 7 and args.k == 5
    with pytest.raises(SystemExit):
        parser.parse_args(["swarm", "--help"])
    assert "--n-robots" in capsys.readouterr().out


def test_polling_observation_reads_poses_without_subscriptions(ros_domain, tmp_path):
    """observation polling: the controller names its sample on /swarm/poll and the robot hosts answer with the
    sampled poses; no pose subscription, no missing or stale sampled pose, every answer in its step."""
    from altmarl_ros.ros.heuristics import save_heuristic

    policy = save_heuristic(tmp_path / "policy.npz", k=3)
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "altmarl_ros.ros.swarm", "--n-robots", "12", "--k", "3",
                             "--steps", "40", "--observation", "polling", "--robots-per-process", "5", "--policy",
                             str(policy), "--out", str(out), "--numpy-episodes", "20", "--no-plots"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["observation"] == "polling"
    assert summary["max_pose_subscriptions"] == 0
    assert (summary["missing_poses"], summary["stale_poses"], summary["dropped_answers"]) == (0, 0, 0)
    assert summary["controller_dropped"] == 0


def test_dds_transport_choice_reaches_every_node(ros_domain, tmp_path):
    """`--dds-transport shm` writes and selects the shared-memory profile (the default is udp, bench/README.md
    4.1) for every node of the run, which completes over it."""
    import os

    from altmarl_ros.ros.heuristics import save_heuristic

    policy = save_heuristic(tmp_path / "policy.npz", k=3)
    env = {key: value for key, value in os.environ.items() if key != "FASTDDS_DEFAULT_PROFILES_FILE"}
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "altmarl_ros.ros.swarm", "--n-robots", "12", "--k", "3",
                             "--steps", "20", "--robots-per-process", "6", "--policy", str(policy), "--out", str(out),
                             "--numpy-episodes", "20", "--no-plots", "--dds-transport", "shm"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dds_profile"] == str(out / "fastdds_swarm_shm.xml") and summary["steps"] == 20
    assert summary["dropped_answers"] == 0 and summary["controller_dropped"] == 0
    for log in (out / "logs").glob("*.log"):  # Fast DDS reports a profile it cannot parse on the node's output
        assert "XMLPARSER" not in log.read_text(), log.read_text()[-2000:]
