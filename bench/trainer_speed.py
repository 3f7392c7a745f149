"""The default trainer before and after a change, side by side in one run: training time per k, and the
trained pairs' final reward (issue 15, item 4).

    git worktree add /tmp/before <commit before the change>
    .venv/bin/python bench/trainer_speed.py --before /tmp/before --ks 1,2,5,10,20,35,50 --repeats 3 \\
        --out bench/results/trainer_speed.jsonl
    .venv/bin/python bench/trainer_speed.py --before /tmp/before --quality --ks 5,10,35 --seeds 0,1,2 \\
        --out bench/results/trainer_quality.jsonl
    .venv/bin/python bench/trainer_speed.py --summarize bench/results/trainer_speed.jsonl

Every measurement is one subprocess (OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = MKL_NUM_THREADS = 1) that imports
the package of its tree (`--before` or this checkout) and runs `train_policies(config/train_warehouse.yaml, k,
seed)`; the two trees alternate within each repeat, so that load drifts hit both. Each row records wall and CPU
seconds and the 1-minute load average (os.getloadavg) before and after. `--quality` also runs the tree's own
final evaluation (`evaluate_policies`, 15 x 50 episodes on n = 1000) and a checksum of the trained tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(k: int, seed: int, quality: bool) -> dict:
    """One training (and, with `quality`, the final evaluation) in this process, with the package on sys.path."""
    import time
    import zlib

    from altmarl_ros.marl.config import load_train_config
    from altmarl_ros.marl.experiments import evaluate_policies, train_policies

    config = load_train_config(ROOT / "config" / "train_warehouse.yaml")
    load0 = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    trained = train_policies(config, k=k, seed=seed)
    row = {"train_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "load_before": load0,
           "load_after": os.getloadavg()[0], "rounds": len(trained.alternation.history),
           "start": trained.selection.best.start,
           "tables": f"{zlib.crc32(trained.pi_g.actions.tobytes()):08x}-{zlib.crc32(trained.pi_l.probs.tobytes()):08x}"}
    if quality:
        final = evaluate_policies(config, trained.game, trained.pi_g, trained.pi_l, seed=seed)
        row.update(reward=final.reward_mean, reward_stderr=final.reward_stderr)
    return row


def measure(tree: Path, name: str, k: int, seed: int, quality: bool) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(tree))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", "--ks", str(k), "--seeds", str(seed)]
    if quality:
        cmd.append("--quality")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, cwd=tree)
    if out.returncode != 0:
        return {"tree": name, "k": k, "seed": seed, "error": out.stderr.strip().splitlines()[-1:]}
    return {"tree": name, "k": k, "seed": seed, **json.loads(out.stdout.strip().splitlines()[-1])}


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f} ({len(values)})"


def table(rows: list[dict]) -> str:
    """Timing rows -> Markdown: per k, each tree's wall and CPU seconds (min / median / max) and the loads."""
    lines = ["| k | tree | train wall s: min / median / max (runs) | CPU s: min / median / max | load (1 min) | "
             "median speed-up |", "|---|---|---|---|---|---|"]
    for k in sorted({r["k"] for r in rows}):
        medians = {}
        for name in ("before", "after"):
            sel = [r for r in rows if r["k"] == k and r["tree"] == name and "error" not in r]
            if not sel:
                continue
            medians[name] = statistics.median(r["train_s"] for r in sel)
            loads = [r["load_before"] for r in sel] + [r["load_after"] for r in sel]
            speed = f"{medians['before'] / medians[name]:.1f}x" if name == "after" and "before" in medians else ""
            lines.append(f"| {k} | {name} | {spread([r['train_s'] for r in sel])} | "
                         f"{spread([r['cpu_s'] for r in sel])} | {min(loads):.1f}-{max(loads):.1f} | {speed} |")
    return "\n".join(lines)


def quality_table(rows: list[dict]) -> str:
    lines = ["| k | seed | before: reward +- stderr (start, tables) | after: reward +- stderr (start, tables) | "
             "same tables |", "|---|---|---|---|---|"]
    for k, seed in sorted({(r["k"], r["seed"]) for r in rows}):
        cell = {r["tree"]: r for r in rows if r["k"] == k and r["seed"] == seed and "error" not in r}
        text = {name: f"{r['reward']:.2f} +- {r['reward_stderr']:.2f} ({r['start']}, {r['tables']})"
                for name, r in cell.items()}
        same = "yes" if len(cell) == 2 and cell["before"]["tables"] == cell["after"]["tables"] else "no"
        lines.append(f"| {k} | {seed} | {text.get('before', '')} | {text.get('after', '')} | {same} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="a worktree of the commit before the change")
    parser.add_argument("--ks", default="1,2,5,10,20,35,50")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quality", action="store_true", help="also the final evaluation and table checksums")
    parser.add_argument("--out", default="bench/results/trainer_speed.jsonl")
    parser.add_argument("--summarize", nargs="+", metavar="JSONL")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    ks, seeds = [int(k) for k in args.ks.split(",")], [int(s) for s in args.seeds.split(",")]
    if args.one:
        print(json.dumps(child(ks[0], seeds[0], args.quality)))
        return 0
    if args.summarize:
        rows = [json.loads(line) for path in args.summarize for line in Path(path).read_text().splitlines() if line]
        print(quality_table(rows) if any("reward" in r for r in rows) else table(rows))
        return 0
    trees = [("before", args.before.resolve()), ("after", ROOT)]
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    repeats = 1 if args.quality else args.repeats
    with out.open("a") as fh:
        for _ in range(repeats):
            for k in ks:
                for seed in seeds:
                    for name, tree in trees:
                        row = measure(tree, name, k, seed, args.quality)
                        print(json.dumps(row), flush=True)
                        fh.write(json.dumps(row) + "\n")
                        fh.flush()
                        rows.append(row)
    print(quality_table(rows) if args.quality else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
