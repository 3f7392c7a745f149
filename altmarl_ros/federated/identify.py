"""Identify a participation game from the round logs of recorded Flower runs (as marl/identify.py does
for the warehouse from bags): Dirichlet posteriors of P_polled, Q_unpolled and P_g, and a least-squares
value of an upload per client state (Bayesian least squares around the nominal game's values).

Round t of a recording run gives: s_g(t), a_g(t), s_g(t+1) (the next round's s_g); every client's
state s_l(t) (the probe of round t - 1) and s_l(t+1) (the probe of round t); the polled clients'
actions a_l(t). A polled client's step counts in P_polled[s_l, s_g, a_l]; an unpolled client's step in
Q_unpolled[s_l, s_g]; a polled client that did not answer was offline and counts as `skip` (it could
not act). Upload value: in train rounds, the reduction of the held-out loss L(t-1) - L(t) is regressed
on the number of uploads from low_loss and from high_loss clients, per quality bucket (no intercept,
Gaussian prior at the nominal game's values), beta[q, s_l] nats per upload;
r_polled(s_l, q_train, upload) = scale * beta - upload_cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.federated.clients import HIGH_LOSS, LOW_LOSS, OFFLINE
from altmarl_ros.federated.game import HOLD, SKIP, TRAIN, UPLOAD, ParticipationGame, quality
from altmarl_ros.marl.game import TabularGame
from altmarl_ros.marl.identify import Posterior, Transitions, dirichlet_posterior, global_counts, local_counts

UPLOAD_SCALE, UPLOAD_COST = 100.0, 0.5  # reward units: 100 x nats of held-out loss; cost of one upload
PRIOR_SD = 0.01  # prior sd of an upload's value (nats): an upload moves the held-out loss by ~ +-0.01


def transitions(logs: list, n: int) -> tuple[Transitions, Transitions]:
    """(polled, unpolled) steps of one recording run; unpolled steps carry the single action 0."""
    rows = []
    for prev, cur in pairwise(logs):
        if prev.probe is None or cur.probe is None:
            raise InputError("a recording run needs the probe of every round (record_probe=True)")
        s_l, s_next = np.array(prev.probe), np.array(cur.probe)
        a_pol = np.full(n, -1)
        polled_answered = dict(zip(cur.polled, cur.actions, strict=True))
        for pid, a in polled_answered.items():
            a_pol[pid] = a
        offline_polled = cur.offline_polled
        rows.append((cur.s_g, cur.a_g, s_l, s_next, a_pol, offline_polled, cur))
    s_g = np.array([r[0] for r in rows])
    a_g = np.array([r[1] for r in rows])
    s_g_next = np.array([r[6].s_g for r in rows[1:]] + [-1])
    S_l = np.stack([r[2] for r in rows])
    S_next = np.stack([r[3] for r in rows])
    A = np.stack([r[4] for r in rows])
    polled_offline = _offline_polled(logs[1:], S_l)
    A_polled = np.where(polled_offline, SKIP, A)
    unpolled = (A_polled < 0) & (S_l >= 0)
    A_unpolled = np.where(unpolled, 0, -1)
    ok = (S_l >= 0) & (S_next >= 0)
    A_polled, A_unpolled = np.where(ok, A_polled, -1), np.where(ok, A_unpolled, -1)
    return (Transitions(s_g, a_g, s_g_next, np.maximum(S_l, 0), A_polled, S_next),
            Transitions(s_g, a_g, s_g_next, np.maximum(S_l, 0), A_unpolled, S_next))


def _offline_polled(logs: list, S_l: np.ndarray) -> np.ndarray:
    """(T, n) bool: polled without an answer. The probe says who was offline; a round's unanswered polls
    are that many of them (Flower's error replies name nodes, not partitions: the count is what is known,
    and every offline client has the same kernel whatever it is asked, so which ones does not matter)."""
    out = np.zeros(S_l.shape, dtype=bool)
    for t, log in enumerate(logs):
        offline = np.flatnonzero((S_l[t] == OFFLINE) & ~np.isin(np.arange(S_l.shape[1]), log.polled))
        out[t, offline[: log.offline_polled]] = True
    return out


@dataclass(frozen=True)
class Identified:
    game: ParticipationGame
    P_polled: Posterior
    Q_unpolled: Posterior
    P_g: Posterior
    beta: np.ndarray  # (Q, S_l) nats of held-out loss per upload (nan: no data)
    beta_stderr: np.ndarray
    report: dict


def fit_upload_value(logs_runs: list[list], n_quality: int, prior: np.ndarray | None = None,
                     prior_sd: float = PRIOR_SD) -> tuple[np.ndarray, np.ndarray]:
    """beta[q, s_l] (nats of held-out loss per upload) and its posterior sd: Bayesian least squares of
    the loss reduction of a train round on its uploads from low_loss and high_loss, per quality bucket,
    no intercept, Gaussian prior N(prior[q, s_l], prior_sd^2) (None: ordinary least squares), noise
    variance from the residuals. Buckets with fewer than 4 train rounds keep the prior (nan without one)."""
    X: list[list[list[float]]] = [[] for _ in range(n_quality)]
    y: list[list[float]] = [[] for _ in range(n_quality)]
    for logs in logs_runs:
        for prev, cur in pairwise(logs):
            if cur.s_g % 2 != TRAIN:
                continue
            ups = [sum(1 for s, a in zip(cur.states, cur.actions, strict=True) if s == st and a == UPLOAD)
                   for st in (LOW_LOSS, HIGH_LOSS)]
            X[quality(prev.accuracy)].append([float(u) for u in ups])
            y[quality(prev.accuracy)].append(prev.loss - cur.loss)
    beta = np.full((n_quality, 3), np.nan) if prior is None else np.array(prior, dtype=np.float64)
    err = np.full((n_quality, 3), np.nan if prior is None else prior_sd)
    beta[:, OFFLINE] = err[:, OFFLINE] = 0.0
    cols = [LOW_LOSS, HIGH_LOSS]
    for q in range(n_quality):
        if len(y[q]) < 4:
            continue
        A, b = np.array(X[q]), np.array(y[q])
        coef, *_ = np.linalg.lstsq(A, b, rcond=None)
        noise = float(((b - A @ coef) ** 2).sum() / max(len(b) - 2, 1))
        if prior is None:
            cov = np.linalg.pinv(A.T @ A) * noise
        else:
            precision = A.T @ A / noise + np.eye(2) / prior_sd**2
            cov = np.linalg.inv(precision)
            coef = cov @ (A.T @ b / noise + beta[q, cols] / prior_sd**2)
        beta[q, cols] = coef
        err[q, cols] = np.sqrt(np.clip(np.diag(cov), 0, None))
    return beta, err


def nominal_upload_value(game: TabularGame) -> np.ndarray:
    """beta[q, s_l] implied by a game's r_l: (r_l(s_l, q_train, upload) + UPLOAD_COST) / UPLOAD_SCALE."""
    n_q = game.n_global_states // 2
    beta = np.zeros((n_q, 3))
    for q in range(n_q):
        r = game.r_l[[LOW_LOSS, HIGH_LOSS], 2 * q + TRAIN, UPLOAD]
        beta[q, [LOW_LOSS, HIGH_LOSS]] = (r + UPLOAD_COST) / UPLOAD_SCALE
    return beta


