"""The alternating loop's learners and starting pairs for one training run (`experiments.train_policies`).

`GlobalLearner` (G-LEARN, PAPER.md Algorithm 1, cached per pi_l) and `LocalLearner` (L-LEARN) are the
functions `learners.alternate.alternate` calls; `start_pair` builds the pair a start (config.Start) begins from;
`restart` runs the restarts after selection (loop.refine, loop.oracle_max_k).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import numpy as np

from altmarl_ros.marl import sim
from altmarl_ros.marl.config import ConfigError, GLearnConfig, LLearnConfig, Start, StartKind
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.learners.alternate import Selection
from altmarl_ros.marl.learners.g_learn import Stopping, Transition, g_learn
from altmarl_ros.marl.learners.l_learn import chase_policy, l_learn, l_learn_authors
from altmarl_ros.marl.policy import FullInformationPolicy, TabularGlobalPolicy, TabularLocalPolicy
from altmarl_ros.marl.posterior import full_information_response, posterior_dispatcher, response_and_q
from altmarl_ros.marl.restricted import restricted_proposal


class Reference(NamedTuple):
    """The full-information reference pair a start can begin from, and its G-LEARN values when kept."""

    pi_g: FullInformationPolicy
    pi_l: TabularLocalPolicy
    V: np.ndarray | None = None  # (S_g, D_K) G-LEARN's V against pi_l (None: recomputed when needed)
    response: FullInformationPolicy | None = None  # the greedy table of that solve (G-LEARN's response to pi_l)
    Q: np.ndarray | None = None  # (S_g, D_K, A_g) `posterior.reference_q` at V (None: computed from V when needed)
    # the full-information responses to other robots, with their Q, shared by every k trained from this reference
    # (by (pi_l table, K): the restarts of different k often start from the same robots); `RESPONSES_KEPT` at most
    responses: dict[tuple[bytes, int], tuple[FullInformationPolicy, np.ndarray]] | None = None


RESPONSES_KEPT = 4  # ~80 MB each at K = 50 (Q and the table)


class GlobalLearner:
    """G-LEARN as the loop's global learner for one training run: each distinct pi_l is solved once
    (cached by its table), with samples from a generator seeded by (seed, pi_l) and, when
    g_learn.warm_start, from the V of the previous solve. Full information: the deterministic mean-field
    transition at `k` (no warm start) and policies wrapped in `FullInformationPolicy`."""

    def __init__(self, game: TabularGame, config: GLearnConfig, *, k: int, seed: int, full_information: bool,
                 n_agents: int = 1000, horizon: int = 50, ordering: sim.Ordering = "paper") -> None:
        self.game, self.config, self.k, self.seed = game, config, k, seed
        # the n-agent system, for the restricted best-response refinement and the posterior dispatcher
        self.n_agents, self.horizon, self.ordering = n_agents, horizon, ordering
        self.full_information = full_information
        self.cache: dict[bytes, Any] = {}
        self.V: np.ndarray | None = None  # the last solve's values (warm start)
        self.values: dict[bytes, np.ndarray] = {}  # full information: each solve's V (the posterior start's Q)
        self.posteriors: dict[tuple[bytes, bytes], TabularGlobalPolicy] = {}  # by (full-information table, pi_l)

    def __call__(self, pi_l: TabularLocalPolicy) -> Any:
        key = pi_l.probs.tobytes()
        if key in self.cache:
            return self.cache[key]
        gc = self.config
        if self.full_information:
            self.cache[key], solved = full_information_response(self.game, pi_l, K=self.k, tol=gc.tol,
                                                                max_iter=gc.max_iter)
            self.values[key] = solved.V
        else:
            result = g_learn(self.game, pi_l, k=self.k, rng=np.random.default_rng([self.seed, zlib.crc32(key)]),
                             transition=cast(Transition, gc.transition), m=gc.m, tol=gc.tol, max_iter=gc.max_iter,
                             stopping=cast(Stopping, gc.stopping), V0=self.V if gc.warm_start else None)
            self.V = result.V
            pi_g = result.pi_g
            if gc.restricted:  # issue 15: the restricted best response from G-LEARN's table
                pi_g = restricted_proposal(self.game, pi_l, pi_g, n_agents=self.n_agents, horizon=self.horizon,
                                           rng=np.random.default_rng([self.seed, zlib.crc32(key), 15]))
            self.cache[key] = pi_g
        return self.cache[key]

    def posterior(self, reference: Reference) -> TabularGlobalPolicy:
        """The posterior dispatcher for this learner's k-samples from the reference pair (`marl.posterior`)."""
        return self._project(reference.pi_g, reference.pi_l, Q=reference.Q, V=reference.V)

    def posterior_response(self, pi_l: TabularLocalPolicy, K: int, reference: Reference | None = None
                           ) -> TabularGlobalPolicy:
        """`posterior.posterior_response` to pi_l with full information on counts of K. From the reference's robots,
        the reference's own solve is reused (the same G-LEARN call) and, when its dispatcher is that solve's
        response, the projection is the posterior start's (same table, same occupancy episodes): computed once. To
        other robots, the response and its Q are kept with the reference (`Reference.responses`) for the other k."""
        if reference is not None and reference.response is not None and reference.V is not None and \
                np.array_equal(pi_l.probs, reference.pi_l.probs):
            return self._project(reference.response, pi_l, Q=reference.Q, V=reference.V)
        memo = {} if reference is None or reference.responses is None else reference.responses
        key = (pi_l.probs.tobytes(), K)
        if key not in memo:
            if len(memo) >= RESPONSES_KEPT:
                memo.pop(next(iter(memo)))  # the oldest
            memo[key] = response_and_q(self.game, pi_l, K=K, tol=self.config.tol, max_iter=self.config.max_iter)
        best, Q = memo[key]
        return self._project(best, pi_l, Q=Q)

    def _project(self, best: FullInformationPolicy, pi_l: TabularLocalPolicy, *, Q: np.ndarray | None = None,
                 V: np.ndarray | None = None) -> TabularGlobalPolicy:
        """`posterior_dispatcher` from (best, pi_l) with best's action values Q (None: computed from V, or solved),
        memoised by both tables (its occupancy episodes are always drawn from the generator (seed, 16))."""
        key = (best.pi_g.actions.tobytes(), pi_l.probs.tobytes())
        if key not in self.posteriors:
            gc = self.config
            self.posteriors[key] = posterior_dispatcher(
                self.game, best, pi_l, k=self.k, rng=np.random.default_rng([self.seed, 16]), n_agents=self.n_agents,
                horizon=self.horizon, tol=gc.tol, max_iter=gc.max_iter, ordering=self.ordering, V=V, Q=Q)
        return self.posteriors[key]

    def constant(self, a_g: int) -> Any:
        """The constant dispatcher a_g over this learner's count vectors."""
        S_g, S_l, A_g = self.game.n_global_states, self.game.n_local_states, self.game.n_global_actions
        pi = TabularGlobalPolicy.constant(a_g, n_global_states=S_g, n_local_states=S_l, n_global_actions=A_g,
                                          k=self.k)
        return FullInformationPolicy(pi) if self.full_information else pi


