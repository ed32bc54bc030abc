"""``virnucpro predict``: classify the chunks of new DNA sequences with a trained checkpoint."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from virnucpro_core.defaults import CHUNK_SIZE, DEVICE, SEED, SIZES, WEIGHTS
from virnucpro_core.commands.options import add_force, positive_int, seed_value

DEFAULT_OUT = "prediction"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify new DNA sequences (or merged features made before) with a trained checkpoint",
        description=(
            "Cut each record of INPUT into chunks, keep every stop-free frame, embed the nucleotide frames with "
            "DNABERT-S and the protein frames with the checkpoint's protein model (ESM2 3B or FastESM2_650, read "
            "from CKPT), and score them with the MLP. Writes OUT/frames.tsv (frame_id, chunk_id, record_id, "
            "viral_score, host_score, prediction virus/others), OUT/chunks.tsv (chunk_id, record_id, n_frames, "
            "max_viral_score, max_host_score, verdict: virus iff the highest viral score among the chunk's frames "
            ">= the highest host score, as VirNucPro) and OUT/summary.json (parameters, model provenance, counts, "
            "warnings), and the original VirNucPro's OUT/prediction_results.txt (Sequence_ID, Prediction, score1, "
            "score2) and OUT/prediction_results_highestscore.csv (Modified_ID, Is_Virus), formatted as it writes "
            "them. Embeddings are cached under OUT/features, so a rerun reuses them. With --features, the MLP "
            "scores those merged features and nothing is embedded."
        ),
    )
    parser.add_argument("input", metavar="INPUT", nargs="?",
                        help="nucleotide FASTA (.fa/.fasta/.fna, optionally .gz); or give --features instead")
    parser.add_argument(
        "--features", action="append", default=[], metavar="MERGED",
        help="score merged features made before instead of embedding INPUT: a merged .pt file or a directory of "
        "them (repeatable) — ours from `virnucpro merge`, or VirNucPro's original / FastESM2-fork *_merged.pt "
        "(labels, if any, are ignored). Their width must be the checkpoint's",
    )  # fmt: skip
    parser.add_argument("--model", required=True, metavar="CKPT",
                        help="checkpoint: `virnucpro train`'s, an original VirNucPro model file (300_model.pth / "
                        "500_model.pth) or a FastESM2 fork checkpoint; read without running pickled code")
    parser.add_argument(
        "--chunk-size", type=positive_int, default=None,
        help="chunk length in bases (default: the size the checkpoint's training features were cut with, "
        f"else {CHUNK_SIZE}); another size than the checkpoint's is refused unless --allow-mismatch",
    )  # fmt: skip
    parser.add_argument(
        "--allow-mismatch", action="store_true",
        help="score even when --chunk-size or the protein model's vocabulary differs from the checkpoint's training "
        "features, with a warning (default: refuse, since the classifier never saw such features)",
    )  # fmt: skip
    parser.add_argument(
        "--weights", choices=list(WEIGHTS), default="pretrained",
        help="pretrained: the published DNABERT-S and protein-model weights from the model paths or the Hugging "
        "Face cache (never downloaded); random: seeded stand-ins of --size, for smoke runs only — their calls are "
        "meaningless and are flagged as such (default: pretrained)",
    )  # fmt: skip
    parser.add_argument(
        "--size", choices=list(SIZES), default=None,
        help="stand-in size with --weights random: tiny (seconds on a CPU) or full (the real architecture, slow "
        "on a CPU) (default: the size recorded in the checkpoint, else tiny). Must give the checkpoint's width",
    )  # fmt: skip
    parser.add_argument("--dna-model-path", metavar="DIR_OR_ID",
                        help="DNABERT-S repository copy or hub id for pretrained weights (default: "
                        "zhihan1996/DNABERT-S in the Hugging Face cache)")
    parser.add_argument("--protein-model-path", metavar="DIR_OR_ID",
                        help="protein-model repository copy or hub id for pretrained weights (default: the "
                        "checkpoint's model's hub id in the Hugging Face cache)")
    parser.add_argument(
        "--allow-other-model", action="store_true",
        help="load a model path whose config.json states another model than DNABERT-S or the checkpoint's protein "
        "model (another model_type, depth, heads or vocabulary of the same width), with a warning in the summary "
        "(default: refuse it, naming what it is)",
    )  # fmt: skip
    parser.add_argument("--device", default=DEVICE,
                        help="auto (CUDA if available, else CPU), cpu, cuda or cuda:N for the language models "
                        "(default: auto)")
    parser.add_argument("--seed", type=seed_value, default=SEED,
                        help=f"stand-in initialisation seed (default: {SEED})")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"output directory, created if missing (default: ./{DEFAULT_OUT})")
    parser.add_argument("--rebuild", action="store_true",
                        help="recompute the embeddings even if OUT/features holds them for the same input and models "
                        "(default: reuse them)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars (default: shown)")
    add_force(parser)
    parser.set_defaults(run=run)


WRITES = ("frames.tsv", "chunks.tsv", "summary.json", "prediction_results.txt", "prediction_results_highestscore.csv")


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: it pulls in torch and transformers, which `--help` does not need.
    from virnucpro_core.errors import InputError
    from virnucpro_core.outputs import Output, OutputClaim
    from virnucpro_core.predict.scoring import RANDOM_WEIGHTS_WARNING
    from virnucpro_core.predict.run import predict_fasta, predict_merged

    if bool(args.input) == bool(args.features):
        raise InputError("give either INPUT (a FASTA to embed and score) or --features (merged features to score)",
                         found=f"INPUT {args.input or 'absent'}, --features {', '.join(args.features) or 'absent'}",
                         fix="e.g. `virnucpro predict genomes.fasta --model CKPT` or "
                         "`virnucpro predict --features data_merge/viral.1.1_merged --model CKPT`")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.features:
        with OutputClaim("predict", [Output(Path(args.out), WRITES)], force=args.force,
                         inputs=[*args.features, args.model]):
            result = predict_merged(args.features, args.model, args.out, allow_mismatch=args.allow_mismatch)
        counts = result.counts
        print(f"{counts['frames']:,} frames from {counts['files']} feature file(s) scored with "
              f"{result.checkpoint['path']}: {counts['viral_chunks']} virus and {counts['other_chunks']} others "
              f"chunks; {counts['viral_frames']} of {counts['frames']} frames virus")
        return _finish(result, RANDOM_WEIGHTS_WARNING)
    with OutputClaim("predict", [Output(Path(args.out), (*WRITES, "preprocess", "features"))], force=args.force,
                     inputs=[args.input, args.model]):
        result = predict_fasta(
            args.input,
            args.model,
            args.out,
            chunk_size=args.chunk_size,
            weights=args.weights,
            size=args.size,
            dna_model_path=args.dna_model_path,
            protein_model_path=args.protein_model_path,
            device=args.device,
            seed=args.seed,
            progress=not args.no_progress,
            rebuild=args.rebuild,
            allow_mismatch=args.allow_mismatch,
            allow_other_model=args.allow_other_model,
        )
    counts, models = result.counts, result.models
    print(
        f"{counts['records']} records -> {counts['chunks']} chunks -> {counts['frames']} frames, scored with "
        f"{models['dna']['display_name']} ({models['dna']['weights']}) + {models['protein']['display_name']} "
        f"({models['protein']['weights']}) and {result.checkpoint['path']}"
    )
    print(
        f"chunks: {counts['viral_chunks']} virus, {counts['other_chunks']} others"
        + (f", {counts['chunks_without_frames']} without frames" if counts["chunks_without_frames"] else "")
        + f"; frames: {counts['viral_frames']} of {counts['frames']} virus"
    )
    return _finish(result, RANDOM_WEIGHTS_WARNING)


def _finish(result, random_weights_warning: str) -> int:
    for warning in result.warnings[1 if result.random_weights else 0 :]:
        print(f"note: {warning}")
    paths = result.paths
    for path in (paths.frames, paths.chunks, paths.original_results, paths.original_highest, paths.summary):
        print(f"wrote {path}")
    if result.random_weights:
        print(f"WARNING: {random_weights_warning} (flagged in {paths.summary})")
    return 0
