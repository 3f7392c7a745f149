"""Trained continuous-warehouse policies as a versioned artifact: `<stem>.npz` (weights as plain arrays)
+ `<stem>.json` (format, version, environment constants, k, layer widths, the .npz's SHA-256, metadata).

Arrays are named "<player>/<net>/<layer>/<w|b>", player g (dispatcher) or l (robots), net pi (policy) or
v (critic). Loading uses `allow_pickle=False`, checks the format, the version, the hash (a torn pair of
files is refused) and every array's shape against the widths in the .json, and raises
`ContinuousPolicyError` naming the file and the problem. Both files are written atomically (the .npz
renamed first, the .json last), as the tabular artifacts (`marl.artifacts`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from altmarl_ros.errors import UserError
from altmarl_ros.marl.artifacts import atomic_write_files
from altmarl_ros.marl.continuous.env import ContinuousWarehouse
from altmarl_ros.marl.continuous.nets import N_FEATURES_L, ActorCritic, flatten, init_actor_critic, unflatten

FORMAT = "altmarl_ros.continuous_policy"
VERSION = 1
READS = (1,)


class ContinuousPolicyError(UserError, ValueError):
    """A continuous policy artifact is missing, unreadable or incompatible."""


class ContinuousArtifact(NamedTuple):
    ac_g: ActorCritic
    ac_l: ActorCritic
    env: ContinuousWarehouse
    k: int
    meta: dict[str, Any]


def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".npz", ".json") else p
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def _templates(env: ContinuousWarehouse, hidden_g: tuple[int, ...],
               hidden_l: tuple[int, ...]) -> tuple[ActorCritic, ActorCritic]:
    key = jax.random.key(0)
    return (init_actor_critic(key, 1 + env.n_bins, env.n_ga, hidden_g),
            init_actor_critic(key, N_FEATURES_L, env.n_al, hidden_l))


def _hidden(ac: ActorCritic) -> list[int]:
    return [int(layer["w"].shape[1]) for layer in ac.pi[:-1]]


def save(path: str | os.PathLike[str], ac_g: ActorCritic, ac_l: ActorCritic, *, env: ContinuousWarehouse, k: int,
         **meta: Any) -> Path:
    """Write the artifact; returns the .npz path. `meta` must be JSON-serialisable."""
    npz_path, json_path = _paths(path)
    arrays = {**flatten("g", ac_g), **flatten("l", ac_l)}
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    npz_bytes = buffer.getvalue()
    header = {"format": FORMAT, "version": VERSION, "env": dataclasses.asdict(env), "k": int(k),
              "hidden_g": _hidden(ac_g), "hidden_l": _hidden(ac_l),
              "npz_sha256": hashlib.sha256(npz_bytes).hexdigest(), **meta}
    json_bytes = (json.dumps(header, indent=2, sort_keys=True) + "\n").encode()
    atomic_write_files([(npz_path, npz_bytes), (json_path, json_bytes)])
    return npz_path


def load(path: str | os.PathLike[str]) -> ContinuousArtifact:
    """Read and validate an artifact (see the module doc)."""
    npz_path, json_path = _paths(path)

    def fail(msg: str) -> ContinuousPolicyError:
        return ContinuousPolicyError(f"{json_path}: {msg}")

    try:
        header = json.loads(json_path.read_text())
        npz_bytes = npz_path.read_bytes()
    except (OSError, json.JSONDecodeError) as exc:
        raise fail(f"cannot read the artifact ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise fail(f"not a {FORMAT} file")
    if header.get("version") not in READS:
        raise fail(f"version {header.get('version')!r} is not readable (reads {READS})")
    if hashlib.sha256(npz_bytes).hexdigest() != header.get("npz_sha256"):
        raise fail(f"torn pair: {npz_path.name} does not match the hash recorded in the .json")
    try:
        env_fields = dict(header["env"])
        env_fields["offsets"] = tuple(env_fields["offsets"])
        env = ContinuousWarehouse(**env_fields)
        tpl_g, tpl_l = _templates(env, tuple(header["hidden_g"]), tuple(header["hidden_l"]))
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        ac_g = ActorCritic(*unflatten("g", tpl_g, arrays))
        ac_l = ActorCritic(*unflatten("l", tpl_l, arrays))
        k = int(header["k"])
    except (KeyError, TypeError, ValueError) as exc:
        raise fail(f"invalid content ({exc})") from exc
    if not 1 <= k <= env.n_agents:
        raise fail(f"k = {k} outside [1, n_agents = {env.n_agents}]")
    return ContinuousArtifact(ac_g, ac_l, env, k, header)
