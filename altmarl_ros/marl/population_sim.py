"""The n-agent simulator by counts: Algorithm 4 (PAPER.md 2.5) on the population histogram, exact in law.

The local agents are exchangeable and share pi_l, so the law of everything the system reward and the
dispatcher read (s_g and the histogram h of the n local states) is the same whether the agents are
simulated one by one (`sim.run_episodes`) or by counts. Per step, for every row of a batch:

- observation: a uniform k-subset without replacement of the n agents has the multivariate hypergeometric
  count vector o ~ MVHG(h, k) (`sample_counts`); a full-information dispatcher reads h itself;
- local moves: the h[s] agents in local state s draw (a_l, s_l') independently from
  pi_l(a | s_g, s) P_l(s' | s, s_g^drive, a), so their joint counts are Multinomial(h[s], that law);
  s_g^drive = s_g(t) in the "paper" ordering and s_g(t + 1) in the "authors" ordering (`sim` module
  docstring), where s_g(t + 1) ~ P_g(. | s_g(t), a_g) is drawn first (it does not depend on the locals);
- reward: r_g(s_g, a_g) + (1 / n) sum_{s, a} N[s, a] r_l(s, s_g, a), N the (s_l, a_l) counts.

Cost per step: B S_l multinomials over A_l S_l cells and B (S_l - 1) hypergeometric draws, whatever n;
`sim.run_episodes` costs O(B n). What it cannot do: anything that needs agent identity (a tagged
deviating agent, agent 0's own return, replaying robots): use `sim.run_episodes` for those.

Several pairs (pi_g, pi_l) run side by side on common random numbers (`run_count_episodes`): the stream
`rng` is split into environment, observation and local streams; every pair's episodes start from the same
(s_g(0), h(0)), and the global transitions and the k-samples read the same uniforms per episode and step (by
inverse CDF), so the pairs' episodes stay paired while their states agree; the local multinomials are drawn
per pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from scipy.special import gammaln

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl import sim
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.policy import FullInformationPolicy, RandomGlobalPolicy, TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.pooled import PooledGlobalPolicy

CountController = TabularGlobalPolicy | FullInformationPolicy | PooledGlobalPolicy | RandomGlobalPolicy
COUNT_CONTROLLERS = (TabularGlobalPolicy, FullInformationPolicy, PooledGlobalPolicy, RandomGlobalPolicy)


class CountState(NamedTuple):
    s_g: np.ndarray  # (B,) int
    h: np.ndarray  # (B, S_l) int64 histogram of the n local states, rows sum to n


class CountEpisodes(NamedTuple):
    """Per-episode records of `run_count_episodes` (P pairs, E episodes of `horizon` steps)."""

    returns: np.ndarray  # (P, E) discounted system return sum_t gamma^t (r_g + (1/n) sum_i r_l)
    step_rewards: np.ndarray  # (P, E) mean undiscounted system reward per step
    mode_hits: np.ndarray  # (P, E) fraction of steps with a_g == population mode (ties to the lowest state)
    s_g: np.ndarray  # (P, E, horizon + 1) global-state path
    h: np.ndarray  # (P, E, S_l) the final histogram


def supports(pi_g: Any, pi_l: Any) -> bool:
    """True when (pi_g, pi_l) can be simulated by counts: a dispatcher that reads a k-sample, the full
    histogram, a pooled filter or nothing, and ONE local policy shared by every agent."""
    return isinstance(pi_g, COUNT_CONTROLLERS) and isinstance(pi_l, TabularLocalPolicy)


def reset_counts(game: TabularGame, rng: np.random.Generator, *, n_agents: int, batch: int) -> CountState:
    """s_g(0) ~ init_g; per episode mu_0 ~ Dirichlet(c), h(0) ~ Multinomial(n, mu_0) (the law of `sim.reset`'s
    histogram: n i.i.d. draws from mu_0)."""
    cum_g = np.broadcast_to(sim.cumulative(game.init_g), (batch, game.n_global_states))
    s_g = sim.inverse_cdf(rng.random(batch), cum_g)
    mu0 = game.sample_population(rng, batch)  # (B, S_l)
    return CountState(s_g, rng.multinomial(n_agents, mu0))


@lru_cache(maxsize=8)
def log_factorials(n: int, k: int) -> np.ndarray:
    """(n + 2 k + 2,) log m! for m = 0..n + k, then k + 1 entries +inf: indexed by m in [-k - 1, n + k], the
    negative m (which wrap to the end) read +inf, i.e. "1 / m! = 0"."""
    out = np.concatenate([gammaln(np.arange(n + k + 1) + 1.0), np.full(k + 1, np.inf)])
    out.setflags(write=False)
    return out


def sample_counts(u: np.ndarray, h: np.ndarray, k: int) -> np.ndarray:
    """The counts of a uniform k-subset without replacement of each row's population, from (S - 1, B)
    uniforms: (B, S) histograms summing to n >= k -> (B, S) multivariate hypergeometric count vectors summing
    to k, one state at a time: o_j ~ Hypergeometric(h_j good among the `left` agents in states >= j, `draws` =
    what is left of k), by inverse CDF with u[j]: pmf(x) is proportional to
    1 / (x! (draws - x)! (h_j - x)! (left - h_j - draws + x)!) on x = 0..k (0 where a factorial's argument is
    negative), and o_j is the smallest x whose CDF exceeds u[j]. One uniform per draw, so two runs from the same
    stream stay paired row by row. Compiled (`kernels.sample_counts`, numba: imported on first use)."""
    from altmarl_ros.marl.learners import kernels

    h = np.asarray(h, dtype=np.int64)
    left_n = h.sum(-1)
    if np.any(left_n < k):
        raise InputError(f"need k <= n in every row, got k={k}, smallest n={left_n.min()}")
    return kernels.sample_counts(u, h, k, log_factorials(int(left_n.max()), k))


def k_sample(pi_g: CountController) -> int | None:
    """The size of the k-sample `pi_g` reads each step (None: it reads none)."""
    return pi_g.k if isinstance(pi_g, TabularGlobalPolicy | PooledGlobalPolicy) else None


def _drawn(sample: np.ndarray | None) -> np.ndarray:
    if sample is None:
        raise InputError("this dispatcher reads a k-sample each step; none was drawn")
    return sample


def count_action(pi_g: CountController, rng: np.random.Generator, memory: Any, s_g: np.ndarray, h: np.ndarray,
                 sample: np.ndarray | None) -> tuple[np.ndarray, Any]:
    """(B,) a_g and the next dispatcher memory from (B,) s_g, (B, S_l) histograms h and, for a dispatcher that
    reads a k-sample, its (B, S_l) counts `sample` (Algorithm 4 lines 1-2 by counts). `rng`: the random
    dispatcher's draws."""
    if isinstance(pi_g, TabularGlobalPolicy):
        return pi_g.act(s_g, _drawn(sample)), None
    if isinstance(pi_g, PooledGlobalPolicy):
        return pi_g.decide(memory, s_g, _drawn(sample))
    if isinstance(pi_g, FullInformationPolicy):  # the same rounding as FullInformationPolicy.act_on
        n = h.sum(-1, keepdims=True)
        return pi_g.pi_g.act(s_g, cv.round_to_counts(h * (pi_g.k / n), pi_g.k)), None
    return pi_g.act_on(rng, s_g, h), None


