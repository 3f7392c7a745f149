"""Sweep executors: a sweep is a k-by-seed grid of independent (k, seed) cells, run in this process or as
Ray tasks. (Not to be confused with the simulator backends of `ros.backends`.)

A cell is `experiments.run_one(config, k=..., seed=..., with_gap=...)`: it trains, evaluates and returns
tidy rows. Every random number of a cell comes from its seed, so a cell gives the same rows whichever
executor runs it and in whatever order (except `train_seconds`, a wall-clock time).

`run_sweep` streams: after every finished cell it rewrites the CSV atomically, in grid order, so an
interruption loses only the cells still running. With `resume=True` it reads an existing CSV and skips
the cells already there; a `<csv>.sweep.json` beside the CSV records the config and the game's
fingerprint, and resuming with a different one is refused (rows of two settings are never mixed).

Executors (`run_sweep(executor=...)`, `altmarl sweep --executor`):
- `local`: cells one after another in this process (global-oracle results shared between cells).
- `ray`: one Ray task per cell (1 CPU each) on an existing cluster (`address`, e.g. "auto" or
  "ray://head:10001") or on a Ray runtime started on this machine (`ray.init()`); Ray is an optional
  dependency (`pip install .[ray]`). Every machine of the cluster needs this package installed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from altmarl_ros.errors import InputError
from altmarl_ros.marl.artifacts import atomic_write_text
from altmarl_ros.marl.config import TrainConfig
from altmarl_ros.marl.experiments import GAP_METRIC, SweepRow, read_rows, run_one, write_rows
from altmarl_ros.marl.games import make_game

EXECUTORS = ("local", "ray")


class Cell(NamedTuple):
    """One (k, seed) cell of a sweep; `with_gap` also estimates the Nash gap."""

    k: int
    seed: int
    with_gap: bool = True


CellFn = Callable[[TrainConfig, Cell, "dict[str, Any] | None"], list[SweepRow]]
OnCell = Callable[[Cell, list[SweepRow]], None]


def run_cell(config: TrainConfig, cell: Cell, cache: dict[str, Any] | None = None, *,
             policy_dir: str | None = None) -> list[SweepRow]:
    """The rows of one cell: `experiments.run_one` at (cell.k, cell.seed). `cache` (local executor) shares
    global oracles and full-information references between cells; `policy_dir` saves each cell's pair."""
    cache = {} if cache is None else cache
    return run_one(config, k=cell.k, seed=cell.seed, with_gap=cell.with_gap,
                   oracle_cache=cache.setdefault("oracle", {}), full_cache=cache.setdefault("full", {}),
                   policy_dir=policy_dir)


def grid(ks: Sequence[int], seeds: Sequence[int], *, gap_seeds: int | None = None) -> list[Cell]:
    """Cells in sweep order (k outer, seeds inner); the Nash gap on the first `gap_seeds` seeds (None: all)."""
    return [Cell(int(k), int(seed), gap_seeds is None or i < gap_seeds) for k in ks for i, seed in enumerate(seeds)]


def run_local(config: TrainConfig, cells: Iterable[Cell], on_cell: OnCell, *, cell_fn: CellFn = run_cell) -> None:
    """Run cells one after another in this process, sharing global oracles between them."""
    cache: dict[str, Any] = {}
    for cell in cells:
        on_cell(cell, cell_fn(config, cell, cache))


def _ray_task(config: TrainConfig, cell: Cell, cell_fn: CellFn) -> list[SweepRow]:
    return cell_fn(config, cell, None)


