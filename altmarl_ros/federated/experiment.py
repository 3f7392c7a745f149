"""The issue-18 pipeline: record Flower runs, identify the participation game, train on it with
altmarl's trainer (experiments.train_policies), compare the learned strategy with FedAvg in Flower.

Statistics over seeds are paired (the same seed gives both strategies the same fleet, data shards,
availability traces and initial model) with Student-t 95 % intervals of the mean.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from altmarl_ros.federated.game import ParticipationGame
from altmarl_ros.federated.runner import curves
from altmarl_ros.marl.artifacts import atomic_write_text

SMOOTH = 5  # rounds of the running mean that defines "an accuracy level reached" (non-IID curves oscillate)


def logs_to_json(runs: list[list]) -> list[list[dict]]:
    return [[dataclasses.asdict(r) for r in logs] for logs in runs]


def logs_from_json(data: list[list[dict]]) -> list[list]:
    from types import SimpleNamespace

    return [[SimpleNamespace(**r) for r in logs] for logs in data]


def save_json(path: str | Path, obj: Any) -> Path:
    path = Path(path)
    atomic_write_text(path, json.dumps(obj, indent=1, default=float))
    return path


def ci95(x: np.ndarray) -> dict[str, float]:
    """Mean and Student-t 95 % interval of the mean over seeds."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    if x.size == 1:
        return {"mean": float(x[0]), "low": float("nan"), "high": float("nan"), "n": 1}
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return {"mean": float(x.mean()), "low": float(x.mean() - half), "high": float(x.mean() + half), "n": int(x.size)}


