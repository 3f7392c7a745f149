"""`physics` backend of sim_node: MuJoCo robots in the world of worlds/*.sdf + config/zones.yaml.

It drives `altmarl_ros.physics` (the ROS-free engine: world, MuJoCo model, control), which sits below it.

Robots are differential-drive bodies (`altmarl_ros.physics.engine`, fidelity `planar` or `wheeled`)
driven by their cmd_vel; they collide with each other and the walls. A robot's local state is that
of the zone its physics position falls in at the start of a decision step (pose -> zone -> floor map); the global
state follows the game's P_g and the reward is the game's r(s, a) for the observed zones and the
answered actions (as in `kinematic`). The decision step is a fixed simulated duration, sim_node's
`step_period`; `default_decision_period()` is the time a robot needs to cross from one zone's centre
to the next under the SDF's speed and acceleration limits.

Start poses: s_g, s_l from the game's initial distributions; each robot on the free point of a
hexagonal grid (pitch `spawn_spacing`, default the robot's footprint diameter + 5 cm) nearest its
zone's centre; a zone too full for its robots overflows to the nearest free points (counted).

Per drive interval (the motion between two decisions) and in total, it reports: robot-robot
collisions (contact onsets), robot-wall contacts, robots stuck (commanded to drive but blocked for at
least `stuck_time` s of the interval), goal zones reached and the simulated time from the decision to
reaching the goal zone (robots told to move one zone), and the engine's real-time factor.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np

from altmarl_ros.contract import Fidelity, values
from altmarl_ros.errors import InputError
from altmarl_ros.marl.game import TabularGame as Game
from altmarl_ros.marl.games.floor import FloorMap
from altmarl_ros.physics.engine import EngineOptions, PhysicsEngine
from altmarl_ros.physics.world import World, load_world
from altmarl_ros.ros.backends.base import ParamFn, SimBackend, Snapshot, StepOutcome, game_step, initial_layout, outcome
from altmarl_ros.zones import Zones

WALL_CLEARANCE = 0.05  # m between a spawned robot's footprint and a wall


def default_decision_period(world: World | None = None) -> float:
    """Simulated seconds of one decision step: centre-to-centre of neighbouring zones under the limits."""
    return (world or load_world()).decision_period()


def spawn_grid(world: World, n: int, spacing: float = 0.0) -> np.ndarray:
    """(G, 2) collision-free start places inside the walls: a hexagonal grid of pitch `spacing` (0: the robot's
    footprint diameter + 5 cm); InputError when fewer than n."""
    pitch = spacing or 2 * world.robot.footprint_radius + 0.05
    bound = world.zones.arena_half_size - world.robot.footprint_radius - WALL_CLEARANCE
    rows = np.arange(-bound, bound + 1e-9, pitch * math.sqrt(3) / 2)
    cols = np.arange(-bound, bound + 1e-9, pitch)
    gx, gy = np.meshgrid(cols, rows)
    gx = gx + (np.arange(rows.size)[:, None] % 2) * pitch / 2
    grid = np.stack([gx.ravel(), gy.ravel()], -1)
    grid = grid[(np.abs(grid) <= bound).all(-1)]
    if grid.shape[0] < n:
        raise InputError(f"physics: {n} robots do not fit in the arena at a spawn spacing of {pitch:.3f} m "
                         f"({grid.shape[0]} places)")
    return grid


def spawn_points(world: World, zone: np.ndarray, rng: np.random.Generator, spacing: float = 0.0) -> tuple[
        np.ndarray, int]:
    """(n, 2) collision-free start positions of robots in zones `zone` (n,), each as near its zone's centre as
    the grid allows; and the number of robots that had to overflow into another zone."""
    zones, n = world.zones, zone.size
    grid = spawn_grid(world, n, spacing)
    grid_zone = zones.zone_of(grid)
    dist = np.linalg.norm(grid - zones.centres[grid_zone], axis=-1)
    taken = np.zeros(grid.shape[0], dtype=bool)
    xy = np.empty((n, 2))
    overflow = []
    for z in range(zones.n_zones):  # loop over zones (5), not robots
        robots = rng.permutation(np.flatnonzero(zone == z))
        own = np.flatnonzero(grid_zone == z)
        own = own[np.argsort(dist[own], kind="stable")][: robots.size]
        xy[robots[: own.size]] = grid[own]
        taken[own] = True
        overflow.extend(robots[own.size:].tolist())
    if overflow:
        extra = np.asarray(overflow)
        free = np.flatnonzero(~taken)
        # nearest free places to the overflowing robots' zone centres, robot by robot is not needed:
        # order the free places by distance to the swarm's most crowded zone centre
        centre = zones.centres[np.bincount(zone[extra], minlength=zones.n_zones).argmax()]
        free = free[np.argsort(np.linalg.norm(grid[free] - centre, axis=-1), kind="stable")][: extra.size]
        xy[extra] = grid[free]
    return xy, len(overflow)


class PhysicsRig:
    """The MuJoCo side of a physics backend, game-free: its parameters, the world (walls and robot of the SDFs with
    `zones`), the engine, and the accounting per drive interval (collisions, wall contacts, stuck robots) and over
    the run. `zones_from_world`: the zones must be the world's own (config/zones.yaml, whose markers the SDF
    draws); otherwise they are laid into the world's walls as given (the corridor's)."""

    def __init__(self, zones: Zones, param: ParamFn, *, zones_from_world: bool = True) -> None:
        fidelities = values(Fidelity)
        self.fidelity = param("fidelity", Fidelity.PLANAR.value, f"physics robot model: one of {fidelities} "
                              "(planar base on x, y, yaw; or wheels with ground contact as Gazebo's DiffDrive)")
        if self.fidelity not in fidelities:
            raise InputError(f"parameter 'fidelity' must be one of {fidelities}, got {self.fidelity!r}")
        self.timestep = param("physics_timestep", 0.0, "s per MuJoCo step; 0 = the world SDF's max_step_size",
                              low=0.0, high=0.005)
        self.stuck_time = param("stuck_time", 1.0, "s blocked within one drive interval for a robot to count as "
                                "stuck", low=0.0, high=3600.0)
        self.spacing = param("spawn_spacing", 0.0, "m between start positions; 0 = footprint diameter + 5 cm",
                             low=0.0, high=10.0)
        world_sdf = param("world_sdf", "", "world SDF; '' = share/worlds/warehouse.sdf")
        robot_sdf = param("robot_sdf", "", "robot SDF; '' = share/worlds/robot.sdf")
        world = load_world(world_sdf or None, robot_sdf or None, None)
        if zones_from_world and (world.zones.centres.shape != zones.centres.shape or
                                 not np.allclose(world.zones.centres, zones.centres)):
            raise InputError("physics: the world's zones (share/config/zones.yaml) differ from sim_node's zones_path")
        if zones.arena_half_size != world.zones.arena_half_size:
            raise InputError(f"physics: the zones' arena_half_size {zones.arena_half_size} m is not the world's walls' "
                             f"{world.zones.arena_half_size} m")
        markers = world.markers if zones_from_world else ()
        self.world = World(world.name, world.physics_step, world.walls, markers, zones, world.robot)

    def start(self, xy: np.ndarray, yaw: np.ndarray) -> None:
        """Build the engine with robots at (xy (n, 2), yaw (n,)); reset the accounting."""
        self.engine = PhysicsEngine(self.world, xy, yaw, EngineOptions(fidelity=self.fidelity, timestep=self.timestep))
        self.engine_wall = 0.0
        self.totals = {"collisions": 0, "wall_contacts": 0, "robots_stuck": 0, "max_overlap_m": 0.0, "min_tilt": 1.0}
        self.interval: dict[str, float] = {}

    def advance(self, cmd: np.ndarray, dt: float) -> None:
        """Every robot under cmd (n, 2) = (v, w) for dt s of simulated time."""
        t0 = time.perf_counter()
        self.engine.set_cmd_vel(cmd)
        self.engine.advance(dt)
        self.engine_wall += time.perf_counter() - t0

    def close_interval(self) -> dict[str, float]:
        """Account for the drive interval that just ended (the motion that produced this observation)."""
        c = self.engine.counters()
        stuck = int((c.blocked_time >= self.stuck_time).sum()) if c.seconds > 0 else 0
        self.interval = {"collisions": c.collisions, "wall_contacts": c.wall_contacts, "robots_stuck": stuck,
                         "max_overlap_m": c.max_overlap, "sim_seconds": c.seconds}
        for key in ("collisions", "wall_contacts", "robots_stuck"):
            self.totals[key] += self.interval[key]
        self.totals["max_overlap_m"] = max(self.totals["max_overlap_m"], c.max_overlap)
        self.totals["min_tilt"] = min(self.totals["min_tilt"], float(self.engine.tilt().min()))
        self.engine.reset_counters()
        return self.interval

    def step_metrics(self) -> dict[str, float]:
        """The drive interval before this step's observation: collisions, wall contacts, stuck robots, ..."""
        return {f"interval_{key}": float(value) for key, value in self.interval.items()}

    def summary(self) -> dict[str, Any]:
        """Totals over the run; times are simulated seconds."""
        sim_seconds = self.engine.time
        return {
            "physics_fidelity": self.fidelity, "physics_timestep": self.engine.dt,
            "collisions": self.totals["collisions"], "wall_contacts": self.totals["wall_contacts"],
            "robots_stuck": self.totals["robots_stuck"],
            "robots_stuck_note": f"robot-intervals blocked >= {self.stuck_time} s while commanded to drive",
            "max_overlap_m": self.totals["max_overlap_m"], "min_tilt": self.totals["min_tilt"],
            "engine_real_time_factor": sim_seconds / self.engine_wall if self.engine_wall > 0 else math.nan,
        }


