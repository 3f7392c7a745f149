"""Physics benchmarks without ROS (issue 10, benchmarks 2, 3 and the engine side of 4).

    .venv/bin/python bench/physics.py rtf --out bench/results/physics_rtf.json
        engine real-time factor vs n for the planar and wheeled robots: the shipped policies driving the
        swarm in-process (same backend, go-to-goal law and 10 Hz control as the ROS loop), min/median/max
        over --repeats runs of --decisions decision steps each.
    .venv/bin/python bench/physics.py loop --out bench/results/physics_loop.json
        the sim-to-real loop: record exploratory runs in physics (random policies), identify P_l from
        them, report the TV between the identified kernel and the physics' empirical kernel on held-out
        runs vs the number of recorded steps (and the nominal model's TV); train policies on the identified
        game and on the nominal game (same config, k, seed), and compare them in physics on paired episodes
        (common random numbers: the same seed gives both the same start and environment draws).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

from altmarl_ros.marl.identify import Transitions, identify, local_counts, mean_tv
from altmarl_ros.ros.backends.physics import default_decision_period
from altmarl_ros.ros.backends.rollout import episode, random_global, random_local
from altmarl_ros.zones import load_zones

ROOT = Path(__file__).resolve().parents[1]
ZONES = load_zones(ROOT / "config/zones.yaml")


def write(path: Path, data: dict) -> None:
    from altmarl_ros.marl.artifacts import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def cmd_rtf(args: argparse.Namespace) -> dict:
    from altmarl_ros.marl.artifacts import load_policies

    art = load_policies(ROOT / "policies/default.npz")
    period = args.seconds or default_decision_period()
    rows = []
    cases = [(f, int(n), float(g)) for f in args.fidelity.split(",") for n in args.n.split(",")
             for g in args.goal_spacing.split(",")]
    runs: dict[tuple, list] = {case: [] for case in cases}
    for r in range(args.repeats):  # repeats interleaved: load drifts hit every case alike
        for fidelity, n, spacing in cases:
            t0 = time.perf_counter()
            ep = episode(art.game, ZONES, art.pi_g, art.pi_l, n_agents=n, steps=args.decisions, seed=r,
                         decision_period=period, control_period=0.1, goal_spacing=spacing, fidelity=fidelity)
            wall = time.perf_counter() - t0
            engine, loop, hits = (ep.summary["engine_real_time_factor"], args.decisions * period / wall,
                                  ep.summary["collisions"])
            runs[fidelity, n, spacing].append((engine, loop, hits, ep.summary["robots_stuck"], ep.rewards.mean()))
            print(f"{fidelity} n={n} goal_spacing={spacing} run {r}: engine RTF {engine:.2f} (loop incl. control "
                  f"law {loop:.2f}), collisions {hits}", flush=True)
    for (fidelity, n, spacing), measured in runs.items():
        rtf, loop, contacts, stuck, reward = (np.array(x) for x in zip(*measured, strict=True))
        rows.append({"fidelity": fidelity, "n": n, "goal_spacing": spacing,
                     "sim_seconds_per_run": args.decisions * period, "engine_rtf_min": float(rtf.min()),
                     "engine_rtf_median": float(np.median(rtf)), "engine_rtf_max": float(rtf.max()),
                     "loop_rtf_median": float(np.median(loop)), "collisions_median": float(np.median(contacts)),
                     "robots_stuck_median": float(np.median(stuck)), "reward_mean": float(reward.mean()),
                     "seeds": list(range(args.repeats))})
    return {"what": "engine real-time factor (sim s / wall s in mj_step, the DiffDrive limiter and contact "
                    "accounting), shipped policies k=5, 10 Hz control", "rows": rows}


def _episodes(game, pi_g, pi_l, seeds, n, steps, period) -> list:
    out = []
    for s in seeds:
        out.append(episode(game, ZONES, pi_g, pi_l, n_agents=n, steps=steps, seed=s, decision_period=period))
        print(f"  seed {s}: reward {out[-1].rewards.mean():.3f}", flush=True)
    return out


def _paired(a: np.ndarray, b: np.ndarray) -> dict:
    d = a - b
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    t = stats.t.ppf(0.975, d.size - 1)
    return {"mean_difference": float(d.mean()), "stderr": se, "ci95": [float(d.mean() - t * se),
                                                                       float(d.mean() + t * se)],
            "episodes": int(d.size)}


def cmd_loop(args: argparse.Namespace) -> dict:
    from altmarl_ros.marl.config import load_train_config
    from altmarl_ros.marl.experiments import evaluate_policies, train_policies
    from altmarl_ros.marl.games import make_game
    from altmarl_ros.marl.games.files import write_game_file

    nominal = make_game("warehouse")
    n, steps, period = args.n, args.steps, default_decision_period()
    print(f"recording {args.record} exploratory runs and {args.heldout} held-out runs (random policies), "
          f"n={n}, {steps} steps of {period:.2f} s", flush=True)
    record = _episodes(nominal, random_global(nominal), random_local(nominal), range(100, 100 + args.record), n,
                       steps, period)
    heldout = _episodes(nominal, random_global(nominal), random_local(nominal), range(200, 200 + args.heldout), n,
                        steps, period)
    recorded = Transitions.concatenate([e.transitions for e in record])
    held = Transitions.concatenate([e.transitions for e in heldout])
    N_held = local_counts(held, (5, 5, 3))
    rows_held = N_held.sum(-1)
    P_emp = np.where(rows_held[..., None] > 0, N_held / np.maximum(rows_held[..., None], 1), nominal.P_l)
    tv_curve = []
    for m in sorted({s for s in (10, 25, 50, 100, 200, recorded.steps) if s <= recorded.steps}):
        ident = identify(recorded.head(m), nominal, prior="nominal", strength=args.strength)
        tv_curve.append({"recorded_steps": m, "robot_transitions": int(ident.P_l.counts.sum()),
                         "tv_identified_vs_heldout": mean_tv(ident.P_l.mean, P_emp, rows_held),
                         "heldout_inside_intervals": ident.P_l.covers(P_emp, min_count=1)})
        print(f"  {m} steps: TV {tv_curve[-1]['tv_identified_vs_heldout']:.4f}", flush=True)
    tv_nominal = mean_tv(nominal.P_l, P_emp, rows_held)
    ident = identify(recorded, nominal, prior="nominal", strength=args.strength)
    with tempfile.TemporaryDirectory() as tmp:
        game_file = write_game_file(Path(tmp) / "identified.yaml", ident.game, description="bench/physics.py loop")
        config_path = ROOT / "config/train_warehouse.yaml"
        trained = {}
        for name, game in (("nominal", None), ("identified", str(game_file))):
            config = (load_train_config(config_path, n_agents=n, k=args.k) if game is None else
                      load_train_config(config_path, n_agents=n, k=args.k, game=game, game_options={}))
            trained[name] = train_policies(config, k=args.k, seed=args.train_seed)
            print(f"trained on the {name} game: {trained[name].alternation.stop_reason}", flush=True)
        model_value = {name: evaluate_policies(load_train_config(config_path, n_agents=n, k=args.k), nominal, t.pi_g,
                                               t.pi_l, seed=0).reward_mean for name, t in trained.items()}
    print(f"paired physics episodes: {args.episodes} seeds x 2 policies", flush=True)
    seeds = range(300, 300 + args.episodes)
    physics = {name: _episodes(nominal, t.pi_g, t.pi_l, seeds, n, steps, period) for name, t in trained.items()}
    reward = {name: np.array([e.rewards.mean() for e in eps]) for name, eps in physics.items()}
    same_local = bool(np.allclose(trained["nominal"].pi_l.probs, trained["identified"].pi_l.probs))
    same_global = bool(np.array_equal(trained["nominal"].pi_g.actions, trained["identified"].pi_g.actions))
    return {
        "n": n, "k": args.k, "steps_per_episode": steps, "decision_period_s": period,
        "recorded_runs": args.record, "heldout_runs": args.heldout, "prior_strength": args.strength,
        "tv_vs_recorded_steps": tv_curve,
        "tv_nominal_model_vs_heldout": tv_nominal,
        "heldout_rows_visited": int((rows_held > 0).sum()),
        "identified_report": ident.report,
        "policies_identical": {"pi_l": same_local, "pi_g": same_global},
        "physics_reward": {name: {"mean": float(r.mean()), "stderr": float(r.std(ddof=1) / math.sqrt(r.size))}
                           for name, r in reward.items()},
        "physics_identified_minus_nominal_paired": _paired(reward["identified"], reward["nominal"]),
        "model_reward_discounted_return": model_value,
        "physics_stuck_and_goal": {name: {"robots_stuck": float(np.mean([e.summary["robots_stuck"] for e in eps])),
                                          "goal_zone_reached_fraction": float(np.mean(
                                              [e.summary["goal_zone_reached_fraction"] for e in eps]))}
                                   for name, eps in physics.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("rtf")
    p.add_argument("--n", default="50,200,1000")
    p.add_argument("--fidelity", default="planar,wheeled")
    p.add_argument("--decisions", type=int, default=2, help="decision steps per run (5.2 s of sim each)")
    p.add_argument("--seconds", type=float, default=0.0, help="simulated s per decision step (0 = the default "
                   "decision period); with --decisions 1, the length of a run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--goal-spacing", default="0", help="robots' parking-slot spacing(s) in m, comma-separated "
                   "(0 = every robot to the zone centre, robot_node's default)")
    p.add_argument("--out", required=True)
    p = sub.add_parser("loop")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--steps", type=int, default=30, help="decision steps per physics episode")
    p.add_argument("--record", type=int, default=6, help="recorded exploratory runs")
    p.add_argument("--heldout", type=int, default=3, help="held-out runs for the empirical kernel")
    p.add_argument("--episodes", type=int, default=8, help="paired evaluation episodes per policy")
    p.add_argument("--strength", type=float, default=5.0, help="prior pseudo-counts per row")
    p.add_argument("--train-seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    t0 = time.time()
    result = cmd_rtf(args) if args.command == "rtf" else cmd_loop(args)
    result["command"] = " ".join(["bench/physics.py", *(argv if argv is not None else sys.argv[1:])])
    result["wall_seconds"] = time.time() - t0
    write(Path(args.out), result)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
