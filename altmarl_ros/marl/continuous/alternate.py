"""The alternating loop with neural policies (PAPER.md 2.4 / 2.6; the tabular loop's rule in
`marl.learners.alternate`), and multi-start with equilibrium selection.

Each round proposes a dispatcher (G-step: PPO on the subsampled system's return, continued from the
incumbent pi_g against the frozen robots), then a robot policy (L-step: PPO on the representative-agent
MDP against the frozen dispatcher). The paired UPDATE rule of the tabular loop decides: the proposal and
the incumbent play the SAME fresh episodes (same JAX key: same resets, samples and noise), and the
proposal is accepted iff the one-sided lower confidence bound of the paired improvement exceeds 2 eta,
eta = c R / ((1 - gamma) sqrt(k)). A step that continues from an incumbent trained by an accepted step (or
by the l_first pre-training) runs the player's `refine_iterations`; the step after a rejected proposal runs
the full `iterations`, retrained from the incumbent with fresh keys (not the authors' stall, B7). A round with
no acceptance in which both steps ran the full `iterations` is a fixed point and stops the loop (a shorter
rejected step is retried at full length next round first).
In-loop evaluation keys derive from the training seed, never from the evaluation protocol's keys.
In the in-loop evaluations the robots act by their greedy pi_l tabulated on the training grid (`grid`,
as in the best-response steps; `evaluate.robots_of`): a gather per step instead of n network passes. The loop
holds one table per robot policy (the incumbent's, a proposal's), computed once and passed to every step and
comparison it plays in. The protocol's evaluation uses the exact networks.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl.continuous import compile_cache
from altmarl_ros.marl.continuous import env as wh
from altmarl_ros.marl.continuous import learners as br
from altmarl_ros.marl.continuous.evaluate import Robots, greedy_rollouts, robots_of, train_key
from altmarl_ros.marl.continuous.nets import MLP, N_FEATURES_L, ActorCritic
from altmarl_ros.marl.continuous.settings import ContinuousConfig
from altmarl_ros.marl.continuous.warehouse import n_features_g
from altmarl_ros.marl.learners.alternate import Comparison, RoundRecord, UpdateRule
from altmarl_ros.marl.sim import Estimate

Pair = tuple[ActorCritic, ActorCritic]  # (dispatcher, robots)


class LoopResult(NamedTuple):
    ac_g: ActorCritic
    ac_l: ActorCritic
    history: tuple[RoundRecord, ...]
    stop_reason: str  # "fixed_point" | "max_rounds"
    eta: float
    seconds: float
    curves: tuple[dict[str, list[float]], ...]  # per round: the learners' training returns

    @property
    def fixed_point(self) -> bool:
        return self.stop_reason == "fixed_point"


@partial(jax.jit, static_argnames=("env", "k", "horizon", "n_rollouts"))
def _returns(env: wh.ContinuousWarehouse, k: int, horizon: int, n_rollouts: int, pi_g: MLP, robots: Robots,
             key_data: jnp.ndarray) -> jnp.ndarray:
    return greedy_rollouts(env, k, horizon, n_rollouts, pi_g, robots, jax.random.wrap_key_data(key_data)).returns


def paired_returns(cfg: ContinuousConfig, k: int, pairs: list[tuple[MLP, Robots]], key: jax.Array) -> np.ndarray:
    """(len(pairs), cfg.loop_episodes) discounted returns of (pi_g, robots) pairs (`evaluate.robots_of`), every
    pair on the same episodes (through `compile_cache.exported_call`)."""
    static, key_data = (cfg.env, k, cfg.horizon, cfg.loop_episodes), jax.random.key_data(key)
    leaf = jax.tree_util.tree_structure(0.0)
    return np.stack([np.asarray(compile_cache.exported_call(_returns, static, (pi_g, robots, key_data), leaf))
                     for pi_g, robots in pairs])


def host_mlp(rng: np.random.Generator, sizes: tuple[int, ...], out_scale: float) -> MLP:
    """`nets.init_mlp`'s scheme (orthogonal weights, gain sqrt(2) inside and `out_scale` on the last layer,
    zero biases) drawn with NumPy on the host, in float32 there: the device version compiles one program per
    weight shape (~4 s of a single-threaded run's compilation), and so would a float64 -> float32 conversion."""
    layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        gain = out_scale if i == len(sizes) - 2 else float(np.sqrt(2.0))
        q, r = np.linalg.qr(rng.standard_normal((max(n_in, n_out), min(n_in, n_out))))
        q = q * np.sign(np.diag(r))
        w = q if n_in >= n_out else q.T
        layers.append({"w": jnp.asarray((gain * w).astype(np.float32)), "b": jnp.asarray(np.zeros(n_out, np.float32))})
    return tuple(layers)


def host_actor_critic(key: jax.Array, n_in: int, n_actions: int, hidden: tuple[int, ...]) -> ActorCritic:
    """`nets.init_actor_critic` (policy near-uniform, critic over n_in + 1 features) via `host_mlp`,
    seeded by the key's bits."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    return ActorCritic(host_mlp(rng, (n_in, *hidden, n_actions), 0.01), host_mlp(rng, (n_in + 1, *hidden, 1), 1.0))


START_KINDS = ("random", "l_first")


def initial_pair(cfg: ContinuousConfig, k: int, key: jax.Array, start: str = "random") -> Pair:
    """A starting pair. random: freshly initialised networks (near-uniform stochastic policies; their
    greedy actions are arbitrary). l_first: the same dispatcher, and robots first trained by an L-step
    against a dispatcher that commits to a uniformly drawn target for each episode (so that the robots'
    training visits every s_g; the tabular loop's l_first start, averaged over the targets)."""
    if start not in START_KINDS:
        raise InputError(f"unknown start {start!r}; starts are {START_KINDS}")
    k_g, k_l, k_pre = jax.random.split(key, 3)
    env = cfg.env
    ac_g = host_actor_critic(k_g, n_features_g(env), env.n_ga, cfg.hidden_g)
    ac_l = host_actor_critic(k_l, N_FEATURES_L, env.n_al, cfg.hidden_l)
    if start == "l_first":
        ac_l, _ = br.learn_local(env, k, cfg.l_step, ac_g.pi, ac_l, robots_of(env, ac_l.pi, cfg.grid), k_pre,
                                 committed=True)
    return ac_g, ac_l


def run_loop(cfg: ContinuousConfig, k: int, pair: Pair, key: jax.Array,
             on_round: Callable[[RoundRecord], None] | None = None,
             trained: tuple[bool, bool] = (False, False)) -> LoopResult:
    """The alternation from `pair` for at most cfg.rounds rounds (UPDATE rule `cfg.rule`, two_eta).
    trained: whether an earlier step already trained the pair's dispatcher / robots (their first steps then
    run `refine_iterations`, `PPOConfig.iterations_from`; later ones after an acceptance of the player too)."""
    t_start = time.perf_counter()
    rule: UpdateRule = cfg.rule
    eta = rule.eta(k, wh.value_scale(cfg.env))
    z, threshold = rule.z, 2 * eta
    ac_g, ac_l = pair
    robots = robots_of(cfg.env, ac_l.pi, cfg.grid)  # the incumbent robots, as every step and comparison reads them
    versions = [0, 0]
    refine = list(trained)  # per player: does its next step continue from a trained incumbent
    counter = [0]

    def fresh_key() -> jax.Array:
        counter[0] += 1
        return jax.random.fold_in(key, 1_000_000 + counter[0])

    value = Estimate.of(paired_returns(cfg, k, [(ac_g.pi, robots)], fresh_key())[0])

    def compare(player: str, proposal: tuple[MLP, Robots]) -> Comparison:
        returns = paired_returns(cfg, k, [proposal, (ac_g.pi, robots)], fresh_key())
        diff = Estimate.of(returns[0] - returns[1])
        lcb, ucb = diff.mean - z * diff.stderr, diff.mean + z * diff.stderr
        index = 0 if player == "global" else 1
        new = (versions[0] + (index == 0), versions[1] + (index == 1))
        return Comparison(player, (versions[0], versions[1]), new, diff, lcb, ucb, threshold, lcb > threshold)

    history: list[RoundRecord] = []
    curves: list[dict[str, list[float]]] = []
    stop = "max_rounds"
    for rnd in range(1, cfg.rounds + 1):
        t0 = time.perf_counter()
        k_g, k_l = jax.random.split(jax.random.fold_in(key, rnd))
        n_g, n_l = cfg.g_step.iterations_from(refine[0]), cfg.l_step.iterations_from(refine[1])
        cand_g, stats_g = br.learn_global(cfg.env, k, cfg.g_step, ac_g, robots, k_g, n_g)
        cmp_g = compare("global", (cand_g.pi, robots))
        if cmp_g.accepted:
            ac_g, versions[0] = cand_g, versions[0] + 1
        cand_l, stats_l = br.learn_local(cfg.env, k, cfg.l_step, ac_g.pi, ac_l, robots, k_l, iterations=n_l)
        cand_robots = robots_of(cfg.env, cand_l.pi, cfg.grid)
        cmp_l = compare("local", (ac_g.pi, cand_robots))
        if cmp_l.accepted:
            ac_l, robots, versions[1] = cand_l, cand_robots, versions[1] + 1
        refine = [cmp_g.accepted, cmp_l.accepted]
        if cmp_g.accepted or cmp_l.accepted:
            value = Estimate.of(paired_returns(cfg, k, [(ac_g.pi, robots)], fresh_key())[0])
        record = RoundRecord(rnd, (cmp_g, cmp_l), value, time.perf_counter() - t0)
        history.append(record)
        curves.append({"g_step_returns": list(stats_g.returns), "l_step_returns": list(stats_l.returns)})
        if on_round is not None:
            on_round(record)
        if not (cmp_g.accepted or cmp_l.accepted) and (n_g, n_l) == (cfg.g_step.iterations, cfg.l_step.iterations):
            stop = "fixed_point"
            break
    return LoopResult(ac_g, ac_l, tuple(history), stop, eta, time.perf_counter() - t_start, tuple(curves))


class Trained(NamedTuple):
    """The outcome of `train`: the selected pair and every start's loop and welfare."""

    ac_g: ActorCritic
    ac_l: ActorCritic
    k: int
    seed: int
    chosen: int
    starts: tuple[str, ...]
    loops: tuple[LoopResult, ...]
    welfare: tuple[Estimate, ...]  # each start's final pair on common selection episodes (training keys)
    seconds: float

    def record(self) -> dict[str, object]:
        """JSON-ready summary: rounds with paired comparisons, stop reasons, selection."""
        return {"k": self.k, "seed": self.seed, "chosen_start": self.chosen, "seconds": self.seconds,
                "starts": [{"start": st, "stop_reason": lp.stop_reason, "eta": lp.eta, "seconds": lp.seconds,
                            "welfare": w._asdict(), "rounds": [r.to_dict() for r in lp.history],
                            "curves": list(lp.curves)}
                           for st, lp, w in zip(self.starts, self.loops, self.welfare, strict=True)]}


def train(cfg: ContinuousConfig, k: int, seed: int,
          on_round: Callable[[RoundRecord], None] | None = None) -> Trained:
    """ALTERNATING-MARL with neural policies at budget k from each of `cfg.starts`; keeps the
    start with the best welfare among those at a fixed point (among all when none is), measured on
    common episodes drawn from the training seed's keys (never the evaluation protocol's)."""
    if not 1 <= k <= cfg.env.n_agents:
        raise InputError(f"k must lie in [1, n_agents = {cfg.env.n_agents}], got {k}")
    t0 = time.perf_counter()
    base = train_key(seed)
    loops = []
    for s, start in enumerate(cfg.starts):
        k_init, k_loop = jax.random.split(jax.random.fold_in(base, s))
        loops.append(run_loop(cfg, k, initial_pair(cfg, k, k_init, start), k_loop, on_round,
                              trained=(False, start == "l_first")))
    welfare: tuple[Estimate, ...]
    if len(loops) == 1:
        welfare = (loops[0].history[-1].value,)
    else:
        pairs = [(lp.ac_g.pi, robots_of(cfg.env, lp.ac_l.pi, cfg.grid)) for lp in loops]
        rets = paired_returns(cfg, k, pairs, jax.random.fold_in(base, 999_999))
        welfare = tuple(Estimate.of(r) for r in rets)
    pool = [i for i, lp in enumerate(loops) if lp.fixed_point] or list(range(len(loops)))
    chosen = max(pool, key=lambda i: welfare[i].mean)
    best = loops[chosen]
    return Trained(best.ac_g, best.ac_l, k, seed, chosen, tuple(cfg.starts), tuple(loops), welfare,
                   time.perf_counter() - t0)
