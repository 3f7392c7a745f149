"""Is the full-information reference at its own best response? (issue 15, targets iii-iv: the ratios' denominator)

For a training seed: the reference pair (config/train_warehouse.yaml, full information), its robots' L-step
(L-LEARN against the reference dispatcher), and the pooled pair (the reference's table read on the moment
filter, K = 20 and 50) with and without the L-step of its mean-field view (`pooled_training.mean_field_view`).
Every return is on the sweep's final episodes (15 x 50, n = 1000, agent by agent), so all rows are paired.

    .venv/bin/python bench/reference_lstep.py --seed 0 --ks 5 10
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from altmarl_ros.marl.config import load_train_config
from altmarl_ros.marl.experiments import _streams, ratio_estimate, train_policies
from altmarl_ros.marl.observe import table_rollouts
from altmarl_ros.marl.policy import FullInformationPolicy, TabularGlobalPolicy
from altmarl_ros.marl.pooled import PooledObserver, PopulationFilter, lift_table, pooled_policy
from altmarl_ros.marl.pooled_training import mean_field_view
from altmarl_ros.marl.run_learners import LocalLearner
from altmarl_ros.marl.sim import Estimate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "config/train_warehouse.yaml"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 10])
    args = ap.parse_args()
    config = load_train_config(args.config)
    ev, n, seed = config.evaluation, config.n_agents, args.seed
    ref = train_policies(config, k=1, seed=seed, full_information=True)
    game, pi_l, table, K, S = ref.game, ref.pi_l, ref.pi_g.pi_g.actions, ref.pi_g.k, ref.game.n_local_states
    learn_local = LocalLearner(game, config.l_learn)

    def returns(K_obs: int, tab: np.ndarray, robots, k: int) -> np.ndarray:
        observer = PooledObserver(PopulationFilter.for_game(game, robots, n_agents=n, k=k), K_obs)
        return np.concatenate([table_rollouts(game, tab, observer, robots, seq, n_agents=n, horizon=ev.horizon,
                                              n_episodes=ev.episodes).returns for seq in _streams(seed, ev.seeds)])

    full = returns(K, table, pi_l, n)  # k = n: the filter is the histogram itself
    stepped = learn_local(FullInformationPolicy(TabularGlobalPolicy(table, K, S, game.n_global_actions)), pi_l)
    full_stepped = returns(K, table, stepped, n)
    gain = Estimate.of(full_stepped - full)
    print(json.dumps({"seed": seed, "reference": float(full.mean()), "reference_with_its_l_step": float(
        full_stepped.mean()), "gain": gain.mean, "stderr": gain.stderr}), flush=True)
    for K_obs in (20, 50):
        lifted = lift_table(table, K, K_obs, S)
        robots = learn_local(mean_field_view(pooled_policy(game, pi_l, lifted, k=1, K=K_obs, n_agents=n)), pi_l)
        for k in args.ks:
            a, b = returns(K_obs, lifted, pi_l, k), returns(K_obs, lifted, robots, k)
            d = Estimate.of(b - a)
            print(json.dumps({"seed": seed, "K": K_obs, "k": k, "pooled": float(a.mean()),
                              "pooled_with_l_step": float(b.mean()), "gain": d.mean, "stderr": d.stderr,
                              "ratio": ratio_estimate(a, full).mean,
                              "ratio_both_l_stepped": ratio_estimate(b, full_stepped).mean}), flush=True)


if __name__ == "__main__":
    main()
