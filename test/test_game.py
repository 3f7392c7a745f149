"""TabularGame validation, the registry, and the warehouse game against PAPER.md 7.4."""

import numpy as np
import pytest

from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import GAMES, make_game
from altmarl_ros.marl.games.warehouse import ring_distance


def _arrays(game):
    return dict(P_g=game.P_g, P_l=game.P_l, r_g=game.r_g, r_l=game.r_l, gamma=game.gamma, init_g=game.init_g)


@pytest.mark.parametrize("name", sorted(GAMES))
def test_every_registered_game_is_valid(name):
    game = make_game(name)
    assert np.allclose(game.P_g.sum(-1), 1) and np.allclose(game.P_l.sum(-1), 1)
    assert game.r_g.shape == (game.n_global_states, game.n_global_actions)
    assert game.r_l.shape == (game.n_local_states, game.n_global_states, game.n_local_actions)
    with pytest.raises(ValueError):
        game.P_g[0, 0, 0] = 0.5  # read-only


def test_unknown_game_and_option_name_the_problem():
    with pytest.raises(ValueError, match="known games"):
        make_game("nope")
    with pytest.raises(ValueError, match="warehouse"):
        make_game("warehouse", colour="red")
    with pytest.raises(ValueError, match="r_g"):
        make_game("warehouse", r_g="huge")


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
