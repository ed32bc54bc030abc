"""``virnucpro train``: VirNucPro's MLP on the training side of a split, early-stopped on a validation carve-out."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from virnucpro_core.commands.options import add_force, open_fraction, positive_int, seed_value
from virnucpro_core.defaults import DEVICE, MAX_EPOCHS, PATIENCE, SAVE, SAVE_CHOICES, SEED, VAL_FRACTION


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train VirNucPro's MLP on a split (original hyperparameters, fixed early stopping)",
        description=(
            "Train VirNucPro's MLP (input -> 512 -> 2; SGD lr 2e-4, momentum 0.9, StepLR 10/0.85, batch 32) on "
            "DIR/train.pt. A stratified validation set is carved out of the training samples for early stopping; "
            "DIR/test.pt is not read. Writes the checkpoint to CKPT and the per-epoch history to "
            "CKPT's name with .history.json."
        ),
    )
    parser.add_argument(
        "--features", required=True, metavar="DIR", help="split directory (from `virnucpro split`) or its train.pt"
    )
    parser.add_argument(
        "--out", required=True, metavar="CKPT", help="checkpoint file to write (e.g. models/fastesm2.pt)"
    )
    parser.add_argument(
        "--patience",
        metavar="N",
        type=positive_int,
        default=PATIENCE,
        help=f"stop after this many epochs without a lower validation loss (default: {PATIENCE}, as "
        "VirNucPro). Higher values train longer and may find a better minimum; lower values stop sooner.",
    )
    parser.add_argument(
        "--save",
        choices=SAVE_CHOICES,
        default=SAVE,
        help=f"which weights the checkpoint holds (default: {SAVE}, the weights after the last epoch, "
        "as VirNucPro effectively shipped). 'best' keeps the epoch with the lowest validation loss, which is "
        "usually better by a little but chosen on validation data.",
    )
    parser.add_argument(
        "--seed",
        metavar="N",
        type=seed_value,
        default=SEED,
        help=f"seed of the validation draw, initial weights, shuffling and dropout (default: {SEED}); "
        "the same seed on the same machine gives the same history",
    )
    parser.add_argument(
        "--max-epochs",
        metavar="N",
        type=positive_int,
        default=MAX_EPOCHS,
        help=f"upper limit on epochs (default: {MAX_EPOCHS}, as VirNucPro); early stopping usually ends "
        "sooner",
    )
    parser.add_argument(
        "--val-fraction",
        metavar="F",
        type=open_fraction,
        default=VAL_FRACTION,
        help=f"share of each class of the training split used for validation (default: {VAL_FRACTION}). "
        "Larger values make early stopping steadier but train on fewer samples.",
    )
    parser.add_argument(
        "--device",
        metavar="DEVICE",
        default=DEVICE,
        help=f"auto, cpu, cuda or cuda:N (default: {DEVICE} = CUDA when available). GPU runs are deterministic only "
        "up to floating-point kernel differences from CPU runs.",
    )
    parser.add_argument(
        "--threads",
        metavar="N",
        type=positive_int,
        default=None,
        help="intra-op CPU threads (default: 1 for training, or OMP_NUM_THREADS when set). Batches of 32 rows "
        "gain nothing from more; on a shared machine more threads wait actively and can run 10-40x slower.",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the per-epoch batch progress bar (default: shown)"
    )
    add_force(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: it pulls in torch, which `--help` does not need.
    from virnucpro_core.outputs import Output, OutputClaim
    from virnucpro_core.paths import TrainingPaths

    # Checked before hours of training, not after: a result that cannot be written is lost.
    features = Path(args.features)
    inputs = [features / name for name in ("train.pt", "test.pt", "manifest.json")] if features.is_dir() else [features]
    outputs = [Output(Path(args.out)), Output(TrainingPaths(Path(args.out)).history)]
    with OutputClaim("train", outputs, force=args.force, inputs=inputs):  # held until the checkpoint is written
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    """Train as the options say and write the checkpoint and its history (the outputs already claimed)."""
    # Imported here, not at the top: it pulls in torch, which `--help` does not need.
    from virnucpro_core.errors import InputError, os_error_message
    from virnucpro_core.files import check_free_space
    from virnucpro_core.threads import set_user_threads
    from virnucpro_core.train.results import TrainingConfig
    from virnucpro_core.train.training import train_classifier

    capped = set_user_threads(args.threads)
    if capped:
        print(capped, file=sys.stderr)
    config = TrainingConfig(
        patience=args.patience,
        save=args.save,
        seed=args.seed,
        max_epochs=args.max_epochs,
        val_fraction=args.val_fraction,
        device=args.device,
    )
    def room_for_the_checkpoint(model) -> None:
        # The checkpoint is the weights (plus a little meta), the history a few KB per epoch: both must fit
        # before the first epoch, not after the last.
        needed = sum(t.numel() * t.element_size() for t in model.state_dict().values()) + (1 << 20)
        check_free_space(args.out, needed, what="the trained checkpoint and its history")

    result = train_classifier(args.features, config, progress=not args.no_progress, log=print,
                              on_start=room_for_the_checkpoint)
    try:
        paths = result.save(args.out)
    except OSError as error:
        kept = _keep_weights(result, Path(args.out))
        where = (f"the trained weights are kept at {kept} (move them where you want them)" if kept else
                 "the trained weights could not be kept anywhere else either")
        raise InputError(f"--out {args.out}: the trained checkpoint could not be written; {where}",
                         found=os_error_message(error).replace("\n  to fix: ", "; "),
                         fix="free space (or choose another --out) and rerun; no half-written file is left at --out"
                         ) from None
    print(f"wrote {paths.checkpoint} ({result.which} weights, epoch {result.epoch_of(result.which)})")
    print(f"wrote {paths.history}")
    return 0


def _keep_weights(result, out):
    """Save ``result``'s checkpoint where it fits when ``out`` cannot take it: the temporary folder, then the home
    and the working folder; return where it went (``None`` when nowhere)."""
    name = f"{out.stem}.kept-{os.getpid()}{out.suffix or '.pt'}"
    for folder in (Path(tempfile.gettempdir()), Path.home(), Path.cwd()):
        target = folder / name
        if target.parent.resolve() == out.absolute().parent.resolve():
            continue  # the place that just failed
        try:
            return result.save(target).checkpoint
        except OSError:
            continue
    return None
