"""gap_g_full of every pair saved by a sweep, and its log-log slope in k per regime (issue 15, target v).

    .venv/bin/python bench/gap_full_slopes.py bench/results/k_sweep_refine/policies --seeds 0 1 2 \
        --out bench/results/k_sweep_refine/gap_full.jsonl &
    .venv/bin/python bench/gap_full_slopes.py bench/results/k_sweep_refine/policies --seeds 3 4 \
        --out bench/results/k_sweep_refine/gap_full.jsonl
    .venv/bin/python bench/gap_full_slopes.py bench/results/k_sweep_refine/policies --summarize \
        --out bench/results/k_sweep_refine/gap_full.jsonl

Per pair k<k>_seed<s>.npz: `gaps.gap_g_full` as `altmarl sweep` computes it (`experiments.estimate_gaps_for`:
gap seed `_int_seed(s, 3)`, config.nash_gap's 400 final paired episodes on n = 1000, the full-information oracle
at k_oracle = 100 cached by pi_l) but with the oracle as the only candidate (the sweep also offers the
restricted search's winner, a k-sample dispatcher; not run here). An unbiased estimate of the oracle's gain and
an estimate of a LOWER bound of the full-information gap. One JSON line per pair, appended (resumes).
`--summarize`: per k the mean +- stderr over the seeds, the regimes (`reports.policy_identity` of every seed's
pair: k whose five pairs are the same behaviour are one policy) and `reports.fit_slope_by_regime`.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

from altmarl_ros.marl.artifacts import load_policies
from altmarl_ros.marl.config import config_from_dict
from altmarl_ros.marl.experiments import _int_seed
from altmarl_ros.marl.gaps import gap_g_full
from altmarl_ros.marl.metrics import global_oracle
from altmarl_ros.marl.reports import fit_slope_by_regime, policy_identity

PATTERN = re.compile(r"k(\d+)_seed(\d+)\.npz$")


def _pairs(policy_dir: Path, seeds: set[int] | None) -> list[tuple[int, int, Path]]:
    found = [(int(m[1]), int(m[2]), p) for p in policy_dir.glob("k*_seed*.npz") if (m := PATTERN.search(p.name))]
    return sorted((k, s, p) for k, s, p in found if seeds is None or s in seeds)


def measure(policy_dir: Path, out: Path, seeds: set[int] | None) -> None:
    done = {(r["k"], r["seed"]) for r in _rows(out)}
    oracles: dict[bytes, object] = {}
    for k, seed, path in _pairs(policy_dir, seeds):
        if (k, seed) in done:
            continue
        artifact = load_policies(path)
        config = config_from_dict(artifact.meta["config"])
        t0 = time.perf_counter()
        key = artifact.pi_l.probs.tobytes()
        if key not in oracles:
            oracles[key] = global_oracle(artifact.game, artifact.pi_l, k_oracle=config.nash_gap.k_oracle)
        gap = gap_g_full(artifact.game, artifact.pi_g, artifact.pi_l, seed=_int_seed(seed, 3),
                         n_agents=config.n_agents, horizon=config.evaluation.horizon,
                         n_episodes=config.nash_gap.episodes, ordering=config.ordering,
                         k_oracle=config.nash_gap.k_oracle, oracle_g=oracles[key])  # type: ignore[arg-type]
        row = {"k": k, "seed": seed, "gap_g_full": gap.gain.mean, "stderr": gap.gain.stderr, "winner": gap.source,
               "identity": policy_identity(artifact.pi_g.actions, artifact.pi_l.probs),
               "seconds": time.perf_counter() - t0}
        with out.open("a") as fh:  # one whole line per pair: a stopped run loses at most the pair in progress
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []


def summarize(out: Path) -> None:
    rows = _rows(out)
    ks = sorted({r["k"] for r in rows})
    means, ids = [], []
    for k in ks:
        cell = sorted((r for r in rows if r["k"] == k), key=lambda r: r["seed"])
        x = np.array([r["gap_g_full"] for r in cell])
        means.append(float(x.mean()))
        ids.append("+".join(r["identity"] for r in cell))
        stderr = x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")
        print(f"k = {k}: gap_g_full {x.mean():.3f} +- {stderr:.3f} over {x.size} seeds "
              f"(per seed {', '.join(f'{v:.2f}' for v in x)})")
    print("regimes: " + ", ".join(f"k = {k}: {i[:8]}" for k, i in zip(ks, ids, strict=True)))
    print(fit_slope_by_regime(ks, means, ids).text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("policies", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--summarize", action="store_true")
    args = ap.parse_args()
    if args.summarize:
        summarize(args.out)
    else:
        measure(args.policies, args.out, None if args.seeds is None else set(args.seeds))


if __name__ == "__main__":
    main()
