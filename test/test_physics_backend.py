"""The physics backend without ROS: start poses, the decision period, zones from physics, reports, rollouts."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("mujoco")

from altmarl_ros.marl.games import make_game
from altmarl_ros.physics.control import go_to_goal
from altmarl_ros.physics.world import load_world
from altmarl_ros.ros.backends.physics import PhysicsBackend, spawn_points
from altmarl_ros.ros.backends.rollout import episode, fixed_params, random_global, random_local

WORLD = load_world()
GAME = make_game("warehouse")


def test_decision_period_is_the_time_to_cross_one_zone():
    robot = WORLD.robot
    d = np.linalg.norm(WORLD.zones.centres[1] - WORLD.zones.centres[0])
    v, a = robot.max_linear_velocity, robot.max_linear_acceleration
    assert WORLD.decision_period() == pytest.approx(d / v + v / a)
    assert 5.0 < WORLD.decision_period() < 5.5


@pytest.mark.parametrize("n", [50, 1000])
def test_spawn_points_are_collision_free_and_in_their_zones(n):
    rng = np.random.default_rng(0)
    s_l = np.zeros(n, dtype=np.int64) if n == 1000 else rng.integers(0, 5, n)  # 1000 in one zone overflows
    xy, overflow = spawn_points(WORLD, s_l, rng)
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(n) * 99
    assert gaps.min() >= 2 * WORLD.robot.footprint_radius
    assert np.abs(xy).max() < WORLD.zones.arena_half_size - WORLD.robot.footprint_radius
    in_zone = WORLD.zones.zone_of(xy) == s_l
    assert (~in_zone).sum() == overflow
    assert (overflow > 0) == (n == 1000)


def test_backend_zones_come_from_physics_and_moves_are_timed():
    backend = PhysicsBackend(GAME, WORLD.zones, 6, fixed_params())
    snap = backend.reset(np.random.default_rng(3))
    np.testing.assert_array_equal(snap.s_l, WORLD.zones.zone_of(snap.xy))
    a_l = np.full(6, 1)  # everybody one zone up the ring
    backend.apply(0, a_l)
    target = WORLD.zones.centres[(snap.s_l + 1) % 5]
    for _ in range(round(WORLD.decision_period() / 0.1)):
        xy, yaw = backend.poses()
        backend.integrate(go_to_goal(xy, yaw, target), 0.1)
    after = backend.observe()
    moved = after.s_l == (snap.s_l + 1) % 5
    assert moved.mean() >= 0.5  # most robots crossed one zone within one decision period
    summary = backend.summary()
    assert summary["goal_zone_reached"] >= moved.sum()  # at the end in its goal zone: it entered it
    assert 0 < summary["mean_time_to_goal_zone_s"] <= WORLD.decision_period()
    assert backend.step_metrics()["interval_sim_seconds"] == pytest.approx(WORLD.decision_period(), abs=0.1)


def test_rollout_is_reproducible_and_paired_by_seed():
    kw = dict(n_agents=8, steps=3, decision_period=WORLD.decision_period())
    a = episode(GAME, WORLD.zones, random_global(GAME), random_local(GAME), seed=5, **kw)
    b = episode(GAME, WORLD.zones, random_global(GAME), random_local(GAME), seed=5, **kw)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    np.testing.assert_array_equal(a.transitions.s_l, b.transitions.s_l)
    np.testing.assert_array_equal(a.transitions.s_l[1:], a.transitions.s_l_next[:-1])
    assert math.isfinite(a.summary["engine_real_time_factor"])


def test_bad_fidelity_fails_clearly():
    with pytest.raises(ValueError, match="fidelity"):
        PhysicsBackend(GAME, WORLD.zones, 2, fixed_params(fidelity="soft"))
