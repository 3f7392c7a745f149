"""Games from files: a finite global-local game written as YAML (optionally with a .npz for big tables).

Format (version 1; `config/games/federated.yaml` is a commented example, `config/games/warehouse.yaml`
the built-in warehouse written out by `write_game_file`):

    altmarl_game: 1                  # required: marks the file and its format version
    name: my_game                    # label in logs and artifacts (default: the file's stem)
    description: ...                 # optional free text
    gamma: 0.95                      # discount, in [0, 1)
    n_agents: 50                     # optional: the n this game is meant for (`altmarl --game` uses it)
    global: {states: [...], actions: [...]}    # names of s_g and a_g, in index order
    local:  {states: [...], actions: [...]}    # names of s_l and a_l
    init_g: uniform | [p, ...] | {state: p}    # law of s_g(0)
    init_l: uniform | {dirichlet: c}           # s_i(0) ~ uniform, or mu_0 ~ Dirichlet(c 1), s_i(0) ~ mu_0
    P_g: table over (s_g, a_g) of rows over s_g'          P_g(s_g' | s_g, a_g)
    P_l: table over (s_l, s_g, a_l) of rows over s_l'     P_l(s_l' | s_l, s_g, a_l)
    r_g: table over (s_g, a_g) of numbers
    r_l: table over (s_l, s_g, a_l) of numbers
    arrays: tables.npz               # optional: tables not given above are read from this file
    floor:                           # optional: what the states and actions mean on the floor (the swarm
      local_state_zone: {state: zone}         # deploys with it; marl/games/floor.py). Zones are indices of
      local_action_goal: {state: {action: zone or state}}   # the zones config; a local state's name
      global_action_zone: {action: zone or state or -1}     # stands for its zone. Without it: the ring
                                                            # warehouse's map when the game has its shape

A table is nested by its axes in the order shown. Each level is either a list in index order or a
mapping from names to the next level, where the key "*" stands for every name not listed. A row is a
list of probabilities over the next state or a mapping {next state: probability} (missing = 0). In a
reward table a number at any level fills everything below it (`r_g: 1` is the constant reward).

Loading applies the same validation as the built-in games (TabularGame) and reports errors as one
line naming the file, the key and the offending row, e.g. `f.yaml: P_l[idle][collect][train] sums to
0.9, not 1`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from altmarl_ros.errors import UserError
from altmarl_ros.marl.game import GameLabels, TabularGame
from altmarl_ros.marl.games.floor import FloorMap

FORMAT_KEY = "altmarl_game"
FORMAT_VERSION = 1
SUFFIXES = (".yaml", ".yml")
TABLES = ("P_g", "P_l", "r_g", "r_l", "init_g")
_KEYS = ("altmarl_game", "name", "description", "gamma", "n_agents", "global", "local", "init_g", "init_l",
         "P_g", "P_l", "r_g", "r_l", "arrays", "floor")
_FLOOR_KEYS = ("local_state_zone", "local_action_goal", "global_action_zone")
_WILDCARD = "*"
_ROW_ATOL = 1e-6


class GameFileError(UserError, ValueError):
    """A game file is missing, malformed, or describes an invalid game (the message names file and key)."""


class GameFile(NamedTuple):
    game: TabularGame
    n_agents: int | None  # the population size the file names (None: not given)
    path: Path
    description: str
    floor: FloorMap | None = None  # the file's `floor:` section (None: not given)


class _Axis(NamedTuple):
    what: str  # e.g. "local state"
    names: tuple[str, ...]


def is_game_path(name: object) -> bool:
    """True when `name` reads as a path to a game file (ends in .yaml / .yml)."""
    return isinstance(name, (str, os.PathLike)) and Path(name).suffix.lower() in SUFFIXES


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GameFileError(f"{key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise GameFileError(f"{key} must be finite, got {value!r}")
    return float(value)


def _level(value: Any, axis: _Axis, key: str) -> list[tuple[str, Any]]:
    """The (name, sub-value) pairs of one table level, in index order."""
    names = axis.names
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != len(names):
            raise GameFileError(f"{key} has {len(value)} entries, expected one per {axis.what} ({len(names)}: "
                                f"{list(names)})")
        return list(zip(names, value, strict=True))
    if isinstance(value, Mapping):
        entries = {str(k): v for k, v in value.items()}
        unknown = sorted(set(entries) - set(names) - {_WILDCARD})
        if unknown:
            raise GameFileError(f"{key}[{unknown[0]}]: unknown {axis.what} {unknown[0]!r}; {axis.what}s: "
                                f"{list(names)}")
        out = []
        for name in names:
            if name in entries:
                out.append((name, entries[name]))
            elif _WILDCARD in entries:
                out.append((name, entries[_WILDCARD]))
            else:
                raise GameFileError(f"{key}: no entry for {axis.what} {name!r} (give it, or '*' for the rest)")
        return out
    raise GameFileError(f"{key} must be a list or a mapping over {axis.what}s, got {value!r}")


def _row(value: Any, axis: _Axis, key: str) -> np.ndarray:
    """A probability row over `axis`: a list, or a sparse mapping {name: p}."""
    if isinstance(value, Mapping):
        entries = {str(k): v for k, v in value.items()}
        unknown = sorted(set(entries) - set(axis.names))
        if unknown:
            raise GameFileError(f"{key}: unknown {axis.what} {unknown[0]!r}; {axis.what}s: {list(axis.names)}")
        row = np.array([_number(entries.get(n, 0.0), f"{key}[{n}]") for n in axis.names])
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != len(axis.names):
            raise GameFileError(f"{key} has {len(value)} probabilities, expected one per {axis.what} "
                                f"({len(axis.names)}: {list(axis.names)})")
        row = np.array([_number(v, f"{key}[{n}]") for n, v in zip(axis.names, value, strict=True)])
    else:
        raise GameFileError(f"{key} must be a list of probabilities or a mapping {{{axis.what}: p}}, got {value!r}")
    if np.any(row < 0):
        raise GameFileError(f"{key} has a negative probability ({row.min():.6g})")
    if abs(row.sum() - 1.0) > _ROW_ATOL:
        raise GameFileError(f"{key} sums to {row.sum():.6g}, not 1")
    return row


def _table(value: Any, axes: Sequence[_Axis], row: _Axis | None, key: str) -> np.ndarray:
    """Parse a nested table: probability rows over `row` (transition) or numbers (row is None)."""
    if not axes:
        return _row(value, row, key) if row is not None else np.array(_number(value, key))
    if row is None and not isinstance(value, (Mapping, list, tuple)):  # a number fills the subtree
        return np.full(tuple(len(a.names) for a in axes), _number(value, key))
    return np.stack([_table(sub, axes[1:], row, f"{key}[{name}]") for name, sub in _level(value, axes[0], key)])


def _names(data: Mapping[str, Any], side: str, kind: str) -> tuple[str, ...]:
    key = f"{side}.{kind}"
    block = data.get(side)
    if not isinstance(block, Mapping):
        raise GameFileError(f"{side}: expected a mapping with 'states' and 'actions', got {block!r}")
    unknown = sorted(set(map(str, block)) - {"states", "actions"})
    if unknown:
        raise GameFileError(f"{side}.{unknown[0]}: unknown key; known keys: ['actions', 'states']")
    names = block.get(kind)
    if not isinstance(names, list) or not names:
        raise GameFileError(f"{key}: expected a non-empty list of names, got {names!r}")
    out = tuple(str(n) for n in names)
    if len(set(out)) != len(out) or _WILDCARD in out or "" in out:
        raise GameFileError(f"{key}: names must be distinct, non-empty and not '*', got {list(out)}")
    return out


def _npz_tables(data: Mapping[str, Any], base: Path) -> dict[str, np.ndarray]:
    if "arrays" not in data:
        return {}
    rel = data["arrays"]
    if not isinstance(rel, str):
        raise GameFileError(f"arrays: expected a .npz file name, got {rel!r}")
    path = (base / rel) if not Path(rel).is_absolute() else Path(rel)
    try:
        with np.load(path, allow_pickle=False) as npz:
            tables = {name: np.array(npz[name]) for name in npz.files}
    except Exception as exc:  # OSError, zipfile.BadZipFile, ValueError (pickled arrays)
        raise GameFileError(f"arrays: cannot read {path}: {exc}") from exc
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise GameFileError(f"arrays: {path} holds {unknown[0]!r}; tables: {list(TABLES)}")
    both = sorted(set(tables) & set(data))
    if both:
        raise GameFileError(f"{both[0]}: given both in the file and in {path} (keep one)")
    return tables


def _stored(name: str, arr: np.ndarray, shape: tuple[int, ...], transition: bool) -> np.ndarray:
    """Check a table from the .npz with the same messages as a written one."""
    key = f"{name} (from arrays)"
    if arr.shape != shape:
        raise GameFileError(f"{key} has shape {arr.shape}, expected {shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise GameFileError(f"{key} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        raise GameFileError(f"{name}{bad[0].tolist()} (from arrays) must be finite, got {arr[tuple(bad[0])]!r}")
    if transition:
        neg = np.argwhere(arr < 0)
        if neg.size:
            raise GameFileError(f"{name}{neg[0][:-1].tolist()} (from arrays) has a negative probability")
        sums = arr.sum(-1)
        off = np.argwhere(np.abs(sums - 1.0) > _ROW_ATOL)
        if off.size:
            where = tuple(off[0].tolist())
            raise GameFileError(f"{name}{list(where)} (from arrays) sums to {sums[where]:.6g}, not 1")
    return arr


def game_from_dict(data: Any, *, base: Path | None = None, default_name: str = "custom") -> GameFile:
    """Build a game from parsed YAML data; `base` resolves `arrays:` (raises GameFileError without the file)."""
    if not isinstance(data, Mapping):
        raise GameFileError(f"expected a mapping at the top level, got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - set(_KEYS))
    if unknown:
        raise GameFileError(f"{unknown[0]}: unknown key; known keys: {sorted(_KEYS)}")
    if data.get(FORMAT_KEY) != FORMAT_VERSION:
        raise GameFileError(f"{FORMAT_KEY}: must be {FORMAT_VERSION} (the format version), got "
                            f"{data.get(FORMAT_KEY)!r}")
    for key in ("gamma", "global", "local"):
        if key not in data:
            raise GameFileError(f"{key}: missing")
    labels = GameLabels(_names(data, "global", "states"), _names(data, "global", "actions"),
                        _names(data, "local", "states"), _names(data, "local", "actions"))
    g_s, g_a = _Axis("global state", labels.global_states), _Axis("global action", labels.global_actions)
    l_s, l_a = _Axis("local state", labels.local_states), _Axis("local action", labels.local_actions)
    S_g, A_g, S_l, A_l = (len(x) for x in labels)
    stored = _npz_tables(data, base or Path("."))
    specs = {"P_g": ((g_s, g_a), g_s, (S_g, A_g, S_g)), "P_l": ((l_s, g_s, l_a), l_s, (S_l, S_g, A_l, S_l)),
             "r_g": ((g_s, g_a), None, (S_g, A_g)), "r_l": ((l_s, g_s, l_a), None, (S_l, S_g, A_l))}
    tables: dict[str, np.ndarray] = {}
    for name, (axes, row, shape) in specs.items():
        if name in stored:
            tables[name] = _stored(name, stored[name], shape, row is not None)
        elif name in data:
            tables[name] = _table(data[name], axes, row, name)
        else:
            raise GameFileError(f"{name}: missing (give the table, or an 'arrays' .npz that holds it)")
    init_g = data.get("init_g", "uniform")
    if "init_g" in stored:
        tables["init_g"] = _stored("init_g", stored["init_g"][None], (1, S_g), True)[0]
    elif init_g == "uniform":
        tables["init_g"] = np.full(S_g, 1.0 / S_g)
    else:
        tables["init_g"] = _row(init_g, g_s, "init_g")
    init_l = data.get("init_l", "uniform")
    if init_l == "uniform":
        concentration = 0.0
    elif isinstance(init_l, Mapping) and set(map(str, init_l)) == {"dirichlet"}:
        concentration = _number(init_l["dirichlet"], "init_l.dirichlet")
        if concentration <= 0:
            raise GameFileError(f"init_l.dirichlet must be > 0 (use init_l: uniform for none), got {concentration}")
    else:
        raise GameFileError(f"init_l: expected 'uniform' or {{dirichlet: c}}, got {init_l!r}")
    gamma = _number(data["gamma"], "gamma")
    if not 0.0 <= gamma < 1.0:
        raise GameFileError(f"gamma must be in [0, 1), got {gamma!r}")
    n_agents = data.get("n_agents")
    if n_agents is not None and (isinstance(n_agents, bool) or not isinstance(n_agents, int) or n_agents < 1):
        raise GameFileError(f"n_agents must be a positive integer, got {n_agents!r}")
    name = data.get("name", default_name)
    description = data.get("description", "")
    if not isinstance(name, str) or not name:
        raise GameFileError(f"name must be a non-empty string, got {name!r}")
    if not isinstance(description, str):
        raise GameFileError(f"description must be a string, got {description!r}")
    try:  # the same validation as every built-in game (a backstop: the checks above are more specific)
        game = TabularGame(P_g=tables["P_g"], P_l=tables["P_l"], r_g=tables["r_g"], r_l=tables["r_l"], gamma=gamma,
                           init_g=tables["init_g"], init_l_concentration=concentration, name=name, labels=labels)
    except ValueError as exc:
        raise GameFileError(str(exc)) from exc
    floor = _floor(data["floor"], game) if "floor" in data else None
    return GameFile(game, n_agents, base or Path("."), description, floor)


def _zone(value: Any, zone_of_state: Mapping[str, int], key: str, allow_none: bool = False) -> int:
    """A zone given as an index or as a local state's name (that state's zone); -1 only where allowed."""
    if isinstance(value, str) and value in zone_of_state:
        return zone_of_state[value]
    if isinstance(value, int) and not isinstance(value, bool) and (value >= 0 or (allow_none and value == -1)):
        return value
    raise GameFileError(f"{key} must be a zone index{' (or -1: none)' if allow_none else ''} or a local state's "
                        f"name {sorted(zone_of_state)}, got {value!r}")


def _floor(value: Any, game: TabularGame) -> FloorMap:
    """The `floor:` section: zones of the local states, goal zones of local actions, zones of global actions."""
    if not isinstance(value, Mapping) or sorted(map(str, value)) != sorted(_FLOOR_KEYS):
        raise GameFileError(f"floor: expected a mapping with exactly {list(_FLOOR_KEYS)}, got {value!r}")
    L = game.names
    l_s, l_a = _Axis("local state", L.local_states), _Axis("local action", L.local_actions)
    state_zone = [_zone(z, {}, f"floor.local_state_zone[{s}]")
                  for s, z in _level(value["local_state_zone"], l_s, "floor.local_state_zone")]
    zone_of_state = dict(zip(L.local_states, state_zone, strict=True))
    goal = [[_zone(z, zone_of_state, f"floor.local_action_goal[{s}][{a}]") for a, z in _level(row, l_a,
             f"floor.local_action_goal[{s}]")] for s, row in _level(value["local_action_goal"], l_s,
                                                                    "floor.local_action_goal")]
    activated = [_zone(z, zone_of_state, f"floor.global_action_zone[{a}]", allow_none=True)
                 for a, z in _level(value["global_action_zone"], _Axis("global action", L.global_actions),
                                    "floor.global_action_zone")]
    try:
        floor = FloorMap(np.array(state_zone, dtype=np.int64), np.array(goal, dtype=np.int64),
                         np.array(activated, dtype=np.int64))
        floor.check_game(game)
    except ValueError as exc:
        raise GameFileError(str(exc)) from exc
    return floor


def read_game_file(path: str | os.PathLike[str]) -> GameFile:
    """Read and validate a game file; every problem raises GameFileError naming the file and the key."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GameFileError(f"game file {path}: cannot read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GameFileError(f"game file {path} is not valid YAML: {exc}") from exc
    try:
        loaded = game_from_dict(data, base=path.parent, default_name=path.stem)
    except GameFileError as exc:
        raise GameFileError(f"game file {path}: {exc}") from exc
    return loaded._replace(path=path)


