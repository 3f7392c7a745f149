"""Registry of games: `make_game(name, **options)`.

A name is a built-in game (`GAMES`: warehouse, coordination, broadcast, and the shipped game files
such as `federated`) or a path to a game file (`*.yaml`, format in `games/files.py`). Options are checked
against the factory's signature and annotations before it is called, so a misspelt option or a value of
the wrong type is one clear ValueError, while an error inside a factory keeps its traceback.
"""

from __future__ import annotations

import inspect
import os
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from altmarl_ros.errors import InputError
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games.files import GameFileError, is_game_path, load_game_file, read_game_file
from altmarl_ros.marl.games.floor import FloorMap, ring_floor
from altmarl_ros.marl.games.toy import broadcast, coordination
from altmarl_ros.marl.games.warehouse import warehouse

Factory = Callable[..., TabularGame]
SHIPPED_FILES = {"federated": "config/games/federated.yaml"}
"""Game files shipped with the package (share/altmarl_ros/config/games), registered by name."""


def shipped_game_path(name: str) -> Any:
    """Path of a shipped game file (the installed share directory, else the source checkout)."""
    from altmarl_ros.paths import share_path  # ROS-free; imported here to keep `marl` importable alone

    return share_path(SHIPPED_FILES[name])


def _shipped(name: str) -> Factory:
    def factory() -> TabularGame:
        return load_game_file(shipped_game_path(name))

    factory.__name__ = f"{name}_from_file"
    return factory


def _file_factory(path: str) -> Factory:
    def factory() -> TabularGame:
        return load_game_file(path)

    return factory


class GameRegistry(Mapping[str, Factory]):
    """Built-in games by name; any path ending in .yaml/.yml is also a key (its file's game).

    Iteration lists the built-in names only (paths are unbounded).
    """

    def __init__(self, games: Mapping[str, Factory]) -> None:
        self._games = dict(games)

    def register(self, name: str, factory: Factory) -> None:
        """Add a game under `name` (e.g. a user's file: `register("mine", lambda: load_game_file(p))`)."""
        if name in self._games:
            raise ValueError(f"game {name!r} is already registered")
        self._games[name] = factory

    def __getitem__(self, name: str) -> Factory:
        if name in self._games:
            return self._games[name]
        if is_game_path(name):
            return _file_factory(name)
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._games or is_game_path(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self._games)

    def __len__(self) -> int:
        return len(self._games)


GAMES = GameRegistry({"warehouse": warehouse, "coordination": coordination, "broadcast": broadcast,
                      **{name: _shipped(name) for name in SHIPPED_FILES}})


def _type_ok(value: object, expected: object) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str)
    return True  # other annotations: left to the factory


def check_options(name: str, factory: Factory, options: Mapping[str, object]) -> None:
    """Raise ValueError (one line) for an option the factory does not take or a value of the wrong type."""
    params = inspect.signature(factory).parameters
    accepted = sorted(p for p, spec in params.items() if spec.kind is spec.KEYWORD_ONLY or
                      spec.kind is spec.POSITIONAL_OR_KEYWORD)
    for key, value in options.items():
        if key not in accepted:
            raise InputError(f"game {name!r} has no option {key!r}; its options: {accepted}")
        expected = typing.get_type_hints(factory).get(key)
        if not _type_ok(value, expected):
            raise InputError(f"game {name!r}: option {key!r} must be {getattr(expected, '__name__', expected)}, "
                             f"got {value!r}")


def make_game(name: str | os.PathLike[str], **options: object) -> TabularGame:
    """Build a registered game or a game file; unknown names, options and bad values raise ValueError."""
    name = os.fspath(name)
    if name not in GAMES:
        raise InputError(f"unknown game {name!r}; known games: {sorted(GAMES)}, or a path to a game file (*.yaml)")
    factory = GAMES[name]
    check_options(name, factory, options)
    return factory(**options)


def game_from_spec(spec: Mapping[str, Any]) -> TabularGame:
    """Rebuild a game from an artifact's or a config's spec {"name": ..., "options": {...}}."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise InputError(f"a game spec is a mapping with a 'name', got {spec!r}")
    options = spec.get("options", {})
    if not isinstance(options, Mapping):
        raise InputError(f"game spec options must be a mapping, got {options!r}")
    return make_game(spec["name"], **options)


def floor_from_spec(spec: Mapping[str, Any], game: TabularGame) -> FloorMap | None:
    """The floor map of a game spec's game: a game file's `floor:` section, else the ring warehouse's map when
    the game has its shape (`floor.ring_floor`), else None (the game trains but cannot be deployed)."""
    name = spec["name"]
    path = name if is_game_path(name) else shipped_game_path(name) if name in SHIPPED_FILES else None
    floor = read_game_file(path).floor if path is not None else None
    if floor is not None:
        floor.check_game(game)
        return floor
    return ring_floor(game)


__all__ = ["GAMES", "FloorMap", "GameFileError", "GameRegistry", "check_options", "floor_from_spec", "game_from_spec",
           "game_n_agents", "is_game_path", "load_game_file", "make_game", "read_game_file", "shipped_game_path"]


def game_n_agents(name: str) -> int | None:
    """The n a game file names (`n_agents:`) for a file path or a shipped file game; None otherwise."""
    if is_game_path(name):
        return read_game_file(name).n_agents
    if name in SHIPPED_FILES:
        return read_game_file(shipped_game_path(name)).n_agents
    return None
