"""``virnucpro extract``: one pooled embedding per FASTA record, with one language model.

Runs as one process, or as N under ``torchrun --nproc_per_node=N -m
virnucpro_core.cli extract ...`` (one per GPU): the library reads the
torchrun environment (:mod:`virnucpro_core.extract.distributed`), shares the shards
out and has rank 0 write the file and print; this module only passes options.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path

from virnucpro_core.commands.options import add_force, positive_float, positive_int, seed_value
from virnucpro_core.defaults import (
    DEVICE, DTYPES, EXTRACTION_PATH, EXTRACTION_PATHS, MODELS, RANK_TIMEOUT_S, SEED, SHARD_SIZE, SIZES, TOKS_PER_BATCH,
    WEIGHTS,
)  # fmt: skip
from virnucpro_core.models.precision import DEFAULT_DTYPE, POLICY


def register(subparsers) -> None:
    models = ", ".join(f"{model.name} ({model.display_name}, {model.dim}-d)" for model in MODELS)
    parser = subparsers.add_parser(
        "extract",
        help="embed every record of a FASTA file with ESM2 3B, FastESM2_650 or DNABERT-S",
        description=(
            "Embed each record of INPUT and write OUT: {'ids', 'data' float32 [n, dim], 'lengths', 'meta'}. "
            "ESM models average residues 1..min(L, 1024) of the last layer; DNABERT-S averages every token. "
            "Work is written in shards beside OUT, so an interrupted run resumes where it stopped and a "
            f"rerun with the same input and model reuses the result. Models: {models}. "
            "To use several GPUs, start it with torchrun: `torchrun --standalone --nproc_per_node=N -m "
            "virnucpro_core.cli extract ...` shares the shards out among N processes (rank r on cuda:r) and "
            "writes the same file as one process."
        ),
    )
    parser.add_argument("input", metavar="INPUT", help="FASTA: protein.faa for ESM models, nucleotide.fa for dnabert_s")
    parser.add_argument("--out", required=True, metavar="FILE", help="feature file to write (.pt)")
    parser.add_argument("--model", required=True, choices=[model.name for model in MODELS], help="language model")
    parser.add_argument(
        "--weights",
        choices=list(WEIGHTS),
        default="pretrained",
        help="pretrained: the published weights from --model-path or the Hugging Face cache (never downloaded); "
        "random: a seeded stand-in of --size, for smoke runs and timing without the weights (default: pretrained)",
    )
    parser.add_argument(
        "--size",
        choices=list(SIZES),
        default="tiny",
        help="stand-in size with --weights random: tiny (a few small layers, seconds on a CPU) or full "
        "(the real architecture, realistic GPU timing, minutes to initialise on a CPU) (default: tiny)",
    )
    parser.add_argument(
        "--model-path",
        metavar="DIR_OR_ID",
        help="directory with a copy of the model's hub repository, or another hub id (org/name) to take from "
        "the Hugging Face cache (default: the model's own hub id, looked up in HF_HUB_CACHE / HF_HOME; "
        "nothing is ever downloaded)",
    )
    parser.add_argument(
        "--allow-other-model",
        action="store_true",
        help="load a --model-path whose config.json states another model than --model (another model_type, "
        "depth, heads or vocabulary of the same width, e.g. ESM-2 650M as fastesm2_650) instead of refusing it; "
        "the feature file's meta records what it is (meta['identity']) and later reports flag it "
        "(default: refuse, naming what the directory holds)",
    )
    policy = ", ".join(f"{dtype} for {model} on {device.upper()}" for (model, device), dtype in POLICY.items())
    parser.add_argument(
        "--dtype",
        choices=list(DTYPES),
        default=None,
        help=f"compute dtype (default: the precision policy: {policy}, {DEFAULT_DTYPE} otherwise; recorded in "
        "the feature file). float16/bfloat16 halve memory and are faster on GPUs, at the cost of small "
        "differences in the vectors (fp16: ~1e-3 of the largest component, bf16: ~5e-3); float32 is the "
        "reference and the fastest on most CPUs; pooled output is always float32",
    )
    parser.add_argument(
        "--device",
        default=DEVICE,
        help="auto (CUDA if available, else CPU), cpu, cuda or cuda:N (default: auto). Under torchrun: auto, "
        "cuda or cpu, and each process takes cuda:LOCAL_RANK",
    )
    parser.add_argument(
        "--toks-per-batch",
        type=positive_int,
        metavar="N",
        help="padded-token budget per batch (default: "
        + ", ".join(f"{v} for {k} models" for k, v in TOKS_PER_BATCH.items())
        + "). Higher values are faster on a GPU but need more memory; lower it after an out-of-memory error",
    )
    parser.add_argument(
        "--extraction-path",
        choices=list(EXTRACTION_PATHS),
        default=EXTRACTION_PATH,
        help="how the protein model's batches run (default: auto: packed for fastesm2_650 on a CUDA GPU where "
        "torch.compile works, eager otherwise: on the CPU, for esm2_3b as VirNucPro ran it, for dnabert_s). "
        "eager: transformers' model on padded batches, no compilation; compiled: torch.compile over a few "
        "padded widths (one graph each); packed: proteins end to end in rows of the token budget, FlexAttention "
        "with a document mask, compiled (one graph). Compiling takes a minute or more on first use; inductor keeps "
        "the kernels for later runs (TORCHINDUCTOR_CACHE_DIR, default a folder in /tmp). The path that ran is "
        "recorded in the feature file (meta['path']); the vectors agree to fp32 rounding",
    )
    parser.add_argument(
        "--shard-size",
        type=positive_int,
        default=SHARD_SIZE,
        metavar="N",
        help=f"records per resumable shard (default: {SHARD_SIZE}). Smaller loses less work to an "
        "interruption but writes more files",
    )
    parser.add_argument("--seed", type=seed_value, default=SEED,
                        help=f"stand-in initialisation seed (default: {SEED})")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="recompute even if OUT or finished shards exist for the same input and model (default: reuse them)",
    )
    parser.add_argument(
        "--reuse-other-code",
        action="store_true",
        help="reuse OUT or finished shards that other code made (another version of virnucpro-accept, edited "
        "modules of the extraction, another torch or transformers), with a warning naming what changed "
        "(default: extract again, saying what changed: vectors of other code may differ)",
    )
    parser.add_argument(
        "--rank-timeout",
        type=positive_float,
        default=RANK_TIMEOUT_S,
        metavar="SECONDS",
        help=f"under torchrun: how long the processes wait for one that shows no progress (no finished shard) "
        f"before they stop with an error naming it (default: {RANK_TIMEOUT_S:g}). It must exceed the time of one "
        "shard and of loading the model; lower values notice a hung GPU sooner",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars (default: shown)")
    add_force(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: it pulls in torch, which `--help` does not need.
    from virnucpro_core.extract.distributed import ProcessGroup

    group = ProcessGroup.join(timeout=args.rank_timeout)  # one process, or this rank of a torchrun job
    rank = group.rank
    if not logging.getLogger().handlers:  # only rank 0 tells the story; the others speak up for problems
        logging.basicConfig(level=logging.INFO if rank.is_main else logging.WARNING,
                            format=f"{rank.prefix}%(message)s")
    with contextlib.ExitStack() as claimed:
        return _extract(args, group, claimed)


def _extract(args: argparse.Namespace, group, claimed: contextlib.ExitStack) -> int:
    """Load the model and extract; rank 0 claims ``--out`` first (held in ``claimed`` until the command ends)."""
    # Imported here, not at the top: they pull in torch and transformers, which `--help` does not need.
    from virnucpro_core.extract.features import check_room, extract_to_file
    from virnucpro_core.extract.forward import prepare_path
    from virnucpro_core.files import check_output
    from virnucpro_core.layouts.virnucpro import load_features
    from virnucpro_core.models.precision import extraction_dtype
    from virnucpro_core.models.registry import load_model
    from virnucpro_core.outputs import Output, OutputClaim
    from virnucpro_core.preprocess.fasta import count_records

    rank = group.rank
    with group.step("loading the model"):
        # Before minutes of model loading and embedding; rank 0 writes OUT, so rank 0 holds it.
        if rank.is_main:
            claimed.enter_context(OutputClaim("extract", [Output(Path(args.out))], force=args.force,
                                              inputs=[args.input], may_reuse=True))
        else:
            check_output(args.out, inputs=[args.input])
        device = group.device(args.device)
        dtype = args.dtype or extraction_dtype(args.model, device.type)
        if args.dtype is None:
            logging.getLogger(__name__).info(
                "computing in %s, the precision policy for %s on %s (virnucpro_core/models/precision.py); change with "
                "--dtype", dtype, args.model, device.type,
            )
        if rank.distributed:
            logging.getLogger(__name__).info(
                "%d processes share the shards (shard i goes to rank i %% %d); rank 0 writes %s",
                rank.world_size, rank.world_size, args.out,
            )
        loaded = load_model(
            args.model,
            weights=args.weights,
            size=args.size,
            model_path=args.model_path,
            device=device,
            dtype=dtype,
            seed=args.seed,
            path_option="--model-path",
            allow_other_model=args.allow_other_model,
        )
        loaded = prepare_path(loaded, args.extraction_path, budget=args.toks_per_batch)
        if rank.is_main:
            # Shards and the assembled file: each record's vector twice, before hours of embedding, not after.
            records = count_records(args.input)
            if records is not None:
                check_room(args.out, records, loaded.dim, "--out")
    before = _state(args.out)
    out = extract_to_file(
        loaded,
        args.input,
        args.out,
        shard_size=args.shard_size,
        toks_per_batch=args.toks_per_batch,
        rebuild=args.rebuild,
        reuse_other_code=args.reuse_other_code,
        progress=not args.no_progress,
        group=group,
    )
    if not rank.is_main:
        return 0
    meta = load_features(out).meta
    processes = f", {rank.world_size} processes" if rank.distributed else ""
    print(
        f"{meta['n']} records -> {meta['display_name']} ({meta['weights']} weights, {meta['size']}, {meta['dtype']}, "
        f"{meta['device']}{processes}, {meta['toks_per_batch']} tokens/batch, {meta.get('path', 'eager')} path) -> "
        f"{meta['dim']}-d vectors"
    )
    if before is not None and _state(out) == before:  # nothing was written: say so, never "wrote"
        print(f"reused {out}, written earlier for the same input, model, settings and code (--rebuild recomputes)")
    else:
        print(f"wrote {out}")
    return 0


def _state(path) -> tuple[int, int] | None:
    """The file's inode and modification time, or None when there is none: equal before and after, nothing
    was written."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns
