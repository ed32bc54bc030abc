"""Scale benchmark: split, one training epoch and evaluation at N samples, with peak memory per stage.

For each N (``--n 20000,100000,...``) it writes synthetic merged feature files
of ``--dim`` columns (default 2048, FastESM2's width) in shards of
``--shard-rows`` rows (VirNucPro's files hold ~10,000), half viral, half host,
class-separable, shard by shard (the generator's own memory is one shard).
Then each stage runs in its own child process, so its peak resident set is
its own (``os.wait4``'s ``ru_maxrss``):

* ``split``    — ``make_split`` of every shard (stratified 10 % per class, views written);
* ``train``    — ``train_classifier`` on the split, one epoch at VirNucPro's batch 32 (rows streamed from disk);
* ``train-reference`` — the in-memory ``DataLoader`` path streaming replaced, one epoch, as the baseline;
* ``evaluate`` — ``predict_features`` on the test view, then ``evaluate`` (1,000 bootstrap resamples);
* ``bootstrap`` — the metrics' bootstrap CIs alone (1,000 resamples, scored a batch at a time from counts), and
  ``bootstrap-reference`` — the loop it replaced (each sklearn metric once per resample, ``--reference-resamples``
  of the same resamples) as the baseline; both need ``train`` first (its ``mlp.pt``). Their ``ms_per_resample``
  compares;
* ``custody``  — what checking the inputs costs: a plain read of every file, a full SHA-256 of every file (one
  thread, then one per usable core as a view's check runs), and the stat fast path of a content record per
  file (:mod:`virnucpro_core.custody`); ``--cold`` drops the page cache before each, so all read from disk.

Every stage also reports the seconds it spent on chain of custody (``custody_s``: checking views' files
against their records, the finite check of rows read through views, hashing), to set beside its wall time.

It prints wall time, samples/s and peak RSS per stage and N, the least-squares
slope of peak RSS against the feature bytes (1.0 would mean "holds every
feature once"), and ``--json`` writes everything. Not a timed test: CI runs the
smoke mode (``--n 2000,4000 --dim 64``) to keep the script working.

    .venv/bin/python benchmarks/scale.py --n 20000,100000,300000,1000000 --json scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STAGE_CODE = {
    "split": """
from virnucpro_core.split.make import make_split
import glob
make_split(sorted(glob.glob(f"{data}/viral_*.pt")), sorted(glob.glob(f"{data}/host_*.pt")), out_dir=f"{work}/split",
           overwrite=True)
result = {"samples": n}
""",
    "train": """
from virnucpro_core.train.results import TrainingConfig
from virnucpro_core.train.training import train_classifier
result = train_classifier(f"{work}/split", TrainingConfig(max_epochs=1, patience=1, seed=42, device="cpu"),
                          progress=False, log=None)
result.save(f"{work}/mlp.pt", "final")
epoch = result.history.epochs[0]
result = {"samples": result.history.train_samples, "epoch_seconds": epoch.seconds}
""",
    "train-reference": """
# The path streaming replaced, as a baseline in the same run: every training row in memory, a DataLoader over a
# TensorDataset (per-sample indexing and collation), one epoch at batch 32. Same model, optimiser and seed.
import time, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from virnucpro_core.models.classifier import MLPClassifier
from virnucpro_core.layouts.features import read_merged
from virnucpro_core.train.results import TrainingConfig
from virnucpro_core.train.training import _carve_validation, deterministic_training
config = TrainingConfig(max_epochs=1, seed=42)
with deterministic_training(config.seed):
    features = read_merged(f"{work}/split/train.pt")
    train_ids, _ = _carve_validation(features, config.val_fraction, config.seed, "reference")
    where = {sample: i for i, sample in enumerate(features["ids"])}
    rows = torch.tensor([where[i] for i in train_ids])
    data, labels = features["data"][rows], features["labels"][rows]
    del features
    model = MLPClassifier(data.shape[1])
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum)
    loader = DataLoader(TensorDataset(data, labels), batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(config.seed), drop_last=len(train_ids) % 32 == 1)
    criterion = nn.CrossEntropyLoss()
    start = time.perf_counter()
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
result = {"samples": len(train_ids), "epoch_seconds": time.perf_counter() - start}
""",
    "evaluate": """
