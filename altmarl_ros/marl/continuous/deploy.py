"""Trained continuous-warehouse policies without JAX: what the ROS nodes run (issue 17, item 4).

`load_deployed(path)` reads the artifact `continuous.artifacts` writes (the same checks: format, version,
the .npz hash, every array's shape; `ContinuousPolicyError` naming the file) into NumPy greedy MLPs, so a
controller or robot process never imports JAX (1.6-2.5 s and ~165 MB per process here). The dynamics of
`continuous.env` are repeated here in NumPy (float64, `numpy.random.Generator`) for the simulator node and
for the NumPy reference of the closed loop; `test_continuous_deploy` checks them against the JAX
environment (one-step moments, the protocol's returns of the same policies).

On the swarm's ROS contract the global state s_g travels in the tick's integer field as a fixed-point code,
`encode_s_g`: micro-units of the state line above `low` (so the code is >= 0, below `n_codes`). Shapes: B
systems; s_g (B,), s_l (B, n), histograms (B, n_bins).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from altmarl_ros.errors import UserError
from altmarl_ros.marl.continuous.warehouse import (
    N_FEATURES_L,
    ContinuousWarehouse,
    bin_of,
    features_g,
    features_l,
    n_features_g,
)

FORMAT = "altmarl_ros.continuous_policy"
READS = (2,)  # version 1 fed the networks other features (before bench/README 13.2): retrain those
S_G_RESOLUTION = 1e-6  # state units per code step of s_g on the tick


class ContinuousPolicyError(UserError, ValueError):
    """A continuous policy artifact is missing, unreadable or incompatible."""


def artifact_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(<stem>.npz, <stem>.json) of an artifact named by either file or the stem."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".npz", ".json") else p
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def is_continuous_artifact(path: str | os.PathLike[str]) -> bool:
    """Whether `path` names a continuous artifact (its .json says so); False for tabular files and unreadable ones."""
    try:
        header = json.loads(artifact_paths(path)[1].read_text())
    except (OSError, ValueError):
        return False
    return isinstance(header, dict) and header.get("format") == FORMAT


def layer_shapes(n_in: int, hidden: tuple[int, ...], n_out: int) -> list[tuple[int, int]]:
    """(in, out) of each layer of an MLP n_in -> hidden... -> n_out."""
    sizes = (n_in, *hidden, n_out)
    return list(itertools.pairwise(sizes))


def net_shapes(env: ContinuousWarehouse, hidden_g: tuple[int, ...],
               hidden_l: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Every array of an artifact: name "<player>/<net>/<layer>/<w|b>" -> shape (see `continuous.artifacts`);
    critics read one more input (the time feature)."""
    nets = {"g/pi": layer_shapes(n_features_g(env), hidden_g, env.n_ga),
            "g/v": layer_shapes(n_features_g(env) + 1, hidden_g, 1),
            "l/pi": layer_shapes(N_FEATURES_L, hidden_l, env.n_al),
            "l/v": layer_shapes(N_FEATURES_L + 1, hidden_l, 1)}
    out: dict[str, tuple[int, ...]] = {}
    for prefix, layers in nets.items():
        for i, (n_in, n_out) in enumerate(layers):
            out[f"{prefix}/{i}/w"], out[f"{prefix}/{i}/b"] = (n_in, n_out), (n_out,)
    return out



class ArtifactFile(NamedTuple):
    header: dict[str, Any]
    env: ContinuousWarehouse
    k: int
    arrays: dict[str, np.ndarray]  # every array named in `net_shapes`, float32


def read_artifact(path: str | os.PathLike[str]) -> ArtifactFile:
    """Read and validate an artifact's two files (format, version, hash, shapes) with NumPy only."""
    npz_path, json_path = artifact_paths(path)

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
        why = " (version 1 networks read other input features: retrain them)" if header.get("version") == 1 else ""
        raise fail(f"version {header.get('version')!r} is not readable (reads {READS}){why}")
    if hashlib.sha256(npz_bytes).hexdigest() != header.get("npz_sha256"):
        raise fail(f"torn pair: {npz_path.name} does not match the hash recorded in the .json")
    try:
        env_fields = dict(header["env"])
        env_fields["offsets"] = tuple(env_fields["offsets"])
        env = ContinuousWarehouse(**env_fields)
        shapes = net_shapes(env, tuple(header["hidden_g"]), tuple(header["hidden_l"]))
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name], dtype=np.float32) for name in data.files}
        k = int(header["k"])
    except (KeyError, TypeError, ValueError) as exc:
        raise fail(f"invalid content ({exc})") from exc
    for name, shape in shapes.items():
        if name not in arrays:
            raise fail(f"missing array {name!r}")
        if arrays[name].shape != shape:
            raise fail(f"array {name!r} has shape {arrays[name].shape}, expected {shape}")
    if not 1 <= k <= env.n_agents:
        raise fail(f"k = {k} outside [1, n_agents = {env.n_agents}]")
    return ArtifactFile(header, env, k, {name: arrays[name] for name in shapes})