def count_actions(pi_gs: Sequence[CountController], rng: np.random.Generator, memories: list[Any],
                  s_g: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(P B,) a_g of P dispatchers, dispatcher p on rows p B .. (p + 1) B - 1 of (P B,) s_g and (P B, S_l) h;
    updates `memories` in place. The k-samples take S_l - 1 uniforms per episode, the same for every
    dispatcher (common random numbers), and are drawn once per sample size."""
    P, S_l = len(pi_gs), h.shape[1]
    B = s_g.shape[0] // P
    u = np.tile(rng.random((S_l - 1, B)), (1, P))
    samples = {k: sample_counts(u, h, k) for k in {k_sample(pi_g) for pi_g in pi_gs} if k is not None}
    a_g = np.empty(s_g.shape, dtype=np.int64)
    for p, pi_g in enumerate(pi_gs):
        rows = slice(p * B, (p + 1) * B)
        k = k_sample(pi_g)
        a_g[rows], memories[p] = count_action(pi_g, rng, memories[p], s_g[rows], h[rows],
                                              None if k is None else samples[k][rows])
    return a_g


class CountTables(NamedTuple):
    """What `step_counts` reads of the game and the local policies, computed once per run."""

    cum_g: np.ndarray  # (S_g, A_g, S_g) cumulative P_g
    move: np.ndarray  # (P, S_g drive, S_g, S_l, A_l S_l) law of one agent's (a_l, s_l') under pi_l of pair p
    r_l: np.ndarray  # (S_g, S_l, A_l) r_l(s_l, s_g, a_l) with s_g first


def count_tables(game: TabularGame, pi_ls: Sequence[TabularLocalPolicy]) -> CountTables:
    """The move laws pi_l(a | s_g, s_l) P_l(s' | s_l, s_g drive, a), flattened a_l S_l + s_l' (the paper
    ordering reads the diagonal s_g drive = s_g), and the reordered cumulative P_g and r_l."""
    S_g, S_l = game.n_global_states, game.n_local_states
    move = np.stack([np.einsum("gsa,sdat->dgsat", pi_l.probs, game.P_l).reshape(S_g, S_g, S_l, -1)
                     for pi_l in pi_ls])
    return CountTables(sim.cumulative(game.P_g), move, np.ascontiguousarray(np.transpose(game.r_l, (1, 0, 2))))


def step_counts(game: TabularGame, rngs: tuple[np.random.Generator, np.random.Generator], tables: CountTables,
                state: CountState, a_g: np.ndarray, *, ordering: sim.Ordering) -> tuple[CountState, np.ndarray]:
    """One step of P B episodes (pair p on rows p B .. (p + 1) B - 1, P = tables.move.shape[0]) from (P B,) a_g:
    the next `CountState` and the (P B,) system reward (Eq. 1).

    `rngs` = (environment stream: one uniform per episode for s_g(t + 1), the same for every pair; local
    stream: the multinomials)."""
    env_rng, local_rng = rngs
    s_g, h = state
    P, (n, S_l, A_l) = tables.move.shape[0], (h[0].sum(), game.n_local_states, game.n_local_actions)
    cum_g = tables.cum_g[s_g, a_g]  # (P B, S_g)
    u = np.tile(env_rng.random(s_g.shape[0] // P), P)
    s_g_next = (cum_g[:, :-1] <= u[:, None]).sum(1)  # inverse CDF
    drive = s_g if ordering == "paper" else s_g_next
    pair = np.repeat(np.arange(P), s_g.shape[0] // P)
    joint = local_rng.multinomial(h, tables.move[pair, drive, s_g]).reshape(-1, S_l, A_l, S_l)  # (., s, a, s')
    r_l = np.einsum("bsat,bsa->b", joint, tables.r_l[s_g]) / n
    return CountState(s_g_next, joint.sum((1, 2))), game.r_g[s_g, a_g] + r_l


def run_count_episodes(game: TabularGame, pairs: Sequence[tuple[CountController, TabularLocalPolicy]],
                       rng: np.random.Generator, *, n_agents: int, horizon: int, n_episodes: int,
                       ordering: sim.Ordering = "paper", batch_size: int = 64) -> CountEpisodes:
    """`sim.run_episodes` by counts (module docstring) for P pairs (pi_g, pi_l) on common random numbers: the
    same law of returns, step rewards, mode accuracy and s_g paths as `sim.run_episodes` for each pair, at a
    cost independent of n_agents. Records have a leading pair axis: (P, E), (P, E, horizon + 1), ..."""
    if ordering not in sim.ORDERINGS:
        raise InputError(f"ordering must be one of {sim.ORDERINGS}, got {ordering!r}")
    for pi_g, pi_l in pairs:
        if not supports(pi_g, pi_l):
            raise InputError(f"({type(pi_g).__name__}, {type(pi_l).__name__}) cannot be simulated by counts; "
                             "use sim.run_episodes")
    env_rng, obs_rng, local_rng = rng.spawn(3)
    pi_gs, P = [pi_g for pi_g, _ in pairs], len(pairs)
    tables = count_tables(game, [pi_l for _, pi_l in pairs])
    returns, step_rewards, hits = np.empty((3, P, n_episodes))
    path = np.empty((P, n_episodes, horizon + 1), dtype=np.int64)
    final = np.empty((P, n_episodes, game.n_local_states), dtype=np.int64)
    for start in range(0, n_episodes, batch_size):
        B = min(batch_size, n_episodes - start)
        rows = slice(start, start + B)
        state = reset_counts(game, env_rng, n_agents=n_agents, batch=B)
        state = CountState(np.tile(state.s_g, P), np.tile(state.h, (P, 1)))
        memories = [sim.dispatcher_memory(pi_g, B) for pi_g in pi_gs]
        total, plain, correct = np.zeros((3, P * B))
        discount = 1.0
        for t in range(horizon):
            path[:, rows, t] = state.s_g.reshape(P, B)
            a_g = count_actions(pi_gs, obs_rng, memories, state.s_g, state.h)
            correct += a_g == state.h.argmax(-1)
            state, reward = step_counts(game, (env_rng, local_rng), tables, state, a_g, ordering=ordering)
            total += discount * reward
            plain += reward
            discount *= game.gamma
        path[:, rows, horizon], final[:, rows] = state.s_g.reshape(P, B), state.h.reshape(P, B, -1)
        returns[:, rows], step_rewards[:, rows] = total.reshape(P, B), (plain / horizon).reshape(P, B)
        hits[:, rows] = (correct / horizon).reshape(P, B)
    return CountEpisodes(returns, step_rewards, hits, path, final)


def evaluate(game: TabularGame, pi_g: CountController, pi_l: TabularLocalPolicy, rng: np.random.Generator, *,
             n_agents: int, horizon: int, n_episodes: int, ordering: sim.Ordering = "paper",
             batch_size: int = 64) -> sim.Evaluation:
    """`sim.evaluate` by counts: the discounted return of (pi_g, pi_l) on the n-agent system by Monte Carlo
    over i.i.d. episodes (`reward.stderr` over episodes), the same law as `sim.evaluate`'s."""
    ep = run_count_episodes(game, [(pi_g, pi_l)], rng, n_agents=n_agents, horizon=horizon, n_episodes=n_episodes,
                            ordering=ordering, batch_size=batch_size)
    return sim.Evaluation(sim.Estimate.of(ep.returns[0]), sim.Estimate.of(ep.mode_hits[0]), ep.returns[0],
                          ep.step_rewards[0])
