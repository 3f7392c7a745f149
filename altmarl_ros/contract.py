"""The swarm's ROS contract as plain data (no rclpy): names, QoS settings, encodings, enumerations.

Nodes (`ros/`), the bag reader (`bagdata`), the CLI and the launch file import this module; `ros/topics.py`
builds the rclpy objects (QoSProfile, messages) from it. README "Topics" documents the same table.

| topic | type | publisher | QoS (R reliable, TL transient-local) |
|---|---|---|---|
| /robot_<i>/pose | geometry_msgs/PoseStamped | sim_node (or localization, Gazebo bridge) | R, TL, depth 1 |
| /robot_<i>/cmd_vel | geometry_msgs/Twist | robot_node | R, depth 1 |
| /robot_<i>/zone_goal | std_msgs/Int32MultiArray [step, goal_zone] | robot_node | R, depth 10 |
| /swarm/pose_table | std_msgs/Float64MultiArray [sec, nanosec, x_0, y_0, yaw_0, ...] | sim_node | R, TL, 1 |
| /swarm/poll | std_msgs/Int32MultiArray [step, i_0, ..., i_{k-1}] (observation: polling) | controller_node | R, TL, 1 |
| /swarm/poll_poses | std_msgs/Float64MultiArray [step; i, x, y, yaw, stamp_ns per row] | robot hosts | R, TL, 64 |
| /swarm/zone_goals | std_msgs/Int32MultiArray [step, i_0, goal_0, ...] | robot_node hosting many | R, TL, 1024 |
| /swarm/zone_command | std_msgs/Int32MultiArray [step, a_g] | controller_node | R, depth 10 |
| /swarm/tick | std_msgs/Int64MultiArray [step, s_g, stamp_ns] | sim_node (controller with Gazebo) | R, TL, depth 1 |
| /swarm/global_state | std_msgs/Int32 (s_g) | sim_node (controller with Gazebo) | R, TL, depth 1 |
| /swarm/metrics | std_msgs/Float64MultiArray, fields METRICS_FIELDS | sim_node | R, depth 1000 |
| /swarm/command | std_msgs/String 'start' / 'stop' | operator, `altmarl swarm` | R, TL, depth 1 |
| /diagnostics | diagnostic_msgs/DiagnosticArray | controller_node (one status per step) | R, depth 100 |
| /clock | rosgraph_msgs/Clock | sim_node (the step's stamp) | R, depth 10 |

A decision step t is announced by a tick carrying s_g(t) and the stamp of the step's poses; an answer
(zone goal or zone command) carries t so that a late answer is never applied to a later step. A pose is
*fresh* for a tick when its stamp is at or after the tick's stamp. Local actions travel as goal zones:
what a_l means on the floor comes from the policy artifact's floor map (`marl.games.floor.FloorMap`).

Continuous policies (issue 17, `marl/continuous`, on config/zones_corridor.yaml): the tick's s_g is the fixed-point
code of the continuous global state (`continuous.deploy.encode_s_g`: micro-units above the line's low end), and a
robot's answer (zone_goal / zone_goals) is its local action a_l itself (0 stay, 1 and 2 the two moves); the zones
are the histogram's bins, so zone counts are k times the histogram the dispatcher reads.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import NamedTuple

# --- enumerations shared by the nodes, the CLI and the launch file --------------------------------


class ObservationMode(enum.StrEnum):
    """How the controller reads its k sampled poses (controller_node's `observation`)."""

    ROTATING = "rotating"  # subscriptions for the current and the next sample only (default)
    AGGREGATE = "aggregate"  # subscribe to every robot once, sample locally (comparison point)
    POLLING = "polling"  # name the sample on /swarm/poll, the robot hosts answer (comparison point)


class SimMode(enum.StrEnum):
    """sim_node's simulator backend (`mode`; the registry is `altmarl_ros.ros.backends.BACKENDS`)."""

    MODEL = "model"
    KINEMATIC = "kinematic"
    PHYSICS = "physics"


class Simulator(enum.StrEnum):
    """Who plays the world (`sim` of the launch file and SwarmOptions)."""

    EMBEDDED = "embedded"
    GAZEBO = "gazebo"


class Fidelity(enum.StrEnum):
    """Robot model of the physics engine (`fidelity`)."""

    PLANAR = "planar"  # planar base on x, y, yaw
    WHEELED = "wheeled"  # wheels with ground contact, as Gazebo's DiffDrive


class DdsTransport(enum.StrEnum):
    """Transport of the swarm's Fast DDS profile (`--dds-transport`, `dds_transport:=`)."""

    UDP = "udp"
    SHM = "shm"


class ControllerClock(enum.StrEnum):
    """What clocks the controller's decisions (`clock`)."""

    TICK = "tick"  # follow /swarm/tick (the embedded simulator)
    TIMER = "timer"  # tick itself every step_period (Gazebo, hardware)


def values(kind: type[enum.StrEnum]) -> tuple[str, ...]:
    """The plain string values of an enumeration, in order (ROS parameter choices, argparse choices)."""
    return tuple(member.value for member in kind)


# --- names --------------------------------------------------------------------------------------

# Relative leaf names of per-robot topics, and the absolute swarm-wide channels.
POSE = "pose"
CMD_VEL = "cmd_vel"
ZONE_GOAL = "zone_goal"
ODOM = "odom"
ZONE_COMMAND = "/swarm/zone_command"
ZONE_GOALS = "/swarm/zone_goals"  # batched answers of a node hosting many simulated robots
POLL = "/swarm/poll"  # observation 'polling': the controller names its k-subset for a step
POLL_POSES = "/swarm/poll_poses"  # ... and only the hosts of sampled robots answer with their poses
POSE_TABLE = "/swarm/pose_table"  # every simulated robot's pose in one flat message, for nodes hosting many
TICK = "/swarm/tick"
GLOBAL_STATE = "/swarm/global_state"
METRICS = "/swarm/metrics"
SWARM_COMMAND = "/swarm/command"
DIAGNOSTICS = "/diagnostics"
CLOCK = "/clock"
START, STOP = "start", "stop"
ROBOT_TOPIC_PATTERN = r"^/robot_(\d+)/{leaf}$"  # per-robot topics of a simulated registry (robot_<i>)

# Node names.
SIM_NODE = "altmarl_sim"
CONTROLLER_NODE = "altmarl_controller"
MONITOR_NODE = "altmarl_monitor"
ROBOT_NODE = "robot_node"  # a node hosting one robot, in the robot's namespace
ROBOT_HOST_PREFIX = "altmarl_robots_"  # robot_node hosting many simulated robots: altmarl_robots_<j>
ROBOT_PREFIX = "robot_"  # robots of a simulated registry: robot_0 .. robot_{n-1}


def robot_topic(robot: str, leaf: str) -> str:
    """Absolute per-robot topic for swarm-wide nodes: robot_topic('robot_3', 'pose') -> '/robot_3/pose'."""
    return f"/{robot.strip('/')}/{leaf}"


def robot_names(n_robots: int) -> list[str]:
    """The robot registry of a simulated swarm: robot_0 .. robot_{n-1}."""
    return [f"{ROBOT_PREFIX}{i}" for i in range(n_robots)]


def robot_index(name: str) -> int:
    """i of a robot named `robot_<i>` (its parking slot index); 0 for any other name."""
    number = name.removeprefix(ROBOT_PREFIX)
    return int(number) if number != name and number.isdigit() else 0


def robot_host_name(j: int) -> str:
    """Name of the j-th robot_node hosting many simulated robots."""
    return f"{ROBOT_HOST_PREFIX}{j}"


# --- QoS as data ----------------------------------------------------------------------------------


class Qos(NamedTuple):
    """A QoS profile as data (history keep_last(depth)); `ros.topics.qos_profile` builds the rclpy object."""

    depth: int
    reliable: bool = True
    transient_local: bool = False


LATCHED_QOS = Qos(1, transient_local=True)  # the latest value reaches late joiners
POSE_QOS = LATCHED_QOS  # a new pose subscription gets the robot's latest pose as soon as it matches
# Pose subscription profiles (parameter `pose_qos` of controller_node and robot_node), by the publishers they match:
POSE_QOS_PROFILES = {
    # reliable + transient-local, depth 1: only reliable transient-local publishers (sim_node, latched
    # localization); a new subscription gets the latest pose on match (what rotating subscriptions need)
    "latched": LATCHED_QOS,
    # reliable + volatile, depth 1: reliable publishers of either durability (most odometry / EKF nodes)
    "reliable": Qos(1),
    # best effort + volatile, depth 1 (rclpy's qos_profile_sensor_data with depth 1): every publisher,
    # including best-effort drivers and mocap; the first pose arrives with the publisher's next message
    "sensor_data": Qos(1, reliable=False),
}
ANSWER_QOS = Qos(10)
# Readers of the swarm-wide topics that one node should own but any node can write (a rogue, another swarm): a
# keyless topic's keep_last(depth) history is shared by all writers, so with depth 1 a burst of other samples
# evicts the owner's unread tick (seen in test_runtime_faults: robots missed ticks under 50 Hz garbage, the
# swarm crawled at one step per timeout). Deeper reader histories only; writers and matching are unchanged.
TICK_READER_QOS = Qos(64, transient_local=True)
COMMAND_READER_QOS = Qos(256)
# one shared topic for every robot host, several batches each per step: deep enough never to overwrite, and
# transient-local so that a batch published before the simulator's subscription matched still arrives
GOALS_QOS = Qos(1024, transient_local=True)
CMD_VEL_QOS = Qos(1)
POLL_POSES_QOS = Qos(64, transient_local=True)  # a reply per host and step; TL: one sent before the
# controller's subscription matched still arrives
METRICS_QOS = Qos(1000)
DIAGNOSTICS_QOS = Qos(100)
CLOCK_QOS = Qos(10)

METRICS_FIELDS = ("step", "s_g", "a_g", "reward", "r_g", "r_l_mean", "dropped_robots", "controller_dropped",
                  "bad_answers", "late_answers", "duplicate_answers", "live_robots", "step_seconds",
                  "controller_rtt_ms")

# --- encodings ------------------------------------------------------------------------------------
NS_PER_S = 1_000_000_000


def ns_to_sec_nanosec(ns: int) -> tuple[int, int]:
    """builtin_interfaces/Time fields (sec, nanosec) of a time in ns."""
    return int(ns // NS_PER_S), int(ns % NS_PER_S)


def stamp_ns(stamp) -> int:
    """ns of any object with `sec` and `nanosec` (an rclpy Time message, a rosbags one)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


class Tick(NamedTuple):
    step: int
    s_g: int
    stamp_ns: int


class Answer(NamedTuple):
    step: int
    value: int


def decode_tick(data: Sequence[int], n_global_states: int | None = None) -> Tick:
    """[step, s_g, stamp_ns] -> Tick; ValueError when malformed or s_g is not below `n_global_states`."""
    data = list(data)
    if len(data) != 3 or data[0] < 0 or data[1] < 0:
        raise ValueError(f"malformed tick {data}: expected [step >= 0, s_g >= 0, stamp_ns]")
    if n_global_states is not None and data[1] >= n_global_states:
        raise ValueError(f"tick {data[0]}: global state {data[1]} out of range, ignored")
    return Tick(int(data[0]), int(data[1]), int(data[2]))


def decode_answer(data: Sequence[int]) -> Answer:
    """[step, value] (a zone goal or a zone command) -> Answer; ValueError when malformed."""
    data = list(data)
    if len(data) != 2:
        raise ValueError(f"malformed answer {data}: expected [step, value]")
    return Answer(int(data[0]), int(data[1]))


def decode_goal_pairs(data: Sequence[int]) -> tuple[int, list[tuple[int, int]]]:
    """[step, i_0, goal_0, i_1, goal_1, ...] -> (step, [(i, goal), ...]); ValueError when malformed."""
    data = list(data)
    if len(data) < 3 or len(data) % 2 == 0 or data[0] < 0:
        raise ValueError(f"malformed zone-goal batch of {len(data)} values: expected [step, i_0, goal_0, ...]")
    return int(data[0]), [(int(i), int(g)) for i, g in zip(data[1::2], data[2::2], strict=True)]
