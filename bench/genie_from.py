"""Where a k-sample dispatcher loses against full information, step by step (issue 15, target iii).

For a saved pair (pi_g reading k-samples, pi_l), the full-information best response to the same robots
(`posterior.full_information_response`, K = 50 as the reference) and, for T0 in a list, the dispatcher that
reads its k-sample for t < T0 and the whole population from T0 on ("genie from T0"), on common random numbers
(15 x 50 episodes, n = 1000, horizon 50; the same world and sample draws for every T0). T0 = 0 is the full-
information response, T0 = 50 the pair itself; the difference between consecutive T0 is what the k-sample
decisions of those steps cost, given full information afterwards.

    .venv/bin/python bench/genie_from.py bench/results/k_sweep_refine/policies --k 35 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from altmarl_ros.marl import population_sim as ps
from altmarl_ros.marl.artifacts import load_policies
from altmarl_ros.marl.config import load_train_config
from altmarl_ros.marl.posterior import full_information_response

ROOT = Path(__file__).resolve().parent.parent
T0S = (0, 1, 2, 3, 5, 10, 20, 50)


def genie_returns(game, pi_g, full, pi_l, *, seed: int, n_agents: int, horizon: int = 50, streams: int = 15,
                  episodes: int = 50) -> dict[int, np.ndarray]:
    """T0 -> (streams * episodes,) discounted returns of the dispatcher that switches to `full` at T0."""
    tables = ps.count_tables(game, [pi_l])
    out: dict[int, list[np.ndarray]] = {T0: [] for T0 in T0S}
    for stream in range(streams):
        start = ps.reset_counts(game, np.random.default_rng([seed, stream, 0]), n_agents=n_agents, batch=episodes)
        for T0 in T0S:
            env, obs, local = (np.random.default_rng([seed, stream, i]) for i in (1, 2, 3))
            state, total, discount = start, np.zeros(episodes), 1.0
            for t in range(horizon):
                a_k = ps.count_actions([pi_g], obs, [None], state.s_g, state.h)  # drawn every step: same streams
                a_g = a_k if t < T0 else ps.count_actions([full], obs, [None], state.s_g, state.h)
                state, reward = ps.step_counts(game, (env, local), tables, state, a_g, ordering="paper")
                total += discount * reward
                discount *= game.gamma
            out[T0].append(total)
    return {T0: np.concatenate(v) for T0, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policies", help="directory of saved pairs k<k>_seed<s>.npz/.json")
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    cfg = load_train_config(ROOT / "config" / "train_warehouse.yaml")
    print("| seed | full-information response | " + " | ".join(f"k-sample for t < {T0}" for T0 in T0S[1:]) + " |")
    print("|---" * (len(T0S) + 1) + "|")
    for seed in args.seeds:
        art = load_policies(Path(args.policies) / f"k{args.k}_seed{seed}")
        full, _ = full_information_response(art.game, art.pi_l, K=50, tol=cfg.g_learn.tol,
                                            max_iter=cfg.g_learn.max_iter)
        ret = genie_returns(art.game, art.pi_g, full, art.pi_l, seed=seed, n_agents=cfg.n_agents)
        base = ret[0]
        cells = []
        for T0 in T0S[1:]:
            d = ret[T0] - base
            se = d.std(ddof=1) / np.sqrt(d.size)
            cells.append(f"{ret[T0].mean() / base.mean():.4f} ({d.mean():+.2f} +- {se:.2f})")
        print(f"| {seed} | {base.mean():.2f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
