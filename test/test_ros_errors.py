"""User errors are one line, programming errors keep their traceback: `altmarl_ros.errors`, the CLI, node start."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from altmarl_ros.errors import is_user_error


def _raised(fn) -> BaseException:
    try:
        fn()
    except BaseException as exc:  # the test inspects whatever was raised
        return exc
    raise AssertionError("nothing was raised")


def test_validation_errors_of_the_package_are_user_errors(tmp_path):
    from altmarl_ros.marl.artifacts import load_policies
    from altmarl_ros.ros.bringup import SwarmOptions

    assert is_user_error(_raised(lambda: SwarmOptions(n_robots=3, k=5)))  # a multi-line raise in bringup
    assert is_user_error(_raised(lambda: SwarmOptions(sim="gazebo", mode="model")))
    assert is_user_error(_raised(lambda: load_policies(tmp_path / "missing.npz")))
    assert is_user_error(_raised(lambda: (tmp_path / "missing.yaml").read_text()))  # an OSError naming its file


def test_bugs_are_not_user_errors():
    assert not is_user_error(_raised(lambda: np.zeros(2) + np.zeros(3)))  # broadcasting, in our frame
    assert not is_user_error(_raised(lambda: int("x")))  # a conversion, not a deliberate raise
    assert not is_user_error(_raised(lambda: np.reshape(np.zeros(3), (2, 2))))  # raised inside NumPy
    assert not is_user_error(_raised(lambda: {}["key"]))
    assert not is_user_error(OSError("no file named"))


def test_cli_prints_one_line_for_a_user_error_and_a_traceback_for_a_bug(tmp_path, monkeypatch, capsys):
    pytest.importorskip("rclpy")
    from altmarl_ros import cli
    from altmarl_ros.ros import swarm

    def user_error(args):
        from altmarl_ros.ros.bringup import SwarmOptions
        SwarmOptions(n_robots=2, k=3)

    def bug(args):
        return np.zeros(2) + np.zeros(3)

    monkeypatch.setattr(swarm, "run", user_error)
    assert cli.main(["swarm", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "altmarl swarm: error: SwarmOptions.k must be <= n_robots=2" in err, err
    monkeypatch.setattr(swarm, "run", bug)
    with pytest.raises(ValueError, match="broadcast"):
        cli.main(["swarm", "--out", str(tmp_path)])


def test_node_start_reports_user_errors_in_one_line_and_bugs_with_their_traceback(ros_domain, tmp_path):
    bad_param = subprocess.run([sys.executable, "-m", "altmarl_ros.ros.sim_node", "--ros-args", "-p", "n_robots:=4",
                                "-p", "game:=warehouse", "-p", "game_options:=nope"],
                               capture_output=True, text=True, timeout=60)
    assert bad_param.returncode == 2 and "Traceback" not in bad_param.stderr
    assert "parameter 'game_options' is not JSON" in bad_param.stderr, bad_param.stderr
    # A programming error inside the node's constructor: run_node re-raises it after shutting rclpy down.
    script = ("import numpy as np\nfrom altmarl_ros.ros.common import run_node\n"
              "def factory():\n    return np.zeros(2) + np.zeros(3)\n"
              "raise SystemExit(run_node(factory, []))\n")
    bug = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert bug.returncode == 1 and "Traceback" in bug.stderr and "broadcast" in bug.stderr, bug.stderr
    assert "cannot start" not in bug.stderr


def test_a_node_whose_teardown_hangs_names_where_and_exits(ros_domain):
    """run_node's watchdog: a teardown that hangs (here destroy_node sleeps 60 s; seen once for real, a controller
    alive 15 s after SIGINT) dumps every thread's stack to stderr and exits 1 after SHUTDOWN_WATCHDOG_S."""
    import time

    from altmarl_ros.ros.common import SHUTDOWN_WATCHDOG_S

    script = ("import time\nfrom rclpy.node import Node\nfrom altmarl_ros.ros.common import run_node\n"
              "class Stuck(Node):\n    done = True\n    def close(self):\n        pass\n"
              "    def destroy_node(self):\n        time.sleep(60)\n"
              "raise SystemExit(run_node(lambda: Stuck('altmarl_test_stuck'), []))\n")
    t0 = time.monotonic()
    stuck = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert stuck.returncode == 1 and "in destroy_node" in stuck.stderr, stuck.stderr[-2000:]
    assert SHUTDOWN_WATCHDOG_S <= time.monotonic() - t0 < 50
