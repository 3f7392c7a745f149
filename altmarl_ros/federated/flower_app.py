"""The Flower side: one ClientApp, the learned-policy Strategy, the recorded FedAvg baseline (imports flwr).

Messages (Flower's Message API, flwr >= 1.21): a train message carries the global model ("arrays")
and a config with the run seed, the round, the fleet (dataset, n, fleet seed), the server's held-out
loss (for the client's loss state), the phase of the round and the client policy's upload probability
per client state (pi_l's row for the round's s_g; "always" for FedAvg's clients). An offline client
replies with an error (code OFFLINE_CODE): the server sees no answer. An online client replies its
state and action, and, when it uploads, its locally trained model.

An evaluate message (recording runs only) is the probe of the records: every client reports its state
for the next round, so the transitions of unpolled clients are recorded as well. It is instrumentation
of the simulation (a deployed server could not see offline clients) and never reaches a policy.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from altmarl_ros.errors import InputError
from altmarl_ros.federated import clients as fcl
from altmarl_ros.federated import data as fdata
from altmarl_ros.federated.game import HOLD, TRAIN, UPLOAD, quality, s_g_index

WEIGHT_KEY = "num-examples"


@lru_cache(maxsize=8)
def fleet(dataset: str, n_clients: int, fleet_seed: int) -> tuple[tuple[fdata.Split, ...],
                                                                  tuple[fcl.ClientProfile, ...]]:
    """Every client's data shard and profile (cached per Ray actor: a pure function of its arguments)."""
    train, _ = fdata.load(dataset)
    return tuple(fdata.partition(train, n_clients, fleet_seed)), tuple(fcl.profiles(n_clients, fleet_seed))


OFFLINE_CODE = 1801  # the error code of an offline client's reply


def _client_state(cfg: ConfigRecord, pid: int, params: list[np.ndarray],
                  t: int) -> tuple[int, fdata.Split, fcl.ClientProfile]:
    parts, profs = fleet(str(cfg["dataset"]), int(cfg["n-clients"]), int(cfg["fleet-seed"]))
    if not fcl.is_online(profs[pid], int(cfg["run-seed"]), pid, t):
        return fcl.OFFLINE, parts[pid], profs[pid]
    return fcl.loss_state(fdata.loss(params, parts[pid]), float(cfg["reference-loss"])), parts[pid], profs[pid]


client_app = ClientApp()


@client_app.train()
def client_train(msg: Message, context: Context) -> Message:
    """A polled client: report state and action; upload a locally trained model when pi_l says so."""
    cfg, pid = msg.content["config"], int(context.node_config["partition-id"])
    t, seed = int(cfg["server-round"]), int(cfg["run-seed"])
    params = msg.content["arrays"].to_numpy_ndarrays()
    state, part, profile = _client_state(cfg, pid, params, t)
    if state == fcl.OFFLINE:  # no answer to the poll: an error reply, as for a client that timed out
        return Message(Error(OFFLINE_CODE, f"client {pid} is offline in round {t}"), reply_to=msg)
    p_upload = 1.0 if cfg["policy"] == "always" else float(cfg["p-upload"][state])  # type: ignore[index]
    action = int(fcl.client_rng(seed, pid, t, 0).random() < p_upload)
    metrics = MetricRecord({WEIGHT_KEY: int(part.y.size), "state": state, "action": action, "partition": pid})
    if action == UPLOAD and cfg["phase"] == "train":
        new = fdata.sgd(params, part, fcl.client_rng(seed, pid, t, 1), epochs=profile.epochs)
        return Message(RecordDict({"arrays": ArrayRecord(new), "metrics": metrics}), reply_to=msg)
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


@client_app.evaluate()
def client_probe(msg: Message, context: Context) -> Message:
    """The records' probe: this client's state in round `state-round` under the new global model."""
    cfg, pid = msg.content["config"], int(context.node_config["partition-id"])
    params = msg.content["arrays"].to_numpy_ndarrays()
    state, part, _ = _client_state(cfg, pid, params, int(cfg["state-round"]))
    return Message(RecordDict({"metrics": MetricRecord({WEIGHT_KEY: int(part.y.size), "state": state,
                                                        "partition": pid})}), reply_to=msg)