def identify_runs(logs_runs: list[list], nominal: ParticipationGame, *, strength: float = 5.0,
                  level: float = 0.95, prior: str = "nominal") -> Identified:
    """Posteriors from every run in `logs_runs` and the identified game. prior: "nominal" (the nominal
    game's rows, `strength` pseudo-counts) or "uniform" (the runs' own evidence: uniform rows)."""
    if prior not in ("nominal", "uniform"):
        raise InputError(f"prior must be 'nominal' or 'uniform', got {prior!r}")
    g, n = nominal.polled, nominal.n_agents
    S_l, S_g, A_l, A_g = g.n_local_states, g.n_global_states, g.n_local_actions, g.n_global_actions
    pairs = [transitions(logs, n) for logs in logs_runs]
    N_pol = np.sum([local_counts(p, (S_l, S_g, A_l)) for p, _ in pairs], axis=0)
    N_unp = np.sum([local_counts(u, (S_l, S_g, 1)) for _, u in pairs], axis=0)[:, :, 0, :]
    N_g = np.sum([global_counts(p, (S_g, A_g)) for p, _ in pairs], axis=0)
    rows = (g.P_l, nominal.Q_unpolled, g.P_g) if prior == "nominal" else tuple(
        np.full(x.shape, 1.0 / x.shape[-1]) for x in (g.P_l, nominal.Q_unpolled, g.P_g))
    post_pol = dirichlet_posterior(N_pol, rows[0], strength=strength, level=level)
    post_unp = dirichlet_posterior(N_unp, rows[1], strength=strength, level=level)
    post_g = dirichlet_posterior(N_g, rows[2], strength=strength, level=level)
    n_q = S_g // 2
    beta, err = fit_upload_value(logs_runs, n_q, prior=nominal_upload_value(g))
    r_l = np.array(g.r_l)
    for q in range(n_q):
        for s in (LOW_LOSS, HIGH_LOSS):
            if np.isfinite(beta[q, s]):
                r_l[s, 2 * q + TRAIN, UPLOAD] = UPLOAD_SCALE * beta[q, s] - UPLOAD_COST
    r_l[:, HOLD::2, :] = 0.0
    polled = TabularGame(P_g=post_g.mean, P_l=post_pol.mean, r_g=g.r_g, r_l=r_l, gamma=g.gamma, init_g=g.init_g,
                         init_l_concentration=g.init_l_concentration, name=f"{g.name}_identified", labels=g.names)
    game = ParticipationGame(polled, post_unp.mean, n, f"identified from {len(logs_runs)} recorded Flower run(s)")
    report = {"runs": len(logs_runs), "rounds": int(sum(len(x) for x in logs_runs)),
              "polled_transitions": int(N_pol.sum()), "unpolled_transitions": int(N_unp.sum()),
              "global_transitions": int(N_g.sum()), "prior": prior, "prior_strength": strength,
              "credible_level": level,
              "P_polled_rows_visited": int((N_pol.sum(-1) > 0).sum()), "P_polled_rows": int(N_pol[..., 0].size),
              "beta_nats_per_upload": beta.tolist(), "beta_stderr": err.tolist()}
    return Identified(game, post_pol, post_unp, post_g, beta, err, report)


