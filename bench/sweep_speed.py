"""One seed's k-sweep timed cell by cell, as `altmarl sweep` runs it, side by side with the authors' code.

In one subprocess per repeat: the full-information reference of seed 0 is trained once (timed apart), then every k
in the order given, from that reference (`experiments.train_policies(..., reference=...)`; `--config`, default
config/train_warehouse.yaml), so
later cells reuse what the reference keeps (its action values, the full-information responses to robots that
earlier cells' restarts met). The authors' code trains each k in its own subprocess (`speed.run_authors`). Repeats
are interleaved (our sweep, then the authors' k, then again). Rows written as JSON lines; a Markdown table printed.

    OMP_NUM_THREADS=1 .venv/bin/python bench/sweep_speed.py --authors-dir /path/to/alternating-marl/scripts \
        --k 1,2,5,10,20,35,50 --repeats 3 --out bench/results/sweep_speed.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import speed  # noqa: E402  (bench/speed.py: the authors' side and the subprocess environment)


def run_sweep(ks: list[int], config_name: str) -> dict:
    """Child: the reference of seed 0, then each k from it; seconds per step."""
    from altmarl_ros.marl.config import load_train_config
    from altmarl_ros.marl.experiments import reference_pair, train_policies

    config = load_train_config(ROOT / "config" / config_name)
    t0 = time.perf_counter()
    reference = reference_pair(config, seed=0)
    row: dict = {"reference_s": time.perf_counter() - t0, "cells": {}}
    for k in ks:
        t0 = time.perf_counter()
        train_policies(config, k=k, seed=0, reference=reference)
        row["cells"][str(k)] = time.perf_counter() - t0
    return row


def ours(ks: list[int], config_name: str) -> dict:
    cmd = [sys.executable, __file__, "--one", "--k", ",".join(map(str, ks)), "--config", config_name]
    out = subprocess.run(cmd, capture_output=True, text=True, env=speed.child_env(), cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict], ks: list[int]) -> str:
    def mmm(x: list[float]) -> str:
        return f"{min(x):.2f} / {float(np.median(x)):.2f} / {max(x):.2f}"

    sweeps = [r for r in rows if r["kind"] == "ours_sweep"]
    lines = ["| k | the authors' code, train s | our cell in the sweep, train s | speed-up (medians) |",
             "|---|---|---|---|"]
    theirs_total, ours_total = np.zeros(len(sweeps)), np.array([r["reference_s"] for r in sweeps])
    for k in ks:
        theirs = [r["train_s"] for r in rows if r["kind"] == "authors" and r["k"] == k and "train_s" in r]
        cell = [r["cells"][str(k)] for r in sweeps]
        ours_total += cell
        if theirs:
            theirs_total[:len(theirs)] += theirs
        speedup = f"{np.median(theirs) / np.median(cell):.1f}x" if theirs else ""
        lines.append(f"| {k} | {mmm(theirs) if theirs else ''} | {mmm(cell)} | {speedup} |")
    lines.append(f"| reference (once) | | {mmm([r['reference_s'] for r in sweeps])} | |")
    if any(r["kind"] == "authors" and "train_s" in r for r in rows):
        lines.append(f"| **the sweep** | {mmm(list(theirs_total))} | {mmm(list(ours_total))} | "
                     f"{np.median(theirs_total) / np.median(ours_total):.1f}x |")
    else:
        lines.append(f"| **the sweep** | | {mmm(list(ours_total))} | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors-dir", default=None, help="the authors' scripts/ directory (optional)")
    parser.add_argument("--k", default="1,2,5,10,20,35,50", help="the sweep's k, in the order trained")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", default="train_warehouse.yaml", help="our training config, in config/")
    parser.add_argument("--out", default="bench/results/sweep_speed.jsonl")
    parser.add_argument("--summarize", metavar="JSONL", help="only print the table of an earlier run's rows")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    ks = [int(k) for k in args.k.split(",")]
    if args.one:
        print(json.dumps(run_sweep(ks, args.config)))
        return 0
    out = ROOT / (args.summarize or args.out)
    if args.summarize:
        rows = [json.loads(line) for line in out.read_text().splitlines() if line]
        print(table(rows, ks))
        return 0
    rows: list[dict] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    for rep in range(args.repeats):
        print(f"repeat {rep + 1}: our sweep ...", file=sys.stderr, flush=True)
        rows.append({"kind": "ours_sweep", "repeat": rep, "config": args.config, **ours(ks, args.config)})
        for k in ks if args.authors_dir else []:
            print(f"repeat {rep + 1}: the authors' code, k={k} ...", file=sys.stderr, flush=True)
            rows.append({**speed.measure("authors", k, args.authors_dir, 0), "repeat": rep})
            if "error" in rows[-1]:
                out.write_text("".join(json.dumps(r) + "\n" for r in rows))
                print(f"the authors' code failed at k={k} (is --authors-dir their scripts/ folder?): "
                      f"{rows[-1]['error']}", file=sys.stderr)
                return 2
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(table(rows, ks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