def run_ray(config: TrainConfig, cells: Iterable[Cell], on_cell: OnCell, *, address: str | None = None,
            cell_fn: CellFn = run_cell) -> None:
    """Run every cell as a Ray task (1 CPU) and hand each result to `on_cell` as soon as it is done.

    Uses the Ray runtime already initialised in this process, else connects to `address`, else starts
    one on this machine; a runtime started here is shut down at the end. On an error or an interrupt
    the cells still pending are cancelled.
    """
    try:
        import ray
    except ImportError as exc:
        raise InputError("the ray executor needs Ray: pip install 'altmarl_ros[ray]' (or `pip install ray`)") from exc
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False)
    try:
        task = ray.remote(num_cpus=1)(_ray_task)
        config_ref = ray.put(config)
        pending = {task.remote(config_ref, cell, cell_fn): cell for cell in cells}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    cell = pending.pop(ref)
                    on_cell(cell, ray.get(ref))
        finally:
            for ref in pending:
                ray.cancel(ref)
    finally:
        if started:
            ray.shutdown()


def _meta_path(out: Path) -> Path:
    return out.with_name(out.name + ".sweep.json")


def _sweep_meta(config: TrainConfig) -> dict[str, Any]:
    settings = config.to_dict()
    settings.pop("k")  # the default budget of `altmarl train`: not used by a sweep
    return {"config": settings, "game_fingerprint": make_game(config.game, **config.game_options).fingerprint}


def _check_resumable(out: Path, meta: dict[str, Any]) -> None:
    path = _meta_path(out)
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"cannot resume {out}: {path} (the settings it was written with) is missing") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot resume {out}: {path} is unreadable: {exc}") from exc
    stored = json.loads(json.dumps(stored))
    meta = json.loads(json.dumps(meta))  # the same JSON normalisation as the stored copy
    if stored.get("game_fingerprint") != meta["game_fingerprint"]:
        raise InputError(f"cannot resume {out}: it was written for game {stored.get('game_fingerprint')!r}, this "
                         f"config's game is {meta['game_fingerprint']!r}")
    old, new = stored.get("config", {}), meta["config"]
    differ = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
    if differ:
        raise InputError(f"cannot resume {out}: it was written with a different config ({differ[0]}: "
                         f"{old.get(differ[0])!r} there, {new.get(differ[0])!r} now); use another --out")


def run_sweep(config: TrainConfig, cells: Sequence[Cell], *, out: str | os.PathLike[str] | None = None,
              executor: str = "local", address: str | None = None, resume: bool = False,
              on_cell: OnCell | None = None, cell_fn: CellFn = run_cell) -> list[SweepRow]:
    """Run the cells on `executor` ("local" or "ray"), writing `out` (CSV) after each; returns every row in grid order.

    `resume`: keep the cells already in `out` (a cell that needs the Nash gap and has none is rerun)
    and run only the others; `on_cell(cell, rows)` is called for each newly finished cell.
    """
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; executors: {list(EXECUTORS)}")
    if address and executor != "ray":
        raise InputError("an address is only used by the ray executor (--executor ray)")
    path = None if out is None else Path(out)
    meta = _sweep_meta(config)
    results: dict[tuple[int, int], list[SweepRow]] = {}
    if resume and path is not None and path.exists():
        _check_resumable(path, meta)
        for row in read_rows(path):
            results.setdefault((row.k, row.seed), []).append(row)
    elif path is not None:  # a fresh sweep: the settings, and an empty CSV (no stale rows under new settings)
        atomic_write_text(_meta_path(path), json.dumps(meta, indent=2, sort_keys=True) + "\n")
        write_rows(path, [])
    todo = [c for c in cells if (c.k, c.seed) not in results
            or (c.with_gap and not any(r.metric == GAP_METRIC for r in results[(c.k, c.seed)]))]
    order = {(c.k, c.seed): i for i, c in enumerate(cells)}

    def ordered() -> list[SweepRow]:
        keys = sorted(results, key=lambda key: (order.get(key, len(order)), key))
        return [row for key in keys for row in results[key]]

    def finished(cell: Cell, rows: list[SweepRow]) -> None:
        results[(cell.k, cell.seed)] = list(rows)
        if path is not None:
            write_rows(path, ordered())
        if on_cell is not None:
            on_cell(cell, rows)

    if executor == "local":
        run_local(config, todo, finished, cell_fn=cell_fn)
    else:
        run_ray(config, todo, finished, address=address, cell_fn=cell_fn)
    return ordered()

