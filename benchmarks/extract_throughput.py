"""Extraction throughput: a naive transformers-style loop against our extractor, in one run.

For each model (``fastesm2_650``, ``esm2_3b``, ``dnabert_s``) and each length
group, this times

* ``naive`` — what a first script does: the Hugging Face tokenizer called on a
  fixed-size slice of the input (``--naive-batch``, default 16, ``padding=True``),
  ``model(**inputs)``, masked mean pooling, ``.cpu()`` per batch, in input order;
* ``ours`` — :func:`virnucpro_core.extract.embeddings.extract_embeddings` with the
  model's deployed settings (:func:`virnucpro_core.gate.benchmark.deployed_settings`,
  those the speed gate times: FastESM2 in the precision policy's dtype, fp16 on
  CUDA and fp32 on CPU, with ``DEFAULT_TOKS_PER_BATCH``; ESM2 3B in fp32 with
  2,048-token batches, as VirNucPro ran it), plus every combination
  (``--grid product``) or each one alone (``--grid axes``) of ``--dtypes``,
  ``--toks-per-batch``, ``--batching`` (``padded`` batches or ``exact``
  equal-length ones, no mask), ``--paths`` (the execution paths of
  :mod:`virnucpro_core.extract.forward`: ``eager``, ``compiled`` over length
  buckets, ``packed`` with a FlexAttention document mask; compiled before the
  warmup passes, the compile seconds and graphs kept in the row) and
  ``--compile`` (``none`` or a :func:`torch.compile` mode of the whole model,
  the earlier lever; compilation falls in the warmup passes).

Protocol: models are loaded outside the timed region; ``--warmup`` untimed
passes, then ``--runs`` timed passes over the whole sample, each read with
:func:`virnucpro_core.gate.benchmark.synchronized_timer` (CUDA synchronised before
the clock); median and mean of the timed passes and every raw duration are
kept. On CUDA the peak memory of each variant (weights included) is read with
``torch.cuda.reset_peak_memory_stats`` / ``max_memory_allocated``.

Correctness in the same run: the reference is the naive loop in float32 (its
first pass when the naive variant is float32, else one extra untimed pass). The
last pass of every variant is compared with it per sequence (cosine, relative
L2 error); the table shows the minimum cosine, and any NaN/Inf is counted and
flagged.

FLOPs: ``2 x (weights of the encoder's Linear layers) x real tokens`` — the
dense matmuls only; **attention score FLOPs (QK^T and PV, 4·T·h per token per
layer) are excluded** (~1.3 % extra for FastESM2 at ~100 tokens, ~2 % at ~166),
and padded positions are not counted (useful work only). For ESM models this
equals :func:`virnucpro_core.models.registry.matmul_flops_per_token`; DNABERT-S's GEGLU
has a third feed-forward matrix (``4h^2 + 3hi`` per layer), which the Linear
count includes. Tokens include the special tokens (``<cls>``/``<eos>``,
``[CLS]``/``[SEP]``).

Stand-ins (``--size tiny|full``) have random weights: timing does not depend on
weight values, accuracy is not measured here.

Example (CPU smoke, a few seconds)::

    python benchmarks/extract_throughput.py --size tiny --device cpu --n 64 --json /tmp/xt.json

On a GPU see ``benchmarks/NOTES.md`` for the exact command.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import logging
import math
import random
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.gate import benchmark

from virnucpro_core.models import registry as models
from virnucpro_core.models import specs
from virnucpro_core.timing import TimedRuns
from virnucpro_core.extract.embeddings import extract_embeddings, tokenize
from virnucpro_core.extract.forward import prepare_path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/, when imported from elsewhere (the tests)
from extract_profile import format_table as format_profile, profile_ready  # noqa: E402
from virnucpro_core.errors import InputError, VirNucProError
from virnucpro_core.files import atomic_write_text

log = logging.getLogger("extract_throughput")

# H100 SXM bf16 dense matmul as measured on this workplace's machines (8192^3, random data).
DEFAULT_CUDA_PEAK_TFLOPS = 790.0

# UniProtKB/Swiss-Prot amino-acid composition (percent), so synthetic proteins
# tokenise and pad like real ones.
AMINO_ACID_PERCENT: dict[str, float] = {
    "A": 8.25, "R": 5.53, "N": 4.06, "D": 5.45, "C": 1.37, "Q": 3.93, "E": 6.75, "G": 7.07, "H": 2.27, "I": 5.96,
    "L": 9.66, "K": 5.84, "M": 2.42, "F": 3.86, "P": 4.70, "S": 6.56, "T": 5.34, "W": 1.08, "Y": 2.92, "V": 6.87,
}  # fmt: skip
LENGTH_JITTER = 0.10
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


# --------------------------------------------------------------------------- inputs


@dataclass
class SequenceGroup:
    """The sequences of one table row group: a nominal protein length or a FASTA file."""

    label: str
    nominal_length: int | None
    source: str
    records: list[tuple[str, str]]

    @property
    def mean_length(self) -> float:
        return statistics.fmean(len(seq) for _, seq in self.records)


def jittered_lengths(length: int, n: int, seed: int) -> list[int]:
    """``n`` lengths uniform in ``length * (1 ± 10 %)``, seeded per (seed, length)."""
    rng = random.Random(seed * 1_000_003 + length)
    lo, hi = round(length * (1 - LENGTH_JITTER)), round(length * (1 + LENGTH_JITTER))
    return [max(1, rng.randint(lo, hi)) for _ in range(n)]


def synthetic_proteins(length: int, n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` seeded proteins of ~``length`` residues with Swiss-Prot composition."""
    rng = random.Random(seed * 1_000_003 + length + 1)
    letters, weights = list(AMINO_ACID_PERCENT), list(AMINO_ACID_PERCENT.values())
    return [
        (f"p{length}_{i:05d}", "".join(rng.choices(letters, weights, k=size)))
        for i, size in enumerate(jittered_lengths(length, n, seed))
    ]