def load_game_file(path: str | os.PathLike[str]) -> TabularGame:
    """The game of a game file (see `read_game_file`)."""
    return read_game_file(path).game


def _plain(arr: np.ndarray) -> Any:
    return [float(x) for x in arr] if arr.ndim == 1 else [_plain(a) for a in arr]


def _nested(arr: np.ndarray, axes: Sequence[tuple[str, ...]]) -> Any:
    """Nested {name: ...} mappings over `axes`; the remaining axis (a row) stays a list, scalars numbers."""
    if not axes:
        return _plain(arr) if arr.ndim else float(arr)
    return {name: _nested(sub, axes[1:]) for name, sub in zip(axes[0], arr, strict=True)}


def game_to_dict(game: TabularGame, *, n_agents: int | None = None, description: str = "",
                 arrays: str | None = None, floor: FloorMap | None = None) -> dict[str, Any]:
    """The file form of `game` (floats written exactly); with `arrays`, the tables are left to that .npz."""
    L = game.names
    data: dict[str, Any] = {FORMAT_KEY: FORMAT_VERSION, "name": game.name}
    if description:
        data["description"] = description
    data["gamma"] = game.gamma
    if n_agents is not None:
        data["n_agents"] = int(n_agents)
    data["global"] = {"states": list(L.global_states), "actions": list(L.global_actions)}
    data["local"] = {"states": list(L.local_states), "actions": list(L.local_actions)}
    data["init_l"] = ({"dirichlet": game.init_l_concentration} if game.init_l_concentration > 0 else "uniform")
    if floor is not None:
        floor.check_game(game)
        data["floor"] = {
            "local_state_zone": dict(zip(L.local_states, floor.local_state_zone.tolist(), strict=True)),
            "local_action_goal": {s: dict(zip(L.local_actions, row.tolist(), strict=True))
                                  for s, row in zip(L.local_states, floor.local_action_goal, strict=True)},
            "global_action_zone": dict(zip(L.global_actions, floor.global_action_zone.tolist(), strict=True))}
    if arrays is not None:
        data["arrays"] = arrays
        return data
    data["init_g"] = _plain(game.init_g)
    data["P_g"] = _nested(game.P_g, (L.global_states, L.global_actions))
    data["P_l"] = _nested(game.P_l, (L.local_states, L.global_states, L.local_actions))
    data["r_g"] = _nested(game.r_g, (L.global_states, L.global_actions))
    data["r_l"] = _nested(game.r_l, (L.local_states, L.global_states, L.local_actions))
    return data


def write_game_file(path: str | os.PathLike[str], game: TabularGame, *, n_agents: int | None = None,
                    description: str = "", npz: bool = False, floor: FloorMap | None = None) -> Path:
    """Write `game` as a game file (atomically); `npz=True` puts the tables in `<stem>.npz` beside it.

    `read_game_file` of the result rebuilds a game with the same fingerprint.
    """
    from altmarl_ros.marl.artifacts import atomic_write_bytes, atomic_write_text

    path = Path(path)
    arrays = path.with_suffix(".npz").name if npz else None
    data = game_to_dict(game, n_agents=n_agents, description=description, arrays=arrays, floor=floor)
    if npz:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **{name: getattr(game, name) for name in TABLES})
        atomic_write_bytes(path.with_suffix(".npz"), buffer.getvalue())
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120))
    return path
