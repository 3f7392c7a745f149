"""The package builds with colcon as ros.ament_python, installs launch/, config/, worlds/ into its share
directory, and its installed node executables start with `--ros-args --params-file <installed config>`.

Runs colcon from the venv (PyPI colcon-common-extensions) in a temporary workspace holding a copy of
the package (test/colcon_workspace.py); about 15 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("colcon_core", reason="colcon is not installed (pip install colcon-common-extensions)")

import colcon_workspace
from colcon_workspace import PACKAGE

from altmarl_ros.contract import CONTROLLER_NODE as CONTROLLER_NODE_NAME
from altmarl_ros.contract import SIM_NODE as SIM_NODE_NAME

ROOT = Path(__file__).resolve().parents[1]
# Executable -> node name (bringup.plan's names; robot hosts are altmarl_robots_<j>), run with -r __node:=<name>.
NODES = {"sim_node": SIM_NODE_NAME, "controller_node": CONTROLLER_NODE_NAME, "robot_node": "altmarl_robots_0"}
START_TIMEOUT = 30.0  # s for every node to log that it is up (imports are slow on 2 busy cores)
SETTLE = 1.0  # s a node must then stay up
SHUTDOWN = 15.0  # s allowed to exit after SIGINT
START_ERRORS = ("cannot start", "Couldn't parse params file", "Failed to parse", "rcl_yaml", "ParameterError",
                "Traceback")
_run = colcon_workspace.run


@pytest.fixture(scope="module")
def workspace(colcon_install) -> Path:
    """`colcon build` of a copy of the package in a fresh workspace (conftest: one build per session)."""
    return colcon_install


@pytest.fixture(scope="module")
def sourced_env(colcon_env) -> dict[str, str]:
    """The environment after `export AMENT_PREFIX_PATH=$VIRTUAL_ENV; source install/setup.bash`."""
    return colcon_env


def test_share_directory_holds_launch_config_worlds(workspace, sourced_env):
    code = ("import json\nfrom ament_index_python.packages import get_package_share_directory as share\n"
            "print(json.dumps([share('altmarl_ros'), share('geometry_msgs')]))")
    out = _run([sys.executable, "-c", code], workspace, sourced_env).stdout
    share, geometry = (Path(p) for p in json.loads(out.strip().splitlines()[-1]))
    assert share == workspace / "install" / PACKAGE / "share" / PACKAGE
    assert geometry.is_dir(), "the venv's own ROS packages stay findable (AMENT_PREFIX_PATH exported first)"
    assert (share / "package.xml").is_file()
    assert (share / "launch" / "swarm.launch.py").is_file()
    for folder, pattern in (("config", "*.yaml"), ("worlds", "*.sdf"), ("launch", "*.py")):
        expected = sorted(p.name for p in (ROOT / folder).glob(pattern))
        assert expected and sorted(p.name for p in (share / folder).glob(pattern)) == expected
    for name in ("config/zones.yaml", "config/gz_bridge.yaml", "worlds/warehouse.sdf", "worlds/robot.sdf"):
        assert (share / name).read_bytes() == (ROOT / name).read_bytes(), name


def test_console_scripts_installed(workspace):
    lib = workspace / "install" / PACKAGE / "lib" / PACKAGE
    for name in (*NODES, "altmarl"):
        script = lib / name
        assert script.is_file() and os.access(script, os.X_OK), f"{script} missing"
        assert script.read_text().startswith("#!"), f"{script} has no shebang"


def _params_file(share: Path, node_name: str) -> Path:
    """The installed config YAML with a `/<node_name>: ros__parameters:` section."""
    for path in sorted((share / "config").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if isinstance(document, dict) and "ros__parameters" in (document.get(f"/{node_name}") or {}):
            return path
    pytest.fail(f"no installed config/*.yaml has a /{node_name}: ros__parameters: section "
                f"(issue 4 section 2: YAML under config/ with ros__parameters for every node)")


def _section(path: Path, node_name: str) -> dict:
    return yaml.safe_load(path.read_text())[f"/{node_name}"]["ros__parameters"]


def _policy_override(share: Path, workspace: Path, k: int) -> list[str]:
    """Use the installed default policy; without one, a heuristic policy so that the nodes can start."""
    if (share / "policies" / "default.npz").is_file():
        return []
    try:
        from altmarl_ros.ros.heuristics import save_heuristic
    except ImportError:
        pytest.fail("no installed policies/default.npz and no altmarl_ros.ros.heuristics to make one")
    path = save_heuristic(workspace / f"policy_k{k}.npz", k=k)
    return ["-p", f"policy_path:={path}"]


def test_nodes_start_with_installed_params_file(workspace, sourced_env, ros_domain):
    share = workspace / "install" / PACKAGE / "share" / PACKAGE
    lib = workspace / "install" / PACKAGE / "lib" / PACKAGE
    env = {**sourced_env, **{k: os.environ[k] for k in ("RMW_IMPLEMENTATION", "FASTDDS_DEFAULT_PROFILES_FILE")
                             if k in os.environ},
           "ROS_DOMAIN_ID": str(ros_domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "PYTHONUNBUFFERED": "1",
           "RCUTILS_CONSOLE_OUTPUT_FORMAT": "[{severity}] [{time}] [{name}]: {message}"}
    files = {exe: _params_file(share, name) for exe, name in NODES.items()}
    k = int(_section(files["controller_node"], CONTROLLER_NODE_NAME).get("k", 5))
    override = _policy_override(share, workspace, k)
    procs = {}
    for exe, params in files.items():
        log = open(workspace / f"{exe}.log", "w")  # noqa: SIM115 - closed below
        cmd = [str(lib / exe), "--ros-args", "-r", f"__node:={NODES[exe]}", "--params-file", str(params), *override]
        procs[exe] = (subprocess.Popen(cmd, cwd=workspace, env=env, stdout=log, stderr=subprocess.STDOUT), log, cmd)

    def started(exe: str) -> bool:  # rcl log line "[INFO] [stamp] [<node name>]: ..."
        return f"] [{NODES[exe]}]: " in (workspace / f"{exe}.log").read_text()

    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and all(p.poll() is None for p, _, _ in procs.values()):
            if all(started(exe) for exe in procs):
                time.sleep(SETTLE)
                break
            time.sleep(0.2)
        silent = [exe for exe in procs if not started(exe)]
        early = {exe: p.returncode for exe, (p, _, _) in procs.items() if p.poll() is not None}
        for p, _, _ in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        codes = {}
        for exe, (p, _, _) in procs.items():
            try:
                codes[exe] = p.wait(timeout=SHUTDOWN)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[exe] = "hung after SIGINT"
    finally:
        for p, log, _ in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
    report = "\n".join(f"--- {' '.join(cmd)} -> {codes[exe]}\n{(workspace / f'{exe}.log').read_text()[-2000:]}"
                       for exe, (_, _, cmd) in procs.items())
    assert not early, f"exited right after start: {early}\n{report}"
    assert not silent, f"never logged that they started within {START_TIMEOUT} s: {silent}\n{report}"
    assert all(code == 0 for code in codes.values()), f"bad exit after SIGINT: {codes}\n{report}"
    for exe in procs:
        text = (workspace / f"{exe}.log").read_text()
        assert not [e for e in START_ERRORS if e in text], f"{exe} reported a start error\n{report}"
    # The file's values reached the node (the controller logs its k).
    assert f"k={k}" in (workspace / "controller_node.log").read_text(), report


def test_altmarl_cli_runs(workspace, sourced_env):
    script = workspace / "install" / PACKAGE / "lib" / PACKAGE / "altmarl"
    result = subprocess.run([str(script), "--help"], cwd=workspace, env=sourced_env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
