"""``virnucpro import``: VirNucPro's merged feature files (original or FastESM2 fork) as ours, once."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from virnucpro_core.commands.options import add_force
from virnucpro_core.defaults import SIZES

DECLARE_HELP = (
    "how the files' protein features were made, which their layout does not record: MODEL:DTYPE[:WEIGHTS], e.g. "
    "esm2_3b:float32 (the original VirNucPro) or fastesm2_650:float16 (the FastESM2 fork); WEIGHTS pretrained "
    "(default) or random. Repeat for each protein model present. Recorded and reported as declared, not verified"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "import",
        help="make VirNucPro's merged feature files (data/data_merge) inputs of this suite, without copying them",
        description=(
            "Read VirNucPro's merged feature files — {'ids', 'data' [n, 3328 or 2048], 'labels': [0] or [1]} — "
            "from a data/data_merge tree (every *.pt under <category>_merged/; viral.1.1_merged is viral, every "
            "other folder host) or from --viral/--host files or directories, and write one view per protein "
            "model and class: OUT/<class>_<model>.pt (ids, labels, declared provenance and where each row is in "
            "your files: the rows are not copied, so keep the files in place), plus OUT/import.json. The protein "
            "model is read off the width (3328: ESM2 3B, 2048: FastESM2_650) and its dtype and weights come "
            "from --declare. Every row is checked to be finite, a block at a time; nothing in the files is "
            "executed. The outputs feed `virnucpro split`, `predict --features` and the acceptance suite "
            "(--viral/--host) without re-extracting anything."
        ),
    )
    parser.add_argument("trees", nargs="*", metavar="DATA_MERGE", help="VirNucPro data/data_merge directories")
    parser.add_argument("--viral", action="append", default=[], metavar="PATH",
                        help="viral merged file or directory of *.pt files (repeatable)")
    parser.add_argument("--host", action="append", default=[], metavar="PATH",
                        help="host merged file or directory of *.pt files (repeatable)")
    parser.add_argument("--declare", action="append", default=[], metavar="MODEL:DTYPE[:WEIGHTS]", help=DECLARE_HELP)
    parser.add_argument("--size", choices=list(SIZES), default="full",
                        help="full: the real widths (default); tiny: features of this suite's tiny stand-ins")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for the converted files")
    add_force(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # lazy: the library (and torch) load only when this command runs, keeping `virnucpro --help` fast
    from virnucpro_core.errors import InputError
    from virnucpro_core.files import atomic_write_text
    from virnucpro_core.layouts import virnucpro as layouts
    from virnucpro_core.layouts.declarations import Declaration
    from virnucpro_core.outputs import Output, OutputClaim, needed_by
    from virnucpro_core.layouts.features import save_view

    declarations = [Declaration.parse(text) for text in args.declare]
    inputs, groups = collect_inputs(args.trees, args.viral, args.host)
    if not any(inputs.values()):
        raise InputError("nothing to import", expected="a data/data_merge directory, or --viral/--host files",
                         fix="e.g. `virnucpro import data/data_merge --declare esm2_3b:float32 --out imported`")
    plan = layouts.plan_import(inputs, args.size)
    out = Path(args.out)
    names = tuple(f"{label}_{model}.pt" for model, label in plan) + ("import.json",)
    sources = [p for paths in inputs.values() for p in paths]
    with OutputClaim("import", [Output(out, names)], force=args.force, inputs=sources):
        record, views = {}, []
        for (model, label), paths in plan.items():
            merged = layouts.import_rows(paths, label, declarations, size=args.size, groups=groups,
                                         option="--declare")
            target = save_view(merged, out / f"{label}_{model}.pt")
            views.append(target)
            record[target.name] = merged.meta.get("imported") or {"files": [p.name for p in paths], "layout": "ours"}
            print(f"{label} {merged.meta['protein']['display_name']}: {len(merged):,} samples from {len(paths)} "
                  f"file(s) -> {target}")
            del merged
        atomic_write_text(out / "import.json", json.dumps(record, indent=2) + "\n")
    needed_by(views, sources)  # no --out replaces a file these views read their rows from
    print(f"wrote {out / 'import.json'}")
    return 0


def collect_inputs(trees, viral, host) -> tuple[dict[str, list[Path]], dict[Path, str]]:
    """Files per class, and each file's group (its data_merge folder), from trees and --viral/--host paths."""
    # lazy: the library (and torch) load only when this command runs, keeping `virnucpro --help` fast
    from virnucpro_core.errors import InputError
    from virnucpro_core.layouts import virnucpro as layouts

    inputs: dict[str, list[Path]] = {"viral": [], "host": []}
    groups: dict[Path, str] = {}
    for tree in map(Path, trees):
        if not layouts.is_data_merge_tree(tree):
            raise InputError(f"{tree} is not a VirNucPro data_merge directory",
                             expected="subfolders <category>_merged/ holding *.pt files (viral.1.1_merged: viral)",
                             fix="pass data/data_merge, or the files with --viral/--host")
        for item in layouts.scan_data_merge(tree):
            inputs[item.label].append(item.path)
            groups[item.path] = item.group
    for label, paths in (("viral", viral), ("host", host)):
        for path in map(Path, paths):
            found = layouts.merged_files(path) if path.is_dir() else [path]
            if not found:
                raise InputError(f"--{label} {path}: no *.pt files", fix="check the path")
            inputs[label] += found
    return inputs, groups
