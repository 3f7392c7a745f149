"""Issue 18 bench: record Flower runs, identify the participation game, k-sweep on it, learned strategy vs
FedAvg in Flower (n = 100, k = 10). Runs in the Flower venv (flwr pins ray 2.55.1, protobuf < 7:
bench/README.md), with PYTHONPATH at the checkout:

    .venv-fl/bin/python bench/federated_flower.py record   --out bench/results/federated
    .venv-fl/bin/python bench/federated_flower.py identify --out bench/results/federated
    .venv-fl/bin/python bench/federated_flower.py sweep    --out bench/results/federated
    .venv-fl/bin/python bench/federated_flower.py compare  --out bench/results/federated
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def summarize(out: Path) -> None:
    """Recompute the comparison's summary from its stored logs, the sweep summary, and the plots."""
    import json

    from altmarl_ros.federated.experiment import compare_runs, logs_from_json, save_json, sweep_summary
    from altmarl_ros.federated.plots import comparison_plots, sweep_plot
    from altmarl_ros.marl.experiments import read_rows

    result = json.loads((out / "comparison.json").read_text())
    learned, fedavg = (logs_from_json(result["logs"][name]) for name in ("learned", "fedavg"))
    result.update(compare_runs(learned, fedavg))
    save_json(out / "comparison.json", result)
    comparison_plots(result, out)
    summary = {"comparison": {key: v for key, v in result.items() if key not in ("logs", "curves")},
               "identification": json.loads((out / "identification.json").read_text())}
    summary["identification"].pop("P_polled", None)
    if (out / "k_sweep.csv").exists():
        rows = read_rows(out / "k_sweep.csv")
        summary["k_sweep"] = sweep_summary(rows)
        sweep_plot(rows, out)
    save_json(out / "summary.json", summary)
    print(json.dumps(summary["comparison"]["summary"], indent=1))
    if "k_sweep" in summary:
        print(json.dumps(summary["k_sweep"], indent=1))


def main(argv: list[str] | None = None) -> int:
    from altmarl_ros.federated import pipeline
    from altmarl_ros.federated.game import read_participation
    from altmarl_ros.federated.runner import Fleet

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("record", "identify", "sweep", "compare", "summarize"))
    parser.add_argument("--out", default=str(ROOT / "bench/results/federated"))
    parser.add_argument("--game", default=str(ROOT / "config/games/federated_participation.yaml"))
    parser.add_argument("--train-config", default=str(ROOT / "config/federated_train.yaml"))
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--record-rounds", type=int, default=120)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ks", default="1,2,5,10,20,50")
    parser.add_argument("--sweep-seeds", type=int, default=3)
    parser.add_argument("--backend", choices=("ray", "inprocess"), default="ray")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fleet = Fleet("digits", args.n, 0)
    t0 = time.monotonic()

    def progress(done: int, total: int, what: str) -> None:
        print(f"[{time.monotonic() - t0:7.1f}s] {done}/{total} {what}", flush=True)

    if args.step == "record":
        pipeline.record(out, fleet, k=args.k, rounds=args.record_rounds, seeds=[100, 101], heldout_seeds=[102],
                        backend=args.backend, progress=progress)
    elif args.step == "identify":
        pipeline.identify_step(out, pipeline.load_records(out / "records.json"), read_participation(args.game))
    elif args.step == "sweep":
        pipeline.k_sweep(out, read_participation(out / "identified.yaml"), ks=[int(k) for k in args.ks.split(",")],
                         seeds=list(range(args.sweep_seeds)), train_config=Path(args.train_config), progress=progress)
    elif args.step == "summarize":
        summarize(out)
    else:
        pipeline.compare_step(out, fleet, read_participation(out / "identified.yaml"), k=args.k, rounds=args.rounds,
                              seeds=list(range(args.seeds)), train_config=Path(args.train_config),
                              backend=args.backend, progress=progress)
    print(f"{args.step} done in {time.monotonic() - t0:.1f}s (wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
