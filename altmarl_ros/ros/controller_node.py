"""controller_node: the global agent. Observes a fresh uniform k-subset per decision step.

Per tick [step, s_g, stamp] it draws (seeded, without replacement) the k robots it will read,
reads only their latest poses, maps them to zones, forms the count vector and publishes
a_g = pi_g(s_g, counts) as [step, a_g] on /swarm/zone_command, plus one DiagnosticStatus.

Observation modes:
- `rotating` (default): it holds pose subscriptions only for the current and the next step's sample
  (<= 2k; the next sample is drawn and subscribed one step ahead, so DDS matching, 12-25 ms here,
  overlaps the current step; pose topics are transient-local depth 1, so the latest pose arrives on
  match). Work and bandwidth per step are O(k).
- `aggregate` (comparison point): subscribe once to every robot's pose, sample k locally.
- `polling` (comparison point, the seed document's "polls a few"): no pose subscriptions; per step it
  publishes its sample on /swarm/poll and the robot hosts answer with the sampled robots' poses on
  /swarm/poll_poses (hosts of many simulated robots, `batch_offset` >= 0, answer polls).

A sampled pose is fresh when its stamp is at or after the tick's; the controller waits up to
`pose_wait` s for fresh poses, then decides with what it has: stale poses are used and counted,
missing (or NaN) ones are left out and the observed counts are rescaled to k (largest remainder).
With no usable pose at all it repeats its last command. Nothing blocks, nothing raises. A tick repeated
for the step just answered (the simulator asks again when the first step's answer has not arrived) gets
the same answer again.

A pooled policy artifact (`marl/pooled.py`, beyond the paper) makes the dispatcher read a filtered estimate of
the population's histogram instead of the fresh counts: the controller keeps the filter state and folds each
step's (rescaled) k-sample counts into it. The observation mode (which poses it reads, at most 2k
subscriptions when rotating) is unchanged; a step without any usable pose leaves the filter as it was.

A continuous policy artifact (issue 17, `marl/continuous/deploy.py`, NumPy only) reads the corridor's zones as its
histogram bins: a_g = pi_g(s_g, counts / k), s_g decoded from the tick's fixed-point code.

`clock: timer` (Gazebo or hardware, where no simulator clocks the swarm): the controller ticks itself
every `step_period` s and evolves the global state (the active zone) with the game's P_g.
"""

from __future__ import annotations

import functools
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.subscription import Subscription
from std_msgs.msg import Float64MultiArray, Int32, Int32MultiArray, Int64MultiArray, String

from altmarl_ros import contract
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.continuous import deploy
from altmarl_ros.marl.pooled import PooledGlobalPolicy
from altmarl_ros.ros import topics
from altmarl_ros.ros.common import (
    SILENCE_REPORT_S,
    ParameterError,
    PoseSubscriber,
    declare,
    declare_string_list,
    resolve_continuous,
    resolve_policy,
    resolve_zones,
    robot_list,
    run_node,
    write_json,
)

NODE_NAME = contract.CONTROLLER_NODE
ANSWERS_HELD = contract.ANSWER_QOS.depth  # the answers held until the command writer matches a reader


