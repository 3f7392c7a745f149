"""The posterior dispatcher: the full-information reference projected onto the k-sample (beyond the paper).

A memoryless dispatcher reads (s_g, d), d the count vector of a fresh k-sample, while the full-information
reference (pi_g^ref over the whole histogram h, robots pi_l^ref) reads (s_g, h). By the performance-difference
lemma a table pi improves on the reference's value by the occupancy-weighted advantage
sum_t gamma^t E[Q_ref(s_g, h, pi(s_g, d)) - V_ref(s_g, h)]; weighting by the reference's own occupancy (the
first-order step) the best table is the Bayes decision on what the sample says about the population:

    pi_post(s_g, d) = argmax_a  E[ Q_ref(s_g, h, a) | s_g, d ],   (s_g, h) ~ the reference's discounted
                                                                  occupancy, d | h ~ MVHG(h, k).

Q_ref is the reference's G-LEARN action value on count vectors of K (`reference_q`: the deterministic
mean-field transition its dispatcher is greedy for). The occupancy is sampled (`occupancy`): the reference pair
runs by counts (`population_sim`, n robots) for `episodes` episodes, and every visited (s_g, h) is a particle of
weight gamma^t. The conditional expectation is then computed per table entry against all the particles of its
s_g (`posterior_table`): sum_h w(h) L(d | h) Q_ref(s_g, h, .) with the multinomial likelihood of d (the argmax
needs no normaliser). Only the entries that `samples` k-samples per step of the same run reached are computed;
the others (rarely visited by construction) read the reference's table at the sample's rounding, the plug-in.
Unlike G-LEARN's k-agent surrogate, it treats d as a noisy sample of n robots. Figures: bench/README.md 11.5.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl import population_sim as ps
from altmarl_ros.marl import sim
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.learners.bellman import THREADS
from altmarl_ros.marl.learners.g_learn import CountTransitions, GLearnResult, deterministic_action_values, g_learn
from altmarl_ros.marl.policy import FullInformationPolicy, TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.pooled import lift_table


def reference_q(game: TabularGame, pi_l: TabularLocalPolicy, *, K: int, tol: float, max_iter: int,
                V: np.ndarray | None = None, transitions: CountTransitions | None = None) -> np.ndarray:
    """(S_g, D_K, A_g) Q(s_g, d, a) of G-LEARN on count vectors of K with the deterministic transition (the
    full-information reference's learner, `run_learners.GlobalLearner`): r_Delta + gamma E_{s_g'} V(s_g', d').
    `V`: that G-LEARN's (S_g, D_K) values if already solved (the reference's training keeps them), else solved;
    `transitions`: that solve's (`GLearnResult.transitions`), reused when given."""
    if V is None:
        solved = full_information_response(game, pi_l, K=K, tol=tol, max_iter=max_iter)[1]
        V, transitions = solved.V, solved.transitions
    elif V.shape != (game.n_global_states, cv.n_count_vectors(K, game.n_local_states)):
        raise InputError(f"V must have shape (S_g, D_K), got {V.shape}")
    return deterministic_action_values(game, pi_l, V, k=K, transitions=transitions)


class Occupancy(NamedTuple):
    """The reference pair's discounted occupancy, per global state g: distinct histograms and their weights."""

    h: list[np.ndarray]  # per g: (N_g, S_l) distinct histograms visited in global state g
    weight: list[np.ndarray]  # per g: (N_g,) sum of gamma^t over the visits
    entries: list[np.ndarray]  # per g: ranks of the k-sample count vectors drawn there (the table's visited entries)


