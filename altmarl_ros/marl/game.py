"""The cooperative global-local Markov game as frozen, validated data (PAPER.md 1.1).

Axis convention, stated once for the whole library: the next state is always the LAST axis.

    P_g[s_g, a_g, s_g']          (S_g, A_g, S_g)
    P_l[s_l, s_g, a_l, s_l']     (S_l, S_g, A_l, S_l)
    r_g[s_g, a_g]                (S_g, A_g)
    r_l[s_l, s_g, a_l]           (S_l, S_g, A_l)

The system reward is r_g(s_g, a_g) + (1/n) sum_i r_l(s_i, s_g, a_i) (the paper's Eq. 1). n and k are
run parameters, not fields of the game.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from altmarl_ros.errors import InputError

_ATOL = 1e-8


def _as_readonly(name: str, value: object, ndim: int) -> np.ndarray:
    arr = np.array(value, dtype=np.float64)
    if arr.ndim != ndim:
        raise InputError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or infinite entries")
    arr.setflags(write=False)
    return arr


def _check_stochastic(name: str, arr: np.ndarray) -> None:
    if np.any(arr < 0):
        raise InputError(f"{name} has negative probabilities (min {arr.min():.3g})")
    sums = arr.sum(axis=-1)
    bad = np.abs(sums - 1.0) > 1e-6
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{name}{list(where)} sums to {sums[where]:.6g}, not 1 (last axis is the next state)")


class GameLabels(NamedTuple):
    """Names of the global states, global actions, local states and local actions, in index order."""

    global_states: tuple[str, ...]
    global_actions: tuple[str, ...]
    local_states: tuple[str, ...]
    local_actions: tuple[str, ...]


def _check_labels(labels: GameLabels | None, S_g: int, A_g: int, S_l: int, A_l: int) -> GameLabels:
    sizes = (S_g, A_g, S_l, A_l)
    if labels is None:
        return GameLabels(*(tuple(str(i) for i in range(size)) for size in sizes))
    labels = GameLabels(*(tuple(names) for names in labels))
    for field_name, names, size in zip(GameLabels._fields, labels, sizes, strict=True):
        if len(names) != size:
            raise InputError(f"labels.{field_name} has {len(names)} names for {size} entries")
        if len(set(names)) != size or not all(isinstance(x, str) and x for x in names):
            raise InputError(f"labels.{field_name} must be distinct non-empty strings, got {list(names)}")
    return labels


@dataclass(frozen=True, eq=False)
class TabularGame:
    """Finite cooperative game between one global agent and n homogeneous local agents.

    Attributes
    ----------
    P_g : (S_g, A_g, S_g) global transition P_g(s_g' | s_g, a_g).
    P_l : (S_l, S_g, A_l, S_l) local transition P_l(s_l' | s_l, s_g, a_l).
    r_g : (S_g, A_g) global reward.
    r_l : (S_l, S_g, A_l) local reward.
    gamma : discount factor in [0, 1).
    init_g : (S_g,) distribution of s_g(0).
    init_l_concentration : Dirichlet concentration of the initial population: each episode draws a
        population distribution mu_0 ~ Dirichlet(c * 1) and then s_i(0) ~ mu_0 i.i.d. (PAPER.md 7.4).
        0 means "no Dirichlet": s_i(0) ~ uniform.
    name : label used in logs and artifact metadata.
    labels : names of the states and actions (not part of the fingerprint); None at construction means
        "0", "1", ...; after construction it is always a GameLabels (use `game.names`).
    """

    P_g: np.ndarray
    P_l: np.ndarray
    r_g: np.ndarray
    r_l: np.ndarray
    gamma: float
    init_g: np.ndarray
    init_l_concentration: float = 0.0
    name: str = "custom"
    labels: GameLabels | None = None
    _fingerprint: str = field(init=False, repr=False, default="")

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        P_g = _as_readonly("P_g", self.P_g, 3)
        P_l = _as_readonly("P_l", self.P_l, 4)
        r_g = _as_readonly("r_g", self.r_g, 2)
        r_l = _as_readonly("r_l", self.r_l, 3)
        init_g = _as_readonly("init_g", self.init_g, 1)
        S_g, A_g, S_g2 = P_g.shape
        if S_g2 != S_g:
            raise InputError(f"P_g must have shape (S_g, A_g, S_g), got {P_g.shape}")
        S_l, S_g3, A_l, S_l2 = P_l.shape
        if S_g3 != S_g or S_l2 != S_l:
            raise InputError(f"P_l must have shape (S_l, S_g={S_g}, A_l, S_l), got {P_l.shape}")
        if r_g.shape != (S_g, A_g):
            raise InputError(f"r_g must have shape (S_g, A_g) = {(S_g, A_g)}, got {r_g.shape}")
        if r_l.shape != (S_l, S_g, A_l):
            raise InputError(f"r_l must have shape (S_l, S_g, A_l) = {(S_l, S_g, A_l)}, got {r_l.shape}")
        if init_g.shape != (S_g,):
            raise InputError(f"init_g must have shape (S_g,) = ({S_g},), got {init_g.shape}")
        _check_stochastic("P_g", P_g)
        _check_stochastic("P_l", P_l)
        _check_stochastic("init_g", init_g)
        if not (isinstance(self.gamma, (int, float)) and 0.0 <= float(self.gamma) < 1.0):
            raise InputError(f"gamma must be in [0, 1), got {self.gamma!r}")
        if not (np.isfinite(self.init_l_concentration) and self.init_l_concentration >= 0):
            raise InputError(f"init_l_concentration must be >= 0, got {self.init_l_concentration!r}")
        for name, arr in (("P_g", P_g), ("P_l", P_l), ("r_g", r_g), ("r_l", r_l), ("init_g", init_g)):
            set_(self, name, arr)
        set_(self, "labels", _check_labels(self.labels, S_g, A_g, S_l, A_l))
        set_(self, "gamma", float(self.gamma))
        set_(self, "init_l_concentration", float(self.init_l_concentration))
        digest = hashlib.sha256()
        for arr in (P_g, P_l, r_g, r_l, init_g):
            digest.update(np.ascontiguousarray(arr).tobytes())
        digest.update(repr((self.gamma, self.init_l_concentration)).encode())
        set_(self, "_fingerprint", digest.hexdigest()[:16])

    @property
    def n_global_states(self) -> int:
        return self.P_g.shape[0]

    @property
    def n_global_actions(self) -> int:
        return self.P_g.shape[1]

    @property
    def n_local_states(self) -> int:
        return self.P_l.shape[0]

    @property
    def n_local_actions(self) -> int:
        return self.P_l.shape[2]

    @property
    def names(self) -> GameLabels:
        """The state and action names (GameLabels)."""
        assert self.labels is not None  # set in __post_init__
        return self.labels

    @property
    def fingerprint(self) -> str:
        """Hash of every array and scalar that defines the dynamics; artifacts are checked against it."""
        return self._fingerprint

    def sample_population(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """Draw the initial population distribution mu_0 per episode, shape (batch, S_l)."""
        S_l = self.n_local_states
        if self.init_l_concentration == 0.0:
            return np.full((batch, S_l), 1.0 / S_l)
        return rng.dirichlet(np.full(S_l, self.init_l_concentration), size=batch)


class LocalMarginal(NamedTuple):
    P_tilde: np.ndarray  # (S_l, S_g, S_l') P~_l(s_l' | s_l, s_g)
    r_tilde: np.ndarray  # (S_l, S_g) r~_l(s_l, s_g)


def marginal_local(game: TabularGame, pi_l: np.ndarray) -> LocalMarginal:
    """Marginalise the local action under pi_l.

    Parameters
    ----------
    pi_l : (S_g, S_l, A_l) local policy probabilities pi_l(a_l | s_l, s_g).

    Returns
    -------
    P_tilde : (S_l, S_g, S_l) P~_l(s_l' | s_l, s_g) = sum_a pi_l(a | s_l, s_g) P_l(s_l' | s_l, s_g, a).
    r_tilde : (S_l, S_g) r~_l(s_l, s_g) = sum_a pi_l(a | s_l, s_g) r_l(s_l, s_g, a).
    """
    pi = np.transpose(pi_l, (1, 0, 2))  # (S_l, S_g, A_l)
    P_tilde = np.einsum("lga,lgam->lgm", pi, game.P_l)
    r_tilde = np.einsum("lga,lga->lg", pi, game.r_l)
    return LocalMarginal(P_tilde, r_tilde)
