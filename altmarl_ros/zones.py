"""Zone geometry (ROS-free): zone centres on a ring, and pose -> zone as the nearest centre.

The geometry lives once in config/zones.yaml; worlds/warehouse.sdf draws the same zones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from numpy.typing import ArrayLike

_KEYS = {"frame_id": str, "ring_radius": float, "zone_radius": float, "arena_half_size": float, "n_zones": int}


@dataclass(frozen=True)
class Zones:
    """Zone layout: `n_zones` centres on a circle of `ring_radius` around the origin of `frame_id`."""

    n_zones: int = 5
    ring_radius: float = 4.0
    zone_radius: float = 1.2
    arena_half_size: float = 7.0
    frame_id: str = "world"

    def __post_init__(self) -> None:
        if self.n_zones < 2:
            raise ValueError(f"zones: n_zones must be >= 2, got {self.n_zones}")
        if not self.ring_radius > 0 or not self.zone_radius > 0:
            raise ValueError("zones: ring_radius and zone_radius must be > 0")
        if not self.arena_half_size > self.ring_radius + self.zone_radius:
            raise ValueError("zones: arena_half_size must exceed ring_radius + zone_radius")

    @property
    def centres(self) -> np.ndarray:
        """(n_zones, 2) zone centres (x, y) in metres."""
        angle = 2 * np.pi * np.arange(self.n_zones) / self.n_zones
        return self.ring_radius * np.stack([np.cos(angle), np.sin(angle)], axis=-1)

    def zone_of(self, xy: ArrayLike) -> np.ndarray:
        """(..., 2) positions -> (...,) zone ids (nearest centre). NaN positions raise ValueError."""
        xy = np.asarray(xy, dtype=np.float64)
        if not np.all(np.isfinite(xy)):
            raise ValueError("zone_of: position is NaN or infinite")
        d2 = ((xy[..., None, :] - self.centres) ** 2).sum(-1)
        return d2.argmin(-1)


def load_zones(path: str | Path) -> Zones:
    """Read a zones YAML file; unknown keys and bad values raise ValueError naming the key."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of zone settings")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown zone keys {unknown}; known: {sorted(_KEYS)}")
    values = {}
    for key, value in data.items():
        try:
            values[key] = _KEYS[key](value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: zone key {key!r} has bad value {value!r}") from exc
    try:
        return Zones(**values)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
