"""Sweep executors: cells, streaming CSV, resume, and Ray = local on the same seeds (a real local Ray runtime)."""

import math
import os
import subprocess
import sys

import pytest

from altmarl_ros.errors import InputError
from altmarl_ros.marl.config import config_from_dict
from altmarl_ros.marl.executors import Cell, grid, run_cell, run_sweep
from altmarl_ros.marl.experiments import read_rows, run_one

# A tiny config on the two-zone coordination game: a cell takes a fraction of a second.
TINY = config_from_dict({
    "game": "coordination", "game_options": {"slip": 0.1, "dirichlet": 0.5}, "n_agents": 12, "k": 2,
    "g_learn": {"transition": "sampled", "m": 5, "tol": 1e-2},
    "loop": {"max_rounds": 3, "eval_episodes": 8, "eval_horizon": 12},
    "evaluation": {"horizon": 12, "episodes": 6, "seeds": 2},
    "nash_gap": {"k_oracle": 6, "episodes": 8},
})
KS, SEEDS = (1, 2, 3), (0, 1)
WALL_CLOCK = {"train_seconds"}  # the only metric that is not a function of the seed


def _comparable(rows):
    return [(r.k, r.seed, r.metric, r.value, r.stderr) for r in rows if r.metric not in WALL_CLOCK]


def _all(rows):
    return [tuple(r) for r in rows]


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x[:3] == y[:3]
        for u, v in zip(x[3:], y[3:], strict=True):
            assert u == v or (math.isnan(u) and math.isnan(v)), (x, y)


def test_grid_orders_cells_and_limits_the_gap():
    assert grid([1, 5], [0, 1, 2], gap_seeds=1) == [Cell(1, 0, True), Cell(1, 1, False), Cell(1, 2, False),
                                                     Cell(5, 0, True), Cell(5, 1, False), Cell(5, 2, False)]


def test_a_cell_is_run_one():
    _same(_comparable(run_cell(TINY, Cell(2, 1, True))), _comparable(run_one(TINY, k=2, seed=1, with_gap=True)))


def test_local_sweep_streams_every_cell_to_the_csv(tmp_path):
    out = tmp_path / "sweep.csv"
    seen = []

    def on_cell(cell, rows):
        seen.append((cell, len(read_rows(out))))  # the CSV already holds this cell when we are told

    rows = run_sweep(TINY, grid(KS, SEEDS, gap_seeds=1), out=out, on_cell=on_cell)
    per_cell = [sum(1 for r in rows if (r.k, r.seed) == (c.k, c.seed)) for c, _ in seen]
    assert [n for _, n in seen] == [sum(per_cell[: i + 1]) for i in range(len(seen))]
    _same(_all(read_rows(out)), _all(rows))
    assert {(r.k, r.seed) for r in rows} == {(k, s) for k in KS for s in SEEDS}
    assert all(any(r.metric == "nash_gap_lower_bound" for r in rows if (r.k, r.seed) == (k, 0)) for k in KS)
    assert not any(r.metric == "nash_gap_lower_bound" and r.seed == 1 for r in rows)


def test_resume_skips_done_cells_and_reruns_nothing(tmp_path):
    out = tmp_path / "sweep.csv"
    cells = grid(KS, SEEDS)
    full = run_sweep(TINY, cells, out=out)
    # an interrupted sweep: only the first three cells made it to the CSV
    first = run_sweep(TINY, cells[:3], out=tmp_path / "part.csv")
    ran = []

    def counting(config, cell, cache):
        ran.append(cell)
        return run_cell(config, cell, cache)

    resumed = run_sweep(TINY, cells, out=tmp_path / "part.csv", resume=True, cell_fn=counting)
    assert ran == cells[3:]
    _same(_all(resumed[: len(first)]), _all(first))  # the rows already written are kept as they were
    _same(_comparable(resumed), _comparable(full))
    ran.clear()
    _same(_all(run_sweep(TINY, cells, out=out, resume=True, cell_fn=counting)), _all(full))
    assert ran == []


def test_resume_reruns_a_cell_that_now_needs_the_gap(tmp_path):
    out = tmp_path / "sweep.csv"
    run_sweep(TINY, grid([1], [0, 1], gap_seeds=0), out=out)
    ran = []

    def counting(config, cell, cache):
        ran.append(cell)
        return run_cell(config, cell, cache)

    rows = run_sweep(TINY, grid([1], [0, 1], gap_seeds=1), out=out, resume=True, cell_fn=counting)
    assert ran == [Cell(1, 0, True)]
    assert sum(r.metric == "nash_gap_lower_bound" for r in rows) == 1 and len(read_rows(out)) == len(rows)


