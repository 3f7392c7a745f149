"""Cells of a k sweep on the continuous warehouse -> tidy rows (k, seed, metric, value, stderr), the
columns of the tabular sweep's CSV (`marl.experiments.ROW_FIELDS`).

A cell trains one pair at (k, seed), evaluates it on the authors' protocol (no selection on evaluation
seeds: every training seed is reported) and, optionally, against the full-information reference of the
same seed (the same learner with k = n_agents: the dispatcher reads the whole population's histogram),
paired on the protocol's episodes, and estimates the Nash gaps (`continuous.gaps`).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import NamedTuple

import numpy as np

from altmarl_ros.marl.continuous import compile_cache
from altmarl_ros.marl.continuous.alternate import Trained, train
from altmarl_ros.marl.continuous.evaluate import ProtocolResult, evaluate_pair
from altmarl_ros.marl.continuous.gaps import nash_gaps
from altmarl_ros.marl.continuous.settings import ContinuousConfig
from altmarl_ros.marl.sim import Estimate


class Row(NamedTuple):
    k: int
    seed: int
    metric: str
    value: float
    stderr: float


class Reference(NamedTuple):
    """The full-information reference of one training seed."""

    trained: Trained
    result: ProtocolResult


def ratio_estimate(num: np.ndarray, den: np.ndarray) -> Estimate:
    """mean(num) / mean(den) over paired samples, delta-method stderr."""
    a, b = np.asarray(num, np.float64).ravel(), np.asarray(den, np.float64).ravel()
    r = a.mean() / b.mean()
    resid = (a - r * b) / b.mean()
    return Estimate(float(r), float(resid.std(ddof=1) / math.sqrt(a.size)), int(a.size))


def full_information(cfg: ContinuousConfig, seed: int) -> Reference:
    """Train and evaluate the k = n_agents pair of `seed`."""
    n = cfg.env.n_agents
    trained = train(cfg, n, seed)
    return Reference(trained, evaluate_pair(cfg.env, trained.ac_g.pi, trained.ac_l.pi, n, cfg.evaluation))


def result_rows(k: int, seed: int, trained: Trained, res: ProtocolResult) -> list[Row]:
    nan = math.nan
    loop = trained.loops[trained.chosen]
    return [Row(k, seed, "reward", res.mean, res.stderr),
            Row(k, seed, "reward_seed_std", res.seed_std, nan),
            Row(k, seed, "mode_accuracy", res.mode_accuracy, nan),
            Row(k, seed, "train_seconds", trained.seconds, nan),
            Row(k, seed, "rounds", float(len(loop.history)), nan),
            Row(k, seed, "fixed_point", float(loop.fixed_point), nan)]


def run_cell(cfg: ContinuousConfig, k: int, seed: int, *, reference: ProtocolResult | None = None,
             with_gap: bool = False) -> tuple[list[Row], Trained]:
    """Train at (k, seed), evaluate on the protocol; add the ratio to the full-information reference's protocol
    result `reference` (paired on the protocol's episodes) and the gaps if asked."""
    trained = train(cfg, k, seed)
    res = evaluate_pair(cfg.env, trained.ac_g.pi, trained.ac_l.pi, k, cfg.evaluation)
    rows = result_rows(k, seed, trained, res)
    if reference is not None:
        ratio = ratio_estimate(res.returns, reference.returns)
        rows += [Row(k, seed, "reward_full_information", reference.mean, reference.stderr),
                 Row(k, seed, "ratio_full_information", ratio.mean, ratio.stderr)]
    if with_gap:
        gaps = nash_gaps(cfg, k, trained.ac_g, trained.ac_l, seed)
        rows += [Row(k, seed, name, est.mean, est.stderr) for name, est in gaps._asdict().items()]
    return rows, trained


ONE_THREAD = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
              "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _one_thread(cache: bool) -> None:
    """Worker initializer: one XLA / BLAS thread (read when the worker's first JAX computation starts); the
    persistent compilation cache when the parent uses it."""
    os.environ.update(ONE_THREAD)
    if cache:
        compile_cache.enable()


def _reference(cfg: ContinuousConfig, seed: int) -> ProtocolResult:
    return full_information(cfg, seed).result


def _cell(cfg: ContinuousConfig, k: int, seed: int, reference: ProtocolResult | None, with_gap: bool) -> list[Row]:
    return run_cell(cfg, k, seed, reference=reference, with_gap=with_gap)[0]


def sweep_cells(cfg: ContinuousConfig, ks: list[int], seeds: list[int], *, with_reference: bool, gap_seeds: int,
                workers: int = 1, on_cell: Callable[[int, int, list[Row]], None] | None = None) -> list[Row]:
    """Every (k, seed) cell (gaps on the first `gap_seeds` seeds), after each seed's full-information reference
    when `with_reference`. workers > 1: the references, then the cells, run on that many spawned processes of
    one XLA thread each (each process compiles its own programs); `on_cell(k, seed, rows)` as cells finish."""
    gap = {seed: i < gap_seeds for i, seed in enumerate(seeds)}
    tasks = [(k, seed) for seed in seeds for k in ks]
    rows: list[Row] = []
    if workers <= 1:
        for seed in seeds:
            ref = _reference(cfg, seed) if with_reference else None
            for k in ks:
                rows += (cell := _cell(cfg, k, seed, ref, gap[seed]))
                if on_cell is not None:
                    on_cell(k, seed, cell)
        return rows
    context = multiprocessing.get_context("spawn")  # JAX is not fork-safe
    cache = compile_cache.enabled()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread, initargs=(cache,)) as pool:
        refs = dict(zip(seeds, pool.map(_reference, [cfg] * len(seeds), seeds), strict=True)) if with_reference \
            else dict.fromkeys(seeds)
        futures = {pool.submit(_cell, cfg, k, seed, refs[seed], gap[seed]): (k, seed) for k, seed in tasks}
        for future in as_completed(futures):
            rows += (cell := future.result())
            if on_cell is not None:
                on_cell(*futures[future], cell)
    return sorted(rows, key=lambda r: (r.seed, ks.index(r.k)))
