"""`altmarl train` / `altmarl sweep` for the continuous warehouse with neural policies (issue 17).

`cli.py` hands a config over here when its YAML says `kind: continuous` (config/train_continuous.yaml):

    altmarl train --config config/train_continuous.yaml --k 20 --out policies/continuous_k20
    altmarl sweep --config config/train_continuous.yaml --k 1,20,75 --seeds 3 --out runs/continuous.csv

Both print progress per round, evaluate on the authors' protocol (no selection on evaluation seeds),
save versioned artifacts (weights as arrays, `marl.continuous.artifacts`), and the sweep writes the same
tidy CSV rows (k, seed, metric, value, stderr) as the tabular sweep, rewritten atomically after every cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from altmarl_ros.progress import Progress


def is_continuous(path: str | Path) -> bool:
    """Whether a training config file declares `kind: continuous` (unreadable files: False; the tabular
    loader then reports the problem)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and data.get("kind") == "continuous"


def train_main(config_path: Path, k: int | None, seed: int, out: str | None, evaluate: bool = True) -> int:
    """Train one pair, evaluate it on the protocol, save the artifact."""
    from altmarl_ros.marl.continuous import artifacts, compile_cache
    from altmarl_ros.marl.continuous.alternate import train
    from altmarl_ros.marl.continuous.evaluate import evaluate_pair
    from altmarl_ros.marl.continuous.settings import load_config

    cfg = load_config(config_path)
    compile_cache.enable()
    k = k or cfg.k
    print(f"training the continuous warehouse: n={cfg.env.n_agents} k={k} seed={seed} starts={list(cfg.starts)}")
    with Progress(cfg.rounds * len(cfg.starts), "rounds (at most)") as progress:
        def on_round(record: Any) -> None:
            progress.advance(1, f"round {record.round}, value {record.value.mean:.2f} [{record.accepted}]")

        trained = train(cfg, k, seed, on_round=on_round)
    print(f"trained in {trained.seconds:.1f} s; stop: {trained.loops[trained.chosen].stop_reason}")
    metrics: dict[str, Any] = {"train_seconds": trained.seconds}
    if evaluate:
        res = evaluate_pair(cfg.env, trained.ac_g.pi, trained.ac_l.pi, k, cfg.evaluation)
        metrics.update(res.to_dict())
        print(f"reward {res.mean:.2f} +- {res.seed_std:.2f} (std over {cfg.evaluation.seeds} seeds; stderr "
              f"{res.stderr:.2f}), mode accuracy {res.mode_accuracy:.3f}")
    path = artifacts.save(out or f"policies/continuous_k{k}_seed{seed}", trained.ac_g, trained.ac_l, env=cfg.env,
                          k=k, seed=seed, metrics=metrics, training=trained.record(),
                          config={"path": str(config_path)})
    print(f"saved {path} and {path.with_suffix('.json')}")
    return 0


def sweep_main(config_path: Path, ks: list[int], seeds: list[int], out: Path, gap_seeds: int,
               full_information: bool | None = None, workers: int = 1) -> int:
    """Every (k, seed) cell; the full-information reference per seed when the config (or the flag) asks; on
    `workers` processes of this machine (one XLA thread each) when > 1."""
    from altmarl_ros.marl.continuous import compile_cache
    from altmarl_ros.marl.continuous.experiments import sweep_cells
    from altmarl_ros.marl.continuous.settings import load_config
    from altmarl_ros.marl.experiments import SweepRow, write_rows

    cfg = load_config(config_path)
    compile_cache.enable()  # the spawned workers enable it too (experiments._one_thread)
    with_reference = cfg.full_information if full_information is None else full_information
    rows: list[SweepRow] = []
    print(f"continuous sweep k={ks} seeds={seeds} (gaps on {gap_seeds} seeds, full information: "
          f"{with_reference}, {workers} worker(s)) -> {out}")
    with Progress(len(ks) * len(seeds), "runs") as progress:
        def on_cell(k: int, seed: int, cell: list) -> None:
            rows.extend(SweepRow(*r) for r in cell)
            write_rows(out, rows)
            reward = next(r.value for r in cell if r.metric == "reward")
            progress.advance(1, f"k={k} seed={seed} reward {reward:.2f}")

        sweep_cells(cfg, ks, seeds, with_reference=with_reference, gap_seeds=gap_seeds, workers=workers,
                    on_cell=on_cell)
    print(f"wrote {len(rows)} rows to {out}")
    return 0
