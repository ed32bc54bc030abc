"""Pooled-vector error and speed of fp32, bf16 and fp16 against a float64 reference: the evidence for the dtype policy.

For each model, the same weights are cast to each dtype (the rotary table
stays float32, as :func:`virnucpro_core.models.registry.load_model` keeps it) and the
same proteins are embedded by :func:`virnucpro_core.extract.embeddings.extract_embeddings`
— VirNucPro's pooling, float32 output. The reference is the same weights in
float64, pooled in float64 (its rotary angles are computed in float32 by
transformers, an error of ~1e-7, far below bf16's and fp16's).

Models (``--models``):

* ``tiny`` — the FastESM2 stand-in of the CPU tests (2 layers, 64 wide);
* ``wide`` — FastESM2_650's real widths (1280 hidden, 20 heads, 5120
  intermediate, its vocabulary and config) with ``--wide-layers`` layers
  (default 2, of 33), seeded random weights (transformers' initialisation);
* ``--model-path DIR`` adds the real FastESM2 snapshot (for a GPU runner).

Random weights have none of the outlier activations trained ESM-2 models are
known for, which is where fp16's range (±65,504) could bite: the real-weights
run on a GPU is the check that matters; these numbers show the size of the
rounding errors. Per model and dtype: the largest absolute difference of any
component, the same relative to the reference's largest component, the
smallest and median per-protein cosine similarity, non-finite vectors, and
the median time of ``--runs`` passes after ``--warmup`` (model loading and
casting are outside the timing; on CUDA the clock waits for the GPU).

Proteins: ``--n`` proteins, a length-stratified seeded sample of the stop-free
frames of the bundled smoke genomes (``fixtures/smoke/viral.fasta``, 300 bp
chunks, as ``virnucpro preprocess`` cuts them), or ``--proteins FASTA``.

Example (CPU, about a minute on 2 cores)::

    .venv/bin/python benchmarks/precision.py --json /tmp/precision.json

Results: ``benchmarks/NOTES.md``, section "Extraction dtype".
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.gate import benchmark

from virnucpro_core.models import esm

from virnucpro_core.models import esm_config

from virnucpro_core.models import registry as models
from virnucpro_core.models import specs
from virnucpro_core.extract.embeddings import (
    DEFAULT_TOKS_PER_BATCH, collate, extract_embeddings, pad_id, plan_batches, pooling_weights, tokenize,
)  # fmt: skip
from virnucpro_core.errors import VirNucProError
from virnucpro_core.files import atomic_write_text

log = logging.getLogger("precision")
ROOT = Path(__file__).resolve().parents[1]
SMOKE_GENOMES = ROOT / "fixtures" / "smoke" / "viral.fasta"
DTYPES = ("float32", "bfloat16", "float16")
MODEL = "fastesm2_650"


@dataclass
class Row:
    """One model in one dtype against the float64 reference."""

    model: str
    dtype: str
    proteins: int
    max_abs_diff: float
    relative: float  # max_abs_diff / the reference's largest absolute component
    min_cosine: float
    median_cosine: float
    non_finite: int  # proteins with a NaN or Inf component
    median_s: float
    runs_s: list[float]

    @property
    def proteins_per_s(self) -> float:
        return self.proteins / self.median_s


# --------------------------------------------------------------------------- inputs and models


def smoke_proteins(n: int, seed: int) -> list[tuple[str, str]]:
    """A length-stratified sample of the smoke genomes' stop-free frames (300 bp chunks)."""
    from virnucpro_core.extract.features import read_records
    from virnucpro_core.preprocess.sequences import preprocess

    with tempfile.TemporaryDirectory() as tmp:
        frames = preprocess(SMOKE_GENOMES, 300, tmp).paths.protein
        records = read_records(frames, "esm")
    picked = benchmark.benchmark_sample([len(s) for _, s in records], n, seed)
    return [records[i] for i in picked]


