"""`altmarl`: train, evaluate, sweep, plot (ROS-free), swarm (ROS 2 closed loop) and federated (Flower).

Examples
--------
    altmarl train --config config/train_warehouse.yaml --k 10 --out policies/warehouse_k10
    altmarl evaluate --policy policies/warehouse_k10.npz --nash-gap
    altmarl sweep --config config/train_warehouse.yaml --k 1,5,10 --seeds 3 --out runs/sweep.csv
    altmarl sweep --config config/train_federated.yaml --k 1,5,50 --executor ray --resume --out runs/fed.csv
    altmarl train --game my_game.yaml --k 5 --out policies/my_game_k5
    altmarl plot runs/sweep.csv --out runs/plots
    altmarl swarm --n-robots 50 --k 5 --steps 200 --mode model --out runs/swarm
    altmarl swarm --mode physics --n-robots 50 --k 5 --steps 200 --bag --out runs/physics
    altmarl identify --bag runs/physics/bag --out runs/identified.yaml
    altmarl federated --n 100 --k 10 --seeds 5 --out runs/federated     # needs flwr (bench/README.md 10)
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from altmarl_ros.errors import InputError
from altmarl_ros.paths import share_path
from altmarl_ros.progress import Progress

DEFAULT_CONFIG = "config/train_warehouse.yaml"


def _share_config(name: str) -> Path:
    """A config file as given, else the one of that name in the package's config/ (share dir or checkout)."""
    path = Path(name)
    return path if path.exists() else share_path(f"config/{path.name}")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _load_config(args: argparse.Namespace) -> Any:
    from altmarl_ros.marl.config import load_train_config

    game = getattr(args, "game", None)
    n_agents = getattr(args, "n_agents", None)
    if game is not None:  # --game: a built-in name or a game file, replacing the config's game and its options
        from altmarl_ros.marl.games import game_n_agents

        n_agents = n_agents or game_n_agents(game)  # the file's n unless --n-agents is given
        return load_train_config(_share_config(args.config), n_agents=n_agents, game=game, game_options={})
    return load_train_config(_share_config(args.config), n_agents=n_agents)


def _round_printer(progress: Progress) -> Any:
    def on_round(start: str, record: Any) -> None:
        progress.advance(1, f"{start}: round {record.round}, value {record.value.mean:.2f} [{record.accepted}]")

    return on_round


