"""The default trainer with and without the posterior start, paired per (seed, k) (issue 15, bench/README 11.5).

For each SEED:K cell: train the four-start trainer (config/train_warehouse.yaml without `posterior`) and the
default (with it), evaluate both and the seed's full-information reference on the same final episodes (15 x 50,
n = 1000), and print one JSON line: each pair's chosen start, reward, ratio to full information, and the paired
difference (posterior - four starts) with its stderr.

    .venv/bin/python bench/posterior_paired.py 0:5 0:10 0:20 1:35 0:50 &
    .venv/bin/python bench/posterior_paired.py 1:5 1:10 1:20 2:35
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from altmarl_ros.marl.config import load_train_config
from altmarl_ros.marl.experiments import evaluate_policies, ratio_estimate, reference_pair, train_policies
from altmarl_ros.marl.sim import Estimate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cells", nargs="+", help="SEED:K")
    ap.add_argument("--config", default=str(ROOT / "config/train_warehouse.yaml"))
    args = ap.parse_args()
    default = load_train_config(args.config)
    four = replace(default, loop=replace(default.loop, starts=tuple(s for s in default.loop.starts
                                                                     if s != "posterior")))
    for cell in args.cells:
        seed, k = map(int, cell.split(":"))
        ref = reference_pair(default, seed=seed)
        full = evaluate_policies(default, ref.game, ref.pi_g, ref.pi_l, seed=seed)
        row: dict = {"seed": seed, "k": k, "full_information": full.reward_mean}
        returns = {}
        for name, config in (("four_starts", four), ("with_posterior", default)):
            t0 = time.perf_counter()
            trained = train_policies(config, k=k, seed=seed)
            seconds = time.perf_counter() - t0
            final = evaluate_policies(config, trained.game, trained.pi_g, trained.pi_l, seed=seed)
            returns[name] = final.returns
            ratio = ratio_estimate(final.returns, full.returns)
            row[name] = {"chosen": trained.selection.best.start, "reward": final.reward_mean, "ratio": ratio.mean,
                         "ratio_stderr": ratio.stderr, "train_s": seconds}
        diff = Estimate.of(returns["with_posterior"] - returns["four_starts"])
        row["difference"] = {"mean": diff.mean, "stderr": diff.stderr}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
