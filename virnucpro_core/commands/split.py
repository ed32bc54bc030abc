"""``virnucpro split``: the train/test split, made once and applied to both embedders' features."""

from __future__ import annotations

import argparse
from pathlib import Path

from virnucpro_core.defaults import GROUP_BY_CHOICES, SEED, TEST_FRACTION
from virnucpro_core.commands.options import open_fraction, seed_value
from virnucpro_core.errors import InputError

DEFAULT_SEED = SEED
DEFAULT_GROUP_BY = "sample"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "split",
        help="hold out a stratified test set (once) and write train/test feature files",
        description=(
            "Split merged viral and host feature files into OUT/train.pt and OUT/test.pt, drawing the test set "
            "from each class separately (round half up of the fraction per class) with a fixed seed. Writes "
            "OUT/manifest.json (every id, label and source record; byte-identical for identical inputs) and "
            "OUT/distribution.json (class ratios, protein length distributions with a KS test, leakage). "
            "With --manifest, applies an existing split to another embedder's features of the same samples, so "
            "FastESM2_650 and ESM2 3B models are trained and tested on identical samples."
        ),
    )
    parser.add_argument(
        "--viral", nargs="+", required=True, metavar="PT", help="merged viral feature file(s) (labels 1)"
    )
    parser.add_argument("--host", nargs="+", required=True, metavar="PT", help="merged host feature file(s) (labels 0)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    parser.add_argument(
        "--test-fraction",
        type=open_fraction,
        default=None,
        metavar="F",
        help=f"share of each class held out for testing (default: {TEST_FRACTION}, VirNucPro's 10 %%). "
        "Larger values give tighter test metrics but less training data.",
    )
    parser.add_argument(
        "--seed",
        type=seed_value,
        default=None,
        metavar="N",
        help=f"seed of the test draw (default: {DEFAULT_SEED}); the split depends only on the seed and the ids",
    )
    parser.add_argument(
        "--group-by",
        choices=GROUP_BY_CHOICES,
        default=None,
        help=f"unit of the draw (default: {DEFAULT_GROUP_BY}). 'sample' is VirNucPro's split: frames and chunks of "
        "one genome can land on both sides, which inflates test metrics (the leakage is measured and reported). "
        "'source' keeps every source record on one side (no leakage) but hits the test fraction only as closely "
        "as the record sizes allow.",
    )
    parser.add_argument(
        "--manifest",
        metavar="JSON",
        help="apply the split of this manifest.json (or split directory) to the given feature files instead of "
        "drawing a new one; the files must hold exactly the manifest's ids (default: draw a new split)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a different split already in --out, or files of the names a split writes that virnucpro "
        "did not write (default: refuse, since the test set is made once; an identical split is reused)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: it pulls in torch, which `--help` does not need.
    from virnucpro_core.outputs import Output, OutputClaim, needed_by

    outputs = ("train.pt", "test.pt", "manifest.json", "distribution.json")
    with OutputClaim("split", [Output(Path(args.out), outputs)], force=args.force,
                     inputs=[*args.viral, *args.host, args.manifest], may_reuse=True):
        result = _split(args)
    paths = result.paths
    needed_by([paths.train, paths.test], [*args.viral, *args.host])  # no --out replaces what the views read
    print(result.summary.format_table())
    for path in (paths.train, paths.test, paths.manifest, paths.distribution):
        print(f"{'kept' if result.reused else 'wrote'} {path}")
    return 0


def _split(args: argparse.Namespace):
    """The split the options ask for: drawn, applied from --manifest, or the identical one already in --out."""
    # Imported here, not at the top: it pulls in torch, which `--help` does not need.
    from virnucpro_core.split.make import apply_split, make_split

    if args.manifest:
        given = [
            option
            for option, value in (
                ("--test-fraction", args.test_fraction),
                ("--seed", args.seed),
                ("--group-by", args.group_by),
            )
            if value is not None
        ]
        if given:
            raise InputError(
                f"{', '.join(given)} cannot be combined with --manifest",
                expected="either --manifest (reuse a split) or --test-fraction/--seed/--group-by (draw a new one)",
                found=" ".join(given) + " with --manifest",
                fix="drop " + ", ".join(given) + ": the manifest already fixes them",
            )
        result = apply_split(args.manifest, args.viral, args.host, out_dir=args.out, overwrite=args.force, log=print)
        print(f"applied split {result.manifest.split_id[:12]} from {args.manifest}")
        return result
    return make_split(
            args.viral,
            args.host,
            test_fraction=TEST_FRACTION if args.test_fraction is None else args.test_fraction,
            seed=DEFAULT_SEED if args.seed is None else args.seed,
            group_by=args.group_by or DEFAULT_GROUP_BY,
            out_dir=args.out,
            overwrite=args.force,
            log=print,
        )
