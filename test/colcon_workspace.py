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

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "altmarl_ros"
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
