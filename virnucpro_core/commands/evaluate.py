"""``virnucpro evaluate``: a trained checkpoint on a merged feature file (e.g. the split's test.pt) → predictions."""

from __future__ import annotations

import argparse
from pathlib import Path

from virnucpro_core.defaults import SEED
from virnucpro_core.commands.options import add_force, non_negative_int, seed_value
from virnucpro_core.errors import InputError

PREDICTION_SUFFIXES = (".json", ".npz")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="run a trained checkpoint on a merged feature file and write its predictions for `virnucpro compare`",
        description=(
            "Load CKPT (from `virnucpro train`, the original VirNucPro or the FastESM2 fork), check that it was "
            "trained on features of the width and protein model of TEST.pt and on the training side of TEST.pt's "
            "split (its lineage), score every sample and write "
            "PREDICTIONS (.json or .npz: ids, y_true, p_viral, y_pred, lengths, meta), the file `virnucpro compare --fast/--baseline` reads. Prints accuracy, "
            "precision, recall, F1, ROC-AUC, PR-AUC and MCC with bootstrap CIs, and the per-chunk accuracy."
        ),
    )
    parser.add_argument("--model", required=True, metavar="CKPT",
                        help="checkpoint: `virnucpro train`'s, an original VirNucPro model file (300_model.pth / "
                        "500_model.pth) or a FastESM2 fork checkpoint; read without running pickled code")
    parser.add_argument("--features", required=True, metavar="TEST.pt",
                        help="merged, labelled feature file: the split's test.pt (or any `virnucpro merge` output)")
    parser.add_argument("--out", required=True, metavar="PREDICTIONS",
                        help="predictions file to write; .json (readable) or .npz (compact)")
    parser.add_argument("--metrics-out", metavar="JSON",
                        help="also write the full evaluation (metrics, CIs, length bins, chunk metrics) as JSON; "
                        "usable as `virnucpro compare --baseline-metrics`. Needs test samples of both classes: "
                        "with one class the command stops with exit status 2 and writes nothing (default: not "
                        "written)")
    parser.add_argument("--n-bootstrap", type=non_negative_int, default=1000, metavar="N",
                        help="bootstrap resamples for the confidence intervals (default: 1000). More gives steadier "
                        "interval ends at about 5 ms per resample; 0 skips them")
    parser.add_argument("--seed", type=seed_value, default=SEED,
                        help=f"seed of the bootstrap resampling, a non-negative integer (default: {SEED})")
    parser.add_argument("--allow-other-split", action="store_true",
                        help="evaluate a checkpoint that was not trained on TEST.pt's split (another split, features "
                        "that are no split's, or a checkpoint that records none, such as the original VirNucPro's) "
                        "instead of refusing it: the output says how many test samples it was trained on, the "
                        "predictions and metrics record it, and `virnucpro compare` refuses them (default: refuse, "
                        "naming both splits)")
    add_force(parser)
    parser.set_defaults(run=run)


