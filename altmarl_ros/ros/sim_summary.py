"""sim_node's record (the JSON at `record_path`): totals of the per-step rows, the run's clocks, how it ended.

`complete` says whether every requested step ran; `interrupted` whether a SIGINT/SIGTERM stopped the node
(altmarl_ros.stopflag): a record of a run stopped by Ctrl-C is written, marked partial, never left out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from altmarl_ros import stopflag


def sim_summary(node: Any) -> dict[str, Any]:
    """The record of a `SimNode` (its per-step rows under `per_step`)."""
    p, record = node.params, node.record
    rewards = np.array([r["reward"] for r in record])
    elapsed = node.finished_wall - node.started_wall if len(record) > 1 else 0.0
    pending = node.ledger.pending
    return {"n_robots": node.n, "mode": p.mode, "lockstep": p.lockstep, "game": node.game_spec,
            "steps": len(record), "steps_requested": p.steps, "complete": bool(p.steps) and len(record) >= p.steps,
            "interrupted": stopflag.requested, "exit_code": node.exit_code, "rival_swarm": node.rival.seen,
            "markers_published": node.markers.published,
            "mean_reward": float(rewards.mean()) if rewards.size else math.nan,
            "dropped_answers": int(sum(r["dropped_robots"] for r in record)),
            "controller_dropped": int(sum(r["controller_dropped"] for r in record)),
            **{f"{what}_answers": int(sum(r[f"{what}_answers"] for r in record)) + extra
               for what, extra in (("late", pending.late), ("bad", pending.bad), ("duplicate", pending.duplicate))},
            "steps_per_second": (len(record) - 1) / elapsed if elapsed > 0 else math.nan,
            "first_step_reticks": node.reticks,  # repeats of the first step's tick (sim_node._retick)
            "lost_robots": node.lost,  # host -> robots that never answered the first step
            # host -> robots that were no longer waited for when the run ended (stopped answering)
            "silent_at_end": node._hosts(np.flatnonzero(~node.ledger.live())) if record else {},
            "sim_seconds": node.sim_ns / 1e9,
            # simulated s per wall s between the end of the first step and the end of the last (as steps/s)
            "real_time_factor": (node.finished_sim_ns - node.started_sim_ns) / 1e9 / elapsed
            if (node.drives and elapsed > 0) else math.nan,
            "cmd_vel_dropped": node.cycles.dropped if node.cycles is not None else 0,
            **node.backend.summary(), "per_step": record}