class ControllerNode(Node):
    def __init__(self, node_name: str = NODE_NAME, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        robots = declare_string_list(self, "robots", "robot registry (names); empty = robot_0..n_robots-1")
        n_robots = declare(self, "n_robots", 0, "number of robots when 'robots' is empty", low=0)
        self.k = declare(self, "k", 5, "robots observed per decision step", low=1)
        self.policy_path = declare(self, "policy_path", "", "policy artifact (.npz); '' = share/policies/default.npz")
        zones_path = declare(self, "zones_path", "", "zones YAML; '' = share/config/zones.yaml")
        seed = declare(self, "seed", 0, "seed of the k-subset sampler", low=0)
        self.observation = declare(self, "observation", contract.ObservationMode.ROTATING.value,
                                   "pose observation mode", choices=contract.values(contract.ObservationMode))
        self.clock = declare(self, "clock", contract.ControllerClock.TICK.value, "'tick': follow /swarm/tick; "
                             "'timer': tick itself", choices=contract.values(contract.ControllerClock))
        step_period = declare(self, "step_period", 0.1, "s between decisions with clock=timer", low=0.001,
                              high=3600.0)
        self.pose_wait = declare(self, "pose_wait", 0.5, "s to wait for fresh sampled poses", low=0.0, high=60.0)
        self.record_path = declare(self, "record_path", "", "write the per-step record (JSON) here at the end; "
                                   "'' = none")
        self.poses = PoseSubscriber(self)
        self.record: list[dict] = []
        self.names = robot_list(self, robots, n_robots)
        self.n = len(self.names)
        if self.k > self.n:
            raise ParameterError(f"{NODE_NAME}: parameter 'k'={self.k} exceeds the number of robots {self.n}")
        self.rng = np.random.default_rng(seed)
        self.continuous = resolve_continuous(self.policy_path, zones_path, k=self.k)
        if self.continuous is not None:  # zones are the histogram's bins; the tick carries s_g's code
            self.zones, env = self.continuous.zones, self.continuous.policy.env
            self.zone_state: np.ndarray | None = np.arange(env.n_bins)
            self.S_l, self.n_global_states, self.n_global_actions = env.n_bins, deploy.n_codes(env), env.n_ga
            self.pi_g, self.memory = None, None
        else:
            self.zones = resolve_zones(zones_path)
            artifact = resolve_policy(self.policy_path, k=self.k, n_zones=self.zones.n_zones)
            self.pi_g, self.game = artifact.pi_g, artifact.game
            if isinstance(self.pi_g, PooledGlobalPolicy):  # its filter, for this swarm's n robots
                self.pi_g = self.pi_g.for_population(self.n)
            self.memory = self.pi_g.start(1) if isinstance(self.pi_g, PooledGlobalPolicy) else None
            self.zone_state = artifact.floor.zone_state if artifact.floor is not None else None  # zone -> s_l
            self.S_l = self.game.n_local_states
            self.n_global_states, self.n_global_actions = self.game.n_global_states, self.game.n_global_actions
        # Latest pose per robot: stamp (ns, -1 = none) and local state (its zone's; -1 = none / NaN).
        self.stamp = np.full(self.n, -1, dtype=np.int64)
        self.zone = np.full(self.n, -1, dtype=np.int64)
        self.subs: dict[int, Subscription] = {}
        self.max_subs = 0
        self.pending: tuple[topics.Tick, np.ndarray, float] | None = None
        self.unsent: list[Int32MultiArray] = []  # answers made before the command writer matched a reader
        self.last_step = -1
        self.last_a_g: int | None = None
        self.next_sample = self._draw()
        self.running = True
        self.warned_nan: set[int] = set()
        self.cmd_pub = self.create_publisher(Int32MultiArray, topics.ZONE_COMMAND, topics.ANSWER_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, topics.DIAGNOSTICS_QOS)
        self.create_subscription(String, topics.SWARM_COMMAND, self._on_command, topics.LATCHED_QOS)
        if self.observation == contract.ObservationMode.AGGREGATE:
            self._hold(np.arange(self.n))
        elif self.observation == contract.ObservationMode.ROTATING:
            self._hold(self.next_sample)
        else:
            self.poll_pub = self.create_publisher(Int32MultiArray, topics.POLL, topics.LATCHED_QOS)
            self.create_subscription(Float64MultiArray, topics.POLL_POSES, self._on_poll_reply, topics.POLL_POSES_QOS)
        self.t_start, self.silence_reported = time.monotonic(), False
        if self.clock == contract.ControllerClock.TICK:
            self.tick_sub = self.create_subscription(Int64MultiArray, topics.TICK, self._on_tick,
                                                     topics.TICK_READER_QOS)
        else:
            self.tick_pub = self.create_publisher(Int64MultiArray, topics.TICK, topics.LATCHED_QOS)
            self.state_pub = self.create_publisher(Int32, topics.GLOBAL_STATE, topics.LATCHED_QOS)
            self.s_g = self._initial_s_g()
            self.create_timer(step_period, self._self_tick)
        self.create_timer(0.01, self._check_pending)
        self.n_entities = len(self.subs) + 6
        self.get_logger().info(f"{self.n} robots, k={self.k}, observation={self.observation}, clock={self.clock}, "
                               f"policy={self.policy_path or 'default'}")

    def _initial_s_g(self) -> int:
        """clock=timer: s_g(0) ~ the game's init_g (continuous: U(-start_g, start_g), as its code)."""
        if self.continuous is not None:
            env = self.continuous.policy.env
            return deploy.encode_s_g(env, self.rng.uniform(-env.start_g, env.start_g))
        return int(self.rng.choice(self.game.n_global_states, p=self.game.init_g))

    def _next_s_g(self, s_g: int, a_g: int) -> int:
        """clock=timer: s_g' ~ P_g(. | s_g, a_g) (continuous: the environment's s_g dynamics, on codes)."""
        if self.continuous is not None:
            env = self.continuous.policy.env
            return deploy.encode_s_g(env, deploy.next_s_g(env, self.rng, deploy.decode_s_g(env, s_g), a_g))
        return int(self.rng.choice(self.game.n_global_states, p=self.game.P_g[s_g, a_g]))

    def _local_state(self, zone: np.ndarray) -> np.ndarray:
        """Zones -> local states (the artifact's floor map)."""
        assert self.zone_state is not None  # resolve_policy checked the floor map
        return self.zone_state[zone]

    # --- sampling and subscriptions -----------------------------------------------------------
    def _draw(self) -> np.ndarray:
        return np.sort(self.rng.choice(self.n, size=self.k, replace=False))

    def _hold(self, keep: np.ndarray) -> None:
        """Hold pose subscriptions exactly for robots in `keep` (rotating mode: current + next sample)."""
        keep_set = set(keep.tolist())
        for j in list(self.subs):
            if j not in keep_set:
                self.destroy_subscription(self.subs.pop(j))
        for j in keep_set - set(self.subs):
            self.subs[j] = self.poses.subscribe(PoseStamped, topics.robot_topic(self.names[j], topics.POSE),
                                                functools.partial(self._on_pose, j))
        self.max_subs = max(self.max_subs, len(self.subs))

    def _on_pose(self, j: int, msg: PoseStamped) -> None:
        self.stamp[j] = topics.stamp_to_ns(msg.header.stamp)
        if not topics.pose_is_finite(msg):
            self.zone[j] = -1
            if j not in self.warned_nan:
                self.get_logger().warning(f"{self.names[j]}: pose has NaN/inf values; counted as missing")
                self.warned_nan.add(j)
            return
        self.zone[j] = int(self._local_state(self.zones.zone_of(topics.pose_xy(msg))))
        if self.pending is not None:
            tick, sample, _ = self.pending
            if np.all(self.stamp[sample] >= tick.stamp_ns):
                self._decide()

    def _on_poll_reply(self, msg: Float64MultiArray) -> None:
        try:
            reply = topics.parse_poll_reply(msg)
        except ValueError as exc:
            self.get_logger().warning(f"{topics.POLL_POSES}: {exc}")
            return
        if self.pending is None or reply.step != self.pending[0].step:
            return  # an answer to an earlier poll
        known = (reply.indices >= 0) & (reply.indices < self.n)
        j = reply.indices[known]
        self.stamp[j] = reply.stamp_ns[known]
        finite = np.isfinite(reply.xy[known]).all(-1)
        self.zone[j] = np.where(finite, self._local_state(self.zones.zone_of(np.nan_to_num(reply.xy[known]))), -1)
        tick, sample, _ = self.pending
        if np.all(self.stamp[sample] >= tick.stamp_ns):
            self._decide()

    # --- decisions ----------------------------------------------------------------------------
    def _on_tick(self, msg: Int64MultiArray) -> None:
        try:
            tick = topics.parse_tick(msg, self.n_global_states)
        except ValueError as exc:
            self.get_logger().warning(str(exc))
            return
        if self.pending is not None and tick.step == self.pending[0].step:
            return  # repeated while this step is being decided: its answer follows
        if tick.step == self.last_step and self.last_a_g is not None:
            # the simulator asks again (the answer did not arrive): the same answer once more, unless still held
            if not self.unsent:
                self.get_logger().info(f"tick for step {tick.step} repeated: answer re-sent", once=True)
                self._answer(topics.answer_msg(tick.step, self.last_a_g, "a_g"))
            return
        if tick.step <= self.last_step:
            return
        if self.last_step < 0:
            self.get_logger().info(f"first tick: step {tick.step}")
        self._start(tick)

    def _self_tick(self) -> None:
        if self.pending is not None:
            self._decide()
        if not self.running:
            return
        if self.last_a_g is not None:
            self.s_g = self._next_s_g(self.s_g, self.last_a_g)
        stamp = self.get_clock().now().nanoseconds
        tick = topics.Tick(self.last_step + 1, self.s_g, stamp)
        self.state_pub.publish(Int32(data=self.s_g))
        self.tick_pub.publish(topics.tick_msg(tick))
        self._start(tick)

    def _start(self, tick: topics.Tick) -> None:
        if self.pending is not None:
            self._decide()  # a new tick overtook the last decision: decide now with what arrived
        if not self.running:
            return
        sample = self.next_sample
        self.next_sample = self._draw()
        if self.observation == contract.ObservationMode.ROTATING:
            self._hold(np.union1d(sample, self.next_sample))
        self.pending = (tick, sample, time.monotonic())
        if self.observation == contract.ObservationMode.POLLING:
            self.poll_pub.publish(topics.poll_msg(tick.step, sample))
        if np.all(self.stamp[sample] >= tick.stamp_ns):
            self._decide()

    def _check_pending(self) -> None:
        self._flush()
        if self.last_step < 0 and not self.silence_reported and self.clock == contract.ControllerClock.TICK and \
                time.monotonic() - self.t_start > SILENCE_REPORT_S:
            self.silence_reported = True  # say what this node is matched with, so a silent start names its cause
            self.get_logger().warning(f"no tick after {SILENCE_REPORT_S:.0f} s; matched: "
                                      f"{self.tick_sub.get_publisher_count()} tick publisher(s), "
                                      f"{self.cmd_pub.get_subscription_count()} reader(s) of {topics.ZONE_COMMAND}")
        if self.pending is not None and time.monotonic() - self.pending[2] >= self.pose_wait:
            self._decide()

    def _answer(self, msg: Int32MultiArray) -> None:
        """Publish a zone command, held (in order, the last ANSWERS_HELD) until the command writer has matched a
        reader: the simulator starts when its reader has matched this writer, but discovery is per side, and a
        volatile writer does not deliver to readers it matches after publishing (a first step's answer was lost so,
        1 full test run in 3 on 2026-12-07)."""
        self.unsent = [*self.unsent, msg][-ANSWERS_HELD:]
        self._flush()
        if self.unsent:
            self.get_logger().info(f"answers held until {topics.ZONE_COMMAND} has a reader", once=True)

    def _flush(self) -> None:
        if self.unsent and self.cmd_pub.get_subscription_count() > 0:
            for msg in self.unsent:
                self.cmd_pub.publish(msg)
            self.unsent = []

    def _decide(self) -> None:
        assert self.pending is not None  # callers check
        tick, sample, t0 = self.pending
        self.pending = None
        self.last_step = tick.step
        zones = self.zone[sample]
        usable = zones >= 0
        fresh = usable & (self.stamp[sample] >= tick.stamp_ns)
        observed = cv.counts_from_states(zones[usable], self.S_l)
        m = int(usable.sum())
        if m == self.k:
            counts = observed
        elif m > 0:
            counts = cv.round_to_counts(observed * (self.k / m), self.k)
        else:
            counts = None
        if counts is not None:
            a_g = self._act(tick.s_g, counts)
        else:
            # no observation yet: hold the last command, else "activate s_g" where that is an action
            a_g = self.last_a_g if self.last_a_g is not None else self._default_action(tick.s_g)
        self.last_a_g = a_g
        self._answer(topics.answer_msg(tick.step, a_g, "a_g"))
        latency_ms = 1e3 * (time.monotonic() - t0)
        if self.observation == contract.ObservationMode.ROTATING:
            self._hold(self.next_sample)  # drop the current sample; keep the one subscribed ahead
        missing, stale = self.k - m, int(usable.sum() - fresh.sum())
        status = DiagnosticStatus(
            level=DiagnosticStatus.OK if missing == 0 and stale == 0 else DiagnosticStatus.WARN,
            name=NODE_NAME, hardware_id="swarm",
            message="ok" if missing == 0 and stale == 0 else f"{missing} missing, {stale} stale sampled poses")
        values = {"step": tick.step, "s_g": tick.s_g, "a_g": a_g, "sample": ",".join(map(str, sample.tolist())),
                  "missing": missing, "stale": stale, "latency_ms": f"{latency_ms:.3f}",
                  "pose_subscriptions": len(self.subs), "max_pose_subscriptions": self.max_subs,
                  "counts": ",".join(map(str, (counts if counts is not None else observed).tolist()))}
        self.record.append({**values, "latency_ms": latency_ms})
        status.values = [KeyValue(key=key, value=str(v)) for key, v in values.items()]
        diag = DiagnosticArray(status=[status])
        diag.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(diag)

    def _default_action(self, s_g: int) -> int:
        """Before any observation: 'activate s_g' where that is an action (continuous: the target of s_g's bin)."""
        if self.continuous is not None:
            env = self.continuous.policy.env
            return int(deploy.bins(env, deploy.decode_s_g(env, s_g)))
        return s_g % self.n_global_actions

    def _act(self, s_g: int, counts: np.ndarray) -> int:
        """pi_g on this step's (S_l,) counts of k; a pooled dispatcher folds them into its filter first; a
        continuous one reads s_g's value and the histogram counts / k."""
        if self.continuous is not None:
            env = self.continuous.policy.env
            hist = counts[None, :] / self.k
            return int(self.continuous.policy.dispatch(deploy.decode_s_g(env, np.array([s_g])), hist)[0])
        if isinstance(self.pi_g, PooledGlobalPolicy):
            assert self.memory is not None  # set with the pooled policy
            actions, self.memory = self.pi_g.decide(self.memory, np.array([s_g]), counts[None, :])
            return int(actions[0])
        assert self.pi_g is not None  # None only with a continuous policy
        return int(self.pi_g.act(np.array([s_g]), counts[None, :])[0])

    def _on_command(self, msg: String) -> None:
        if msg.data in (topics.START, topics.STOP):
            self.running = msg.data == topics.START
        else:
            self.get_logger().warning(f"unknown swarm command {msg.data!r} (expected 'start' or 'stop')")

    def close(self) -> None:
        if self.record_path:
            write_json(self.record_path, {"max_pose_subscriptions": self.max_subs, "per_step": self.record})


def main(args: list[str] | None = None) -> int:
    return run_node(ControllerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