from virnucpro_core.evaluate.metrics import evaluate
from virnucpro_core.predict.scoring import predict_features
predictions = predict_features(f"{work}/mlp.pt", f"{work}/split/test.pt")
evaluation = evaluate(predictions, seed=42)
result = {"samples": len(predictions), "accuracy": evaluation.metric("accuracy")}
""",
    "bootstrap": """
# The metrics' bootstrap CIs alone (1,000 resamples), each batch of resamples scored at once from counts.
import time
from virnucpro_core.evaluate.metrics import bootstrap_intervals
from virnucpro_core.predict.scoring import predict_features
p = predict_features(f"{work}/mlp.pt", f"{work}/split/test.pt")
start = time.perf_counter()
intervals = bootstrap_intervals(p.y_true, p.y_pred, p.p_viral, n_bootstrap=1000, seed=42)
result = {"samples": len(p), "timed_seconds": time.perf_counter() - start, "resamples": 1000,
          "accuracy_ci": [intervals["accuracy"].low, intervals["accuracy"].high]}
""",
    "bootstrap-reference": """
# The path it replaced, as a baseline in the same run: each sklearn metric called once per resample (the same
# seeded resamples), --reference-resamples of them (per-resample cost is what compares).
import time, warnings
import numpy as np
import sklearn
from virnucpro_core.evaluate import bootstrap
from virnucpro_core.evaluate.metrics import _score_vector
from virnucpro_core.predict.scoring import predict_features
p = predict_features(f"{work}/mlp.pt", f"{work}/split/test.pt")
y_true, y_pred, p_viral = (np.asarray(a) for a in (p.y_true, p.y_pred, p.p_viral))
start = time.perf_counter()
with warnings.catch_warnings(), sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
    warnings.simplefilter("ignore")
    bootstrap.resampled(lambda rows: np.stack([_score_vector(y_true[i], y_pred[i], p_viral[i]) for i in rows]),
                        len(y_true), n_resamples=reference_resamples, seed=42)
result = {"samples": len(p), "timed_seconds": time.perf_counter() - start, "resamples": reference_resamples}
""",
    "custody": """
# What checking the inputs costs: a plain read of every file, then a full digest of every file, then the stat fast
# path of a content record (the check a view or cached stage makes each time it is used), each over all files.
import glob
import os
from virnucpro_core import custody as C
files = sorted(glob.glob(f"{data}/*.pt"))
records = [C.ContentRecord.of(p) for p in files]


def drop_caches():
    # --cold: from disk, not the page cache (needs root; otherwise the page cache stays and the result says so)
    if not cold:
        return False
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\\n")
        return True
    except OSError:
        return False


cold_read = drop_caches()
start, total = time.perf_counter(), 0
for p in files:
    with open(p, "rb") as handle:
        while block := handle.read(1 << 20):
            total += len(block)
read_s = time.perf_counter() - start
C._DIGESTS.clear()
cold_digest = drop_caches()
start = time.perf_counter()
assert [C.digest(p) for p in files] == [r.sha256 for r in records]
digest_s = time.perf_counter() - start
C._DIGESTS.clear()
drop_caches()
start = time.perf_counter()
assert C.digests(files) == [r.sha256 for r in records]  # one thread per usable core, as a view's check runs
digests_s = time.perf_counter() - start
rounds = 50
start = time.perf_counter()
for _ in range(rounds):
    assert all(C.changed(p, r) is None for p, r in zip(files, records))
