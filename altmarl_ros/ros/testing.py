"""Helpers for ROS integration tests and benchmarks: an in-process probe node and bounded waits.

Real rclpy over real DDS, no mocks: the probe is an ordinary node in its own rclpy Context.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from altmarl_ros.ros.launcher import tail
from altmarl_ros.ros.monitor import MonitorNode


class Probe:
    """A MonitorNode (metrics, controller diagnostics) plus a spin helper."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.node = MonitorNode("altmarl_test_probe", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, end - time.monotonic())))

    def spin_until(self, predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
        """Spin until `predicate()` holds; raise TimeoutError naming `what` after `timeout` s."""
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.05)

    @property
    def metrics(self) -> list[dict[str, float]]:
        return self.node.metrics


@contextmanager
def probe() -> Iterator[Probe]:
    context = Context()
    rclpy.init(args=[], context=context)
    p = Probe(context)
    try:
        yield p
    finally:
        p.executor.shutdown(timeout_sec=1.0)
        p.node.destroy_node()
        rclpy.try_shutdown(context=context)


def stop(*procs: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGINT each process that still runs, wait up to `timeout` s for it, then SIGKILL it (and its process
    group when it leads one): a process that ignores SIGINT, or hangs in native code, is never left behind."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(proc.pid) == proc.pid:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
            proc.wait()


@contextmanager
def logs_on_failure(directory: Path, lines: int = 20) -> Iterator[None]:
    """If the block raises, print the last `lines` of every node log under `directory` first (pytest shows
    them beside the failure, so a failure on a CI machine says what the nodes saw)."""
    try:
        yield
    except BaseException:
        for log in sorted(Path(directory).rglob("*.log")):
            print(f"--- {log} (last {lines} lines)\n{tail(log, lines)}")
        raise
