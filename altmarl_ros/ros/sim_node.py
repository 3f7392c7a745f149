"""sim_node: the embedded simulator, playing Gazebo's role for the swarm.

Each decision step t it publishes every robot's pose (stamped with the step's time), the global
state and a tick [t, s_g, stamp]; it collects the robots' zone goals and the controller's zone
command for step t; then it hands the joint action to the simulator backend chosen by `mode`
(`altmarl_ros.ros.backends`: `model` draws the next zones exactly from the game's P_g and P_l, so the
closed loop can be compared with the NumPy evaluation; `kinematic` integrates unicycles from their
cmd_vel at `physics_rate` and derives zones from positions). This node keeps only the ROS side:
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
the last row. `lockstep: false`: steps run in real time every `step_period` s.

Publishes /swarm/metrics per step, writes the per-step record to `record_path` (atomically) at the
end, and optionally records a rosbag2 (mcap) at `bag_path`.
"""

from __future__ import annotations

import functools
import json
import math
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Float64MultiArray, Int32, Int32MultiArray, Int64MultiArray, String

from altmarl_ros import contract
from altmarl_ros.marl.games import floor_from_spec, make_game
from altmarl_ros.ros import topics
from altmarl_ros.ros.backends import MODES, backend_class
from altmarl_ros.ros.common import (
    ParameterError,
    check_floor,
    declare,
    declare_string_list,
    resolve_policy,
    resolve_zones,
    robot_list,
    run_node,
    write_json,
)

NODE_NAME = contract.SIM_NODE


