"""gap_g_restricted with the restricted-best-response oracle on saved sweep pairs (issue 15 items 1, 3, target ii).

For each saved pair k<k>_seed<s>.npz: the oracle's deviation (no G-LEARN) and its paired gain on the
final episodes of gap seed s (n = 1000, horizon 50, `--episodes` episodes, `gaps.streams(s).final`);
then the hand-written family the oracle does not search (`restricted_gap.heuristic_dispatchers`:
sampled-mode thresholds, sticky to s_g or to zone 0): its best member chosen on the search episodes
(`gaps.streams(s).search`, 64 episodes), and that member's paired gain over pi_g and over the oracle's
deviation on the final episodes. One JSON line per pair.

    .venv/bin/python bench/restricted_gap.py bench/results/k_sweep/policies --ks 5 10 --seeds 0 1 \
        --out bench/results/restricted_gap.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from altmarl_ros.marl.artifacts import load_policies
from altmarl_ros.marl.gaps import streams
from altmarl_ros.marl.observe import KSampleObserver, table_rollouts
from altmarl_ros.marl.restricted_gap import gap_g_restricted_oracle, heuristic_dispatchers, paired_table_gain


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("policies")
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 5, 10, 20, 35, 50])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--episodes", type=int, default=400)
    ap.add_argument("--n-agents", type=int, default=1000)
    ap.add_argument("--horizon", type=int, default=50)
    ap.add_argument("--grid", type=int, default=None,
                    help="the oracle's grid resolution K (default: restricted.default_grid(k))")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    for k in args.ks:
        for seed in args.seeds:
            art = load_policies(Path(args.policies) / f"k{k}_seed{seed}")
            game, pi_g, pi_l = art.game, art.pi_g, art.pi_l
            st = streams(seed)
            t0 = time.perf_counter()
            gap = gap_g_restricted_oracle(game, pi_g, pi_l, seed=st.final, n_agents=args.n_agents,
                                          horizon=args.horizon, n_episodes=args.episodes,
                                          rng=np.random.default_rng(seed), K=args.grid)
            oracle_s = time.perf_counter() - t0
            heur = heuristic_dispatchers(game, k)
            obs = KSampleObserver(k, game.n_local_states)
            kw = {"n_agents": args.n_agents, "horizon": args.horizon, "n_episodes": 64}
            scores = {name: table_rollouts(game, t, obs, pi_l, st.search, **kw).returns.mean()
                      for name, t in heur.items()}
            best = max(scores, key=lambda n: scores[n])
            final = {"k": k, "n_agents": args.n_agents, "horizon": args.horizon, "n_episodes": args.episodes}
            h_vs_pi = paired_table_gain(game, heur[best], pi_g.actions, pi_l, st.final, **final)
            h_vs_oracle = paired_table_gain(game, heur[best], gap.policy.actions, pi_l, st.final, **final)
            row = {"k": k, "seed": seed, "grid": args.grid, "gap_g_restricted": gap.report.to_dict(),
                   "text": gap.report.text(),
                   "model_gain": gap.model_gain, "oracle_seconds": oracle_s, "oracle_evaluations":
                   gap.oracle.evaluations, "heuristic_best": best, "heuristic_vs_pi_g": h_vs_pi._asdict(),
                   "heuristic_vs_oracle": h_vs_oracle._asdict(), "heuristics_tried": len(heur)}
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
