"""The run summary of `altmarl swarm` as a type: `SwarmSummary`, written to DIR/summary.json. ROS-free.

The JSON is flat (the keys tests, benchmarks and users read: `summary["steps_per_second"]`); the
record is nested by topic. Every field name is its JSON key; `to_json` flattens the groups in field
order and `from_json` rebuilds them, so `from_json(s.to_json()).to_json() == s.to_json()`. Two parts
are optional: `physics` (present for `--mode physics` only; its `simulator` dict holds the physics
simulator's own report, the `PHYSICS_KEYS` it wrote) and `plots` (absent with `--no-plots`).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from altmarl_ros.marl.artifacts import atomic_write_text

# What the physics simulator's record contributes (sim_node's summary + the physics backend's report).
PHYSICS_KEYS = ("sim_seconds", "real_time_factor", "engine_real_time_factor", "physics_fidelity", "physics_timestep",
                "collisions", "wall_contacts", "robots_stuck", "robots_stuck_note", "goal_zone_moves",
                "goal_zone_reached", "goal_zone_reached_fraction", "mean_time_to_goal_zone_s",
                "mean_time_to_goal_zone_note", "max_overlap_m", "min_tilt", "spawn_overflow", "cmd_vel_dropped",
                "spawn_displacement_m", "spawn_displacement_note")  # the last two: continuous policies (corridor)
FLAT = {"flatten": True}  # field metadata: a dict whose items are top-level keys


@dataclass(frozen=True)
class RunSettings:
    """What was run (the command line, resolved)."""

    steps_requested: int
    n_robots: int
    k: int
    mode: str
    observation: str
    lockstep: bool
    single_process: bool
    robots_per_process: int
    seed: int
    policy: str
    game: dict[str, Any]  # the artifact's game_spec
    dds_profile: str | None  # FASTDDS_DEFAULT_PROFILES_FILE of the run, None = Fast DDS defaults
    ros_domain_id: int | None = None  # ROS_DOMAIN_ID of the run (altmarl_ros.domains)
    ros_domain_source: str = ""  # 'claimed' (a free domain held for the run) or 'environment' (ROS_DOMAIN_ID set)
    ros_discovery_range: str = ""  # ROS_AUTOMATIC_DISCOVERY_RANGE of the run


@dataclass(frozen=True)
class RewardComparison:
    """Mean reward per step: closed loop (batch-means stderr) vs the NumPy evaluation of the same policies
    (`agreement_z` = (closed - numpy) / sqrt(episode_std^2 + stderr^2)) and of random policies."""

    closed_loop_reward: float
    closed_loop_reward_stderr: float
    numpy_reward: float
    numpy_reward_stderr: float
    numpy_episode_std: float
    numpy_episodes: int
    numpy_comparable: bool  # model mode: the closed loop samples the same game
    agreement_z: float
    random_policy_reward: float
    random_policy_reward_stderr: float


@dataclass(frozen=True)
class AnswerTotals:
    """Answers over the run (the simulator's totals include what it heard after its last row)."""

    dropped_answers: int
    controller_dropped: int
    bad_answers: int
    late_answers: int
    duplicate_answers: int


@dataclass(frozen=True)
class Timing:
    """Throughput and latencies (percentiles over steps, NaN-free values only)."""

    steps_per_second: float
    controller_latency_ms_p50: float
    controller_latency_ms_p95: float
    controller_latency_ms_max: float
    controller_rtt_ms_p50: float
    controller_rtt_ms_p95: float
    step_seconds_p50: float
    step_seconds_p95: float


@dataclass(frozen=True)
class PoseTotals:
    """The controller's sampled poses: missing / stale over the run, most pose subscriptions held."""

    missing_poses: int
    stale_poses: int
    max_pose_subscriptions: int


@dataclass(frozen=True)
class RobotHealth:
    """host -> robots that never answered the first step / were no longer waited for at the end."""

    lost_robots: dict[str, list[str]]
    silent_at_end: dict[str, list[str]]
    tolerate_lost_robots: bool


@dataclass(frozen=True)
class Outcome:
    """How the run went: node failures (text), respawns ({node, exit, at_step, respawn}), the bag."""

    node_failures: tuple[str, ...]
    respawns: tuple[dict[str, Any], ...]
    interrupted: bool
    stalled: bool
    wall_seconds: float
    bag: str | None


@dataclass(frozen=True)
class PhysicsReport:
    """`--mode physics`: the simulator's physics report and the random policies in the same physics
    (`physics_vs_random_z`: see `swarm_report.physics_report`)."""

    simulator: dict[str, Any] = field(metadata=FLAT)  # PHYSICS_KEYS the simulator wrote
    decision_period_s: float
    control_rate_hz: float
    random_policy_reward_physics: float
    random_policy_reward_physics_stderr: float
    random_policy_physics_episodes: int
    physics_vs_random_z: float


@dataclass(frozen=True)
class SwarmSummary:
    """DIR/summary.json of one `altmarl swarm` run; `per_step` holds the simulator's rows joined with the
    controller's (latency, missing/stale poses, sample)."""

    steps: int
    settings: RunSettings
    rewards: RewardComparison
    answers: AnswerTotals
    timing: Timing
    poses: PoseTotals
    robots: RobotHealth
    outcome: Outcome
    physics: PhysicsReport | None  # None: not a physics run
    per_step: tuple[dict[str, Any], ...]
    plots: tuple[str, ...] | None = None  # PNG file names in DIR; None = not drawn

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON object (sequences as lists; None groups and plots left out)."""
        return _flatten(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=float) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SwarmSummary:
        return _build(cls, data)

    @classmethod
    def from_json(cls, text: str) -> SwarmSummary:
        return cls.from_dict(json.loads(text))

    def write(self, path: str | Path) -> None:
        """Write atomically (a temporary file renamed over `path`): never half-written."""
        atomic_write_text(Path(path), self.to_json())

    @classmethod
    def read(cls, path: str | Path) -> SwarmSummary:
        return cls.from_json(Path(path).read_text())


OPTIONAL = ("physics", "plots")  # left out of the JSON when None


def _flatten(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if value is None and f.name in OPTIONAL:
            continue
        if dataclasses.is_dataclass(value):
            out.update(_flatten(value))
        elif f.metadata.get("flatten"):
            out.update(value)
        else:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _build(cls: Any, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        types = (hints[f.name], *typing.get_args(hints[f.name]))  # X, or the members of X | None
        group = next((t for t in types if dataclasses.is_dataclass(t)), None)
        if group is PhysicsReport and "random_policy_physics_episodes" not in data:
            values[f.name] = None
        elif group is not None:
            values[f.name] = _build(group, data)
        elif f.metadata.get("flatten"):
            values[f.name] = {key: data[key] for key in PHYSICS_KEYS if key in data}
        elif f.name in OPTIONAL and f.name not in data:
            values[f.name] = None
        else:
            value = data[f.name]
            is_tuple = any(typing.get_origin(t) is tuple for t in types)
            values[f.name] = tuple(value) if is_tuple and value is not None else value
    return cls(**values)
