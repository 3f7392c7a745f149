"""Games from files: the format, its errors (naming file, key and row), and round trips to the built-ins."""

import copy

import numpy as np
import pytest
import yaml

from altmarl_ros.marl.config import ConfigError, load_train_config
from altmarl_ros.marl.games import GAMES, make_game
from altmarl_ros.marl.games.files import GameFileError, read_game_file, write_game_file
from altmarl_ros.paths import source_root

CONFIG = source_root() / "config"

# A two-zone game written with every compact form: '*' defaults, sparse rows, lists, a scalar reward.
SMALL = {
    "altmarl_game": 1,
    "name": "small",
    "gamma": 0.9,
    "n_agents": 20,
    "global": {"states": ["left", "right"], "actions": ["go_left", "go_right"]},
    "local": {"states": ["a", "b", "c"], "actions": ["stay", "move"]},
    "init_g": {"left": 1.0},
    "init_l": {"dirichlet": 0.5},
    "P_g": {"*": {"go_left": {"left": 1.0}, "go_right": [0.2, 0.8]}},
    "P_l": {
        "a": {"*": {"stay": {"a": 1.0}, "move": {"b": 0.9, "a": 0.1}}},
        "b": {"left": {"*": [0.5, 0.5, 0.0]}, "right": {"stay": {"b": 1.0}, "move": {"c": 1.0}}},
        "c": {"*": {"*": {"c": 1.0}}},
    },
    "r_g": 1.0,
    "r_l": {"a": 0.0, "b": {"left": [1.0, 2.0], "right": 3.0}, "c": {"*": {"stay": -1.0, "move": 0.5}}},
}