class SimNode(Node):
    def __init__(self, node_name: str = NODE_NAME, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        robots = declare_string_list(self, "robots", "robot registry (names); empty = robot_0..n_robots-1")
        n_robots = declare(self, "n_robots", 0, "number of robots when 'robots' is empty", low=0)
        self.mode = declare(self, "mode", "model", "simulator backend (altmarl_ros.ros.backends)", choices=MODES)
        self.lockstep = declare(self, "lockstep", True, "wait for every live answer (else real-time steps)")
        self.step_period = declare(self, "step_period", 0.1, "s per step (free-running / kinematic), or minimum "
                                   "s per step in model lockstep (0 = as fast as answers come)", low=0.0, high=3600.0)
        self.step_timeout = declare(self, "step_timeout", 1.0, "s after which missing answers are dropped",
                                    low=0.001, high=3600.0)
        self.max_steps = declare(self, "steps", 0, "stop after this many steps (0 = until stopped)", low=0)
        seed = declare(self, "seed", 0, "seed of the simulator's randomness", low=0)
        self.record_path = declare(self, "record_path", "", "write the per-step record (JSON) here; '' = none")
        bag_path = declare(self, "bag_path", "", "record a rosbag2 (mcap) directory here; '' = none")
        self.autostart = declare(self, "autostart", True, "start once all nodes are matched (else wait for "
                                 "'start' on /swarm/command)")
        self.startup_timeout = declare(self, "startup_timeout", 60.0, "s for every node to match and to answer "
                                       "the first step", low=0.0, high=3600.0)
        self.tolerate_lost = declare(self, "tolerate_lost_robots", False, "robots that never answer the first "
                                     "step: false = stop with an error naming their hosts; true = run without them")
        self.max_missed = declare(self, "max_missed", 3, "missed steps after which a node is not waited for", low=1)
        policy_path = declare(self, "policy_path", "", "policy artifact whose game is simulated (when 'game' is '')")
        game_name = declare(self, "game", "", "game registry name; '' = the policy artifact's game")
        game_options = declare(self, "game_options", "{}", "JSON object of game overrides (with 'game')")
        zones_path = declare(self, "zones_path", "", "zones YAML; '' = share/config/zones.yaml")
        self.physics_rate = declare(self, "physics_rate", 20.0, "Hz, kinematic integration rate", low=1.0,
                                    high=1000.0)
        self.cmd_timeout = declare(self, "cmd_timeout", 0.5, "s after which a cmd_vel is stale -> zero",
                                   low=0.0, high=60.0)
        self.names = robot_list(self, robots, n_robots)
        self.n = n = len(self.names)
        self.zones = resolve_zones(zones_path)
        if game_name:
            try:
                options = json.loads(game_options)
            except json.JSONDecodeError as exc:
                raise ParameterError(f"{NODE_NAME}: parameter 'game_options' is not JSON: {exc}") from exc
            self.game = make_game(game_name, **options)
            self.game_spec = {"name": game_name, "options": options}
            floor = floor_from_spec(self.game_spec, self.game)
        else:
            artifact = resolve_policy(policy_path, n_zones=self.zones.n_zones)
            self.game, self.game_spec, floor = artifact.game, artifact.game_spec, artifact.floor
        # what local states and actions mean on the floor (zones of states, goal zones of actions)
        self.floor = check_floor(floor, self.zones.n_zones, f"{NODE_NAME}: game {self.game.name}")
        if not self.lockstep and self.step_period <= 0:
            raise ParameterError(f"{NODE_NAME}: parameter 'step_period' must be > 0 when lockstep is false")
        self.backend = backend_class(self.mode)(self.game, self.zones, n,
                                                lambda *a, **kw: declare(self, *a, **kw), self.floor)
        self.drives = self.backend.drives
        self.snap = self.backend.reset(np.random.default_rng(seed))
        self.cmd = np.zeros((n, 2))  # latest (v, w) per robot
        self.cmd_time = np.full(n, -np.inf)
        # Lockstep control cycles (backends with lockstep_control, e.g. physics): after each pose publication
        # the world waits until every driving robot has answered with a cmd_vel (or step_timeout).
        self.cycles = self.drives and self.lockstep and getattr(self.backend, "lockstep_control", False)
        self.drivers = np.zeros(n, dtype=bool)  # robots that answered a decision (their node drives them)
        self.cmd_heard = np.zeros(n, dtype=bool)  # cmd_vel heard since the last pose publication
        self.cmd_owed = np.zeros(n, dtype=bool)
        self.cmd_misses = np.zeros(n, dtype=np.int64)
        self.cycle_t0 = 0.0
        self.cmd_dropped = 0
        self.period_ns = round((self.step_period if self.step_period > 0 else 0.1) * 1e9)
        self.sim_ns = 0
        # Step bookkeeping.
        self.phase = "waiting"  # waiting -> running <-> paused -> done
        self.step = 0
        self.in_step = False
        self.step_t0 = 0.0
        self.next_begin = 0.0
        self.goals = np.full(n, -1, dtype=np.int64)
        self.answered = np.zeros(n, dtype=bool)  # robots whose answer for the current step was applied
        self.owed = np.zeros(n, dtype=bool)  # live robots still owed an answer for the current step
        self.misses = np.zeros(n, dtype=np.int64)
        self.ctrl_misses = 0
        self.a_g: int | None = None
        self.controller_owed = False
        self.last_a_g: int | None = None
        self.ctrl_rtt = math.nan
        self.late = self.bad = self.duplicate = 0  # heard since the last recorded row
        self.record: list[dict[str, float]] = []
        self.started_wall = self.finished_wall = 0.0  # end of the first step, of the last step
        self.started_sim_ns = self.finished_sim_ns = 0  # simulated time at those two moments
        self.t_start = time.monotonic()
        self.last_ready_check = 0.0
        self.done = False
        self.exit_code = 0
        self.lost: dict[str, list[str]] = {}  # host node -> robots that never answered the first step
        self.warned: set[str] = set()
        self.bag = None
        if bag_path:
            from altmarl_ros.ros.bag import BagRecorder
            self.bag = BagRecorder(bag_path)
        # Interfaces.
        self.pose_topics = [topics.robot_topic(r, topics.POSE) for r in self.names]
        # Per-robot poses are built and published only for topics with readers (rotating controller: <= 2k);
        # a new reader gets the current pose the moment it matches (the `matched` event), so what a
        # transient-local subscription receives on match is never older than the step in progress.
        self.readers = np.zeros(n, dtype=np.int64)
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
                                                    topics.ANSWER_QOS)
        self.create_subscription(String, topics.SWARM_COMMAND, self._on_swarm_command, topics.LATCHED_QOS)
        self.tick_pub = self.create_publisher(Int64MultiArray, topics.TICK, topics.LATCHED_QOS)
        self.state_pub = self.create_publisher(Int32, topics.GLOBAL_STATE, topics.LATCHED_QOS)
        self.metrics_pub = self.create_publisher(Float64MultiArray, topics.METRICS, topics.METRICS_QOS)
        self.clock_pub = self.create_publisher(Clock, topics.CLOCK, topics.CLOCK_QOS)
        self.create_timer(0.002, self._loop)
        if self.drives and not self.cycles:
            self.create_timer(1.0 / self.physics_rate, self._physics)
        self.n_entities = len(self.pose_pubs) + len(self.goal_subs) + len(self.cmd_subs) + 8
        self._publish_poses()  # latched: late joiners see where the robots are before the first step
        self.get_logger().info(f"{n} robots, mode={self.mode}, lockstep={self.lockstep}, game={self.game.name}, "
                               f"steps={self.max_steps or 'unlimited'}")

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
        """Answers [step] of `robots` (registry indices): apply each robot's first answer for the current step."""
        self.misses[robots] = 0  # heard from: alive, even if late (waited for again from the next step)
        if not self._current(step, robots.size, "zone goals"):
            return
        robots, first = np.unique(robots, return_index=True)  # np.unique sorts; `first` keeps the first goal
        self.duplicate += goals.size - robots.size
        goals = goals[first]
        new = ~self.answered[robots]
        self.duplicate += int((~new).sum())
        robots, goals = robots[new], goals[new]
        self.answered[robots] = True
        self.goals[robots] = goals
        self.owed[robots] = False
        self._maybe_finish()

    def _current(self, step: int, count: int, what: str) -> bool:
        """Whether answers for `step` belong to the step in progress; count the others (late or bad)."""
        if self.in_step and step == self.step:
            return True
        announced = self.step if self.in_step else self.step - 1  # the last step whose tick was published
        if step <= announced:
            self.late += count
        else:
            self.bad += count
            self._warn_once(f"future_{what}", f"{what} for step {step}, which was not announced yet (last "
                            f"announced: {announced}); ignored")
        return False

    def _on_command(self, msg: Int32MultiArray) -> None:
        try:
            answer = topics.parse_answer(msg)
        except ValueError as exc:
            self._warn_once("command", f"zone command: {exc}")
            return
        if self.bag is not None:
            self.bag.write(topics.ZONE_COMMAND, msg)
        self.ctrl_misses = 0
        if not self._current(answer.step, 1, "zone command"):
            return
        if self.a_g is not None:
            self.duplicate += 1
            return
        if not 0 <= answer.value < self.game.n_global_actions:
            self._warn_once(f"a_g{answer.value}", f"zone command {answer.value} out of range "
                            f"[0, {self.game.n_global_actions}); holding the last command")
            self.bad += 1
            return
        self.a_g = answer.value
        self.controller_owed = False
        self.ctrl_rtt = 1e3 * (time.monotonic() - self.step_t0)
        self._maybe_finish()

    def _on_cmd_vel(self, j: int, msg: Twist) -> None:
        v, w = msg.linear.x, msg.angular.z
        if not (math.isfinite(v) and math.isfinite(w)):
            self._warn_once(f"cmd{j}", f"{self.names[j]}: cmd_vel has NaN/inf; treated as zero")
            v = w = 0.0
        self.cmd[j] = (v, w)
        self.cmd_time[j] = time.monotonic()
        if self.cycles:
            self.cmd_heard[j] = True
            self.cmd_misses[j] = 0
            if self.cmd_owed[j]:
                self.cmd_owed[j] = False
                if not self.cmd_owed.any() and not self.in_step and self.phase == "running":
                    self._physics()  # every driving robot answered: the next control cycle runs now

    def _on_swarm_command(self, msg: String) -> None:
        if msg.data == topics.STOP and self.phase in ("running", "waiting"):
            self.phase = "paused"
            self.get_logger().info("stopped by /swarm/command")
        elif msg.data == topics.START and self.phase in ("paused", "waiting"):
            self.phase = "running"
            self.get_logger().info("started by /swarm/command")
        elif msg.data not in (topics.START, topics.STOP):
            self._warn_once(f"swarm{msg.data}", f"unknown swarm command {msg.data!r}")

    # --- the step machine ---------------------------------------------------------------------
    def _live(self) -> np.ndarray:
        return self.misses < self.max_missed

    def _controller_live(self) -> bool:
        return self.ctrl_misses < self.max_missed

    def _ready(self) -> bool:
        now = time.monotonic()
        if now - self.last_ready_check < 0.2:
            return False
        self.last_ready_check = now
        unmatched = sum(sub.get_publisher_count() == 0 for sub in self.goal_subs)
        no_controller = self.command_sub.get_publisher_count() == 0
        if unmatched == 0 and not no_controller:
            return True
        if now - self.t_start > self.startup_timeout:
            self.get_logger().warning(f"starting after {self.startup_timeout:.0f} s with {unmatched} robots "
                                      f"unmatched{' and no controller' if no_controller else ''}")
            return True
        return False

    def _loop(self) -> None:
        now = time.monotonic()
        if self.cycles and self.phase == "running" and not self.in_step and (
                not self.cmd_owed.any() or now - self.cycle_t0 >= self.step_timeout):
            late = self.cmd_owed
            self.cmd_dropped += int(late.sum())
            self.cmd_misses[late] += 1
            self._physics()
            return
        if self.phase == "waiting":
            if self.autostart and self._ready():
                self.phase = "running"
                self.get_logger().info("all nodes matched; first step: waiting for every robot and the controller "
                                       "to answer")
            return
        if self.in_step:
            if self.step == 0:  # the handshake: every host must answer once, within the startup budget
                limit = max(self.step_timeout, self.t_start + self.startup_timeout - self.step_t0)
            else:
                limit = self.step_timeout if self.lockstep else (math.inf if self.drives else self.step_period)
            if now - self.step_t0 >= limit:
                if self.step == 0 and not self._handshake_failed():
                    return
                self._finish_step()
        elif self.phase == "running" and not self.drives and now >= self.next_begin:
            self._begin_step()  # driving backends' steps begin at the physics clock's step boundaries

    def _begin_step(self) -> None:
        self.snap = self.backend.observe()
        self.sim_ns = self.sim_ns if self.drives else self.step * self.period_ns
        self._publish_poses()
        self.state_pub.publish(Int32(data=self.snap.s_g))
        tick = topics.tick_msg(topics.Tick(self.step, self.snap.s_g, self.sim_ns))
        self.tick_pub.publish(tick)
        if self.bag is not None:
            self.bag.write(topics.TICK, tick)
            self.bag.write(topics.GLOBAL_STATE, Int32(data=self.snap.s_g))
        self.in_step = True
        self.step_t0 = time.monotonic()
        self.answered[:] = False
        self.goals[:] = -1
        self.owed = self._live().copy()
        self.a_g = None
        self.controller_owed = self._controller_live()
        self.ctrl_rtt = math.nan
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if (self.lockstep or self.step == 0) and self.in_step and not self.owed.any() and not self.controller_owed:
            self._finish_step()

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
        silent = np.flatnonzero(self.owed)
        self.lost = self._hosts(silent)
        if self.controller_owed:
            self.lost["controller"] = [f"no zone command on {topics.ZONE_COMMAND}"]
        described = "; ".join(f"{host}: {len(robots)} robot(s) ({robots[0]}..{robots[-1]})"
                              for host, robots in self.lost.items())
        elapsed = time.monotonic() - self.t_start
        if not self.tolerate_lost:
            self.get_logger().error(f"never answered the first step within {elapsed:.0f} s (startup_timeout): "
                                    f"{described}; stopping (set tolerate_lost_robots:=true to run without them)")
            self.exit_code = 3
            self.phase = "done"
            self.done = True
            self.in_step = False
            return False
        self.get_logger().warning(f"never answered the first step within {elapsed:.0f} s: {described}; running "
                                  "without them (tolerate_lost_robots)")
        self.misses[silent] = self.max_missed
        if self.controller_owed:
            self.ctrl_misses = self.max_missed
        return True

    def _finish_step(self) -> None:
        self.in_step = False
        if self.cycles:  # the answers' cmd_vels for this step's poses may still be on their way
            self.drivers |= self.answered
            self.cmd_owed = self.answered & ~self.cmd_heard & (self.cmd_misses < self.max_missed)
        dropped = ~self.answered
        self.misses[dropped] += 1
        s_g, s_l = self.snap.s_g, self.snap.s_l
        a_l = self.floor.action_from_goal(s_l, self.goals)
        bad = self.answered & (a_l < 0)
        if bad.any():
            self.bad += int(bad.sum())
            self._warn_once("badgoal", f"{int(bad.sum())} zone goals were out of range or reached by no local action "
                            f"(e.g. {self.names[int(np.flatnonzero(bad)[0])]}: goal "
                            f"{self.goals[np.flatnonzero(bad)[0]]}); applying 'stay'")
        a_l = np.where(a_l < 0, self.floor.stay_action[s_l], a_l)
        controller_dropped = self.a_g is None
        if self.a_g is None:
            self.ctrl_misses += 1
            a_g = self.last_a_g if self.last_a_g is not None else s_g
        else:
            a_g = self.a_g
        self.last_a_g = a_g
        result = self.backend.apply(a_g, a_l)
        step_seconds = time.monotonic() - self.step_t0
        row = {"step": self.step, "s_g": s_g, "a_g": a_g, "reward": result.reward,
               "r_g": result.r_g, "r_l_mean": result.r_l_mean,
               "dropped_robots": int(dropped.sum()), "controller_dropped": int(controller_dropped),
               "bad_answers": self.bad, "late_answers": self.late, "duplicate_answers": self.duplicate,
               "live_robots": int(self._live().sum()),
               "step_seconds": step_seconds, "controller_rtt_ms": self.ctrl_rtt}
        row.update(self.backend.step_metrics())
        self.record.append(row)
        self.late = self.bad = self.duplicate = 0
        metrics = topics.metrics_msg(row)
        self.metrics_pub.publish(metrics)
        if self.bag is not None:
            self.bag.write(topics.METRICS, metrics)
        self.finished_wall, self.finished_sim_ns = time.monotonic(), self.sim_ns
        if self.step == 0:
            self.started_wall = self.finished_wall  # steps/s counts the steps after the handshake
            self.started_sim_ns = self.sim_ns
            self.get_logger().info(f"first step answered ({int(self.answered.sum())}/{self.n} robots, controller "
                                   f"{'yes' if self.a_g is not None else 'no'}) after {step_seconds:.1f} s; stepping")
        self.step += 1
        if self.max_steps and self.step >= self.max_steps:
            self.phase = "done"
            self.done = True
            self.get_logger().info(f"finished {self.step} steps")
            return
        period = self.step_period if (not self.drives or not self.lockstep) else 0.0
        self.next_begin = self.step_t0 + period if self.lockstep else time.monotonic()

    # --- the physics clock of driving backends ------------------------------------------------
    def _physics(self) -> None:
        if self.phase != "running" or (self.in_step and self.lockstep):
            return  # lockstep: the world waits for the decision
        dt = 1.0 / self.physics_rate
        fresh = (time.monotonic() - self.cmd_time) <= self.cmd_timeout
        self.backend.integrate(np.where(fresh[:, None], self.cmd, 0.0), dt)  # a stale cmd_vel is a stop
        dt_ns = round(dt * 1e9)
        self.sim_ns += dt_ns
        boundary = self.sim_ns // self.period_ns > (self.sim_ns - dt_ns) // self.period_ns
        if boundary:
            if self.in_step:
                self._finish_step()  # free-running: the step's time is up
            if self.phase == "running":
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
        if self.cycles:
            self.cmd_heard[:] = False
            self.cmd_owed = self.drivers & (self.cmd_misses < self.max_missed)
            self.cycle_t0 = time.monotonic()

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
        rewards = np.array([r["reward"] for r in self.record])
        elapsed = self.finished_wall - self.started_wall if len(self.record) > 1 else 0.0
        return {"n_robots": self.n, "mode": self.mode, "lockstep": self.lockstep, "game": self.game_spec,
                "steps": len(self.record), "mean_reward": float(rewards.mean()) if rewards.size else math.nan,
                "dropped_answers": int(sum(r["dropped_robots"] for r in self.record)),
                "controller_dropped": int(sum(r["controller_dropped"] for r in self.record)),
                **{f"{what}_answers": int(sum(r[f"{what}_answers"] for r in self.record)) + extra
                   for what, extra in (("late", self.late), ("bad", self.bad), ("duplicate", self.duplicate))},
                "steps_per_second": (len(self.record) - 1) / elapsed if elapsed > 0 else math.nan,
                "lost_robots": self.lost,  # host -> robots that never answered the first step
                # host -> robots that were no longer waited for when the run ended (stopped answering)
                "silent_at_end": self._hosts(np.flatnonzero(~self._live())) if self.record else {},
                "sim_seconds": self.sim_ns / 1e9,
                # simulated s per wall s between the end of the first step and the end of the last (as steps/s)
                "real_time_factor": (self.finished_sim_ns - self.started_sim_ns) / 1e9 / elapsed
                if (self.drives and elapsed > 0) else math.nan,
                "cmd_vel_dropped": self.cmd_dropped, **self.backend.summary(),
                "per_step": self.record}

    def close(self) -> None:
        if self.bag is not None:
            self.bag.close()
            self.get_logger().info(f"bag: {self.bag.count} messages in {self.bag.path}")
            self.bag = None
        if self.record_path:
            write_json(self.record_path, self.summary())


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
