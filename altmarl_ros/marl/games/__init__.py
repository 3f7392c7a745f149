"""Registry of games: `make_game(name, **overrides)`."""

from __future__ import annotations

from collections.abc import Callable

from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games.toy import broadcast, coordination
from altmarl_ros.marl.games.warehouse import warehouse

GAMES: dict[str, Callable[..., TabularGame]] = {
    "warehouse": warehouse,
    "coordination": coordination,
    "broadcast": broadcast,
}


def make_game(name: str, **overrides: object) -> TabularGame:
    """Build a registered game; unknown names and unknown overrides raise ValueError naming them."""
    if name not in GAMES:
        raise ValueError(f"unknown game {name!r}; known games: {sorted(GAMES)}")
    try:
        return GAMES[name](**overrides)
    except TypeError as exc:
        raise ValueError(f"bad options for game {name!r}: {exc}") from exc


__all__ = ["GAMES", "make_game"]