def _write(tmp_path, data, name="game.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_compact_forms_mean_what_the_format_says(tmp_path):
    loaded = read_game_file(_write(tmp_path, SMALL))
    game = loaded.game
    assert loaded.n_agents == 20 and game.name == "small" and game.gamma == 0.9
    assert game.names.local_states == ("a", "b", "c") and game.names.global_actions == ("go_left", "go_right")
    assert np.array_equal(game.P_g[0, 1], [0.2, 0.8]) and np.array_equal(game.P_g[1, 0], [1.0, 0.0])
    assert np.array_equal(game.P_l[0, 1, 1], [0.1, 0.9, 0.0])  # sparse row, '*' over the global state
    assert np.array_equal(game.P_l[1, 0, 1], [0.5, 0.5, 0.0]) and np.array_equal(game.P_l[1, 1, 1], [0, 0, 1])
    assert np.all(game.r_g == 1.0)
    assert np.array_equal(game.r_l[1], [[1.0, 2.0], [3.0, 3.0]]) and np.array_equal(game.r_l[2, :, 0], [-1, -1])
    assert np.array_equal(game.init_g, [1.0, 0.0]) and game.init_l_concentration == 0.5


@pytest.mark.parametrize("name", sorted(GAMES))
@pytest.mark.parametrize("npz", [False, True])
def test_every_registered_game_round_trips_to_its_fingerprint(tmp_path, name, npz):
    game = make_game(name)
    path = write_game_file(tmp_path / f"{name}.yaml", game, n_agents=7, npz=npz)
    back = read_game_file(path)
    assert back.game.fingerprint == game.fingerprint and back.n_agents == 7 and back.game.names == game.names


def test_the_shipped_warehouse_file_is_the_built_in_warehouse():
    assert make_game(str(CONFIG / "games/warehouse.yaml")).fingerprint == make_game("warehouse").fingerprint
    assert read_game_file(CONFIG / "games/warehouse.yaml").n_agents == 1000


def test_the_federated_game_is_shipped_by_name():
    loaded = read_game_file(CONFIG / "games/federated.yaml")
    assert make_game("federated").fingerprint == loaded.game.fingerprint
    names = loaded.game.names
    assert names.global_states == ("broadcast", "train", "aggregate")
    assert names.local_states == ("offline", "stale", "synced", "ready")
    assert names.local_actions == ("idle", "train", "upload")
    # the only positive reward: a ready client uploading while the server aggregates
    r_l = loaded.game.r_l
    assert r_l.max() == r_l[3, 2, 2] > 0 and np.sum(r_l > 0) == 1


def _set(data, dotted, value):
    """A copy of `data` with the (dotted) key set, or deleted when value is ...."""
    out = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    node = out
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("altmarl_game", ..., r"altmarl_game: must be 1"),
        ("colour", "red", r"colour: unknown key"),
        ("gamma", 1.0, r"gamma must be in \[0, 1\)"),
        ("gamma", "high", r"gamma must be a number"),
        ("n_agents", 0, r"n_agents must be a positive integer"),
        ("global.states", ["x", "x"], r"global.states: names must be distinct"),
        ("local.colour", [1], r"local.colour: unknown key"),
        ("P_g", ..., r"P_g: missing"),
        ("P_g.*.go_right", [0.2, 0.7], r"P_g\[left\]\[go_right\] sums to 0.9, not 1"),
        ("P_g.*.go_right", [1.2, -0.2], r"P_g\[left\]\[go_right\] has a negative probability"),
        ("P_g.*.go_right", [0.5, 0.25, 0.25], r"P_g\[left\]\[go_right\] has 3 probabilities, expected one per "
                                              r"global state"),
        ("P_l.a.*.move", {"z": 1.0}, r"P_l\[a\]\[left\]\[move\]: unknown local state 'z'"),
        ("P_l.b.right", {"stay": {"b": 1.0}}, r"P_l\[b\]\[right\]: no entry for local action 'move'"),
        ("P_l.b.left", [[0.5, 0.5, 0]], r"P_l\[b\]\[left\] has 1 entries, expected one per local action"),
        ("P_l.d", {"*": {"*": {"a": 1.0}}}, r"P_l\[d\]: unknown local state 'd'"),
        ("r_l.c.*.move", float("nan"), r"r_l\[c\]\[left\]\[move\] must be finite"),
        ("r_l.b.right", "lots", r"r_l\[b\]\[right\] must be a number"),
        ("r_g", [1.0], r"r_g has 1 entries, expected one per global state"),
        ("init_g", [0.5, 0.6], r"init_g sums to 1.1, not 1"),
        ("init_l", {"dirichlet": -1}, r"init_l.dirichlet must be > 0"),
        ("init_l", "peaked", r"init_l: expected 'uniform' or"),
        ("arrays", "missing.npz", r"arrays: cannot read"),
    ],
)
def test_invalid_files_name_the_file_the_key_and_the_row(tmp_path, key, value, message):
    path = _write(tmp_path, _set(SMALL, key, value))
    with pytest.raises(GameFileError, match=message) as info:
        read_game_file(path)
    assert str(info.value).startswith(f"game file {path}: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"P_l": np.ones((3, 2, 2, 2)) / 2}, r"P_l \(from arrays\) has shape \(3, 2, 2, 2\), expected \(3, 2, 2, 3\)"),
        ({"P_l": np.full((3, 2, 2, 3), 0.3)}, r"P_l\[0, 0, 0\] \(from arrays\) sums to 0.9, not 1"),
        ({"r_l": np.full((3, 2, 2), np.inf)}, r"r_l\[0, 0, 0\] \(from arrays\) must be finite"),
        ({"P_g": np.full((2, 2, 2), 0.5)}, r"P_g: given both in the file and in"),
        ({"colour": np.zeros(2)}, r"arrays: .* holds 'colour'"),
    ],
)
def test_tables_from_an_npz_are_checked_like_written_ones(tmp_path, arrays, message):
    data = _set(_set(SMALL, "P_l", ...), "r_l", ...)
    data["arrays"] = "tables.npz"
    good = {"P_l": read_game_file(_write(tmp_path, SMALL)).game.P_l, "r_l": np.zeros((3, 2, 2))}
    np.savez(tmp_path / "tables.npz", **{**good, **arrays})
    with pytest.raises(GameFileError, match=message):
        read_game_file(_write(tmp_path, data, "with_arrays.yaml"))


def test_unreadable_files_fail_clearly(tmp_path):
    with pytest.raises(GameFileError, match="cannot read"):
        read_game_file(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("P_g: [unclosed")
    with pytest.raises(GameFileError, match="not valid YAML"):
        read_game_file(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(GameFileError, match="expected a mapping at the top level"):
        read_game_file(tmp_path / "list.yaml")


def test_a_config_names_a_game_file_by_path(tmp_path):
    path = _write(tmp_path, SMALL)
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump({"game": str(path), "n_agents": 20, "k": 2}))
    config = load_train_config(config_path)
    assert make_game(config.game).fingerprint == read_game_file(path).game.fingerprint
    config_path.write_text(yaml.safe_dump({"game": str(path), "game_options": {"gamma": 0.5}}))
    with pytest.raises(ConfigError, match="has no option 'gamma'"):
        load_train_config(config_path)
    config_path.write_text(yaml.safe_dump({"game": str(tmp_path / "absent.yaml")}))
    with pytest.raises(ConfigError, match=r"absent\.yaml"):
        load_train_config(config_path)
