"""Training configuration of the continuous warehouse: a frozen dataclass loaded from YAML, strictly.

Every unknown key, wrong type or out-of-range value raises `ConfigError` naming the key path (e.g.
"l_step.lr"). See config/train_continuous.yaml for the commented defaults.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from altmarl_ros.errors import UserError
from altmarl_ros.marl.continuous.env import ContinuousWarehouse
from altmarl_ros.marl.continuous.evaluate import Protocol
from altmarl_ros.marl.continuous.ppo import PPOConfig
from altmarl_ros.marl.learners.alternate import UpdateRule


class ConfigError(UserError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class GapSettings:
    iterations: int = 30
    """PPO iterations of each best-response search from the final pair (the gaps' oracles)."""
    episodes: int = 300
    """Fresh paired episodes per gap estimate."""


@dataclass(frozen=True)
class ContinuousConfig:
    kind: str = "continuous"
    """Marks the file for the CLI (`altmarl train --config ...` dispatches on it)."""
    env: ContinuousWarehouse = field(default_factory=ContinuousWarehouse)
    k: int = 20
    """Default budget of `train` (the CLI's --k overrides)."""
    seeds: int = 3
    """Training seeds per k in sweeps (every one is reported; none is selected)."""
    hidden_g: tuple[int, ...] = (64, 64)
    hidden_l: tuple[int, ...] = (64, 64)
    grid: int = 401
    """Greedy robots tabulated on a grid x grid lattice during training (0: exact network)."""
    rounds: int = 6
    starts: tuple[str, ...] = ("l_first",)
    """Starting pairs (alternate.START_KINDS); the best fixed point on training keys is kept."""
    rule: UpdateRule = field(default_factory=lambda: UpdateRule(kind="two_eta", c=0.002))
    loop_episodes: int = 64
    """Episodes of each paired in-loop evaluation."""
    horizon: int = 50
    """Horizon of the in-loop evaluations and of the training episodes' objective."""
    g_step: PPOConfig = field(default_factory=lambda: PPOConfig(ent_coef=0.01))
    l_step: PPOConfig = field(default_factory=lambda: PPOConfig(envs=8, learners=8, ent_coef=0.003))
    evaluation: Protocol = field(default_factory=Protocol)
    nash_gap: GapSettings = field(default_factory=GapSettings)
    full_information: bool = True
    """Sweeps also train the full-information reference (k = n_agents) per seed."""

    def __post_init__(self) -> None:
        def need(ok: bool, key: str, msg: str) -> None:
            if not ok:
                raise ConfigError(f"{key}: {msg}")

        need(self.kind == "continuous", "kind", f"must be 'continuous', got {self.kind!r}")
        need(1 <= self.k <= self.env.n_agents, "k", f"must lie in [1, env.n_agents = {self.env.n_agents}]")
        need(len(self.starts) >= 1 and all(s in ("random", "l_first") for s in self.starts), "starts",
             "must list at least one of 'random', 'l_first'")
        for key in ("seeds", "rounds", "horizon"):
            need(getattr(self, key) >= 1, key, "must be >= 1")
        need(self.loop_episodes >= 2, "loop_episodes", "must be >= 2 (a paired test needs a stderr)")
        need(self.grid == 0 or self.grid >= 2, "grid", "must be 0 (exact) or >= 2")
        for key in ("hidden_g", "hidden_l"):
            need(len(getattr(self, key)) >= 1 and all(h >= 1 for h in getattr(self, key)), key,
                 "must be a non-empty list of positive widths")
        need(self.rule.kind == "two_eta", "rule.kind", "only 'two_eta' is implemented for neural policies")
        for name, step in (("g_step", self.g_step), ("l_step", self.l_step)):
            try:
                step.validate(name)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
            need(step.horizon == self.horizon, f"{name}.horizon", f"must equal horizon ({self.horizon})")
        need(self.l_step.learners <= self.env.n_agents, "l_step.learners", "must be <= env.n_agents")
        need(all(v >= 1 for v in self.evaluation), "evaluation", "seeds, rollouts and horizon must be >= 1")
        need(self.nash_gap.iterations >= 1 and self.nash_gap.episodes >= 2, "nash_gap",
             "iterations must be >= 1 and episodes >= 2")


_NESTED = {"env": ContinuousWarehouse, "g_step": PPOConfig, "l_step": PPOConfig, "evaluation": Protocol,
           "nash_gap": GapSettings, "rule": UpdateRule}


def _coerce(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is tuple:
        item = typing.get_args(hint)[0]
        kinds = (str,) if item is str else (int,) if item is int else (int, float)
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, kinds) and not isinstance(v, bool)
                                                      for v in value)
        value = tuple(value) if ok else value
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{key}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = set(getattr(cls, "_fields", ())) or {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"{path}: unknown key (known: {', '.join(sorted(names))})")
        if key in _NESTED and cls is ContinuousConfig:
            kwargs[key] = _build(_NESTED[key], value, path)
        else:
            kwargs[key] = _coerce(path, value, hints[key])
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        raise ConfigError(msg if not prefix or msg.startswith(prefix) else f"{prefix}: {msg}") from exc


def config_from_dict(data: dict[str, Any]) -> ContinuousConfig:
    """Strictly validated config from a mapping (nested mappings for env, g_step, l_step, rule, ...)."""
    return _build(ContinuousConfig, data, "")


def load_config(path: str | Path) -> ContinuousConfig:
    """Read and validate a YAML training config; errors name the file and the key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from exc
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
