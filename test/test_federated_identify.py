"""Issue 18 without Flower: the participation game's reduction, its file format, identification from
synthetic records of a known game, and the learned strategy refusing a policy for another k or game."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from altmarl_ros.federated.clients import OFFLINE
from altmarl_ros.federated.game import (
    ParticipationGame,
    TrainedPolicy,
    check_policy,
    participation_to_dict,
    read_participation,
)
from altmarl_ros.federated.identify import fit_upload_value, identify_runs, predictive_p_values
from altmarl_ros.federated.runner import Fleet, RunSpec, run_plan
from altmarl_ros.marl.games.files import GameFileError
from altmarl_ros.marl.policy import TabularGlobalPolicy, TabularLocalPolicy

ROOT = Path(__file__).resolve().parent.parent
NOMINAL = ROOT / "config/games/federated_participation.yaml"


def _known_game(rng: np.random.Generator) -> ParticipationGame:
    """The nominal game with random (Dirichlet) client kernels: the truth the records come from. An offline
    client does nothing whatever it is asked: its row is the same polled or not, for every action."""
    nominal = read_participation(NOMINAL)
    g = nominal.polled
    P_l = rng.dirichlet(np.full(3, 2.0), size=g.P_l.shape[:3])
    Q = rng.dirichlet(np.full(3, 2.0), size=nominal.Q_unpolled.shape[:2])
    P_l[OFFLINE] = Q[OFFLINE][:, None, :]
    polled = type(g)(P_g=g.P_g, P_l=P_l, r_g=g.r_g, r_l=g.r_l, gamma=g.gamma, init_g=g.init_g,
                     init_l_concentration=1.0, name="truth", labels=g.names)
    return ParticipationGame(polled, Q, 40)


def _records(game: ParticipationGame, k: int, rounds: int, rng: np.random.Generator,
             beta: tuple[float, float] = (0.001, 0.004)) -> list:
    """Round logs as the Flower server writes them, simulated from the game's kernels."""
    g, n = game.polled, game.n_agents
    s_l = rng.integers(3, size=n)
    s_g, loss, logs = 0, 2.0, []
    for t in range(1, rounds + 1):
        polled = rng.choice(n, size=k, replace=False)
        a_l = rng.integers(2, size=n)
        a_g = int(rng.integers(2))
        nxt = np.array([rng.choice(3, p=game.Q_unpolled[s, s_g]) for s in s_l])
        for i in polled:
            nxt[i] = rng.choice(3, p=g.P_l[s_l[i], s_g, a_l[i]])
        answered = [int(i) for i in polled if s_l[i] != OFFLINE]
        ups = [sum(1 for i in answered if s_l[i] == st and a_l[i] == 1) for st in (1, 2)]
        new_loss = loss - (beta[0] * ups[0] + beta[1] * ups[1] if s_g % 2 == 0 else 0.0) + rng.normal(0, 1e-4)
        logs.append(SimpleNamespace(t=t, s_g=s_g, a_g=a_g, polled=answered, states=[int(s_l[i]) for i in answered],
                                    actions=[int(a_l[i]) for i in answered], offline_polled=k - len(answered),
                                    uploads=sum(ups), accuracy=0.5, loss=new_loss, probe=nxt.tolist()))
        s_g, s_l, loss = int(rng.choice(g.n_global_states, p=g.P_g[s_g, a_g])), nxt, new_loss
    return logs


def test_identification_recovers_a_known_table_from_synthetic_records() -> None:
    rng = np.random.default_rng(3)
    truth = _known_game(rng)
    nominal = read_participation(NOMINAL)
    runs = [_records(truth, 10, 400, rng) for _ in range(2)]
    ident = identify_runs(runs, ParticipationGame(nominal.polled, nominal.Q_unpolled, truth.n_agents))
    rows = ident.P_polled.counts.sum(-1) >= 30
    assert rows.sum() >= 20
    tv = 0.5 * np.abs(ident.P_polled.mean - truth.polled.P_l).sum(-1)
    tv_prior = 0.5 * np.abs(nominal.polled.P_l - truth.polled.P_l).sum(-1)
    assert np.median(tv[rows]) < 0.5 * np.median(tv_prior[rows])
    assert ident.P_polled.covers(truth.polled.P_l, min_count=30) >= 0.85
    assert ident.Q_unpolled.covers(truth.Q_unpolled, min_count=30) >= 0.85
    assert ident.P_g.covers(truth.polled.P_g, min_count=30) >= 0.85


def test_upload_value_fit_recovers_the_per_state_values() -> None:
    rng = np.random.default_rng(5)
    runs = [_records(_known_game(rng), 10, 300, rng, beta=(0.001, 0.004))]
    beta, err = fit_upload_value(runs, 4)
    assert abs(beta[0, 1] - 0.001) < 3 * err[0, 1] + 1e-4
    assert abs(beta[0, 2] - 0.004) < 3 * err[0, 2] + 1e-4
    assert np.isnan(beta[1:, 1:]).all()  # no round at another quality level


