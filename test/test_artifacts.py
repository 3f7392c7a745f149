"""Policy artifacts: round trip, and every kind of bad file fails with a message naming it."""

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


def _rewrite_json(path, **changes):
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta.update(changes)
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda p: p.unlink(), "does not exist"),
        (lambda p: p.with_suffix(".json").write_text("{not json"), "not valid JSON"),
        (lambda p: _rewrite_json(p, version=99), "version 99"),
        (lambda p: _rewrite_json(p, format="something"), "not an altmarl_ros policy"),
        (lambda p: _rewrite_json(p, game={**SPEC, "fingerprint": "0" * 16}), "fingerprint"),
        (lambda p: _rewrite_json(p, game={"name": "nope", "options": {}}), "cannot rebuild game"),
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "cannot be read"),
        (lambda p: np.savez(p, pi_g_actions=np.zeros((5, 35), int), pi_l_probs=np.ones((5, 4, 3)) / 3),
         "pi_l_probs has shape"),
        (lambda p: np.savez(p, pi_g_actions=np.zeros((5, 36), int), pi_l_probs=np.ones((5, 5, 3)) / 3),
         "shape"),
        (lambda p: np.savez(p, pi_g_actions=np.array([object()], dtype=object), pi_l_probs=np.ones(1)),
         "cannot be read"),
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
