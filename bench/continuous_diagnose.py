"""What a trained continuous pair leaves on the table, half by half (bench/README.md 13.2).

For each artifact, every pair below plays the same episodes (common random numbers: one NumPy seed for all
pairs, n = 500 robots, horizon 50, discounted returns as the protocol's), and the table gives each pair's
mean and its paired difference to the trained pair (+- stderr over episodes):

- trained / trained: the artifact as deployed (greedy networks, `continuous.deploy`);
- trained dispatcher / hand-written robots: "move towards s_g" or "move towards the target nearest s_g" when
  farther than 0.05;
- committing dispatcher (needs memory: the sample's mode at t = 0, then that target for ever) / trained robots;
- sticky dispatchers (memoryless): argmax over targets of hist_j + beta [j = the target nearest s_g].

    .venv/bin/python bench/continuous_diagnose.py runs/bench_continuous/k20.npz [more.npz ...] --episodes 600
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from altmarl_ros.marl.continuous import deploy
from altmarl_ros.marl.continuous.warehouse import ContinuousWarehouse, bin_of

Dispatcher = Callable[[int, np.ndarray, np.ndarray, dict], np.ndarray]  # (t, s_g, hist, memory) -> a_g
Robots = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (s_g (B,), s_l (B, n)) -> a_l


def returns(env: ContinuousWarehouse, k: int, dispatcher: Dispatcher, robots: Robots, episodes: int,
            seed: int, horizon: int = 50) -> np.ndarray:
    """(episodes,) discounted returns; the same seed gives every pair the same resets and noise draws."""
    rng = np.random.default_rng(seed)
    s_g, s_l = deploy.reset(env, rng, episodes)
    total, memory = np.zeros(episodes), {}
    for t in range(horizon):
        hist = deploy.sample_histogram(env, rng, s_l, k)
        out = deploy.step(env, rng, s_g, s_l, dispatcher(t, s_g, hist, memory), robots(s_g, s_l))
        total += env.gamma ** t * out.reward
        s_g, s_l = out.s_g, out.s_l
    return total


def towards(env: ContinuousWarehouse, nearest_target: bool, threshold: float = 0.05) -> Robots:
    def act(s_g: np.ndarray, s_l: np.ndarray) -> np.ndarray:
        goal = env.targets[bin_of(np, env, s_g)] if nearest_target else s_g
        d = goal[:, None] - s_l
        return np.where(d > threshold, 1, np.where(d < -threshold, 2, 0))
    return act


def committing(t: int, s_g: np.ndarray, hist: np.ndarray, memory: dict) -> np.ndarray:
    if t == 0:
        memory["target"] = hist.argmax(axis=1)
    return memory["target"]


def sticky(env: ContinuousWarehouse, beta: float) -> Dispatcher:
    return lambda t, s_g, hist, memory: (hist + beta * np.eye(env.n_bins)[bin_of(np, env, s_g)]).argmax(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policies", nargs="+", help="continuous artifacts (.npz)")
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--betas", type=float, nargs="*", default=[0.2, 0.3, 0.4, 0.6])
    args = parser.parse_args()
    for path in args.policies:
        policy = deploy.load_deployed(path)
        env, k = policy.env, policy.k
        trained_g: Dispatcher = lambda t, s_g, hist, memory, p=policy: p.dispatch(s_g, hist)  # noqa: E731
        trained_l: Robots = lambda s_g, s_l, p=policy: p.local_actions(s_g[:, None], s_l)  # noqa: E731
        pairs = {"trained / trained": (trained_g, trained_l),
                 "trained / robots towards s_g": (trained_g, towards(env, False)),
                 "trained / robots towards the target nearest s_g": (trained_g, towards(env, True)),
                 "committing (memory) / trained": (committing, trained_l),
                 **{f"sticky beta = {b} / trained": (sticky(env, b), trained_l) for b in args.betas}}
        base = None
        print(f"{path} (k = {k}, {args.episodes} episodes, seed {args.seed}):")
        for name, (g, l_) in pairs.items():
            r = returns(env, k, g, l_, args.episodes, args.seed)
            base = r if base is None else base
            d = r - base
            print(f"  {name:50s} {r.mean():7.2f} +- {r.std(ddof=1) / np.sqrt(r.size):.2f}   paired vs trained "
                  f"{d.mean():+6.2f} +- {d.std(ddof=1) / np.sqrt(r.size):.2f}", flush=True)


if __name__ == "__main__":
    main()
