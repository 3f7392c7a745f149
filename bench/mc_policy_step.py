"""One policy-improvement step of a saved k-sample dispatcher with its own Monte Carlo action values (issue 15, iii).

The posterior dispatcher (`marl/posterior.py`) decides on the full-information reference's action values Q_ref,
i.e. as if the dispatcher saw the whole population from the next step on. This script tries the dispatcher's own
values instead: the pair's visits (t, s_g, h) on n = 1000 by counts (`--episodes` episodes of horizon 50),
Q^pi(s_g, h, a) from `--rollouts` rollouts per visit and first action a (then pi, to the horizon; the same random
streams for every a), then pi'(s_g, d) = argmax_a sum_visits gamma^t L(d | h) Q(s_g, h, a) on the k-samples
drawn from the visited histograms, and pi' against pi paired on the sweep's final episodes (15 x 50).

    .venv/bin/python bench/mc_policy_step.py bench/results/k_sweep_refine/policies/k35_seed0 --seed 0 \\
        --episodes 800 --rollouts 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl import population_sim as ps
from altmarl_ros.marl.artifacts import load_policies
from altmarl_ros.marl.config import load_train_config
from altmarl_ros.marl.experiments import evaluate_policies
from altmarl_ros.marl.policy import TabularGlobalPolicy
from altmarl_ros.marl.posterior import bayes_actions

ROOT = Path(__file__).resolve().parent.parent
HORIZON = 50


def visits(game, tables, pi, rng, *, n_agents: int, episodes: int) -> tuple[np.ndarray, ps.CountState]:
    """(N,) step t of each visit and the (N,) visited states of `episodes` episodes of the pair."""
    state = ps.reset_counts(game, rng, n_agents=n_agents, batch=episodes)
    t, s_g, h = [], [], []
    for step in range(HORIZON):
        t.append(np.full(episodes, step)), s_g.append(state.s_g), h.append(state.h)
        a_g = ps.count_actions([pi], rng, [None], state.s_g, state.h)
        state, _ = ps.step_counts(game, (rng, rng), tables, state, a_g, ordering="paper")
    return np.concatenate(t), ps.CountState(np.concatenate(s_g), np.concatenate(h))


def action_values(game, tables, pi, t: np.ndarray, start: ps.CountState, *, seed: int, rollouts: int) -> np.ndarray:
    """(N, A_g) Monte Carlo Q^pi of each visit: first action a, then pi until the horizon."""
    Q = np.zeros((t.size, game.n_global_actions))
    for r in range(rollouts):
        for a0 in range(game.n_global_actions):
            rng = np.random.default_rng([seed, 7, r])  # the same streams for every first action
            state, ret, discount = start, np.zeros(t.size), np.ones(t.size)
            for j in range(HORIZON - int(t.min())):
                a_g = np.full(t.size, a0) if j == 0 else ps.count_actions([pi], rng, [None], state.s_g, state.h)
                state, reward = ps.step_counts(game, (rng, rng), tables, state, a_g, ordering="paper")
                ret += np.where(t + j < HORIZON, discount * reward, 0.0)
                discount *= game.gamma
            Q[:, a0] += ret / rollouts
    return Q


def project(game, pi, t, start: ps.CountState, Q, *, seed: int) -> TabularGlobalPolicy:
    """pi with every entry drawn from a visited histogram set to argmax_a sum_visits gamma^t L(d | h) Q."""
    k, S_l = pi.k, game.n_local_states
    all_d, table, rng = cv.enumerate_counts(k, S_l), pi.actions.copy(), np.random.default_rng([seed, 5])
    for g in range(game.n_global_states):
        here = start.s_g == g
        h, q, log_w = start.h[here], Q[here], np.log(game.gamma ** t[here])
        d = ps.sample_counts(rng.random((S_l - 1, h.shape[0] * 8)), np.repeat(h, 8, axis=0), k)
        entries = np.unique(cv.rank(d, k))
        table[g, entries] = bayes_actions(all_d[entries], h, log_w, q, chunk=256)
    return TabularGlobalPolicy(table, k, S_l, game.n_global_actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pair", help="a saved pair's stem (STEM.npz / STEM.json)")
    parser.add_argument("--seed", type=int, default=0, help="the pair's training seed (its final episodes)")
    parser.add_argument("--episodes", type=int, default=800)
    parser.add_argument("--rollouts", type=int, default=2)
    args = parser.parse_args()
    cfg = load_train_config(ROOT / "config" / "train_warehouse.yaml")
    art = load_policies(args.pair)
    game, pi, pi_l = art.game, art.pi_g, art.pi_l
    tables = ps.count_tables(game, [pi_l])
    t, start = visits(game, tables, pi, np.random.default_rng([args.seed, 99]), n_agents=cfg.n_agents,
                      episodes=args.episodes)
    Q = action_values(game, tables, pi, t, start, seed=args.seed, rollouts=args.rollouts)
    new = project(game, pi, t, start, Q, seed=args.seed)
    before = evaluate_policies(cfg, game, pi, pi_l, seed=args.seed)
    after = evaluate_policies(cfg, game, new, pi_l, seed=args.seed)
    d = after.returns - before.returns
    print(f"{t.size} visits, {int((new.actions != pi.actions).sum())} entries changed; final episodes: "
          f"{before.reward_mean:.3f} -> {after.reward_mean:.3f}, paired {d.mean():+.3f} +- "
          f"{d.std(ddof=1) / np.sqrt(d.size):.3f}")


if __name__ == "__main__":
    main()
