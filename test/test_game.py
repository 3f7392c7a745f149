"""TabularGame validation, the registry, and the warehouse game against PAPER.md 7.4."""

import numpy as np
import pytest

from altmarl_ros.marl import sim
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import GAMES, make_game
from altmarl_ros.marl.games.warehouse import ring_distance


def _arrays(game):
    return dict(P_g=game.P_g, P_l=game.P_l, r_g=game.r_g, r_l=game.r_l, gamma=game.gamma, init_g=game.init_g)


@pytest.mark.parametrize("name", sorted(GAMES))
def test_every_registered_game_is_frozen_data_with_a_stable_fingerprint(name):
    """Games are values: arrays cannot be changed after validation, the same build gives the same
    fingerprint, and one simulated step stays in the state spaces with the reward of Eq. 1."""
    game = make_game(name)
    for arr in (game.P_g, game.P_l, game.r_g, game.r_l, game.init_g):
        with pytest.raises(ValueError, match="read-only"):
            arr.flat[0] = 0.5
    assert make_game(name).fingerprint == game.fingerprint
    rng = np.random.default_rng(0)
    state = sim.reset(game, rng, n_agents=7, batch=3)
    a_g = rng.integers(game.n_global_actions, size=3)
    a_l = rng.integers(game.n_local_actions, size=(3, 7))
    out = sim.step(game, rng, state, a_g, a_l)
    assert np.all((out.state.s_g >= 0) & (out.state.s_g < game.n_global_states))
    assert np.all((out.state.s_l >= 0) & (out.state.s_l < game.n_local_states))
    expected = game.r_g[state.s_g, a_g] + game.r_l[state.s_l, state.s_g[:, None], a_l].mean(-1)
    assert np.allclose(out.reward, expected)


def test_fingerprints_tell_games_apart():
    prints = {name: make_game(name).fingerprint for name in GAMES}
    assert len(set(prints.values())) == len(prints)
    assert make_game("coordination", slip=0.1).fingerprint != prints["coordination"]


def test_unknown_game_and_option_name_the_problem():
    with pytest.raises(ValueError, match="known games"):
        make_game("nope")
    with pytest.raises(ValueError, match=r"game 'warehouse' has no option 'colour'; its options: .*r_g"):
        make_game("warehouse", colour="red")
    with pytest.raises(ValueError, match="r_g"):
        make_game("warehouse", r_g="huge")
    with pytest.raises(ValueError, match="option 'n_zones' must be int, got '5'"):
        make_game("warehouse", n_zones="5")
    with pytest.raises(ValueError, match="option 'gamma' must be float, got True"):
        make_game("coordination", gamma=True)


def test_a_programming_error_inside_a_factory_keeps_its_traceback(monkeypatch):
    """A TypeError raised by the factory's own code is a bug, not bad options: it is not rewritten."""
    from altmarl_ros.marl import games

    def broken(*, gamma: float = 0.9) -> TabularGame:
        return TabularGame(gamma=gamma)  # missing arguments: a TypeError from inside the factory

    monkeypatch.setitem(games.GAMES._games, "broken", broken)
    with pytest.raises(TypeError, match="missing") as info:
        make_game("broken", gamma=0.5)
    assert any(entry.name == "broken" for entry in info.traceback)  # the factory's frame is kept


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("gamma", 1.0, "gamma"),
        ("P_g", np.full((5, 5, 5), 0.3), "P_g.*sums to"),
        ("P_l", -np.ones((5, 5, 3, 5)), "P_l has negative"),
        ("r_l", np.zeros((5, 5)), "r_l must have 3 dimensions"),
        ("r_g", np.full((5, 5), np.nan), "r_g contains NaN"),
        ("init_g", np.ones(4) / 4, "init_g must have shape"),
    ],
)
def test_invalid_games_are_rejected_naming_the_field(field, value, message):
    kwargs = _arrays(make_game("warehouse"))
    kwargs[field] = value
    with pytest.raises(ValueError, match=message):
        TabularGame(**kwargs)


def test_warehouse_matches_the_paper():
    game = make_game("warehouse")
    # PAPER.md 4.1: from s_g = 0 with a_g = 2: (0.067, 0.040, 0.812, 0.040, 0.040); staying: 0.892
    assert np.allclose(game.P_g[0, 2], [0.067, 0.040, 0.812, 0.040, 0.040], atol=1e-3)
    assert game.P_g[3, 3, 3] == pytest.approx(0.892, abs=1e-3)
    # s_l = 0, s_g = 1, stay: 0.884 stay
    assert game.P_l[0, 1, 0, 0] == pytest.approx(0.884, abs=1e-3)
    # a move action puts the extra mass on the neighbour around the ring
    assert game.P_l[0, 0, 2, 4] > game.P_l[0, 0, 1, 4]
    assert game.r_l[2, 2, 0] == 10.0 and game.r_l[0, 2, 1] == pytest.approx(2 / 3 + 0.5)
    assert ring_distance(0, 4) == 1
    assert np.all(game.r_g == 1.0)
    paper = make_game("warehouse", r_g="distance")
    assert paper.r_g[0, 4] == 0.0 and paper.r_g[2, 2] == 4.0
    assert paper.fingerprint != game.fingerprint
    assert make_game("warehouse").fingerprint == game.fingerprint


def test_initial_population_is_dirichlet():
    game = make_game("warehouse")
    mu = game.sample_population(np.random.default_rng(0), 4000)
    assert np.allclose(mu.sum(-1), 1)
    # Dirichlet(0.3) concentrates: the largest share is on average far above 1/5
    assert mu.max(-1).mean() > 0.5


def test_game_from_spec_rebuilds_what_configs_and_artifacts_name():
    from altmarl_ros.marl.games import game_from_spec

    assert game_from_spec({"name": "warehouse", "options": {"r_g": "distance"}}).fingerprint == \
        make_game("warehouse", r_g="distance").fingerprint
    for bad in ({"options": {}}, {"name": "warehouse", "options": ["r_g"]}, "warehouse"):
        with pytest.raises(ValueError, match="spec"):
            game_from_spec(bad)
