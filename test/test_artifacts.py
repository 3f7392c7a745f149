"""Policy artifacts: round trip, and every kind of bad file fails with a message naming it."""

import hashlib
import json
import os

import numpy as np
import pytest

from altmarl_ros.marl.artifacts import PolicyFileError, load_policies, save_policies
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy

SPEC = {"name": "warehouse", "options": {"r_g": "constant"}}


@pytest.fixture
def saved(tmp_path):
    game = make_game("warehouse", r_g="constant")
    rng = np.random.default_rng(0)
    pi_g = TabularGlobalPolicy(rng.integers(0, 5, size=(5, 35)), 3, 5, 5)
    pi_l = TabularLocalPolicy(rng.dirichlet(np.ones(3), size=(5, 5)))
    path = save_policies(tmp_path / "pol", pi_g, pi_l, game=game, game_spec=SPEC, seed=7, metrics={"reward": 1.5})
    return path, pi_g, pi_l, game


def test_round_trip(saved):
    path, pi_g, pi_l, game = saved
    art = load_policies(path, expect_game=game, expect_k=3)
    assert np.array_equal(art.pi_g.actions, pi_g.actions) and np.allclose(art.pi_l.probs, pi_l.probs)
    assert art.k == 3 and art.meta["seed"] == 7 and art.meta["metrics"]["reward"] == 1.5
    assert art.game.fingerprint == game.fingerprint
    assert load_policies(path.with_suffix(".json")).k == 3  # either file of the pair names it
    assert sorted(p.name for p in path.parent.iterdir()) == ["pol.json", "pol.npz"]  # no temporary files left


def _rewrite_json(path, game=None, **changes):
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta.update(changes)
    meta["game"].update(game or {})
    meta_path.write_text(json.dumps(meta))


def _drop_from_npz(path, name):
    with np.load(path) as data:
        kept = {n: data[n] for n in data.files if n != name}
    np.savez(path, **kept)
    _rewrite_json(path, npz_sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def _rewrite_npz(path, **arrays):
    """Replace arrays of the .npz (keeping the others) and record its hash, as a consistent writer would."""
    with np.load(path) as data:
        kept = {name: data[name] for name in data.files if name not in arrays}
    np.savez(path, **kept, **arrays)
    _rewrite_json(path, npz_sha256=hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda p: p.unlink(), "does not exist"),
        (lambda p: p.with_suffix(".json").write_text("{not json"), "not valid JSON"),
        (lambda p: _rewrite_json(p, version=99), "version 99"),
        (lambda p: _rewrite_json(p, format="something"), "not an altmarl_ros policy"),
        (lambda p: _rewrite_json(p, game={"fingerprint": "0" * 16}), "fingerprint"),
        (lambda p: _rewrite_json(p, game={"name": "nope"}), "cannot rebuild game"),
        (lambda p: _rewrite_json(p, game={"options": {"r_g": "distance"}}), "definition changed"),
        (lambda p: _rewrite_json(p, game={"gamma": 1.5}), "stored game tables are invalid.*gamma"),
        (lambda p: _rewrite_npz(p, game_P_g=np.full((5, 5, 5), 0.2)), "fingerprint"),
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "torn pair"),
        (lambda p: _rewrite_npz(p, pi_l_probs=np.ones((5, 4, 3)) / 3), "pi_l_probs has shape"),
        (lambda p: _rewrite_npz(p, pi_g_actions=np.zeros((5, 36), int)), "shape"),
        (lambda p: _rewrite_npz(p, pi_g_actions=np.array([object()], dtype=object)), "cannot be read"),
        (lambda p: _drop_from_npz(p, "game_P_l"), "cannot be read"),
    ],
)
def test_bad_files_fail_clearly(saved, corrupt, message):
    path = saved[0]
    corrupt(path)
    with pytest.raises(PolicyFileError, match=message) as info:
        load_policies(path)
    assert "pol" in str(info.value)  # the message names the file


def test_expectations_are_checked(saved):
    path, *_ = saved
    with pytest.raises(PolicyFileError, match="k=3, but k=4"):
        load_policies(path, expect_k=4)
    with pytest.raises(PolicyFileError, match="not on"):
        load_policies(path, expect_game=make_game("warehouse", r_g="distance"))


def test_a_failed_write_leaves_the_old_artifact(saved, monkeypatch):
    path, pi_g, pi_l, game = saved
    before = path.read_bytes()

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_policies(path, pi_g, pi_l, game=game, game_spec=SPEC)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["pol.json", "pol.npz"]


def test_game_spec_must_rebuild_the_game(tmp_path, saved):
    _, pi_g, pi_l, game = saved
    with pytest.raises(ValueError, match="does not rebuild"):
        save_policies(tmp_path / "x", pi_g, pi_l, game=game,
                      game_spec={"name": "warehouse", "options": {"r_g": "distance"}})


def test_written_files_get_the_usual_permissions(saved):
    path = saved[0]
    umask = os.umask(0)
    os.umask(umask)
    for p in (path, path.with_suffix(".json")):
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask


def test_the_shipped_default_policy_loads():
    """share/altmarl_ros/policies/default.npz: what the nodes load when policy_path is ''."""
    from altmarl_ros.paths import share_path

    art = load_policies(share_path("policies/default.npz"), expect_game=make_game("warehouse"), expect_k=5)
    assert art.meta["config"]["g_learn"]["transition"] == "sampled" and art.meta["config"]["k"] == 5


