"""The restricted global best response: the best memoryless dispatcher pi_g(s_g, obs) against a fixed pi_l.

Against fixed robots the dispatcher's problem is partially observed: the state is (s_g, the whole
population), the observation (s_g, the k-sample count vector) or any `observe.Observer`. G-LEARN
solves a k-agent surrogate MDP over count vectors, which is not this problem (its proposals can lose on
n robots); here candidates are evaluated on the true n-agent system or on its exact model.

Both learners are policy iteration over the memoryless table with verification:
1. proposal: every entry switches to the argmax of its occupancy-weighted action value under the
   current table (the performance-difference direction of a memoryless policy);
2. the proposal is kept only if the evaluation says it is better (a memoryless POMDP policy is not
   improved monotonically by greedy switching, so it is checked, not assumed);
3. `model_best_response` (exact, `population.PopulationModel`, small n) then runs single-entry
   coordinate ascent with exact values until no single switch improves, from several starts:
   every constant table and the given ones. The result is a local optimum over single switches; on
   random tiny games it matches the brute force (test_restricted.py says how often and where checked).
4. `mc_best_response` (warehouse scale) estimates the action values per (s_g, obs) entry from
   episodes on the n-agent simulator: with the paper ordering the next population does not depend on
   a_g, so Q(s_g, o, a) = r_g(s_g, a) + gamma sum_{s_g'} P_g(s_g' | s_g, a) U(s_g, o, s_g') + const,
   where U(s_g, o, s_g') = E[return from t + 1 | s_g, o at t, s_g' at t + 1] is estimated from the
   on-policy episodes (weights gamma^t); an entry switches when its advantage exceeds z stderr, and
   the switched table is accepted only on a paired (common random numbers) comparison on fresh
   episodes whose lower bound is above 0.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl import counts as cv
from altmarl_ros.marl import population
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.learners.bellman import THREADS
from altmarl_ros.marl.meanfield_model import meanfield_grid
from altmarl_ros.marl.observe import KSampleObserver, Observer, table_rollouts
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.sim import Estimate

_TOL = 1e-10


class BestResponse(NamedTuple):
    """What a restricted best-response search returns."""

    table: np.ndarray  # (S_g, n_obs) the best dispatcher table found
    value: float  # its value (exact for the model search; the last paired estimate's mean for MC)
    start: str  # the start it was reached from (the winning family)
    starts_tried: int
    evaluations: int  # candidate tables evaluated
    seconds: float
    start_values: dict[str, float] | None = None  # model value of each start table (model search only)


def constant_starts(S_g: int, n_obs: int, A_g: int) -> dict[str, np.ndarray]:
    """One constant table per global action."""
    return {f"constant_{a}": np.full((S_g, n_obs), a, dtype=np.int64) for a in range(A_g)}


def _improve_exact(model: population.PopulationModel, table: np.ndarray, value: float, horizon: int | None,
                   max_sweeps: int, coordinate: bool) -> tuple[np.ndarray, float, int]:
    """Greedy proposals (halved up to 3 times to the entries of largest weighted advantage when the whole
    proposal does not improve), then single-entry coordinate ascent, all checked by model values."""
    evaluations = 0
    A_g = model.game.n_global_actions
    for _ in range(max_sweeps):
        q = population.observation_q(model, table, horizon=horizon)
        current = np.take_along_axis(q, table[..., None], -1)[..., 0]
        advantage = q.max(-1) - current
        switch = advantage > _TOL * (1 + np.abs(current))
        accepted = False
        for _ in range(4):
            if not switch.any():
                break
            proposal = np.where(switch, q.argmax(-1), table)
            v = population.memoryless_value(model, proposal, horizon=horizon)
            evaluations += 1
            if v > value + _TOL * (1 + abs(value)):
                table, value, accepted = proposal, v, True
                break
            switch &= advantage >= np.median(advantage[switch])  # the better half of the switches
            if switch.sum() <= 1:
                break
        if accepted:
            continue
        if not coordinate:
            break
        improved = False
        for idx in itertools.product(*map(range, table.shape)):
            for a in range(A_g):
                if a == table[idx]:
                    continue
                cand = table.copy()
                cand[idx] = a
                v = population.memoryless_value(model, cand, horizon=horizon)
                evaluations += 1
                if v > value + _TOL * (1 + abs(value)):
                    table, value, improved = cand, v, True
        if not improved:
            break
    return table, value, evaluations


def model_best_response(model: population.PopulationModel, *, starts: Mapping[str, np.ndarray] | None = None,
                        horizon: int | None = None, max_sweeps: int = 50, constants: bool = True,
                        coordinate_max: int = 400) -> BestResponse:
    """The best memoryless dispatcher found on a population model (exact small-n, or `meanfield_grid`),
    from the given starts and (`constants`) every constant table. Single-entry coordinate ascent runs
    only when the table has at most `coordinate_max` (entry, action) pairs (else proposals only)."""
    t0 = time.perf_counter()
    game = model.game
    S_g, D, A_g = game.n_global_states, model.n_observations, game.n_global_actions
    all_starts = {**(constant_starts(S_g, D, A_g) if constants else {}), **(starts or {})}
    if not all_starts:
        raise InputError("model_best_response needs a start (constants=False and no starts)")
    coordinate = S_g * D * A_g <= coordinate_max
    tables = {name: np.asarray(start, dtype=np.int64) for name, start in all_starts.items()}
    for name, start in tables.items():
        if start.shape != (S_g, D):
            raise InputError(f"start {name!r} has shape {start.shape}, expected {(S_g, D)}")

    def search(start: np.ndarray) -> tuple[float, tuple[np.ndarray, float, int]]:
        v0 = population.memoryless_value(model, start, horizon=horizon)
        return v0, _improve_exact(model, start, v0, horizon, max_sweeps, coordinate)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:  # the starts are independent (NumPy / SciPy release the GIL)
        searched = dict(zip(tables, pool.map(search, tables.values()), strict=True))
    best: BestResponse | None = None
    evaluations = 0
    start_values: dict[str, float] = {}
    for name, (v0, (table, value, n_eval)) in searched.items():  # in the starts' order, as one at a time
        start_values[name] = v0
        evaluations += n_eval + 1
        if best is None or value > best.value + _TOL * (1 + abs(value)):
            best = BestResponse(table, value, name, 0, 0, 0.0)
    assert best is not None
    return best._replace(starts_tried=len(all_starts), evaluations=evaluations, seconds=time.perf_counter() - t0,
                         start_values=start_values)


def exhaustive_best_response(model: population.PopulationModel, *, horizon: int | None = None,
                             max_policies: int = 100_000) -> BestResponse:
    """The exact restricted best response by brute force: every deterministic memoryless table
    (A_g^(S_g D) of them) valued exactly on the population model; the reference for the searches."""
    t0 = time.perf_counter()
    S_g, D, A_g = model.game.n_global_states, model.n_observations, model.game.n_global_actions
    count = A_g ** (S_g * D)
    if count > max_policies:
        raise InputError(f"exhaustive_best_response would enumerate {count} tables (> max_policies={max_policies})")
    best_table, best_value = None, -np.inf
    for flat in itertools.product(range(A_g), repeat=S_g * D):
        table = np.reshape(flat, (S_g, D))
        v = population.memoryless_value(model, table, horizon=horizon)
        if v > best_value:
            best_table, best_value = table, v
    assert best_table is not None
    return BestResponse(best_table, float(best_value), "exhaustive", 1, count, time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------
# Monte Carlo on the n-agent simulator
# ----------------------------------------------------------------------------------------------

class EntryAdvantage(NamedTuple):
    """Per-entry action values estimated from episodes (`entry_advantages`)."""

    q: np.ndarray  # (S_g, n_obs, A_g) estimated Q up to a per-entry constant
    stderr: np.ndarray  # (S_g, n_obs, A_g) stderr of q[..., a] - q[..., table action]
    visits: np.ndarray  # (S_g, n_obs) number of visits


def entry_advantages(game: TabularGame, table: np.ndarray, s_g: np.ndarray, obs: np.ndarray,
                     rewards: np.ndarray) -> EntryAdvantage:
    """Q(s_g, o, a) - const from on-policy episodes: (E, H + 1) s_g, (E, H) obs and rewards (paper ordering).

    U(s_g, o, s_g') is the gamma^t-weighted mean of the return from t + 1 over the visits of (s_g, o) at t
    that moved to s_g'; cells with fewer than 2 visits borrow the mean over all o of (s_g, s_g')."""
    S_g = game.n_global_states
    n_obs = table.shape[1]
    E, H = obs.shape
    gamma = game.gamma
    togo = np.zeros((E, H + 1))
    for t in range(H - 1, -1, -1):
        togo[:, t] = rewards[:, t] + gamma * togo[:, t + 1]
    w = np.broadcast_to(gamma ** np.arange(H), (E, H)).ravel()
    g, o, g2, G = s_g[:, :-1].ravel(), obs.ravel(), s_g[:, 1:].ravel(), togo[:, 1:].ravel()
    cell = (g * n_obs + o) * S_g + g2
    size = S_g * n_obs * S_g
    W = np.bincount(cell, w, size)
    W2 = np.bincount(cell, w * w, size)
    S1 = np.bincount(cell, w * G, size)
    S2 = np.bincount(cell, w * G * G, size)
    N = np.bincount(cell, minlength=size)
    pooled_cell = g * S_g + g2
    PW = np.bincount(pooled_cell, w, S_g * S_g)
    PS1 = np.bincount(pooled_cell, w * G, S_g * S_g)
    PS2 = np.bincount(pooled_cell, w * G * G, S_g * S_g)
    p_mean = PS1 / np.maximum(PW, 1e-300)
    p_var = np.maximum(PS2 / np.maximum(PW, 1e-300) - p_mean ** 2, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = S1 / W
        var = np.maximum(S2 / W - mean ** 2, 0.0)
        n_eff = W ** 2 / W2
    enough = N >= 2
    pooled = np.tile(p_mean.reshape(S_g, 1, S_g), (1, n_obs, 1)).ravel()
    pooled_var = np.tile(p_var.reshape(S_g, 1, S_g), (1, n_obs, 1)).ravel()
    U = np.where(enough, mean, pooled).reshape(S_g, n_obs, S_g)
    var_of_mean = np.where(enough, var / np.where(enough, n_eff, 1.0), pooled_var).reshape(S_g, n_obs, S_g)
    q = game.r_g[:, None, :] + gamma * np.einsum("gax,gox->goa", game.P_g, U)
    dP = game.P_g[:, None, :, :] - game.P_g[np.arange(S_g)[:, None], table][:, :, None, :]  # (S_g, n_obs, A_g, S_g')
    se = gamma * np.sqrt(np.einsum("goax,gox->goa", dP ** 2, var_of_mean))
    visits = np.bincount(g * n_obs + o, minlength=S_g * n_obs).reshape(S_g, n_obs)
    return EntryAdvantage(q, se, visits)


def _paired_gain(game: TabularGame, cand: np.ndarray, table: np.ndarray, observer: Observer,
                 pi_l: TabularLocalPolicy, seed: np.random.SeedSequence, **kw: int) -> Estimate:
    a = table_rollouts(game, cand, observer, pi_l, seed, **kw).returns
    b = table_rollouts(game, table, observer, pi_l, seed, **kw).returns
    return Estimate.of(a - b)


def mc_best_response(game: TabularGame, pi_l: TabularLocalPolicy, observer: Observer, *,
                     starts: Mapping[str, np.ndarray], seed: int, n_agents: int, horizon: int,
                     episodes: int = 256, rounds: int = 6, z: float = 2.0) -> BestResponse:
    """Monte Carlo policy iteration on the n-agent simulator (see the module docstring), from each start;
    the best start is chosen on paired episodes against the first start. `value` is the best table's
    paired gain over the first start (an unbiased estimate on fresh episodes)."""
    t0 = time.perf_counter()
    if not starts:
        raise InputError("mc_best_response needs at least one start table")
    kw = {"n_agents": n_agents, "horizon": horizon, "n_episodes": episodes}
    seeds = iter(np.random.SeedSequence(seed).spawn(2 * rounds * len(starts) + 1))
    evaluations = 0
    results: dict[str, np.ndarray] = {}
    for name, start in starts.items():
        table = np.asarray(start, dtype=np.int64)
        for _ in range(rounds):
            run = table_rollouts(game, table, observer, pi_l, next(seeds), **kw)
            adv = entry_advantages(game, table, run.s_g, run.obs, run.rewards)
            current = np.take_along_axis(adv.q, table[..., None], -1)[..., 0]
            z_gain = (adv.q - current[..., None]) / np.where(adv.stderr > 0, adv.stderr, np.inf)
            best_a = z_gain.argmax(-1)
            switch = (np.take_along_axis(z_gain, best_a[..., None], -1)[..., 0] > z) & (adv.visits > 0)
            if not switch.any():
                break
            cand = np.where(switch, best_a, table)
            gain = _paired_gain(game, cand, table, observer, pi_l, next(seeds), **kw)
            evaluations += 1
            if gain.mean - z * gain.stderr <= 0:
                break
            table = cand
        results[name] = table
    names = list(results)
    final_seed = next(seeds)
    base = results[names[0]]
    gains = {name: _paired_gain(game, results[name], base, observer, pi_l, final_seed, **kw) for name in names}
    winner = max(names, key=lambda nm: gains[nm].mean)
    return BestResponse(results[winner], gains[winner].mean, winner, len(names), evaluations + len(names),
                        time.perf_counter() - t0)


def k_sample_observer(game: TabularGame, k: int) -> KSampleObserver:
    """Algorithm 4's observer for `game` at budget k."""
    return KSampleObserver(k, game.n_local_states)


