"""Data and model of the federated runs: scikit-learn's digits, non-IID shards, softmax regression in numpy.

The model is multinomial logistic regression: logits = x W + b, W (64, 10), b (10,), on pixel
intensities scaled to [0, 1]. Parameters travel as a list of two arrays [W, b] (Flower's ArrayRecord).
The non-IID partition is the shard scheme of McMahan et al. (2017): the training set sorted by label,
cut into 2 n shards, two random shards per client (so most clients hold two digits).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from altmarl_ros.errors import InputError

DATASETS = ("digits",)
N_FEATURES, N_CLASSES = 64, 10


class DatasetError(InputError):
    """An unknown dataset name or an impossible partition (one line naming the problem)."""


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (m, 64) float
    y: np.ndarray  # (m,) int labels 0..9


@lru_cache(maxsize=4)
def load(dataset: str = "digits", *, test_fraction: float = 0.25, seed: int = 0) -> tuple[Split, Split]:
    """(train, test) of `dataset`; the split is stratified by a seeded permutation within each class."""
    if dataset not in DATASETS:
        raise DatasetError(f"unknown dataset {dataset!r}; known datasets: {list(DATASETS)}")
    from sklearn.datasets import load_digits  # ships with scikit-learn, no download

    bunch = load_digits()
    x, y = bunch.data.astype(np.float64) / 16.0, bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(y.size, dtype=bool)
    for c in range(N_CLASSES):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: round(test_fraction * idx.size)]] = True
    return Split(x[~test], y[~test]), Split(x[test], y[test])


def partition(train: Split, n_clients: int, seed: int, shards_per_client: int = 2) -> list[Split]:
    """Non-IID shards: sort by label, cut into shards_per_client * n shards, deal them at random."""
    n_shards = shards_per_client * n_clients
    if n_shards > train.y.size:
        raise DatasetError(f"{n_clients} clients need {n_shards} shards but the training set has "
                           f"{train.y.size} examples")
    order = np.argsort(train.y, kind="stable")
    shards = np.array_split(order, n_shards)
    deal = np.random.default_rng(seed).permutation(n_shards).reshape(n_clients, shards_per_client)
    return [Split(train.x[np.concatenate([shards[s] for s in row])], train.y[np.concatenate([shards[s] for s in row])])
            for row in deal]


def init_params(seed: int) -> list[np.ndarray]:
    """Small random W (64, 10) and zero b (10,)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, 0.01, (N_FEATURES, N_CLASSES)), np.zeros(N_CLASSES)]


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def loss(params: list[np.ndarray], data: Split) -> float:
    """Mean cross-entropy of the model on `data` (nats)."""
    W, b = params
    logp = _log_softmax(data.x @ W + b)
    return float(-logp[np.arange(data.y.size), data.y].mean())


def accuracy(params: list[np.ndarray], data: Split) -> float:
    W, b = params
    return float(((data.x @ W + b).argmax(axis=1) == data.y).mean())


def sgd(params: list[np.ndarray], data: Split, rng: np.random.Generator, *, epochs: int, lr: float = 0.5,
        batch: int = 8) -> list[np.ndarray]:
    """`epochs` passes of minibatch SGD on the cross-entropy (a client's local training)."""
    W, b = (p.copy() for p in params)
    m = data.y.size
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(m), max(1, -(-m // batch))):
            x, y = data.x[idx], data.y[idx]
            p = np.exp(_log_softmax(x @ W + b))
            p[np.arange(y.size), y] -= 1.0
            W -= lr * x.T @ p / y.size
            b -= lr * p.mean(axis=0)
    return [W, b]


def weighted_average(updates: list[list[np.ndarray]], weights: list[float]) -> list[np.ndarray]:
    """FedAvg's aggregate: sum_i w_i params_i / sum_i w_i, array by array."""
    w = np.asarray(weights, dtype=np.float64)
    return [sum(wi * u[j] for wi, u in zip(w, updates, strict=True)) / w.sum() for j in range(len(updates[0]))]