def _all_nodes(grid: Grid, n: int, wait_s: float = 120.0) -> list[int]:
    """The n connected node ids, sorted (waits for the simulation to register them, as Flower's sample_nodes)."""
    deadline = time.monotonic() + wait_s
    while len(nodes := sorted(grid.get_node_ids())) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return nodes


@dataclass
class RoundLog:
    """One round of a run, as the server saw it (plus the probe when recording)."""

    t: int
    s_g: int
    a_g: int  # the phase chosen for the next round (FedAvg: always train)
    polled: list[int]  # partitions that answered, in reply order
    states: list[int]  # their reported states
    actions: list[int]
    offline_polled: int  # polled clients that did not answer
    uploads: int
    accuracy: float  # global model after this round's aggregation
    loss: float
    probe: list[int] | None = None  # (n,) every client's state for round t + 1 (recording runs)
    offline_nodes: list[int] = field(default_factory=list)  # node ids of the unanswered polls


GlobalChoice = Callable[[int, np.ndarray, np.random.Generator], int]  # (s_g, counts (S_l,), rng) -> a_g


class _Recording:
    """Shared bookkeeping of both strategies: server-side evaluation, the probe and the round logs."""

    def _setup(self, *, fleet_cfg: dict, test: fdata.Split, record_probe: bool) -> None:
        self.fleet_cfg, self.test, self.record_probe = fleet_cfg, test, record_probe
        self.logs: list[RoundLog] = []
        self.node_partition: dict[int, int] = {}

    def _config(self, config: ConfigRecord, params: list[np.ndarray]) -> ConfigRecord:
        cfg = ConfigRecord(dict(config))
        for key, value in self.fleet_cfg.items():
            cfg[key] = value
        cfg["reference-loss"] = fdata.loss(params, self.test)
        return cfg

    def _read(self, replies: Iterable[Message]) -> tuple[list[Message], list[Message]]:
        ok: list[Message] = []
        bad: list[Message] = []
        for msg in replies:
            (bad if msg.has_error() else ok).append(msg)
        for msg in ok:
            self.node_partition[msg.metadata.src_node_id] = int(msg.content["metrics"]["partition"])
        return ok, bad

    # Flower's evaluate round is the probe (every client reports its state); the mixin precedes FedAvg in the MRO
    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        if not self.record_probe:
            return []
        cfg = self._config(config, arrays.to_numpy_ndarrays())
        cfg["server-round"], cfg["state-round"] = server_round, server_round + 1
        record = RecordDict({"arrays": arrays, "config": cfg})
        return [Message(content=record, message_type="evaluate", dst_node_id=node) for node in grid.get_node_ids()]

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        ok, _ = self._read(replies)
        states = [-1] * int(self.fleet_cfg["n-clients"])
        for msg in ok:
            states[int(msg.content["metrics"]["partition"])] = int(msg.content["metrics"]["state"])
        if self.logs:
            self.logs[-1].probe = states
        return None

    def log_round(self, t: int, s_g: int, a_g: int, ok: list[Message], bad: list[Message], uploads: int,
                  params: list[np.ndarray]) -> None:
        m = [msg.content["metrics"] for msg in ok]
        self.logs.append(RoundLog(t, s_g, a_g, [int(x["partition"]) for x in m], [int(x["state"]) for x in m],
                                  [int(x["action"]) for x in m], len(bad), uploads, fdata.accuracy(params, self.test),
                                  fdata.loss(params, self.test),
                                  offline_nodes=[int(msg.metadata.src_node_id) for msg in bad]))


