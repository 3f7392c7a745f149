"""Steps of `altmarl federated` and bench/federated_flower.py: record, identify, sweep k, compare in Flower.

Every step writes its result atomically into the output directory and returns it:
    records.json        round logs of the recording (exploration) runs: calibration and held-out
    identified.yaml     the identified participation game (polled, unpolled kernels; P_g; upload values)
    identification.json posterior counts / intervals summary, upload values, held-out TV per row
    k_sweep.csv         experiments.run_one rows per (k, seed) on the identified game's reduction
    comparison.json     learned strategy vs FedAvg in Flower: per seed and 95 % CIs; curves
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from altmarl_ros.federated.experiment import (
    compare_runs,
    logs_from_json,
    logs_to_json,
    mean_curves,
    save_json,
)
from altmarl_ros.federated.game import ParticipationGame, TrainedPolicy, participation_to_dict
from altmarl_ros.federated.identify import Identified, heldout_report, identify_runs
from altmarl_ros.federated.runner import Fleet, RunSpec, run_plan
from altmarl_ros.marl.artifacts import atomic_write_text

Progress = Callable[[int, int, str], None]  # (done, total, what)


def record(out: Path, fleet: Fleet, *, k: int, rounds: int, seeds: list[int], heldout_seeds: list[int],
           backend: str = "ray", progress: Progress | None = None) -> dict[str, list[list]]:
    """Exploration runs (random phases, uniform pi_l) with the probe; seeds for identification and held-out."""
    plan = [RunSpec("explore", s, rounds, k, record_probe=True) for s in [*seeds, *heldout_seeds]]
    total = len(plan)
    def on_run(i: int, spec: RunSpec) -> None:
        if progress is not None:
            progress(i + 1, total, f"recorded seed {spec.seed}")

    logs = run_plan(plan, fleet, backend=backend, on_run=on_run)
    result = {"calibration": logs[: len(seeds)], "heldout": logs[len(seeds):]}
    save_json(out / "records.json", {"fleet": vars(fleet), "k": k, "rounds": rounds, "seeds": seeds,
                                     "heldout_seeds": heldout_seeds,
                                     **{key: logs_to_json(v) for key, v in result.items()}})
    return result


def load_records(path: Path) -> dict[str, list[list]]:
    import json

    data = json.loads(Path(path).read_text())
    return {key: logs_from_json(data[key]) for key in ("calibration", "heldout")}


def identify_step(out: Path, records: dict[str, list[list]], nominal: ParticipationGame) -> Identified:
    """Identify from the calibration runs; compare with the held-out runs' own evidence (uniform prior,
    one pseudo-count per row)."""
    ident = identify_runs(records["calibration"], nominal)
    report: dict[str, Any] = {"calibration": ident.report}
    if records.get("heldout"):
        held = identify_runs(records["heldout"], nominal, prior="uniform", strength=1.0)
        report["heldout"] = held.report
        report["heldout_comparison"] = heldout_report(ident, held)
    report["P_polled"] = _posterior_rows(ident, "P_polled")
    atomic_write_text(out / "identified.yaml", "# written by altmarl federated (identified from Flower records)\n"
                      + yaml.safe_dump(participation_to_dict(ident.game), sort_keys=False, width=120))
    save_json(out / "identification.json", report)
    return ident


def _posterior_rows(ident: Identified, name: str) -> list[dict]:
    """Visited rows: counts, posterior mean and 95 % intervals (named)."""
    post = getattr(ident, name)
    L = ident.game.polled.names
    rows = []
    for idx in zip(*np.nonzero(post.counts.sum(-1) > 0), strict=True):
        s, g, a = idx
        rows.append({"s_l": L.local_states[s], "s_g": L.global_states[g], "a_l": L.local_actions[a],
                     "count": int(post.counts[idx].sum()), "mean": np.round(post.mean[idx], 4).tolist(),
                     "lower": np.round(post.lower[idx], 4).tolist(), "upper": np.round(post.upper[idx], 4).tolist()})
    return rows


def k_sweep(out: Path, game: ParticipationGame, *, ks: list[int], seeds: list[int], train_config: Path,
            progress: Progress | None = None) -> list:
    """experiments.run_one (reward, full-information ratio) per (k, seed) on the reduction for each k."""
    from altmarl_ros.marl.config import load_train_config
    from altmarl_ros.marl.experiments import run_one, write_rows

    rows: list = []
    total, done = len(ks) * len(seeds), 0
    for k in ks:
        path = game.write_tabular(out / "games" / f"identified_k{k}.yaml", k)
        config = load_train_config(train_config, game=str(path), n_agents=game.n_agents, k=k)
        full_cache: dict = {}
        for seed in seeds:
            rows += run_one(config, k=k, seed=seed, with_gap=False, full_cache=full_cache)
            done += 1
            write_rows(out / "k_sweep.csv", rows)
            if progress is not None:
                progress(done, total, f"k={k} seed={seed}")
    return rows


def compare_step(out: Path, fleet: Fleet, game: ParticipationGame, *, k: int, rounds: int, seeds: list[int],
                 train_config: Path, train_seed: int = 0, backend: str = "ray",
                 progress: Progress | None = None) -> dict[str, Any]:
    """Train at k on the identified game, then the learned strategy and FedAvg on the same seeds in Flower."""
    from altmarl_ros.federated.experiment import train_on
    from altmarl_ros.marl.artifacts import save_policies

    trained = train_on(game, k, train_seed, train_config, out / "games")
    save_policies(out / f"policy_k{k}", trained.pi_g, trained.pi_l, game=trained.game, game_spec=trained.game_spec,
                  config={"k": k, "train_config": str(train_config)}, seed=train_seed, n_agents=game.n_agents,
                  train_seconds=trained.train_seconds)
    plan = [RunSpec(name, s, rounds, k) for s in seeds for name in ("learned", "fedavg")]
    total = len(plan)
    policy = TrainedPolicy(trained.pi_g, trained.pi_l, k, trained.game.fingerprint, trained.game.name)
    logs = run_plan(plan, fleet, policy=policy, game=game.tabular(k), backend=backend,
                    on_run=None if progress is None else (lambda i, s: progress(i + 1, total,
                                                                                f"{s.strategy} seed {s.seed}")))
    learned, fedavg = logs[0::2], logs[1::2]
    result = {"k": k, "n": fleet.n_clients, "rounds": rounds, "seeds": seeds, "backend": backend,
              **compare_runs(learned, fedavg),
              "curves": {"learned": mean_curves(learned), "fedavg": mean_curves(fedavg)},
              "pi_l_upload_probability": trained.pi_l.probs[:, :, 1].round(3).tolist(),
              "pi_g_hold_fraction": float((trained.pi_g.actions == 1).mean()),
              "logs": {"learned": logs_to_json(learned), "fedavg": logs_to_json(fedavg)}}
    save_json(out / "comparison.json", result)
    return result