def test_resume_refuses_a_different_config(tmp_path):
    out = tmp_path / "sweep.csv"
    run_sweep(TINY, grid([1], [0]), out=out)
    other = config_from_dict({**TINY.to_dict(), "n_agents": 13})
    with pytest.raises(ValueError, match=r"different config \(n_agents: 12 there, 13 now\)"):
        run_sweep(other, grid([1], [0]), out=out, resume=True)
    (tmp_path / "sweep.csv.sweep.json").unlink()
    with pytest.raises(ValueError, match=r"sweep\.json .* is missing"):
        run_sweep(TINY, grid([1], [0]), out=out, resume=True)


def test_bad_executor_and_address_are_user_errors():
    with pytest.raises(InputError, match=r"unknown executor 'spark'; executors: \['local', 'ray'\]"):
        run_sweep(TINY, [], executor="spark")
    with pytest.raises(InputError, match=r"only used by the ray executor \(--executor ray\)"):
        run_sweep(TINY, [], address="auto")


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """A real Ray runtime on this machine with 2 CPUs (PHYSICS_AND_RAY_ON_THIS_MACHINE.md 7)."""
    import ray  # a test dependency (requirements.txt): never skipped

    saved = {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")}
    os.environ["RAY_AUTH_MODE"] = "disabled"  # no token written to the home directory
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    for attempt in (1, 2):  # Ray gives its raylet a fixed 30 s to register: a loaded machine can miss that once
        try:
            ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
                     _temp_dir=str(tmp_path_factory.mktemp("ray")), log_to_driver=False)
            break
        except Exception as exc:  # ray raises a bare Exception("The current node timed out during startup...")
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(exc):
                raise
    yield ray
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_ray_executor_gives_the_local_rows_and_resumes(ray_local, tmp_path):
    cells = grid(KS, SEEDS, gap_seeds=1)
    local = run_sweep(TINY, cells, out=tmp_path / "local.csv")
    remote = run_sweep(TINY, cells, out=tmp_path / "ray.csv", executor="ray")
    _same(_comparable(remote), _comparable(local))  # same rows, same (grid) order
    _same(_comparable(read_rows(tmp_path / "ray.csv")), _comparable(local))
    assert ray_local.is_initialized()  # a runtime it did not start is left running
    # resume on Ray: only the missing cells become tasks
    run_sweep(TINY, cells[:2], out=tmp_path / "part.csv", executor="ray")
    ran = tmp_path / "ran"
    ran.mkdir()

    def marking(config, cell, cache):  # runs in a Ray worker: leave a file per cell
        (ran / f"{cell.k}_{cell.seed}").touch()
        return run_cell(config, cell, cache)

    resumed = run_sweep(TINY, cells, out=tmp_path / "part.csv", executor="ray", resume=True, cell_fn=marking)
    assert sorted(p.name for p in ran.iterdir()) == sorted(f"{c.k}_{c.seed}" for c in cells[2:])
    _same(_comparable(resumed), _comparable(local))


def test_cli_sweep_resume_and_executor_flags(tmp_path):
    config = tmp_path / "tiny.yaml"
    import yaml

    config.write_text(yaml.safe_dump(TINY.to_dict()))
    out = tmp_path / "s.csv"

    def altmarl(*args):
        return subprocess.run([sys.executable, "-m", "altmarl_ros.cli", *map(str, args)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)

    first = altmarl("sweep", "--config", config, "--k", "1", "--seeds", "1", "--out", out)
    assert first.returncode == 0, first.stderr
    second = altmarl("sweep", "--config", config, "--k", "1,2", "--seeds", "1", "--out", out, "--resume")
    assert second.returncode == 0, second.stderr
    assert {(r.k, r.seed) for r in read_rows(out)} == {(1, 0), (2, 0)}
    assert "(resuming)" in second.stdout
    bad = altmarl("sweep", "--config", config, "--k", "1", "--out", out, "--address", "auto")
    assert bad.returncode == 2 and bad.stderr.strip().endswith("--address needs --executor ray")
    bad = altmarl("sweep", "--config", config, "--k", "1", "--out", out, "--executor", "local", "--address", "auto")
    assert bad.returncode == 2 and bad.stderr.strip().endswith("--address needs --executor ray")
    # the old flag name still works, with a deprecation warning (same rows as --executor local)
    old = altmarl("sweep", "--config", config, "--k", "1", "--seeds", "1", "--out", tmp_path / "old.csv",
                  "--backend", "local")
    assert old.returncode == 0, old.stderr
    assert "--backend is deprecated, use --executor" in old.stderr and " on local " in old.stdout
    _same(_comparable(read_rows(tmp_path / "old.csv")), _comparable([r for r in read_rows(out) if r.k == 1]))
    assert "--executor" in altmarl("sweep", "--help").stdout


def test_without_ray_the_ray_executor_is_one_clear_error(monkeypatch):
    """Ray is optional: the local executor never imports it, and --executor ray without it is a user error."""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    assert run_sweep(TINY, grid([1], [0], gap_seeds=0))  # local: fine
    with pytest.raises(InputError, match=r"the ray executor needs Ray: pip install 'altmarl_ros\[ray\]'"):
        run_sweep(TINY, grid([1], [0], gap_seeds=0), executor="ray")
