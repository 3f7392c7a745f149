"""Console entry points of the node executables: catch Ctrl-C first (altmarl_ros.stopflag), then import the node.

`sim_node`, `controller_node` and `robot_node` in setup.py point here, so a SIGINT that arrives while the
node's modules are still importing stops the node cleanly once it is up (the simulator then writes its record,
marked interrupted) instead of killing it by SIGINT (exit -2).

When the node's main returns, SIGINT and SIGTERM are ignored for the rest of the process: at interpreter exit
Python puts back the default action of every signal that has a Python handler, so a second Ctrl-C arriving while
the interpreter tears down rclpy and DDS (`ros2 launch` sends one to each process after the terminal's) would
still kill the finished node by SIGINT (exit -2, seen in `test_ctrl_c_leaves_a_record`). Ignored signals are
left ignored; SIGKILL still ends a process that hangs there.
"""

from __future__ import annotations

import signal

from altmarl_ros import stopflag


def _ignore_stops() -> None:
    """The node is done: a later SIGINT / SIGTERM must not kill it while the interpreter exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def sim_node() -> int:
    stopflag.install()
    try:
        from altmarl_ros.ros.sim_node import main
        return main()
    finally:
        _ignore_stops()


def controller_node() -> int:
    stopflag.install()
    try:
        from altmarl_ros.ros.controller_node import main
        return main()
    finally:
        _ignore_stops()


def robot_node() -> int:
    stopflag.install()
    try:
        from altmarl_ros.ros.robot_node import main
        return main()
    finally:
        _ignore_stops()
