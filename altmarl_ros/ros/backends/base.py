"""The simulator backend interface: the world behind sim_node, without ROS.

sim_node owns the ROS side (topics, clock, lockstep, drops, records); a backend owns the world:
where the robots are, which zone each is in, the global state s_g and the reward. One decision step:

    snap = backend.observe()         # Snapshot at the start of step t (sim_node publishes its poses)
    ...                              # the robots and the controller answer over ROS
    out = backend.apply(a_g, a_l)    # the step's joint action: reward, s_g' ~ P_g(.|s_g, a_g),
                                     # and (model) s_l' ~ P_l; applies to the state of the last observe()
    # backends with `drives = True` only, between decisions, at sim_node's physics rate:
    backend.integrate(cmd, dt)       # every robot moves under its cmd_vel (v, w) for dt s of sim time
    backend.poses()                  # (xy, yaw) to publish between decisions

Local states are the floor map's (`marl.games.floor`): a robot in local state s_l is in zone
floor.local_state_zone[s_l]; a_l sends it to floor.local_action_goal[s_l, a_l].

`reset(rng)` draws the initial state; it is called once, before anything else. Backends import no
rclpy: their parameters arrive through `param`, a callable that declares and validates a node
parameter (sim_node passes `common.declare` bound to itself), so a backend's parameters are ordinary
ROS parameters of sim_node. Shapes: n robots, xy (n, 2) metres in the zones' frame, yaw (n,) rad,
s_l (n,) local states.

A new backend is a subclass in its own module plus one line in `backends.BACKENDS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.marl import sim as marl_sim
from altmarl_ros.marl.game import TabularGame as Game
from altmarl_ros.marl.games.floor import FloorMap, ring_floor
from altmarl_ros.zones import Zones


class ParamFn(Protocol):
    """Declare-and-read a read-only node parameter: param('noise_std', 0.02, 'm/sqrt(s) ...', low=0.0)."""

    def __call__(self, name: str, default: Any, description: str, *, low: float | None = None,
                 high: float | None = None) -> Any: ...


class Snapshot(NamedTuple):
    """The world at the start of a decision step: robot poses and zones, the global state."""

    xy: np.ndarray  # (n, 2) positions, m
    yaw: np.ndarray  # (n,) headings, rad
    s_l: np.ndarray  # (n,) each robot's zone (local state)
    s_g: int  # global state (the active zone)


class StepOutcome(NamedTuple):
    """What applying one decision step's joint action produced (paper eq. 1: r = r_g + mean r_l)."""

    reward: float
    r_g: float
    r_l_mean: float
    s_g: int  # the next global state


class SimBackend(ABC):
    """One simulated world; see the module docstring for the call order."""

    drives: ClassVar[bool] = False  # True: robots move by cmd_vel (sim_node subscribes, robot nodes drive)
    # True: in lockstep, sim_node advances the world one control cycle (1 / physics_rate s) as soon as every
    # driving robot has answered the last poses with a cmd_vel (simulated time runs as fast as the loop)
    lockstep_control: ClassVar[bool] = False

    def __init__(self, game: Game, zones: Zones, n: int, param: ParamFn, floor: FloorMap | None = None) -> None:
        """`floor`: what the game's local states and actions mean on the floor (default: the ring warehouse's)."""
        self.game, self.zones, self.n = game, zones, n
        self.floor = default_floor(game, zones) if floor is None else floor

    @abstractmethod
    def reset(self, rng: np.random.Generator) -> Snapshot:
        """Draw the initial state (s_g ~ init_g, s_l ~ init_l, poses in the zones) and keep `rng` for later steps."""

    @abstractmethod
    def observe(self) -> Snapshot:
        """The state at the start of the current decision step (the one `apply` acts on)."""

    @abstractmethod
    def apply(self, a_g: int, a_l: np.ndarray) -> StepOutcome:
        """Apply global action a_g and local actions a_l (n,) to the last observed state; advance s_g."""

    @abstractmethod
    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        """Current (xy (n, 2), yaw (n,)), also between decision steps."""

    def integrate(self, cmd: np.ndarray, dt: float) -> None:
        """Move every robot under cmd (n, 2) = (v m/s, w rad/s) for dt s of simulated time (drives only)."""
        raise NotImplementedError(f"{type(self).__name__} does not drive robots by cmd_vel")

    def marker_view(self, snap: Snapshot, goals: np.ndarray) -> tuple[int, np.ndarray]:
        """(active zone, (n,) goal zones, -1 unknown) of a step for the markers: s_g and the answered goals."""
        return snap.s_g, goals

    def step_metrics(self) -> dict[str, float]:
        """Extra per-step record fields (e.g. physics: collisions in the last drive interval); {} by default."""
        return {}

    def summary(self) -> dict[str, Any]:
        """Extra run-summary fields; {} by default."""
        return {}


def default_floor(game: Game, zones: Zones) -> FloorMap:
    """The ring warehouse's floor map for `game` (ValueError when the game does not have its shape)."""
    floor = ring_floor(game)
    if floor is None or floor.n_zones != zones.n_zones:
        raise InputError(f"game {game.name} on {zones.n_zones} zones: give the backend the game's floor map")
    return floor


def initial_layout(game: Game, zones: Zones, n: int, rng: np.random.Generator, jitter: float,
                   floor: FloorMap) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Initial (s_g, s_l (n,), xy (n, 2), yaw (n,), offset (n, 2)): states from the game's initial
    distributions, each robot at its local state's zone centre plus a fixed offset of radius <= jitter."""
    state = marl_sim.reset(game, rng, n_agents=n, batch=1)
    s_g, s_l = int(state.s_g[0]), state.s_l[0].copy()
    radius = jitter * np.sqrt(rng.random(n))
    angle = 2 * np.pi * rng.random(n)
    offset = np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1)
    xy = zones.centres[floor.local_state_zone[s_l]] + offset
    yaw = 2 * np.pi * rng.random(n) - np.pi
    return s_g, s_l, xy, yaw, offset


def game_step(game: Game, rng: np.random.Generator, s_g: int, s_l: np.ndarray, a_g: int,
              a_l: np.ndarray) -> marl_sim.StepResult:
    """One transition of the game (batch 1) with `altmarl_ros.marl.sim.step`."""
    state = marl_sim.JointState(np.array([s_g]), s_l[None, :])
    return marl_sim.step(game, rng, state, np.array([a_g]), a_l[None, :])


def outcome(result: marl_sim.StepResult) -> StepOutcome:
    return StepOutcome(float(result.reward[0]), float(result.r_g[0]), float(result.r_l[0].mean()),
                       int(result.state.s_g[0]))
