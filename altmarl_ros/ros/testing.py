"""Helpers for ROS integration tests and benchmarks: an in-process probe node and bounded waits.

Real rclpy over real DDS, no mocks: the probe is an ordinary node in its own rclpy Context.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from altmarl_ros.ros.monitor import MonitorNode


class Probe:
    """A MonitorNode (metrics, controller diagnostics, /swarm/command) plus a spin helper."""

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