def default_grid(k: int, n_local_states: int, *, max_points: int = 12_000) -> int:
    """The grid resolution K of `meanfield_grid`: the largest K <= max(3 k, 6) with at most `max_points`
    grid points (5-zone warehouse: K = 6 at k <= 2 (210 points), 15 at k = 5 (3876), 20 from k = 7 (10626))."""
    K = max(3 * k, 6)
    while K > 1 and cv.n_count_vectors(K, n_local_states) > max_points:
        K -= 1
    return K


def restricted_best_response(game: TabularGame, pi_l: TabularLocalPolicy, *, k: int, n_agents: int,
                             horizon: int | None, rng: np.random.Generator,
                             starts: Mapping[str, np.ndarray] | None = None, K: int | None = None,
                             constants: bool = True) -> BestResponse:
    """The restricted best response over memoryless k-sample dispatchers against pi_l on n robots:
    `model_best_response` on the exact histogram chain when it has at most `population.MAX_HISTOGRAMS`
    histograms, else on `meanfield_model.meanfield_grid` (grid K, default `default_grid`). Independent
    of G-LEARN (pass G-LEARN's table in `starts` to also start from it)."""
    if cv.n_count_vectors(n_agents, game.n_local_states) <= population.MAX_HISTOGRAMS:
        model = population.population_model(game, pi_l, n_agents=n_agents, k=k)
    else:
        K = K if K is not None else default_grid(k, game.n_local_states)
        model = meanfield_grid(game, pi_l, k=k, K=K, rng=rng)
        # the grid model is an approximation: proposals only (coordinate ascent would fit its errors)
        return model_best_response(model, starts=starts, horizon=horizon, constants=constants, coordinate_max=0)
    return model_best_response(model, starts=starts, horizon=horizon, constants=constants)


def restricted_proposal(game: TabularGame, pi_l: TabularLocalPolicy, proposal: TabularGlobalPolicy, *,
                        n_agents: int, horizon: int, rng: np.random.Generator,
                        incumbent: TabularGlobalPolicy | None = None, K: int | None = None) -> TabularGlobalPolicy:
    """The alternation's restricted-best-response proposal: `restricted_best_response` started from
    G-LEARN's `proposal` (and the incumbent dispatcher when given), no constant starts; the best table
    by the model's value (it is then judged by UPDATE's paired comparison on n robots like any proposal)."""
    starts = {"g_learn": proposal.actions}
    if incumbent is not None and incumbent.actions.shape == proposal.actions.shape:
        starts["incumbent"] = incumbent.actions
    br = restricted_best_response(game, pi_l, k=proposal.k, n_agents=n_agents, horizon=horizon, rng=rng,
                                  starts=starts, K=K, constants=False)
    return TabularGlobalPolicy(br.table, proposal.k, proposal.n_local_states, proposal.n_global_actions)
