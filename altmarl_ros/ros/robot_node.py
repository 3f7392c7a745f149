"""robot_node: the local agents. One node hosts one robot (physical) or many (simulation).

Per decision tick [step, s_g, stamp] each hosted robot maps its own latest pose to its zone s_l,
samples a_l ~ pi_l(. | s_l, s_g), and publishes its goal zone [step, goal] on `zone_goal` (a node
hosting many simulated robots with `batch_offset` >= 0 instead publishes the answers it has ready as
one [step, i, goal, ...] message on /swarm/zone_goals, i = batch_offset + position, and reads the
poses from the simulator's /swarm/pose_table: one message each way instead of one per robot, which
is what limited the step rate of a 1000-robot swarm). It waits
up to `answer_wait` s for a pose at least as new as the tick, then answers from the latest pose it
has (stale); a robot with no usable pose does not answer (the simulator counts it dropped).
With `drive`, each robot steers toward its goal zone's centre on `cmd_vel` (go-to-goal unicycle
control; with `goal_spacing` > 0 toward its own parking slot in that zone, slot i for `robot_<i>`) and
publishes a zero Twist on 'stop', on stale input and on shutdown.

With a continuous policy artifact (issue 17) a robot's s_l is its x on the corridor (`ros.corridor`), it acts
greedily, a_l = pi_l(s_g, s_l), answers a_l itself, and when driving goes forward or backward along the corridor
to x + offsets[a_l] (goal_tolerance 0.02 m by default).

Topic names are relative: hosting one robot, the node runs in the robot's namespace and uses
`pose`, `cmd_vel`, `zone_goal`; hosting many, it uses `robot_<i>/pose` etc.
"""

from __future__ import annotations

import functools
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist
from rclpy.duration import Duration
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, Int32MultiArray, Int64MultiArray, String

from altmarl_ros.contract import ROBOT_NODE, robot_index
from altmarl_ros.marl.continuous import deploy
from altmarl_ros.physics.control import GOAL_SPACING, go_to_goal
from altmarl_ros.ros import topics
from altmarl_ros.ros.common import (
    SILENCE_REPORT_S,
    PoseSubscriber,
    check_floor,
    declare,
    declare_string_list,
    resolve_continuous,
    resolve_policy,
    resolve_zones,
    run_node,
)
from altmarl_ros.ros.corridor import CORRIDOR_TOLERANCE, corridor_drive


