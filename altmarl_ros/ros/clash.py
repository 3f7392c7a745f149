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
    """`check(now, waiting)` every loop turn, looking at the graph every PERIOD s: True (the caller stops) when a
    rival swarm is seen before this one started stepping; once running, a rival is logged once and kept in
    `seen` (the newcomer refuses to start: it is the one that has to go)."""

    PERIOD = 1.0  # s between two looks at the graph

    def __init__(self, node) -> None:
        self.node, self.next, self.seen = node, 0.0, ""

    def check(self, now: float, *, waiting: bool) -> bool:
        if now < self.next:
            return False
        self.next = now + self.PERIOD
        rival = rival_swarm(self.node)
        if not rival:
            return False
        if waiting:
            self.node.get_logger().error(f"{rival}; not starting")
            self.seen = rival
            return True
        if not self.seen:
            self.node.get_logger().error(f"{rival}; this run's record may hold the other swarm's answers")
            self.seen = rival
        return False