def smoothed(acc: np.ndarray, width: int = SMOOTH) -> np.ndarray:
    """Trailing running mean (the first rounds average what exists)."""
    c = np.cumsum(np.insert(acc, 0, 0.0))
    idx = np.arange(1, acc.size + 1)
    lo = np.maximum(idx - width, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def uploads_to_reach(acc: np.ndarray, uploads: np.ndarray, level: float) -> float:
    """Cumulative uploads at the first round whose smoothed accuracy reaches `level` (nan: never)."""
    hit = np.flatnonzero(smoothed(acc) >= level - 1e-12)
    return float(uploads[hit[0]]) if hit.size else float("nan")


def accuracy_at_uploads(acc: np.ndarray, uploads: np.ndarray, budget: float) -> float:
    """Smoothed accuracy at the last round whose cumulative uploads are within `budget`."""
    ok = np.flatnonzero(uploads <= budget)
    return float(smoothed(acc)[ok[-1]]) if ok.size else float("nan")


def compare_runs(learned: list[list], fedavg: list[list]) -> dict[str, Any]:
    """Paired per-seed comparison: FedAvg's final (smoothed) accuracy and the uploads each strategy needs
    to reach it; the same for the learned strategy's final accuracy; the accuracy of each at the smaller
    of the two upload totals."""
    per_seed = []
    for L, F in zip(learned, fedavg, strict=True):
        cl, cf = curves(L), curves(F)
        target = float(smoothed(cf["accuracy"])[-1])
        u_f, u_l = uploads_to_reach(cf["accuracy"], cf["uploads"], target), uploads_to_reach(
            cl["accuracy"], cl["uploads"], target)
        budget = float(min(cl["uploads"][-1], cf["uploads"][-1]))
        own = float(smoothed(cl["accuracy"])[-1])  # the learned strategy's own final level
        u_f_own, u_l_own = (uploads_to_reach(c["accuracy"], c["uploads"], own) for c in (cf, cl))
        per_seed.append({
            "fedavg_final_accuracy": target, "learned_final_accuracy": float(smoothed(cl["accuracy"])[-1]),
            "fedavg_total_uploads": int(cf["uploads"][-1]), "learned_total_uploads": int(cl["uploads"][-1]),
            "fedavg_uploads_to_target": u_f, "learned_uploads_to_target": u_l,
            "upload_ratio_to_target": u_l / u_f if np.isfinite(u_l) else float("nan"),
            "upload_ratio_vs_fedavg_total": u_l / cf["uploads"][-1] if np.isfinite(u_l) else float("nan"),
            "fedavg_uploads_to_learned_final": u_f_own, "learned_uploads_to_learned_final": u_l_own,
            "upload_ratio_to_learned_final": u_l_own / u_f_own if np.isfinite(u_f_own) else float("nan"),
            "matched_budget": budget, "learned_accuracy_at_budget": accuracy_at_uploads(cl["accuracy"], cl["uploads"],
                                                                                        budget),
            "fedavg_accuracy_at_budget": accuracy_at_uploads(cf["accuracy"], cf["uploads"], budget),
            "learned_train_rounds": int(cl["train"].sum())})
    col = {key: np.array([s[key] for s in per_seed], dtype=np.float64) for key in per_seed[0]}
    summary: dict[str, Any] = {key: ci95(v) for key, v in col.items()}
    summary["accuracy_gain_at_budget"] = ci95(col["learned_accuracy_at_budget"] - col["fedavg_accuracy_at_budget"])
    summary["final_accuracy_gain"] = ci95(col["learned_final_accuracy"] - col["fedavg_final_accuracy"])
    summary["seeds_reaching_target"] = int(np.isfinite(col["learned_uploads_to_target"]).sum())
    return {"per_seed": per_seed, "summary": summary}


def mean_curves(runs: list[list]) -> dict[str, list[float]]:
    """Accuracy and cumulative uploads per round: mean and 95 % half-width over seeds."""
    acc = np.stack([curves(r)["accuracy"] for r in runs])
    up = np.stack([curves(r)["uploads"] for r in runs]).astype(np.float64)
    half = (stats.t.ppf(0.975, max(acc.shape[0] - 1, 1)) / np.sqrt(acc.shape[0])) if acc.shape[0] > 1 else np.nan
    return {"accuracy": acc.mean(0).tolist(), "accuracy_ci": (half * acc.std(0, ddof=1)).tolist()
            if acc.shape[0] > 1 else [], "uploads": up.mean(0).tolist()}


def train_on(game: ParticipationGame, k: int, seed: int, train_config: str | Path, work_dir: str | Path,
             **overrides: Any) -> Any:
    """Train (pi_g, pi_l) for participation budget k on `game` with `experiments.train_policies`."""
    from altmarl_ros.marl.config import load_train_config
    from altmarl_ros.marl.experiments import train_policies

    path = game.write_tabular(Path(work_dir) / f"identified_k{k}.yaml", k)
    config = load_train_config(train_config, game=str(path), n_agents=game.n_agents, k=k, **overrides)
    return train_policies(config, k=k, seed=seed)


def _regime(slope: float, low: float, high: float) -> str:
    """The regime of a log-log slope of the gap 1 - ratio, from its 95 % CI."""
    if low <= -0.5 <= high and low <= 0 <= high:
        return "undetermined: the CI contains both 0 (flat) and -1/2 (the paper's 1/sqrt(k))"
    if low <= -0.5 <= high:
        return "consistent with the paper's O(1/sqrt(k)) rate (slope -1/2 inside the 95 % CI)"
    if high < -0.5:
        return "faster than 1/sqrt(k) (slope CI below -1/2)"
    if low > 0:
        return "gap grows with k (slope CI above 0)"
    if low <= 0 <= high:
        return "flat: no significant dependence on k (slope CI contains 0)"
    return "slower than 1/sqrt(k) (slope CI between -1/2 and 0)"


def sweep_summary(rows: list) -> dict[str, Any]:
    """Per k: reward and ratio to full information (mean and 95 % CI over seeds); log-log slopes of the
    gap 1 - ratio and of the reward over all k, the small k (k <= 5) and the large k (k >= 5), each with
    its regime."""
    from altmarl_ros.marl.plotting import fit_loglog_slope

    ks = sorted({r.k for r in rows})
    per_k = {}
    for k in ks:
        per_k[k] = {m: ci95(np.array([r.value for r in rows if r.k == k and r.metric == m]))
                    for m in ("reward", "reward_full_information", "ratio_full_information", "train_seconds")}
    gap = {k: 1.0 - per_k[k]["ratio_full_information"]["mean"] for k in ks}
    slopes: dict[str, dict[str, Any]] = {}
    for name, subset in (("all", ks), ("small_k", [k for k in ks if k <= 5]), ("large_k", [k for k in ks if k >= 5])):
        pts = [(k, gap[k]) for k in subset if np.isfinite(gap[k]) and gap[k] > 0]
        if len(pts) < 3:
            slopes[name] = {"k": [k for k, _ in pts], "note": "fewer than 3 k with a positive gap: no slope"}
            continue
        fit = fit_loglog_slope(np.array([k for k, _ in pts], float), np.array([g for _, g in pts]))
        slopes[name] = {"k": [k for k, _ in pts], "slope": fit.slope, "ci": [fit.ci_low, fit.ci_high],
                        "regime": _regime(fit.slope, fit.ci_low, fit.ci_high)}
    reward_slopes: dict[str, dict[str, Any]] = {}
    for name, subset in (("all", ks), ("small_k", [k for k in ks if k <= 5]), ("large_k", [k for k in ks if k >= 5])):
        pts = [(k, per_k[k]["reward"]["mean"]) for k in subset if per_k[k]["reward"]["mean"] > 0]
        if len(pts) >= 3:
            fit = fit_loglog_slope(np.array([k for k, _ in pts], float), np.array([r for _, r in pts]))
            linear = fit.ci_low <= 1.0 <= fit.ci_high
            reward_slopes[name] = {"k": [k for k, _ in pts], "slope": fit.slope, "ci": [fit.ci_low, fit.ci_high],
                                   "regime": "linear in k: participation-limited (slope 1 inside the CI)" if linear
                                   else ("sub-linear: returns diminish with k" if fit.ci_high < 1.0
                                         else "super-linear in k")}
    ones = all(per_k[k]["ratio_full_information"]["low"] <= 1.0 <= per_k[k]["ratio_full_information"]["high"]
               for k in ks if per_k[k]["ratio_full_information"]["n"] > 1)
    return {"per_k": per_k, "gap_1_minus_ratio": gap, "gap_loglog_slopes": slopes,
            "reward_loglog_slopes": reward_slopes, "ratio_ci_contains_1_at_every_k": ones}
