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

Random streams: `rng` is split like `sim.run_episodes`'s (environment, observation, local moves), so two
runs from the same rng state share the initial states (s_g(0), h(0)) and the global transitions' uniforms;
the observation and local draws are common too until the two runs' states differ.
"""

from __future__ import annotations

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
    """Per-episode records of `run_count_episodes` (E episodes of `horizon` steps)."""

    returns: np.ndarray  # (E,) discounted system return sum_t gamma^t (r_g + (1/n) sum_i r_l)
    step_rewards: np.ndarray  # (E,) mean undiscounted system reward per step
    mode_hits: np.ndarray  # (E,) fraction of steps with a_g == population mode (ties to the lowest state)
    s_g: np.ndarray  # (E, horizon + 1) global-state path
    h: np.ndarray  # (E, S_l) the final histogram


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
def _log_factorials(n: int) -> np.ndarray:
    """(n + 1,) log m! for m = 0..n."""
    out = gammaln(np.arange(n + 1) + 1.0)
    out.setflags(write=False)
    return out


def hypergeometric(u: np.ndarray, good: np.ndarray, total: np.ndarray, draws: np.ndarray, k: int) -> np.ndarray:
    """Inverse-CDF hypergeometric draws: the number x of `good` items among `draws` taken without replacement
    from `total`, for (B,) uniforms u and (B,) ints with draws <= k <= total.

    pmf(x) is proportional to 1 / (x! (draws - x)! (good - x)! (bad - draws + x)!) on x = 0..k where all four
    are >= 0 (bad = total - good); x is the smallest value whose CDF exceeds u. One uniform per draw, so two
    runs from the same stream stay paired row by row."""
    log_f = _log_factorials(int(total.max()) + k)  # bad - draws + x <= total + k
    x = np.arange(k + 1)
    first = draws[:, None] - x  # (B, k + 1); negative entries (outside the support) index from the end ...
    second = good[:, None] - x
    third = (total - good - draws)[:, None] + x
    inside = np.minimum(np.minimum(first, second), third) >= 0  # ... and are masked here
    log_p = np.where(inside, -(log_f[x] + log_f[first] + log_f[second] + log_f[third]), -np.inf)
    cdf = np.cumsum(np.exp(log_p - log_p.max(1, keepdims=True)), axis=1)
    return (cdf[:, :-1] <= (u * cdf[:, -1])[:, None]).sum(1)


def sample_counts(rng: np.random.Generator, h: np.ndarray, k: int) -> np.ndarray:
    """The counts of a uniform k-subset without replacement of each row's population: (B, S) histograms
    summing to n >= k -> (B, S) multivariate hypergeometric count vectors summing to k, one state at a time
    (o_j ~ Hypergeometric(h_j good among the agents in states >= j, what is left of k drawn)); S - 1
    uniforms per row."""
    h = np.asarray(h, dtype=np.int64)
    out = np.empty_like(h)
    left_n = h.sum(-1)
    if np.any(left_n < k):
        raise InputError(f"need k <= n in every row, got k={k}, smallest n={left_n.min()}")
    u = rng.random((h.shape[1] - 1, h.shape[0]))
    left_k = np.full(h.shape[0], k, dtype=np.int64)
    for j in range(h.shape[1] - 1):
        out[:, j] = hypergeometric(u[j], h[:, j], left_n, left_k, k)
        left_n = left_n - h[:, j]
        left_k = left_k - out[:, j]
    out[:, -1] = left_k
    return out


def count_action(pi_g: CountController, rng: np.random.Generator, memory: Any, s_g: np.ndarray,
                 h: np.ndarray) -> tuple[np.ndarray, Any]:
    """(B,) a_g and the next dispatcher memory from (B,) s_g and (B, S_l) histograms h (Algorithm 4 lines 1-2
    by counts): a k-sample's counts are `sample_counts(rng, h, k)`."""
    if isinstance(pi_g, TabularGlobalPolicy):
        return pi_g.act(s_g, sample_counts(rng, h, pi_g.k)), None
    if isinstance(pi_g, PooledGlobalPolicy):
        return pi_g.decide(memory, s_g, sample_counts(rng, h, pi_g.k))
    if isinstance(pi_g, FullInformationPolicy):  # the same rounding as FullInformationPolicy.act_on
        n = h.sum(-1, keepdims=True)
        return pi_g.pi_g.act(s_g, cv.round_to_counts(h * (pi_g.k / n), pi_g.k)), None
    if isinstance(pi_g, RandomGlobalPolicy):
        return pi_g.act_on(rng, s_g, h), None
    raise InputError(f"{type(pi_g).__name__} cannot be simulated by counts; use sim.run_episodes")


class CountTables(NamedTuple):
    """What `step_counts` reads of the game and pi_l, computed once per run."""

    cum_g: np.ndarray  # (S_g, A_g, S_g) cumulative P_g
    move: np.ndarray  # (S_g drive, S_g, S_l, A_l S_l) law of one agent's (a_l, s_l'), flattened a_l S_l + s_l'
    r_l: np.ndarray  # (S_g, S_l, A_l) r_l(s_l, s_g, a_l) with s_g first


