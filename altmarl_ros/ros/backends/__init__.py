"""Simulator backends of sim_node, chosen by its `mode` parameter (see `base` for the interface).

Adding a mode is a member of `contract.SimMode` (the name every layer shares) and one registry line:
`SimMode.NAME: Entry('module:Class', drives)`. The module is imported
only when its mode is chosen (so e.g. a MuJoCo backend's import costs nothing to the others), and
`drives` is known without importing it (the bringup plan and the CLI need it to decide whether robot
nodes publish cmd_vel). This package imports no rclpy (test_layering checks it): it is the ROS layer's
because sim_node runs it, and it sits above `altmarl_ros.physics` (the ROS-free engine the physics
backend drives).
"""

from __future__ import annotations

from importlib import import_module
from typing import NamedTuple

from altmarl_ros.contract import SimMode, values
from altmarl_ros.errors import InputError


class Entry(NamedTuple):
    target: str  # 'package.module:Class', a SimBackend subclass
    drives: bool  # robots move by cmd_vel (see SimBackend.drives)


BACKENDS: dict[str, Entry] = {
    SimMode.MODEL: Entry("altmarl_ros.ros.backends.model:ModelBackend", drives=False),
    SimMode.KINEMATIC: Entry("altmarl_ros.ros.backends.kinematic:KinematicBackend", drives=True),
    SimMode.PHYSICS: Entry("altmarl_ros.ros.backends.physics:PhysicsBackend", drives=True),  # MuJoCo
}
MODES = values(SimMode)
if set(BACKENDS) != set(SimMode):
    raise ImportError(f"backend registry {sorted(BACKENDS)} and contract.SimMode {MODES} differ")


def backend_class(mode: str):
    """The SimBackend subclass registered for `mode` (ValueError naming the known modes otherwise)."""
    if mode not in BACKENDS:
        raise ValueError(f"unknown simulator mode {mode!r}; known: {list(MODES)}")
    return _load(BACKENDS[mode].target, mode)


def _load(target: str, mode: str):
    """Import 'package.module:Class' and check its `drives` against mode's registry entry."""
    module, _, name = target.partition(":")
    cls = getattr(import_module(module), name)
    if cls.drives != BACKENDS[mode].drives:
        raise TypeError(f"{target}.drives is {cls.drives} but the registry entry of mode {mode!r} says "
                        f"{BACKENDS[mode].drives}")
    return cls


# Continuous policies (issue 17; `corridor`): the continuous warehouse on a corridor, per mode.
CONTINUOUS_BACKENDS: dict[str, str] = {
    SimMode.MODEL: "altmarl_ros.ros.backends.corridor:CorridorModelBackend",
    SimMode.KINEMATIC: "altmarl_ros.ros.backends.corridor:CorridorKinematicBackend",
    SimMode.PHYSICS: "altmarl_ros.ros.backends.corridor_physics:CorridorPhysicsBackend",
}


def continuous_backend_class(mode: str):
    """The corridor backend of `mode` for continuous policies (InputError naming the modes that have one)."""
    if mode not in CONTINUOUS_BACKENDS:
        raise InputError(f"mode {mode!r} has no backend for continuous policies; use one of "
                         f"{sorted(CONTINUOUS_BACKENDS)}")
    return _load(CONTINUOUS_BACKENDS[mode], mode)


def drives(mode: str) -> bool:
    return BACKENDS[mode].drives