class PolicyStrategy(_Recording, FedAvg):
    """Each round: sample k clients, let them act by pi_l, apply pi_g to their reported counts.

    `choose(s_g, counts, rng) -> a_g` is pi_g (a trained TabularGlobalPolicy via `policy_choice`, or
    an exploration rule); `p_upload[s_g, s_l]` is pi_l's probability of `upload`.
    """

    def __init__(self, *, k: int, choose: GlobalChoice, p_upload: np.ndarray, seed: int, fleet_cfg: dict,
                 test: fdata.Split, record_probe: bool = False) -> None:
        FedAvg.__init__(self, fraction_train=1e-9, fraction_evaluate=1e-9, min_train_nodes=k, min_evaluate_nodes=0,
                        min_available_nodes=k, weighted_by_key=WEIGHT_KEY)
        self._setup(fleet_cfg=fleet_cfg, test=test, record_probe=record_probe)
        self.k, self.choose, self.p_upload = k, choose, np.asarray(p_upload, dtype=np.float64)
        self.rng = np.random.default_rng([seed, 71])
        self.phase, self.s_g = TRAIN, 0

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        params = arrays.to_numpy_ndarrays()
        self._current = arrays
        nodes = _all_nodes(grid, int(self.fleet_cfg["n-clients"]))
        if self.k > len(nodes):
            raise InputError(f"k = {self.k} exceeds the {len(nodes)} connected clients")
        self.s_g = s_g_index(quality(fdata.accuracy(params, self.test)), self.phase)
        cfg = self._config(config, params)
        cfg.update({"server-round": server_round, "policy": "learned", "phase": ("train", "hold")[self.phase],
                    "p-upload": [float(p) for p in self.p_upload[self.s_g]]})
        polled = [nodes[i] for i in self.rng.choice(len(nodes), size=self.k, replace=False)]
        record = RecordDict({"arrays": arrays, "config": cfg})
        return [Message(content=record, message_type="train", dst_node_id=int(node)) for node in polled]

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None,
                                                                                      MetricRecord | None]:
        ok, bad = self._read(replies)
        counts = np.zeros(3, dtype=np.int64)
        counts[fcl.OFFLINE] = self.k - len(ok)  # an unanswered poll reads as offline
        for msg in ok:
            counts[int(msg.content["metrics"]["state"])] += 1
        uploads = [msg.content for msg in ok if "arrays" in msg.content.array_records]
        arrays = aggregate_arrayrecords(uploads, WEIGHT_KEY) if uploads else None
        a_g = int(self.choose(self.s_g, counts, self.rng))
        params = (arrays if arrays is not None else self._current).to_numpy_ndarrays()
        self.log_round(server_round, self.s_g, a_g, ok, bad, len(uploads), params)
        self.phase = a_g
        return arrays, MetricRecord({"uploads": len(uploads)})


class RecordedFedAvg(_Recording, FedAvg):
    """Flower's FedAvg sampling k of the n clients uniformly (its own `sample_nodes`), every polled
    online client training and uploading; only the bookkeeping is added."""

    def __init__(self, *, k: int, n: int, seed: int, fleet_cfg: dict, test: fdata.Split, record_probe: bool = False):
        super().__init__(fraction_train=k / n, fraction_evaluate=1e-9, min_train_nodes=k, min_evaluate_nodes=0,
                         min_available_nodes=n, weighted_by_key=WEIGHT_KEY)
        self._setup(fleet_cfg=fleet_cfg, test=test, record_probe=record_probe)
        self.seed, self.k = seed, k

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        if server_round == 1:
            random.seed(self.seed)  # Flower's sample_nodes draws from Python's global generator
        params = arrays.to_numpy_ndarrays()
        self._current, self._s_g = arrays, s_g_index(quality(fdata.accuracy(params, self.test)), TRAIN)
        cfg = self._config(config, params)
        cfg.update({"policy": "always", "phase": "train", "p-upload": [1.0, 1.0, 1.0]})
        return super().configure_train(server_round, arrays, cfg, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None,
                                                                                      MetricRecord | None]:
        replies = list(replies)
        ok, bad = self._read(replies)
        arrays, metrics = super().aggregate_train(server_round, replies)
        params = (arrays if arrays is not None else self._current).to_numpy_ndarrays()
        self.log_round(server_round, self._s_g, TRAIN, ok, bad, len(ok), params)
        return arrays, metrics


__all__ = ["HOLD", "PolicyStrategy", "RecordedFedAvg", "RoundLog", "client_app", "fleet"]