def synthetic_dna(length: int, n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` seeded DNA fragments of ``3 L + 1`` bases for the same jittered ``L`` as the proteins."""
    rng = random.Random(seed * 1_000_003 + length + 2)
    return [
        (f"d{length}_{i:05d}", "".join(rng.choices("ACGT", k=3 * size + 1)))
        for i, size in enumerate(jittered_lengths(length, n, seed))
    ]


def sequence_groups(args: argparse.Namespace, family: str) -> list[SequenceGroup]:
    """The length groups one model is timed on: synthetic per ``--lengths``, or the FASTA file."""
    fasta = args.dna_fasta if family == "dnabert" else args.fasta
    if fasta is not None:
        from virnucpro_core.extract.features import read_records  # needs Biopython: imported only here

        records = read_records(fasta, family)
        if args.n < len(records):
            keep = benchmark.benchmark_sample([len(s) for _, s in records], args.n, args.seed)
            records = [records[i] for i in keep]
        median = int(statistics.median(len(s) for _, s in records))
        return [SequenceGroup(f"~{median}", None, str(fasta), records)]
    if args.fasta is not None and family == "dnabert":
        raise InputError(
            "dnabert_s was asked for with --fasta but without nucleotide sequences",
            expected="--dna-fasta FILE (nucleotide FASTA) for dnabert_s; --fasta holds proteins",
            found=f"--fasta {args.fasta}, no --dna-fasta",
            fix="add --dna-fasta FILE, or drop dnabert_s from --models",
        )
    make = synthetic_dna if family == "dnabert" else synthetic_proteins
    return [SequenceGroup(str(length), length, "synthetic", make(length, args.n, args.seed)) for length in args.lengths]


# --------------------------------------------------------------------------- variants and results


@dataclass(frozen=True)
class Variant:
    """One way of embedding: the naive loop or our extractor with given settings."""

    kind: str  # "naive" or "ours"
    dtype: str
    batch: int  # naive: sequences per batch; ours: padded tokens per batch
    attention: str = "sdpa"
    default: bool = False
    batching: str = "padded"  # ours: "padded" or "exact" (equal token lengths per batch)
    compile: str = "none"  # ours: "none" or a torch.compile mode
    path: str = "eager"  # ours: the execution path (extract/forward.py)

    @property
    def label(self) -> str:
        short = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}[self.dtype]
        if self.kind == "naive":
            return f"naive {short} b{self.batch}" + (" eager" if self.attention == "eager" else "")
        extras = (" exact" if self.batching == "exact" else "") + (
            f" compile:{self.compile}" if self.compile != "none" else ""
        ) + (f" {self.path}" if self.path != "eager" else "")
        return f"ours {short} t{self.batch}{extras}" + ("*" if self.default else "")


@dataclass
class ThroughputRow(TimedRuns):
    """Timed runs and correctness of one variant on one sequence group.

    Rates use the median of the timed runs; ``runs_s`` keeps every duration.
    """

    model: str
    variant: str
    kind: str
    dtype: str
    batch: int
    attention: str
    default: bool
    batching: str
    compile: str
    length: str
    source: str
    sequences: int
    residues: int
    tokens: int
    flops_per_token: int
    runs_s: list[float]
    warmup_runs: int
    device: str
    peak_tflops: float | None
    peak_memory_bytes: int | None = None
    resident_memory_bytes: int | None = None
    min_cosine: float = float("nan")
    max_rel_err: float = float("nan")
    nonfinite: int = 0
    notes: list[str] = field(default_factory=list)
    path: str = "eager"  # the execution path that ran (eager where compiling failed)
    compile_s: float | None = None  # compiling its shapes, before the warmup passes (compiled paths)
    graphs: int | None = None  # graphs compiled then
    graphs_bound: int | None = None  # the most graphs these sequences can need (ExecutionPath.bound)
    graphs_in_runs: int | None = None  # graphs compiled during the warmup and timed passes (0: none)

    @property
    def sequences_per_s(self) -> float:
        return self.sequences / self.median_s

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.median_s

    @property
    def tflops(self) -> float:
        return self.flops_per_token * self.tokens / self.median_s / 1e12

    @property
    def percent_of_peak(self) -> float | None:
        return 100 * self.tflops / self.peak_tflops if self.peak_tflops else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            median_s=self.median_s,
            mean_s=self.mean_s,
            sequences_per_s=self.sequences_per_s,
            tokens_per_s=self.tokens_per_s,
            tflops=self.tflops,
            percent_of_peak=self.percent_of_peak,
        )
        # JSON has no NaN: a failed comparison is written as null.
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in data.items()}


def dense_flops_per_token(loaded: models.LoadedModel) -> int:
    """``2 x`` the weights of the encoder's Linear layers: dense matmul FLOPs per token."""
    return 2 * sum(m.weight.numel() for m in loaded.model.encoder.modules() if isinstance(m, torch.nn.Linear))


def variants_for(args: argparse.Namespace, name: str, device: torch.device) -> list[Variant]:
    """Naive loop, the model's deployed settings, then the requested variants.

    ``--grid product``: every ``--dtypes`` x ``--toks-per-batch`` x ``--batching`` x ``--compile``;
    ``--grid axes``: each of those settings varied alone, the others at the deployed values
    (a sweep per axis, at a fraction of the product's passes).
    """
    deployed = benchmark.deployed_settings(name, device.type)
    default = Variant("ours", deployed["dtype"], deployed["toks_per_batch"], default=True, path=deployed["path"])
    out = [] if args.no_naive else [Variant("naive", args.naive_dtype, args.naive_batch, args.naive_attention)]
    out.append(default)
    axes = {
        "dtype": args.dtypes or [default.dtype],
        "batch": args.toks_per_batch or [default.batch],
        "batching": args.batching,
        "compile": args.compile,
        # The compiled paths are for the ESM models; DNABERT-S runs eager.
        "path": (args.paths or [default.path]) if specs.get_spec(name).family == "esm" else ["eager"],
    }
    if args.grid == "product":
        settings = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    else:
        settings = [{axis: value} for axis, values in axes.items() for value in values]
    for changes in settings:
        variant = replace(default, default=False, **changes)
        if variant.compile != "none" and variant.path != "eager":
            continue  # a compiled path compiles its own function; not also the whole model
        if variant != replace(default, default=False) and variant not in out:
            out.append(variant)
    return out


# --------------------------------------------------------------------------- the two paths


def naive_embed(loaded: models.LoadedModel, seqs: Sequence[str], batch: int) -> torch.Tensor:
    """The transformers-style loop: tokenizer call per slice, ``model(**inputs)``, masked mean, ``.cpu()``."""
    device = loaded.device
    out = []
    with torch.no_grad():
        for start in range(0, len(seqs), batch):
            inputs = loaded.tokenizer(
                list(seqs[start : start + batch]), padding=True, return_tensors="pt", return_token_type_ids=False
            )
            inputs = {k: v.to(device) for k, v in inputs.items()}
            output = loaded.model(**inputs)
            hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output
            mask = inputs["attention_mask"].clone()
            if loaded.spec.family == "esm":
                # VirNucPro's ESM pooling: residues only (drop <cls> and <eos>), at most 1024 of them.
                ends = inputs["attention_mask"].sum(dim=1) - 1
                mask[:, 0] = 0
                mask[torch.arange(mask.shape[0], device=device), ends] = 0
                mask[:, specs.ESM_POOL_MAX_RESIDUES + 1 :] = 0
            weights = mask.to(torch.float32).unsqueeze(-1)
            pooled = (hidden.float() * weights).sum(dim=1) / weights.sum(dim=1)
            out.append(pooled.cpu())
    return torch.cat(out)


def prepared(loaded: models.LoadedModel, variant: Variant, group: "SequenceGroup", paths: dict):
    """``(model ready on the variant's path, its compile record)``: every shape of the group compiled now.

    ``paths`` keeps each prepared path, so that a shape compiled for one length
    group (packed: the row) is not compiled again for the next.
    """
    if variant.kind == "naive":
        return loaded, None
    key = (id(loaded), variant.path, variant.batch)
    if key not in paths:
        paths[key] = prepare_path(loaded, variant.path, budget=variant.batch)
    return benchmark.compile_before_timing(paths[key], group.records, variant.batch)


def ours_embed(loaded: models.LoadedModel, records: list[tuple[str, str]], variant: Variant) -> torch.Tensor:
    exact = variant.batching == "exact"
    return extract_embeddings(loaded, records, toks_per_batch=variant.batch, exact_lengths=exact, progress=False).data


def run_variant(loaded, variant: Variant, group: SequenceGroup, args) -> tuple[list[float], list[torch.Tensor]]:
    """Warmup passes, then timed passes; returns durations and the outputs of every pass (warmup first)."""
    seqs = [seq for _, seq in group.records]

    def once() -> torch.Tensor:
        if variant.kind == "naive":
            return naive_embed(loaded, seqs, variant.batch)
        return ours_embed(loaded, group.records, variant)

    outputs = [once() for _ in range(args.warmup)]
    runs = []
    for _ in range(args.runs):
        start = benchmark.synchronized_timer()
        outputs.append(once())
        runs.append(benchmark.synchronized_timer() - start)
    return runs, outputs


def compare(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float, int]:
    """Minimum per-sequence cosine, maximum per-sequence relative L2 error, rows holding NaN/Inf."""
    out, ref = out.double(), ref.double()
    bad = ~torch.isfinite(out).all(dim=1)
    if bool(bad.all()):
        return float("nan"), float("nan"), int(bad.sum())
    cosine = torch.nn.functional.cosine_similarity(out, ref, dim=1)
    rel = (out - ref).norm(dim=1) / ref.norm(dim=1).clamp_min(1e-30)
    # A NaN anywhere makes the minimum NaN: the comparison fails loudly.
    min_cos = float("nan") if bool(bad.any()) else float(cosine.min())
    return min_cos, float(rel.max()), int(bad.sum())


# --------------------------------------------------------------------------- driver


def _set_attention(loaded: models.LoadedModel, name: str) -> None:
    if loaded.spec.family != "esm":
        return  # DNABERT-S has one attention path (SDPA with the ALiBi bias)
    setter = getattr(loaded.model, "set_attn_implementation", None)
    if setter is not None:
        setter(name)
    else:
        loaded.model.config._attn_implementation = name


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def bench_model(
    name: str, args: argparse.Namespace, device: torch.device, peak: float | None, on_row=None
) -> list[ThroughputRow]:
    """Every variant of one model on every sequence group, one loaded dtype at a time; ``on_row(row)`` after each."""
    spec = specs.get_spec(name)
    groups = sequence_groups(args, spec.family)
    variants = variants_for(args, name, device)
    dtypes = ["float32"] + sorted({v.dtype for v in variants} - {"float32"})
    rows: list[ThroughputRow] = []
    references: dict[str, torch.Tensor] = {}
    for dtype in dtypes:
        loaded = models.load_model(name, weights="random", size=args.size, device=device, dtype=dtype, seed=args.seed)
        flops_per_token = dense_flops_per_token(loaded)
        # One compiled wrapper per mode, sharing the weights; it compiles during the warmup passes.
        runners = {"none": loaded} | {
            mode: models.compile_model(loaded, mode)
            for mode in sorted({v.compile for v in variants if v.dtype == dtype} - {"none"})
        }
        paths: dict = {}
        for group in groups:
            token_counts = [len(ids) for ids in tokenize(loaded, [seq for _, seq in group.records])]
            if dtype == "float32" and not any(v.kind == "naive" and v.dtype == "float32" for v in variants):
                # The reference when no float32 naive variant is timed: one extra untimed pass.
                references[group.label] = naive_embed(loaded, [s for _, s in group.records], args.naive_batch)
            for variant in (v for v in variants if v.dtype == dtype):
                if variant.kind == "naive":
                    _set_attention(loaded, variant.attention)
                resident = peak_mem = None
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                    torch.cuda.reset_peak_memory_stats(device)
                    resident = torch.cuda.memory_allocated(device)
                try:
                    runner, compiled = prepared(runners[variant.compile], variant, group, paths)
                    runs, outputs = run_variant(runner, variant, group, args)
                finally:
                    if variant.kind == "naive":
                        _set_attention(loaded, "sdpa")
                if device.type == "cuda":
                    peak_mem = torch.cuda.max_memory_allocated(device)
                if variant.kind == "naive" and variant.dtype == "float32":
                    references[group.label] = outputs[0]  # its first (untimed when --warmup >= 1) pass
                min_cos, max_rel, nonfinite = compare(outputs[-1], references[group.label])
                row = ThroughputRow(
                    model=name,
                    variant=variant.label,
                    kind=variant.kind,
                    dtype=variant.dtype,
                    batch=variant.batch,
                    attention=variant.attention if variant.kind == "naive" else "sdpa",
                    default=variant.default,
                    batching=variant.batching if variant.kind == "ours" else "padded",
                    compile=variant.compile,
                    length=group.label,
                    source=group.source,
                    sequences=len(group.records),
                    residues=sum(len(s) for _, s in group.records),
                    tokens=sum(token_counts),
                    flops_per_token=flops_per_token,
                    runs_s=runs,
                    warmup_runs=args.warmup,
                    device=str(device),
                    peak_tflops=peak,
                    peak_memory_bytes=peak_mem,
                    resident_memory_bytes=resident,
                    min_cosine=min_cos,
                    max_rel_err=max_rel,
                    nonfinite=nonfinite,
                )
                if compiled is not None:
                    benchmark.compiled_since(runner, compiled)
                    row.path, row.compile_s, row.graphs = compiled.path, compiled.seconds, compiled.graphs
                    row.graphs_bound, row.graphs_in_runs = compiled.bound, compiled.graphs_in_rounds
                    if compiled.path != variant.path:
                        row.notes.append(f"{variant.path} did not compile here: ran {compiled.path}")
                if variant.compile != "none" and args.warmup < 1:
                    row.notes.append("compiled without a warmup pass: compilation time is inside the timed runs")
                if nonfinite:
                    row.notes.append(f"{nonfinite} of {row.sequences} pooled vectors hold NaN or Inf")
                    log.warning("%s %s len %s: %s", name, variant.label, group.label, row.notes[-1])
                if args.profile and group is groups[0] and _profiled(variant, rows, name):
                    profile_variant(runner, variant, group, args, name)
                log.info(
                    "%s %-22s len %-5s %9.1f seq/s  median %.3f s  min cos %.6f",
                    name, variant.label, group.label, row.sequences_per_s, row.median_s, min_cos,
                )  # fmt: skip
                rows.append(row)
                if on_row is not None:
                    on_row(row)
        del loaded, runners, paths
        _free(device)
    return rows


def _profiled(variant: Variant, rows: list[ThroughputRow], model: str) -> bool:
    """Whether ``--profile`` traces this variant: ours, at the deployed dtype and budget, padded, one per path."""
    default = next((r for r in rows if r.model == model and r.default), None)
    return (variant.kind == "ours" and variant.compile == "none" and variant.batching == "padded"
            and (variant.default or (default is not None and (variant.dtype, variant.batch) ==
                                     (default.dtype, default.batch))))


def profile_variant(runner, variant: Variant, group: SequenceGroup, args, model: str) -> None:
    """One batch of ``group`` profiled on ``variant``'s (already compiled) path; the breakdown goes to
    ``--profile``/profile-<model>-<length>.json beside the trace (benchmarks/extract_profile.py)."""
    folder = Path(args.profile)
    folder.mkdir(parents=True, exist_ok=True)
    records = group.records[: max(1, variant.batch // (round(group.mean_length) + 2))]  # about one batch
    path = runner.provenance.get("path", "eager")
    trace = folder / f"trace-{model}-{path}-{group.label}.json"
    summary = folder / f"profile-{model}-{group.label}.json"
    report = json.loads(summary.read_text()) if summary.is_file() else {
        "tool": "benchmarks/extract_throughput.py --profile", "model": model, "size": args.size,
        "device": str(runner.device), "dtype": variant.dtype, "length": group.label, "toks_per_batch": variant.batch,
        "paths": {}}
    report["paths"][path] = profile_ready(runner, records, variant.batch, 3, trace)
    atomic_write_text(summary, json.dumps(report, indent=2) + "\n")
    print(format_profile(report))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time every requested model and variant; write ``--json`` (after each row) if given; return the report."""
    device = models.resolve_device(args.device)
    peak = args.peak_tflops
    if peak is None and device.type == "cuda":
        peak = DEFAULT_CUDA_PEAK_TFLOPS
    threads = torch.get_num_threads()
    report = {
        "tool": "benchmarks/extract_throughput.py",
        "note": "random-weight stand-ins: timings only; min_cosine is against the naive float32 loop",
        "flops": "2 x encoder Linear weights x real tokens; attention-score FLOPs and padding excluded",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {**benchmark.machine_info(device), "torch_threads": args.cpu_threads or threads},
        "rows": [],
    }
    rows: list[ThroughputRow] = []

    def record(row: ThroughputRow) -> None:
        rows.append(row)
        report["rows"] = [r.to_dict() for r in rows]
        if args.json is not None:
            # Rewritten after every row, so a run stopped at a time limit keeps what it finished.
            atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")

    if args.cpu_threads is not None:
        torch.set_num_threads(args.cpu_threads)
    try:
        for name in args.models:
            bench_model(name, args, device, peak, on_row=record)
            _free(device)
            if args.json is not None:
                log.info("wrote %s (%d rows)", args.json, len(rows))
    finally:
        torch.set_num_threads(threads)
    print(format_table(rows))
    return report


def format_table(rows: Sequence[ThroughputRow]) -> str:
    """The summary table: one line per model, variant and length."""
    header = ("model", "variant", "len", "seq/s", "tok/s", "TFLOP/s", "% peak", "peak mem", "min cos", "compile")
    lines = []
    for r in rows:
        pct = r.percent_of_peak
        mem = f"{r.peak_memory_bytes / 2**30:.2f} GiB" if r.peak_memory_bytes is not None else "—"
        cos = "NaN/Inf!" if r.nonfinite else (f"{r.min_cosine:.6f}" if math.isfinite(r.min_cosine) else "nan")
        # Seconds and graphs compiled before the passes (+ any compiled during them, which should be none).
        built = (f"{r.compile_s:.1f} s, {r.graphs}/{r.graphs_bound} graphs"
                 + (f" +{r.graphs_in_runs} in runs!" if r.graphs_in_runs else "")) if r.graphs else "—"
        lines.append((
            r.model, r.variant, r.length, f"{r.sequences_per_s:,.1f}", f"{r.tokens_per_s:,.0f}",
            f"{r.tflops:.3f}", f"{pct:.1f}" if pct is not None else "—", mem, cos, built,
        ))  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *(fmt(line) for line in lines)])


# --------------------------------------------------------------------------- command line


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _choice_list(allowed: Sequence[str]):
    def parse(text: str) -> list[str]:
        values = [x.strip() for x in text.split(",") if x.strip()]
        wrong = [v for v in values if v not in allowed]
        if wrong or not values:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(wrong) or text!r}; allowed: {', '.join(allowed)}")
        return values

    return parse


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="extract_throughput",
        description="Time the naive transformers loop against extract_embeddings (and variants), "
        "with a same-run cosine check against float32.",
    )
    add = parser.add_argument
    add("--models", type=_choice_list(tuple(specs.SPECS)), default=["fastesm2_650", "esm2_3b"],
        help="comma-separated models (default: fastesm2_650,esm2_3b; also dnabert_s).")
    add("--size", choices=models.SIZES, default="full",
        help="random-weight stand-in size (default: full, the real architecture; tiny: CPU smoke in seconds).")
    add("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto).")
    add("--lengths", type=_int_list, default=[100, 166],
        help="protein lengths of the synthetic groups, ±10 %% jitter (default: 100,166 = 300 and 500 bp chunks); "
        "DNABERT-S gets 3L+1 bases.")
    add("--n", type=int, default=1000,
        help="sequences per length, or a length-stratified sample of the FASTA (default: 1000). "
        "More is steadier; the fp32 naive ESM2 3B loop runs ~77/s on an H100.")
    add("--fasta", type=Path, default=None, help="protein FASTA for the ESM models instead of synthetic sequences.")
    add("--dna-fasta", type=Path, default=None, help="nucleotide FASTA for dnabert_s instead of synthetic DNA.")
    add("--runs", type=int, default=3, help="timed passes per variant; rates use their median (default: 3).")
    add("--warmup", type=int, default=1, help="untimed passes before the timed ones (default: 1).")
    add("--dtypes", type=_choice_list(tuple(specs.DTYPES)), default=None,
        help="extra dtypes for our extractor, e.g. float32,bfloat16 (default: only the deployed one, "
        "fp16 on CUDA / fp32 on CPU).")
    add("--toks-per-batch", type=_int_list, default=None,
        help="extra token budgets for our extractor, e.g. 8192,16384,32768 (default: only "
        "DEFAULT_TOKS_PER_BATCH). Larger fills the GPU better until memory runs out.")
    add("--grid", choices=("product", "axes"), default="product",
        help="how the variant options combine: product (every combination, default) or axes (each option "
        "varied alone from the deployed settings: fewer passes, no interactions).")
    add("--batching", type=_choice_list(("padded", "exact")), default=["padded"],
        help="batch layouts for our extractor (default: padded). exact: equal token lengths per batch, "
        "no padding mask, so SDPA may use its flash kernel; smaller batches where lengths vary.")
    add("--compile", type=_choice_list(COMPILE_MODES), default=["none"],
        help=f"torch.compile modes for our extractor, e.g. none,default (default: none; allowed: "
        f"{', '.join(COMPILE_MODES)}). Compilation runs in the warmup passes: keep --warmup >= 1; "
        "expect a minute or more per mode and length group on a full-size model.")
    add("--paths", type=_choice_list(("eager", "compiled", "packed")), default=None,
        help="execution paths for our extractor, e.g. eager,compiled,packed (default: only the deployed one: "
        "packed for FastESM2 on CUDA, eager otherwise). Each compiles its shapes before the warmup passes; the "
        "row keeps the compile seconds, the graphs and any compiled during the passes.")
    add("--profile", type=Path, default=None, metavar="DIR",
        help="also trace one batch of the first length with torch.profiler, per path at the deployed dtype and "
        "budget (eager, compiled, packed), into DIR: Chrome traces and the matmul / attention / elementwise / idle "
        "breakdown (benchmarks/extract_profile.py). Default: no profile.")
    add("--naive-batch", type=int, default=16, help="sequences per batch of the naive loop (default: 16).")
    add("--naive-dtype", choices=tuple(specs.DTYPES), default="float32", help="naive loop dtype (default: float32).")
    add("--naive-attention", choices=("sdpa", "eager"), default="sdpa",
        help="attention of the naive loop for ESM models (default: sdpa; eager matches the issue's fp32 baseline).")
    add("--no-naive", action="store_true",
        help="skip timing the naive loop (one untimed fp32 reference pass still runs). Saves minutes for ESM2 3B.")
    add("--peak-tflops", type=float, default=None,
        help=f"peak for the %% column (default: {DEFAULT_CUDA_PEAK_TFLOPS:g}, H100 bf16 dense as measured, "
        "on CUDA; none on CPU).")
    add("--cpu-threads", type=int, default=None,
        help="torch CPU threads during the run (default: torch's choice). 1 is steadier on a busy shared CPU, "
        "where several threads contend for the cores.")
    add("--seed", type=int, default=0, help="seed of the synthetic sequences and stand-in weights (default: 0).")
    add("--json", type=Path, default=None, help="write rows, settings and machine info here.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = create_parser().parse_args(argv)
    if min(args.n, args.runs, args.naive_batch, args.cpu_threads or 1) < 1 or args.warmup < 0:
        print("--n, --runs, --naive-batch and --cpu-threads must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        run(args)
    except VirNucProError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
