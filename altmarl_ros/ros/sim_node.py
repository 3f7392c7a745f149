"""sim_node: the embedded simulator, playing Gazebo's role for the swarm.

Each decision step t it publishes every robot's pose (stamped with the step's time), the global
state and a tick [t, s_g, stamp]; it collects the robots' zone goals and the controller's zone
command for step t; then it hands the joint action to the simulator backend chosen by `mode`
(`altmarl_ros.ros.backends`: `model` draws the next zones exactly from the game's P_g and P_l, so the
closed loop can be compared with the NumPy evaluation; `kinematic` integrates unicycles from their
cmd_vel at `physics_rate` and derives zones from positions; a continuous policy artifact selects the corridor
backends of `backends.corridor`, whose answers are local actions). This node keeps only the ROS side:
topics, the clock, lockstep, drops and records. Decision steps of driving backends are every
`step_period` s of simulated time.

`lockstep: true`: a step completes when every live robot and the controller have answered, or after
`step_timeout` s; missing answers count as dropped and apply 'stay' (robots) or the last command
(controller). A participant that misses `max_missed` steps in a row is no longer waited for until it
answers again. Step accounting is by set, not by count: at a step's start the live robots are
*owed* an answer; each robot's first answer for the step is applied and clears it from the owed
set; the step completes when the owed set is empty (so an answer from a robot not waited for can
never stand in for a live one). Every other answer is counted, never applied: `late_answers` (for
an earlier step, whenever heard, also between steps), `duplicate_answers` (a second answer for the
same step), `bad_answers` (out of range, reached by no local action, or for a step not announced yet).
Counters go into the next recorded step's row; the summary's totals include what was heard after
the last row. The first step is a handshake (every node answers once, within `startup_timeout`), whose
tick is repeated every RETICK_S s while answers are owed (see `_retick`).
This accounting is `step_ledger.StepLedger` (ROS-free, unit-tested without rclpy); the run's phase
is `step_ledger.Phase`; the parameters are read once into the frozen `SimParams`.
`lockstep: false`: steps run in real time every `step_period` s.

Publishes /swarm/metrics per step, writes the per-step record to `record_path` (atomically) at the
end, and optionally records a rosbag2 (mcap) at `bag_path`.
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Float64MultiArray, Int32, Int32MultiArray, Int64MultiArray, String

from altmarl_ros import contract, exitcodes
from altmarl_ros.ros import topics
from altmarl_ros.ros.backends import backend_class, continuous_backend_class
from altmarl_ros.ros.clash import RivalWatch
from altmarl_ros.ros.common import declare, resolve_continuous, resolve_game, run_node, write_json
from altmarl_ros.ros.markers import MarkerPublisher
from altmarl_ros.ros.sim_params import SimParams
from altmarl_ros.ros.sim_summary import sim_summary
from altmarl_ros.ros.step_ledger import ClosedStep, ControlCycles, Phase, StepLedger, Verdict

NODE_NAME = contract.SIM_NODE
RETICK_S = 1.0  # s between repeats of the first step's tick while an answer to it is owed


class SimNode(Node):
    def __init__(self, node_name: str = NODE_NAME, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.params = p = SimParams.read(self, NODE_NAME)
        self.names = list(p.robots)
        self.n = n = len(self.names)
        param = functools.partial(declare, self)
        continuous = None if p.game else resolve_continuous(p.policy_path, p.zones_path)
        if continuous is not None:  # a continuous policy (issue 17): its warehouse on a corridor
            self.zones, self.game_spec = continuous.zones, continuous.policy.game_spec
            self.backend = continuous_backend_class(p.mode)(continuous.policy, self.zones, n, param)
            self.floor = self.backend.answers  # the answered values are the local actions themselves
            self.n_global_actions, game_name = continuous.policy.env.n_ga, "continuous_warehouse"
        else:
            self.zones, game, self.game_spec, self.floor = resolve_game(p.policy_path, p.zones_path, p.game,
                                                                       p.game_options, NODE_NAME)
            self.backend = backend_class(p.mode)(game, self.zones, n, param, self.floor)
            self.n_global_actions, game_name = game.n_global_actions, game.name
        self.drives = self.backend.drives
        self.snap = self.backend.reset(np.random.default_rng(p.seed))
        self.cmd = np.zeros((n, 2))  # latest (v, w) per robot
        self.cmd_time = np.full(n, -np.inf)
        # Lockstep control cycles (backends with lockstep_control, e.g. physics): after each pose publication
        # the world waits until every driving robot has answered with a cmd_vel (or step_timeout).
        lockstep_control = self.drives and p.lockstep and getattr(self.backend, "lockstep_control", False)
        self.cycles = ControlCycles(n, p.max_missed) if lockstep_control else None
        self.period_ns = round((p.step_period if p.step_period > 0 else 0.1) * 1e9)
        self.sim_ns = 0
        self.phase = Phase.WAITING
        self.ledger = StepLedger(n, p.max_missed)
        self.step_t0 = self.next_begin = 0.0  # wall time the open step began, the next may begin
        self.tick, self.tick_sent, self.reticks = Int64MultiArray(), 0.0, 0  # the open step's tick, see _retick
        self.ctrl_rtt = math.nan
        self.record: list[dict[str, float]] = []
        self.started_wall = self.finished_wall = 0.0  # end of the first step, of the last step
        self.started_sim_ns = self.finished_sim_ns = 0  # simulated time at those two moments
        self.t_start = time.monotonic()
        self.last_ready_check = 0.0
        self.exit_code = 0
        self.lost: dict[str, list[str]] = {}  # host node -> robots that never answered the first step
        self.warned: set[str] = set()
        self.bag = None
        if p.bag_path:
            from altmarl_ros.ros.bag import BagRecorder
            self.bag = BagRecorder(p.bag_path)
        self._create_interfaces()
        self._publish_poses()  # latched: late joiners see where the robots are before the first step
        self.get_logger().info(f"{n} robots, mode={p.mode}, lockstep={p.lockstep}, game={game_name}, "
                               f"steps={p.steps or 'unlimited'}")

    def _create_interfaces(self) -> None:
        self.pose_topics = [topics.robot_topic(r, topics.POSE) for r in self.names]
        # Per-robot poses are built and published only for topics with readers (rotating controller: <= 2k);
        # a new reader gets the current pose the moment it matches (the `matched` event), so what a
        # transient-local subscription receives on match is never older than the step in progress.
        self.readers = np.zeros(self.n, dtype=np.int64)
        self.pose_pubs = [self.create_publisher(PoseStamped, t, topics.POSE_QOS, event_callbacks=self._on_match(j))
                          for j, t in enumerate(self.pose_topics)]
        self.table_pub = self.create_publisher(Float64MultiArray, topics.POSE_TABLE, topics.LATCHED_QOS)
        self.goal_subs = [self.create_subscription(Int32MultiArray, topics.robot_topic(r, topics.ZONE_GOAL),
                                                   lambda msg, j=j: self._on_goal(j, msg), topics.ANSWER_QOS)
                          for j, r in enumerate(self.names)]
        self.cmd_subs = []
        if self.drives:
            self.cmd_subs = [self.create_subscription(Twist, topics.robot_topic(r, topics.CMD_VEL),
                                                      lambda msg, j=j: self._on_cmd_vel(j, msg), topics.CMD_VEL_QOS)
                             for j, r in enumerate(self.names)]
        self.create_subscription(Int32MultiArray, topics.ZONE_GOALS, self._on_goals, topics.GOALS_QOS)
        self.command_sub = self.create_subscription(Int32MultiArray, topics.ZONE_COMMAND, self._on_command,
                                                    topics.COMMAND_READER_QOS)
        self.create_subscription(String, topics.SWARM_COMMAND, self._on_swarm_command, topics.LATCHED_QOS)
        self.tick_pub = self.create_publisher(Int64MultiArray, topics.TICK, topics.LATCHED_QOS)
        self.state_pub = self.create_publisher(Int32, topics.GLOBAL_STATE, topics.LATCHED_QOS)
        self.metrics_pub = self.create_publisher(Float64MultiArray, topics.METRICS, topics.METRICS_QOS)
        self.clock_pub = self.create_publisher(Clock, topics.CLOCK, topics.CLOCK_QOS)
        self.markers = MarkerPublisher(self, self.zones, declare(self, "marker_rate", 2.0, "Hz of /swarm/markers "
                                       "(RViz/Foxglove view; built only while watched or recorded); 0 = off",
                                       low=0.0, high=100.0))
        self.rival = RivalWatch(self)
        self.create_timer(0.002, self._loop)
        if self.drives and self.cycles is None:
            self.create_timer(1.0 / self.params.physics_rate, self._physics)
        self.n_entities = len(self.pose_pubs) + len(self.goal_subs) + len(self.cmd_subs) + 8

    @property
    def done(self) -> bool:
        """The run is over (the node's spin loop ends)."""
        return self.phase is Phase.DONE

    # --- answers ------------------------------------------------------------------------------
    def _warn_once(self, key: str, text: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            self.get_logger().warning(text)

    def _on_goal(self, j: int, msg: Int32MultiArray) -> None:
        try:
            answer = topics.parse_answer(msg)
        except ValueError as exc:
            self._warn_once(f"goal{j}", f"{self.names[j]}: {exc}")
            return
        if self.bag is not None:
            self.bag.write(topics.robot_topic(self.names[j], topics.ZONE_GOAL), msg)
        self._take_goals(answer.step, np.array([j]), np.array([answer.value]))

    def _on_goals(self, msg: Int32MultiArray) -> None:
        try:
            batch = topics.parse_goals(msg)
        except ValueError as exc:
            self._warn_once("goals", f"{topics.ZONE_GOALS}: {exc}")
            return
        if self.bag is not None:
            self.bag.write(topics.ZONE_GOALS, msg)
        known = (batch.indices >= 0) & (batch.indices < self.n)
        if not known.all():
            self._warn_once("goals_index", f"{topics.ZONE_GOALS}: robot indices outside [0, {self.n}) ignored "
                            f"(e.g. {int(batch.indices[~known][0])})")
        self._take_goals(batch.step, batch.indices[known], batch.goals[known])

    def _take_goals(self, step: int, robots: np.ndarray, goals: np.ndarray) -> None:
        """Answers [step] of `robots` (registry indices), through the ledger."""
        if self._verdict(self.ledger.take_goals(step, robots, goals), step, "zone goals"):
            self._maybe_finish()

    def _verdict(self, verdict: Verdict, step: int, what: str) -> bool:
        """Whether the answer was applied; warn (once) about one for a step not announced yet."""
        if verdict is Verdict.NOT_ANNOUNCED:
            self._warn_once(f"future_{what}", f"{what} for step {step}, which was not announced yet (last "
                            f"announced: {self.ledger.announced}); ignored")
        return verdict is Verdict.APPLIED

    def _on_command(self, msg: Int32MultiArray) -> None:
        try:
            answer = topics.parse_answer(msg)
        except ValueError as exc:
            self._warn_once("command", f"zone command: {exc}")
            return
        if self.bag is not None:
            self.bag.write(topics.ZONE_COMMAND, msg)
        verdict = self.ledger.take_command(answer.step, answer.value, self.n_global_actions)
        if verdict is Verdict.OUT_OF_RANGE:
            self._warn_once(f"a_g{answer.value}", f"zone command {answer.value} out of range "
                            f"[0, {self.n_global_actions}); holding the last command")
        if self._verdict(verdict, answer.step, "zone command"):
            self.ctrl_rtt = 1e3 * (time.monotonic() - self.step_t0)
            self._maybe_finish()

    def _on_cmd_vel(self, j: int, msg: Twist) -> None:
        v, w = msg.linear.x, msg.angular.z
        if not (math.isfinite(v) and math.isfinite(w)):
            self._warn_once(f"cmd{j}", f"{self.names[j]}: cmd_vel has NaN/inf; treated as zero")
            v = w = 0.0
        self.cmd[j], self.cmd_time[j] = (v, w), time.monotonic()
        if self.cycles is not None and self.cycles.take_cmd(j) and not self.ledger.open and self.phase is Phase.RUNNING:
            self._physics()  # every driving robot answered: the next control cycle runs now

    def _on_swarm_command(self, msg: String) -> None:
        if msg.data == topics.STOP and self.phase in (Phase.RUNNING, Phase.WAITING):
            self.phase = Phase.PAUSED
            self.get_logger().info("stopped by /swarm/command")
        elif msg.data == topics.START and self.phase in (Phase.PAUSED, Phase.WAITING):
            self.phase = Phase.RUNNING
            self.get_logger().info("started by /swarm/command")
        elif msg.data not in (topics.START, topics.STOP):
            self._warn_once(f"swarm{msg.data}", f"unknown swarm command {msg.data!r}")

    # --- the step machine ---------------------------------------------------------------------
    def _ready(self) -> bool:
        now = time.monotonic()
        if now - self.last_ready_check < 0.2:
            return False
        self.last_ready_check = now
        unmatched = sum(sub.get_publisher_count() == 0 for sub in self.goal_subs)
        no_controller = self.command_sub.get_publisher_count() == 0
        if unmatched == 0 and not no_controller:
            return True
        if now - self.t_start > self.params.startup_timeout:
            self.get_logger().warning(f"starting after {self.params.startup_timeout:.0f} s with {unmatched} robots "
                                      f"unmatched{' and no controller' if no_controller else ''}")
            return True
        return False

    def _loop(self) -> None:
        now, p = time.monotonic(), self.params
        if self.cycles is not None and self.phase is Phase.RUNNING and not self.ledger.open and \
                self.cycles.due(now, p.step_timeout):
            self.cycles.drop_owed()
            self._physics()
            return
        young = self.phase is Phase.WAITING or not self.record or now - self.started_wall < RivalWatch.SETTLE
        if self.rival.check(now, young=young):  # another swarm in the domain: the newcomer refuses
            self.exit_code, self.phase = exitcodes.DOMAIN_CLASH, Phase.DONE
            return
        if self.phase is Phase.WAITING:
            if p.autostart and self._ready():
                self.phase = Phase.RUNNING
                self.get_logger().info("all nodes matched; first step: waiting for every robot and the controller "
                                       "to answer")
            return
        if self.ledger.open:
            if self.ledger.step == 0:  # the handshake: every host must answer once, within the startup budget
                limit = max(p.step_timeout, self.t_start + p.startup_timeout - self.step_t0)
                if now - self.tick_sent >= RETICK_S:
                    self._retick(now)
            else:
                limit = p.step_timeout if p.lockstep else (math.inf if self.drives else p.step_period)
            if now - self.step_t0 >= limit:
                if self.ledger.step == 0 and not self._handshake_failed():
                    return
                self._finish_step()
        elif self.phase is Phase.RUNNING and not self.drives and now >= self.next_begin:
            self._begin_step()  # driving backends' steps begin at the physics clock's step boundaries

    def _begin_step(self) -> None:
        self.snap = self.backend.observe()
        self.sim_ns = self.sim_ns if self.drives else self.ledger.step * self.period_ns
        self._publish_poses()
        self.state_pub.publish(Int32(data=self.snap.s_g))
        self.tick = tick = topics.tick_msg(topics.Tick(self.ledger.step, self.snap.s_g, self.sim_ns))
        self.tick_pub.publish(tick)
        self.tick_sent = time.monotonic()
        if self.bag is not None:
            self.bag.write(topics.TICK, tick)
            self.bag.write(topics.GLOBAL_STATE, Int32(data=self.snap.s_g))
        self.ledger.begin()
        self.step_t0, self.ctrl_rtt = time.monotonic(), math.nan
        self.markers.flush()  # the last step's view, built while the nodes answer this one
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if (self.params.lockstep or self.ledger.step == 0) and self.ledger.complete():
            self._finish_step()

    def _retick(self, now: float) -> None:
        """The first step's tick again: discovery is per side, so an answer written before its writer matched this
        node's reader is lost (volatile), or a tick missed. The nodes answer a repeated tick with the answer they
        gave; those second answers were invited (`StepLedger.ask_again`). Not written to the bag again."""
        self.tick_sent, self.reticks = now, self.reticks + 1
        self.ledger.ask_again()
        self.tick_pub.publish(self.tick)
        owed = f"{int(self.ledger.owed.sum())} robot(s) and {int(self.ledger.controller_owed)} controller"
        self.get_logger().info(f"first step: {owed} owe an answer; its tick is repeated every {RETICK_S} s", once=True)

    def _hosts(self, robots: np.ndarray) -> dict[str, list[str]]:
        """Group robots by the node that publishes their zone_goal (their host), from the ROS graph."""
        hosts: dict[str, list[str]] = {}
        for j in robots.tolist():
            infos = self.get_publishers_info_by_topic(topics.robot_topic(self.names[j], topics.ZONE_GOAL))
            host = ",".join(sorted({f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in infos})) or \
                "no node publishes its zone_goal"
            hosts.setdefault(host, []).append(self.names[j])
        return hosts

    def _handshake_failed(self) -> bool:
        """The first step timed out. Name the hosts whose robots never answered; stop (exit 3) unless
        `tolerate_lost_robots`, in which case they are no longer waited for. Returns whether to go on."""
        self.lost = self._hosts(np.flatnonzero(self.ledger.owed))
        described = "; ".join(f"{host}: {len(robots)} robot(s) ({robots[0]}..{robots[-1]})"
                              for host, robots in self.lost.items())
        if self.ledger.controller_owed:  # the controller is not a robot host: said as what it is
            self.lost["controller"] = [f"no zone command on {topics.ZONE_COMMAND}"]
            controller = f"the controller (no zone command on {topics.ZONE_COMMAND})"
            described = f"{described}; {controller}" if described else controller
        elapsed = time.monotonic() - self.t_start
        if not self.params.tolerate_lost_robots:
            self.get_logger().error(f"never answered the first step within {elapsed:.0f} s (startup_timeout): "
                                    f"{described}; stopping (set tolerate_lost_robots:=true to run without them)")
            self.exit_code = 3
            self.phase = Phase.DONE
            self.ledger.abort()
            return False
        self.get_logger().warning(f"never answered the first step within {elapsed:.0f} s: {described}; running "
                                  "without them (tolerate_lost_robots)")
        self.ledger.give_up_owed()
        return True

    def _finish_step(self) -> None:
        ledger, s_g, s_l = self.ledger, self.snap.s_g, self.snap.s_l
        if self.cycles is not None:  # the answers' cmd_vels for this step's poses may still be on their way
            self.cycles.after_step(ledger.answered)
        closed = ledger.close(s_g)
        a_l = self.floor.action_from_goal(s_l, ledger.goals)
        bad = ledger.answered & (a_l < 0)
        if bad.any():
            ledger.count_bad(int(bad.sum()))
            self._warn_once("badgoal", f"{int(bad.sum())} zone goals were out of range or reached by no local action "
                            f"(e.g. {self.names[int(np.flatnonzero(bad)[0])]}: goal "
                            f"{ledger.goals[np.flatnonzero(bad)[0]]}); applying 'stay'")
        a_l = np.where(a_l < 0, self.floor.stay_action[s_l], a_l)
        result = self.backend.apply(closed.a_g, a_l)
        step_seconds = time.monotonic() - self.step_t0
        counts = ledger.take_counts()
        row = {"step": closed.step, "s_g": s_g, "a_g": closed.a_g, "reward": result.reward,
               "r_g": result.r_g, "r_l_mean": result.r_l_mean,
               "dropped_robots": int(closed.missing.sum()), "controller_dropped": int(closed.controller_missing),
               "bad_answers": counts.bad, "late_answers": counts.late, "duplicate_answers": counts.duplicate,
               "live_robots": int(ledger.live().sum()),
               "step_seconds": step_seconds, "controller_rtt_ms": self.ctrl_rtt}
        row.update(self.backend.step_metrics())
        self.record.append(row)
        metrics = topics.metrics_msg(row)
        self.metrics_pub.publish(metrics)
        if self.bag is not None:
            self.bag.write(topics.METRICS, metrics)
        active, goal_zones = self.backend.marker_view(self.snap, ledger.goals)
        self.markers.stage(time.monotonic(), s_g=active, a_g=closed.a_g, xy=self.snap.xy, zone=s_l, goal=goal_zones,
                           stamp=topics.ns_to_stamp(self.sim_ns), bag=self.bag)  # built after the next tick
        self._step_finished(closed, step_seconds)

    def _step_finished(self, closed: ClosedStep, step_seconds: float) -> None:
        """After step `closed.step`'s row: note the run's clocks, stop after the last step, else schedule."""
        p = self.params
        self.finished_wall, self.finished_sim_ns = time.monotonic(), self.sim_ns
        if closed.step == 0:
            self.started_wall = self.finished_wall  # steps/s counts the steps after the handshake
            self.started_sim_ns = self.sim_ns
            self.get_logger().info(f"first step answered ({int(self.ledger.answered.sum())}/{self.n} robots, "
                                   f"controller {'no' if closed.controller_missing else 'yes'}) after "
                                   f"{step_seconds:.1f} s; stepping")
        if p.steps and self.ledger.step >= p.steps:
            self.phase = Phase.DONE
            self.get_logger().info(f"finished {self.ledger.step} steps")
            return
        period = p.step_period if (not self.drives or not p.lockstep) else 0.0
        self.next_begin = self.step_t0 + period if p.lockstep else time.monotonic()

    # --- the physics clock of driving backends ------------------------------------------------
    def _physics(self) -> None:
        p = self.params
        if self.phase is not Phase.RUNNING or (self.ledger.open and p.lockstep):
            return  # lockstep: the world waits for the decision
        dt = 1.0 / p.physics_rate
        fresh = (time.monotonic() - self.cmd_time) <= p.cmd_timeout
        self.backend.integrate(np.where(fresh[:, None], self.cmd, 0.0), dt)  # a stale cmd_vel is a stop
        dt_ns = round(dt * 1e9)
        self.sim_ns += dt_ns
        boundary = self.sim_ns // self.period_ns > (self.sim_ns - dt_ns) // self.period_ns
        if boundary:
            if self.ledger.open:
                self._finish_step()  # free-running: the step's time is up
            if self.phase is Phase.RUNNING:
                self._begin_step()
        else:
            self._publish_poses()

    def _publish_poses(self) -> None:
        """The pose table (every robot, for the robot hosts), each read robot's PoseStamped, and /clock."""
        xy, yaw = self.backend.poses()
        self.table_pub.publish(topics.pose_table_msg(xy, yaw, self.sim_ns))
        everyone = self.bag is not None  # a bag records every robot's pose topic
        for j in range(self.n) if everyone else np.flatnonzero(self.readers > 0).tolist():
            self._publish_pose(j, xy, yaw)
        self.clock_pub.publish(Clock(clock=topics.ns_to_stamp(self.sim_ns)))
        if self.cycles is not None:
            self.cycles.new_cycle(time.monotonic())

    def _publish_pose(self, j: int, xy: np.ndarray, yaw: np.ndarray) -> None:
        msg = topics.pose_msg(xy[j, 0], xy[j, 1], yaw[j], self.sim_ns, self.zones.frame_id)
        self.pose_pubs[j].publish(msg)
        if self.bag is not None:
            self.bag.write(self.pose_topics[j], msg)

    def _on_match(self, j: int) -> PublisherEventCallbacks:
        return PublisherEventCallbacks(matched=functools.partial(self._on_pose_matched, j))

    def _on_pose_matched(self, j: int, info) -> None:
        self.readers[j] = info.current_count
        if info.current_count_change > 0:
            xy, yaw = self.backend.poses()
            self._publish_pose(j, xy, yaw)  # the new reader's transient-local sample is the current pose

    # --- results ------------------------------------------------------------------------------
    def summary(self) -> dict:
        return sim_summary(self)

    def close(self) -> None:
        self.markers.flush()  # the last step's view
        if self.bag is not None:
            self.bag.close()
            self.get_logger().info(f"bag: {self.bag.count} messages in {self.bag.path}")
            self.bag = None
        if self.params.record_path:
            write_json(self.params.record_path, self.summary())


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