def cmd_train(args: argparse.Namespace) -> int:
    from altmarl_ros.marl.continuous.cli import is_continuous, train_main

    if is_continuous(_share_config(args.config)):  # neural policies on the continuous warehouse (issue 17)
        return train_main(_share_config(args.config), args.k, args.seed, args.out, evaluate=not args.no_eval)
    from altmarl_ros.marl.artifacts import save_policies
    from altmarl_ros.marl.experiments import evaluate_policies, train_policies, with_overrides

    config = _load_config(args)
    k = args.k or config.k
    print(f"training {config.game} {config.game_options} k={k} n={config.n_agents} seed={args.seed} "
          f"(G-LEARN {config.g_learn.transition}, L-LEARN {config.l_learn.kind}, rule {config.loop.rule})")
    from altmarl_ros.marl.experiments import training_starts
    from altmarl_ros.marl.games import make_game

    with warnings.catch_warnings():  # train_policies says which starts it skips, once
        warnings.simplefilter("ignore")
        starts = training_starts(config, make_game(config.game, **config.game_options), full_information=False)
    n_starts = len(config.loop.starts_at(starts, k))
    if n_starts < len(starts):
        print(f"k={k} >= loop.posterior_only_from_k={config.loop.posterior_only_from_k}: only the posterior start "
              "runs (the full-information reference's training runs the others)")
    with Progress(config.loop.max_rounds * (n_starts + config.loop.refine), "rounds (at most)") as progress:
        trained = train_policies(config, k=k, seed=args.seed, progress=_round_printer(progress))
    result = trained.alternation
    for outcome in trained.selection.outcomes:
        print(f"  start {outcome.start:<11} {outcome.result.stop_reason:<10} after {len(outcome.result.history)} "
              f"rounds: welfare {outcome.welfare.mean:.2f} +- {outcome.welfare.stderr:.2f}")
    print(f"chosen: {trained.selection.best.start} ({trained.selection.reason}) in {trained.train_seconds:.2f} s"
          + (f" (2*eta = {2 * result.eta:.3f})" if result.eta == result.eta else ""))
    metrics: dict[str, Any] = {"train_seconds": trained.train_seconds, "stop_reason": result.stop_reason,
                               "rounds": [r.to_dict() for r in result.history],
                               "selection": trained.selection.to_dict()}
    if trained.pooled is not None:
        step = trained.pooled
        metrics["pooled"] = step.to_dict()
        print(f"pooled dispatcher (K={step.K}, best from start {step.start}): paired improvement "
              f"{step.improvement.mean:+.2f} +- {step.improvement.stderr:.2f} over the k-sample pair, LCB "
              f"{step.lcb:+.2f}: {'kept' if step.kept else 'not kept (not significantly better)'}")
    if not args.no_eval:
        final = evaluate_policies(config, trained.game, trained.pi_g, trained.pi_l, seed=args.seed)
        metrics.update(reward=final.reward_mean, reward_std=final.reward_std, reward_stderr=final.reward_stderr,
                       mode_accuracy=final.mode_accuracy)
        print(f"reward {final.reward_mean:.2f} +- {final.reward_std:.2f} (std over {config.evaluation.seeds} seeds), "
              f"mode accuracy {final.mode_accuracy:.3f}")
    out = Path(args.out or f"policies/{Path(config.game).stem}_k{k}_seed{args.seed}")
    path = save_policies(out, trained.pi_g, trained.pi_l, game=trained.game, game_spec=config.game_spec,
                         config=with_overrides(config, k=k).to_dict(), metrics=metrics, seed=args.seed,
                         n_agents=config.n_agents)
    print(f"saved {path} and {path.with_suffix('.json')}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from altmarl_ros.marl.artifacts import load_policies
    from altmarl_ros.marl.config import config_from_dict
    from altmarl_ros.marl.experiments import estimate_gaps_for, evaluate_policies, gap_rows, with_overrides
    from altmarl_ros.marl.policy import TabularGlobalPolicy

    artifact = load_policies(args.policy)
    if args.config is None and isinstance(artifact.meta.get("config"), dict):  # the settings it was trained with
        config = config_from_dict(artifact.meta["config"])
    else:
        args.config = args.config or DEFAULT_CONFIG
        config = _load_config(args)
    config = with_overrides(config, ordering=args.ordering, n_agents=args.n_agents)
    final = evaluate_policies(config, artifact.game, artifact.pi_g, artifact.pi_l, seed=args.seed)
    report: dict[str, Any] = {"policy": str(args.policy), "k": artifact.k, "n_agents": config.n_agents,
                              "ordering": config.ordering, "reward": final.reward_mean,
                              "reward_std": final.reward_std, "reward_stderr": final.reward_stderr,
                              "mode_accuracy": final.mode_accuracy}
    if args.gaps:
        if not isinstance(artifact.pi_g, TabularGlobalPolicy):
            raise InputError(f"{args.policy}: --gaps needs a k-sample dispatcher; this artifact's reads pooled "
                             "samples (the named gaps are defined for Algorithm 4's observation)")
        gaps = estimate_gaps_for(config, artifact.game, artifact.pi_g, artifact.pi_l, seed=args.seed)
        for row in gap_rows(artifact.k, args.seed, gaps):
            report.update({row.metric: row.value, row.metric + "_stderr": row.stderr})
        report["gap_seconds"] = gaps.seconds
    print(json.dumps(report, indent=2))
    if args.out:
        from altmarl_ros.marl.artifacts import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(report, indent=2) + "\n")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from altmarl_ros.marl.continuous.cli import is_continuous, sweep_main
    from altmarl_ros.marl.executors import grid, run_cell, run_sweep

    if is_continuous(_share_config(args.config)):  # in-process cells; the same CSV rows
        seeds = list(range(args.seed0, args.seed0 + args.seeds))
        return sweep_main(_share_config(args.config), args.k, seeds, Path(args.out),
                          args.seeds if args.gap_seeds is None else args.gap_seeds, workers=args.workers)
    if args.workers != 1:
        raise InputError("--workers is for continuous configs; tabular sweeps scale with --executor ray")

    if args.backend is not None:  # the flag's old name
        print("altmarl sweep: warning: --backend is deprecated, use --executor", file=sys.stderr)
        args.executor = args.backend
    if args.address and args.executor != "ray":
        raise InputError("--address needs --executor ray")
    config = _load_config(args)
    seeds = list(range(args.seed0, args.seed0 + args.seeds))
    gap_seeds = args.seeds if args.gap_seeds is None else args.gap_seeds
    cells = grid(args.k, seeds, gap_seeds=gap_seeds)
    out = Path(args.out)
    print(f"sweep {config.game} k={args.k} seeds={seeds} (Nash gap on {gap_seeds} seeds) on {args.executor}"
          f"{' at ' + args.address if args.address else ''} -> {out}{' (resuming)' if args.resume else ''}")
    with Progress(len(cells), "runs") as progress:

        def on_cell(cell: Any, new: list[Any]) -> None:  # the CSV is rewritten atomically after every cell
            reward = next(r.value for r in new if r.metric == "reward")
            progress.advance(1, f"k={cell.k} seed={cell.seed} reward {reward:.2f}")

        cell_fn = functools.partial(run_cell, policy_dir=args.save_policies)
        rows = run_sweep(config, cells, out=out, executor=args.executor, address=args.address, resume=args.resume,
                         on_cell=on_cell, cell_fn=cell_fn)
    print(f"wrote {len(rows)} rows to {out}")
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    """Estimate P_l (check P_g) from bags; write the identified game file and its report (atomically)."""
    from altmarl_ros.bagdata import read_transitions
    from altmarl_ros.marl.games import make_game
    from altmarl_ros.marl.identify import combine_runs, identify, write_identification
    from altmarl_ros.zones import load_zones

    zones = load_zones(args.zones or share_path("config/zones.yaml"))
    runs = combine_runs([read_transitions(bag, zones) for bag in args.bag])
    result = identify(runs, make_game(args.game), prior=args.prior, strength=args.prior_strength, level=args.level,
                      replace_P_g=args.replace_pg)
    out = Path(args.out)
    report = write_identification(out, result, sources=[str(b) for b in args.bag], nominal_name=args.game)
    print(json.dumps(report, indent=2))
    print(f"wrote {out} (train with: altmarl train --game {out}) and {out.with_suffix('.identify.json')}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from altmarl_ros.marl.experiments import GAP_METRIC, read_rows
    from altmarl_ros.marl.plotting import fit_loglog_slope, plot_rows, summarize

    rows = read_rows(args.csv)
    written = plot_rows(rows, args.out, title=args.title)
    for metric, path in written.items():
        print(f"{metric}: {path}")
    for metric in ("gap_l_unilateral", "gap_l_shared", "gap_g_restricted", "gap_g_full", GAP_METRIC):
        gap = summarize(rows, metric)
        if (gap.mean > 0).sum() >= 3:
            fit = fit_loglog_slope(gap.k, gap.mean)
            print(f"{metric} log-log slope {fit.slope:.3f} (95 % CI [{fit.ci_low:.3f}, {fit.ci_high:.3f}], "
                  f"{fit.n_points} k values with a positive mean; theory about -0.5)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="altmarl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default=DEFAULT_CONFIG, help="training config YAML (default: %(default)s)")
        p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
        p.add_argument("--n-agents", type=_positive_int, default=None, help="override n, the number of robots")

    def game_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--game", default=None, help="a built-in game or a game file (YAML, see README 'Games from "
                       "files'); replaces the config's game; n comes from the file unless --n-agents is given")

    p = sub.add_parser("train", help="train pi_g and pi_l with ALTERNATING-MARL and save them")
    common(p)
    game_flag(p)
    p.add_argument("--k", type=_positive_int, default=None, help="agents observed per step (default: config k)")
    p.add_argument("--out", default=None, help="artifact path stem (writes STEM.npz and STEM.json)")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a saved policy on the n-agent system")
    common(p)
    p.set_defaults(config=None)  # default: the config stored in the policy's metadata
    p.add_argument("--policy", required=True, help="policy artifact (.npz with its .json)")
    p.add_argument("--ordering", choices=("paper", "authors"), default=None, help="override the update ordering")
    p.add_argument("--gaps", "--nash-gap", action="store_true", help="also estimate the named gaps (gap_l_unilateral, "
                   "gap_l_shared, gap_g_restricted, gap_g_full: lower-bound estimates) and nash_gap_lower_bound")
    p.add_argument("--out", default=None, help="also write the report as JSON here")
    p.set_defaults(func=cmd_evaluate)

    from altmarl_ros.marl.executors import EXECUTORS

    p = sub.add_parser("sweep", help="train and evaluate over k and seeds; write tidy CSV rows")
    common(p)
    game_flag(p)
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="run the (k, seed) cells in this process or as Ray tasks (default: %(default)s)")
    p.add_argument("--backend", choices=EXECUTORS, default=None, help=argparse.SUPPRESS)  # deprecated --executor
    p.add_argument("--address", default=None, help="Ray cluster to join (e.g. auto, ray://head:10001); default: "
                   "start Ray on this machine")
    p.add_argument("--resume", action="store_true", help="keep the cells already in --out and run the rest")
    p.add_argument("--workers", type=_positive_int, default=1, help="continuous configs: processes of one thread")
    p.add_argument("--k", type=_int_list, required=True, help="comma-separated k values, e.g. 1,5,10")
    p.add_argument("--seeds", type=_positive_int, default=3, help="seeds per k (default: %(default)s)")
    p.add_argument("--seed0", type=int, default=0, help="first seed (default: %(default)s)")
    p.add_argument("--gap-seeds", type=int, default=None, help="estimate the Nash gap on the first N seeds only")
    p.add_argument("--out", required=True, help="CSV path (columns k,seed,metric,value,stderr)")
    p.add_argument("--save-policies", metavar="DIR", default=None,
                   help="also save every trained pair as DIR/k<k>_seed<seed>.npz/.json")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("plot", help="plot a sweep CSV as PNGs")
    p.add_argument("csv", help="CSV written by `altmarl sweep`")
    p.add_argument("--out", default="runs/plots", help="output directory (default: %(default)s)")
    p.add_argument("--title", default="", help="plot title")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("identify", help="estimate the game's P_l (and check P_g) from rosbag2 recordings")
    p.add_argument("--bag", action="append", required=True, help="rosbag2 directory (repeat for several runs)")
    p.add_argument("--out", required=True, help="identified game file (YAML); the report goes beside it as "
                   "STEM.identify.json")
    p.add_argument("--game", default="warehouse", help="nominal game: prior, rewards, P_g (default: %(default)s)")
    p.add_argument("--zones", default="", help="zones YAML (default: the package's config/zones.yaml)")
    p.add_argument("--prior", choices=("nominal", "uniform"), default="nominal",
                   help="Dirichlet prior mean per row (default: %(default)s: unvisited rows keep the model)")
    p.add_argument("--prior-strength", type=float, default=5.0, help="prior pseudo-counts per row (default 5)")
    p.add_argument("--level", type=float, default=0.95, help="credible interval level (default 0.95)")
    p.add_argument("--replace-pg", action="store_true", help="also replace P_g by its estimate (default: check it)")
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("replay", help="render a swarm bag as a top-down video (--video FILE.mp4)")
    from altmarl_ros import video
    video.add_arguments(p)
    p.set_defaults(func=video.run)
    _add_swarm(sub.add_parser("swarm", help="run the ROS 2 swarm (simulator + controller + robots) in closed loop"))
    _add_federated(sub.add_parser("federated", help="federated learning in Flower with a participation budget k: "
                                  "record runs, identify the participation game, k-sweep on it, learned strategy vs "
                                  "FedAvg (needs flwr)"))
    return parser


