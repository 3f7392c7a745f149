"""Wall time of `gaps.estimate_gaps` on the warehouse at n = 1000, horizon 50, 400 final episodes.

For each k: pi_g = G-LEARN (deterministic mean-field transition, a cheap stand-in for a trained
dispatcher) against uniform robots, pi_l = L-LEARN's reply to it; the full-information oracle
(k_oracle = 100) is computed once per pi_l and passed in (as sweeps cache it), its cost printed apart.
Prints min / median / max over --runs calls (seeds 0, 1, ...), the per-part medians, and, measured
side by side before each call, one `sim.evaluate` of pi_g, pi_l on the same n and episodes: the ratio
is the cost of the gaps in units of one final evaluation (robust to the machine's load).

    .venv/bin/python bench/gaps_timing.py --ks 5 35 50 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from altmarl_ros.marl import sim
from altmarl_ros.marl.games import make_game
from altmarl_ros.marl.gaps import estimate_gaps
from altmarl_ros.marl.learners.g_learn import g_learn
from altmarl_ros.marl.learners.l_learn import l_learn
from altmarl_ros.marl.metrics import global_oracle
from altmarl_ros.marl.policy import TabularLocalPolicy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 35, 50])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n-agents", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--k-oracle", type=int, default=100)
    args = parser.parse_args()
    game = make_game("warehouse")
    uniform = TabularLocalPolicy.uniform(game.n_global_states, game.n_local_states, game.n_local_actions)
    for k in args.ks:
        pi_g = g_learn(game, uniform, k=k, transition="deterministic").pi_g
        pi_l = l_learn(game, pi_g, uniform).pi_l
        t0 = time.perf_counter()
        oracle = global_oracle(game, pi_l, k_oracle=args.k_oracle)
        print(f"k={k}: full-information oracle (k_oracle={args.k_oracle}, computed once per pi_l): "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        results, ratios = [], []
        for seed in range(args.runs):
            t0 = time.perf_counter()
            sim.evaluate(game, pi_g, pi_l, np.random.default_rng(seed), n_agents=args.n_agents, horizon=50,
                         n_episodes=args.episodes)
            one_eval = time.perf_counter() - t0
            results.append(estimate_gaps(game, pi_g, pi_l, seed=seed, n_agents=args.n_agents, horizon=50,
                                         n_episodes=args.episodes, k_oracle=args.k_oracle, oracle_g=oracle))
            ratios.append(results[-1].seconds["total"] / one_eval)
        totals = [r.seconds["total"] for r in results]
        print(f"k={k}: estimate_gaps wall time min / median / max over {args.runs} runs: "
              f"{min(totals):.1f} / {statistics.median(totals):.1f} / {max(totals):.1f} s; in units of one "
              f"sim.evaluate measured just before: {min(ratios):.1f} / {statistics.median(ratios):.1f} / "
              f"{max(ratios):.1f}", flush=True)
        parts = {p: statistics.median(r.seconds[p] for r in results) for p in results[0].seconds if p != "total"}
        print("   median per part: " + ", ".join(f"{p} {s:.1f} s" for p, s in parts.items()))
        for r in results:
            print("   " + ", ".join(f"{m} {e.mean:.3f} +- {e.stderr:.3f}" for m, e in r.metrics().items())
                  + f" | found: shared={r.shared.source}, restricted={r.restricted.source}, full={r.full.source}")


if __name__ == "__main__":
    main()
