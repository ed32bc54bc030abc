"""Contention benchmark: the MLP's training step and evaluation at 1 and 2 intra-op threads, quiet and beside a busy process.

OpenMP threads wait actively for work; with as many threads as cores, one other
CPU-bound process on the machine can slow small matrix products by an order of
magnitude. This measures what ``virnucpro_core/threads.py`` chooses against
torch's default, on VirNucPro's classifier (2048-d FastESM2 features, hidden
512, 2 classes):

* ``train``    — SGD steps (lr 2e-4, momentum 0.9, cross-entropy) at VirNucPro's batch 32;
* ``evaluate`` — inference-mode forward passes over blocks of ``--eval-rows`` rows.

Each (stage, threads, load) cell runs in its own child process with
``OMP_NUM_THREADS`` set (a fresh OpenMP pool, as a user's run would have), warms
up, then counts samples for ``--seconds`` of wall time. ``busy`` cells run
beside one ``python -c "while True: pass"`` process started for them and
stopped after. The load averages before each cell are kept beside its number:
on a shared machine "quiet" means "no busy process of ours", not an idle machine.
Not a timed test; no figure here is asserted anywhere.

    .venv/bin/python benchmarks/contention.py --json /tmp/contention.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CELL_CODE = """
import json, sys, time, torch
from virnucpro_core.train.classifier import MLPClassifier
stage, dim, rows, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
torch.manual_seed(42)
model = MLPClassifier(dim)
if stage == "train":
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=2e-4, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.randn(32, dim), torch.randint(0, 2, (32,))
    def step():
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
        return 32
else:
    model.eval()
    x = torch.randn(rows, dim)
    def step():
        with torch.inference_mode():
            model(x)
        return rows
for _ in range(5):  # warm-up: allocator, OpenMP pool
    step()
samples, steps, start = 0, 0, time.perf_counter()
while True:
    samples += step()
    steps += 1
    elapsed = time.perf_counter() - start
    if elapsed >= seconds and steps >= 3:
        break
print(json.dumps({"threads": torch.get_num_threads(), "samples": samples, "steps": steps, "seconds": elapsed}))
"""


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run_cell(stage: str, threads: int, busy: bool, args: argparse.Namespace) -> dict:
    """One measurement in a child process with ``OMP_NUM_THREADS=threads``, beside a busy process when ``busy``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    load_before = _load()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        done = subprocess.run(
            [sys.executable, "-c", CELL_CODE, stage, str(args.dim), str(args.eval_rows), str(args.seconds)],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True,
        )
    finally:
        if spinner is not None:
            spinner.terminate()
            spinner.wait()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "stage": stage,
        "threads": threads,
        "load": "busy" if busy else "quiet",
        "samples_per_s": result["samples"] / result["seconds"],
        "steps": result["steps"],
        "seconds": result["seconds"],
        "load_average_before": load_before,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="intra-op thread counts to compare (default: 1,2)")
    parser.add_argument("--stages", default="train,evaluate", help="train, evaluate or both (default: both)")
    parser.add_argument("--dim", type=int, default=2048, help="feature width (default: 2048, FastESM2's)")
    parser.add_argument("--eval-rows", type=int, default=4096, help="rows per evaluation block (default: 4096)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="measured wall time per cell (default: 3; longer is steadier, slower)")
    parser.add_argument("--json", type=Path, default=None, help="also write every cell and the machine here")
    args = parser.parse_args(argv)
    threads = [int(value) for value in args.threads.split(",")]
    stages = args.stages.split(",")
    started_load = _load()
    cells = []
    for stage in stages:
        for busy in (False, True):
            for count in threads:
                cell = run_cell(stage, count, busy, args)
                cells.append(cell)
                print(f"{stage:9s} {cell['threads']} thread(s) {cell['load']:5s} {cell['samples_per_s']:>12,.0f} "
                      f"samples/s  ({cell['steps']} steps in {cell['seconds']:.1f} s; load before "
                      f"{cell['load_average_before']})", flush=True)
    machine = {"cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
               "platform": platform.platform(), "python": platform.python_version(),
               "load_average_start": started_load, "load_average_end": _load()}
    print(f"CPU cores {machine['cpu_count']}; load average (1/5/15 min) at start {started_load}, "
          f"at end {machine['load_average_end']}")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, "dim": args.dim, "eval_rows": args.eval_rows,
                                         "cells": cells}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
