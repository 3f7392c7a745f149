"""Build the package with colcon into a fresh workspace and source it (shared by test_colcon and test_launch_run).

The workspace holds a copy of the package's sources (as a user's `src/altmarl_ros` would); colcon is the
venv's (PyPI colcon-common-extensions). Gotchas (ROS_ON_THIS_MACHINE.md 1): a malformed package.xml silently
builds as plain `(python)`, and AMENT_PREFIX_PATH must hold the venv before sourcing setup.bash.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "altmarl_ros"
# The vendored ROS 2 launch kit (LAUNCH_ON_THIS_MACHINE.md); `make test` builds it into .venv when present.
KIT = Path(os.environ.get("ALTMARL_LAUNCH_KIT", ROOT.parent / "shared" / "vendor" / "ros2-launch"))
LAUNCH_MODULES = "import launch, launch_ros, ros2launch, composition_interfaces.srv"
SOURCES = ("package.xml", "setup.py", "setup.cfg", "resource", "altmarl_ros", "launch", "config", "worlds",
           "policies")


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command that must succeed; the assertion shows its output."""
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def build(ws: Path) -> Path:
    """`colcon build` of a copy of the package in `ws`; asserts it builds as ros.ament_python. Returns ws."""
    src = ws / "src" / PACKAGE
    src.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        elif path.exists():
            shutil.copy2(path, src / name)
    env = {**os.environ, "COLCON_HOME": str(ws / ".colcon"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    colcon = str(Path(sys.executable).parent / "colcon")
    run([colcon, "build", "--base-paths", "src"], ws, env)
    listing = run([colcon, "list", "--base-paths", "src"], ws, env).stdout
    assert listing.split() == [PACKAGE, f"src/{PACKAGE}", "(ros.ament_python)"], listing
    return ws


def sourced_environment(ws: Path) -> dict[str, str]:
    """The environment after `export AMENT_PREFIX_PATH=$VIRTUAL_ENV; source install/setup.bash`."""
    venv = sys.prefix
    script = f'export AMENT_PREFIX_PATH="{venv}"; source install/setup.bash; "{sys.executable}" -c ' \
             '"import json, os; print(json.dumps(dict(os.environ)))"'
    out = run(["bash", "-c", script], ws, {**os.environ, "VIRTUAL_ENV": venv}).stdout
    return json.loads(out.strip().splitlines()[-1])


def _launch_problem(env: dict[str, str]) -> tuple[str, str]:
    """(path of `ros2`, '') when `ros2 launch` is installed and runs, else ('', what is wrong)."""
    ros2 = shutil.which("ros2", path=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    if ros2 is None:
        return "", "no `ros2` executable in this venv or on PATH"
    check = subprocess.run([sys.executable, "-c", LAUNCH_MODULES], env=env, capture_output=True, text=True,
                           timeout=60, check=False)
    if check.returncode:
        return "", check.stderr.strip().splitlines()[-1]
    run_help = subprocess.run([ros2, "launch", "--help"], env=env, capture_output=True, text=True, timeout=60,
                              check=False)
    return (ros2, "") if run_help.returncode == 0 else ("", f"`ros2 launch --help` failed: {run_help.stderr[-300:]}")


_checked: dict[str, tuple[str, str]] = {}  # AMENT_PREFIX_PATH + PATH -> _launch_problem's answer


def require_launch(env: dict[str, str]) -> str:
    """The `ros2` executable. Skips (with the reason) where neither ROS 2 launch nor the kit is there; fails
    where the kit is there but the launch tooling is missing or broken (launch tests must not skip then)."""
    key = f"{env.get('AMENT_PREFIX_PATH', '')}|{env.get('PATH', '')}"
    if key not in _checked:
        _checked[key] = _launch_problem(env)
    ros2, problem = _checked[key]
    if not problem:
        return ros2
    if (KIT / "build-into-venv.sh").is_file():
        pytest.fail(f"the launch kit is at {KIT} but ROS 2 launch is not usable with {sys.executable}: {problem}; "
                    f"`make test` builds it (or: bash {KIT}/build-into-venv.sh {sys.prefix})", pytrace=False)
    pytest.skip(f"ROS 2 launch is not installed ({problem}) and there is no launch kit at {KIT} (it is not on "
                "the package index); with a system ROS 2 install, source it and run the tests again")
