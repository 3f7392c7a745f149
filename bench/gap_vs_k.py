"""The global best-response gap vs k for a FIXED local policy: the 1/sqrt(k) mechanism in isolation.

The Nash gap of the alternating loop's output mixes two things: how well G-LEARN with k samples
best-responds (the paper's O(1/sqrt(k)) claim) and which equilibrium the alternation happens to reach
(which changes with k). This benchmark removes the second: pi_l is fixed, and for each k

    gap_g(k) = V(oracle(pi_l), pi_l) - V(G-LEARN_k(pi_l), pi_l)

is estimated on the n = 1000 system with paired episodes; the oracle is G-LEARN (deterministic
mean-field transition) at k_oracle = 100 observing the whole population. G-LEARN is the paper's
version (m = 30 samples per entry). Two fixed local policies: uniform (the loop's starting point) and
"move toward the active zone" (altmarl_ros.ros.heuristics).

    .venv/bin/python bench/gap_vs_k.py --out bench/results/gap_vs_k.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from altmarl_ros.marl.experiments import SweepRow, write_rows
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.learners.g_learn import g_learn
from altmarl_ros.marl.metrics import global_oracle, value_difference
from altmarl_ros.marl.plotting import fit_loglog_slope, plot_rows, summarize
from altmarl_ros.marl.policy import TabularLocalPolicy
from altmarl_ros.progress import Progress
from altmarl_ros.ros.heuristics import follow_local_policy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", default="1,2,5,10,20,30,40,50")
    parser.add_argument("--seeds", type=int, default=3, help="G-LEARN sampling seeds per k")
    parser.add_argument("--n-agents", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--k-oracle", type=int, default=100)
    parser.add_argument("--out", default="bench/results/gap_vs_k.csv")
    args = parser.parse_args()
    game = make_game("warehouse")
    ks = [int(k) for k in args.k.split(",")]
    local_policies = {"uniform": TabularLocalPolicy.uniform(5, 5, 3), "follow": follow_local_policy(game)}
    rows: list[SweepRow] = []
    with Progress(len(local_policies) * len(ks) * args.seeds, "G-LEARN runs") as progress:
        for name, pi_l in local_policies.items():
            oracle = global_oracle(game, pi_l, k_oracle=args.k_oracle)
            for k in ks:
                for seed in range(args.seeds):
                    pi_g = g_learn(game, pi_l, k=k, rng=np.random.default_rng(seed), transition="sampled", m=30).pi_g
                    gap, value = value_difference(game, (oracle, pi_l), (pi_g, pi_l), seed=1000 + seed,
                                                  n_agents=args.n_agents, horizon=50, n_episodes=args.episodes)
                    rows += [SweepRow(k, seed, f"gap_g_{name}", gap.mean, gap.stderr),
                             SweepRow(k, seed, f"value_{name}", value.mean, value.stderr)]
                    write_rows(args.out, rows)
                    progress.advance(1, f"{name} k={k} gap {gap.mean:.2f}")
    print("| pi_l | " + " | ".join(f"k={k}" for k in ks) + " | log-log slope [95 % CI] |")
    print("|---|" + "---|" * (len(ks) + 1))
    for name in local_policies:
        s = summarize(rows, f"gap_g_{name}")
        fit = fit_loglog_slope(s.k, s.mean)
        cells = " | ".join(f"{m:.2f} +- {e:.2f}" for m, e in zip(s.mean, s.stderr, strict=True))
        print(f"| {name} | {cells} | {fit.slope:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}] |")
        nash_rows = [r._replace(metric="nash_gap") for r in rows if r.metric == f"gap_g_{name}"]
        plot_rows(nash_rows, Path(args.out).with_suffix("") / name, title=f"global BR gap vs k, pi_l = {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
