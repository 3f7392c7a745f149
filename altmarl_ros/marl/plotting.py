"""Plots of sweep rows (CSV `k,seed,metric,value,stderr`) as PNG; matplotlib is imported lazily."""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from altmarl_ros.marl.artifacts import atomic_write_bytes
from altmarl_ros.marl.experiments import SweepRow

PLOTS = {  # metric -> (file name, y label, log-log)
    "reward": ("reward_vs_k.png", "cumulative discounted reward", False),
    "train_seconds": ("train_seconds_vs_k.png", "training time (s)", False),
    "mode_accuracy": ("mode_accuracy_vs_k.png", "mode accuracy", False),
    "nash_gap_lower_bound": ("nash_gap_vs_k.png", "Nash gap, 95 % lower confidence bound",
                             True),
    "ratio_full_information": ("ratio_full_information_vs_k.png", "reward(k) / reward(full information)", False),
    "gap_l_unilateral": ("gap_l_unilateral_vs_k.png", "gap_l_unilateral (estimate)", True),
    "gap_l_shared": ("gap_l_shared_vs_k.png", "gap_l_shared (lower bound)", True),
    "gap_g_restricted": ("gap_g_restricted_vs_k.png", "gap_g_restricted (lower bound)", True),
    "gap_g_full": ("gap_g_full_vs_k.png", "gap_g_full (lower bound)", True),
}


class Summary(NamedTuple):
    """Per-k mean over seeds and the standard error of that mean."""

    k: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    n: np.ndarray


class SlopeFit(NamedTuple):
    """Least-squares fit log(y) = intercept + slope log(k) with a 95 % confidence interval."""

    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    n_points: int


def summarize(rows: Iterable[SweepRow], metric: str) -> Summary:
    by_k: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        if row.metric == metric and math.isfinite(row.value):
            by_k[row.k].append(row.value)
    ks = np.array(sorted(by_k))
    vals = [np.asarray(by_k[k]) for k in ks]
    mean = np.array([v.mean() for v in vals]) if len(vals) else np.array([])
    se = np.array([v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else 0.0 for v in vals])
    return Summary(ks, mean, se, np.array([v.size for v in vals]))


def fit_loglog_slope(k: np.ndarray, y: np.ndarray) -> SlopeFit:
    """Fit log y against log k over the points with y > 0; needs at least 3 such points."""
    from scipy import stats

    keep = (np.asarray(y) > 0) & (np.asarray(k) > 0)
    x, z = np.log(np.asarray(k, float)[keep]), np.log(np.asarray(y, float)[keep])
    if x.size < 3:
        raise ValueError(f"a log-log slope needs at least 3 positive points, got {x.size}")
    fit = stats.linregress(x, z)
    half = stats.t.ppf(0.975, x.size - 2) * fit.stderr
    return SlopeFit(float(fit.slope), float(fit.intercept), float(fit.slope - half), float(fit.slope + half),
                    int(x.size))


def plot_rows(rows: list[SweepRow], out_dir: str | Path, *, title: str = "") -> dict[str, Path]:
    """Write one PNG per metric present in `rows`; return {metric: path}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for metric, (name, ylabel, loglog) in PLOTS.items():
        s = summarize(rows, metric)
        if s.k.size == 0:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        ax.errorbar(s.k, s.mean, yerr=1.96 * s.stderr, fmt="o-", capsize=3, label=f"{metric} (mean, 95 % CI)")
        full = summarize(rows, "reward_full_information") if metric == "reward" else None
        if full is not None and full.k.size:
            ax.errorbar(full.k, full.mean, yerr=1.96 * full.stderr, fmt="s--", capsize=3,
                        label="full-information reference (mean, 95 % CI)")
        if loglog:
            positive = s.mean > 0
            ax.set_xscale("log")
            ax.set_yscale("log")
            if positive.sum() >= 3:
                fit = fit_loglog_slope(s.k, s.mean)
                kk = np.geomspace(s.k[positive].min(), s.k[positive].max(), 50)
                ax.plot(kk, np.exp(fit.intercept) * kk ** fit.slope, "--",
                        label=f"fit slope {fit.slope:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}]")
                kref = kk[0]
                ax.plot(kk, np.exp(fit.intercept) * kref ** fit.slope * (kk / kref) ** -0.5, ":",
                        label="slope -1/2 (theory)")
        ax.set_xlabel("k (agents observed by the global agent)")
        ax.set_ylabel(ylabel)
        ax.set_title(title or f"{metric} vs k")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / name
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120)
        plt.close(fig)
        atomic_write_bytes(path, buffer.getvalue())
        written[metric] = path
    return written
