"""The simulator backends behind sim_node (ROS-free): the registry and each backend's world."""

import numpy as np
import pytest

from altmarl_ros.marl import sim as marl_sim
from altmarl_ros.marl.games import make_game
from altmarl_ros.ros.backends import BACKENDS, MODES, backend_class, drives
from altmarl_ros.ros.backends.base import SimBackend, Snapshot
from altmarl_ros.zones import Zones


def _param(values=None):
    declared = {}

    def param(name, default, description, *, low=None, high=None):
        declared[name] = default
        return (values or {}).get(name, default)
    return param, declared


def _make(mode, n=6, **values):
    game = make_game("warehouse")
    param, declared = _param(values)
    backend = backend_class(mode)(game, Zones(), n, param)
    return game, backend, declared


def test_registry_lists_subclasses_whose_drives_flag_matches_without_importing():
    assert tuple(BACKENDS) == MODES and {"model", "kinematic"} <= set(MODES)
    for mode in MODES:
        cls = backend_class(mode)
        assert issubclass(cls, SimBackend) and cls.drives == drives(mode)
    with pytest.raises(ValueError, match=r"unknown simulator mode 'warp'.*model"):
        backend_class("warp")


@pytest.mark.parametrize("mode", ["model", "kinematic"])
def test_reset_draws_the_same_initial_world_from_the_seed(mode):
    game, backend, declared = _make(mode)
    assert "pose_jitter" in declared
    snap = backend.reset(np.random.default_rng(3))
    assert isinstance(snap, Snapshot) and snap.xy.shape == (6, 2) and snap.yaw.shape == (6,)
    ref = marl_sim.reset(game, np.random.default_rng(3), n_agents=6, batch=1)
    assert snap.s_g == ref.s_g[0] and np.array_equal(snap.s_l, ref.s_l[0])
    assert np.array_equal(Zones().zone_of(snap.xy), snap.s_l)  # robots start inside their zones


def test_model_applies_exactly_the_games_transition():
    game, backend, _ = _make("model")
    backend.reset(np.random.default_rng(5))
    twin = np.random.default_rng(5)
    ref_state = marl_sim.reset(game, twin, n_agents=6, batch=1)
    twin.random(6), twin.random(6), twin.random(6)  # the layout's draws
    a_l = np.array([0, 1, 2, 0, 1, 2]) % game.n_local_actions
    out = backend.apply(1, a_l)
    ref = marl_sim.step(game, twin, ref_state, np.array([1]), a_l[None, :])
    assert out.reward == pytest.approx(float(ref.reward[0])) and out.s_g == ref.state.s_g[0]
    snap = backend.observe()
    assert np.array_equal(snap.s_l, ref.state.s_l[0]) and snap.s_g == out.s_g
    assert np.array_equal(Zones().zone_of(snap.xy), snap.s_l)  # poses follow the zones
    with pytest.raises(NotImplementedError):
        backend.integrate(np.zeros((6, 2)), 0.1)


def test_kinematic_integrates_cmd_vel_and_derives_zones_from_positions():
    _, backend, declared = _make("kinematic", noise_std=0.0)
    assert {"noise_std", "max_speed"} <= set(declared)
    before = backend.reset(np.random.default_rng(0)).xy.copy()
    yaw = backend.poses()[1].copy()
    cmd = np.zeros((6, 2))
    cmd[0] = (0.5, 0.0)  # robot 0 drives straight at 0.5 m/s for 1 s; the others stand still
    cmd[1] = (5.0, 0.0)  # clamped to max_speed = 1 m/s
    for _ in range(10):
        backend.integrate(cmd, 0.1)
    xy = backend.poses()[0]
    assert np.allclose(xy[0] - before[0], 0.5 * np.array([np.cos(yaw[0]), np.sin(yaw[0])]), atol=1e-9)
    assert np.linalg.norm(xy[1] - before[1]) <= 1.0 + 1e-9
    assert np.allclose(xy[2:], before[2:])
    backend.xy = np.array([Zones().centres[z] for z in (4, 3, 2, 1, 0, 0)])
    assert np.array_equal(backend.observe().s_l, [4, 3, 2, 1, 0, 0])