def wide_model(layers: int, device: torch.device, seed: int) -> models.LoadedModel:
    """FastESM2_650's real widths with ``layers`` layers and seeded random weights, float32."""
    from transformers import EsmModel

    config = esm_config.esm_config({**esm_config.esm_config_dict(MODEL, "full"), "num_hidden_layers": layers})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = EsmModel(config, add_pooling_layer=False)
    provenance = {"weights": "random", "size": "full", "dtype": "float32", "seed": seed}
    return models.LoadedModel(specs.get_spec(MODEL), network.to(device).eval(), esm.esm_tokenizer(), device,
                              torch.float32, provenance)


def in_dtype(loaded: models.LoadedModel, dtype: torch.dtype) -> models.LoadedModel:
    """A copy of ``loaded`` cast as load_model casts (float32 rotary table kept)."""
    network = copy.deepcopy(loaded.model)
    models.cast_model(network, dtype)
    name = "float64" if dtype == torch.float64 else models.dtype_name(dtype)
    return replace(loaded, model=network.eval(), dtype=dtype, provenance={**loaded.provenance, "dtype": name})


# --------------------------------------------------------------------------- measuring


def reference_pooled(loaded64: models.LoadedModel, records: list[tuple[str, str]], budget: int) -> torch.Tensor:
    """Float64 forward passes and float64 pooling, in the extractor's batches."""
    token_ids = tokenize(loaded64, [s for _, s in records])
    out = torch.empty((len(records), loaded64.dim), dtype=torch.float64)
    with torch.inference_mode():
        for batch in plan_batches([len(t) for t in token_ids], budget):
            ids, mask = collate([token_ids[i] for i in batch], pad_id(loaded64), loaded64.device)
            hidden = loaded64.model(input_ids=ids, attention_mask=mask).last_hidden_state.double()
            weights = pooling_weights("esm", mask, torch.tensor([len(records[i][1]) for i in batch])).double()
            out[batch] = (torch.einsum("bth,bt->bh", hidden, weights) / weights.sum(1, keepdim=True)).cpu()
    return out


def timed(loaded: models.LoadedModel, records, budget: int, runs: int, warmup: int) -> tuple[torch.Tensor, list[float]]:
    durations, data = [], None
    for index in range(warmup + runs):
        start = benchmark.synchronized_timer()
        data = extract_embeddings(loaded, records, toks_per_batch=budget, progress=False).data
        if index >= warmup:
            durations.append(benchmark.synchronized_timer() - start)
    return data, durations


def measure(name: str, base: models.LoadedModel, records, args) -> list[Row]:
    budget = DEFAULT_TOKS_PER_BATCH["esm"]
    log.info("%s: float64 reference ...", name)
    reference = reference_pooled(in_dtype(base, torch.float64), records, budget)
    scale = float(reference.abs().max())
    rows = []
    for dtype in args.dtypes:
        log.info("%s: %s, %d warmup + %d timed passes over %d proteins ...", name, dtype, args.warmup, args.runs,
                 len(records))
        data, durations = timed(in_dtype(base, models.resolve_dtype(dtype)), records, budget, args.runs, args.warmup)
        data = data.double()
        finite = torch.isfinite(data).all(dim=1)
        cosine = torch.nn.functional.cosine_similarity(data, reference, dim=1)
        diff = (data - reference).abs()
        rows.append(Row(
            model=name, dtype=dtype, proteins=len(records),
            max_abs_diff=float(diff[finite].max()) if finite.any() else math.nan,
            relative=float(diff[finite].max()) / scale if finite.any() else math.nan,
            min_cosine=float(cosine[finite].min()) if finite.any() else math.nan,
            median_cosine=float(cosine[finite].median()) if finite.any() else math.nan,
            non_finite=int((~finite).sum()), median_s=statistics.median(durations), runs_s=durations,
        ))  # fmt: skip
    return rows


