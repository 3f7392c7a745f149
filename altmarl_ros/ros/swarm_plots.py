"""PNG plots of an `altmarl swarm` run (matplotlib imported lazily, Agg backend). ROS-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from altmarl_ros.ros.swarm_summary import SwarmSummary


def plot(summary: SwarmSummary, out: Path) -> list[str]:
    """DIR/reward.png (closed loop per step and running mean vs NumPy and random) and DIR/latency.png
    (controller latency, step duration, drops); returns the file names ([] for a run without steps)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, r, s = summary.per_step, summary.rewards, summary.settings
    if not rows:
        return []
    steps = np.array([row["step"] for row in rows])
    rewards = np.array([row["reward"] for row in rows])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps, rewards, lw=0.8, alpha=0.6, label="closed loop (ROS), per step")
    ax.plot(steps, np.cumsum(rewards) / np.arange(1, len(rewards) + 1), lw=2, label="closed loop, running mean")
    ax.axhline(r.numpy_reward, color="k", ls="--", label="NumPy, same policies")
    ax.axhspan(r.numpy_reward - r.numpy_episode_std, r.numpy_reward + r.numpy_episode_std, color="k", alpha=0.1)
    ax.axhline(r.random_policy_reward, color="r", ls=":", label="random policies (NumPy)")
    ax.set(xlabel="decision step", ylabel="reward per step",
           title=f"n={s.n_robots} k={s.k} {s.mode} {s.observation}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "reward.png", dpi=100)
    plt.close(fig)
    lat = np.array([row["controller_latency_ms"] for row in rows])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.plot(steps, lat, lw=0.8, label="controller latency (tick -> command)")
    a1.plot(steps, [1e3 * row["step_seconds"] for row in rows], lw=0.8, label="step duration")
    a1.set(xlabel="decision step", ylabel="ms")
    a1.legend(fontsize=8)
    a2.plot(steps, [row["dropped_robots"] for row in rows], label="dropped robot answers")
    a2.plot(steps, [max(row["missing_poses"], 0) + max(row["stale_poses"], 0) for row in rows],
            label="missing+stale sampled poses")
    a2.set(xlabel="decision step", ylabel="count")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=100)
    plt.close(fig)
    return ["reward.png", "latency.png"]