class PhysicsBackend(SimBackend):
    """MuJoCo robots; see the module docstring."""

    drives: ClassVar[bool] = True
    lockstep_control: ClassVar[bool] = True  # lockstep: a control cycle waits for every driving robot's cmd_vel

    def __init__(self, game: Game, zones: Zones, n: int, param: ParamFn, floor: FloorMap | None = None) -> None:
        super().__init__(game, zones, n, param, floor)
        self.rig = PhysicsRig(zones, param)
        self.world = self.rig.world

    # --- SimBackend -----------------------------------------------------------------------------
    def reset(self, rng: np.random.Generator) -> Snapshot:
        self.rng = rng
        self.s_g, s_l, _, yaw, _ = initial_layout(self.game, self.zones, self.n, rng, 0.0, self.floor)
        xy, self.spawn_overflow = spawn_points(self.world, self.floor.local_state_zone[s_l], rng, self.rig.spacing)
        self.rig.start(xy, yaw)
        self.engine = self.rig.engine
        self.goal = np.full(self.n, -1, dtype=np.int64)  # goal zone of robots told to move, -1 = none pending
        self.goal_t0 = np.zeros(self.n)
        self.goal_totals = {"goal_zone_reached": 0, "goal_zone_not_reached": 0}
        self.reach_times: list[float] = []
        self.s_l = self.floor.local_state(self.zones.zone_of(xy))
        return Snapshot(xy, yaw, self.s_l, self.s_g)

    def observe(self) -> Snapshot:
        xy, yaw = self.engine.pose()
        self.s_l = self.floor.local_state(self.zones.zone_of(xy))
        interval = self.rig.close_interval()
        interval["goal_zone_not_reached"] = missed = int((self.goal >= 0).sum())
        self.goal_totals["goal_zone_not_reached"] += missed
        self.goal[:] = -1
        return Snapshot(xy, yaw, self.s_l, self.s_g)

    def apply(self, a_g: int, a_l: np.ndarray) -> StepOutcome:
        result = game_step(self.game, self.rng, self.s_g, self.s_l, a_g, a_l)
        self.s_g = int(result.state.s_g[0])  # the robots' zones follow their motion, not P_l
        target = self.floor.goal_zone(self.s_l, a_l)
        self.goal = np.where(target != self.floor.local_state_zone[self.s_l], target, -1)
        self.goal_t0[:] = self.engine.time
        return outcome(result)

    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        return self.engine.pose()

    def integrate(self, cmd: np.ndarray, dt: float) -> None:
        self.rig.advance(cmd, dt)
        pending = self.goal >= 0
        if pending.any():
            reached = pending & (self.zones.zone_of(self.engine.pose().xy) == self.goal)
            if reached.any():
                self.reach_times.extend((self.engine.time - self.goal_t0[reached]).tolist())
                self.goal_totals["goal_zone_reached"] += int(reached.sum())
                self.goal[reached] = -1

    # --- reports --------------------------------------------------------------------------------
    def step_metrics(self) -> dict[str, float]:
        """The drive interval before this step's observation: collisions, wall contacts, stuck robots, ..."""
        return self.rig.step_metrics()

    def summary(self) -> dict[str, Any]:
        """Totals over the run (see the module docstring); times are simulated seconds."""
        reached = self.goal_totals["goal_zone_reached"]
        told = reached + self.goal_totals["goal_zone_not_reached"]
        return {
            **self.rig.summary(), "spawn_overflow": self.spawn_overflow,
            "goal_zone_moves": told, "goal_zone_reached": reached,
            "goal_zone_reached_fraction": reached / told if told else math.nan,
            "mean_time_to_goal_zone_s": float(np.mean(self.reach_times)) if self.reach_times else math.nan,
            "mean_time_to_goal_zone_note": "sim s from the decision to entering the goal zone, over the robots "
                                           "told to move that reached it within the step",
        }