def table(rows: list[Row]) -> str:
    header = ("model | dtype | max abs diff | relative | min cosine | median cosine | non-finite | median s | "
              "proteins/s | vs fp32 time")
    lines = [f"| {header} |", "|" + "---|" * (header.count("|") + 1)]
    for row in rows:
        fp32 = next((r for r in rows if r.model == row.model and r.dtype == "float32"), None)
        speed = f"{row.median_s / fp32.median_s:.2f}×" if fp32 else "—"
        lines.append(f"| {row.model} | {row.dtype} | {row.max_abs_diff:.2e} | {row.relative:.1e} | "
                     f"1 − {1 - row.min_cosine:.1e} | 1 − {1 - row.median_cosine:.1e} | {row.non_finite} | "
                     f"{row.median_s:.2f} | {row.proteins_per_s:.1f} | {speed} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="precision", description="Pooled-vector error and speed of fp32, bf16 and fp16 against float64."
    )
    add = parser.add_argument
    add("--models", default="tiny,wide", help="comma-separated stand-ins: tiny, wide (default: tiny,wide).")
    add("--model-path", type=Path, default=None, help="also measure the real FastESM2 snapshot in DIR (GPU runner).")
    add("--wide-layers", type=int, default=2,
        help="layers of the wide stand-in (default: 2 of FastESM2_650's 33). More layers let errors grow, "
        "but cost a minute each on 2 CPU cores in fp16.")
    add("--dtypes", default=",".join(DTYPES), help=f"dtypes to compare (default: {','.join(DTYPES)}).")
    add("--n", type=int, default=24, help="proteins from the smoke genomes (default: 24).")
    add("--proteins", type=Path, default=None, help="protein FASTA to use instead of the smoke genomes' frames.")
    add("--device", default="cpu", help="cpu, cuda or auto (default: cpu).")
    add("--runs", type=int, default=2, help="timed passes per dtype; the table shows their median (default: 2).")
    add("--warmup", type=int, default=1, help="untimed passes before the timed ones (default: 1).")
    add("--seed", type=int, default=0, help="seed of the protein sample and the stand-in weights (default: 0).")
    add("--json", type=Path, default=None, help="write the rows, settings and machine info here.")
    return parser


def run(args: argparse.Namespace) -> list[Row]:
    from virnucpro_core.extract.features import read_records

    device = models.resolve_device(args.device)
    args.dtypes = [models.dtype_name(models.resolve_dtype(d.strip())) for d in args.dtypes.split(",") if d.strip()]
    records = read_records(args.proteins, "esm") if args.proteins else smoke_proteins(args.n, args.seed)
    lengths = sorted(len(s) for _, s in records)
    log.info("%d proteins, %d to %d residues (median %d), on %s with %d CPU threads", len(records), lengths[0],
             lengths[-1], statistics.median(lengths), device, torch.get_num_threads())
    builders = {
        "tiny": ("tiny", lambda: models.load_model(MODEL, weights="random", size="tiny", device=device,
                                                   seed=args.seed)),
        "wide": (f"wide ({args.wide_layers} layers)", lambda: wide_model(args.wide_layers, device, args.seed)),
    }
    rows: list[Row] = []
    for key in (m.strip() for m in args.models.split(",") if m.strip()):
        if key not in builders:
            raise VirNucProError(f"unknown model {key!r}", expected="tiny and/or wide", found=args.models)
        name, build = builders[key]
        rows += measure(name, build(), records, args)
    if args.model_path is not None:
        rows += measure(f"FastESM2_650 ({args.model_path.name})",
                        models.load_model(MODEL, model_path=args.model_path, device=device), records, args)
    print(table(rows))
    if args.json:
        payload: dict[str, Any] = {
            "rows": [{**asdict(r), "proteins_per_s": r.proteins_per_s} for r in rows],
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "proteins": {"n": len(records), "min": lengths[0], "median": statistics.median(lengths),
                         "max": lengths[-1]},
            "cpu_threads": torch.get_num_threads(),
            "machine": benchmark.machine_info(device),
        }  # fmt: skip
        atomic_write_text(args.json, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = create_parser().parse_args(argv)
    if min(args.n, args.runs, args.wide_layers) < 1 or args.warmup < 0:
        print("--n, --runs and --wide-layers must be >= 1 and --warmup >= 0", file=sys.stderr)
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
