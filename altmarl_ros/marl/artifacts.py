"""Trained policies as a versioned artifact: one .npz (arrays) + one .json (metadata) beside it.

`policy.npz` holds `pi_g_actions` (S_g, D) int and `pi_l_probs` (S_g, S_l, A_l) float; `policy.json`
holds the format version, the game spec (registry name + overrides) and its fingerprint, k, the
training config, metrics and seed. Loading uses `allow_pickle=False`, checks the version, the shapes
and the game fingerprint, and fails with a `PolicyFileError` naming the file and the problem. Writes
are atomic (temporary file + os.replace), so a crash never leaves a half-written artifact.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy

FORMAT = "altmarl_ros.policy"
VERSION = 1


class PolicyFileError(ValueError):
    """A policy artifact is missing, unreadable or incompatible."""


@dataclass(frozen=True)
class PolicyArtifact:
    """A loaded artifact: both policies, the game they were trained on, and the metadata."""

    pi_g: TabularGlobalPolicy
    pi_l: TabularLocalPolicy
    game: TabularGame
    game_spec: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return self.pi_g.k


def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".npz", ".json") else p
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (same-directory temporary file + os.replace)."""
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
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_policies(path: str | os.PathLike[str], pi_g: TabularGlobalPolicy, pi_l: TabularLocalPolicy, *,
                  game: TabularGame, game_spec: dict[str, Any], **meta: Any) -> Path:
    """Save to `<stem>.npz` + `<stem>.json`; returns the .npz path.

    `game_spec` is {"name": registry name, "options": overrides}; `make_game(**)` of it must rebuild
    `game` (checked here, so an artifact can always be loaded).
    """
    rebuilt = make_game(game_spec["name"], **game_spec.get("options", {}))
    if rebuilt.fingerprint != game.fingerprint:
        raise ValueError(f"game_spec {game_spec} does not rebuild the game the policies were trained on")
    npz_path, json_path = _paths(path)
    buffer = io.BytesIO()
    np.savez(buffer, pi_g_actions=pi_g.actions, pi_l_probs=pi_l.probs)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "game": {"name": game_spec["name"], "options": dict(game_spec.get("options", {})),
                 "fingerprint": game.fingerprint},
        "k": pi_g.k,
        "shapes": {"pi_g_actions": list(pi_g.actions.shape), "pi_l_probs": list(pi_l.probs.shape)},
        **meta,
    }
    atomic_write_bytes(npz_path, buffer.getvalue())
    atomic_write_text(json_path, json.dumps(header, indent=2, sort_keys=True, default=_jsonable) + "\n")
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
    if meta.get("version") != VERSION:
        raise PolicyFileError(f"{json_path} has format version {meta.get('version')!r}; this package reads "
                              f"version {VERSION}")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            actions = np.array(data["pi_g_actions"])
            probs = np.array(data["pi_l_probs"])
    except Exception as exc:  # zipfile.BadZipFile, KeyError, ValueError (pickled object arrays), OSError
        raise PolicyFileError(f"policy arrays {npz_path} cannot be read: {exc}") from exc
    spec = meta.get("game", {})
    try:
        game = make_game(spec["name"], **spec.get("options", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyFileError(f"{json_path}: cannot rebuild game {spec!r}: {exc}") from exc
    if game.fingerprint != spec.get("fingerprint"):
        raise PolicyFileError(f"{json_path}: game {spec.get('name')!r} has fingerprint {game.fingerprint} "
                              f"here but {spec.get('fingerprint')!r} in the file (the game definition changed)")
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
        pi_g = TabularGlobalPolicy(actions, k, game.n_local_states, game.n_global_actions)
        pi_l = TabularLocalPolicy(probs)
    except (TypeError, ValueError) as exc:
        raise PolicyFileError(f"{npz_path}: {exc}") from exc
    if pi_g.n_global_states != game.n_global_states:
        raise PolicyFileError(f"{npz_path}: pi_g has {pi_g.n_global_states} global states, game has "
                              f"{game.n_global_states}")
    return PolicyArtifact(pi_g, pi_l, game, {"name": spec["name"], "options": spec.get("options", {})}, meta)
