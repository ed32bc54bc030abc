"""``virnucpro preprocess``: chunks and stop-free frames, as the original pipeline makes them."""

from __future__ import annotations

import argparse
from pathlib import Path

from virnucpro_core.defaults import BLOCK_BASES
from virnucpro_core.commands.options import add_force, positive_int
from virnucpro_core.preprocess.workers import available_cpus


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "preprocess",
        help="cut DNA into chunks and keep the stop-free frames (VirNucPro-identical)",
        description=(
            "Cut each record of INPUT into overlapping chunks, translate each chunk in six frames and "
            "keep the frames without a stop codon. Writes OUT/chunks.fa, OUT/nucleotide.fa and "
            "OUT/protein.faa (records in input order; nucleotide and protein share ids) and "
            "OUT/preprocess.json."
        ),
    )
    parser.add_argument("input", metavar="INPUT", help="nucleotide FASTA (.fa/.fasta/.fna; plain, gzip, bzip2 or xz)")
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=300,
        help="chunk length in bases (default: 300). VirNucPro's models exist for 300 and 500; "
        "other sizes are accepted for experiments.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    parser.add_argument(
        "--reference",
        action="append",
        metavar="GBFF",
        help="training mode: GenBank file(s) with CDS translations of the input records; frames are kept "
        "only if their protein is part of an annotated CDS, and chunks with ambiguous bases are dropped "
        "(default: prediction mode, keep every stop-free frame). Repeatable.",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"processes that translate blocks of records (default: every core this process may use, "
        f"{available_cpus()} here). The output is the same for any N. More workers finish sooner until the "
        f"cores, or this process reading INPUT and writing OUT, are saturated; memory grows by about two "
        f"blocks of {BLOCK_BASES:,} bases (a few MB) per worker. An input of one block runs in this process.",
    )
    add_force(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: it pulls in Biopython, which `--help` does not need.
    from virnucpro_core.outputs import Output, OutputClaim
    from virnucpro_core.preprocess.sequences import preprocess

    outputs = ("chunks.fa", "nucleotide.fa", "protein.faa", "preprocess.json")
    with OutputClaim("preprocess", [Output(Path(args.out), outputs)], force=args.force,
                     inputs=[args.input, *(args.reference or [])]):
        result = preprocess(args.input, args.chunk_size, args.out, reference=args.reference, workers=args.workers)
    mode = "training mode" if result.training_mode else "prediction mode"
    print(
        f"{result.records} records -> {result.chunks} chunks of {result.chunk_size} bp -> "
        f"{result.frames} stop-free frames ({mode})"
    )
    for line in result.notices():
        print(f"note: {line}")
    for path in (result.paths.chunks, result.paths.nucleotide, result.paths.protein):
        print(f"wrote {path}")
    return 0
