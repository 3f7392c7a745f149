"""The participation game: only the k polled clients can contribute (issue 18); a library extension.

The global-local game (marl/game.py) lets every agent act every step and draws the global agent's k
observed agents independently of who acts. Federated learning with a participation budget is not of
that form: each round the server polls k of n clients, only those k can upload, and the server acts on
what those same k report. A `ParticipationGame` holds the two client kernels that describe it

    P_polled[s_l, s_g, a_l, s_l']   a polled client that played a_l (it may upload)
    Q_unpolled[s_l, s_g, s_l']      a client not polled this round (it cannot act on the model)

with the server kernel P_g[s_g, a_g, s_g'] and rewards r_g[s_g, a_g], r_polled[s_l, s_g, a_l] (an
unpolled client earns and pays nothing). `tabular(k)` reduces it to the `TabularGame` the trainer
(experiments.train_policies) takes, for participation budget k of n:

    P_l = (k/n) P_polled + (1 - k/n) Q_unpolled,   r_l = (k/n) r_polled

which is each client's exact one-round law under uniform polling (a client is polled with
probability k/n whatever its state). What the reduction drops, and the Flower runs keep: the polled
set is the observed set (the server's k reports come from the clients that will act), and the
server's progress depends on the uploads it receives. The reduction's P_g is the progress law
identified from runs (the marginal over the fleets seen), and the value of an upload is in r_polled
(identified per client state and quality level by `fit_upload_value`).

Names: s_g = quality bucket x phase (e.g. "q2_train"), a_g = the phase of the next round.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from altmarl_ros.errors import InputError
from altmarl_ros.federated.clients import LOCAL_STATES
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.games.files import GameFileError, game_from_dict, game_to_dict, write_game_file

FORMAT_KEY = "altmarl_participation"
LOCAL_ACTIONS = ("skip", "upload")
SKIP, UPLOAD = range(2)
PHASES = ("train", "hold")  # train: polled clients may upload; hold: the server only polls
TRAIN, HOLD = range(2)
ACCURACY_EDGES = (0.6, 0.8, 0.9)  # quality buckets q0 < 0.6 <= q1 < 0.8 <= q2 < 0.9 <= q3


def global_states(edges: tuple[float, ...] = ACCURACY_EDGES) -> tuple[str, ...]:
    return tuple(f"q{q}_{phase}" for q in range(len(edges) + 1) for phase in PHASES)


def quality(accuracy: float, edges: tuple[float, ...] = ACCURACY_EDGES) -> int:
    return int(np.searchsorted(np.asarray(edges), accuracy, side="right"))


def s_g_index(q: int, phase: int) -> int:
    return q * len(PHASES) + phase


@dataclass(frozen=True, eq=False)
class ParticipationGame:
    """Polled and unpolled client kernels, the server kernel and rewards; n clients (see the module doc)."""

    polled: TabularGame  # P_l = P_polled, r_l = r_polled, P_g, r_g, gamma, init laws, names
    Q_unpolled: np.ndarray  # (S_l, S_g, S_l')
    n_agents: int
    description: str = ""

    def __post_init__(self) -> None:
        S_l, S_g = self.polled.n_local_states, self.polled.n_global_states
        Q = np.asarray(self.Q_unpolled, dtype=np.float64)
        if Q.shape != (S_l, S_g, S_l):
            raise InputError(f"Q_unpolled must have shape {(S_l, S_g, S_l)}, got {Q.shape}")
        if np.any(Q < 0) or np.any(np.abs(Q.sum(-1) - 1) > 1e-6):
            raise InputError("Q_unpolled rows must be probability rows over the next client state")
        if not (isinstance(self.n_agents, int) and self.n_agents >= 1):
            raise InputError(f"n_agents must be a positive integer, got {self.n_agents!r}")
        object.__setattr__(self, "Q_unpolled", Q)

    def tabular(self, k: int) -> TabularGame:
        """The TabularGame of participation budget k (each client polled with probability k/n)."""
        if not 1 <= k <= self.n_agents:
            raise InputError(f"k must satisfy 1 <= k <= n = {self.n_agents}, got {k}")
        g, f = self.polled, k / self.n_agents
        P_l = f * g.P_l + (1 - f) * self.Q_unpolled[:, :, None, :]
        return TabularGame(P_g=g.P_g, P_l=P_l, r_g=g.r_g, r_l=f * g.r_l, gamma=g.gamma, init_g=g.init_g,
                           init_l_concentration=g.init_l_concentration, name=f"{g.name} k={k} of n={self.n_agents}",
                           labels=g.names)

    def write_tabular(self, path: str | Path, k: int) -> Path:
        """The reduction for k as a plain game file (what `train_policies` reads)."""
        return write_game_file(path, self.tabular(k), n_agents=self.n_agents,
                               description=f"participation budget k = {k} of n = {self.n_agents}: {self.description}")


def participation_from_dict(data: Any, *, base: Path | None = None) -> ParticipationGame:
    """{altmarl_participation: 1, n_agents, description, polled: <game file>, unpolled: <P_l over (s_l, s_g)>}."""
    if isinstance(data, dict) and FORMAT_KEY not in data and "altmarl_game" in data:
        raise GameFileError(f"a plain game file, not a participation game ({FORMAT_KEY}: 1 with polled / unpolled)")
    if not isinstance(data, dict) or data.get(FORMAT_KEY) != 1:
        raise GameFileError(f"{FORMAT_KEY}: must be 1 (the format version)")
    unknown = sorted(set(data) - {FORMAT_KEY, "n_agents", "description", "polled", "unpolled"})
    if unknown:
        raise GameFileError(f"{unknown[0]}: unknown key; known keys: {FORMAT_KEY}, description, n_agents, polled, "
                            "unpolled")
    for key in ("n_agents", "polled", "unpolled"):
        if key not in data:
            raise GameFileError(f"{key}: missing")
    n = data["n_agents"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise GameFileError(f"n_agents must be a positive integer, got {n!r}")
    try:
        polled = game_from_dict(data["polled"], base=base, default_name="participation").game
    except GameFileError as exc:
        raise GameFileError(f"polled.{exc}") from exc
    # the unpolled kernel has no action: written over (s_l, s_g), checked as a P_l with every action alike
    as_game = dict(data["polled"])
    unpolled = data["unpolled"]
    if not isinstance(unpolled, dict):
        raise GameFileError(f"unpolled: expected a mapping over client states, got {unpolled!r}")
    as_game["P_l"] = {s: ({g: {"*": row} for g, row in sub.items()} if isinstance(sub, dict) else sub)
                      for s, sub in unpolled.items()}
    try:
        Q = game_from_dict(as_game, base=base).game.P_l[:, :, 0, :]
    except GameFileError as exc:
        raise GameFileError(f"unpolled: {str(exc).replace('P_l', 'unpolled', 1)}") from exc
    return ParticipationGame(polled, Q, n, str(data.get("description", "")))


def read_participation(path: str | Path) -> ParticipationGame:
    """Read a participation game file; every problem is one GameFileError line naming the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise GameFileError(f"game file {path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise GameFileError(f"game file {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    try:
        return participation_from_dict(data, base=path.parent)
    except GameFileError as exc:
        raise GameFileError(f"game file {path}: {exc}") from exc


def participation_to_dict(game: ParticipationGame) -> dict[str, Any]:
    L = game.polled.names
    unpolled = {s: {g: [float(p) for p in game.Q_unpolled[i, j]] for j, g in enumerate(L.global_states)}
                for i, s in enumerate(L.local_states)}
    return {FORMAT_KEY: 1, "n_agents": game.n_agents, "description": game.description,
            "polled": game_to_dict(game.polled), "unpolled": unpolled}


def local_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    return LOCAL_STATES, LOCAL_ACTIONS


@dataclass(frozen=True, eq=False)
class TrainedPolicy:
    """A trained pair with what it was trained for: the budget k and the game's fingerprint."""

    pi_g: Any  # TabularGlobalPolicy over k-sample count vectors
    pi_l: Any  # TabularLocalPolicy, probs (S_g, S_l, A_l)
    k: int
    game_fingerprint: str
    game_name: str = ""


def check_policy(policy: TrainedPolicy, *, k: int, game: TabularGame) -> TrainedPolicy:
    """Refuse (ValueError, one line) a policy trained for another k or another game than the one run."""
    if policy.k != k or getattr(policy.pi_g, "k", k) != k:
        raise InputError(f"the policy was trained for k = {policy.k}, but the strategy polls k = {k} clients")
    if policy.game_fingerprint != game.fingerprint:
        raise InputError(f"the policy was trained on game {policy.game_name or '?'} ({policy.game_fingerprint}), "
                         f"not on {game.name} ({game.fingerprint})")
    want = (game.n_global_states, game.n_local_states, game.n_local_actions)
    if tuple(policy.pi_l.probs.shape) != want or policy.pi_g.n_global_states != game.n_global_states:
        raise InputError(f"the policy's tables have shape {policy.pi_l.probs.shape}, the game needs {want}")
    return policy
