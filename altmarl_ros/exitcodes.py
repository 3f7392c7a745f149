"""Exit statuses of the swarm's node processes and of `altmarl swarm` (ROS-free).

One table for everything that supervises the nodes (launch/swarm.launch.py, altmarl_ros/ros/launcher.py,
scripts and CI): which exits mean success, which mean "fix the configuration" (never respawned: a
restarted process would fail the same way) and which a respawn may cure (a crash).
"""

from __future__ import annotations

import signal

OK = 0
FAILED = 1  # a failed run, or a programming error (its traceback is in the log)
CONFIG_ERROR = 2  # bad parameter, policy file, game or zones: the node says which in one 'cannot start' line
HANDSHAKE_FAILED = 3  # sim_node: nodes never answered the first step within startup_timeout
DOMAIN_CLASH = 4  # sim_node: another swarm (simulator or controller) runs in the same ROS domain
INTERRUPTED = 130  # stopped by Ctrl-C (128 + SIGINT), as shells report it

_MEANING = {OK: "success", FAILED: "failed", CONFIG_ERROR: "configuration error",
            HANDSHAKE_FAILED: "nodes never answered the first step", DOMAIN_CLASH: "another swarm in the domain",
            INTERRUPTED: "interrupted (Ctrl-C)"}


def describe(code: int) -> str:
    """'exit 2 (configuration error)', 'killed by SIGKILL' for negative (signal) codes."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code} ({_MEANING.get(code, 'failed')})"


def respawnable(code: int) -> bool:
    """Whether a node process that exited with `code` on its own may be started again: not after a clean
    exit and not after a configuration error (it would fail the same way, within seconds, again)."""
    return code not in (OK, CONFIG_ERROR, DOMAIN_CLASH, INTERRUPTED)
