"""Shared pytest set-up: ROS isolation helpers (long experiments live in bench/, not in tests).

ROS integration tests use real rclpy over Fast DDS on localhost. Each test module gets a private
ROS_DOMAIN_ID (`ros_domain` fixture) so that modules never see each other's nodes, and after every
test that uses it, no process the test started may still run (`no_leaked_processes`).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
import time
from pathlib import Path

import pytest

_modules = itertools.count()
MARKER = "ALTMARL_TEST_MODULE"


def claim_next_domain():
    """A ROS domain of its own for this module: claimed with the lock `altmarl swarm` takes (`domains.claim_domain`),
    so no other test run, swarm or benchmark on this machine shares it while the module runs; tried first is a
    different one for each of the first 62 modules of this run (offset by the pid), in [40, 102). Domains above
    101 put Fast DDS's UDP ports in Linux's ephemeral range (ROS 2's domain ID docs)."""
    from altmarl_ros.domains import claim_domain

    env = {key: value for key, value in os.environ.items() if key != "ROS_DOMAIN_ID"}
    return claim_domain(env, first=40 + (os.getpid() + next(_modules)) % 62)


@pytest.fixture(scope="module")
def ros_domain(request, tmp_path_factory):
    """Private ROS_DOMAIN_ID + Fast DDS swarm profile for this module (and its child processes), and a
    marker variable (MARKER) by which `no_leaked_processes` finds every process the module started."""
    pytest.importorskip("rclpy")
    from altmarl_ros.ros.dds import write_profile

    saved = {key: os.environ.get(key) for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                                  "RMW_IMPLEMENTATION", "FASTDDS_DEFAULT_PROFILES_FILE", MARKER)}
    claim = claim_next_domain()
    domain = claim.domain_id
    os.environ[MARKER] = f"{os.getpid()}-{domain}"
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", claim.discovery_range)
    os.environ["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(write_profile(tmp_path_factory.mktemp("dds")))
    yield domain
    claim.release()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _processes_with(entry: bytes) -> dict[int, str]:
    """{pid: command line} of the other processes whose environment holds `entry` (b"NAME=value")."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                if entry not in fh.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                found[int(name)] = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or a zombie
            continue
    return found


@pytest.fixture(autouse=True)
def no_leaked_processes(request):
    """After a test that uses `ros_domain`: every process carrying this module's MARKER (so started by this
    module, however deep) must have exited. Leftovers get 5 s, are then SIGKILLed and fail the test:
    a hung node left running would hold CPU and DDS resources and break the tests after it."""
    yield
    if "ros_domain" not in request.fixturenames or not os.environ.get(MARKER):
        return
    entry = f"{MARKER}={os.environ[MARKER]}".encode()
    deadline = time.monotonic() + 5.0
    while (leaked := _processes_with(entry)) and time.monotonic() < deadline:
        time.sleep(0.1)  # processes being stopped by the test's own clean-up
    for pid in leaked:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if leaked:
        pytest.fail(f"the test left {len(leaked)} process(es) running (now killed): "
                    + "; ".join(f"{pid}: {cmd[:160]}" for pid, cmd in leaked.items()), pytrace=False)


@pytest.fixture(scope="session")
def colcon_install(tmp_path_factory):
    """The package built by `colcon build` into a fresh workspace (once per test session; test/colcon_workspace.py)."""
    pytest.importorskip("colcon_core", reason="colcon is not installed (pip install colcon-common-extensions)")
    import colcon_workspace

    return colcon_workspace.build(tmp_path_factory.mktemp("colcon_ws"))


@pytest.fixture(scope="session")
def colcon_env(colcon_install) -> dict:
    """The environment after `export AMENT_PREFIX_PATH=$VIRTUAL_ENV; source install/setup.bash`."""
    import colcon_workspace

    return colcon_workspace.sourced_environment(colcon_install)


# `make test` runs the suite on two pytest-xdist workers. The modules that use `ros_domain` (found by name in their
# source) are one unit of work, run one after another on one worker as in a serial run: two swarm tests at once on
# the 2-core machine dropped answers after 5 s and missed a respawned host's rejoin. Every other module is a unit of
# its own and runs on the other worker meanwhile. The ROS unit (~890 s of the serial run's 1312 s, measured
# 2026-12-07) goes first, then the other modules longest first (a stale list only costs time).
SLOW_FIRST = ("test_continuous_train.py", "test_cli.py", "test_continuous_deploy.py", "test_executors.py",
              "test_posterior.py", "test_continuous_env.py", "test_metrics.py", "test_federated.py")


@functools.cache
def uses_ros(module: Path) -> bool:
    """Whether the test module `module` (absolute, or relative to the repository) requests `ros_domain`."""
    return "ros_domain" in (Path(__file__).parents[1] / module).read_text()


def pytest_collection_modifyitems(items):
    rank = {name: i + 1 for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: 0 if uses_ros(item.path) else rank.get(item.path.name, len(rank) + 1))  # stable


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, which .venv-fl (the Flower module's) does not have
def pytest_xdist_make_scheduler(config, log):
    """xdist's module-by-module scheduling, with every ROS module in one unit ("ros")."""
    from xdist.scheduler import LoadScopeScheduling

    class RosModulesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "ros" if uses_ros(Path(module)) else module

    return RosModulesTogether(config, log)
