"""Contention benchmark: each CPU stage at 1 and 2 intra-op threads, quiet and beside a busy process.

OpenMP threads wait actively for work; with as many threads as cores, one other
CPU-bound process on the machine can slow small matrix products by an order of
magnitude. This measures what ``virnucpro_core/threads.py`` chooses against
torch's default, on VirNucPro's classifier (2048-d FastESM2 features, hidden
512, 2 classes) and on extraction with the smoke profile's tiny stand-ins:

* ``train``    — SGD steps (lr 2e-4, momentum 0.9, cross-entropy) at VirNucPro's batch 32;
* ``evaluate`` — inference-mode forward passes over blocks of ``--eval-rows`` rows;
* ``stream``   — one epoch of ``train_classifier`` (what ``virnucpro train`` runs) over a split of
  ``--stream-rows`` synthetic rows on disk, read a batch at a time; samples/s is training samples over the
  epoch's time (its validation pass included), imports and opening the split not;
* ``smoke-train`` — ``train_classifier`` to early stopping on the smoke profile's FastESM2 split (the
  ``train.pt`` under ``--smoke-split``, by default the one ``make smoke`` left in artifacts/); its seconds are
  the training's wall time, and the summary gives each thread count's busy/quiet ratio;
* ``extract`` — ``extract_embeddings`` with the smoke profile's three tiny stand-ins (random weights) in turn:
  64 seeded 300-nt DNA chunks for DNABERT-S, 64 seeded 100-residue proteins for ESM2 3B and FastESM2 (the
  smoke data's lengths); samples/s counts every model's sequences.

Each (stage, threads, load) cell runs in its own child process with
``OMP_NUM_THREADS`` set (a fresh OpenMP pool, as a user's run would have), warms
up, then counts samples for ``--seconds`` of wall time. ``busy`` cells run
beside one ``python -c "while True: pass"`` process started for them and
stopped after. The load averages before each cell are kept beside its number:
on a shared machine "quiet" means "no busy process of ours", not an idle machine.
Not a timed test; no figure here is asserted anywhere.

A cell that runs past ``--cell-timeout`` seconds is stopped and recorded as not finished (two threads beside a
busy process can take minutes).

    .venv/bin/python benchmarks/contention.py --json /tmp/contention.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from scale import write_features

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("train", "evaluate", "stream", "smoke-train", "extract")

CELL_CODE = """
import json, sys, time, torch
from virnucpro_core.models.classifier import MLPClassifier
stage, dim, rows, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if stage in ("stream", "smoke-train"):
    from virnucpro_core.train.results import TrainingConfig
    from virnucpro_core.train.training import train_classifier
    config = TrainingConfig(seed=42, device="cpu", **({"max_epochs": 1} if stage == "stream" else {}))
    start = time.perf_counter()
    result = train_classifier(sys.argv[5], config, progress=False, log=None)
    wall = time.perf_counter() - start
    history = result.history
    if stage == "stream":
        print(json.dumps({"threads": torch.get_num_threads(), "samples": history.train_samples,
                          "steps": -(-history.train_samples // config.batch_size),
                          "seconds": history.epochs[0].seconds}))
    else:
        print(json.dumps({"threads": torch.get_num_threads(), "samples": history.train_samples * len(history.epochs),
                          "steps": len(history.epochs), "seconds": wall}))
    sys.exit(0)
torch.manual_seed(42)
model = MLPClassifier(dim)
if stage == "extract":
    import random
    from virnucpro_core.extract.embeddings import extract_embeddings
    from virnucpro_core.models.registry import load_model
    rng = random.Random(42)
    dna = [(f"d{i}", "".join(rng.choice("ACGT") for _ in range(300))) for i in range(64)]
    protein = [(f"p{i}", "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(100))) for i in range(64)]
    models = [(load_model(name, weights="random", size="tiny", device="cpu"), protein if name != "dnabert_s" else dna)
              for name in ("dnabert_s", "esm2_3b", "fastesm2_650")]
    def step():
        for loaded, records in models:
            extract_embeddings(loaded, records, progress=False)
        return 3 * 64
elif stage == "train":
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


def run_cell(stage: str, threads: int, busy: bool, args: argparse.Namespace, split: Path | None = None) -> dict:
    """One measurement in a child process with ``OMP_NUM_THREADS=threads``, beside a busy process when ``busy``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    load_before = _load()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    cell = {"stage": stage, "threads": threads, "load": "busy" if busy else "quiet", "load_average_before": load_before}
    try:
        done = subprocess.run(
            [sys.executable, "-c", CELL_CODE, stage, str(args.dim), str(args.eval_rows), str(args.seconds),
             str(split or "")],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=args.cell_timeout,
        )
    except subprocess.TimeoutExpired:
        return {**cell, "finished": False, "samples_per_s": None, "steps": None, "seconds": args.cell_timeout}
    finally:
        if spinner is not None:
            spinner.terminate()
            spinner.wait()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**cell, "finished": True, "samples_per_s": result["samples"] / result["seconds"], "steps": result["steps"],
            "seconds": result["seconds"]}


def smoke_split(given: Path | None) -> Path | None:
    """The smoke profile's FastESM2 split: ``given``, else the newest one ``make smoke`` left in artifacts/."""
    if given is not None:
        return given if (given / "train.pt").is_file() else None
    found = sorted((ROOT / "artifacts").glob("acceptance/smoke/split/fast-*/train.pt"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


def stream_split(work: Path, rows: int, dim: int) -> Path:
    """A split of ``rows`` synthetic samples (half viral) at ``dim`` on disk, made once for the stream cells."""
    from virnucpro_core.split.make import make_split

    write_features(work / "features", rows, dim, shard_rows=50_000, seed=42)
    make_split(sorted((work / "features").glob("viral_*.pt")), sorted((work / "features").glob("host_*.pt")),
               out_dir=work / "split", overwrite=True)
    return work / "split"


def describe(cell: dict) -> str:
    if not cell["finished"]:
        return (f"{cell['stage']:11s} {cell['threads']} thread(s) {cell['load']:5s}  did not finish in "
                f"{cell['seconds']:.0f} s (load before {cell['load_average_before']})")
    unit = "epochs" if cell["stage"] == "smoke-train" else "steps"
    return (f"{cell['stage']:11s} {cell['threads']} thread(s) {cell['load']:5s} {cell['samples_per_s']:>12,.0f} "
            f"samples/s  ({cell['steps']} {unit} in {cell['seconds']:.1f} s; load before "
            f"{cell['load_average_before']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="intra-op thread counts to compare (default: 1,2)")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated, of {', '.join(STAGES)} (default: all)")
    parser.add_argument("--dim", type=int, default=2048, help="feature width (default: 2048, FastESM2's)")
    parser.add_argument("--eval-rows", type=int, default=4096, help="rows per evaluation block (default: 4096)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="measured wall time per cell (default: 3; longer is steadier, slower)")
    parser.add_argument("--stream-rows", type=int, default=20_000,
                        help="samples of the stream cells' synthetic split (default: 20000; 90 %% of them train)")
    parser.add_argument("--smoke-split", type=Path, default=None,
                        help="split directory for smoke-train (default: the one `make smoke` left in artifacts/)")
    parser.add_argument("--cell-timeout", type=float, default=300.0,
                        help="seconds after which a cell is stopped and recorded as not finished (default: 300)")
    parser.add_argument("--json", type=Path, default=None, help="also write every cell and the machine here")
    args = parser.parse_args(argv)
    threads = [int(value) for value in args.threads.split(",")]
    stages = args.stages.split(",")
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"--stages: unknown {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    splits: dict[str, Path | None] = {}
    if "smoke-train" in stages:
        splits["smoke-train"] = smoke_split(args.smoke_split)
        if splits["smoke-train"] is None:
            where = (f"{args.smoke_split}/train.pt" if args.smoke_split
                     else "artifacts/acceptance/smoke/split/fast-*/train.pt")
            parser.error(f"smoke-train needs a split's train.pt, and {where} is not there: run `make smoke` first, "
                         "or pass --smoke-split DIR (or leave smoke-train out of --stages)")
    started_load = _load()
    cells = []
    with tempfile.TemporaryDirectory(prefix="contention-") as work:
        if "stream" in stages:
            splits["stream"] = stream_split(Path(work), args.stream_rows, args.dim)
        for stage in stages:
            for busy in (False, True):
                for count in threads:
                    cell = run_cell(stage, count, busy, args, splits.get(stage))
                    cells.append(cell)
                    print(describe(cell), flush=True)
    for count in threads:
        pair = {c["load"]: c for c in cells if c["stage"] == "smoke-train" and c["threads"] == count}
        if len(pair) == 2 and all(c["finished"] for c in pair.values()):
            ratio = pair["busy"]["seconds"] / pair["quiet"]["seconds"]
            print(f"smoke-train {count} thread(s): beside a busy process {ratio:.2f}× its quiet time")
    machine = {"cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
               "platform": platform.platform(), "python": platform.python_version(),
               "load_average_start": started_load, "load_average_end": _load()}
    print(f"CPU cores {machine['cpu_count']}; load average (1/5/15 min) at start {started_load}, "
          f"at end {machine['load_average_end']}")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, "dim": args.dim, "eval_rows": args.eval_rows,
                                         "stream_rows": args.stream_rows,
                                         "smoke_split": str(splits.get("smoke-train") or ""), "cells": cells},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
