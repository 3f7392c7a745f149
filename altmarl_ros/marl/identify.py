"""System identification of the game's transition kernels from recorded transitions (ROS-free).

From recorded decision steps (s_g, a_g, s_g') and, per robot, (s_l, a_l, s_l'), the counts
N_l[s_l, s_g, a_l, s_l'] and N_g[s_g, a_g, s_g'] give, row by row, a Dirichlet posterior

    P(. | row) ~ Dirichlet(alpha_row + N_row),   alpha_row = strength * prior_row

with prior_row the nominal game's row (`prior="nominal"`: rows never visited keep the model's
prediction) or uniform (`prior="uniform"`), and `strength` pseudo-counts per row. Reported per entry:
the posterior mean and a credible interval from the entry's Beta marginal Beta(a_j, a_0 - a_j)
(equal-tailed; [0, q_level] where a_j <= 1, i.e. the density decreases from 0; per entry, not
simultaneous over a row); per row: the count.

The identified game is the nominal game with P_l replaced by the posterior mean (rewards, P_g, gamma
and the initial law are kept: P_g is the warehouse's dispatcher process, checked here, not replaced,
unless asked). Total variation between kernels is reported per row, 0.5 * sum_j |P_j - Q_j|, and
averaged with weights (visit counts, or uniform over rows).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import stats

from altmarl_ros.errors import InputError
from altmarl_ros.marl.artifacts import atomic_write_text
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games.files import write_game_file

PRIORS = ("nominal", "uniform")


class Transitions(NamedTuple):
    """Recorded decision steps. T steps, n robots; a_l < 0 marks a robot without a usable answer/next zone.

    s_g, a_g, s_g_next: (T,) ints (a_g < 0: no command recorded); s_l, a_l, s_l_next: (T, n) ints.
    """

    s_g: np.ndarray
    a_g: np.ndarray
    s_g_next: np.ndarray
    s_l: np.ndarray
    a_l: np.ndarray
    s_l_next: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.s_g.shape[0])

    def head(self, steps: int) -> Transitions:
        """The first `steps` decision steps."""
        return Transitions(*(x[:steps] for x in self))

    @staticmethod
    def concatenate(parts: list[Transitions]) -> Transitions:
        """Steps of several runs of the same robots (n must agree)."""
        return Transitions(*(np.concatenate([getattr(p, f) for p in parts]) for f in Transitions._fields))


def local_counts(tr: Transitions, shape: tuple[int, int, int]) -> np.ndarray:
    """N_l (S_l, S_g, A_l, S_l'): transitions of every robot with a recorded action and next zone."""
    S_l, S_g, A_l = shape
    s_g = np.broadcast_to(tr.s_g[:, None], tr.s_l.shape)
    ok = (tr.a_l >= 0) & (tr.s_l_next >= 0)
    flat = ((tr.s_l[ok] * S_g + s_g[ok]) * A_l + tr.a_l[ok]) * S_l + tr.s_l_next[ok]
    return np.bincount(flat, minlength=S_l * S_g * A_l * S_l).reshape(S_l, S_g, A_l, S_l).astype(np.float64)


def global_counts(tr: Transitions, shape: tuple[int, int]) -> np.ndarray:
    """N_g (S_g, A_g, S_g'): decision steps with a recorded command and next global state."""
    S_g, A_g = shape
    ok = (tr.a_g >= 0) & (tr.s_g_next >= 0)
    flat = (tr.s_g[ok] * A_g + tr.a_g[ok]) * S_g + tr.s_g_next[ok]
    return np.bincount(flat, minlength=S_g * A_g * S_g).reshape(S_g, A_g, S_g).astype(np.float64)


@dataclass(frozen=True)
class Posterior:
    """Dirichlet posterior of a transition kernel, row by row (next state on the last axis)."""

    mean: np.ndarray  # posterior mean, rows sum to 1
    lower: np.ndarray  # equal-tailed credible interval per entry (Beta marginal)
    upper: np.ndarray
    counts: np.ndarray  # N
    alpha: np.ndarray  # prior pseudo-counts
    level: float

    @property
    def row_counts(self) -> np.ndarray:
        return self.counts.sum(-1)

    def covers(self, P: np.ndarray, min_count: float = 1.0) -> float:
        """Fraction of entries of P inside their intervals, over rows visited at least `min_count` times."""
        rows = self.row_counts >= min_count
        low, high = self.lower - 1e-12, self.upper + 1e-12
        inside = np.greater_equal(P, low) & np.less_equal(P, high)
        return float(inside[rows].mean()) if rows.any() else float("nan")


def dirichlet_posterior(counts: np.ndarray, prior_rows: np.ndarray, *, strength: float,
                        level: float = 0.95) -> Posterior:
    """Posterior of each row given counts (..., S) and prior mean rows (..., S) with `strength` pseudo-counts."""
    if not strength > 0:
        raise InputError(f"prior strength must be > 0, got {strength}")
    if not 0 < level < 1:
        raise InputError(f"credible level must be in (0, 1), got {level}")
    alpha = strength * np.asarray(prior_rows, dtype=np.float64)
    alpha = np.maximum(alpha, 1e-9)  # a zero prior entry would make its Beta marginal degenerate
    a = alpha + counts
    a0 = a.sum(-1, keepdims=True)
    tail = (1 - level) / 2
    # equal-tailed where the marginal density has an interior mode; where a_j <= 1 it decreases from 0, and
    # the highest-density interval [0, q_level] is the right one (an entry never seen may well be 0)
    monotone = a <= 1
    lower = np.where(monotone, 0.0, stats.beta.ppf(tail, a, a0 - a))
    upper = np.where(monotone, stats.beta.ppf(level, a, a0 - a), stats.beta.ppf(1 - tail, a, a0 - a))
    return Posterior(a / a0, lower, upper, counts, alpha, level)


def tv_rows(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Total variation 0.5 * sum |P - Q| over the last axis, per row."""
    return 0.5 * np.abs(np.asarray(P) - np.asarray(Q)).sum(-1)


def mean_tv(P: np.ndarray, Q: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Row-averaged TV; `weights` (rows' shape) e.g. visit counts; None = every row alike."""
    tv = tv_rows(P, Q)
    if weights is None:
        return float(tv.mean())
    w = np.asarray(weights, dtype=np.float64)
    return float((tv * w).sum() / w.sum()) if w.sum() > 0 else float("nan")


class Identification(NamedTuple):
    game: TabularGame  # the identified game (nominal with P_l, and P_g if asked, replaced)
    P_l: Posterior
    P_g: Posterior
    steps: int
    robot_transitions: int
    report: dict  # JSON-ready summary (see `identify`)


def identify(tr: Transitions, nominal: TabularGame, *, prior: str = "nominal", strength: float = 5.0,
             level: float = 0.95, replace_P_g: bool = False) -> Identification:
    """Estimate P_l (and check P_g) from transitions; see the module docstring."""
    if prior not in PRIORS:
        raise InputError(f"prior must be one of {PRIORS}, got {prior!r}")
    S_l, S_g, A_l, A_g = (nominal.n_local_states, nominal.n_global_states, nominal.n_local_actions,
                          nominal.n_global_actions)
    for name, arr, high in (("s_g", tr.s_g, S_g), ("s_g_next", tr.s_g_next, S_g), ("s_l", tr.s_l, S_l),
                            ("s_l_next", tr.s_l_next, S_l), ("a_l", tr.a_l, A_l), ("a_g", tr.a_g, A_g)):
        if arr.size and arr.max() >= high:
            raise InputError(f"recorded {name} reaches {int(arr.max())}, but the game has {high}")
    N_l = local_counts(tr, (S_l, S_g, A_l))
    N_g = global_counts(tr, (S_g, A_g))
    if N_l.sum() == 0:
        raise InputError("no robot transition could be recovered (no step with a zone, an answer and a next zone)")
    prior_l = nominal.P_l if prior == "nominal" else np.full(N_l.shape, 1.0 / S_l)
    prior_g = nominal.P_g if prior == "nominal" else np.full(N_g.shape, 1.0 / S_g)
    post_l = dirichlet_posterior(N_l, prior_l, strength=strength, level=level)
    post_g = dirichlet_posterior(N_g, prior_g, strength=strength, level=level)
    game = TabularGame(P_g=post_g.mean if replace_P_g else nominal.P_g, P_l=post_l.mean, r_g=nominal.r_g,
                       r_l=nominal.r_l, gamma=nominal.gamma, init_g=nominal.init_g,
                       init_l_concentration=nominal.init_l_concentration, name=f"{nominal.name} identified",
                       labels=nominal.names)
    visited_l = post_l.row_counts > 0
    report = {
        "steps": tr.steps, "robot_transitions": int(N_l.sum()), "global_transitions": int(N_g.sum()),
        "prior": prior, "prior_strength": strength, "credible_level": level, "replaced_P_g": replace_P_g,
        "P_l_rows": int(visited_l.size), "P_l_rows_visited": int(visited_l.sum()),
        "P_l_row_count_min_visited": float(post_l.row_counts[visited_l].min()) if visited_l.any() else 0.0,
        "P_l_tv_to_nominal_visit_weighted": mean_tv(post_l.mean, nominal.P_l, post_l.row_counts),
        "P_l_max_tv_to_nominal_visited": float(tv_rows(post_l.mean, nominal.P_l)[visited_l].max())
        if visited_l.any() else float("nan"),
        "P_g_tv_to_nominal_visit_weighted": mean_tv(post_g.mean, nominal.P_g, post_g.row_counts),
        "P_g_nominal_inside_intervals": post_g.covers(nominal.P_g),
        "P_l_nominal_inside_intervals": post_l.covers(nominal.P_l),
    }
    return Identification(game, post_l, post_g, tr.steps, int(N_l.sum()), report)


def combine_runs(parts: Sequence[Transitions]) -> Transitions:
    """The steps of several runs in order; runs of smaller swarms are padded to the largest n with robots
    that have no usable transition (s_l 0, a_l and s_l_next -1)."""
    n = max(p.s_l.shape[1] for p in parts)
    padded = [p if p.s_l.shape[1] == n else
              Transitions(p.s_g, p.a_g, p.s_g_next, *(np.pad(x, ((0, 0), (0, n - x.shape[1])), constant_values=c)
                                                      for x, c in ((p.s_l, 0), (p.a_l, -1), (p.s_l_next, -1))))
              for p in parts]
    return Transitions.concatenate(padded)


def write_identification(out: str | Path, result: Identification, *, sources: Sequence[str],
                         nominal_name: str) -> dict:
    """Write the identified game file `out` (YAML, trainable with `altmarl train --game out`) and
    STEM.identify.json (the report, every source and the posterior tables), each atomically; return the
    report (without the tables)."""
    out = Path(out)
    report = {"bags": list(sources), "nominal_game": nominal_name, **result.report}
    prior, strength, level = result.report["prior"], result.report["prior_strength"], result.report["credible_level"]
    description = (f"P_l identified by `altmarl identify` from {len(sources)} bag(s): {result.steps} decision steps, "
                   f"{result.robot_transitions} robot transitions; Dirichlet prior {prior} x {strength}"
                   f"; rewards, P_g, gamma and initial law of {nominal_name}; counts and {level:.0%} intervals in "
                   f"{out.with_suffix('.identify.json').name}")
    write_game_file(out, result.game, description=description)
    tables = {name: {"counts": post.counts.tolist(), "mean": post.mean.tolist(), "lower": post.lower.tolist(),
                     "upper": post.upper.tolist(), "axes": axes}
              for name, post, axes in (("P_l", result.P_l, ["s_l", "s_g", "a_l", "s_l_next"]),
                                       ("P_g", result.P_g, ["s_g", "a_g", "s_g_next"]))}
    atomic_write_text(out.with_suffix(".identify.json"), json.dumps({**report, "tables": tables}) + "\n")
    return report

