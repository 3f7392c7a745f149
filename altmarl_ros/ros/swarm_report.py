"""The report of an `altmarl swarm` run: its records joined into a `SwarmSummary`. ROS-free.

Reads what the nodes wrote (DIR/sim_record.json, the controller's record beside it; what the monitor
heard over DDS when a record is missing), evaluates the same policies in NumPy (`ros.compare`), and
for `--mode physics` runs the random-policy baseline in the same physics in process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from altmarl_ros.contract import SimMode
from altmarl_ros.marl.artifacts import PolicyArtifact
from altmarl_ros.marl.continuous.deploy import Deployed
from altmarl_ros.ros.bringup import SwarmOptions, controller_record_path
from altmarl_ros.ros.dds import ENV_VAR
from altmarl_ros.ros.swarm_runner import RunOutcome
from altmarl_ros.ros.swarm_summary import (
    PHYSICS_KEYS,
    AnswerTotals,
    Outcome,
    PhysicsReport,
    PoseTotals,
    RewardComparison,
    RobotHealth,
    RunSettings,
    SwarmSummary,
    Timing,
)


def _percentile(values: list[float], q: float) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.percentile(finite, q)) if finite else math.nan


def read_records(out: Path, outcome: RunOutcome) -> tuple[dict[str, Any] | None, list[dict], list[dict]]:
    """(sim record or None, per-step rows joined with the controller's, controller rows). The nodes' own
    records are complete; what the monitor heard over DDS may miss messages under load."""
    record_file = out / "sim_record.json"
    sim_record = json.loads(record_file.read_text()) if record_file.is_file() else None
    per_step: list[dict[str, Any]] = sim_record["per_step"] if sim_record else outcome.metrics
    controller: list[dict[str, Any]] = outcome.controller
    controller_file = Path(controller_record_path(str(record_file)))
    if controller_file.is_file():
        controller = json.loads(controller_file.read_text())["per_step"]
    by_step = {int(c["step"]): c for c in controller if "step" in c}
    for row in per_step:
        c = by_step.get(int(row["step"]))
        row["controller_latency_ms"] = float(c["latency_ms"]) if c else math.nan
        row["missing_poses"] = int(c["missing"]) if c else -1
        row["stale_poses"] = int(c["stale"]) if c else -1
        row["sample"] = c.get("sample", "") if c else ""
    return sim_record, per_step, controller


def compare_rewards(args: argparse.Namespace, artifact: PolicyArtifact | Deployed,
                    rewards: np.ndarray) -> RewardComparison:
    """The closed loop's mean reward vs NumPy episodes of the same length (same policies, and random ones)."""
    from altmarl_ros.ros.compare import batch_means_stderr, continuous_reference, random_policies, reference

    rng = np.random.default_rng(args.seed + 7)
    horizon = max(rewards.size, 1)
    # the random loop's episode spread is far smaller than the policies' (a baseline, not the tested value)
    random_episodes = max(10, args.numpy_episodes // 4)
    if isinstance(artifact, Deployed):
        common = dict(n_agents=args.n_robots, k=args.k, steps=horizon)
        ref = continuous_reference(artifact, rng, random=False, episodes=args.numpy_episodes, **common)
        rnd = continuous_reference(artifact, rng, random=True, episodes=random_episodes, **common)
    else:
        game = artifact.game
        ref = reference(game, artifact.pi_g, artifact.pi_l, rng, n_agents=args.n_robots, steps=horizon,
                        episodes=args.numpy_episodes)
        rnd = reference(game, None, random_policies(game), rng, n_agents=args.n_robots, steps=horizon,
                        episodes=random_episodes)
    closed = float(rewards.mean()) if rewards.size else math.nan
    spread = math.sqrt(ref.episode_std ** 2 + ref.stderr ** 2)
    return RewardComparison(
        closed_loop_reward=closed, closed_loop_reward_stderr=batch_means_stderr(rewards),
        numpy_reward=ref.mean, numpy_reward_stderr=ref.stderr, numpy_episode_std=ref.episode_std,
        numpy_episodes=ref.episodes, numpy_comparable=args.mode == SimMode.MODEL,
        agreement_z=(closed - ref.mean) / spread if spread > 0 else math.nan,
        random_policy_reward=rnd.mean, random_policy_reward_stderr=rnd.stderr)


def timing(per_step: list[dict], sim_record: dict[str, Any]) -> Timing:
    latencies = [r["controller_latency_ms"] for r in per_step]
    rtts = [r.get("controller_rtt_ms", math.nan) for r in per_step]
    seconds = [r.get("step_seconds", math.nan) for r in per_step]
    busy = float(np.nansum(seconds)) if seconds else 0.0
    return Timing(
        steps_per_second=sim_record.get("steps_per_second", len(per_step) / busy if busy > 0 else math.nan),
        controller_latency_ms_p50=_percentile(latencies, 50), controller_latency_ms_p95=_percentile(latencies, 95),
        controller_latency_ms_max=_percentile(latencies, 100),
        controller_rtt_ms_p50=_percentile(rtts, 50), controller_rtt_ms_p95=_percentile(rtts, 95),
        step_seconds_p50=_percentile(seconds, 50), step_seconds_p95=_percentile(seconds, 95))


def answer_totals(per_step: list[dict], sim_record: dict[str, Any]) -> AnswerTotals:
    """Sums over the rows; the simulator's totals also hold what was heard after its last recorded step."""
    def total(key: str) -> int:
        return int(sim_record.get(key, sum(r.get(key, 0) for r in per_step)))

    return AnswerTotals(dropped_answers=int(sum(r["dropped_robots"] for r in per_step)),
                        controller_dropped=int(sum(r["controller_dropped"] for r in per_step)),
                        bad_answers=total("bad_answers"), late_answers=total("late_answers"),
                        duplicate_answers=total("duplicate_answers"))


def summarize(args: argparse.Namespace, options: SwarmOptions, policy_path: Path, artifact: PolicyArtifact | Deployed,
              out: Path, outcome: RunOutcome) -> SwarmSummary:
    """The run's summary from its records (see the module docstring)."""
    record, per_step, controller = read_records(out, outcome)
    sim_record = record or {}
    rewards = np.array([r["reward"] for r in per_step], dtype=np.float64)
    settings = RunSettings(
        steps_requested=args.steps, n_robots=args.n_robots, k=args.k, mode=args.mode, observation=args.observation,
        lockstep=options.lockstep, single_process=bool(args.single_process),
        robots_per_process=args.robots_per_process, seed=args.seed, policy=str(policy_path),
        game=artifact.game_spec, dds_profile=os.environ.get(ENV_VAR) or None)
    poses = PoseTotals(
        missing_poses=int(sum(max(r["missing_poses"], 0) for r in per_step)),
        stale_poses=int(sum(max(r["stale_poses"], 0) for r in per_step)),
        max_pose_subscriptions=max((int(c.get("max_pose_subscriptions", 0)) for c in controller), default=0))
    robots = RobotHealth(lost_robots=sim_record.get("lost_robots", {}),
                         silent_at_end=sim_record.get("silent_at_end", {}),
                         tolerate_lost_robots=bool(args.tolerate_lost_robots))
    run = Outcome(node_failures=tuple(outcome.failures), respawns=tuple(outcome.respawns),
                  interrupted=outcome.interrupted, stalled=outcome.stalled, wall_seconds=outcome.wall_seconds,
                  bag=options.bag_path or None)
    physics = physics_report(args, options, artifact, sim_record, rewards) if args.mode == SimMode.PHYSICS else None
    return SwarmSummary(steps=len(per_step), settings=settings, rewards=compare_rewards(args, artifact, rewards),
                        answers=answer_totals(per_step, sim_record), timing=timing(per_step, sim_record),
                        poses=poses, robots=robots, outcome=run, physics=physics, per_step=tuple(per_step))


def physics_report(args: argparse.Namespace, options: SwarmOptions, artifact: PolicyArtifact | Deployed,
                   sim_record: dict[str, Any], rewards: np.ndarray) -> PhysicsReport:
    """Physics run extras: the simulator's physics report, and the random policies in the same physics.

    The random baseline runs in-process (`altmarl_ros.ros.backends.rollout`, same world, controller law, decision
    period and control rate); its first episode starts from the run's own start state (same seed).
    `physics_vs_random_z` = (closed - random) / sqrt(se_closed^2 + se_random^2), both stderrs by batch means
    over steps (and over episodes for the baseline), 10 batches each: > 2.82 (Student's t, 9 degrees of freedom)
    is a conservative one-sided 1 % test that the policies beat the random ones in physics.
    """
    from altmarl_ros.ros.backends.rollout import episode, random_global, random_local
    from altmarl_ros.ros.common import resolve_zones
    from altmarl_ros.ros.compare import batch_means_stderr

    simulator = {key: sim_record[key] for key in PHYSICS_KEYS if key in sim_record}
    if args.physics_baseline_episodes < 1:
        return PhysicsReport(simulator, options.step_period, options.physics_rate, math.nan, math.nan, 0, math.nan)
    zones = resolve_zones(options.zones)
    steps = max(len(rewards), 1)
    baseline = []
    for e in range(args.physics_baseline_episodes):
        common = dict(n_agents=args.n_robots, steps=steps, seed=args.seed + e, decision_period=options.step_period,
                      control_period=1.0 / options.physics_rate, fidelity=options.fidelity)
        if isinstance(artifact, Deployed):
            from altmarl_ros.ros.backends import corridor_physics
            baseline.append(corridor_physics.episode(artifact, zones, random=True, k=args.k, **common))
        else:
            baseline.append(episode(artifact.game, zones, random_global(artifact.game), random_local(artifact.game),
                                    floor=artifact.floor, **common).rewards)
    per_episode = np.array([b.mean() for b in baseline])
    # independent episodes: the mean's stderr combines each episode's batch-means stderr
    random_se = float(np.sqrt(sum(batch_means_stderr(b) ** 2 for b in baseline)) / len(baseline))
    closed, closed_se = float(rewards.mean()), batch_means_stderr(rewards)
    spread = math.sqrt(closed_se ** 2 + random_se ** 2)
    return PhysicsReport(
        simulator=simulator, decision_period_s=options.step_period, control_rate_hz=options.physics_rate,
        random_policy_reward_physics=float(per_episode.mean()), random_policy_reward_physics_stderr=random_se,
        random_policy_physics_episodes=int(per_episode.size),
        physics_vs_random_z=(closed - float(per_episode.mean())) / spread if spread > 0 else math.nan)


def report_lines(summary: SwarmSummary, out: Path) -> list[str]:
    """The console report (one line, two for physics)."""
    s, r, t = summary.settings, summary.rewards, summary.timing
    lines = [f"altmarl swarm: {summary.steps} steps, n={s.n_robots}, k={s.k}: closed-loop reward "
             f"{r.closed_loop_reward:.3f} +- {r.closed_loop_reward_stderr:.3f}, NumPy "
             f"{r.numpy_reward:.3f} +- {r.numpy_reward_stderr:.3f} (episode sd "
             f"{r.numpy_episode_std:.3f}), random {r.random_policy_reward:.3f}; "
             f"{t.steps_per_second:.1f} steps/s, controller latency p50 "
             f"{t.controller_latency_ms_p50:.1f} ms p95 {t.controller_latency_ms_p95:.1f} ms, "
             f"dropped answers {summary.answers.dropped_answers}; {out / 'summary.json'}"]
    p = summary.physics
    if p is not None:
        sim = p.simulator
        lines.append(f"altmarl swarm: physics ({sim.get('physics_fidelity')}): real-time factor "
                     f"{sim.get('real_time_factor', math.nan):.2f}, random policies in physics "
                     f"{p.random_policy_reward_physics:.3f} +- {p.random_policy_reward_physics_stderr:.3f} "
                     f"(z = {p.physics_vs_random_z:.1f}), collisions {sim.get('collisions')}, robot-steps "
                     f"stuck {sim.get('robots_stuck')}, " + (
                         f"start places {sim['spawn_displacement_m']:.2f} m from the drawn x on average"
                         if "spawn_displacement_m" in sim else  # a continuous policy's corridor
                         f"mean time to goal zone {sim.get('mean_time_to_goal_zone_s', math.nan):.2f} s"))
    return lines