def _add_federated(p: argparse.ArgumentParser) -> None:
    """`altmarl federated` (altmarl_ros.federated.command; flwr is imported only when it runs)."""
    from altmarl_ros.federated import command

    command.add_arguments(p)
    p.set_defaults(func=command.run)


def _add_swarm(p: argparse.ArgumentParser) -> None:
    """The swarm's options (documented even without ROS 2) and its entry, which checks for rclpy first."""
    try:
        from altmarl_ros.ros import swarm
    except ImportError as exc:  # the swarm's own modules are missing: accept any options, say what is missing
        p.add_argument("options", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(func=functools.partial(_no_ros, exc))
    else:
        swarm.add_arguments(p)
        p.set_defaults(func=_run_swarm)


def _run_swarm(args: argparse.Namespace) -> int:
    """`altmarl swarm`: checks that rclpy imports BEFORE anything is trained or started."""
    from altmarl_ros.ros import swarm

    missing = swarm.rclpy_import_error()
    if missing is not None:
        return _no_ros(missing, args)

    return int(swarm.run(args) or 0)


def _no_ros(exc: Exception, _args: argparse.Namespace) -> int:
    print(f"altmarl swarm: error: ROS 2 (rclpy) is not importable here ({exc}); the learning commands (train, "
          "evaluate, sweep, plot, identify) work without it. Install ROS 2 with `make setup` (or run `make run`).",
          file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    from altmarl_ros.errors import is_user_error

    args = build_parser().parse_args(argv)
    plain = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"altmarl {args.command}: warning: {message}\n"  # one line
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:
        if not is_user_error(exc):
            raise  # a programming error: keep its traceback
        print(f"altmarl {args.command}: error: {exc}", file=sys.stderr)  # bad config, file, option: one line
        return 2
    finally:
        warnings.formatwarning = plain


if __name__ == "__main__":
    sys.exit(main())
