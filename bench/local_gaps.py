"""The local Nash gaps of every pair saved by a sweep, and their log-log slopes in k per regime.

    nice -n 19 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/local_gaps.py \
        bench/results/k_sweep_refine/policies --out bench/results/k_sweep_refine/gaps_local.jsonl [--ks 1,2 --seeds 0]
    .venv/bin/python bench/local_gaps.py bench/results/k_sweep_refine/policies --slopes \
        --out bench/results/k_sweep_refine/gaps_local.jsonl

Per pair k<k>_seed<s>.npz: the local part of `gaps.estimate_gaps` as `experiments.estimate_gaps_for` calls it
(gap seed `_int_seed(s, 3)`, n = config.n_agents, config.evaluation.horizon, config.nash_gap.episodes final
paired episodes, config.ordering, estimate_gaps' default search budgets): the baseline on `streams(seed).final`,
then gap_l_unilateral (and its _own part) and gap_l_shared on that baseline; gap_g_* are not run. One JSON line
per pair, appended whole (resumes: pairs already in --out are skipped). `--slopes`: per k the mean +- stderr
over the seeds, the regimes (as bench/gap_full_slopes.py: `reports.policy_identity` of every seed's pair joined)
and `reports.fit_slope_by_regime`, over all k and per regime.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path

import numpy as np
from gap_full_slopes import _pairs, _rows  # bench/ is on sys.path when this script runs

from altmarl_ros.marl.artifacts import load_policies
from altmarl_ros.marl.config import config_from_dict
from altmarl_ros.marl.experiments import _int_seed
from altmarl_ros.marl.gaps import estimate_gaps, gap_l_shared, gap_l_unilateral, rollouts, streams
from altmarl_ros.marl.reports import fit_slope_by_regime, policy_identity

GAPS = ("gap_l_unilateral", "gap_l_unilateral_own", "gap_l_shared")
DEFAULTS = {name: p.default for name, p in inspect.signature(estimate_gaps).parameters.items()
            if name in ("search_agents", "search_episodes", "unilateral_search_episodes", "shared_passes")}


def measure(policy_dir: Path, out: Path, ks: set[int] | None, seeds: set[int] | None) -> None:
    done = {(r["k"], r["seed"]) for r in _rows(out)}
    for k, seed, path in _pairs(policy_dir, seeds):
        if (k, seed) in done or (ks is not None and k not in ks):
            continue
        a = load_policies(path)
        config = config_from_dict(a.meta["config"])
        gap_seed = _int_seed(seed, 3)
        common = {"seed": gap_seed, "n_agents": config.n_agents, "horizon": config.evaluation.horizon,
                  "n_episodes": config.nash_gap.episodes, "ordering": config.ordering}
        t0 = time.perf_counter()
        base = rollouts(a.game, a.pi_g, a.pi_l, streams(gap_seed).final,
                        **{key: v for key, v in common.items() if key != "seed"})  # type: ignore[arg-type]
        t1 = time.perf_counter()
        uni = gap_l_unilateral(a.game, a.pi_g, a.pi_l, search_episodes=DEFAULTS["unilateral_search_episodes"],
                               search_agents=DEFAULTS["search_agents"], baseline=base, **common)  # type: ignore[arg-type]
        t2 = time.perf_counter()
        shared = gap_l_shared(a.game, a.pi_g, a.pi_l, search_episodes=DEFAULTS["search_episodes"],
                              max_passes=DEFAULTS["shared_passes"], search_agents=DEFAULTS["search_agents"],
                              baseline=base, **common)  # type: ignore[arg-type]
        t3 = time.perf_counter()
        row: dict = {"k": k, "seed": seed}
        for name, est in zip(GAPS, (uni.gain, uni.own_gain, shared.gain), strict=True):
            row[name], row[f"{name}_stderr"] = est.mean, est.stderr
        row |= {"gap_l_unilateral_source": uni.source, "gap_l_shared_candidates": shared.candidates_tried,
                "gap_l_shared_found": shared.source != "pi_l", "gap_l_shared_source": shared.source,
                "identity": policy_identity(a.pi_g.actions, a.pi_l.probs),
                "seconds": {"baseline": t1 - t0, "gap_l_unilateral": t2 - t1, "gap_l_shared": t3 - t2,
                            "total": t3 - t0}}
        with out.open("a") as fh:  # one whole line per pair: a stopped run loses at most the pair in progress
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def slopes(out: Path) -> None:
    rows = _rows(out)
    ks = sorted({r["k"] for r in rows})
    cells = {k: sorted((r for r in rows if r["k"] == k), key=lambda r: r["seed"]) for k in ks}
    ids = ["+".join(r["identity"] for r in cells[k]) for k in ks]
    print("| k | n | " + " | ".join(GAPS) + " | shared found |\n|---|---|" + "---|" * (len(GAPS) + 1))
    means: dict[str, list[float]] = {g: [] for g in GAPS}
    for k in ks:
        line = f"| {k} | {len(cells[k])} |"
        for g in GAPS:
            x = np.array([r[g] for r in cells[k]])
            se = x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")
            means[g].append(float(x.mean()))
            line += f" {x.mean():.3f} +- {se:.3f} |"
        print(line + f" {sum(r['gap_l_shared_found'] for r in cells[k])}/{len(cells[k])} |")
    print("\nregimes: " + ", ".join(f"k = {k}: {i[:8]}" for k, i in zip(ks, ids, strict=True)))
    for g in GAPS:
        print(f"{g}: all k: {fit_slope_by_regime(ks, means[g], [str(k) for k in ks]).text()}")
        print(f"{g}: by regime: {fit_slope_by_regime(ks, means[g], ids).text()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("policies", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--ks", default=None, help="only these k, e.g. 1,2 (default: all)")
    ap.add_argument("--seeds", default=None, help="only these training seeds, e.g. 0,1 (default: all)")
    ap.add_argument("--slopes", action="store_true", help="print the table and slopes of --out, measure nothing")
    args = ap.parse_args()
    if args.slopes:
        slopes(args.out)
        return

    def parse(s: str | None) -> set[int] | None:
        return None if s is None else {int(x) for x in s.split(",")}

    measure(args.policies, args.out, parse(args.ks), parse(args.seeds))


if __name__ == "__main__":
    main()
