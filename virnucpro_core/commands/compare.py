"""``virnucpro compare``: FastESM2_650 against ESM2 3B on the same test samples, with the accuracy verdict.

The verdict is the acceptance suite's: the same decision,
:func:`virnucpro_core.gate.gates.decide_accuracy`, on the same measurement.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from virnucpro_core.defaults import COMPARE_NAMES, MAX_ACCURACY_DROP, SEED
from virnucpro_core.commands.options import add_force, closed_fraction, non_negative_int, seed_value
from virnucpro_core.errors import InputError

DEFAULT_OUT = "comparison"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare FastESM2 and ESM2 3B predictions on the same test set and decide the accuracy gate",
        description=(
            "Evaluate both models' test-set predictions (accuracy, precision, recall, F1, ROC-AUC, PR-AUC, MCC "
            "with bootstrap CIs, per-length and per-chunk views), compare them on the identical samples (paired "
            "bootstrap CI of the accuracy drop, McNemar's exact test) and decide: PASS iff ESM2 3B accuracy − "
            "FastESM2 accuracy < --max-accuracy-drop. Prints a summary and writes report.md, report.json, "
            "comparison.json, evaluation_{fast,baseline}.json and figures/ under --out. Exit status: 0 PASS, "
            "1 FAIL, 2 unusable input. Predictions files (.json or .npz) are written by "
            "virnucpro_core.evaluate.predictions.Predictions.save: ids, y_true, p_viral, y_pred, lengths, meta."
        ),
    )
    parser.add_argument("--fast", required=True, metavar="PREDICTIONS",
                        help="FastESM2_650 predictions on the test set (.json or .npz)")
    baseline = parser.add_mutually_exclusive_group(required=True)
    baseline.add_argument("--baseline", metavar="PREDICTIONS",
                          help="ESM2 3B predictions on the same test ids (.json or .npz): paired comparison")
    baseline.add_argument(
        "--baseline-metrics", metavar="JSON",
        help="ESM2 3B metrics from an earlier run (evaluation_baseline.json of a previous compare, or a JSON "
        'object with at least "accuracy"), when its features are unavailable: no paired CI and no McNemar test',
    )
    parser.add_argument("--max-accuracy-drop", type=closed_fraction, default=MAX_ACCURACY_DROP, metavar="FRACTION",
                        help="the gate: ESM2 3B accuracy − FastESM2 accuracy must be strictly below this "
                        f"(default: {MAX_ACCURACY_DROP})")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"directory for the reports and figures (default: ./{DEFAULT_OUT})")
    parser.add_argument("--seed", type=seed_value, default=SEED,
                        help=f"seed of every bootstrap resampling, a non-negative integer (default: {SEED})")
    parser.add_argument("--n-bootstrap", type=non_negative_int, default=1000, metavar="N",
                        help="bootstrap resamples per CI (default: 1000). More gives steadier CI ends but costs "
                        "about 5 ms per resample per model; 0 skips the CIs")
    parser.add_argument("--fast-name", default=COMPARE_NAMES[0], help=f"display name (default: {COMPARE_NAMES[0]})")
    parser.add_argument("--baseline-name", default=COMPARE_NAMES[1],
                        help=f"display name (default: {COMPARE_NAMES[1]})")
    parser.add_argument("--fast-history", metavar="JSON",
                        help="FastESM2 training history (*.history.json from virnucpro train) for the loss curves "
                        "(default: none)")
    parser.add_argument("--baseline-history", metavar="JSON",
                        help="ESM2 3B training history for the loss curves (default: none)")
    parser.add_argument("--split-summary", metavar="JSON",
                        help="the split's distribution.json, for the test-set section (default: none)")
    add_force(parser)
    parser.set_defaults(run=run)


T = TypeVar("T")


def _load_json(path: str, option: str, load: Callable[[str], T], expected: str, fix: str) -> T:
    """``load(path)``, with a missing, unreadable or malformed file reported as an :class:`InputError`.

    The history and split-summary loaders raise plain Python errors; ``compare``
    reserves exit status 1 for a failed gate, so bad input must exit 2 instead.
    """
    if not Path(path).is_file():
        raise InputError(f"{option} {path}: no such file", expected=expected,
                         found="nothing at that path" if not Path(path).exists() else "a directory", fix=fix)
    try:
        return load(path)
    except json.JSONDecodeError as error:
        raise InputError(f"{option} {path} is not valid JSON", expected=expected, found=str(error), fix=fix) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{option} {path} cannot be read", expected=expected, found=str(error), fix=fix) from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        found = f"missing field {error}" if isinstance(error, KeyError) else f"{type(error).__name__}: {error}"
        raise InputError(f"{option} {path} is not in the expected format", expected=expected, found=found,
                         fix=fix) from None


def _load_history(path: str, option: str):
    # lazy: the library (and torch) load only when this command runs, keeping `virnucpro --help` fast
    from virnucpro_core.train.results import TrainingHistory

    return _load_json(
        path, option, TrainingHistory.load,
        expected="the *.history.json written beside a checkpoint by `virnucpro train`",
        fix=f"pass the history of the checkpoint (MODEL.history.json for MODEL.pt), or leave out {option}",
    )  # fmt: skip


def _load_split_summary(path: str):
    # lazy: the library (and torch) load only when this command runs, keeping `virnucpro --help` fast
    from virnucpro_core.split.records import SplitSummary

    return _load_json(
        path, "--split-summary", SplitSummary.load,
        expected="distribution.json written by `virnucpro split` (split_id, seed, classes, lengths, leakage, "
        "sources, ...)",
        fix="pass OUT/distribution.json of the `virnucpro split` run, or leave out --split-summary",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: they pull in scipy, pandas and matplotlib, which `--help` does not need.
    from virnucpro_core.paths import CompareReportPaths
    from virnucpro_core.outputs import Output, OutputClaim

    paths = CompareReportPaths(Path(args.out))
    outputs = Output(paths.root, tuple(p.relative_to(paths.root).as_posix() for p in paths.written()))
    with OutputClaim("compare", [outputs], force=args.force,
                     inputs=[args.fast, args.baseline, args.baseline_metrics, args.fast_history, args.baseline_history,
                             args.split_summary]):
        return _compare(args, paths)


def _compare(args: argparse.Namespace, paths) -> int:
    """Read, compare, write and print (the outputs already claimed)."""
    # Imported here, not at the top: they pull in scipy, pandas and matplotlib, which `--help` does not need.
    from virnucpro_core.compare.comparison import compare
    from virnucpro_core.compare.figures import write_figures
    from virnucpro_core.compare.report import format_summary, write_json, write_markdown
    from virnucpro_core.evaluate.metrics import Evaluation
    from virnucpro_core.evaluate.predictions import Predictions
    from virnucpro_core.files import files_together
    from virnucpro_core.paths import CompareReportPaths
    from virnucpro_core.gate.gates import accuracy_gate, decide_accuracy

    if args.baseline and Path(args.fast).resolve() == Path(args.baseline).resolve():
        raise InputError(
            f"--fast and --baseline are the same file: {args.fast}",
            expected="FastESM2_650 predictions as --fast and ESM2 3B predictions as --baseline",
            found="one file given twice: a model compared with itself always passes",
            fix="pass each model's own predictions (virnucpro evaluate with each checkpoint)",
        )
    fast = Predictions.load(args.fast)
    baseline = Predictions.load(args.baseline) if args.baseline else None
    baseline_metrics = Evaluation.load(args.baseline_metrics) if args.baseline_metrics else None
    names = (args.fast_name, args.baseline_name)
    # Every input is read before the bootstrap runs, so a bad file fails in seconds (exit 2).
    histories = {}
    for name, path, option in zip(names, (args.fast_history, args.baseline_history),
                                  ("--fast-history", "--baseline-history")):
        if path:
            histories[name] = _load_history(path, option)
    split_summary = _load_split_summary(args.split_summary) if args.split_summary else None
    comparison = decide_accuracy(compare(
        fast,
        baseline,
        baseline_metrics=baseline_metrics,
        max_accuracy_drop=args.max_accuracy_drop,
        n_bootstrap=args.n_bootstrap,
        seed=args.seed,
        names=names,
    ))

    # One result, written whole or not at all; report.json, moved in last, marks a complete set.
    with files_together(paths.root, paths.json.name) as staging:
        staged = CompareReportPaths(staging)
        figures = write_figures(
            staged.figures,
            fast_eval=comparison.fast,
            baseline_eval=comparison.baseline,
            fast_preds=fast,
            baseline_preds=baseline,
            names=names,
            histories=histories or None,
        )
        comparison.save(staged.comparison)
        comparison.fast.save(staged.evaluation("fast"))
        comparison.baseline.save(staged.evaluation("baseline"))
        write_markdown(comparison, staged.markdown, split_summary=split_summary, histories=histories or None,
                       figures_dir=staged.figures)
        write_json(comparison, staged.json, split_summary=split_summary, histories=histories or None,
                   figures=[p.relative_to(staging).as_posix() for p in figures.values()])

    print(format_summary(comparison))
    print(f"\nwrote {paths.markdown}, {paths.json}, {paths.comparison} and {len(figures)} figure(s) in {paths.figures}")
    return 0 if accuracy_gate(comparison).passed else 1
