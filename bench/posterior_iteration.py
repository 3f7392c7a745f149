"""Posterior policy iteration of a saved k-sample dispatcher on the reference's mean-field model (issue 15, iii).

The posterior dispatcher (`marl/posterior.py`) is the Bayes decision on the full-information reference's action
values Q_ref: as if the whole population were seen from the next step on. Here the action values are those of
the k-sample dispatcher pi itself on the same model (count vectors of K = 50, the deterministic mean-field
transition of the reference's G-LEARN): p(a | s_g, h) from `--samples` k-samples d ~ Multinomial(k, h / K) per
grid point h, V^pi by iterative policy evaluation (from max_a Q_ref, to a sup change below 1e-4), Q^pi = r +
gamma E V^pi, and the same Bayes projection onto the k-sample (`posterior.posterior_table`, the reference
pair's occupancy); repeated `--iterations` times, each table paired with pi on the sweep's final episodes.

    .venv/bin/python bench/posterior_iteration.py bench/results/k_sweep_refine/policies/k35_seed0 --seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.artifacts import load_policies
from altmarl_ros.marl.config import load_train_config
from altmarl_ros.marl.experiments import evaluate_policies, reference_pair
from altmarl_ros.marl.game import marginal_local
from altmarl_ros.marl.learners.g_learn import _rewards, count_transitions, deterministic_action_values
from altmarl_ros.marl.policy import TabularGlobalPolicy
from altmarl_ros.marl.posterior import occupancy, posterior_table, reference_q

ROOT = Path(__file__).resolve().parent.parent
K = 50


def sample_ranks(k: int, S_l: int, samples: int, rng: np.random.Generator, chunk: int = 20_000) -> np.ndarray:
    """(D_K, samples) ranks of k-samples d ~ Multinomial(k, h / K) for every grid point h of K."""
    grid = cv.enumerate_counts(K, S_l)
    ranks = np.empty((grid.shape[0], samples), np.int64)
    for lo in range(0, grid.shape[0], chunk):
        d = rng.multinomial(k, np.repeat(grid[lo:lo + chunk, None, :] / K, samples, axis=1))
        ranks[lo:lo + chunk] = cv.rank(d.reshape(-1, S_l), k).reshape(-1, samples)
    return ranks


def evaluate_on_model(game, pi: TabularGlobalPolicy, ranks, nxt, C, V: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """(S_g, D_K) V^pi on the mean-field model, from V: pi reads a k-sample of the grid point (`ranks`)."""
    A, gP = game.n_global_actions, game.gamma * game.P_g
    probs = [np.stack([(pi.actions[g][ranks] == a).mean(1) for a in range(A)]) for g in range(game.n_global_states)]
    while True:
        new = np.stack([(probs[g] * (C[g] + gP[g] @ V[:, nxt[g]])).sum(0) for g in range(game.n_global_states)])
        change, V = np.abs(new - V).max(), new
        if change < tol:
            return V


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pair", help="a saved pair's stem (STEM.npz / STEM.json) whose robots are the reference's")
    parser.add_argument("--seed", type=int, default=0, help="the pair's training seed (its reference, final episodes)")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=2)
    args = parser.parse_args()
    cfg = load_train_config(ROOT / "config" / "train_warehouse.yaml")
    art = load_policies(args.pair)
    game, pi, pi_l = art.game, art.pi_g, art.pi_l
    ref = reference_pair(cfg, seed=args.seed)
    if not np.array_equal(ref.pi_l.probs, pi_l.probs):
        raise SystemExit("the pair's robots are not its reference's: the model here is the reference's")
    P_tilde, r_tilde = marginal_local(game, pi_l.probs)
    nxt = np.stack(count_transitions(game, P_tilde, k=K, transition="deterministic"))
    C = _rewards(game, r_tilde, K)
    ranks = sample_ranks(pi.k, game.n_local_states, args.samples, np.random.default_rng([args.seed, 3]))
    Q_ref = ref.q if ref.q is not None else reference_q(game, pi_l, K=K, tol=cfg.g_learn.tol,
                                                        max_iter=cfg.g_learn.max_iter)
    occ = occupancy(game, ref.pi_g, pi_l, k=pi.k, rng=np.random.default_rng([args.seed, 11]), n_agents=cfg.n_agents,
                    horizon=cfg.loop.eval_horizon, episodes=400, samples=8)
    base = evaluate_policies(cfg, game, pi, pi_l, seed=args.seed)
    V, current = Q_ref.max(-1), pi
    for it in range(args.iterations):
        V = evaluate_on_model(game, current, ranks, nxt, C, V)
        Q = deterministic_action_values(game, pi_l, V, k=K)
        current = TabularGlobalPolicy(posterior_table(game, ref.pi_g, Q, occ, k=pi.k), pi.k, game.n_local_states,
                                      game.n_global_actions)
        after = evaluate_policies(cfg, game, current, pi_l, seed=args.seed)
        d = after.returns - base.returns
        print(f"iteration {it + 1}: {int((current.actions != pi.actions).sum())} entries differ from pi; final "
              f"episodes {base.reward_mean:.3f} -> {after.reward_mean:.3f}, paired {d.mean():+.3f} +- "
              f"{d.std(ddof=1) / np.sqrt(d.size):.3f}", flush=True)


if __name__ == "__main__":
    main()