def occupancy(game: TabularGame, reference: FullInformationPolicy, pi_l: TabularLocalPolicy, *, k: int,
              rng: np.random.Generator, n_agents: int, horizon: int, episodes: int, samples: int,
              ordering: sim.Ordering = "paper") -> Occupancy:
    """`episodes` of the reference pair by counts (`population_sim`) on `n_agents` robots, with `samples`
    k-samples of the true histogram drawn per step (which entries of a k-sample table are visited)."""
    S_g, S_l = game.n_global_states, game.n_local_states
    if not 1 <= k <= n_agents:
        raise InputError(f"need 1 <= k <= n_agents, got k={k}, n_agents={n_agents}")
    tables = ps.count_tables(game, [pi_l])
    env_rng, obs_rng, local_rng = rng.spawn(3)
    state = ps.reset_counts(game, env_rng, n_agents=n_agents, batch=episodes)
    visits, weights, drawn = [], [], []
    for t in range(horizon):
        s_g, h = state
        u = obs_rng.random((S_l - 1, episodes * samples))
        d = ps.sample_counts(u, np.repeat(h, samples, axis=0), k)
        visits.append((s_g, h))
        weights.append(np.full(episodes, game.gamma ** t))
        drawn.append(np.repeat(s_g, samples) * cv.n_count_vectors(k, S_l) + cv.rank(d, k))
        a_g, _ = ps.count_action(reference, obs_rng, None, s_g, h, None)  # reads h (rounded to K counts)
        state, _ = ps.step_counts(game, (env_rng, local_rng), tables, state, a_g, ordering=ordering)
    s_g = np.concatenate([v[0] for v in visits])
    h = np.concatenate([v[1] for v in visits])
    w = np.concatenate(weights)
    entries = np.unique(np.concatenate(drawn))
    D = cv.n_count_vectors(k, S_l)
    out: Occupancy = Occupancy([], [], [])
    for g in range(S_g):
        distinct, inverse = np.unique(h[s_g == g], axis=0, return_inverse=True)
        out.h.append(distinct)
        out.weight.append(np.bincount(inverse.ravel(), w[s_g == g], len(distinct)))
        out.entries.append(entries[(entries >= g * D) & (entries < (g + 1) * D)] - g * D)
    return out


def bayes_actions(d: np.ndarray, h: np.ndarray, log_w: np.ndarray, q: np.ndarray, *, chunk: int = 128) -> np.ndarray:
    """(M,) argmax_a sum_i w_i L(d | h_i) q[i, a] for M k-samples d (M, S_l), given N histograms h (N, S_l) of the
    same n robots with log weights log_w (N,) and action values q (N, A_g); L(d | h) = prod_j (h_j / n)^d_j, the
    k-sample with replacement. In chunks of `chunk` samples (the (chunk, N) likelihood block stays in cache)."""
    n = h[0].sum()
    # log(h_j / n); a state with no robot gets -1e6, so that a sample with d_j > 0 rules that h out
    log_mu = np.log(np.maximum(h, 1) / n) - 1e6 * (h == 0)
    out = np.empty(d.shape[0], dtype=np.int64)
    for lo in range(0, d.shape[0], chunk):
        log_l = d[lo:lo + chunk] @ log_mu.T + log_w  # (c, N)
        log_l -= log_l.max(1, keepdims=True)
        out[lo:lo + chunk] = (np.exp(log_l) @ q).argmax(-1)
    return out


def posterior_table(game: TabularGame, reference: FullInformationPolicy, Q: np.ndarray, occ: Occupancy, *,
                    k: int, chunk: int = 128) -> np.ndarray:
    """The (S_g, D_k) posterior dispatcher of the module docstring on the occupancy `occ` (drawn for this k):
    per visited entry d, argmax_a sum_h w(h) L(d | h) Q_ref(s_g, round_K(h), a) with the multinomial
    likelihood L(d | h) = prod_j (h_j / n)^d_j (a k-sample with replacement: O(k / n) from the
    hypergeometric law); the other entries read the reference's table at the sample's rounding."""
    S_g, S_l, A_g, K = game.n_global_states, game.n_local_states, game.n_global_actions, reference.k
    if Q.shape != (S_g, cv.n_count_vectors(K, S_l), A_g):
        raise InputError(f"Q must have shape (S_g, D_K, A_g) = {(S_g, cv.n_count_vectors(K, S_l), A_g)}, "
                         f"got {Q.shape}")
    all_d = cv.enumerate_counts(k, S_l)
    table = lift_table(reference.pi_g.actions, K, k, S_l)  # the plug-in: the reference read at round(d K / k)

    def decide(g: int) -> None:  # rows of table[g] only: the S_g global states run on a thread pool
        h, entries = occ.h[g], occ.entries[g]
        if h.size == 0 or entries.size == 0:
            return
        n = h[0].sum()
        q = Q[g, cv.rank(cv.round_to_counts(h * (K / n), K), K)]  # (N, A_g)
        table[g, entries] = bayes_actions(all_d[entries], h, np.log(occ.weight[g]), q, chunk=chunk)

    with ThreadPoolExecutor(max_workers=min(S_g, THREADS)) as pool:
        list(pool.map(decide, range(S_g)))  # NumPy releases the GIL in exp and the products; list() re-raises
    return table


