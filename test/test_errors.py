"""User errors are a type (`altmarl_ros.errors.UserError`), not a reading of the source line that raised them."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from altmarl_ros.bagdata import BagError
from altmarl_ros.errors import InputError, UserError, is_user_error
from altmarl_ros.marl.artifacts import PolicyFileError, load_policies
from altmarl_ros.marl.config import ConfigError, config_from_dict, load_train_config
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.games.files import GameFileError
from altmarl_ros.physics.world import WorldFileError

PACKAGE = Path(__file__).resolve().parent.parent / "altmarl_ros"


def _raised(fn) -> BaseException:
    try:
        fn()
    except BaseException as exc:  # the test inspects whatever was raised
        return exc
    raise AssertionError("nothing was raised")


def _user_error_classes() -> list[type]:
    classes = [ConfigError, PolicyFileError, GameFileError, BagError, WorldFileError, InputError]
    try:
        from altmarl_ros.ros.common import ParameterError  # needs rclpy
    except ImportError:
        return classes
    return [*classes, ParameterError]


@pytest.mark.parametrize("cls", _user_error_classes(), ids=lambda c: c.__name__)
def test_every_user_error_class_is_a_user_error_and_still_a_value_error(cls):
    exc = cls("bad input")
    assert isinstance(exc, UserError) and isinstance(exc, ValueError)
    assert is_user_error(exc)
    assert is_user_error(_raised(lambda: (_ for _ in ()).throw(cls("raised"))))


def test_validation_raises_user_errors(tmp_path):
    assert isinstance(_raised(lambda: load_train_config(tmp_path / "missing.yaml")), ConfigError)
    assert isinstance(_raised(lambda: config_from_dict({"loop": {"starts": ["sideways"]}})), ConfigError)
    assert isinstance(_raised(lambda: load_policies(tmp_path / "missing.npz")), PolicyFileError)
    assert isinstance(_raised(lambda: make_game("no_such_game")), InputError)
    game = make_game("coordination")
    bad = _raised(lambda: TabularGame(game.P_g, game.P_l, game.r_g, game.r_l, gamma=1.5, init_g=game.init_g))
    assert isinstance(bad, InputError) and "gamma" in str(bad)
    for exc in (bad, _raised(lambda: (tmp_path / "missing.yaml").read_text())):  # an OSError naming its file
        assert is_user_error(exc)


def test_numpy_and_conversion_value_errors_are_not_user_errors():
    assert not is_user_error(_raised(lambda: np.zeros(2) + np.zeros(3)))  # broadcasting
    assert not is_user_error(_raised(lambda: np.reshape(np.zeros(3), (2, 2))))
    assert not is_user_error(_raised(lambda: int("x")))
    assert not is_user_error(ValueError("a plain ValueError, even one raised on purpose"))
    assert not is_user_error(OSError("no file named"))
    assert not is_user_error(KeyError("key"))


# Plain `raise ValueError(...)` left in the package, each with why it is not user input (or who owns it).
PLAIN_VALUE_ERRORS = {
    "ros/topics.py": 6,  # a malformed message from another node: counted and ignored by the receiver
    "contract.py": 4,  # likewise (the message decoders shared with the bag readers)
    "ros/backends/__init__.py": 1,  # mode names are validated as parameters before (owned by the backends work)
    "ros/step_ledger.py": 1,  # StepLedger built with n < 1: sim_params validated the parameters before (a bug)
    "zones.py": 1,  # zone_of on a NaN pose: a simulator fault, not input
    "marl/artifacts.py": 1,  # save_policies called with a game_spec that does not rebuild its game: a caller bug
    "marl/learners/alternate.py": 1,  # select_equilibrium without one result per start: a caller bug
    "marl/plotting.py": 1,  # a slope from fewer than 3 points: the CLI checks before calling
    "marl/games/__init__.py": 1,  # registering a game name twice: a programming error
    "marl/games/warehouse.py": 2,  # game options: reached through configs, which wrap them in ConfigError
    "marl/games/toy.py": 1,  # likewise
}


def test_no_other_plain_value_error_is_raised_in_the_package():
    found: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                    and isinstance(node.exc.func, ast.Name) and node.exc.func.id == "ValueError"):
                key = path.relative_to(PACKAGE).as_posix()
                found[key] = found.get(key, 0) + 1
    assert found == PLAIN_VALUE_ERRORS, "raise the right UserError subclass (altmarl_ros.errors) for bad input"
