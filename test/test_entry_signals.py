"""The node entry points (`altmarl_ros.ros.entry`) survive a Ctrl-C that arrives while the interpreter exits.

Python restores the default action of every signal with a Python handler at interpreter exit, so a second SIGINT
during the teardown (what `ros2 launch` sends each node after the terminal's) killed a finished sim_node by SIGINT
(exit -2) in `test_ctrl_c_leaves_a_record`. The child below runs the real entry point with the node's main
replaced by one that returns at once, and keeps the interpreter busy in its teardown for 1.5 s.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

CHILD = """
import sys, time, types
node = types.ModuleType("altmarl_ros.ros.sim_node")
node.main = lambda: 0
sys.modules["altmarl_ros.ros.sim_node"] = node
from altmarl_ros.ros import entry

class SlowTeardown:
    def __del__(self):
        time.sleep(1.5)

keep = SlowTeardown()
code = entry.sim_node()
print("main returned", code, flush=True)
sys.exit(code)
"""


def test_a_ctrl_c_during_interpreter_exit_does_not_kill_a_finished_node():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "main returned 0"
    time.sleep(0.5)  # inside the 1.5 s teardown
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0  # -2 when SIGINT kills it
