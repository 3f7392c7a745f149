"""What a game's states and actions mean on the warehouse floor: the maps the ROS layer deploys with.

A game is abstract (indices). To run it as a swarm, the nodes need to know, for Z zones of the floor:

    local_state_zone[s_l]        (S_l,)      the zone a robot in local state s_l is in (a permutation of 0..Z-1:
                                              a robot's zone, read from its pose, names its local state)
    local_action_goal[s_l, a_l]  (S_l, A_l)  the goal zone local action a_l sends a robot in s_l to
    global_action_zone[a_g]      (A_g,)      the zone global action a_g activates (-1: none)

Robots answer a tick with their goal zone; the simulator turns it back into a_l with `action_from_goal`.
The floor map travels in the policy artifact (`marl.artifacts`), so any game that trains also deploys.
The ring warehouse's map is `ring_floor` (a_l moves the robot by MOVES[a_l] around the ring); a game
file can declare its own (`floor:` in the file, see `marl.games.files`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games.warehouse import MOVES

RING_MOVES = MOVES  # the ring warehouse's local actions: stay, +1 zone, -1 zone


def _readonly(name: str, value: object, ndim: int) -> np.ndarray:
    arr = np.array(value)
    if arr.ndim != ndim or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"floor map: {name} must be a {ndim}-d array of integers, got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.int64)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class FloorMap:
    """Zones of local states, goal zones of local actions, zones activated by global actions (see module doc)."""

    local_state_zone: np.ndarray
    local_action_goal: np.ndarray
    global_action_zone: np.ndarray

    def __post_init__(self) -> None:
        for name, ndim in (("local_state_zone", 1), ("local_action_goal", 2), ("global_action_zone", 1)):
            object.__setattr__(self, name, _readonly(name, getattr(self, name), ndim))
        Z = self.n_zones
        if sorted(self.local_state_zone.tolist()) != list(range(Z)):
            raise InputError(f"floor map: local_state_zone must name each of the {Z} zones once (a local state "
                             f"per zone), got {self.local_state_zone.tolist()}")
        if self.local_action_goal.shape[0] != Z:
            raise InputError(f"floor map: local_action_goal has {self.local_action_goal.shape[0]} rows, expected one "
                             f"per local state ({Z})")
        for name, arr, low in (("local_action_goal", self.local_action_goal, 0),
                               ("global_action_zone", self.global_action_zone, -1)):
            if arr.size and (arr.min() < low or arr.max() >= Z):
                raise InputError(f"floor map: {name} must hold zones in [{low}, {Z}), got {arr.min()}..{arr.max()}")
        stays = self.local_action_goal == self.local_state_zone[:, None]
        if not stays.any(-1).all():
            s_l = int(np.flatnonzero(~stays.any(-1))[0])
            raise InputError(f"floor map: no local action keeps a robot in local state {s_l} in its zone "
                             f"{int(self.local_state_zone[s_l])} (the swarm applies it to missing answers)")

    @property
    def n_zones(self) -> int:
        return int(self.local_state_zone.size)

    @functools.cached_property
    def zone_state(self) -> np.ndarray:
        """(Z,) inverse of local_state_zone: the local state of a robot in zone z."""
        inverse = np.empty(self.n_zones, dtype=np.int64)
        inverse[self.local_state_zone] = np.arange(self.n_zones)
        inverse.setflags(write=False)
        return inverse

    def check_game(self, game: TabularGame, where: str = "floor map") -> None:
        """ValueError unless the map's shapes fit the game's (S_l, A_l, A_g)."""
        expected = (game.n_local_states, game.n_local_actions, game.n_global_actions)
        got = (self.n_zones, self.local_action_goal.shape[1], self.global_action_zone.size)
        if got != expected:
            raise InputError(f"{where}: (S_l, A_l, A_g) = {got} does not fit game {game.name} {expected}")
        # Robots answer with goal zones: two actions of one state with the same goal must be the same action
        # for the game, or the closed loop would not be the game that was trained.
        for s_l, a, b in np.argwhere(self.local_action_goal[:, :, None] == self.local_action_goal[:, None, :]):
            if a < b and not (np.array_equal(game.P_l[s_l, :, a], game.P_l[s_l, :, b])
                              and np.array_equal(game.r_l[s_l, :, a], game.r_l[s_l, :, b])):
                raise InputError(f"{where}: local actions {a} and {b} send a robot in local state {s_l} to the same "
                                 f"zone {int(self.local_action_goal[s_l, a])} but differ in P_l or r_l: the swarm "
                                 "cannot tell them apart")

    def local_state(self, zone: np.ndarray) -> np.ndarray:
        """Zones (n,) -> local states (n,)."""
        return self.zone_state[np.asarray(zone)]

    def goal_zone(self, s_l: np.ndarray | int, a_l: np.ndarray | int) -> np.ndarray:
        """The goal zone of a robot in local state s_l under local action a_l (shapes broadcast)."""
        return self.local_action_goal[np.asarray(s_l), np.asarray(a_l)]

    def action_from_goal(self, s_l: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Inverse of goal_zone per robot: the lowest a_l with local_action_goal[s_l, a_l] == goal, or -1 where
        no action leads there (or s_l or goal is out of range). s_l, goal: (...,) int -> (...,) int."""
        s_l, goal = np.asarray(s_l, dtype=np.int64), np.asarray(goal, dtype=np.int64)
        Z = self.n_zones
        known = (s_l >= 0) & (s_l < Z) & (goal >= 0) & (goal < Z)
        return np.where(known, self.goal_action[np.where(known, s_l, 0), np.where(known, goal, 0)], -1)

    @functools.cached_property
    def goal_action(self) -> np.ndarray:
        """(S_l, Z) the lowest local action that sends a robot in s_l to zone z, -1 where none does."""
        table = np.full((self.n_zones, self.n_zones), -1, dtype=np.int64)
        for a in reversed(range(self.local_action_goal.shape[1])):  # the lowest action is written last
            table[np.arange(self.n_zones), self.local_action_goal[:, a]] = a
        table.setflags(write=False)
        return table

    @functools.cached_property
    def stay_action(self) -> np.ndarray:
        """(S_l,) the lowest action that keeps a robot in its zone, per local state (one exists: validated)."""
        return self.goal_action[np.arange(self.n_zones), self.local_state_zone]

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {"local_state_zone": self.local_state_zone, "local_action_goal": self.local_action_goal,
                "global_action_zone": self.global_action_zone}


def ring_floor(game: TabularGame) -> FloorMap | None:
    """The ring warehouse's map for a game of its shape (S_g = S_l = A_g = Z zones on a ring, A_l = 3 moves
    stay/+1/-1; local state and global action z are zone z), else None. This is what every artifact meant
    before floor maps were stored (format versions 1 and 2)."""
    Z = game.n_local_states
    if game.n_local_actions != len(RING_MOVES) or game.n_global_states != Z or game.n_global_actions != Z or Z < 3:
        return None
    return ring_map(Z)


def ring_map(n_zones: int) -> FloorMap:
    """The ring warehouse's floor map on `n_zones` >= 3 zones: local state and global action z are zone z,
    a_l moves a robot by RING_MOVES[a_l] around the ring."""
    zones = np.arange(n_zones)
    return FloorMap(zones, (zones[:, None] + np.asarray(RING_MOVES)[None, :]) % n_zones, zones)