def _check_suffix(path: str, option: str, suffixes: tuple[str, ...]) -> None:
    if Path(path).suffix not in suffixes:
        raise InputError(
            f"{option} {path}: unknown file type",
            expected="a file name ending in " + " or ".join(suffixes),
            found=repr(Path(path).suffix or "no suffix"),
            fix=f"name it e.g. predictions{suffixes[0]}",
        )


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: the CLI's start stays light for `--help`.
    from virnucpro_core.files import check_output
    from virnucpro_core.outputs import Output, OutputClaim

    _check_suffix(args.out, "--out", PREDICTION_SUFFIXES)
    outputs = [Output(Path(args.out))]
    if args.metrics_out:
        _check_suffix(args.metrics_out, "--metrics-out", (".json",))
        check_output(args.metrics_out, inputs=[args.model, args.features, args.out], option="--metrics-out")
        outputs.append(Output(Path(args.metrics_out)))
    with OutputClaim("evaluate", outputs, force=args.force, inputs=[args.model, args.features]):
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    """Score, check, write and print (the outputs already claimed)."""
    # Imported here, not at the top: they pull in torch, scipy and scikit-learn, which `--help` does not need.
    import numpy as np

    from virnucpro_core.compare.comparison import fmt, fmt_ci, uses_random_weights
    from virnucpro_core.compare.report import checkpoint_weights
    from virnucpro_core.evaluate.metrics import METRICS, evaluate
    from virnucpro_core.evaluate.predictions import HOST, VIRAL
    from virnucpro_core.predict.scoring import RANDOM_WEIGHTS_WARNING, predict_features
    from virnucpro_core.split.lineage import LineageCheck

    predictions = predict_features(args.model, args.features, allow_other_split=args.allow_other_split)
    if not len(predictions):
        raise InputError(f"{args.features} holds no samples: there is nothing to evaluate",
                         expected="a merged feature file with test samples (test.pt of `virnucpro split`)",
                         found="0 samples", fix="pass the split's test.pt")
    classes = set(np.unique(predictions.y_true).tolist())
    if args.metrics_out and classes != {HOST, VIRAL}:
        # Checked before anything is written: a metrics file of one class would feed compare's gate a
        # one-sided accuracy, and a half-done run should leave no output behind.
        present = "viral (1)" if VIRAL in classes else "host (0)" if classes else "none: the file is empty"
        raise InputError(
            f"--metrics-out {args.metrics_out}: the samples of {args.features} are not of both classes, so "
            "ROC-AUC, PR-AUC and MCC are undefined, accuracy measures one side only, and no evaluation is written",
            expected="test samples of both classes, viral (1) and host (0)",
            found=f"{len(predictions)} samples, classes present: {present}",
            fix="evaluate on a test split of both classes (virnucpro split draws each class separately), or "
            "leave out --metrics-out to write only the predictions",
        )
    predictions.save(args.out)
    meta = predictions.meta
    checkpoint = meta["checkpoint"]
    weights = (f"{checkpoint['which']} weights of epoch {checkpoint['epoch']}" if checkpoint["which"]
               else checkpoint_weights(checkpoint))  # the original's and the fork's files name no epoch
    print(
        f"{len(predictions)} samples of {args.features} -> {checkpoint['path']} "
        f"({meta['display_name']}, {checkpoint['input_dim']}-d, {weights})"
    )
    random = uses_random_weights(meta)
    if random:
        print(f"WARNING: {RANDOM_WEIGHTS_WARNING}")
    lineage = LineageCheck.from_dict(meta.get("lineage"))
    if lineage is not None and not lineage.matched:
        print(f"WARNING: {lineage.warning()}")
    print(f"wrote {args.out}")

    if classes != {HOST, VIRAL}:
        accuracy = float(np.mean(predictions.correct)) if len(predictions) else float("nan")
        which = "viral" if VIRAL in classes else "host"
        print(f"accuracy {fmt(accuracy)} — every sample is {which}, so the other metrics are undefined; "
              "evaluate on a test set with both classes for the full table")
        return 0
    evaluation = evaluate(predictions, n_bootstrap=args.n_bootstrap, seed=args.seed)
    level = f"{evaluation.confidence_level:.0%} CI"
    print(f"{evaluation.n} samples ({evaluation.n_viral} viral, {evaluation.n_host} host)")
    width = max(len(label) for label in METRICS.values())
    for name, label in METRICS.items():
        interval = evaluation.interval(name)
        ci = f"  ({level} {fmt_ci(interval)})" if interval is not None else ""
        print(f"  {label:<{width}}  {fmt(evaluation.metric(name))}{ci}")
    if evaluation.chunks is not None:
        print(f"  {'chunk accuracy':<{width}}  {fmt(evaluation.chunks.accuracy)}  "
              f"({evaluation.chunks.n_chunks} chunks, viral iff max p_viral >= max p_host)")
    if args.metrics_out:
        evaluation.save(args.metrics_out)
        print(f"wrote {args.metrics_out}")
    if random:
        print("WARNING: random-weight stand-ins — these metrics test the machinery, not the models")
    if lineage is not None and not lineage.matched:
        print(f"WARNING: {lineage.warning()}")
    return 0
