"""Trained policies as a versioned artifact: one .npz (arrays) + one .json (metadata) beside it.

`policy.npz` holds `pi_g_actions` (S_g, D) int, `pi_l_probs` (S_g, S_l, A_l) float and the game's tables
(`game_P_g`, `game_P_l`, `game_r_g`, `game_r_l`, `game_init_g`), so an artifact carries its game: the ROS
nodes and `altmarl evaluate` need neither the registry entry nor the game file it was trained on.
Since version 3 it also holds the game's floor map (`floor_local_state_zone` (S_l,), `floor_local_action_goal`
(S_l, A_l), `floor_global_action_zone` (A_g,): `marl.games.floor.FloorMap`), what the ROS nodes need to deploy
the game; `policy.json` says `"floor": {"n_zones": Z}`, or null for a game that cannot be deployed.
`policy.json` holds the format version, the game spec (registry name or game-file path + options), its
fingerprint, names and scalars, k, the SHA-256 of the .npz, the training config, metrics and seed.
Versions 1 and 2 had no floor map: loading them derives the ring warehouse's (`floor.ring_floor`), which is
what the swarm assumed for every artifact then.

Loading uses `allow_pickle=False`, checks the version, the .npz hash, the shapes and the game
fingerprint, and fails with a `PolicyFileError` naming the file and the problem.

What a write guarantees: each file is written to a temporary file, fsynced and renamed over the old
one (os.replace), so neither file is ever half-written; the .npz is renamed first and the .json last.
The pair is replaced by two renames, not one, so a crash between them leaves the new .npz beside the
old .json; the .json names the SHA-256 of its .npz, and loading such a torn pair raises
PolicyFileError ("torn pair") instead of mixing two artifacts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from altmarl_ros.errors import UserError
from altmarl_ros.marl.game import GameLabels, TabularGame
from altmarl_ros.marl.games import floor_from_spec, game_from_spec, is_game_path
from altmarl_ros.marl.games.floor import FloorMap, ring_floor
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.pooled import PooledGlobalPolicy, pooled_policy

FORMAT = "altmarl_ros.policy"
VERSION = 3  # written for k-sample dispatchers; POOLED_VERSION for pooled ones (older readers must refuse them)
POOLED_VERSION = 4  # version 3 + "dispatcher": {"observation": "pooled", "K", "n_agents"} (pooled.PooledGlobalPolicy)
READS = (1, 2, 3, 4)  # version 1: no game tables and no .npz hash (the game is rebuilt from its spec); 1, 2: no floor
GAME_TABLES = ("P_g", "P_l", "r_g", "r_l", "init_g")
FLOOR_ARRAYS = ("local_state_zone", "local_action_goal", "global_action_zone")


class PolicyFileError(UserError, ValueError):
    """A policy artifact is missing, unreadable or incompatible."""


@dataclass(frozen=True)
class PolicyArtifact:
    """A loaded artifact: both policies, the game they were trained on, and the metadata."""

    pi_g: TabularGlobalPolicy | PooledGlobalPolicy
    pi_l: TabularLocalPolicy
    game: TabularGame
    game_spec: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    floor: FloorMap | None = None  # what the game means on the floor; None: the game cannot be deployed

    @property
    def k(self) -> int:
        return self.pi_g.k


def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".npz", ".json") else p
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def _write_temporary(path: Path, data: bytes) -> str:
    """Write `data` to a same-directory temporary file with the usual permissions, fsynced; return its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_files(files: list[tuple[Path, bytes]]) -> None:
    """Write several files, each atomically: all temporaries first, then the renames in the given order.

    A failure before the renames leaves every old file untouched; a crash between two renames leaves
    the files renamed so far new and the rest old (callers detect that, e.g. by a hash, see above).
    """
    temporaries: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            temporaries.append((_write_temporary(path, data), path))
        while temporaries:
            tmp, path = temporaries[0]
            os.replace(tmp, path)
            temporaries.pop(0)
    finally:
        for tmp, _ in temporaries:
            Path(tmp).unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (same-directory temporary file + os.replace)."""
    atomic_write_files([(path, data)])


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_policies(path: str | os.PathLike[str], pi_g: TabularGlobalPolicy | PooledGlobalPolicy,
                  pi_l: TabularLocalPolicy, *, game: TabularGame, game_spec: dict[str, Any],
                  floor: FloorMap | None = None, **meta: Any) -> Path:
    """Save to `<stem>.npz` + `<stem>.json`; returns the .npz path.

    `game_spec` is {"name": registry name or game-file path, "options": overrides}; `game_from_spec` of
    it must rebuild `game` (checked here). The game's tables are stored too, so loading never needs it.
    `floor`: the game's floor map; default `floor_from_spec(game_spec, game)` (the game file's, or the ring's).
    """
    rebuilt = game_from_spec(game_spec)
    if rebuilt.fingerprint != game.fingerprint:
        raise ValueError(f"game_spec {game_spec} does not rebuild the game the policies were trained on")
    floor = floor if floor is not None else floor_from_spec(game_spec, game)
    if floor is not None:
        floor.check_game(game)
    npz_path, json_path = _paths(path)
    buffer = io.BytesIO()
    arrays: dict[str, np.ndarray] = {"pi_g_actions": pi_g.actions, "pi_l_probs": pi_l.probs,
                                     **{f"game_{name}": getattr(game, name) for name in GAME_TABLES}}
    if floor is not None:
        arrays.update({f"floor_{name}": arr for name, arr in floor.as_arrays().items()})
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
    npz_bytes = buffer.getvalue()
    pooled = isinstance(pi_g, PooledGlobalPolicy)
    header = {
        "format": FORMAT,
        "version": POOLED_VERSION if pooled else VERSION,
        "game": {"name": game_spec["name"], "options": dict(game_spec.get("options", {})),
                 "fingerprint": game.fingerprint, "label": game.name, "gamma": game.gamma,
                 "init_l_concentration": game.init_l_concentration, "labels": game.names._asdict()},
        "k": pi_g.k,
        "floor": {"n_zones": floor.n_zones} if floor is not None else None,
        "shapes": {"pi_g_actions": list(pi_g.actions.shape), "pi_l_probs": list(pi_l.probs.shape)},
        "npz_sha256": hashlib.sha256(npz_bytes).hexdigest(),
        **meta,
    }
    if isinstance(pi_g, PooledGlobalPolicy):
        header["dispatcher"] = {"observation": "pooled", "K": pi_g.K, "n_agents": pi_g.observer.filter.n_agents}
    json_bytes = (json.dumps(header, indent=2, sort_keys=True, default=_jsonable) + "\n").encode()
    atomic_write_files([(npz_path, npz_bytes), (json_path, json_bytes)])  # the .json last (see module doc)
    return npz_path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def load_policies(path: str | os.PathLike[str], *, expect_game: TabularGame | None = None,
                  expect_k: int | None = None) -> PolicyArtifact:
    """Load and validate an artifact; raise PolicyFileError naming the file and the problem."""
    npz_path, json_path = _paths(path)
    for p in (npz_path, json_path):
        if not p.is_file():
            raise PolicyFileError(f"policy file {p} does not exist")
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PolicyFileError(f"policy metadata {json_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PolicyFileError(f"{json_path} is not an altmarl_ros policy (format {meta.get('format')!r})"
                              if isinstance(meta, dict) else f"{json_path} is not an altmarl_ros policy")
    version = meta.get("version")
    if version not in READS:
        raise PolicyFileError(f"{json_path} has format version {version!r}; this package reads "
                              f"versions {list(READS)}")
    try:
        npz_bytes = npz_path.read_bytes()
    except OSError as exc:
        raise PolicyFileError(f"policy arrays {npz_path} cannot be read: {exc}") from exc
    if version >= 2 and hashlib.sha256(npz_bytes).hexdigest() != meta.get("npz_sha256"):
        raise PolicyFileError(f"{npz_path} is not the .npz that {json_path} was written with (torn pair: a write "
                              f"was interrupted between the two files, or one was replaced); retrain or restore both")
    try:
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as data:
            actions = np.array(data["pi_g_actions"])
            probs = np.array(data["pi_l_probs"])
            tables = {name: np.array(data[f"game_{name}"]) for name in GAME_TABLES} if version >= 2 else None
            floor_arrays = ({name: np.array(data[f"floor_{name}"]) for name in FLOOR_ARRAYS}
                            if version >= 3 and meta.get("floor") is not None else None)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, ValueError (pickled object arrays), OSError
        raise PolicyFileError(f"policy arrays {npz_path} cannot be read: {exc}") from exc
    spec = meta.get("game", {})
    game = _artifact_game(spec, tables, json_path)
    if expect_game is not None and expect_game.fingerprint != game.fingerprint:
        raise PolicyFileError(f"{npz_path} was trained on game {game.name} ({game.fingerprint}), not on "
                              f"{expect_game.name} ({expect_game.fingerprint})")
    k = meta.get("k")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise PolicyFileError(f"{json_path}: 'k' must be a positive integer, got {k!r}")
    if expect_k is not None and k != expect_k:
        raise PolicyFileError(f"{npz_path} was trained for k={k}, but k={expect_k} was requested")
    expected_probs = (game.n_global_states, game.n_local_states, game.n_local_actions)
    if probs.shape != expected_probs:
        raise PolicyFileError(f"{npz_path}: pi_l_probs has shape {probs.shape}, expected {expected_probs}")
    try:
        pi_l = TabularLocalPolicy(probs)
        pi_g = (_pooled_dispatcher(meta.get("dispatcher"), game, pi_l, actions, k, json_path) if version >= 4 else
                TabularGlobalPolicy(actions, k, game.n_local_states, game.n_global_actions))
    except (TypeError, ValueError) as exc:
        raise PolicyFileError(f"{npz_path}: {exc}") from exc
    if pi_g.n_global_states != game.n_global_states:
        raise PolicyFileError(f"{npz_path}: pi_g has {pi_g.n_global_states} global states, game has "
                              f"{game.n_global_states}")
    return PolicyArtifact(pi_g, pi_l, game, {"name": spec["name"], "options": spec.get("options", {})}, meta,
                          _artifact_floor(version, floor_arrays, game, npz_path))


def _pooled_dispatcher(spec: Any, game: TabularGame, pi_l: TabularLocalPolicy, actions: np.ndarray, k: int,
                       json_path: Path) -> PooledGlobalPolicy:
    """Version 4's pooled dispatcher, its filter rebuilt from the game and pi_l (`pooled.pooled_policy`)."""
    if not isinstance(spec, dict) or spec.get("observation") != "pooled":
        raise PolicyFileError(f"{json_path}: version 4 needs 'dispatcher': {{'observation': 'pooled', ...}}, "
                              f"got {spec!r}")
    K, n = spec.get("K"), spec.get("n_agents")
    if not (isinstance(K, int) and isinstance(n, int) and not isinstance(K, bool) and not isinstance(n, bool)
            and K >= 1 and n >= k):
        raise PolicyFileError(f"{json_path}: dispatcher 'K' and 'n_agents' must be positive integers with "
                              f"k <= n_agents, got K={K!r}, n_agents={n!r}, k={k}")
    return pooled_policy(game, pi_l, actions, k=k, K=K, n_agents=n)


