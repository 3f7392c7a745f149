"""Console entry points of the node executables: catch Ctrl-C first (altmarl_ros.stopflag), then import the node.

`sim_node`, `controller_node` and `robot_node` in setup.py point here, so a SIGINT that arrives while the
node's modules are still importing stops the node cleanly once it is up (the simulator then writes its record,
marked interrupted) instead of killing it by SIGINT (exit -2).
"""

from __future__ import annotations

from altmarl_ros import stopflag


def sim_node() -> int:
    stopflag.install()
    from altmarl_ros.ros.sim_node import main
    return main()


def controller_node() -> int:
    stopflag.install()
    from altmarl_ros.ros.controller_node import main
    return main()


def robot_node() -> int:
    stopflag.install()
    from altmarl_ros.ros.robot_node import main
    return main()
