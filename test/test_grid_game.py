"""A game whose zones and moves differ from the ring warehouse deploys like it (issue 14, item 3).

config/games/grid.yaml: 8 zones on a 2 x 4 grid (config/zones_grid.yaml), local actions stay/N/S/E/W, with
a `floor:` section. The floor map (marl/games/floor.py) travels in the policy artifact; the nodes read it
instead of the ring's MOVES. The last test trains the game with `altmarl train` and runs it with
`altmarl swarm --mode model` over DDS (separate processes), then applies the ring warehouse's z-test of the
closed-loop reward against the NumPy evaluation (test_ros_closed_loop.test_reward_matches_numpy) to a
shorter run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from altmarl_ros.marl.games import floor_from_spec, make_game
from altmarl_ros.marl.games.files import GameFileError, game_from_dict, read_game_file
from altmarl_ros.marl.games.floor import FloorMap, ring_map
from altmarl_ros.zones import load_zones

ROOT = Path(__file__).resolve().parents[1]
GRID_GAME = ROOT / "config" / "games" / "grid.yaml"
GRID_ZONES = ROOT / "config" / "zones_grid.yaml"
Z_ALPHA, Z_POWER = 3.29, 0.84  # as test_ros_closed_loop: two-sided alpha 0.001, power 0.8
SHIFT = 0.5  # the smallest shift of the mean reward this short run must detect (the ring test's 4500 steps: 0.3)


def test_the_grid_floor_is_the_grid_of_the_zones_config():
    """Each move of the game file leads to the zone one grid pitch away in its direction, or (into a wall)
    stays; every zone is a local state; global action a activates zone a."""
    loaded = read_game_file(GRID_GAME)
    floor, zones = loaded.floor, load_zones(GRID_ZONES)
    assert floor is not None and floor.n_zones == zones.n_zones == 8
    centre = zones.centres[floor.local_state_zone]  # (S_l, 2) each local state's zone centre
    step = {"stay": (0, 0), "N": (0, 1), "S": (0, -1), "E": (1, 0), "W": (-1, 0)}
    for a, name in enumerate(loaded.game.names.local_actions):
        want = centre + zones.grid_pitch * np.array(step[name])
        inside = (np.abs(want) <= np.abs(zones.centres).max(0) + 1e-9).all(-1)
        got = zones.centres[floor.local_action_goal[:, a]]
        assert np.allclose(got[inside], want[inside]), name
        assert np.allclose(got[~inside], centre[~inside]), name  # a wall: the robot stays
    assert np.array_equal(floor.global_action_zone, np.arange(8))
    assert floor_from_spec({"name": str(GRID_GAME)}, loaded.game).local_action_goal.tolist() == \
        floor.local_action_goal.tolist()


def test_floor_map_decodes_goals_to_the_lowest_action():
    grid = read_game_file(GRID_GAME).floor
    assert grid is not None
    # r0c0 (zone 0): stay, N (wall), S -> 4, E -> 1, W (wall)
    assert grid.action_from_goal(np.array([0, 0, 0, 0, 0, -1]), np.array([0, 4, 1, 2, -1, 0])).tolist() == \
        [0, 2, 3, -1, -1, -1]
    assert grid.stay_action.tolist() == [0] * 8
    permuted = FloorMap([1, 0, 2], [[1, 0, 2], [1, 0, 2], [2, 0, 1]], [0, 1, 2])  # local state 0 is zone 1
    assert permuted.zone_state.tolist() == [1, 0, 2] and permuted.local_state(np.array([1, 0])).tolist() == [0, 1]
    assert permuted.stay_action.tolist() == [0, 1, 0]
    assert ring_map(5).goal_zone(4, 1) == 0 and ring_map(5).goal_zone(0, 2) == 4


@pytest.mark.parametrize("maps, message", [
    (([0, 0, 1], [[0], [0], [1]], [0]), "name each of the 3 zones once"),
    (([0, 1, 2], [[0], [1]], [0]), "2 rows"),
    (([0, 1, 2], [[0, 3], [1, 1], [2, 2]], [0]), "zones in \\[0, 3\\)"),
    (([0, 1, 2], [[1], [1], [2]], [0]), "no local action keeps a robot in local state 0"),
    (([0, 1, 2], [[0], [1], [2]], [-2]), "zones in \\[-1, 3\\)"),
])
def test_bad_floor_maps_fail_clearly(maps, message):
    with pytest.raises(ValueError, match=message):
        FloorMap(*maps)


def test_aliased_actions_must_be_the_same_action_for_the_game():
    """Two actions of a state with one goal zone must have equal P_l and r_l, else the swarm (which decodes a
    goal zone to the lowest action) would not play the game that was trained."""
    game = make_game("warehouse")
    aliased = FloorMap(np.arange(5), np.stack([np.arange(5)] * 3, -1), np.arange(5))  # every action: stay
    with pytest.raises(ValueError, match="cannot tell them apart"):
        aliased.check_game(game)


def _file_with_floor(floor: dict) -> dict:
    data = {"altmarl_game": 1, "gamma": 0.9, "global": {"states": ["g"], "actions": ["x"]},
            "local": {"states": ["a", "b", "c"], "actions": ["stay", "next"]},
            "P_g": [[[1.0]]], "P_l": {"*": {"*": {"stay": {"a": 1.0}, "next": {"b": 1.0}}}}, "r_g": 0, "r_l": 0,
            "floor": floor}
    data["P_l"] = {s: {"*": {"stay": {s: 1.0}, "next": {n: 1.0}}} for s, n in (("a", "b"), ("b", "c"), ("c", "a"))}
    return data


def test_a_game_file_floor_section_is_read_and_checked():
    floor = {"local_state_zone": {"a": 0, "b": 1, "c": 2},
             "local_action_goal": {"a": {"stay": "a", "next": "b"}, "b": {"stay": 1, "next": "c"},
                                   "c": {"stay": "c", "next": 0}},
             "global_action_zone": {"x": -1}}
    loaded = game_from_dict(_file_with_floor(floor))
    assert loaded.floor is not None and loaded.floor.local_action_goal.tolist() == [[0, 1], [1, 2], [2, 0]]
    bad = dict(floor, local_action_goal={"a": {"stay": "a", "next": "z"}, "*": {"stay": 0, "next": 0}})
    with pytest.raises(GameFileError, match=r"floor.local_action_goal\[a\]\[next\] must be a zone index"):
        game_from_dict(_file_with_floor(bad))
    with pytest.raises(GameFileError, match="floor: expected a mapping with exactly"):
        game_from_dict(_file_with_floor({"local_state_zone": [0, 1, 2]}))


def test_the_grid_game_trains_and_deploys_over_dds(ros_domain, tmp_path):
    """`altmarl train --game config/games/grid.yaml`, then `altmarl swarm --mode model --zones
    config/zones_grid.yaml` in separate processes: every answer decodes (no bad, no dropped), and the
    closed-loop reward passes the z-test against the NumPy evaluation of the same policies (H0: the ROS loop
    is the process marl.sim simulates; |z| <= 3.29), with enough steps to detect a shift of SHIFT with
    power 0.8, and clearly beats the random policies."""
    pytest.importorskip("rclpy")
    policy = tmp_path / "grid_k3"
    train = subprocess.run([sys.executable, "-m", "altmarl_ros.cli", "train", "--game", str(GRID_GAME), "--k", "3",
                            "--n-agents", "20", "--no-eval", "--out", str(policy)],
                           capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    assert json.loads(policy.with_suffix(".json").read_text())["floor"] == {"n_zones": 8}
    out = tmp_path / "run"
    run = subprocess.run([sys.executable, "-m", "altmarl_ros.ros.swarm", "--n-robots", "20", "--k", "3", "--steps",
                          "700", "--mode", "model", "--policy", str(policy.with_suffix(".npz")), "--zones",
                          str(GRID_ZONES), "--robots-per-process", "10", "--seed", "4", "--numpy-episodes", "60",
                          "--out", str(out), "--no-plots"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["steps"] == 700 and s["dropped_answers"] == 0 and s["controller_dropped"] == 0
    assert s["bad_answers"] == 0  # every goal zone decoded to a local action with the artifact's floor map
    spread = float(np.hypot(s["numpy_episode_std"], s["numpy_reward_stderr"]))
    assert (Z_ALPHA + Z_POWER) * spread <= SHIFT, f"s = {spread:.3f}: too few steps to detect a shift of {SHIFT}"
    z = (s["closed_loop_reward"] - s["numpy_reward"]) / spread
    assert abs(z) <= Z_ALPHA, (z, s["closed_loop_reward"], s["numpy_reward"], spread)
    random_spread = float(np.hypot(s["numpy_episode_std"], s["random_policy_reward_stderr"]))
    assert s["closed_loop_reward"] - s["random_policy_reward"] > Z_ALPHA * random_spread, s