def predictive_p_values(ident: Posterior, heldout_counts: np.ndarray, rows: tuple[np.ndarray, ...], *,
                        draws: int = 4000, seed: int = 0) -> np.ndarray:
    """Posterior-predictive p-value of each held-out row (indices `rows`, a tuple of index arrays): under H0 the
    held-out row's m steps are Multinomial(m, p) with p from the identified posterior Dirichlet(alpha + N); the
    statistic is the TV between the held-out empirical row and the posterior mean; p = P(TV_sim >= TV_obs),
    Monte Carlo with `draws` draws ((1 + hits) / (1 + draws)). Calibrated: under H0 a row has p < 0.05 with
    probability <= 0.05, unlike "every entry inside its 95 % interval" (which fails more often than 5 %)."""
    rng = np.random.default_rng(seed)
    a = (ident.alpha + ident.counts)[rows]  # (R, S)
    mean = a / a.sum(-1, keepdims=True)
    obs = np.asarray(heldout_counts)[rows]
    m = obs.sum(-1)
    out = np.empty(len(m))
    for i in range(len(m)):
        p = rng.dirichlet(a[i], size=draws)
        x = np.array([rng.multinomial(int(m[i]), pj) for pj in p])
        tv_sim = 0.5 * np.abs(x / m[i] - mean[i]).sum(-1)
        tv_obs = 0.5 * np.abs(obs[i] / m[i] - mean[i]).sum()
        out[i] = (1 + np.count_nonzero(tv_sim >= tv_obs - 1e-12)) / (1 + draws)
    return out


def heldout_report(ident: Identified, heldout: Identified, min_count: float = 10.0) -> dict:
    """Per visited row (rows with >= min_count held-out steps): TV between the identified mean and the held-out
    run's empirical row; whether the identified mean lies inside the held-out posterior's 95 % intervals (every
    entry: `heldout` identified with prior="uniform" has the held-out evidence's intervals); and the calibrated
    check, the posterior-predictive p-value of the held-out row (`predictive_p_values`): the share of rows with
    p >= 0.05, and Holm's verdict over the kernel's rows (no row inconsistent at family level 0.05)."""
    out = {}
    for name in ("P_polled", "Q_unpolled", "P_g"):
        mine, other = getattr(ident, name), getattr(heldout, name)
        rows = other.counts.sum(-1) >= min_count
        emp = other.counts / np.maximum(other.counts.sum(-1, keepdims=True), 1)
        tv = 0.5 * np.abs(mine.mean - emp).sum(-1)
        inside = ((mine.mean >= other.lower - 1e-12) & (mine.mean <= other.upper + 1e-12)).all(-1)
        idx = np.nonzero(rows)
        pv = predictive_p_values(mine, other.counts, idx) if rows.any() else np.empty(0)
        out[name] = {"rows": int(rows.sum()), "tv_max": float(tv[rows].max()) if rows.any() else float("nan"),
                     "tv_median": float(np.median(tv[rows])) if rows.any() else float("nan"),
                     "tv_per_row": {str(tuple(int(i) for i in ix)): round(float(tv[ix]), 4)
                                    for ix in zip(*idx, strict=True)},
                     "rows_inside_heldout_95": float(inside[rows].mean()) if rows.any() else float("nan"),
                     "predictive_p_per_row": {str(tuple(int(i) for i in ix)): round(float(p), 4)
                                              for ix, p in zip(zip(*idx, strict=True), pv, strict=True)},
                     "rows_consistent_95": float((pv >= 0.05).mean()) if rows.any() else float("nan"),
                     # Holm (and Bonferroni) reject no row at family level 0.05 iff min p > 0.05 / R
                     "holm_all_consistent_05": bool(pv.min() * len(pv) > 0.05) if rows.any() else True}
    return out
