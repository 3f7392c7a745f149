"""How far can a pooled dispatcher go? (issue 15, target iv: 99 % of full information at k = 5, 99.5 % at k = 10)

For each training seed: the full-information reference (config/train_warehouse.yaml, dispatcher over histograms
rounded to K = 50, its robots), evaluated on the sweep's own final episodes (15 x 50, n = 1000; common random
numbers, so every row is paired with the reference: ratio +- delta-method stderr) with its dispatcher fed:

  moment           the moment filter of `marl.pooled` (what the controller runs), plug-in: table[s_g, round(mu)]
  particle         a particle filter over the population distribution (P particles; predict mu P~_l(s_g) plus
                   the n robots' multinomial noise as a Gaussian, weight by the k-sample's multinomial
                   likelihood, systematic resampling): an estimate of the exact posterior mean, plug-in
  particle_bayes   the same particles, the Bayes action argmax_a E[Q_ref(s_g, h, a)] over them
                   (Q_ref = `posterior.reference_q`, what the reference's table is greedy for)
  genie_t0         a bound, not a dispatcher: only the first decision is made from the k-sample (Bayes action
                   on the exact t = 0 posterior Dirichlet(c + counts)); from t = 1 on it reads the whole
                   population. No k-sample dispatcher, pooled or not, can beat this one (up to the reference's
                   own suboptimality), so a ratio below the target here would show the target out of reach.

Each observer draws its own randomness from its own generator, so every row reads the same k-samples.

    .venv/bin/python bench/pooled_headroom.py --ks 5 10 --seeds 0 1 2 --particles 500 \\
        --out bench/results/pooled_headroom.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pooled_filter import returns_of  # bench/ (this script's folder)

from altmarl_ros.marl import counts as cv
from altmarl_ros.marl.config import load_train_config
from altmarl_ros.marl.experiments import ratio_estimate, train_policies
from altmarl_ros.marl.game import marginal_local
from altmarl_ros.marl.pooled import PooledObserver, PopulationFilter, discretise
from altmarl_ros.marl.posterior import reference_q

ROOT = Path(__file__).resolve().parents[1]


def _k_sample(rng, s_l, k, S):
    idx = cv.subsample(rng, s_l.shape[1], k, s_l.shape[0])
    return cv.counts_from_states(np.take_along_axis(s_l, idx, axis=1), S)


class Particles:
    """Observer: a particle filter over mu; entry = rank of the rounded posterior mean (plug-in) or, with
    `Q` (S_g, D_K, A_g), the Bayes action itself (then the table is the identity over actions)."""

    def __init__(self, P_tilde, n, k, K, concentration, P, rng, Q=None):
        self.P_tilde, self.n, self.k, self.K, self.c = P_tilde, n, k, K, concentration
        self.P, self.rng, self.Q = P, rng, Q
        S = P_tilde.shape[0]
        self.n_observations = Q.shape[2] if Q is not None else cv.n_count_vectors(K, S)

    def start(self, B):
        S = self.P_tilde.shape[0]
        return self.rng.dirichlet(np.full(S, self.c), size=(B, self.P)), np.full(B, -1)

    def _predict(self, mu, s_g):
        S = mu.shape[-1]
        Pm = np.transpose(self.P_tilde, (1, 0, 2))[s_g]  # (B, S, S')
        mean = np.einsum("bps,bst->bpt", mu, Pm)
        noise = np.zeros_like(mean)
        for s in range(S):  # the robots in s move as Multinomial(n mu_s, p_s): Gaussian with its covariance / n
            p = Pm[:, s, :]
            cov = p[:, :, None] * np.eye(S)[None] - p[:, :, None] * p[:, None, :]
            L = np.linalg.cholesky(cov + 1e-12 * np.eye(S))
            e = self.rng.standard_normal(mean.shape)
            noise += np.sqrt(mu[:, :, s] / self.n)[:, :, None] * np.einsum("btu,bpu->bpt", L, e)
        new = np.clip(mean + noise, 0.0, None)
        return new / new.sum(-1, keepdims=True)

    def observe(self, rng, memory, s_g, s_l):
        mu, prev = memory
        S = mu.shape[-1]
        counts = _k_sample(rng, s_l, self.k, S)
        moved = prev >= 0
        if moved.any():
            mu = np.where(moved[:, None, None], self._predict(mu, np.where(moved, prev, 0)), mu)
        log_w = (counts[:, None, :] * np.log(np.maximum(mu, 1e-300))).sum(-1)
        w = np.exp(log_w - log_w.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        if self.Q is None:
            entry = discretise(np.einsum("bp,bps->bs", w, mu), self.K)
        else:
            ranks = cv.rank(cv.round_to_counts((mu * self.K).reshape(-1, S), self.K), self.K).reshape(mu.shape[:2])
            entry = np.einsum("bp,bpa->ba", w, self.Q[np.asarray(s_g)[:, None], ranks]).argmax(-1)
        u = (self.rng.random((mu.shape[0], 1)) + np.arange(self.P)) / self.P  # systematic resampling
        pick = np.stack([np.searchsorted(np.cumsum(wb), ub).clip(0, self.P - 1) for wb, ub in zip(w, u, strict=True)])
        return entry, (np.take_along_axis(mu, pick[:, :, None], axis=1), np.asarray(s_g))


class GenieT0:
    """The bound of the module docstring: Bayes action from the k-sample at t = 0, the histogram after."""

    def __init__(self, k, K, table, Q, concentration, rng):
        self.k, self.K, self.table, self.Q, self.c, self.rng = k, K, table, Q, concentration, rng
        self.n_observations = Q.shape[2]

    def start(self, B):
        return 0

    def observe(self, rng, t, s_g, s_l):
        S, K = self.table.shape[0], self.K
        counts = _k_sample(rng, s_l, self.k, S)
        if t == 0:
            mu = np.stack([self.rng.dirichlet(self.c + c, size=400) for c in counts])  # the exact t = 0 posterior
            ranks = cv.rank(cv.round_to_counts((mu * K).reshape(-1, S), K), K).reshape(mu.shape[:2])
            return self.Q[np.asarray(s_g)[:, None], ranks].mean(1).argmax(-1), 1
        hist = cv.counts_from_states(s_l, S)
        return self.table[np.asarray(s_g), cv.rank(cv.round_to_counts(hist * (K / s_l.shape[1]), K), K)], t + 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "config/train_warehouse.yaml"))
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--particles", type=int, default=500)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    config = load_train_config(args.config)
    n = config.n_agents
    rows = []
    for seed in args.seeds:
        ref = train_policies(config, k=1, seed=seed, full_information=True)
        game, pi_l, table, K = ref.game, ref.pi_l, ref.pi_g.pi_g.actions, ref.pi_g.k
        A, c = game.n_global_actions, game.init_l_concentration
        Q = reference_q(game, pi_l, K=K, tol=config.g_learn.tol, max_iter=config.g_learn.max_iter)  # (S_g, D, A)
        P_tilde = marginal_local(game, pi_l.probs).P_tilde
        identity = np.tile(np.arange(A), (game.n_global_states, 1))

        everyone = PooledObserver(PopulationFilter.for_game(game, pi_l, n_agents=n, k=n), K)  # the histogram
        full = returns_of(config, game, table, everyone, pi_l, seed)
        for k in args.ks:
            rng = np.random.default_rng([seed, k])
            variants = {
                "moment": (PooledObserver(PopulationFilter.for_game(game, pi_l, n_agents=n, k=k), K), table),
                "particle": (Particles(P_tilde, n, k, K, c, args.particles, rng), table),
                "particle_bayes": (Particles(P_tilde, n, k, K, c, args.particles, rng, Q), identity),
                "genie_t0": (GenieT0(k, K, table, Q, c, rng), identity),
            }
            for name, (observer, tab) in variants.items():
                t0 = time.perf_counter()
                ratio = ratio_estimate(returns_of(config, game, tab, observer, pi_l, seed), full)
                row = {"seed": seed, "k": k, "observer": name, "ratio": ratio.mean, "ratio_stderr": ratio.stderr,
                       "full_information": float(full.mean()), "seconds": time.perf_counter() - t0}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
