"""The named gaps of every pair saved by a sweep (`altmarl sweep --save-policies DIR`), as sweep rows.

    .venv/bin/python bench/k_sweep_gaps.py bench/results/k_sweep/policies --out bench/results/k_sweep/gaps.csv \
        [--part 0 --parts 2]

Each artifact `k<k>_seed<seed>.npz` is loaded with the config it was trained with (its metadata), and
`experiments.estimate_gaps_for` gives the rows that `altmarl sweep` would have written for that cell
(gap_l_unilateral, gap_l_unilateral_own, gap_l_shared, gap_g_restricted, gap_g_full,
nash_gap_lower_bound), with the same seeds. `--part i --parts p` takes every p-th artifact from the i-th,
so p processes can share the work; the CSV is rewritten atomically after every artifact, and artifacts
already in it are skipped (resume).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from altmarl_ros.marl.artifacts import load_policies
from altmarl_ros.marl.config import config_from_dict
from altmarl_ros.marl.experiments import estimate_gaps_for, gap_rows, read_rows, write_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policy_dir")
    parser.add_argument("--out", required=True)
    parser.add_argument("--part", type=int, default=0)
    parser.add_argument("--parts", type=int, default=1)
    parser.add_argument("--seeds", default=None, help="only these training seeds, e.g. 0,1 (default: all)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    rows = read_rows(out) if out.exists() else []
    done = {(r.k, r.seed) for r in rows}
    pattern = re.compile(r"k(\d+)_seed(\d+)\.npz$")
    files = sorted(Path(args.policy_dir).glob("k*_seed*.npz"),
                   key=lambda p: tuple(int(x) for x in pattern.search(p.name).groups()))  # type: ignore[union-attr]
    oracle_cache: dict = {}
    wanted = None if args.seeds is None else {int(x) for x in args.seeds.split(",")}
    for path in files[args.part::args.parts]:
        k, seed = (int(x) for x in pattern.search(path.name).groups())  # type: ignore[union-attr]
        if (k, seed) in done or (wanted is not None and seed not in wanted):
            continue
        artifact = load_policies(path)
        config = config_from_dict(artifact.meta["config"])
        t0 = time.perf_counter()
        gaps = estimate_gaps_for(config, artifact.game, artifact.pi_g, artifact.pi_l, seed=seed,
                                 oracle_cache=oracle_cache)
        rows += gap_rows(k, seed, gaps)
        write_rows(out, rows)
        summary = ", ".join(f"{name} {est.mean:.2f} +- {est.stderr:.2f}" for name, est in gaps.metrics().items())
        print(f"k={k} seed={seed} ({time.perf_counter() - t0:.0f} s): {summary}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