class GreedyMLP(NamedTuple):
    """A tanh MLP's weights ((w (in, out), b (out,)) per layer); acts by the argmax of its logits."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(..., in) -> (..., out), float32 as in training."""
        x = np.asarray(x, dtype=np.float32)
        for w, b in self.layers[:-1]:
            x = np.tanh(x @ w + b)
        w, b = self.layers[-1]
        return x @ w + b

    def act(self, x: np.ndarray) -> np.ndarray:
        """(..., in) -> (...,) int64 greedy actions."""
        return self.logits(x).argmax(axis=-1)


def _mlp(arrays: dict[str, np.ndarray], prefix: str) -> GreedyMLP:
    n_layers = sum(1 for name in arrays if name.startswith(f"{prefix}/") and name.endswith("/w"))
    return GreedyMLP(tuple((arrays[f"{prefix}/{i}/w"], arrays[f"{prefix}/{i}/b"]) for i in range(n_layers)))


class Deployed(NamedTuple):
    """Greedy deployed policies: the dispatcher pi_g(s_g, k-histogram) and the robots' pi_l(s_g, s_l)."""

    env: ContinuousWarehouse
    k: int
    pi_g: GreedyMLP
    pi_l: GreedyMLP
    header: dict[str, Any]

    @property
    def game_spec(self) -> dict[str, Any]:
        """What a run summary records as its game."""
        return {"name": "continuous_warehouse", "options": self.header.get("env", {})}

    def dispatch(self, s_g: np.ndarray, hist: np.ndarray) -> np.ndarray:
        """a_g (B,) from s_g (B,) and the normalised k-sample histograms (B, n_bins)."""
        return self.pi_g.act(features_g(np, self.env, s_g, hist))

    def local_actions(self, s_g: np.ndarray | float, s_l: np.ndarray) -> np.ndarray:
        """a_l, s_l's shape, from s_g broadcastable to s_l (`warehouse.features_l`)."""
        return self.pi_l.act(features_l(np, self.env, s_g, s_l))


def load_deployed(path: str | os.PathLike[str], expect_k: int | None = None) -> Deployed:
    """The artifact's greedy policies; with `expect_k`, refuse one trained for another budget."""
    f = read_artifact(path)
    if expect_k is not None and expect_k != f.k:
        raise ContinuousPolicyError(f"{artifact_paths(path)[1]}: trained for k = {f.k}, but k = {expect_k} was "
                                    "asked (train one for this k, or pass --k to match)")
    return Deployed(f.env, f.k, _mlp(f.arrays, "g/pi"), _mlp(f.arrays, "l/pi"), f.header)


# --- s_g on the ROS contract ----------------------------------------------------------------


def n_codes(env: ContinuousWarehouse) -> int:
    """Number of s_g codes: [low, high] in steps of S_G_RESOLUTION."""
    return round((env.high - env.low) / S_G_RESOLUTION) + 1


def encode_s_g(env: ContinuousWarehouse, s_g: float | np.ndarray) -> int:
    """s_g (a float or a one-element array) -> its code in [0, n_codes)."""
    return int(np.clip(round((float(s_g) - env.low) / S_G_RESOLUTION), 0, n_codes(env) - 1))


def decode_s_g(env: ContinuousWarehouse, code: int | np.ndarray) -> np.ndarray:
    """code(s) -> s_g (float64)."""
    return env.low + np.asarray(code, dtype=np.float64) * S_G_RESOLUTION


# --- the dynamics in NumPy (`continuous.env`) -------------------------------------------------


def bins(env: ContinuousWarehouse, s: np.ndarray) -> np.ndarray:
    """Histogram bin of each position (np.histogram's bins over [low, high]), int32, same shape."""
    return bin_of(np, env, np.asarray(s))


