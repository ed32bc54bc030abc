"""``virnucpro merge``: DNABERT-S ‖ protein-model features of one class, in VirNucPro's merged layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from virnucpro_core.commands.options import add_force
from virnucpro_core.defaults import LABELS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="concatenate DNA and protein features by id into one labelled file",
        description=(
            "Join DNA.pt (from `extract --model dnabert_s`) and PROTEIN.pt (from `extract --model esm2_3b` or "
            "`fastesm2_650`) by id, DNA first, in the protein file's order, and write OUT: "
            "{'ids', 'data' [n, 768 + 2560 = 3328 or 768 + 1280 = 2048], 'labels' (viral 1, host 0), "
            "'lengths', 'meta'}. Widths, model families and ids are checked; a mismatch is an error."
        ),
    )
    parser.add_argument("dna", metavar="DNA.pt", help="DNABERT-S feature file")
    parser.add_argument(
        "protein", metavar="PROTEIN.pt", help="ESM2 3B or FastESM2_650 feature file of the same samples"
    )
    parser.add_argument(
        "--label", required=True, choices=list(LABELS), help="class of every sample: viral (1) or host (0)"
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="merged feature file to write (.pt)")
    add_force(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: it pulls in torch, which `--help` does not need.
    from virnucpro_core.extract.merged import merge_features
    from virnucpro_core.layouts.features import save_merged
    from virnucpro_core.files import check_free_space
    from virnucpro_core.outputs import Output, OutputClaim

    with OutputClaim("merge", [Output(Path(args.out))], force=args.force, inputs=[args.dna, args.protein]):
        # The merged file holds both inputs' vectors side by side: about their sizes together.
        check_free_space(args.out, Path(args.dna).stat().st_size + Path(args.protein).stat().st_size,
                         what="the merged features (about both inputs' size)")
        merged = merge_features(args.dna, args.protein, args.label)
        out = save_merged(merged, args.out)
    meta = merged.meta
    print(
        f"{len(merged)} {meta['label']} samples: {meta['dna_dim']} ({meta['dna']['display_name']}) + "
        f"{meta['protein_dim']} ({meta['protein']['display_name']}) = {meta['dim']} features"
    )
    print(f"wrote {out}")
    return 0
