"""Ctrl-C and SIGTERM as a flag, from the first instruction of a node process (ROS-free, no imports).

A node's imports take 1-3 s on a busy machine; a SIGINT in that window used to raise KeyboardInterrupt
inside an import and Python then killed the process by SIGINT (exit -2, no record). The console entry
points (`altmarl_ros.ros.entry`) install `handler` before importing anything heavy; the node's spin loop
(`altmarl_ros.ros.common.run_node`) checks `requested` between callbacks and shuts down cleanly.
"""

from __future__ import annotations

import signal

requested = False  # set by SIGINT / SIGTERM


def handler(signum: int, frame: object) -> None:
    global requested
    requested = True


def install() -> None:
    """SIGINT and SIGTERM set `requested` instead of raising or killing."""
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