@dataclass(frozen=True)
class LocalLearner:
    """L-LEARN as the loop's local learner: config.kind "induced" (exact) or "authors" (PAPER.md 2.7)."""

    game: TabularGame
    config: LLearnConfig

    def __call__(self, pi_g: Any, pi_l: TabularLocalPolicy) -> TabularLocalPolicy:
        lc = self.config
        if lc.kind == "authors":
            return l_learn_authors(self.game, pi_g, pi_l, n_mc=lc.n_mc, mc_seed=lc.mc_seed, mu_iters=lc.mu_iters,
                                   max_iter=lc.max_iter, tau_scale=lc.tau_scale, tau_min=lc.tau_min).pi_l
        return l_learn(self.game, pi_g, pi_l, tol=lc.tol).pi_l


def start_pair(start: Start, game: TabularGame, learn_global: GlobalLearner, learn_local: LocalLearner,
               reference: Reference | None) -> tuple[Any, TabularLocalPolicy]:
    """(pi_g0, pi_l0) of one start (see LoopConfig.starts); `reference` is the full-information reference
    pair, needed by the full_information and posterior starts only."""
    uniform = TabularLocalPolicy.uniform(game.n_global_states, game.n_local_states, game.n_local_actions)
    kind = start.kind
    if kind is StartKind.CONSTANT:
        return learn_global.constant(start.action), uniform
    if kind is StartKind.L_FIRST:
        pi_g0 = learn_global.constant(start.action)
        return pi_g0, learn_local(pi_g0, uniform)
    if kind is StartKind.G_FIRST:
        return learn_global(uniform), uniform
    if kind is StartKind.CHASE:
        return learn_global.constant(0), chase_policy(game)
    if kind is StartKind.FULL_INFORMATION and reference is not None:
        return learn_global(reference.pi_l), reference.pi_l
    if kind is StartKind.POSTERIOR and reference is not None:
        return learn_global.posterior(reference), reference.pi_l
    raise ConfigError(f"start {start.name!r} cannot be used here")


def restart(selection: Selection, select: Callable[[], Selection],
            respond: Callable[[Any, TabularLocalPolicy], TabularGlobalPolicy],
            run: Callable[[str, Any, TabularLocalPolicy], None], *, restarts: int, name: str,
            tied_z: float | None = None) -> Selection:
    """From `selection`, up to `restarts` times run the alternation again from (respond(pi_g, pi_l), pi_l) of the
    best fixed point as start "<name>:<r>" and `select()` again among all runs, stopping when the response is
    pi_g itself or the restart did not become the best (loop.refine: `respond` is the posterior response;
    loop.oracle_max_k: the restricted best response). With `tied_z` (loop.refine_from: tied), the same chain also
    begins from every other fixed point of `selection` that is not significantly below the best
    (`Selection.tied(tied_z)`), so which of two nearly equal fixed points the selection's noise ranks first does
    not decide where the restarts begin."""
    origins = [selection.chosen] if tied_z is None else selection.tied(tied_z)
    count, started = 0, set()
    for origin in origins:
        pair = selection.outcomes[origin].result
        for _ in range(restarts):
            pi_g0 = respond(pair.pi_g, pair.pi_l)
            key = (pi_g0.actions.tobytes(), pair.pi_l.probs.tobytes())
            if np.array_equal(pi_g0.actions, pair.pi_g.actions) or key in started:  # nothing new to run
                break
            started.add(key)
            count += 1
            run(f"{name}:{count}", pi_g0, pair.pi_l)
            selection = select()
            if selection.chosen != len(selection.outcomes) - 1:
                break
            pair = selection.best.result
    return selection
