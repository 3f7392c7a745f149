"""`altmarl identify`: counts -> Dirichlet posterior of P_l; bags in, a trainable game file out.

The synthetic bag is written with `rosbags` (no rclpy) in the swarm's topic contract from a known
kernel: a warehouse game whose moves succeed far more often than the nominal model's. The robots' poses
are stamped at the ticks, their zone goals travel on /swarm/zone_goals and on per-robot topics.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from altmarl_ros.bagdata import BagError, read_transitions
from altmarl_ros.marl import sim as marl_sim
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.games.warehouse import MOVES
from altmarl_ros.marl.identify import Transitions, dirichlet_posterior, identify, local_counts, mean_tv
from altmarl_ros.marl.policy import RandomGlobalPolicy, TabularLocalPolicy
from altmarl_ros.paths import share_path
from altmarl_ros.zones import load_zones

ZONES = load_zones(share_path("config/zones.yaml"))
N_ROBOTS = 12


def true_game() -> TabularGame:
    """The warehouse with a different P_l: a move succeeds with 0.8, else the robot stays (physics-like)."""
    nominal = make_game("warehouse")
    Z = ZONES.n_zones
    P_l = np.zeros_like(nominal.P_l)
    for s in range(Z):
        for a, move in enumerate(MOVES):
            P_l[s, :, a, (s + move) % Z] += 0.8 if move else 0.95
            P_l[s, :, a, s] += 0.2 if move else 0.0
            if not move:
                P_l[s, :, a, (s + 1) % Z] += 0.05
    return TabularGame(P_g=nominal.P_g, P_l=P_l, r_g=nominal.r_g, r_l=nominal.r_l, gamma=nominal.gamma,
                       init_g=nominal.init_g, init_l_concentration=0.0, name="true")


def simulate(game: TabularGame, steps: int, seed: int) -> Transitions:
    rng = np.random.default_rng(seed)
    state = marl_sim.reset(game, rng, n_agents=N_ROBOTS, batch=1)
    pi_l = TabularLocalPolicy.uniform(game.n_global_states, game.n_local_states, game.n_local_actions)
    rec: dict[str, list] = {k: [] for k in Transitions._fields}
    for _ in range(steps):
        a_g = RandomGlobalPolicy(game.n_global_actions).act_on(rng, state.s_g, state.s_l)
        a_l = pi_l.sample(rng, state.s_g, state.s_l)
        nxt = marl_sim.step(game, rng, state, a_g, a_l).state
        for key, value in zip(Transitions._fields, (state.s_g[0], a_g[0], nxt.s_g[0], state.s_l[0], a_l[0],
                                                    nxt.s_l[0]), strict=True):
            rec[key].append(value)
        state = nxt
    return Transitions(*(np.asarray(rec[k]) for k in Transitions._fields))


def write_bag(path: Path, tr: Transitions, *, with_ticks: bool = True, per_robot_goals: bool = False) -> Path:
    """A rosbag2 (mcap) of the decision steps of `tr`, as sim_node records it (plus one final tick)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    T = ts.types
    layout = T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    rng = np.random.default_rng(0)
    offset = rng.uniform(-0.5, 0.5, (N_ROBOTS, 2))
    steps = tr.steps
    zones_seq = np.vstack([tr.s_l, tr.s_l_next[-1:]])  # zones at ticks 0..T
    s_g_seq = np.append(tr.s_g, tr.s_g_next[-1])
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        def conn(topic, msgtype):
            return writer.add_connection(topic, msgtype, typestore=ts)

        tick_c = conn("/swarm/tick", "std_msgs/msg/Int64MultiArray") if with_ticks else None
        cmd_c = conn("/swarm/zone_command", "std_msgs/msg/Int32MultiArray")
        goals_c = conn("/swarm/zone_goals", "std_msgs/msg/Int32MultiArray")
        pose_c = [conn(f"/robot_{i}/pose", "geometry_msgs/msg/PoseStamped") for i in range(N_ROBOTS)]
        goal_c = [conn(f"/robot_{i}/zone_goal", "std_msgs/msg/Int32MultiArray") for i in range(N_ROBOTS)]
        t_ns = 0
        for t in range(steps + 1):
            stamp = t * 5_000_000_000
            sec, nanosec = divmod(stamp, 1_000_000_000)
            xy = ZONES.centres[zones_seq[t]] + offset
            for i in range(N_ROBOTS):
                header = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                                                  frame_id="world")
                pose = T["geometry_msgs/msg/Pose"](
                    position=T["geometry_msgs/msg/Point"](x=xy[i, 0], y=xy[i, 1], z=0.0),
                    orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0))
                msg = T["geometry_msgs/msg/PoseStamped"](header=header, pose=pose)
                writer.write(pose_c[i], t_ns := t_ns + 1, ts.serialize_cdr(msg, "geometry_msgs/msg/PoseStamped"))
            if tick_c is not None:
                tick = T["std_msgs/msg/Int64MultiArray"](layout=layout, data=np.array([t, s_g_seq[t], stamp],
                                                                                       dtype=np.int64))
                writer.write(tick_c, t_ns := t_ns + 1, ts.serialize_cdr(tick, "std_msgs/msg/Int64MultiArray"))
            if t == steps:
                break
            goal = (tr.s_l[t] + np.asarray(MOVES)[tr.a_l[t]]) % ZONES.n_zones
            if per_robot_goals:
                for i in range(N_ROBOTS):
                    msg = T["std_msgs/msg/Int32MultiArray"](layout=layout, data=np.array([t, goal[i]], dtype=np.int32))
                    writer.write(goal_c[i], t_ns := t_ns + 1, ts.serialize_cdr(msg, "std_msgs/msg/Int32MultiArray"))
            else:
                data = np.concatenate([[t], np.stack([np.arange(N_ROBOTS), goal], -1).ravel()]).astype(np.int32)
                msg = T["std_msgs/msg/Int32MultiArray"](layout=layout, data=data)
                writer.write(goals_c, t_ns := t_ns + 1, ts.serialize_cdr(msg, "std_msgs/msg/Int32MultiArray"))
            cmd = T["std_msgs/msg/Int32MultiArray"](layout=layout, data=np.array([t, tr.a_g[t]], dtype=np.int32))
            writer.write(cmd_c, t_ns := t_ns + 1, ts.serialize_cdr(cmd, "std_msgs/msg/Int32MultiArray"))
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    game = true_game()
    tr = simulate(game, 400, seed=1)
    bag = write_bag(tmp_path_factory.mktemp("bags") / "run", tr)
    return game, tr, bag


