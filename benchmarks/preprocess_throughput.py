"""Preprocessing throughput: the original code against ours, on the same synthetic genomes, in one run.

Variants, each a whole ``preprocess`` call (read and validate the FASTA, chunk,
translate six frames, select, write the four files):

* ``reference`` — :func:`virnucpro_core.preprocess.reference.preprocess_reference`,
  the code before vectorisation (a dict lookup per codon, one core);
* ``vectorised`` — :func:`virnucpro_core.preprocess.sequences.preprocess` with each
  ``--workers`` count (default: 1 and every core).

Input: ``--genomes`` synthetic genomes (seeded) of ``--min-length`` to
``--max-length`` bases, written once before any timing: genes (``ATG``, sense
codons, a stop) on both strands between random spacers, so that frames are
kept as in real viral genomes; some soft-masked (lower-case) stretches, some
runs of ``N`` and a few other IUPAC codes.

Protocol: ``--warmup`` untimed rounds, then ``--runs`` timed rounds; a round
runs every variant once, in turn, so that the load of a shared machine falls
on all of them alike. Rates use the median of the timed runs; every duration
is kept. The four output files of *every* run are hashed and compared with the
reference's: any difference is reported and the script exits 1. Machine
information (cores, CPU, load average before and after) is saved with the
numbers.

Examples::

    python benchmarks/preprocess_throughput.py                     # 600 genomes, ~16.5 Mb
    python benchmarks/preprocess_throughput.py --genomes 20 --runs 1 --warmup 0   # CPU smoke, seconds
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from virnucpro_core.files import atomic_write_text
from virnucpro_core.timing import TimedRuns
from virnucpro_core.preprocess.sequences import preprocess
from virnucpro_core.preprocess.reference import preprocess_reference
from virnucpro_core.preprocess.workers import available_cpus

OUTPUTS = ("chunks.fa", "nucleotide.fa", "protein.faa", "preprocess.json")
_BASES = np.frombuffer(b"ACGT", np.uint8)
_STOPS = (b"TAA", b"TAG", b"TGA")
_SENSE = np.frombuffer(
    b"".join(bytes([a, b, c]) for a in b"ACGT" for b in b"ACGT" for c in b"ACGT" if bytes([a, b, c]) not in _STOPS),
    np.uint8,
).reshape(-1, 3)
_COMPLEMENT = bytes.maketrans(b"ACGT", b"TGCA")


# --------------------------------------------------------------------------- input


def synthetic_genome(rng: np.random.Generator, length: int) -> str:
    """One genome of ``length`` bases: genes on both strands between spacers, with some noise."""
    parts, total = [], 0
    while total < length:
        spacer = _BASES[rng.integers(0, 4, int(rng.integers(20, 300)))].tobytes()
        codons = _SENSE[rng.integers(0, len(_SENSE), int(rng.integers(100, 800)))].tobytes()
        gene = b"ATG" + codons + _STOPS[int(rng.integers(0, 3))]
        if rng.random() < 0.5:  # a gene on the reverse strand
            gene = gene.translate(_COMPLEMENT)[::-1]
        parts += [spacer, gene]
        total += len(spacer) + len(gene)
    seq = b"".join(parts)[:length].decode("ascii")
    if rng.random() < 0.2:  # a soft-masked stretch
        start = int(rng.integers(0, length))
        stop = start + int(rng.integers(100, 2000))
        seq = seq[:start] + seq[start:stop].lower() + seq[stop:]
    if rng.random() < 0.1:  # a run of N (a sequencing gap) and a few other IUPAC codes
        start = int(rng.integers(0, length))
        seq = (seq[:start] + "N" * int(rng.integers(1, 20)) + seq[start:])[:length]
        for position in rng.integers(0, length, 3).tolist():
            seq = seq[:position] + "RYKM"[int(rng.integers(0, 4))] + seq[position + 1 :]
    return seq


def write_genomes(path: Path, genomes: int, min_length: int, max_length: int, seed: int) -> tuple[int, int]:
    """Write the synthetic FASTA (60 bases a line); returns (records, bases)."""
    rng = np.random.default_rng(seed)
    bases = 0
    with open(path, "w", encoding="ascii", newline="\n") as handle:
        for index in range(genomes):
            seq = synthetic_genome(rng, int(rng.integers(min_length, max_length + 1)))
            bases += len(seq)
            lines = "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60))
            handle.write(f">genome_{index:05d} synthetic length={len(seq)}\n{lines}\n")
    return genomes, bases


# --------------------------------------------------------------------------- results


@dataclass
class VariantResult(TimedRuns):
    """The timed runs of one variant; rates use the median of ``runs_s``."""

    name: str
    workers: int
    records: int
    bases: int
    runs_s: list[float] = field(default_factory=list)
    warmup_runs: int = 0
    outputs: dict[str, str] = field(default_factory=dict)  # file -> sha256, of the last run
    identical: bool = True  # every run's four files equal the reference's
    speedup: float | None = None  # reference median / this median

    @property
    def records_per_s(self) -> float:
        return self.records / self.median_s

    @property
    def bases_per_s(self) -> float:
        return self.bases / self.median_s

    def to_dict(self) -> dict:
        return {**asdict(self), "median_s": self.median_s, "records_per_s": self.records_per_s,
                "bases_per_s": self.bases_per_s}  # fmt: skip


@dataclass
class Report:
    """One benchmark run: the input, the machine and every variant."""

    command: list[str]
    input: dict
    machine: dict
    variants: list[VariantResult]

    def to_dict(self) -> dict:
        return {"command": self.command, "input": self.input, "machine": self.machine,
                "variants": [v.to_dict() for v in self.variants]}  # fmt: skip

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


def machine_info() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": available_cpus(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average_before": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _hashes(directory: Path) -> dict[str, str]:
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in OUTPUTS}


# --------------------------------------------------------------------------- the run


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add = parser.add_argument
    add("--genomes", type=int, default=600, help="synthetic genomes (default: 600, ~16.5 Mb; 20 is a CPU smoke run).")
    add("--min-length", type=int, default=5_000, help="shortest genome in bases (default: 5000).")
    add("--max-length", type=int, default=50_000, help="longest genome in bases (default: 50000).")
    add("--seed", type=int, default=0, help="seed of the synthetic genomes (default: 0).")
    add("--chunk-size", type=int, default=300, help="chunk length in bases (default: 300).")
    add("--workers", default=None, metavar="LIST",
        help=f"comma-separated worker counts of the vectorised variant (default: 1,{available_cpus()}: one and "
        "every core).")
    add("--runs", type=int, default=3, help="timed rounds (default: 3); the median is reported.")
    add("--warmup", type=int, default=1, help="untimed rounds before them (default: 1).")
    add("--min-speedup", type=float, default=None,
        help="exit 1 unless the fastest vectorised variant is at least this many times the reference's "
        "throughput (default: no gate; the target is 10).")
    add("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON here.")
    add("--workdir", type=Path, default=None, help="where input and outputs go (default: a temporary folder).")
    return parser


def _worker_counts(text: str | None) -> list[int]:
    if text is None:
        return sorted({1, available_cpus()})
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise SystemExit(f"--workers: expected positive integers separated by commas, e.g. 1,2; got {text!r}")
    return counts


def run(args: argparse.Namespace, argv: list[str]) -> Report:
    workers = _worker_counts(args.workers)
    for name in ("genomes", "min_length", "runs", "chunk_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(args, name)}")
    if args.max_length < args.min_length or args.warmup < 0:
        raise SystemExit("expected --max-length >= --min-length and --warmup >= 0")
    machine = machine_info()
    root = Path(tempfile.mkdtemp(prefix="preprocess-throughput-", dir=args.workdir))
    try:
        fasta = root / "genomes.fa"
        records, bases = write_genomes(fasta, args.genomes, args.min_length, args.max_length, args.seed)
        calls = [("reference", 1, lambda out: preprocess_reference(fasta, args.chunk_size, out))]
        calls += [("vectorised", n, lambda out, n=n: preprocess(fasta, args.chunk_size, out, workers=n))
                  for n in workers]  # fmt: skip
        results = [VariantResult(name, n, records, bases, warmup_runs=args.warmup) for name, n, _ in calls]
        for round_ in range(args.warmup + args.runs):
            for (name, n, call), result in zip(calls, results):
                out = root / f"out-{name}-{n}"
                shutil.rmtree(out, ignore_errors=True)
                start = time.perf_counter()
                call(out)
                elapsed = time.perf_counter() - start
                if round_ >= args.warmup:
                    result.runs_s.append(elapsed)
                result.outputs = _hashes(out)
                result.identical = result.identical and result.outputs == results[0].outputs
        machine["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        for result in results:
            result.speedup = results[0].median_s / result.median_s
        return Report(
            command=["python", "benchmarks/preprocess_throughput.py", *argv],
            input={"genomes": records, "bases": bases, "seed": args.seed, "min_length": args.min_length,
                   "max_length": args.max_length, "chunk_size": args.chunk_size,
                   "sha256": hashlib.sha256(fasta.read_bytes()).hexdigest()},  # fmt: skip
            machine=machine,
            variants=results,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def table(report: Report) -> str:
    rows = [("variant", "workers", "median s", "runs s", "records/s", "bases/s", "speed-up", "same bytes")]
    for v in report.variants:
        rows.append((v.name, str(v.workers), f"{v.median_s:.3f}", ", ".join(f"{t:.2f}" for t in v.runs_s),
                     f"{v.records_per_s:,.1f}", f"{v.bases_per_s / 1e6:,.2f} M", f"{v.speedup:.1f}x",
                     "-" if v.name == "reference" else ("yes" if v.identical else "NO")))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    m, i = report.machine, report.input
    lines.append(f"\n{i['genomes']} genomes, {i['bases']:,} bases, chunk {i['chunk_size']}; {m['nproc']} cores "
                 f"({m['cpu']}); load average {m['load_average_before'][0]:.2f} before, "
                 f"{m['load_average_after'][0]:.2f} after")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = create_parser().parse_args(argv)
    report = run(args, argv)
    print(table(report))
    if args.json is not None:
        report.save(args.json)
        print(f"wrote {args.json}")
    status = 0
    for v in report.variants:
        if not v.identical:
            print(f"FAIL: {v.name} with {v.workers} worker(s) wrote other bytes than the reference "
                  f"(sha256 {v.outputs} vs {report.variants[0].outputs})", file=sys.stderr)  # fmt: skip
            status = 1
    best = max(v.speedup for v in report.variants[1:])
    if args.min_speedup is not None and best < args.min_speedup:
        print(f"FAIL: speed-up (best vectorised median vs reference median) measured {best:.2f}x, "
              f"limit {args.min_speedup:.2f}x, over {args.runs} run(s) on {report.machine['nproc']} cores "
              f"(load average {report.machine['load_average_before'][0]:.2f})", file=sys.stderr)  # fmt: skip
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