fast_s = (time.perf_counter() - start) / (rounds * len(files))
result = {"samples": n, "files": len(files), "bytes": total, "read_gb_s": round(total / read_s / 1e9, 3),
          "digest_gb_s": round(total / digest_s / 1e9, 3), "digests_gb_s": round(total / digests_s / 1e9, 3),
          "digest_threads": len(os.sched_getaffinity(0)), "fast_path_ms_per_file": round(fast_s * 1e3, 4),
          "from_disk": cold_read and cold_digest}
""",
}

# Every stage's child: the time it spends on chain of custody, by kind. "verify": checking a view's input files
# against their content records; "finite": the NaN/Inf check of every row read through a view; "digest": hashing
# files (a split hashed its inputs before content records too). Reported beside the stage's wall time.
CUSTODY_TIMERS = """
import json, time
from virnucpro_core import custody as _custody
from virnucpro_core.layouts import features as _features, store as _store
from virnucpro_core.split import make as _make
_spent = {"verify": 0.0, "finite": 0.0, "digest": 0.0}
def _timed(owner, name, bucket):
    real = getattr(owner, name)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            _spent[bucket] += time.perf_counter() - start
    setattr(owner, name, timed)
_timed(_features, "changed", "verify")
_timed(_store.RowView, "_finite", "finite")
_timed(_make, "digest", "digest")
_timed(_custody, "digest", "digest")
"""


def write_features(directory: Path, n: int, dim: int, shard_rows: int, seed: int) -> int:
    """Synthetic merged shards of our layout, half viral, half host; returns the bytes of features written."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    meta = {"protein_model": "fastesm2_650", "dna_model": "dnabert_s", "dim": dim}
    written = 0
    for label, name, count in ((1, "viral", n // 2), (0, "host", n - n // 2)):
        for shard, start in enumerate(range(0, count, shard_rows)):
            rows = min(shard_rows, count - start)
            # 18 samples a record: 3 chunks x 6 frames (F1-F3, R1-R3)
            ids = [f"{name}{k // 18}_chunk_{k % 18 // 6 + 1}{'FR'[k % 6 // 3]}{k % 3 + 1}"
                   for k in range(start, start + rows)]
            data = torch.randn(rows, dim, generator=generator)
            data[:, :16] += 1.0 if label else -1.0
            torch.save({"ids": ids, "data": data, "labels": torch.full((rows,), label, dtype=torch.long),
                        "lengths": torch.randint(30, 167, (rows,), generator=generator), "meta": meta},
                       directory / f"{name}_{shard:05d}.pt")
            written += data.numel() * 4
    return written


def run_stage(stage: str, data: Path, work: Path, n: int, cold: bool = False, reference_resamples: int = 100) -> dict:
    """Run one stage in a child process; its wall time, peak RSS and what it printed."""
    code = (CUSTODY_TIMERS + f"data, work, n, cold = {str(data)!r}, {str(work)!r}, {n}, {cold}\n"
            + f"reference_resamples = {reference_resamples}\n" + STAGE_CODE[stage]
            + '\nprint(json.dumps({**result, "custody_s": {k: round(v, 6) for k, v in _spent.items()}}))\n')
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    out, err = child.stdout.read(), child.stderr.read()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"stage {stage} at N={n} failed:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    peak = usage.ru_maxrss * 1024  # KiB on Linux
    samples = result["samples"]
    timed = result.get("timed_seconds", result.get("epoch_seconds", seconds))
    extra = {"ms_per_resample": round(1000 * timed / result["resamples"], 3)} if "resamples" in result else {}
    return {"stage": stage, "n": n, "seconds": round(seconds, 2), "samples": samples,
            "samples_per_s": round(samples / timed, 1) if timed else None, **extra,
            "peak_rss_bytes": peak, **{k: v for k, v in result.items() if k not in ("samples",)}}


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y against x."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / den if den else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="20000,100000", help="sample counts, comma-separated (default: 20000,100000)")
    parser.add_argument("--dim", type=int, default=2048, help="feature width (default: 2048, DNABERT-S + FastESM2)")
    parser.add_argument("--shard-rows", type=int, default=10000, help="rows per input file (default: 10000)")
    parser.add_argument("--stages", default="custody,split,train,train-reference,evaluate,bootstrap,bootstrap-reference",
                        help="stages to run, in order (default: custody,split,train,train-reference,evaluate,"
                        "bootstrap,bootstrap-reference)")
    parser.add_argument("--work", default=None, help="scratch directory (default: a temporary one, removed after)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic features (default: 0)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write every measurement here")
    parser.add_argument("--reference-resamples", type=int, default=100,
                        help="resamples of the bootstrap-reference stage (default: 100; it takes ~5 ms each at 439 "
                        "test samples, more at more)")
    parser.add_argument("--cold", action="store_true",
                        help="custody stage: drop the page cache before the plain read and the digest, so both read "
                        "from disk (needs root; the result's from_disk says whether it could)")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.n.split(",")]
    stages = args.stages.split(",")
    scratch = Path(args.work or tempfile.mkdtemp(prefix="virnucpro-scale-"))
    rows = []
    feature_bytes = {}
    try:
        for n in sizes:
            data, work = scratch / f"n{n}" / "features", scratch / f"n{n}" / "work"
            feature_bytes[n] = write_features(data, n, args.dim, args.shard_rows, args.seed)
            work.mkdir(parents=True, exist_ok=True)
            for stage in stages:
                row = run_stage(stage, data, work, n, args.cold, args.reference_resamples)
                rows.append(row)
                custody = row["custody_s"]
                print(f"N={n:>9,} {stage:<9} {row['seconds']:>8.1f} s  {row['samples_per_s'] or 0:>10,.0f} samples/s  "
                      f"peak RSS {row['peak_rss_bytes'] / 2**30:6.2f} GiB  (features {feature_bytes[n] / 2**30:.2f} GiB)"
                      f"  custody: verify {custody['verify']:.3f} s, finite {custody['finite']:.3f} s, "
                      f"digest {custody['digest']:.3f} s", flush=True)
                if "ms_per_resample" in row:
                    print(f"    {row['ms_per_resample']} ms per resample at {row['samples']:,} test samples", flush=True)
                if stage == "custody":
                    print(f"    read {row['read_gb_s']} GB/s, digest {row['digest_gb_s']} GB/s (1 thread), "
                          f"{row['digests_gb_s']} GB/s ({row['digest_threads']} threads) "
                          f"({'from disk' if row['from_disk'] else 'page cache'}), fast path "
                          f"{row['fast_path_ms_per_file']} ms per file ({row['files']} files)", flush=True)
            shutil.rmtree(scratch / f"n{n}", ignore_errors=True)
    finally:
        if args.work is None:
            shutil.rmtree(scratch, ignore_errors=True)
    slopes = {stage: slope([(feature_bytes[r["n"]], r["peak_rss_bytes"]) for r in rows if r["stage"] == stage])
              for stage in stages}
    print("\n| N | features | " + " | ".join(f"{s} wall / samples/s / peak RSS" for s in stages) + " |")
    print("|---|---|" + "---|" * len(stages))
    for n in sizes:
        cells = []
        for stage in stages:
            r = next(r for r in rows if r["n"] == n and r["stage"] == stage)
            cells.append(f"{r['seconds']:.1f} s / {r['samples_per_s'] or 0:,.0f} / {r['peak_rss_bytes'] / 2**30:.2f} GiB")
        print(f"| {n:,} | {feature_bytes[n] / 2**30:.2f} GiB | " + " | ".join(cells) + " |")
    print("slope of peak RSS against feature bytes: "
          + ", ".join(f"{s} {v:.3f}" if v is not None else f"{s} n/a" for s, v in slopes.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "dim": args.dim, "shard_rows": args.shard_rows, "rows": rows,
            "feature_bytes": {str(k): v for k, v in feature_bytes.items()}, "rss_slope": slopes,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