def test_bag_gives_back_the_recorded_transitions(recorded):
    _, tr, bag = recorded
    read = read_transitions(bag, ZONES)
    for field in Transitions._fields:
        np.testing.assert_array_equal(getattr(read, field), getattr(tr, field), err_msg=field)


def test_per_robot_goal_topics_work_too(recorded, tmp_path):
    _, tr, _ = recorded
    bag = write_bag(tmp_path / "per_robot", tr.head(30), per_robot_goals=True)
    np.testing.assert_array_equal(read_transitions(bag, ZONES).a_l, tr.head(30).a_l)


def test_identify_recovers_a_known_kernel_within_its_intervals(recorded):
    game, _, bag = recorded
    tr = read_transitions(bag, ZONES)
    nominal = make_game("warehouse")
    result = identify(tr, nominal, prior="uniform", strength=1.0, level=0.95)
    counts = result.P_l.row_counts
    assert counts.sum() == tr.steps * N_ROBOTS
    # 95 % intervals per entry: the true kernel falls inside for about 95 % of the entries of visited rows
    assert result.P_l.covers(game.P_l, min_count=20) >= 0.9
    # ... while the nominal model, which is far from the truth here, does not
    assert result.P_l.covers(nominal.P_l, min_count=20) < 0.5
    assert mean_tv(result.P_l.mean, game.P_l, counts) < 0.1
    # P_g is the game's own: the check finds it inside its intervals
    assert result.report["P_g_nominal_inside_intervals"] >= 0.9


def test_identification_error_shrinks_with_recorded_steps(recorded):
    game, tr, _ = recorded
    nominal = make_game("warehouse")
    tv = [mean_tv(identify(tr.head(steps), nominal, prior="uniform", strength=1.0).P_l.mean, game.P_l,
                  local_counts(tr, (5, 5, 3)).sum(-1)) for steps in (25, 100, 400)]
    assert tv[0] > tv[1] > tv[2]


def test_posterior_is_the_prior_without_data_and_intervals_nest():
    prior = np.array([[0.2, 0.3, 0.5]])
    empty = dirichlet_posterior(np.zeros((1, 3)), prior, strength=4.0)
    np.testing.assert_allclose(empty.mean, prior)
    data = dirichlet_posterior(np.array([[2.0, 30.0, 8.0]]), prior, strength=4.0, level=0.9)
    wide = dirichlet_posterior(np.array([[2.0, 30.0, 8.0]]), prior, strength=4.0, level=0.99)
    assert (wide.lower <= data.lower).all() and (wide.upper >= data.upper).all()
    np.testing.assert_allclose(data.mean, (4 * prior + [[2, 30, 8]]) / 44)


def test_bag_without_the_needed_topics_fails_clearly(recorded, tmp_path):
    _, tr, _ = recorded
    bag = write_bag(tmp_path / "no_ticks", tr.head(5), with_ticks=False)
    with pytest.raises(BagError, match="lacks /swarm/tick"):
        read_transitions(bag, ZONES)
    with pytest.raises(BagError, match="not a rosbag2 directory"):
        read_transitions(tmp_path, ZONES)


def test_cli_identify_writes_a_game_the_trainer_accepts(recorded, tmp_path, capsys):
    from altmarl_ros.cli import main
    from altmarl_ros.marl.games.files import load_game_file

    _, _, bag = recorded
    out = tmp_path / "identified.yaml"
    assert main(["identify", "--bag", str(bag), "--out", str(out)]) == 0
    game = load_game_file(out)
    report = json.loads(out.with_suffix(".identify.json").read_text())
    assert report["robot_transitions"] == 400 * N_ROBOTS
    np.testing.assert_allclose(game.P_l, np.array(report["tables"]["P_l"]["mean"]), atol=1e-12)
    assert main(["train", "--game", str(out), "--k", "2", "--no-eval", "--n-agents", "20",
                 "--out", str(tmp_path / "policy")]) == 0
    assert (tmp_path / "policy.npz").is_file()
    assert main(["identify", "--bag", str(tmp_path), "--out", str(tmp_path / "x.yaml")]) == 2
    assert "not a rosbag2 directory" in capsys.readouterr().err
