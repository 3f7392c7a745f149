"""Zone geometry (ROS-free): zone centres on a ring or a grid, and pose -> zone as the nearest centre.

The geometry lives once in a zones YAML (config/zones.yaml: the ring warehouse; worlds/warehouse.sdf draws
the same zones); config/zones_grid.yaml is a 2 x 4 grid. What the game's states and actions mean on these
zones is the policy artifact's floor map (`marl.games.floor`), not this module's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from numpy.typing import ArrayLike

from altmarl_ros.errors import InputError

_KEYS = {"frame_id": str, "layout": str, "ring_radius": float, "grid_cols": int, "grid_pitch": float,
         "zone_radius": float, "arena_half_size": float, "n_zones": int}
LAYOUTS = ("ring", "grid")


@dataclass(frozen=True)
class Zones:
    """Zone layout around the origin of `frame_id`, in a square arena of half size `arena_half_size`.

    layout 'ring': `n_zones` centres on a circle of `ring_radius`, zone 0 on +x, counter-clockwise.
    layout 'grid': n_zones / grid_cols rows of `grid_cols` centres `grid_pitch` apart, row-major from the
    north-west (zone 0 at the top left, zone 1 east of it).
    """

    n_zones: int = 5
    ring_radius: float = 4.0
    zone_radius: float = 1.2
    arena_half_size: float = 7.0
    frame_id: str = "world"
    layout: str = "ring"
    grid_cols: int = 0
    grid_pitch: float = 0.0

    def __post_init__(self) -> None:
        if self.n_zones < 2:
            raise InputError(f"zones: n_zones must be >= 2, got {self.n_zones}")
        if self.layout not in LAYOUTS:
            raise InputError(f"zones: layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.layout == "grid" and (self.grid_cols < 1 or self.n_zones % self.grid_cols or not self.grid_pitch > 0):
            raise InputError(f"zones: a grid needs grid_cols >= 1 dividing n_zones ({self.n_zones}) and grid_pitch "
                             f"> 0, got {self.grid_cols} and {self.grid_pitch}")
        if not self.ring_radius > 0 or not self.zone_radius > 0:
            raise InputError("zones: ring_radius and zone_radius must be > 0")
        if not self.arena_half_size > self._extent + self.zone_radius:
            raise InputError(f"zones: arena_half_size must exceed the zone centres' extent ({self._extent:g} m) + "
                             "zone_radius")

    @property
    def _extent(self) -> float:
        """Largest |x| or |y| of a zone centre."""
        return self.ring_radius if self.layout == "ring" else float(np.abs(self.centres).max())

    @property
    def centres(self) -> np.ndarray:
        """(n_zones, 2) zone centres (x, y) in metres."""
        if self.layout == "grid":
            rows, cols = self.n_zones // self.grid_cols, self.grid_cols
            r, c = np.divmod(np.arange(self.n_zones), cols)
            return self.grid_pitch * np.stack([c - (cols - 1) / 2, (rows - 1) / 2 - r], axis=-1).astype(np.float64)
        angle = 2 * np.pi * np.arange(self.n_zones) / self.n_zones
        return self.ring_radius * np.stack([np.cos(angle), np.sin(angle)], axis=-1)

    def slot_capacity(self, spacing: float) -> int:
        """Parking slots per zone at `spacing` (see `goal_points`): one per spacing^2 of a disc around the centre
        that lies inside the zone (radius: half the distance to a neighbouring centre, less spacing / 2)."""
        if spacing <= 0:
            return 1
        half_gap = self.ring_radius * np.sin(np.pi / self.n_zones) if self.layout == "ring" else self.grid_pitch / 2
        radius = half_gap - spacing / 2
        radius = min(radius, self.arena_half_size - self._extent - spacing / 2)
        return max(1, int(np.pi * radius ** 2 / spacing ** 2))

    def goal_points(self, zone: ArrayLike, robot: ArrayLike, spacing: float) -> np.ndarray:
        """(n,) goal zones and (n,) robot indices -> (n, 2) positions: robot i's parking slot in its goal zone.

        Slot j = i mod `slot_capacity(spacing)` of a sunflower (Vogel) spiral around the zone's centre (radius
        spacing * sqrt((j + 1/2) / pi), angle j times the golden angle: one slot per spacing^2 of floor,
        neighbouring slots at least 0.87 spacing apart, slot 0 nearest the centre). A robot keeps its slot
        index in every zone, so going to a neighbouring zone is the same displacement as centre to centre.
        spacing = 0: every robot heads for the centre.
        """
        j = np.asarray(robot, dtype=np.int64) % self.slot_capacity(spacing)
        radius = spacing * np.sqrt((j + 0.5) / np.pi)
        angle = j * np.pi * (3.0 - np.sqrt(5.0))
        return self.centres[np.asarray(zone)] + np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1)

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
        raise InputError(f"{path}: expected a mapping of zone settings")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise InputError(f"{path}: unknown zone keys {unknown}; known: {sorted(_KEYS)}")
    values = {}
    for key, value in data.items():
        try:
            values[key] = _KEYS[key](value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: zone key {key!r} has bad value {value!r}") from exc
    try:
        return Zones(**values)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from exc
