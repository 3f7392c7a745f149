"""MuJoCo engine for the swarm: the world of `altmarl_ros.physics.world`, n differential-drive robots.

The only module of the package that imports MuJoCo. The model is built with `mujoco.MjSpec` from the
`World` record (floor, SDF wall boxes, robots with the SDF's dimensions and masses), never from
hand-written numbers. Two fidelities:

- `planar`: each robot's chassis box on slide x, slide y and a yaw hinge (no floor contact). Joint
  velocity servos track the body-frame command rotated into the world (v cos yaw, v sin yaw, w); the
  lateral velocity is servoed to zero (no-slip). Forces are capped at the traction limit mu m g.
- `wheeled`: a free-floating chassis on two driven wheel hinges and the SDF's frictionless caster,
  on the floor under gravity, as Gazebo's DiffDrive system does: (v, w) -> wheel speeds
  (v -+ w b / 2) / r on velocity actuators.

Both apply the SDF's DiffDrive limits to every commanded (v, w) at every physics step, as DiffDrive's
speed limiter does: |v| <= max_linear_velocity, |w| <= max_angular_velocity, and the applied command
moves toward the target by at most max_linear_acceleration * dt (max_angular_acceleration * dt).
Robot chassis collide with each other and with the walls (collision bits: floor 0/1, wheels and
caster 1/0, chassis and walls 2/2). Robots are an array axis: qpos/qvel/ctrl are reshaped views
(n, dof); no Python loop over robots.

Counted while advancing (see `Counters`): robot-robot collisions (contact onsets of a pair), robot-wall
contact onsets, the deepest chassis overlap, and per robot the time spent blocked (commanded to drive
but moving at under half the applied command), from which `stuck` robots are read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import mujoco
import numpy as np

from altmarl_ros.contract import Fidelity, values
from altmarl_ros.errors import InputError
from altmarl_ros.physics.world import World

FIDELITIES = values(Fidelity)
FRICTION = 1.0  # floor / tyre friction coefficient (Gazebo's default ODE mu is 1)
STIFF_SOLREF = (0.01, 1.0)  # stiffer chassis contacts: 3-4x less penetration (shared/PHYSICS_AND_RAY 4)
STIFF_SOLIMP = (0.95, 0.99, 0.001, 0.5, 2.0)
BLOCKED_MIN_SPEED = 0.1  # m/s: below this applied |v| a robot is not trying to drive
ACCOUNT_PERIOD = 0.02  # s of simulated time between two samples of contacts and blocked robots
SEPARATION = 0.2  # s apart before a new touch of the same pair counts as a new collision (no chatter counts)


class Pose2D(NamedTuple):
    xy: np.ndarray  # (n, 2) m
    yaw: np.ndarray  # (n,) rad in (-pi, pi]


class Counters(NamedTuple):
    """What happened since the last `reset_counters` (simulated seconds `seconds`)."""

    seconds: float
    collisions: int  # robot-robot contact onsets: a pair starts touching after >= SEPARATION s apart
    wall_contacts: int  # robot-wall contact onsets (same rule)
    max_overlap: float  # m, deepest chassis-chassis or chassis-wall contact penetration seen
    blocked_time: np.ndarray  # (n,) s spent commanded to drive (|v| >= 0.1) but moving < half the command


@dataclass
class EngineOptions:
    """Knobs of the engine; the geometry comes from the World."""

    fidelity: str = "planar"
    timestep: float = 0.0  # s; 0 = the SDF's max_step_size
    servo_time_constant: float = 0.02  # s, planar velocity servo (kv = inertia / tau)
    solver: str = "newton"  # 'newton' | 'cg' (large jams: cheaper per step)
    memory_mb: int = 0  # MjData arena; 0 = 32 MB + 0.1 MB per robot

    def __post_init__(self) -> None:
        if self.fidelity not in FIDELITIES:
            raise InputError(f"physics fidelity must be one of {FIDELITIES}, got {self.fidelity!r}")
        if self.solver not in ("newton", "cg"):
            raise InputError(f"physics solver must be 'newton' or 'cg', got {self.solver!r}")
        if self.timestep < 0 or self.servo_time_constant <= 0:
            raise InputError("physics timestep must be >= 0 and servo_time_constant > 0")


def _quat_z(yaw: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], -1)


class PhysicsEngine:
    """n robots in the world; `set_cmd_vel` then `advance(seconds)`; `pose()` reads the physics state."""

    def __init__(self, world: World, xy: np.ndarray, yaw: np.ndarray, options: EngineOptions | None = None) -> None:
        self.world = world
        self.options = opts = options or EngineOptions()
        xy = np.asarray(xy, dtype=np.float64)
        yaw = np.asarray(yaw, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or yaw.shape != (xy.shape[0],):
            raise InputError(f"start poses must be (n, 2) xy and (n,) yaw, got {xy.shape} and {yaw.shape}")
        self.n = n = xy.shape[0]
        self.fidelity = opts.fidelity
        self.dt = opts.timestep or world.physics_step
        if self.dt < 2 * 1e-4 or STIFF_SOLREF[0] < 2 * self.dt:
            raise InputError(f"physics timestep {self.dt} s: must be in [2e-4, {STIFF_SOLREF[0] / 2}] s "
                             "(contact solref needs >= 2 steps)")
        self.model = self._build(world, n, opts)
        self.data = mujoco.MjData(self.model)
        robot = world.robot
        self.v_max, self.w_max = robot.max_linear_velocity, robot.max_angular_velocity
        self.a_max, self.alpha_max = robot.max_linear_acceleration, robot.max_angular_acceleration
        # geom id -> robot index (chassis only) / wall flag, for the contact bookkeeping
        self.geom_robot = np.full(self.model.ngeom, -1, dtype=np.int64)
        self.geom_wall = np.zeros(self.model.ngeom, dtype=bool)
        for i in range(n):
            self.geom_robot[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, f"r{i}_chassis")] = i
        for w in world.walls:
            self.geom_wall[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, f"wall_{w.name}")] = True
        dof = 3 if self.fidelity == "planar" else 9
        self._qpos = self.data.qpos.reshape(n, dof)
        self._qvel = self.data.qvel.reshape(n, 3 if self.fidelity == "planar" else 8)
        self._ctrl = self.data.ctrl.reshape(n, 3 if self.fidelity == "planar" else 2)
        self.target = np.zeros((n, 2))  # commanded (v, w), clipped to the speed limits
        self.applied = np.zeros((n, 2))  # after the acceleration limiter
        self.set_pose(xy, yaw)
        self._account_every = max(1, round(ACCOUNT_PERIOD / self.dt))
        self._since_account = 0
        self._last_touch: dict[int, float] = {}  # robot pair (i * n + j) or wall contact (-1 - i) -> sim time
        self.reset_counters()

    # --- model ----------------------------------------------------------------------------------
    @staticmethod
    def _build(world: World, n: int, opts: EngineOptions) -> mujoco.MjModel:
        robot = world.robot
        spec = mujoco.MjSpec()
        spec.modelname = f"{world.name}_{opts.fidelity}_{n}"
        spec.option.timestep = opts.timestep or world.physics_step
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        if opts.fidelity == "wheeled":  # pyramidal tyre friction turned robots driving at off-axis headings
            spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        spec.option.solver = mujoco.mjtSolver.mjSOL_CG if opts.solver == "cg" else mujoco.mjtSolver.mjSOL_NEWTON
        spec.memory = (opts.memory_mb or int(32 + 0.1 * n)) * 2 ** 20
        geom = mujoco.mjtGeom
        floor = spec.worldbody.add_geom(name="floor", type=geom.mjGEOM_PLANE, size=[20, 20, 0.1],
                                        contype=0, conaffinity=1)
        floor.friction = [FRICTION, 0.005, 0.0001]
        for wall in world.walls:
            spec.worldbody.add_geom(name=f"wall_{wall.name}", type=geom.mjGEOM_BOX, pos=list(wall.centre),
                                    size=[s / 2 for s in wall.size], contype=2, conaffinity=2, condim=1)
        half = [s / 2 for s in robot.chassis_size]
        for i in range(n):
            if opts.fidelity == "planar":
                body = spec.worldbody.add_body(name=f"r{i}")  # at the origin: slide qpos = world x, y
                for axis, name in (([1, 0, 0], "x"), ([0, 1, 0], "y")):
                    body.add_joint(name=f"r{i}_{name}", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=axis)
                body.add_joint(name=f"r{i}_yaw", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1])
                # one rigid body carrying the whole robot's mass and yaw inertia
                body.explicitinertial = True
                body.mass = robot.mass
                body.ipos = [0, 0, robot.chassis_pos[2]]
                body.inertia = [robot.yaw_inertia] * 3  # only izz acts (no roll/pitch dofs)
                chassis = body.add_geom(name=f"r{i}_chassis", type=geom.mjGEOM_BOX, pos=list(robot.chassis_pos),
                                        size=half, contype=2, conaffinity=2, mass=0)
            else:
                body = spec.worldbody.add_body(name=f"r{i}")
                body.add_freejoint(name=f"r{i}_free")
                chassis = body.add_geom(name=f"r{i}_chassis", type=geom.mjGEOM_BOX, pos=list(robot.chassis_pos),
                                        size=half, contype=2, conaffinity=2, mass=robot.chassis_mass)
                caster = body.add_geom(name=f"r{i}_caster", type=geom.mjGEOM_SPHERE, pos=list(robot.caster_pos),
                                       size=[robot.caster_radius, 0, 0], contype=1, conaffinity=0, condim=1,
                                       priority=1, mass=0)
                caster.friction = [0, 0, 0]
                for side, sign in (("L", 1.0), ("R", -1.0)):
                    wheel = body.add_body(name=f"r{i}_w{side}",
                                          pos=[robot.wheel_x, sign * robot.wheel_separation / 2, robot.wheel_radius])
                    wheel.add_joint(name=f"r{i}_j{side}", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 1, 0])
                    tyre = wheel.add_geom(name=f"r{i}_wheel{side}", type=geom.mjGEOM_CYLINDER,
                                          size=[robot.wheel_radius, robot.wheel_width / 2, 0],
                                          quat=[math.sqrt(0.5), math.sqrt(0.5), 0, 0], mass=robot.wheel_mass,
                                          contype=1, conaffinity=0)
                    tyre.friction = [FRICTION, 0.005, 0.0001]
            chassis.condim = 1  # frictionless bumpers: robots slide along each other and the walls (3x fewer
            # constraint rows than frictional contacts, which dominate the cost in crowds)
            chassis.solref = list(STIFF_SOLREF)
            chassis.solimp = list(STIFF_SOLIMP)
        traction = FRICTION * robot.mass * 9.81  # N, what the tyres can push with
        for i in range(n):
            if opts.fidelity == "planar":
                tau = opts.servo_time_constant
                for name, kv, limit in (("x", robot.mass / tau, traction), ("y", robot.mass / tau, traction),
                                        ("yaw", robot.yaw_inertia / tau, traction * robot.wheel_separation / 2)):
                    act = spec.add_actuator(name=f"r{i}_m{name}", trntype=mujoco.mjtTrn.mjTRN_JOINT,
                                            target=f"r{i}_{name}")
                    act.set_to_velocity(kv=kv)
                    act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
                    act.forcerange = [-limit, limit]
            else:
                torque = traction / 2 * robot.wheel_radius  # N m per wheel at the traction limit
                for side in ("L", "R"):
                    act = spec.add_actuator(name=f"r{i}_m{side}", trntype=mujoco.mjtTrn.mjTRN_JOINT,
                                            target=f"r{i}_j{side}")
                    act.set_to_velocity(kv=4 * torque)  # full torque at 0.25 rad/s of wheel-speed error
                    act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
                    act.forcerange = [-torque, torque]
        return spec.compile()

    # --- state ----------------------------------------------------------------------------------
    def set_pose(self, xy: np.ndarray, yaw: np.ndarray) -> None:
        """Place every robot (at rest) at (n, 2) xy, (n,) yaw."""
        self.data.qvel[:] = 0
        if self.fidelity == "planar":
            self._qpos[:, 0:2] = xy
            self._qpos[:, 2] = yaw
        else:
            self._qpos[:, 0:2] = xy
            self._qpos[:, 2] = 1e-4  # the model frame is on the floor; wheels and caster touch z = 0
            self._qpos[:, 3:7] = _quat_z(yaw)
            self._qpos[:, 7:9] = 0
        self.target[:] = 0
        self.applied[:] = 0
        self._cos, self._sin = np.cos(yaw), np.sin(yaw)
        mujoco.mj_forward(self.model, self.data)

    @property
    def time(self) -> float:
        """Simulated seconds since the engine was built."""
        return float(self.data.time)

    def pose(self) -> Pose2D:
        """(n, 2) xy and (n,) yaw of every robot's model frame, from the physics state."""
        q = self._qpos
        if self.fidelity == "planar":
            return Pose2D(q[:, 0:2].copy(), np.angle(np.exp(1j * q[:, 2])))
        w, x, y, z = q[:, 3], q[:, 4], q[:, 5], q[:, 6]
        return Pose2D(q[:, 0:2].copy(), np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))

    def velocity(self) -> np.ndarray:
        """(n, 2) measured (forward speed, yaw rate) of every robot."""
        yaw = self.pose().yaw
        qv = self._qvel
        forward = qv[:, 0] * np.cos(yaw) + qv[:, 1] * np.sin(yaw)
        yaw_rate = qv[:, 2] if self.fidelity == "planar" else qv[:, 5]  # free joint: local angular velocity
        return np.stack([forward, yaw_rate], -1)

    def tilt(self) -> np.ndarray:
        """(n,) z component of every chassis' up axis (1 upright; planar robots are always 1)."""
        if self.fidelity == "planar":
            return np.ones(self.n)
        _, x, y, _ = self._qpos[:, 3], self._qpos[:, 4], self._qpos[:, 5], self._qpos[:, 6]
        return 1 - 2 * (x * x + y * y)

    # --- driving --------------------------------------------------------------------------------
    def set_cmd_vel(self, cmd: np.ndarray) -> None:
        """(n, 2) commanded (v, w) (a Twist's linear.x, angular.z); non-finite -> 0; clipped to the limits."""
        cmd = np.where(np.isfinite(cmd), cmd, 0.0)
        self.target[:, 0] = np.clip(cmd[:, 0], -self.v_max, self.v_max)
        self.target[:, 1] = np.clip(cmd[:, 1], -self.w_max, self.w_max)

    def _apply(self) -> None:
        step = np.array([self.a_max, self.alpha_max]) * self.dt
        self.applied += np.clip(self.target - self.applied, -step, step)
        v, w = self.applied[:, 0], self.applied[:, 1]
        if self.fidelity == "planar":
            yaw = self._qpos[:, 2]
            self._cos, self._sin = np.cos(yaw), np.sin(yaw)
            self._ctrl[:, 0] = v * self._cos
            self._ctrl[:, 1] = v * self._sin
            self._ctrl[:, 2] = w
        else:
            q = self._qpos
            w_, z_ = q[:, 3], q[:, 6]  # heading of an (almost) upright chassis: yaw = 2 atan2(z, w)
            norm = np.hypot(w_, z_)
            c2, s2 = w_ / norm, z_ / norm
            self._cos, self._sin = c2 * c2 - s2 * s2, 2 * c2 * s2
            half, r = self.world.robot.wheel_separation / 2, self.world.robot.wheel_radius
            self._ctrl[:, 0] = (v - w * half) / r
            self._ctrl[:, 1] = (v + w * half) / r

    def advance(self, seconds: float) -> int:
        """Step the physics for `seconds` of simulated time (rounded to whole steps); returns the steps taken.

        Contacts and blocked time are sampled every ACCOUNT_PERIOD s of simulated time (not every step)."""
        steps = max(1, round(seconds / self.dt))
        model, data = self.model, self.data
        for _ in range(steps):
            self._apply()
            mujoco.mj_step(model, data)
            self._since_account += 1
            if self._since_account >= self._account_every:
                self._account(self._since_account * self.dt)
                self._since_account = 0
        return steps

    # --- bookkeeping ----------------------------------------------------------------------------
    def reset_counters(self) -> None:
        self._t0 = self.time
        self._collisions = 0
        self._wall_contacts = 0
        self._max_overlap = 0.0
        self._blocked = np.zeros(self.n)

    def counters(self) -> Counters:
        return Counters(self.time - self._t0, self._collisions, self._wall_contacts, self._max_overlap,
                        self._blocked.copy())

    def _account(self, elapsed: float) -> None:
        ncon = self.data.ncon
        if ncon:
            con = self.data.contact
            g1, g2 = con.geom1[:ncon], con.geom2[:ncon]
            r1, r2 = self.geom_robot[g1], self.geom_robot[g2]
            both = (r1 >= 0) & (r2 >= 0)
            wall = ((r1 >= 0) & self.geom_wall[g2]) | ((r2 >= 0) & self.geom_wall[g1])
            solid = both | wall
            if solid.any():
                pair = np.minimum(r1[both], r2[both]) * self.n + np.maximum(r1[both], r2[both])
                keys = np.unique(np.concatenate([pair, -1 - np.maximum(r1[wall], r2[wall])]))
                now, last = self.data.time, self._last_touch
                for key in keys.tolist():
                    if now - last.get(key, -math.inf) > SEPARATION:
                        if key >= 0:
                            self._collisions += 1
                        else:
                            self._wall_contacts += 1
                    last[key] = now
                if len(last) > 4 * self.n + 1000:  # forget pairs apart for longer than SEPARATION
                    self._last_touch = {k: t for k, t in last.items() if now - t <= SEPARATION}
                self._max_overlap = max(self._max_overlap, float(-con.dist[:ncon][solid].min()))
        v_cmd = self.applied[:, 0]
        trying = np.abs(v_cmd) >= BLOCKED_MIN_SPEED
        if trying.any():
            forward = (self._qvel[:, 0] * self._cos + self._qvel[:, 1] * self._sin) * np.sign(v_cmd)
            self._blocked += elapsed * (trying & (forward < 0.5 * np.abs(v_cmd)))