def count_tables(game: TabularGame, pi_l: TabularLocalPolicy) -> CountTables:
    """The move law pi_l(a | s_g, s_l) P_l(s' | s_l, s_g drive, a) (the paper ordering reads the diagonal
    s_g drive = s_g) and the reordered cumulative P_g and r_l."""
    S_g, S_l = game.n_global_states, game.n_local_states
    move = np.einsum("gsa,sdat->dgsat", pi_l.probs, game.P_l).reshape(S_g, S_g, S_l, -1)
    return CountTables(sim.cumulative(game.P_g), move, np.ascontiguousarray(np.transpose(game.r_l, (1, 0, 2))))


def step_counts(game: TabularGame, rngs: tuple[np.random.Generator, np.random.Generator], tables: CountTables,
                state: CountState, a_g: np.ndarray, *, ordering: sim.Ordering) -> tuple[CountState, np.ndarray]:
    """One step of the population from (B,) a_g: the next `CountState` and the (B,) system reward (Eq. 1).

    `rngs` = (environment stream: one uniform per row for s_g(t + 1); local stream: the multinomials)."""
    env_rng, local_rng = rngs
    s_g, h = state
    n, S_l, A_l = h[0].sum(), game.n_local_states, game.n_local_actions
    cum_g = tables.cum_g[s_g, a_g]  # (B, S_g)
    s_g_next = (cum_g[:, :-1] <= env_rng.random(s_g.shape[0])[:, None]).sum(1)  # inverse CDF
    drive = s_g if ordering == "paper" else s_g_next
    joint = local_rng.multinomial(h, tables.move[drive, s_g]).reshape(-1, S_l, A_l, S_l)  # (B, s_l, a_l, s_l')
    r_l = np.einsum("bsat,bsa->b", joint, tables.r_l[s_g]) / n
    return CountState(s_g_next, joint.sum((1, 2))), game.r_g[s_g, a_g] + r_l


def run_count_episodes(game: TabularGame, pi_g: CountController, pi_l: TabularLocalPolicy,
                       rng: np.random.Generator, *, n_agents: int, horizon: int, n_episodes: int,
                       ordering: sim.Ordering = "paper", batch_size: int = 64) -> CountEpisodes:
    """`sim.run_episodes` by counts (module docstring): the same law of returns, step rewards, mode
    accuracy and s_g paths, at a cost independent of n_agents."""
    if ordering not in sim.ORDERINGS:
        raise InputError(f"ordering must be one of {sim.ORDERINGS}, got {ordering!r}")
    if not supports(pi_g, pi_l):
        raise InputError(f"({type(pi_g).__name__}, {type(pi_l).__name__}) cannot be simulated by counts; "
                         "use sim.run_episodes")
    env_rng, obs_rng, local_rng = rng.spawn(3)
    tables = count_tables(game, pi_l)
    returns, step_rewards, hits = np.empty(n_episodes), np.empty(n_episodes), np.empty(n_episodes)
    path = np.empty((n_episodes, horizon + 1), dtype=np.int64)
    final = np.empty((n_episodes, game.n_local_states), dtype=np.int64)
    for start in range(0, n_episodes, batch_size):
        B = min(batch_size, n_episodes - start)
        rows = slice(start, start + B)
        state = reset_counts(game, env_rng, n_agents=n_agents, batch=B)
        memory = sim.dispatcher_memory(pi_g, B)
        total, plain, correct = np.zeros(B), np.zeros(B), np.zeros(B)
        discount = 1.0
        for t in range(horizon):
            path[rows, t] = state.s_g
            a_g, memory = count_action(pi_g, obs_rng, memory, state.s_g, state.h)
            correct += a_g == state.h.argmax(-1)
            state, reward = step_counts(game, (env_rng, local_rng), tables, state, a_g, ordering=ordering)
            total += discount * reward
            plain += reward
            discount *= game.gamma
        path[rows, horizon], final[rows] = state.s_g, state.h
        returns[rows], step_rewards[rows], hits[rows] = total, plain / horizon, correct / horizon
    return CountEpisodes(returns, step_rewards, hits, path, final)


def evaluate(game: TabularGame, pi_g: CountController, pi_l: TabularLocalPolicy, rng: np.random.Generator, *,
             n_agents: int, horizon: int, n_episodes: int, ordering: sim.Ordering = "paper",
             batch_size: int = 64) -> sim.Evaluation:
    """`sim.evaluate` by counts: the discounted return of (pi_g, pi_l) on the n-agent system by Monte Carlo
    over i.i.d. episodes (`reward.stderr` over episodes), the same law as `sim.evaluate`'s."""
    ep = run_count_episodes(game, pi_g, pi_l, rng, n_agents=n_agents, horizon=horizon, n_episodes=n_episodes,
                            ordering=ordering, batch_size=batch_size)
    return sim.Evaluation(sim.Estimate.of(ep.returns), sim.Estimate.of(ep.mode_hits), ep.returns, ep.step_rewards)
