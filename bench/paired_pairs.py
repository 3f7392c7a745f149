"""Two directories of saved sweep pairs compared pair by pair on the sweep's final episodes (paired).

For each k<k>_seed<s> present in both: `experiments.evaluate_policies` of each pair with the same seed (common
random numbers: config.evaluation.seeds x episodes on n robots), the difference of the discounted returns, mean
+- stderr, and whether the two pairs are the same tables. One JSON line per pair; a Markdown table printed.

    .venv/bin/python bench/paired_pairs.py bench/results/k_sweep_oracle/policies \
        bench/results/k_sweep_refine/policies --ks 1 2 5 --seeds 0 1 2 3 4 \
        --out bench/results/k_sweep_oracle/paired.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from altmarl_ros.marl.artifacts import load_policies
from altmarl_ros.marl.config import load_train_config
from altmarl_ros.marl.experiments import evaluate_policies

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("new", help="directory of the pairs compared")
    ap.add_argument("base", help="directory of the pairs they are compared with")
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 5])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--config", default=str(ROOT / "config" / "train_warehouse.yaml"), help="evaluation settings")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    config = load_train_config(args.config)
    rows = []
    for k in args.ks:
        for seed in args.seeds:
            name = f"k{k}_seed{seed}"
            if not (Path(args.new) / f"{name}.npz").exists() or not (Path(args.base) / f"{name}.npz").exists():
                continue
            new, base = load_policies(Path(args.new) / name), load_policies(Path(args.base) / name)
            same = bool(np.array_equal(new.pi_g.actions, base.pi_g.actions)
                        and np.array_equal(new.pi_l.probs, base.pi_l.probs))
            a = evaluate_policies(config, new.game, new.pi_g, new.pi_l, seed=seed)
            b = evaluate_policies(config, base.game, base.pi_g, base.pi_l, seed=seed)
            d = a.returns - b.returns
            rows.append({"k": k, "seed": seed, "same": same, "new": a.reward_mean, "base": b.reward_mean,
                         "diff": float(d.mean()), "stderr": float(d.std(ddof=1) / np.sqrt(d.size)),
                         "new_start": new.meta.get("selection", {}).get("chosen", ""),
                         "base_start": base.meta.get("selection", {}).get("chosen", "")})
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    print("| k | seed | same pair | chosen start: new / base | new | base | new - base (paired) |\n"
          "|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['k']} | {r['seed']} | {'yes' if r['same'] else 'no'} | {r['new_start']} / {r['base_start']} "
              f"| {r['new']:.2f} | {r['base']:.2f} "
              f"| {r['diff']:+.2f} +- {r['stderr']:.2f} |")


if __name__ == "__main__":
    main()
