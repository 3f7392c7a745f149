"""Plots of `altmarl federated`: accuracy vs round and vs uploads (both strategies, 95 % CI bands over
seeds), and the k-sweep's reward and full-information ratio on the identified game. PNGs written atomically."""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from altmarl_ros.marl.artifacts import atomic_write_bytes

LABELS = {"learned": "learned pi_g / pi_l", "fedavg": "Flower FedAvg (k uniform)"}


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def comparison_plots(result: dict[str, Any], out: Path) -> list[Path]:
    """accuracy_vs_round.png and accuracy_vs_uploads.png from a comparison result (pipeline.compare_step)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    title = f"digits, n = {result['n']}, k = {result['k']}, {len(result['seeds'])} seeds"
    for name, xkey, xlabel in (("accuracy_vs_round.png", None, "round"),
                               ("accuracy_vs_uploads.png", "uploads", "cumulative uploads (mean over seeds)")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for strategy, curve in result["curves"].items():
            acc = np.asarray(curve["accuracy"])
            x = np.arange(1, acc.size + 1) if xkey is None else np.asarray(curve[xkey])
            ax.plot(x, acc, label=LABELS.get(strategy, strategy))
            if curve["accuracy_ci"]:
                half = np.asarray(curve["accuracy_ci"])
                ax.fill_between(x, acc - half, acc + half, alpha=0.2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("held-out accuracy (95 % CI over seeds)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        written.append(_save(fig, out / name))
    return written


def sweep_plot(rows: list, out: Path) -> Path:
    """k_sweep.png: reward and ratio to the full-information server vs k (mean +- 95 % CI over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    by: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in rows:
        by[(r.metric, r.k)].append(r.value)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, metric in zip(axes, ("reward", "ratio_full_information"), strict=True):
        ks = sorted(k for m, k in by if m == metric)
        mean = [float(np.mean(by[(metric, k)])) for k in ks]
        half = [float(stats.t.ppf(0.975, len(by[(metric, k)]) - 1) * np.std(by[(metric, k)], ddof=1)
                      / np.sqrt(len(by[(metric, k)]))) if len(by[(metric, k)]) > 1 else 0.0 for k in ks]
        ax.errorbar(ks, mean, yerr=half, fmt="o-", capsize=3)
        ax.set_xscale("log")
        ax.set_xlabel("k (participation budget)")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3, which="both")
    fig.suptitle("identified participation game, n = 100")
    return _save(fig, out / "k_sweep.png")
