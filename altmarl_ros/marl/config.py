"""Training configurations: frozen dataclasses, loaded from YAML with strict validation.

Every unknown key, wrong type or out-of-range value raises `ConfigError` naming the key path
(e.g. "g_learn.m"). See config/train_warehouse.yaml for a commented example.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from altmarl_ros.errors import UserError
from altmarl_ros.marl.games import GAMES, make_game
from altmarl_ros.marl.learners.alternate import RULES
from altmarl_ros.marl.learners.g_learn import STOPPINGS, TRANSITIONS
from altmarl_ros.marl.sim import ORDERINGS

REFINE_FROM = ("best", "tied")  # loop.refine_from


class ConfigError(UserError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


@dataclass(frozen=True)
class GLearnConfig:
    transition: str = "sampled"
    """sampled (paper: m samples per entry) | exact (small k) | deterministic (authors)."""
    m: int = 30
    """Samples of the next count vector per (s_g, d) entry (transition: sampled)."""
    stopping: str = "span"
    """span | sup | fixed (exactly max_iter sweeps, the authors' truncated value iteration)."""
    tol: float = 1e-3
    """Value-iteration tolerance (span: bound on the value error; sup: sup-norm residual)."""
    max_iter: int = 2000
    """Maximum number of Bellman sweeps."""
    warm_start: bool = True
    """Start each round's value iteration from the previous round's values."""
    restricted: bool = False
    """Refine each G-LEARN proposal by the restricted best response (`restricted.restricted_proposal`:
    policy iteration on the n-robot population model, from G-LEARN's table; issue 15). Slow at k >= 20."""

    def validate(self, key: str) -> None:
        _check(self.transition in TRANSITIONS, f"{key}.transition", f"must be one of {TRANSITIONS}")
        _check(self.stopping in STOPPINGS, f"{key}.stopping", f"must be one of {STOPPINGS}")
        _check(self.m >= 1, f"{key}.m", "must be >= 1")
        _check(self.tol > 0, f"{key}.tol", "must be > 0")
        _check(self.max_iter >= 1, f"{key}.max_iter", "must be >= 1")


@dataclass(frozen=True)
class LLearnConfig:
    kind: str = "induced"
    """induced (exact best response in the induced (s_g, s_l) MDP) | authors (PAPER.md 2.7)."""
    tol: float = 1e-8
    """Value-iteration tolerance of the induced MDP."""
    n_mc: int = 200
    """authors: Monte Carlo count vectors per s_g."""
    mc_seed: int = 999
    """authors: seed of those draws."""
    mu_iters: int = 50
    """authors: power iterations of the mean field."""
    max_iter: int = 100
    """authors: value-iteration sweeps."""
    tau_scale: float = 3.0
    """authors: softmax temperature = max(tau_min, range(Q) / tau_scale)."""
    tau_min: float = 0.3

    def validate(self, key: str) -> None:
        _check(self.kind in ("induced", "authors"), f"{key}.kind", "must be 'induced' or 'authors'")
        _check(self.tol > 0, f"{key}.tol", "must be > 0")
        for name in ("n_mc", "mu_iters", "max_iter"):
            _check(getattr(self, name) >= 1, f"{key}.{name}", "must be >= 1")
        _check(self.tau_scale > 0 and self.tau_min > 0, f"{key}.tau_scale", "tau_scale and tau_min must be > 0")


# ----------------------------------------------------------------------------------------------
# Starting pairs of the alternating loop (loop.starts), parsed once into typed values
# ----------------------------------------------------------------------------------------------

class StartKind(enum.Enum):
    CONSTANT = "constant"  # pi_g constant a_g, uniform robots
    L_FIRST = "l_first"  # pi_g constant a_g, the robots' L-LEARN response to it
    G_FIRST = "g_first"  # G-LEARN against uniform robots, uniform robots
    CHASE = "chase"  # robots best-respond to a never-changing s_g (warehouse: go where s_g is)
    FULL_INFORMATION = "full_information"  # the full-information reference's robots, G-LEARN against them
    POSTERIOR = "posterior"  # the reference's robots, its posterior dispatcher for the k-sample (marl.posterior)


WITH_ACTION = (StartKind.CONSTANT, StartKind.L_FIRST)
START_FORMS = ("constant[:<a_g>]", "l_first[:<a_g>]", "g_first", "chase", "full_information", "posterior")
NEEDS_REFERENCE = (StartKind.FULL_INFORMATION, StartKind.POSTERIOR)  # starts built from the reference pair


@dataclass(frozen=True)
class Start:
    """One start: its kind and, for constant / l_first, the constant global action (None: every action)."""

    kind: StartKind
    a_g: int | None = None

    @property
    def name(self) -> str:
        """The name as written in configs and run records, e.g. "constant:0", "chase"."""
        return self.kind.value if self.a_g is None else f"{self.kind.value}:{self.a_g}"

    def __str__(self) -> str:
        return self.name

    @property
    def action(self) -> int:
        """The constant a_g of a constant / l_first start (set for every start `expand_starts` returns)."""
        if self.a_g is None:
            raise ConfigError(f"start {self.name!r} has no global action: expand it with expand_starts")
        return self.a_g


def parse_start(text: str) -> Start:
    """`Start` from its name; ConfigError naming the start and listing the valid forms otherwise."""
    kind_text, colon, arg = text.partition(":")
    kind = next((k for k in StartKind if k.value == kind_text), None)
    if kind is None or (colon and not (kind in WITH_ACTION and arg.isdigit())):
        raise ConfigError(f"unknown start {text!r}; starts are {', '.join(repr(f) for f in START_FORMS)}")
    return Start(kind, int(arg) if colon else None)


def expand_starts(starts: Sequence[str | Start], n_global_actions: int) -> list[Start]:
    """Parsed starts with `constant` / `l_first` (no action) expanded to every a_g, duplicates dropped (first
    kept); ConfigError when an action is not one of the game's."""
    out: list[Start] = []
    for start in starts:
        parsed = parse_start(start) if isinstance(start, str) else start
        if parsed.kind in WITH_ACTION and parsed.a_g is None:
            out += [Start(parsed.kind, a) for a in range(n_global_actions)]
            continue
        if parsed.a_g is not None and parsed.a_g >= n_global_actions:
            raise ConfigError(f"start {parsed.name!r}: the game has {n_global_actions} global actions")
        out.append(parsed)
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class LoopConfig:
    rule: str = "two_eta"
    """two_eta (paper UPDATE with a paired test) | revert (authors' outer loop)."""
    c: float = 0.01
    """eta = c * R / ((1 - gamma) sqrt(k)), R the per-step reward range (alternate.UpdateRule)."""
    confidence: float = 0.95
    """two_eta: a proposal is accepted when the one-sided lower confidence bound of its paired
    improvement exceeds 2 eta."""
    rtol: float = 0.01
    """revert: relative tolerance for revert and convergence."""
    max_rounds: int = 10
    """N_steps: maximum rounds of (G-LEARN, L-LEARN)."""
    eval_episodes: int = 64
    """Episodes of each in-loop evaluation (paired: the proposal and the incumbent share them)."""
    eval_horizon: int = 50
    """Horizon of each in-loop evaluation."""
    select_episodes: int = 0
    """Episodes of the equilibrium selection among the runs' fixed points (common to every run; 0:
    eval_episodes). Two candidates 0.9 apart need ~256 to be told apart reliably on the warehouse (sd of a
    paired difference ~4)."""
    starts: tuple[str, ...] = ("constant:0",)
    """Starting pairs of the alternation (equilibrium selection keeps the best fixed point reached):
    constant[:a_g] (pi_g constant, uniform robots; without ":a_g" every action), l_first[:a_g] (pi_g
    constant, the robots' L-LEARN response to it), g_first (G-LEARN against uniform robots, uniform
    robots), chase (robots best-respond to a never-changing s_g: for the warehouse, go where s_g is),
    full_information (the robots of the full-information reference of the same seed, and G-LEARN's k-sample
    dispatcher against them), posterior (those robots and the reference's dispatcher projected onto the
    k-sample, `marl.posterior`). The last two train the reference first; they are ignored when training the
    reference itself, and skipped with a warning when the reference is out of reach for the game
    (`FullInfoConfig.feasible`)."""
    refine: int = 0
    """Restarts after selection (beyond the paper, `run_learners.restart`): up to `refine` times, the alternation
    runs again from the best fixed point's robots and the posterior projection of the full-information best
    response to them (`posterior.posterior_response`: a restricted global step that the 2 eta UPDATE rejects
    at small k, where 2 eta exceeds the gain), and selection keeps the best fixed point of all runs. Stops
    early when a restart does not become the best. Needs the full-information reference's table size (skipped
    with a warning when out of reach); ignored when training the reference itself."""
    refine_from: str = "best"
    """Where the `refine` restarts begin: "best" (the best fixed point of the selection) or "tied" (also every
    other fixed point not significantly below it on the selection episodes, one-sided at `confidence`: the
    selection's noise then does not decide which robots the restarts begin from; bench/README.md 11.8)."""
    posterior_only_from_k: int = 0
    """At k >= posterior_only_from_k (0: never), of `starts` only the posterior start runs (then the restarts of
    `refine`). The full-information reference's own training ran every other start; near full information the
    k-sample dispatcher's best fixed point is the one next to the reference's, which the posterior start begins
    from (warehouse, the 5-seed sweep with every start: the posterior start or its restart was chosen in all 15
    cells at k = 20, 35, 50; bench/README.md 2.8). Ignored when the posterior start is not in `starts`."""
    oracle_max_k: int = 0
    """At k <= oracle_max_k (0: never), one more restart after those of `refine`: from the best fixed point's robots
    and the restricted best response to them (`restricted.restricted_best_response`, the oracle of
    gap_g_restricted, started from the best dispatcher and every constant table; beyond the paper, issue 15 item
    1a). Selection then keeps the best fixed point of all runs. Its cost grows fast with k (warehouse, a cell of a
    sweep: ~2 s instead of ~1 s at k <= 2, ~5 s at k = 5; bench/README.md 11.7, 11.8)."""

    def starts_at(self, starts: Sequence[Start], k: int) -> list[tuple[int, Start]]:
        """(slot, start) of the k-sample training's `starts` that run at budget k: all of them, or at k >=
        posterior_only_from_k the posterior start alone when it is among them. A run's in-loop evaluation seed
        is its slot's, so the posterior start draws the seeds it draws when every start runs."""
        every = list(enumerate(starts))
        if not self.posterior_only_from_k or k < self.posterior_only_from_k:
            return every
        return [(i, s) for i, s in every if s.kind is StartKind.POSTERIOR] or every

    def validate(self, key: str) -> None:
        _check(self.rule in RULES, f"{key}.rule", f"must be one of {RULES}")
        _check(self.c >= 0, f"{key}.c", "must be >= 0")
        _check(0.5 <= self.confidence < 1, f"{key}.confidence", "must lie in [0.5, 1)")
        _check(self.rtol >= 0, f"{key}.rtol", "must be >= 0")
        _check(self.refine >= 0, f"{key}.refine", "must be >= 0")
        _check(self.oracle_max_k >= 0, f"{key}.oracle_max_k", "must be >= 0 (0: no oracle restart)")
        _check(self.posterior_only_from_k >= 0, f"{key}.posterior_only_from_k",
               "must be >= 0 (0: every start at every k)")
        _check(self.refine_from in REFINE_FROM, f"{key}.refine_from", f"must be one of {REFINE_FROM}")
        for name in ("max_rounds", "eval_episodes", "eval_horizon"):
            _check(getattr(self, name) >= 1, f"{key}.{name}", "must be >= 1")
        _check(self.eval_episodes >= 2, f"{key}.eval_episodes", "must be >= 2 (a paired test needs a stderr)")
        _check(self.select_episodes == 0 or self.select_episodes >= 2, f"{key}.select_episodes",
               "must be 0 (eval_episodes) or >= 2")
        _check(len(self.starts) >= 1, f"{key}.starts", "needs at least one start")
        for start in self.starts:
            try:
                parse_start(start)
            except ConfigError as exc:
                raise ConfigError(f"{key}.starts: {exc}") from exc

    @property
    def parsed_starts(self) -> tuple[Start, ...]:
        """`starts` as typed values (validated at construction, so this cannot fail)."""
        return tuple(parse_start(s) for s in self.starts)


@dataclass(frozen=True)
class FullInfoConfig:
    enabled: bool = False
    """Also train the full-information reference (a dispatcher that sees the whole population) in sweeps."""
    k: int = 50
    """Its observation: the population's histogram rounded to k counts (G-LEARN with the deterministic
    mean-field transition at this k, as the population of n agents evolves almost deterministically)."""

    def validate(self, key: str) -> None:
        _check(self.k >= 1, f"{key}.k", "must be >= 1")

    def table_size(self, n_local_states: int) -> int:
        """Count vectors of k over the game's local states: the reference's G-LEARN table per global state."""
        return math.comb(self.k + n_local_states - 1, n_local_states - 1)

    def feasible(self, n_local_states: int) -> bool:
        """Whether the reference's tables fit (at most REFERENCE_MAX_TABLE count vectors; the warehouse's 5
        zones at k = 50: 316,251; 8 zones: 264 million)."""
        return self.table_size(n_local_states) <= REFERENCE_MAX_TABLE


REFERENCE_MAX_TABLE = 1_000_000


@dataclass(frozen=True)
class PooledConfig:
    enabled: bool = False
    """After the alternation, train a dispatcher over the filtered population estimate (`pooled`, beyond the
    paper): the restricted best response to the final pi_l over that observation, kept by the UPDATE rule."""
    K: int = 20
    """Its observation: the filtered histogram rounded to K counts (table of n_count_vectors(K, S_l) entries)."""
    episodes: int = 256
    """Episodes per Monte Carlo policy-iteration round (`restricted.mc_best_response`) on the n-agent system, and
    of the final paired comparison with the k-sample pair."""
    rounds: int = 8
    """Policy-iteration rounds at most."""

    def validate(self, key: str) -> None:
        for name in ("K", "episodes", "rounds"):
            _check(getattr(self, name) >= 1, f"{key}.{name}", "must be >= 1")


@dataclass(frozen=True)
class EvalConfig:
    horizon: int = 50
    """Steps per episode of the final evaluation (the paper says 100, the authors' figures use 50)."""
    episodes: int = 50
    """Episodes per evaluation seed."""
    seeds: int = 15
    """Evaluation seeds; rewards are reported as mean +- std over the per-seed means (as the authors)."""

    def validate(self, key: str) -> None:
        for name in ("horizon", "episodes", "seeds"):
            _check(getattr(self, name) >= 1, f"{key}.{name}", "must be >= 1")


@dataclass(frozen=True)
class GapConfig:
    k_oracle: int = 100
    """The global oracle: G-LEARN (deterministic mean-field transition) at this k, executed with
    full information (the whole population's histogram rounded to k_oracle counts)."""
    episodes: int = 400
    """Paired episodes per value difference."""

    def validate(self, key: str) -> None:
        _check(self.k_oracle >= 1, f"{key}.k_oracle", "must be >= 1")
        _check(self.episodes >= 2, f"{key}.episodes", "must be >= 2")


@dataclass(frozen=True)
class TrainConfig:
    game: str = "warehouse"
    """Registered game name (altmarl_ros.marl.games)."""
    game_options: dict[str, Any] = field(default_factory=dict)
    """Keyword overrides of the game factory, e.g. {r_g: constant}."""
    n_agents: int = 1000
    """n, the number of local agents in every evaluation."""
    k: int = 10
    """Default subsampling budget for `altmarl train`."""
    ordering: str = "paper"
    """paper (locals move with s_g(t)) | authors (with s_g(t+1), REFERENCE.md B1)."""
    g_learn: GLearnConfig = field(default_factory=GLearnConfig)
    l_learn: LLearnConfig = field(default_factory=LLearnConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    nash_gap: GapConfig = field(default_factory=GapConfig)
    full_information: FullInfoConfig = field(default_factory=FullInfoConfig)
    pooled: PooledConfig = field(default_factory=PooledConfig)

    def __post_init__(self) -> None:
        _check(self.game in GAMES, "game", f"unknown game {self.game!r}; known: {sorted(GAMES)}")
        _check(isinstance(self.game_options, dict), "game_options", "must be a mapping")
        try:
            make_game(self.game, **self.game_options)
        except ValueError as exc:
            raise ConfigError(f"game_options: {exc}") from exc
        _check(self.n_agents >= 1, "n_agents", "must be >= 1")
        _check(1 <= self.k <= self.n_agents, "k", "must satisfy 1 <= k <= n_agents")
        _check(self.ordering in ORDERINGS, "ordering", f"must be one of {ORDERINGS}")
        for name in ("g_learn", "l_learn", "loop", "evaluation", "nash_gap", "full_information", "pooled"):
            getattr(self, name).validate(name)

    @property
    def game_spec(self) -> dict[str, Any]:
        return {"name": self.game, "options": dict(self.game_options)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, data: Any, key: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{key or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{key + '.' if key else ''}{unknown[0]}: unknown key; known keys: {sorted(names)}")
    values = {}
    for name, value in data.items():
        path = f"{key}.{name}" if key else name
        hint = hints[name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, path)
        elif hint is bool:
            _check(isinstance(value, bool), path, f"must be true or false, got {value!r}")
            values[name] = value
        elif hint is int:
            _check(isinstance(value, int) and not isinstance(value, bool), path, f"must be an integer, got {value!r}")
            values[name] = value
        elif hint is float:
            _check(isinstance(value, (int, float)) and not isinstance(value, bool), path,
                   f"must be a number, got {value!r}")
            values[name] = float(value)
        elif hint is str:
            _check(isinstance(value, str), path, f"must be a string, got {value!r}")
            values[name] = value
        elif hint == tuple[str, ...]:
            _check(isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value), path,
                   f"must be a list of strings, got {value!r}")
            values[name] = tuple(value)
        else:  # dict[str, Any]
            _check(isinstance(value, dict), path, f"must be a mapping, got {value!r}")
            values[name] = dict(value)
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key or 'config'}: {exc}") from exc


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build and validate a TrainConfig from plain data (e.g. parsed YAML)."""
    return _build(TrainConfig, data, "")


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a YAML training config; `overrides` replace top-level keys (e.g. k=5, n_agents=50)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a mapping at the top level")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"config {path}: {exc}") from exc
