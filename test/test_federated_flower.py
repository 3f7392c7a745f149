"""Issue 18 in Flower: a small simulation (8 clients, k = 3, 5 rounds) runs the exploration, Flower's
FedAvg and the learned strategy end to end, and its records are consistent and identifiable.

Needs flwr (its own venv: flwr 1.42 pins ray 2.55.1 and protobuf < 7, the project venv has ray 2.60 and
protobuf 7); skipped without it. Flower's simulation engine runs here with the in-process backend
(`federated.inprocess`): the same ServerApp, Strategy, Grid, SuperLink state and messages, with the
ClientApp called in the engine's worker thread instead of a Ray actor (Ray's start-up alone takes longer
on a loaded 2-core machine than this whole test); the benches use Ray.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr", reason="flwr lives in .venv-fl: `make test` runs this module there (make flower)")

import itertools

from altmarl_ros.federated.clients import OFFLINE
from altmarl_ros.federated.game import TRAIN, ParticipationGame, TrainedPolicy, read_participation
from altmarl_ros.federated.identify import identify_runs, transitions
from altmarl_ros.federated.runner import Fleet, RunSpec, run_plan

ROOT = Path(__file__).resolve().parent.parent
N, K, ROUNDS = 8, 3, 5


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[list], ParticipationGame]:
    from altmarl_ros.marl.config import load_train_config
    from altmarl_ros.marl.experiments import train_policies

    nominal = read_participation(ROOT / "config/games/federated_participation.yaml")
    game = ParticipationGame(nominal.polled, nominal.Q_unpolled, N)
    path = game.write_tabular(tmp_path_factory.mktemp("game") / "g.yaml", K)
    config = load_train_config(ROOT / "config/federated_train.yaml", game=str(path), n_agents=N, k=K,
                               loop={"max_rounds": 2, "eval_episodes": 8, "eval_horizon": 20, "starts": ["g_first"]},
                               full_information={"enabled": False})
    trained = train_policies(config, k=K, seed=0)
    policy = TrainedPolicy(trained.pi_g, trained.pi_l, K, trained.game.fingerprint, trained.game.name)
    plan = [RunSpec(name, 3, ROUNDS, K, record_probe=True) for name in ("explore", "fedavg", "learned")]
    logs = run_plan(plan, Fleet("digits", N, 0), policy=policy, game=game.tabular(K), backend="inprocess")
    return logs, game


def test_every_strategy_polls_k_and_reports_consistent_states(runs: tuple[list[list], ParticipationGame]) -> None:
    logs, _ = runs
    for run in logs:
        assert [r.t for r in run] == list(range(1, ROUNDS + 1))
        for prev, cur in itertools.pairwise(run):
            assert len(cur.polled) + cur.offline_polled == K
            assert len(set(cur.polled)) == len(cur.polled)
            # a polled client reports the state the probe saw for it at the end of the previous round
            assert cur.states == [prev.probe[p] for p in cur.polled]
            assert OFFLINE not in cur.states
            assert cur.offline_polled <= sum(1 for s in prev.probe if s == OFFLINE)
        assert all(0.0 <= r.accuracy <= 1.0 for r in run) and all(len(r.probe) == N for r in run)


def test_uploads_follow_each_strategys_rule(runs: tuple[list[list], ParticipationGame]) -> None:
    explore, fedavg, learned = runs[0]
    assert all(r.uploads == len(r.polled) for r in fedavg)  # FedAvg: every answering client uploads
    assert sum(r.uploads for r in fedavg) > 0
    for run in (explore, learned):
        for r in run:
            wanted = sum(r.actions) if r.s_g % 2 == TRAIN else 0
            assert r.uploads == wanted  # only clients whose pi_l said upload, and only in a train round
    changed = [b.accuracy != a.accuracy for a, b in itertools.pairwise(fedavg) if b.uploads > 0]
    assert any(changed)  # Flower's aggregate moved the model


def test_records_are_identifiable(runs: tuple[list[list], ParticipationGame]) -> None:
    logs, game = runs
    polled, unpolled = transitions(logs[0], N)
    ok_p = (polled.a_l >= 0).sum(axis=1)
    ok_u = (unpolled.a_l >= 0).sum(axis=1)
    assert np.all(ok_p + ok_u == N)  # every client's step is recorded once, polled or not
    assert np.all(ok_p == K)
    ident = identify_runs(logs, game)
    assert ident.report["polled_transitions"] == 3 * K * (ROUNDS - 1)
    assert ident.report["unpolled_transitions"] == 3 * (N - K) * (ROUNDS - 1)
    assert np.allclose(ident.game.tabular(K).P_l.sum(-1), 1.0)