class RobotNode(Node):
    """Hosts `robots` (or, when that is empty, the one robot named by the node's namespace)."""

    def __init__(self, node_name: str = ROBOT_NODE, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        robots = declare_string_list(self, "robots", "robots hosted by this node; empty = the namespace's robot")
        self.policy_path = declare(self, "policy_path", "", "policy artifact (.npz); '' = share/policies/default.npz")
        zones_path = declare(self, "zones_path", "", "zones YAML; '' = share/config/zones.yaml (continuous policy: "
                             "share/config/zones_corridor.yaml)")
        seed = declare(self, "seed", 0, "seed of the local action sampler", low=0)
        self.drive = declare(self, "drive", False, "publish go-to-goal cmd_vel (kinematic sim, Gazebo, hardware)")
        self.answer_wait = declare(self, "answer_wait", 0.5, "s to wait for a fresh pose after a tick", low=0.0,
                                   high=60.0)
        self.max_speed = declare(self, "max_speed", 0.8, "m/s linear speed limit", low=0.0, high=10.0)
        self.max_turn = declare(self, "max_turn", 2.0, "rad/s angular speed limit", low=0.0, high=20.0)
        self.continuous = resolve_continuous(self.policy_path, zones_path)
        tolerance = 0.3 if self.continuous is None else CORRIDOR_TOLERANCE
        self.goal_tolerance = declare(self, "goal_tolerance", tolerance, "m; stop within this of the goal point "
                                      "(default 0.02 with a continuous policy)", low=0.0, high=10.0)
        self.goal_spacing = declare(self, "goal_spacing", GOAL_SPACING, "m between robots' parking slots in a zone; "
                                    "0 = every robot drives to the zone's centre", low=0.0, high=5.0)
        self.stale_timeout = declare(self, "stale_timeout", 1.0, "s without a pose before the robot stops",
                                     low=0.01, high=60.0)
        self.batch_offset = declare(self, "batch_offset", -1, "registry index of the first hosted robot: answers "
                                    "go batched on /swarm/zone_goals; -1 = one zone_goal message per robot", low=-1)
        self.poses = PoseSubscriber(self)
        if self.continuous is not None:  # s_l is the robot's x on the corridor; the tick carries s_g's code
            self.zones, self.n_global_states = self.continuous.zones, deploy.n_codes(self.continuous.policy.env)
        else:
            self.zones = resolve_zones(zones_path)
            artifact = resolve_policy(self.policy_path, n_zones=self.zones.n_zones)
            self.pi_l, self.n_global_states = artifact.pi_l, artifact.pi_l.probs.shape[0]
            # what local states and actions mean on the floor: zone -> s_l, (s_l, a_l) -> goal zone
            self.floor = check_floor(artifact.floor, self.zones.n_zones, f"policy file {self.policy_path or 'default'}")
        self.rng = np.random.default_rng(seed)
        if robots:
            self.names = robots
            prefixes = [f"{r}/" for r in robots]
        else:
            ns = self.get_namespace().strip("/")
            self.names = [ns.split("/")[-1] if ns else "robot"]
            prefixes = [""]
        n = len(self.names)
        self.slot = np.array([robot_index(name) for name in self.names])  # parking slot index per robot
        self.pose_xy = np.full((n, 2), np.nan)
        self.pose_yaw = np.zeros(n)
        self.pose_stamp = np.full(n, -1, dtype=np.int64)
        self.pose_time = np.full(n, -np.inf)  # monotonic receipt time
        self.goal = np.full(n, -1, dtype=np.int64)
        self.target_x = np.full(n, np.nan)  # continuous: where the last answer sends each robot (m)
        self.answered, self.sent_step = np.ones(n, dtype=bool), np.full(n, -1, dtype=np.int64)  # sent: per-robot path
        self.tick: topics.Tick | None = None
        self.tick_time = 0.0
        self.t_start = time.monotonic()
        self.silence_reported = False
        self.running = True
        self.stopped_sent = np.zeros(n, dtype=bool)
        self.bad_pose_warned = np.zeros(n, dtype=bool)
        self.bad_array_warned = False
        # Per-robot zone_goal publishers exist in batch mode too: the simulator starts stepping once every
        # robot's zone_goal is matched, and they keep the per-robot topic contract visible in the graph.
        self.goal_pubs = [self.create_publisher(Int32MultiArray, p + topics.ZONE_GOAL, topics.ANSWER_QOS)
                          for p in prefixes]
        self.cmd_pubs = ([self.create_publisher(Twist, p + topics.CMD_VEL, topics.CMD_VEL_QOS) for p in prefixes]
                         if self.drive else [])
        if self.batch_offset >= 0:  # simulated robots: every pose arrives in one /swarm/pose_table message
            self.pose_subs = [self.create_subscription(Float64MultiArray, topics.POSE_TABLE, self._on_poses,
                                                       topics.LATCHED_QOS)]
        else:
            self.pose_subs = [self.poses.subscribe(PoseStamped, p + topics.POSE, functools.partial(self._on_pose, i))
                              for i, p in enumerate(prefixes)]
        self.tick_sub = self.create_subscription(Int64MultiArray, topics.TICK, self._on_tick,
                                                 topics.TICK_READER_QOS)
        self.create_subscription(String, topics.SWARM_COMMAND, self._on_command, topics.LATCHED_QOS)
        self.create_timer(0.05, self._on_timer)
        self.goals_pub = (self.create_publisher(Int32MultiArray, topics.ZONE_GOALS, topics.GOALS_QOS)
                          if self.batch_offset >= 0 else None)
        self.poll: tuple[int, np.ndarray] | None = None  # (step, hosted positions) of a poll still to answer
        if self.batch_offset >= 0:  # the controller's observation 'polling'
            self.create_subscription(Int32MultiArray, topics.POLL, self._on_poll, topics.LATCHED_QOS)
            self.poll_pub = self.create_publisher(Float64MultiArray, topics.POLL_POSES, topics.POLL_POSES_QOS)
        self.n_entities = len(self.goal_pubs) + len(self.cmd_pubs) + len(self.pose_subs) + 4
        self.get_logger().info(f"hosting {n} robot(s) ({self.names[0]}..{self.names[-1]}), drive={self.drive}")

    # --- inputs -------------------------------------------------------------------------------
    def _on_pose(self, i: int, msg: PoseStamped) -> None:
        if not topics.pose_is_finite(msg):
            if not self.bad_pose_warned[i]:
                self.get_logger().warning(f"{self.names[i]}: ignoring pose with NaN/inf values")
                self.bad_pose_warned[i] = True
            return
        self.pose_xy[i] = topics.pose_xy(msg)
        self.pose_yaw[i] = topics.pose_yaw(msg)
        self.pose_stamp[i] = topics.stamp_to_ns(msg.header.stamp)
        self.pose_time[i] = time.monotonic()
        self.stopped_sent[i] = False
        if self.tick is not None and not self.answered[i] and self.pose_stamp[i] >= self.tick.stamp_ns:
            self._answer(np.array([i]))
        if self.drive:
            self._drive(np.array([i]))

    def _on_poses(self, msg: Float64MultiArray) -> None:
        """The hosted robots' slice of the pose table: update every pose, then answer the fresh ones at once."""
        try:
            block = topics.parse_pose_block(msg, self.batch_offset, len(self.names))
        except ValueError as exc:
            if not self.bad_array_warned:
                self.get_logger().warning(f"{topics.POSE_TABLE}: {exc}; ignored")
                self.bad_array_warned = True
            return
        bad = np.flatnonzero(~block.finite & ~self.bad_pose_warned)
        if bad.size:
            self.get_logger().warning(f"{self.names[bad[0]]} (and {bad.size - 1} more): ignoring poses with NaN/inf")
            self.bad_pose_warned[bad] = True
        ok = block.finite
        self.pose_xy[ok] = block.xy[ok]
        self.pose_yaw[ok] = block.yaw[ok]
        self.pose_stamp[ok] = block.stamp_ns
        self.pose_time[ok] = time.monotonic()
        self.stopped_sent[ok] = False
        if self.tick is not None and self.running:
            fresh = np.flatnonzero(~self.answered & (self.pose_stamp >= self.tick.stamp_ns))
            if fresh.size:
                self._answer(fresh)
        self._answer_poll()
        if self.drive:
            self._drive(np.flatnonzero(ok))

    def _on_poll(self, msg: Int32MultiArray) -> None:
        try:
            step, indices = topics.parse_poll(msg)
        except ValueError as exc:
            self.get_logger().warning(f"{topics.POLL}: {exc}")
            return
        local = indices - self.batch_offset
        mine = local[(local >= 0) & (local < len(self.names))]
        if mine.size:
            self.poll = (step, mine)
            self._answer_poll()

    def _answer_poll(self, force: bool = False) -> None:
        """Answer the pending poll once the polled robots' poses are at least as new as its tick (or `force`)."""
        if self.poll is None or self.tick is None or self.tick.step < self.poll[0]:
            return
        step, mine = self.poll
        if self.tick.step > step:  # a later tick overtook the poll: the controller has decided without it
            self.poll = None
            return
        if not force and not np.all(self.pose_stamp[mine] >= self.tick.stamp_ns):
            return
        usable = mine[self.pose_stamp[mine] >= 0]
        self.poll = None
        self.poll_pub.publish(topics.poll_reply_msg(step, self.batch_offset + usable, self.pose_xy[usable],
                                                    self.pose_yaw[usable], self.pose_stamp[usable]))

    def _on_tick(self, msg: Int64MultiArray) -> None:
        try:
            tick = topics.parse_tick(msg, self.n_global_states)
        except ValueError as exc:
            self.get_logger().warning(str(exc))
            return
        if self.tick is not None and tick.step == self.tick.step and self.goals_pub is None:
            self._resend(tick)  # the simulator asks again: a per-robot (volatile) answer may not have arrived
            return
        if self.tick is not None and tick.step <= self.tick.step:
            return  # duplicate (transient-local replay) or old
        if self.tick is None:
            self.get_logger().info(f"first tick: step {tick.step}; poses so far for "
                                   f"{int((self.pose_stamp >= 0).sum())}/{len(self.names)} robots")
        self.tick = tick
        self.tick_time = time.monotonic()
        self.answered[:] = False
        if self.running:
            fresh = np.flatnonzero(self.pose_stamp >= tick.stamp_ns)
            if fresh.size:
                self._answer(fresh)
        self._answer_poll()

    def _on_command(self, msg: String) -> None:
        if msg.data == topics.STOP:
            self.running = False
            self._zero_all()
        elif msg.data == topics.START:
            self.running = True
        else:
            self.get_logger().warning(f"unknown swarm command {msg.data!r} (expected 'start' or 'stop')")

    def _on_timer(self) -> None:
        now = time.monotonic()
        if self.tick is None and not self.silence_reported and now - self.t_start > SILENCE_REPORT_S:
            self.silence_reported = True
            self._report_silence()
        if self.tick is not None and self.running and now - self.tick_time >= self.answer_wait:
            late = np.flatnonzero(~self.answered & (self.pose_stamp >= 0))
            if late.size:
                self._answer(late)  # stale pose: still the best information this robot has
            self.answered[:] = True
            self._answer_poll(force=True)  # stale poses: still the best information the controller can get
        if self.drive:
            stale = np.flatnonzero((now - self.pose_time > self.stale_timeout) & ~self.stopped_sent)
            for i in stale:
                self.cmd_pubs[i].publish(Twist())
                self.stopped_sent[i] = True

    def _report_silence(self) -> None:
        """No tick after SILENCE_REPORT_S: say what this host is matched with, so a lost host names its cause."""
        pose_pubs = sum(sub.get_publisher_count() for sub in self.pose_subs)
        readers = (self.goals_pub.get_subscription_count() if self.goals_pub is not None
                   else min(pub.get_subscription_count() for pub in self.goal_pubs))
        self.get_logger().warning(f"no tick after {SILENCE_REPORT_S:.0f} s; matched: "
                                  f"{self.tick_sub.get_publisher_count()} tick publisher(s), "
                                  f"{pose_pubs} pose publisher(s), {readers} reader(s) of the answers; "
                                  f"poses so far for {int((self.pose_stamp >= 0).sum())}/{len(self.names)} robots")

    # --- outputs ------------------------------------------------------------------------------
    def _answer(self, idx: np.ndarray) -> None:
        tick = self.tick
        assert tick is not None  # answers are only given for a received tick
        if self.continuous is not None:  # greedy a_l = pi_l(s_g, s_l) at the robot's x; the answer is a_l
            policy, frame = self.continuous.policy, self.continuous.frame
            x = self.pose_xy[idx, 0]
            goals = policy.local_actions(deploy.decode_s_g(policy.env, tick.s_g), frame.s_of(x))
            self.target_x[idx] = frame.target_x(x, goals)
        else:
            s_l = self.floor.local_state(self.zones.zone_of(self.pose_xy[idx]))
            a_l = self.pi_l.sample(self.rng, np.array([tick.s_g]), s_l[None, :])[0]
            goals = self.floor.goal_zone(s_l, a_l)
        self.goal[idx] = goals
        self.answered[idx] = True
        if self.goals_pub is not None:
            self.goals_pub.publish(topics.goals_msg(tick.step, self.batch_offset + idx, goals))
        else:
            self.sent_step[idx] = tick.step
            for i, goal in zip(idx.tolist(), goals.tolist(), strict=True):
                self.goal_pubs[i].publish(topics.answer_msg(tick.step, goal, "goal_zone"))
        if self.drive:
            self._drive(idx)  # head for the new goal now, not at the next pose

    def _resend(self, tick: topics.Tick) -> None:
        """A repeated tick for the step answered: the per-robot answers already given for it, once more (the
        batch answers are transient-local, so a reader that matched late has them)."""
        for i in np.flatnonzero(self.sent_step == tick.step).tolist():
            self.goal_pubs[i].publish(topics.answer_msg(tick.step, int(self.goal[i]), "goal_zone"))

    def _drive(self, idx: np.ndarray) -> None:
        """Publish the go-to-goal cmd_vel (altmarl_ros.physics.control) of the hosted robots `idx` that have a goal."""
        if not self.running:
            return
        idx = idx[self.goal[idx] >= 0]
        if not idx.size:
            return
        if self.continuous is not None:  # along the corridor, forward or backward
            cmd = corridor_drive(self.pose_xy[idx], self.pose_yaw[idx], self.target_x[idx],
                                 max_speed=self.max_speed, max_turn=self.max_turn, tolerance=self.goal_tolerance)
        else:
            target = self.zones.goal_points(self.goal[idx], self.slot[idx], self.goal_spacing)
            cmd = go_to_goal(self.pose_xy[idx], self.pose_yaw[idx], target,
                             max_speed=self.max_speed, max_turn=self.max_turn, tolerance=self.goal_tolerance)
        for i, (v, w) in zip(idx.tolist(), cmd.tolist(), strict=True):
            msg = Twist()
            msg.linear.x, msg.angular.z = v, w
            self.cmd_pubs[i].publish(msg)

    def _zero_all(self) -> None:
        for pub in self.cmd_pubs:
            pub.publish(Twist())

    def close(self) -> None:
        """Hold position on shutdown: a zero Twist for every hosted robot, delivered before the node goes."""
        if self.drive:
            self._zero_all()
            deadline = time.monotonic() + 1.0
            for pub in self.cmd_pubs:  # reliable: wait (bounded) until the bases have acknowledged the stop
                pub.wait_for_all_acked(Duration(seconds=max(0.0, deadline - time.monotonic())))


def main(args: list[str] | None = None) -> int:
    return run_node(RobotNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