def reset(env: ContinuousWarehouse, rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(s_g (B,), s_l (B, n)): s_g ~ U(-start_g, start_g); two clusters split major_share / rest (env.reset)."""
    s_g = rng.uniform(-env.start_g, env.start_g, batch)
    order = np.argsort(rng.random((batch, env.n_bins)), axis=1)
    n_main = int(env.major_share * env.n_agents)
    is_main = np.arange(env.n_agents) < n_main
    tau = env.targets.astype(np.float64)
    centre = np.where(is_main[None, :], tau[order[:, :1]], tau[order[:, 1:2]])
    s_l = centre + env.cluster_sigma * rng.standard_normal((batch, env.n_agents))
    return s_g, np.clip(s_l, env.low, env.high)


class Transition(NamedTuple):
    s_g: np.ndarray  # (B,) next
    s_l: np.ndarray  # (B, n) next
    reward: np.ndarray  # (B,) r_g + mean_i r_l, on the state before the step
    r_g: np.ndarray  # (B,)
    r_l_mean: np.ndarray  # (B,)


def next_s_g(env: ContinuousWarehouse, rng: np.random.Generator, s_g: np.ndarray | float,
             a_g: np.ndarray | int) -> np.ndarray:
    """s_g' = clip(s_g + steer (tau_{a_g} - s_g) + sigma_g eps)."""
    s_g = np.asarray(s_g, dtype=np.float64)
    tau = env.targets.astype(np.float64)[np.asarray(a_g)]
    return np.clip(s_g + env.steer * (tau - s_g) + env.sigma_g * rng.standard_normal(s_g.shape), env.low, env.high)


def step(env: ContinuousWarehouse, rng: np.random.Generator, s_g: np.ndarray, s_l: np.ndarray, a_g: np.ndarray,
         a_l: np.ndarray) -> Transition:
    """One transition of B systems (env.step): a_g (B,), a_l (B, n)."""
    delta = np.asarray(env.offsets, dtype=np.float64)[a_l]
    tau = env.targets.astype(np.float64)[a_g]
    r_g = env.r_g_scale * np.exp(-((s_g - tau) ** 2) / (2 * env.r_g_width ** 2))
    r_l = env.align_scale * np.exp(-((s_l - s_g[:, None]) ** 2) / (2 * env.align_width ** 2)) - \
        env.move_cost * np.abs(delta)
    s_g_next = next_s_g(env, rng, s_g, a_g)
    s_l_next = np.clip(s_l + delta + env.sigma_l * rng.standard_normal(s_l.shape), env.low, env.high)
    return Transition(s_g_next, s_l_next, r_g + r_l.mean(axis=1), r_g, r_l.mean(axis=1))


def sample_histogram(env: ContinuousWarehouse, rng: np.random.Generator, s_l: np.ndarray, k: int) -> np.ndarray:
    """(B, n) -> (B, n_bins): normalised histogram of k robots drawn without replacement per system."""
    b = bins(env, s_l)
    if k < s_l.shape[1]:
        idx = np.argpartition(rng.random(s_l.shape), k - 1, axis=1)[:, :k]  # a uniform k-subset per row
        b = np.take_along_axis(b, idx, axis=1)
    return np.stack([(b == j).mean(axis=1) for j in range(env.n_bins)], axis=1)


def rollout_rewards(policy: Deployed | None, env: ContinuousWarehouse, rng: np.random.Generator, *, k: int,
                    steps: int, episodes: int) -> np.ndarray:
    """(episodes, steps) per-step rewards of fresh systems from reset under greedy `policy` (None: both players
    uniformly random); pi_g sees k robots drawn afresh at every step. The NumPy twin of
    `continuous.evaluate.greedy_rollouts` and the reference of a closed-loop run."""
    s_g, s_l = reset(env, rng, episodes)
    rewards = np.empty((episodes, steps))
    for t in range(steps):
        if policy is None:
            a_g = rng.integers(env.n_ga, size=episodes)
            a_l = rng.integers(env.n_al, size=s_l.shape)
        else:
            a_g = policy.dispatch(s_g, sample_histogram(env, rng, s_l, k))
            a_l = policy.local_actions(s_g[:, None], s_l)
        out = step(env, rng, s_g, s_l, a_g, a_l)
        rewards[:, t] = out.reward
        s_g, s_l = out.s_g, out.s_l
    return rewards
