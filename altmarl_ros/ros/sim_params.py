"""sim_node's parameters: declared, read and validated in one place into a frozen record.

The simulator backend declares its own (`SimBackend.__init__`'s `declare`); everything else sim_node
reads is here, with its default, range and description (`ros2 param describe`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rclpy.node import Node

from altmarl_ros.ros.backends import MODES
from altmarl_ros.ros.common import ParameterError, declare, declare_string_list, robot_list


@dataclass(frozen=True)
class SimParams:
    """sim_node's own parameters, declared, read and validated in one place (`read`); the backend declares
    its own. Field names are the parameter names; `robots` is the resolved registry (names)."""

    robots: tuple[str, ...]
    mode: str
    lockstep: bool
    step_period: float
    step_timeout: float
    steps: int
    seed: int
    record_path: str
    bag_path: str
    autostart: bool
    startup_timeout: float
    tolerate_lost_robots: bool
    max_missed: int
    policy_path: str
    game: str
    game_options: dict[str, Any]
    zones_path: str
    physics_rate: float
    cmd_timeout: float

    @classmethod
    def read(cls, node: Node, who: str) -> SimParams:
        """Declare every parameter on `node` and return their values; a ParameterError (prefixed `who`) names
        a bad one."""
        def d(*args, **kwargs):
            return declare(node, *args, **kwargs)
        robots = declare_string_list(node, "robots", "robot registry (names); empty = robot_0..n_robots-1")
        n_robots = d("n_robots", 0, "number of robots when 'robots' is empty", low=0)
        values = dict(
            mode=d("mode", "model", "simulator backend (altmarl_ros.ros.backends)", choices=MODES),
            lockstep=d("lockstep", True, "wait for every live answer (else real-time steps)"),
            step_period=d("step_period", 0.1, "s per step (free-running / kinematic), or minimum s per step in "
                          "model lockstep (0 = as fast as answers come)", low=0.0, high=3600.0),
            step_timeout=d("step_timeout", 1.0, "s after which missing answers are dropped", low=0.001,
                           high=3600.0),
            steps=d("steps", 0, "stop after this many steps (0 = until stopped)", low=0),
            seed=d("seed", 0, "seed of the simulator's randomness", low=0),
            record_path=d("record_path", "", "write the per-step record (JSON) here; '' = none"),
            bag_path=d("bag_path", "", "record a rosbag2 (mcap) directory here; '' = none"),
            autostart=d("autostart", True, "start once all nodes are matched (else wait for 'start' on "
                        "/swarm/command)"),
            startup_timeout=d("startup_timeout", 60.0, "s for every node to match and to answer the first step",
                              low=0.0, high=3600.0),
            tolerate_lost_robots=d("tolerate_lost_robots", False, "robots that never answer the first step: "
                                   "false = stop with an error naming their hosts; true = run without them"),
            max_missed=d("max_missed", 3, "missed steps after which a node is not waited for", low=1),
            policy_path=d("policy_path", "", "policy artifact whose game is simulated (when 'game' is '')"),
            game=d("game", "", "game registry name; '' = the policy artifact's game"),
            game_options=d("game_options", "{}", "JSON object of game overrides (with 'game')"),
            zones_path=d("zones_path", "", "zones YAML; '' = share/config/zones.yaml"),
            physics_rate=d("physics_rate", 20.0, "Hz, kinematic integration rate", low=1.0, high=1000.0),
            cmd_timeout=d("cmd_timeout", 0.5, "s after which a cmd_vel is stale -> zero", low=0.0, high=60.0))
        names = tuple(robot_list(node, robots, n_robots))
        options: dict[str, Any] = {}
        if values["game"]:
            try:
                options = json.loads(values["game_options"])
            except json.JSONDecodeError as exc:
                raise ParameterError(f"{who}: parameter 'game_options' is not JSON: {exc}") from exc
        values["game_options"] = options
        if not values["lockstep"] and values["step_period"] <= 0:
            raise ParameterError(f"{who}: parameter 'step_period' must be > 0 when lockstep is false")
        return cls(robots=names, **values)
