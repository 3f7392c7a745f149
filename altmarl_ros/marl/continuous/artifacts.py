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

from altmarl_ros.marl.artifacts import atomic_write_files
from altmarl_ros.marl.continuous.deploy import FORMAT, artifact_paths, read_artifact
from altmarl_ros.marl.continuous.deploy import ContinuousPolicyError as ContinuousPolicyError  # re-exported
from altmarl_ros.marl.continuous.nets import N_FEATURES_L, ActorCritic, flatten, init_actor_critic, unflatten
from altmarl_ros.marl.continuous.warehouse import ContinuousWarehouse, n_features_g

VERSION = 2  # written; `deploy.READS` lists what is read


class ContinuousArtifact(NamedTuple):
    ac_g: ActorCritic
    ac_l: ActorCritic
    env: ContinuousWarehouse
    k: int
    meta: dict[str, Any]


def _templates(env: ContinuousWarehouse, hidden_g: tuple[int, ...],
               hidden_l: tuple[int, ...]) -> tuple[ActorCritic, ActorCritic]:
    key = jax.random.key(0)
    return (init_actor_critic(key, n_features_g(env), env.n_ga, hidden_g),
            init_actor_critic(key, N_FEATURES_L, env.n_al, hidden_l))


def _hidden(ac: ActorCritic) -> list[int]:
    return [int(layer["w"].shape[1]) for layer in ac.pi[:-1]]


def save(path: str | os.PathLike[str], ac_g: ActorCritic, ac_l: ActorCritic, *, env: ContinuousWarehouse, k: int,
         **meta: Any) -> Path:
    """Write the artifact; returns the .npz path. `meta` must be JSON-serialisable."""
    npz_path, json_path = artifact_paths(path)
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
    """Read and validate an artifact (`deploy.read_artifact`: format, version, hash, shapes) into JAX networks."""
    f = read_artifact(path)
    tpl_g, tpl_l = _templates(f.env, tuple(f.header["hidden_g"]), tuple(f.header["hidden_l"]))
    ac_g = ActorCritic(*unflatten("g", tpl_g, f.arrays))
    ac_l = ActorCritic(*unflatten("l", tpl_l, f.arrays))
    return ContinuousArtifact(ac_g, ac_l, f.env, f.k, f.header)
