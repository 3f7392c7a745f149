"""Run plans of federated runs in ONE Flower simulation (one Ray start-up for all of them).

A plan is a list of `RunSpec`s; the ServerApp runs them one after the other on the same simulated
fleet of n SuperNodes, each from its own seed (initial model, availability traces, client actions,
polling), and returns every run's round logs. Clients are stateless (their availability and
randomness are functions of (run seed, client, round)), so runs do not leak into each other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.federated import data as fdata
from altmarl_ros.federated.game import TRAIN, TrainedPolicy, check_policy
from altmarl_ros.marl.game import TabularGame

STRATEGIES = ("learned", "fedavg", "explore")
BACKENDS = ("ray", "inprocess")
EXPLORE_HOLD = 0.3  # exploration: P(next phase = hold); clients upload with 0.5 in every state


@dataclass(frozen=True)
class RunSpec:
    strategy: str  # learned (pi_g, pi_l) | fedavg (Flower's FedAvg) | explore (random phases, uniform pi_l)
    seed: int
    rounds: int
    k: int
    record_probe: bool = False


@dataclass(frozen=True)
class Fleet:
    dataset: str
    n_clients: int
    fleet_seed: int

    def config(self, run_seed: int) -> dict:
        return {"dataset": self.dataset, "n-clients": self.n_clients, "fleet-seed": self.fleet_seed,
                "run-seed": run_seed}


def _strategy(spec: RunSpec, fleet: Fleet, test: fdata.Split, policy: TrainedPolicy | None):
    from altmarl_ros.federated.flower_app import PolicyStrategy, RecordedFedAvg

    cfg = fleet.config(spec.seed)
    if spec.strategy == "fedavg":
        return RecordedFedAvg(k=spec.k, n=fleet.n_clients, seed=spec.seed, fleet_cfg=cfg, test=test,
                              record_probe=spec.record_probe)
    if spec.strategy == "explore":
        def choose(s_g: int, counts: np.ndarray, rng: np.random.Generator) -> int:
            return int(rng.random() < EXPLORE_HOLD)

        p_upload = np.full((8, 3), 0.5)
    else:
        if policy is None:
            raise InputError("the learned strategy needs a trained policy")
        pi_g, pi_l = policy.pi_g, policy.pi_l

        def choose(s_g: int, counts: np.ndarray, rng: np.random.Generator) -> int:
            return int(pi_g.act(np.array([s_g]), counts[None, :])[0])

        p_upload = pi_l.probs[:, :, 1]
    return PolicyStrategy(k=spec.k, choose=choose, p_upload=p_upload, seed=spec.seed, fleet_cfg=cfg, test=test,
                          record_probe=spec.record_probe)


def run_plan(plan: list[RunSpec], fleet: Fleet, *, policy: TrainedPolicy | None = None, game: TabularGame | None = None,
             on_run: Callable[[int, RunSpec], None] | None = None, temp_dir: str | None = None,
             backend: str = "ray") -> list[list]:
    """Run every spec of `plan` in one Flower simulation; returns each run's list of RoundLog.

    backend: "ray" (Flower's simulation engine as shipped) or "inprocess" (the same engine with the
    ClientApp called in process, `federated.inprocess`: no Ray start-up, for tests). A `policy` is
    checked against `game` (the game it must have been trained on) and every learned run's k first."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; backends: {list(BACKENDS)}")
    for spec in plan:
        if spec.strategy not in STRATEGIES:
            raise InputError(f"unknown strategy {spec.strategy!r}; strategies: {list(STRATEGIES)}")
        if not 1 <= spec.k <= fleet.n_clients:
            raise InputError(f"k must satisfy 1 <= k <= n = {fleet.n_clients}, got k = {spec.k}")
        if spec.strategy == "learned":
            if policy is None or game is None:
                raise InputError("a learned run needs the trained policy and the game it is meant for")
            check_policy(policy, k=spec.k, game=game)
    train, test = fdata.load(fleet.dataset)
    fdata.partition(train, fleet.n_clients, fleet.fleet_seed)  # fail here, not inside a Ray actor
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from flwr.app import ArrayRecord, ConfigRecord, Context
    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation

    from altmarl_ros.federated.flower_app import client_app

    results: list[list] = []
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        for i, spec in enumerate(plan):
            strategy = _strategy(spec, fleet, test, policy)
            strategy.start(grid=grid, initial_arrays=ArrayRecord(fdata.init_params(spec.seed)), num_rounds=spec.rounds,
                           train_config=ConfigRecord({}), evaluate_config=ConfigRecord({}))
            results.append(strategy.logs)
            if on_run is not None:
                on_run(i, spec)

    tmp = temp_dir or tempfile.mkdtemp(prefix="altmarl_fl_ray_")  # Ray leaves its session dir behind
    config = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
               "init_args": {"num_cpus": 2, "include_dashboard": False, "object_store_memory": 100 * 2**20,
                             "_temp_dir": tmp, "log_to_driver": False}}
    for name in ("flwr", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with contextlib.ExitStack() as stack:
            if backend == "inprocess":
                from altmarl_ros.federated.inprocess import inprocess_backend

                stack.enter_context(inprocess_backend())
            run_simulation(server_app=server_app, client_app=client_app, num_supernodes=fleet.n_clients,
                           backend_config=config)
    finally:
        if temp_dir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    if len(results) != len(plan):
        raise RuntimeError(f"the Flower simulation finished {len(results)} of {len(plan)} runs (see its log)")
    return results


def curves(logs: list) -> dict[str, np.ndarray]:
    """Accuracy, cumulative uploads and phases per round of one run."""
    return {"accuracy": np.array([r.accuracy for r in logs]), "uploads": np.cumsum([r.uploads for r in logs]),
            "train": np.array([r.s_g % 2 == TRAIN for r in logs])}