def _artifact_floor(version: int, arrays: dict[str, np.ndarray] | None, game: TabularGame,
                    npz_path: Path) -> FloorMap | None:
    """The stored floor map (version 3), or for versions 1 and 2 the ring warehouse's (migration)."""
    if version < 3:
        return ring_floor(game)
    if arrays is None:
        return None
    try:
        floor = FloorMap(**arrays)
        floor.check_game(game)
    except ValueError as exc:
        raise PolicyFileError(f"{npz_path}: {exc}") from exc
    return floor


def _artifact_game(spec: Any, tables: dict[str, np.ndarray] | None, json_path: Path) -> TabularGame:
    """The artifact's game: from its stored tables (version 2) or rebuilt from its spec (version 1).

    A built-in name is always rebuilt and must give the stored fingerprint (the definition must not
    have changed); a game-file path is not re-read: the stored tables are the game.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise PolicyFileError(f"{json_path}: 'game' must be a mapping with a 'name', got {spec!r}")
    name = spec["name"]
    rebuilt = None
    if tables is None or not is_game_path(name):
        try:
            rebuilt = game_from_spec(spec)
        except ValueError as exc:
            raise PolicyFileError(f"{json_path}: cannot rebuild game {spec!r}: {exc}") from exc
    if tables is None:
        assert rebuilt is not None
        game = rebuilt
    else:
        try:
            labels = spec.get("labels")
            game = TabularGame(**tables, gamma=spec["gamma"], init_l_concentration=spec["init_l_concentration"],
                               name=str(spec.get("label", name)),
                               labels=GameLabels(**labels) if isinstance(labels, dict) else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyFileError(f"{json_path}: the stored game tables are invalid: {exc}") from exc
    if game.fingerprint != spec.get("fingerprint"):
        raise PolicyFileError(f"{json_path}: game {name!r} has fingerprint {game.fingerprint} here but "
                              f"{spec.get('fingerprint')!r} in the file (the game definition changed)")
    if rebuilt is not None and rebuilt.fingerprint != game.fingerprint:
        raise PolicyFileError(f"{json_path}: game {name!r} has fingerprint {rebuilt.fingerprint} here but "
                              f"{game.fingerprint} in the file (the game definition changed)")
    return game