def test_reduction_is_each_clients_law_under_uniform_polling() -> None:
    game = read_participation(NOMINAL)
    for k in (1, 10, 100):
        t = game.tabular(k)
        f = k / game.n_agents
        assert np.allclose(t.P_l, f * game.polled.P_l + (1 - f) * game.Q_unpolled[:, :, None, :])
        assert np.allclose(t.r_l, f * game.polled.r_l)
    with pytest.raises(ValueError, match="k must satisfy"):
        game.tabular(101)


def test_participation_file_round_trips_and_bad_files_are_one_line(tmp_path: Path) -> None:
    game = read_participation(NOMINAL)
    out = tmp_path / "g.yaml"
    out.write_text(yaml.safe_dump(participation_to_dict(game)))
    again = read_participation(out)
    assert again.polled.fingerprint == game.polled.fingerprint and np.allclose(again.Q_unpolled, game.Q_unpolled)
    data = participation_to_dict(game)
    data["unpolled"]["low_loss"]["q0_train"] = [0.5, 0.4, 0.0]
    out.write_text(yaml.safe_dump(data))
    with pytest.raises(GameFileError) as info:
        read_participation(out)
    assert "unpolled" in str(info.value) and "sums to 0.9" in str(info.value) and "\n" not in str(info.value)
    out.write_text("altmarl_participation: 1\nn_agents: 0\npolled: {}\nunpolled: {}\n")
    with pytest.raises(GameFileError, match="n_agents must be a positive integer"):
        read_participation(out)


def _policy(game, k: int) -> TrainedPolicy:
    pi_g = TabularGlobalPolicy.constant(0, n_global_states=game.n_global_states, n_local_states=3,
                                        n_global_actions=2, k=k)
    return TrainedPolicy(pi_g, TabularLocalPolicy.uniform(game.n_global_states, 3, 2), k, game.fingerprint, game.name)


def test_strategy_refuses_a_policy_for_another_k_or_game() -> None:
    game = read_participation(NOMINAL)
    fleet = Fleet("digits", 20, 0)
    ten, five = game.tabular(10), game.tabular(5)
    with pytest.raises(ValueError, match="trained for k = 5, but the strategy polls k = 10"):
        run_plan([RunSpec("learned", 0, 3, 10)], fleet, policy=_policy(five, 5), game=ten)
    with pytest.raises(ValueError, match=r"trained on game .* not on"):
        run_plan([RunSpec("learned", 0, 3, 10)], fleet, policy=_policy(five, 10), game=ten)
    check_policy(_policy(ten, 10), k=10, game=ten)  # the right one passes
    with pytest.raises(ValueError, match="k must satisfy 1 <= k <= n = 20, got k = 30"):
        run_plan([RunSpec("fedavg", 0, 3, 30)], fleet)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        run_plan([RunSpec("fedavg", 0, 3, 3)], Fleet("mnist", 20, 0))


def test_reduction_matches_a_simulated_round_of_polling() -> None:
    """One round of the participation game simulated client by client (k of n polled uniformly, the
    polled ones by P_polled, the others by Q_unpolled) gives each client the reduction's next-state law."""
    game = read_participation(NOMINAL)
    rng = np.random.default_rng(11)
    k, n, reps, s_g = 10, game.n_agents, 4000, 2
    red = game.tabular(k)
    for s_l, a_l in ((1, 1), (2, 0), (2, 1)):
        polled = np.zeros((reps, n), dtype=bool)
        np.put_along_axis(polled, np.argsort(rng.random((reps, n)), axis=1)[:, :k], True, axis=1)
        rows = np.where(polled[..., None], game.polled.P_l[s_l, s_g, a_l], game.Q_unpolled[s_l, s_g])
        u = rng.random((reps, n, 1))
        nxt = (u > np.cumsum(rows, axis=-1)).sum(-1)
        freq = np.bincount(nxt.ravel(), minlength=3) / nxt.size
        se = np.sqrt(red.P_l[s_l, s_g, a_l] * (1 - red.P_l[s_l, s_g, a_l]) / nxt.size)
        assert np.all(np.abs(freq - red.P_l[s_l, s_g, a_l]) <= 4 * se + 1e-12)


def test_predictive_p_values_are_calibrated_and_catch_a_wrong_row() -> None:
    """Held-out rows drawn from the identified posterior's predictive: about 5 % of them have p < 0.05 (the
    check is calibrated); a held-out row from another distribution gets p < 0.01."""
    from altmarl_ros.marl.identify import dirichlet_posterior

    rng = np.random.default_rng(3)
    R, S = 400, 4
    truth = rng.dirichlet(np.ones(S), size=R)
    counts = np.array([rng.multinomial(60, p) for p in truth])
    post = dirichlet_posterior(counts, np.full((R, S), 1 / S), strength=1.0)
    a = post.alpha + post.counts
    held = np.array([rng.multinomial(40, rng.dirichlet(ai)) for ai in a])
    p = predictive_p_values(post, held, (np.arange(R),), draws=500, seed=1)
    assert 0.02 <= (p < 0.05).mean() <= 0.09, (p < 0.05).mean()  # binomial(400, 0.05): 0.05 +- 0.011
    wrong = held.copy()
    wrong[0] = np.roll(counts[0] * 40 // max(counts[0].sum(), 1), 1) + np.array([40, 0, 0, 0])
    assert predictive_p_values(post, wrong, (np.array([0]),), draws=2000, seed=2)[0] < 0.01
