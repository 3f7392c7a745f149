"""Run a bringup plan without `ros2 launch`: one process per NodeSpec, started with `--ros-args --params-file`.

Each process gets its own session (process group), its output goes to `<log_dir>/<name>.log`, and
`stop()` sends SIGINT to every group, waits, then SIGKILLs what is left, so no process outlives the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from altmarl_ros.ros.bringup import NodeSpec

MODULES = {"sim_node": "altmarl_ros.ros.sim_node", "controller_node": "altmarl_ros.ros.controller_node",
           "robot_node": "altmarl_ros.ros.robot_node"}


def write_params(spec: NodeSpec, directory: Path) -> Path:
    """Write the node's `ros__parameters` file; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{spec.fqn.strip('/').replace('/', '__')}.yaml"
    path.write_text(yaml.safe_dump(spec.params_yaml(), sort_keys=False))
    return path


def command(spec: NodeSpec, params_file: Path) -> list[str]:
    """`python -X faulthandler -m <module> --ros-args -r __node:=NAME [-r __ns:=/NS] --params-file FILE`
    (faulthandler: a node that ignores SIGINT is sent SIGABRT by `stop`, which writes its Python stacks
    into its log before it is killed: a hung node names where it hung)."""
    cmd = [sys.executable, "-X", "faulthandler", "-m", MODULES[spec.executable], "--ros-args", "-r",
           f"__node:={spec.name}"]
    if spec.namespace:
        cmd += ["-r", f"__ns:=/{spec.namespace}"]
    return [*cmd, "--params-file", str(params_file)]


@dataclass
class NodeProcess:
    spec: NodeSpec
    popen: subprocess.Popen
    log: Path
    cmd: list[str]
    env: dict[str, str]
    stopped: bool = False  # we asked it to stop (its exit is expected)
    restarts: int = 0  # times `ProcessGroup.restart` started it again

    @property
    def label(self) -> str:
        return self.spec.fqn


@dataclass
class ProcessGroup:
    """The running processes of a plan."""

    processes: list[NodeProcess] = field(default_factory=list)

    @classmethod
    def start(cls, specs: list[NodeSpec], run_dir: Path, env: dict[str, str] | None = None) -> ProcessGroup:
        group = cls()
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            for spec in specs:
                params = write_params(spec, run_dir / "params")
                log = run_dir / "logs" / f"{spec.fqn.strip('/').replace('/', '__')}.log"
                cmd, proc_env = command(spec, params), env if env is not None else os.environ.copy()
                group.processes.append(NodeProcess(spec, _popen(cmd, proc_env, log, "wb"), log, cmd, proc_env))
        except BaseException:
            group.stop()
            raise
        return group

    def restart(self, proc: NodeProcess) -> None:
        """Start an exited process again with the same command (ROS 2 launch's `respawn`); its log goes on
        in the same file after a line that says so."""
        with open(proc.log, "ab") as out:
            out.write(f"\n[altmarl launcher] exited with {proc.popen.returncode}; respawn "
                      f"{proc.restarts + 1}\n".encode())
        proc.popen = _popen(proc.cmd, proc.env, proc.log, "ab")
        proc.restarts += 1

    def find(self, executable: str) -> list[NodeProcess]:
        return [p for p in self.processes if p.spec.executable == executable]

    def exited(self) -> list[NodeProcess]:
        """Processes that have exited without being asked to stop."""
        return [p for p in self.processes if not p.stopped and p.popen.poll() is not None]

    def kill(self, proc: NodeProcess) -> None:
        """SIGKILL the process's group (a crash, for fault tests and benchmarks) and reap it; its exit counts
        as asked for."""
        proc.stopped = True
        _signal_group(proc.popen, signal.SIGKILL)
        proc.popen.wait(5.0)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGINT every process group, wait up to `timeout` s in total, then SIGABRT (stacks into the log)
        and SIGKILL the rest."""
        for proc in self.processes:
            proc.stopped = True
            if proc.popen.poll() is None:
                _signal_group(proc.popen, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
        hung = [proc for proc in self.processes if proc.popen.poll() is None]
        for proc in hung:  # Python stacks into the node's log (faulthandler), then kill
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.popen.pid, signal.SIGABRT)
        for proc in hung:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(3.0)
            if proc.popen.poll() is None:
                _signal_group(proc.popen, signal.SIGKILL)
                proc.popen.wait(5.0)


def _popen(cmd: list[str], env: dict[str, str], log: Path, mode: str) -> subprocess.Popen:
    with open(log, mode) as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)


def _signal_group(popen: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)


def tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