def test_a_torn_pair_is_detected(saved, tmp_path):
    """A crash between the two renames leaves a new .npz beside the old .json: loading refuses the pair."""
    path, pi_g, _, game = saved
    other = save_policies(tmp_path / "other" / "pol", pi_g, TabularLocalPolicy.uniform(5, 5, 3), game=game,
                          game_spec=SPEC)
    path.write_bytes(other.read_bytes())  # what the first rename of a second save would leave
    with pytest.raises(PolicyFileError, match="torn pair") as info:
        load_policies(path)
    assert str(path) in str(info.value)


def test_a_crash_between_the_renames_leaves_a_detectable_pair(saved, monkeypatch):
    """The .npz is renamed first; if the process dies before the .json's rename, the pair is torn, not mixed."""
    path, pi_g, _, game = saved
    real_replace = os.replace
    calls = []

    def die_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies here
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_on_second)
    with pytest.raises(KeyboardInterrupt):
        save_policies(path, pi_g, TabularLocalPolicy.uniform(5, 5, 3), game=game, game_spec=SPEC)
    monkeypatch.setattr(os, "replace", real_replace)
    assert [p.suffix for p in calls] == [".npz", ".json"]
    with pytest.raises(PolicyFileError, match="torn pair"):
        load_policies(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["pol.json", "pol.npz"]  # no temporaries left


def test_the_artifact_carries_its_game(tmp_path):
    """A policy trained on a game file loads after the file is gone (the tables are in the artifact), with
    the file's names; the ROS nodes use `artifact.game`."""
    from altmarl_ros.marl.games.files import write_game_file

    game = make_game("coordination", slip=0.1)
    game_path = write_game_file(tmp_path / "mine.yaml", game)
    file_game = make_game(str(game_path))
    pi_g = TabularGlobalPolicy.constant(1, n_global_states=2, n_local_states=2, n_global_actions=2, k=2)
    pi_l = TabularLocalPolicy.uniform(2, 2, 2)
    path = save_policies(tmp_path / "pol", pi_g, pi_l, game=file_game, game_spec={"name": str(game_path)})
    game_path.unlink()
    art = load_policies(path)
    assert art.game.fingerprint == game.fingerprint and art.game_spec["name"] == str(game_path)
    assert art.game.names == file_game.names and np.array_equal(art.game.P_l, game.P_l)


def test_version_1_artifacts_still_load(saved):
    """Version 1 (no tables, no hash): the game is rebuilt from its spec, as before."""
    path, pi_g, pi_l, game = saved
    np.savez(path, pi_g_actions=pi_g.actions, pi_l_probs=pi_l.probs)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta.update(version=1, game={"name": "warehouse", "options": {"r_g": "constant"}, "fingerprint": game.fingerprint})
    del meta["npz_sha256"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    assert load_policies(path, expect_game=game).game.fingerprint == game.fingerprint



# --- floor maps (format version 3) ----------------------------------------------------------------
def test_the_artifact_carries_the_floor_map(saved):
    """Version 3 stores the floor map; the warehouse's is the ring's (a_l moves by 0, +1, -1)."""
    path, _, _, _ = saved
    art = load_policies(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["version"] == 3 and meta["floor"] == {"n_zones": 5}
    with np.load(path, allow_pickle=False) as data:
        assert data["floor_local_action_goal"].tolist() == [[s, (s + 1) % 5, (s - 1) % 5] for s in range(5)]
    assert np.array_equal(art.floor.local_state_zone, np.arange(5))
    assert np.array_equal(art.floor.global_action_zone, np.arange(5))


def test_version_2_artifacts_migrate_to_the_ring_floor(saved):
    """Version 2 had no floor map: loading derives the ring warehouse's, which every node assumed then."""
    path, pi_g, pi_l, game = saved
    np.savez(path, pi_g_actions=pi_g.actions, pi_l_probs=pi_l.probs,
             **{f"game_{name}": getattr(game, name) for name in ("P_g", "P_l", "r_g", "r_l", "init_g")})
    meta = json.loads(path.with_suffix(".json").read_text())
    del meta["floor"]
    meta.update(version=2, npz_sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    path.with_suffix(".json").write_text(json.dumps(meta))
    art = load_policies(path, expect_game=game)
    assert art.floor is not None and art.floor.local_action_goal.tolist() == [[s, (s + 1) % 5, (s - 1) % 5]
                                                                               for s in range(5)]


def test_a_game_without_floor_map_trains_but_does_not_deploy(tmp_path):
    """The federated game (3 server phases, 4 client states) has no floor: the artifact says so (floor null),
    and the nodes' policy check names the missing map."""
    from altmarl_ros.marl.artifacts import PolicyArtifact

    pytest.importorskip("rclpy")  # the nodes' check lives in ros/common.py
    from altmarl_ros.ros.common import check_floor

    game = make_game("federated")
    pi_g = TabularGlobalPolicy.constant(0, n_global_states=game.n_global_states, n_local_states=game.n_local_states,
                                        n_global_actions=game.n_global_actions, k=2)
    pi_l = TabularLocalPolicy.uniform(game.n_global_states, game.n_local_states, game.n_local_actions)
    path = save_policies(tmp_path / "fed", pi_g, pi_l, game=game, game_spec={"name": "federated"})
    art: PolicyArtifact = load_policies(path)
    assert art.floor is None and json.loads(path.with_suffix(".json").read_text())["floor"] is None
    with pytest.raises(PolicyFileError, match="has no floor map"):
        check_floor(art.floor, 5, "policy fed")


def test_a_stored_floor_map_is_validated(saved):
    """A floor map that does not fit the game is refused on load, naming the file."""
    path = saved[0]
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: np.array(data[name]) for name in data.files}
    arrays["floor_local_action_goal"] = arrays["floor_local_action_goal"][:, :2]  # 2 actions for a 3-action game
    np.savez(path, **arrays)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["npz_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(PolicyFileError, match="does not fit game"):
        load_policies(path)
