"""One swarm per ROS domain: the simulator checks that it is the only simulator and that one controller commands.

Two swarms in one domain hear each other: each simulator takes the other's robots' answers as its own
(issue 16: thousands of bad and late answers, a failed z-test). The check counts publishers of the swarm-wide
topics, which two correct swarms never share; discovery takes up to a few seconds, so callers repeat it.
"""

from __future__ import annotations

import os

from altmarl_ros.ros import topics


def _who(node, topic: str) -> str:
    names = sorted({f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in node.get_publishers_info_by_topic(topic)})
    return ", ".join(names)


def rival_swarm(node) -> str:
    """'' when this node is the domain's only tick publisher and at most one node commands zones; else the error."""
    domain = os.environ.get("ROS_DOMAIN_ID", "0")
    ticks, commands = node.count_publishers(topics.TICK), node.count_publishers(topics.ZONE_COMMAND)
    if ticks <= 1 and commands <= 1:
        return ""
    what = (f"{ticks} simulators publish {topics.TICK} ({_who(node, topics.TICK)})" if ticks > 1 else
            f"{commands} controllers publish {topics.ZONE_COMMAND} ({_who(node, topics.ZONE_COMMAND)})")
    return (f"another swarm shares ROS domain {domain}: {what}; two swarms in one domain take each other's answers. "
            "Give each its own ROS_DOMAIN_ID (altmarl swarm claims a free one unless ROS_DOMAIN_ID is set; "
            "ros2 launch ... domain_id:=N)")


class RivalWatch:
    """`check(now, young)` every loop turn, looking at the graph every PERIOD s: True (the caller stops) when a
    rival swarm is seen while this one is young (waiting, in its handshake, or less than SETTLE s past it: the
    newcomer is the one that has to go); later, a rival is logged once and kept in `seen`.

    Being young for SETTLE s after the handshake matters: a newcomer's simulator can start stepping on the
    other swarm's robots and controller (they match its subscriptions) before its own controller shows up as
    the second publisher of the command topic."""

    PERIOD = 1.0  # s between two looks at the graph
    SETTLE = 5.0  # s after the handshake during which a rival means this swarm is the newcomer

    def __init__(self, node) -> None:
        self.node, self.next, self.seen = node, 0.0, ""

    def check(self, now: float, *, young: bool) -> bool:
        if now < self.next:
            return False
        self.next = now + self.PERIOD
        rival = rival_swarm(self.node)
        if not rival:
            return False
        if young:
            self.node.get_logger().error(f"{rival}; not going on (this swarm started last)")
            self.seen = rival
            return True
        if not self.seen:
            self.node.get_logger().error(f"{rival}; this run's record may hold the other swarm's answers")
            self.seen = rival
        return False
