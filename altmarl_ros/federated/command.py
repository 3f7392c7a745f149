"""`altmarl federated`: record Flower runs, identify the participation game, sweep k on it, and compare
the learned strategy with Flower's FedAvg; writes summary.json and plots into --out.

Needs flwr (its own venv, bench/README.md); bad input is one line each (k > n, an unknown dataset, a bad
game file) and is checked before anything runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from altmarl_ros.errors import InputError
from altmarl_ros.paths import share_path

DEFAULT_GAME = "config/games/federated_participation.yaml"
DEFAULT_TRAIN = "config/federated_train.yaml"


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output directory (summary.json, plots, records, identified game)")
    p.add_argument("--game", default=None, help=f"participation game file, the nominal model (default: {DEFAULT_GAME})")
    p.add_argument("--train-config", default=None, help=f"training config (default: {DEFAULT_TRAIN})")
    p.add_argument("--dataset", default="digits", help="dataset (default: %(default)s, scikit-learn's digits)")
    p.add_argument("--n", type=int, default=100, help="clients (default: %(default)s)")
    p.add_argument("--k", type=int, default=10, help="participation budget of the comparison (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=80, help="rounds of each compared run (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=5, help="seeds of the comparison (default: %(default)s)")
    p.add_argument("--record-rounds", type=int, default=120, help="rounds of each recording run (default: 120)")
    p.add_argument("--records", default=None, help="reuse the records.json of an earlier run instead of recording")
    p.add_argument("--ks", type=_int_list, default=[1, 2, 5, 10, 20, 50], help="k-sweep on the identified game")
    p.add_argument("--sweep-seeds", type=int, default=3, help="seeds per k of the sweep (default: %(default)s)")
    p.add_argument("--no-sweep", action="store_true", help="skip the k-sweep")
    p.add_argument("--backend", choices=("ray", "inprocess"), default="ray",
                   help="Flower simulation workers: Ray actors (Flower's engine as shipped) or in process")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _check(args: argparse.Namespace) -> tuple[Any, Path, Path]:
    """Every input problem as one ValueError line, before anything runs."""
    from altmarl_ros.federated import data as fdata
    from altmarl_ros.federated.game import read_participation
    from altmarl_ros.marl.config import load_train_config

    for name in ("n", "rounds", "seeds", "record_rounds", "sweep_seeds"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 1 <= args.k <= args.n:
        raise InputError(f"--k = {args.k} must satisfy 1 <= k <= n = {args.n} (k clients are polled of n)")
    too_big = [k for k in args.ks if k > args.n]
    if too_big and not args.no_sweep:
        raise InputError(f"--ks: k = {too_big[0]} exceeds n = {args.n}")
    train, _ = fdata.load(args.dataset)
    fdata.partition(train, args.n, 0)
    game_path = Path(args.game) if args.game else Path(share_path(DEFAULT_GAME))
    nominal = read_participation(game_path)
    if nominal.n_agents != args.n:
        nominal = type(nominal)(nominal.polled, nominal.Q_unpolled, args.n, nominal.description)
    train_config = Path(args.train_config) if args.train_config else Path(share_path(DEFAULT_TRAIN))
    load_train_config(train_config)
    if args.records and not Path(args.records).is_file():
        raise InputError(f"--records: no such file {args.records}")
    return nominal, train_config, game_path


def run(args: argparse.Namespace) -> int:
    nominal, train_config, game_path = _check(args)
    try:
        import flwr  # noqa: F401
    except ImportError as exc:
        raise InputError(f"altmarl federated needs flwr ({exc}); it pins ray 2.55.1 and protobuf < 7, so it lives "
                         "in its own venv: see bench/README.md 'Federated'") from None
    from altmarl_ros.federated import pipeline
    from altmarl_ros.federated.experiment import save_json, sweep_summary
    from altmarl_ros.federated.plots import comparison_plots, sweep_plot
    from altmarl_ros.federated.runner import Fleet
    from altmarl_ros.progress import Progress

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(args.dataset, args.n, 0)
    bars: dict[str, Progress] = {}

    def bar(label: str):
        def update(done: int, total: int, what: str) -> None:
            if label not in bars:
                bars[label] = Progress(total, label, enabled=not args.no_progress)
            bars[label].update(done, what)
            if done >= total:
                bars[label].close()
        return update

    if args.records:
        records = pipeline.load_records(Path(args.records))
    else:
        records = pipeline.record(out, fleet, k=args.k, rounds=args.record_rounds, seeds=[100, 101],
                                  heldout_seeds=[102], backend=args.backend, progress=bar("recording runs"))
    ident = pipeline.identify_step(out, records, nominal)
    summary: dict[str, Any] = {"game": str(game_path), "dataset": args.dataset, "n": args.n, "k": args.k,
                               "identification": json.loads((out / "identification.json").read_text())}
    summary["identification"].pop("P_polled", None)
    plots = []
    if not args.no_sweep:
        rows = pipeline.k_sweep(out, ident.game, ks=args.ks, seeds=list(range(args.sweep_seeds)),
                                train_config=train_config, progress=bar("k-sweep cells"))
        summary["k_sweep"] = sweep_summary(rows)
        plots.append(sweep_plot(rows, out))
    result = pipeline.compare_step(out, fleet, ident.game, k=args.k, rounds=args.rounds,
                                   seeds=list(range(args.seeds)), train_config=train_config, backend=args.backend,
                                   progress=bar("Flower runs"))
    summary["comparison"] = {key: v for key, v in result.items() if key not in ("logs", "curves")}
    plots += comparison_plots(result, out)
    summary["plots"] = [p.name for p in plots]
    save_json(out / "summary.json", summary)
    print(f"wrote {out / 'summary.json'} and {len(plots)} plots")
    return 0
