"""Samples pooled over time (issue 15 item 2): a dispatcher table fed a filtered estimate of the population.

For each training seed: train the full-information reference (config/train_warehouse.yaml), then evaluate
on the sweep's own final episodes (15 seeds x 50, n = 1000, horizon 50; common random numbers, so every
row is paired with the reference) its dispatcher table (rounded histograms of K = 50) fed
  - the whole population (the reference itself),
  - one fresh k-sample (rounded to K),
  - an EMA of the k-samples with weight 0.15 on the newest (the issue's baseline),
  - the known-dynamics moment filter of `marl.pooled` (PopulationFilter), with its effective sample size.
Prints the mean return, the ratio to full information (delta-method stderr) and the steady-state ess.

    .venv/bin/python bench/pooled_filter.py --ks 5 10 20 --seeds 0 --out bench/results/pooled_filter.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.config import load_train_config
from altmarl_ros.marl.experiments import _streams, ratio_estimate, train_policies
from altmarl_ros.marl.observe import table_rollouts
from altmarl_ros.marl.pooled import FilterState, PooledObserver, PopulationFilter, discretise

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class EmaObserver:
    """The issue's baseline: an EMA of the k-sample frequencies (weight w on the newest), rounded to K."""

    k: int
    K: int
    n_states: int
    w: float

    @property
    def n_observations(self) -> int:
        return cv.n_count_vectors(self.K, self.n_states)

    def start(self, batch: int) -> FilterState:
        return FilterState(np.zeros((batch, self.n_states)), np.zeros(batch), np.full(batch, -1))

    def observe(self, rng, memory, s_g, s_l):
        idx = cv.subsample(rng, s_l.shape[1], self.k, s_l.shape[0])
        freq = cv.counts_from_states(np.take_along_axis(s_l, idx, axis=1), self.n_states) / self.k
        first = (memory.s_g < 0)[:, None]
        mu = np.where(first, freq, (1 - self.w) * memory.mu + self.w * freq)
        return discretise(mu, self.K), FilterState(mu, memory.ess, np.asarray(s_g))


@dataclass(frozen=True)
class EssProbe:
    """A PooledObserver that records the filter's ess at every step (mean over episodes)."""

    inner: PooledObserver
    log: list

    @property
    def n_observations(self) -> int:
        return self.inner.n_observations

    def start(self, batch):
        return self.inner.start(batch)

    def observe(self, rng, memory, s_g, s_l):
        entry, memory = self.inner.observe(rng, memory, s_g, s_l)
        self.log.append(float(memory.ess.mean()))
        return entry, memory


def returns_of(config, game, table, observer, pi_l, seed):
    ev = config.evaluation
    return np.concatenate([table_rollouts(game, table, observer, pi_l, seq, n_agents=config.n_agents,
                                          horizon=ev.horizon, n_episodes=ev.episodes).returns
                           for seq in _streams(seed, ev.seeds)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "config/train_warehouse.yaml"))
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    config = load_train_config(args.config)
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        ref = train_policies(config, k=1, seed=seed, full_information=True)
        print(f"seed {seed}: reference trained in {time.perf_counter() - t0:.1f} s", flush=True)
        game, pi_l, table = ref.game, ref.pi_l, ref.pi_g.pi_g.actions
        K, S = ref.pi_g.k, game.n_local_states
        everyone = PopulationFilter.for_game(game, pi_l, n_agents=config.n_agents, k=config.n_agents)
        full = returns_of(config, game, table, PooledObserver(everyone, K), pi_l, seed)  # k = n: the histogram
        for k in args.ks:
            filt = PopulationFilter.for_game(game, pi_l, n_agents=config.n_agents, k=k)
            log: list = []
            variants = {
                "fresh_sample": EmaObserver(k, K, S, 1.0),
                "ema_0.15": EmaObserver(k, K, S, 0.15),
                "moment_filter": EssProbe(PooledObserver(filt, K), log),
            }
            for name, observer in variants.items():
                ret = returns_of(config, game, table, observer, pi_l, seed)
                ratio = ratio_estimate(ret, full)
                ess = float(np.median(log[len(log) // 2:])) if name == "moment_filter" and log else float("nan")
                row = {"seed": seed, "k": k, "observer": name, "reward": float(ret.mean()),
                       "full_information": float(full.mean()), "ratio": ratio.mean, "ratio_stderr": ratio.stderr,
                       "ess_median_late_steps": ess}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