def posterior_dispatcher(game: TabularGame, reference: FullInformationPolicy, pi_l: TabularLocalPolicy, *, k: int,
                         rng: np.random.Generator, n_agents: int, horizon: int, tol: float, max_iter: int,
                         episodes: int = 400, samples: int = 8, ordering: sim.Ordering = "paper",
                         V: np.ndarray | None = None, Q: np.ndarray | None = None) -> TabularGlobalPolicy:
    """The posterior dispatcher for k-samples (module docstring) as a `TabularGlobalPolicy`. `Q`: the reference's
    `reference_q` if already computed, else computed (from `V` when given)."""
    if Q is None:
        Q = reference_q(game, pi_l, K=reference.k, tol=tol, max_iter=max_iter, V=V)
    occ = occupancy(game, reference, pi_l, k=k, rng=rng, n_agents=n_agents, horizon=horizon, episodes=episodes,
                    samples=samples, ordering=ordering)
    table = posterior_table(game, reference, Q, occ, k=k)
    return TabularGlobalPolicy(table, k, game.n_local_states, game.n_global_actions)


def full_information_response(game: TabularGame, pi_l: TabularLocalPolicy, *, K: int, tol: float,
                              max_iter: int) -> tuple[FullInformationPolicy, GLearnResult]:
    """G-LEARN's full-information best response to pi_l on count vectors of K (the deterministic transition, as the
    reference's learner) and that solve (its (S_g, D_K) values V and its transitions)."""
    best = g_learn(game, pi_l, k=K, transition="deterministic", stopping="span", tol=tol, max_iter=max_iter)
    return FullInformationPolicy(best.pi_g), best


def response_and_q(game: TabularGame, pi_l: TabularLocalPolicy, *, K: int, tol: float, max_iter: int
                   ) -> tuple[FullInformationPolicy, np.ndarray]:
    """`full_information_response` to pi_l and its (S_g, D_K, A_g) action values (`reference_q` from that solve)."""
    best, solved = full_information_response(game, pi_l, K=K, tol=tol, max_iter=max_iter)
    return best, reference_q(game, pi_l, K=K, tol=tol, max_iter=max_iter, V=solved.V, transitions=solved.transitions)


def posterior_response(game: TabularGame, pi_l: TabularLocalPolicy, *, K: int, k: int, rng: np.random.Generator,
                       n_agents: int, horizon: int, tol: float, max_iter: int,
                       ordering: sim.Ordering = "paper") -> TabularGlobalPolicy:
    """The restricted global step against any robots pi_l: the full-information best response to pi_l
    (`full_information_response`) projected onto the k-sample (`posterior_dispatcher` from that pair). With pi_l the
    reference's robots it is the posterior start's table when the reference's dispatcher is that response."""
    best, Q = response_and_q(game, pi_l, K=K, tol=tol, max_iter=max_iter)
    return posterior_dispatcher(game, best, pi_l, k=k, rng=rng, n_agents=n_agents, horizon=horizon, tol=tol,
                                max_iter=max_iter, ordering=ordering, Q=Q)
