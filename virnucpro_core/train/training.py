"""Training VirNucPro's MLP with its original hyperparameters, minus its known defects.

Kept from the original ``train.py``: the MLP (:mod:`virnucpro_core.models.classifier`),
CrossEntropy, SGD (lr 2e-4, momentum 0.9), StepLR (step 10, gamma 0.85),
batch 32, up to 200 epochs, early stopping on validation loss (patience 5).

Fixed:

* early stopping keeps a *copy* of the best weights (the original kept
  ``model.state_dict()``, a live view, so its "best" model was the last one).
  The saved model is still the final one by default, as the people who run
  VirNucPro decided (``TrainingConfig.save``); ``save="best"`` picks the copy;
* the validation set is carved out of the training split (stratified, seeded,
  by ids); the original stopped on the test set. The test set is not read here;
* one seed makes a run reproducible (:func:`seed_everything` and one seeded
  generator for the batch order, :func:`epoch_batches`); the deterministic-kernel
  flags hold during training only (:func:`deterministic_training`);
* the rows are read from disk a batch at a time (:mod:`virnucpro_core.layouts.store`),
  not loaded: memory stays flat whatever the size of the training set.

Losses are means over samples (the original averaged batch means; equal when
every batch is full). If the training set size leaves a last batch of one
sample, that batch is dropped: BatchNorm cannot train on a single sample.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from virnucpro_core.models.classifier import MLPClassifier, describe_features
from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_write_text
from virnucpro_core.paths import SplitPaths
from virnucpro_core.models.registry import resolve_device
from virnucpro_core.layouts.features import MergedRows, check_merged, open_rows, rows_in_memory
from virnucpro_core.layouts.features import feature_info
from virnucpro_core.split.ids import CLASS_NAMES, min_class_size, stratified_ids
from virnucpro_core.split.lineage import training_lineage
from virnucpro_core.threads import stage_threads
from virnucpro_core.train.results import EpochRecord, TrainingConfig, TrainingHistory, TrainingResult

_log = logging.getLogger(__name__)

STOP_EARLY = "early_stopping"
STOP_MAX_EPOCHS = "max_epochs"
STOP_NON_FINITE = "non_finite_loss"
_EVAL_BATCH = 4096


# --------------------------------------------------------------------------- reproducibility


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every GPU) and ask for deterministic kernels.

    Sets cuDNN to deterministic / no benchmark, ``torch.use_deterministic_algorithms(True,
    warn_only=True)`` (a kernel without a deterministic version warns instead of failing)
    and ``CUBLAS_WORKSPACE_CONFIG`` (needed for deterministic cuBLAS) unless already set.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


@contextlib.contextmanager
def deterministic_training(seed: int) -> Iterator[None]:
    """:func:`seed_everything` for the duration of a block; the kernel flags are restored afterwards.

    Deterministic kernels are slower on a GPU, so they must not outlive training
    (an extraction benchmark later in the same process would pay for them).
    """
    saved = (
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    seed_everything(seed)
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[0], saved[1]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    # A real copy: state_dict() returns views of the live parameters, which is
    # how the original's "best" weights silently became the last ones.
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


# --------------------------------------------------------------------------- training


def _load_training_features(train_features: Mapping | str | Path) -> tuple[MergedRows, str, Path | None]:
    """The training set with its rows left on disk (a split's ``train.pt`` view, or a merged file), how to name it,
    and its file (None: in memory)."""
    if isinstance(train_features, Mapping):
        return rows_in_memory(check_merged(train_features, "the training features")), "the training features", None
    path = Path(train_features)
    if path.is_dir():
        path = SplitPaths(path).train
        if not path.is_file():
            raise InputError(
                f"no training split in {path.parent}",
                expected=f"{path} written by `virnucpro split`",
                fix=f"run `virnucpro split --viral ... --host ... --out {path.parent}` first",
            )
    return open_rows(path), str(path), path


def _carve_validation(features: Mapping, fraction: float, seed: int, where: str) -> tuple[list[str], list[str]]:
    labels = features["labels"].tolist()
    need = min_class_size(fraction)
    for label, name in sorted(CLASS_NAMES.items()):
        n = labels.count(label)
        if n < need:
            raise InputError(
                f"{where} has {n} {name} sample(s); expected at least {need} to carve a validation set",
                expected=f"enough samples of each class that {fraction:g} of them rounds to at least one validation "
                "sample and leaves at least one for training",
                found=f"{n} {name}",
                fix="split more data with `virnucpro split`, or change --val-fraction",
            )
    val = stratified_ids(features["ids"], labels, fraction, seed, purpose="validation")
    chosen = set(val)
    train = sorted(i for i in features["ids"] if i not in chosen)
    return train, val


def _evaluate(model: nn.Module, rows: MergedRows, device: torch.device) -> tuple[float, float]:
    """Mean loss and accuracy over ``rows``, read and scored a large block at a time."""
    model.eval()
    total_loss = 0.0
    correct = 0
    with torch.no_grad():
        for start, block in rows.rows.blocks(_EVAL_BATCH):
            x = block.to(device)
            y = rows.labels[start : start + len(block)].to(device)
            logits = model(x)
            total_loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(dim=1) == y).sum())
    n = len(rows)
    return total_loss / n, correct / n


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch's batches of positions, exactly as ``DataLoader(shuffle=True, generator=generator)`` draws them.

    The loader draws one int64 from the generator for its workers' base seed,
    then the permutation, and its sampler draws one more (empty) permutation
    slice when the epoch runs out; a last batch of one sample is dropped
    (BatchNorm cannot train on it). Drawing the same numbers keeps training on
    streamed rows identical to the in-memory ``DataLoader`` path it replaces
    (tests/train/test_training_streaming.py).
    """
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = torch.randperm(n, generator=generator)
    torch.randperm(n, generator=generator)  # RandomSampler's trailing draw for num_samples % n (= 0) samples
    stop = n - 1 if n % batch_size == 1 else n
    return [order[start : min(start + batch_size, stop)] for start in range(0, stop, batch_size)]


def train_classifier(
    train_features: Mapping | str | Path,
    config: TrainingConfig | None = None,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    on_epoch_end: Callable[[EpochRecord, MLPClassifier], None] | None = None,
    on_start: Callable[[MLPClassifier], None] | None = None,
) -> TrainingResult:
    """Train VirNucPro's MLP on the training side of a split, stopping early on a validation set carved from it.

    Args:
        train_features: a merged-feature dict, a ``train.pt`` path, or a split directory (its ``train.pt``).
        config: hyperparameters (VirNucPro's by default).
        progress: show a tqdm bar over the batches of each epoch.
        log: receives one line per epoch (epoch, train_loss, val_loss, val_accuracy, lr, seconds) and a
            few lines about the setup; ``None`` for silence.
        on_epoch_end: called after each epoch with its record and the live model (e.g. to snapshot weights).
        on_start: called with the model before the first epoch (e.g. to check that its checkpoint will fit on
            disk); what it raises stops training before it starts.

    Returns:
        :class:`TrainingResult`; its ``model`` holds the ``config.save`` weights, in eval mode.
    """
    config = config or TrainingConfig()
    with deterministic_training(config.seed), stage_threads("train") as threads:
        if log is not None:
            log(f"intra-op threads: {threads.threads} ({threads.source}; set OMP_NUM_THREADS or --threads to change)")
        return _train(train_features, config, progress=progress, log=log, on_epoch_end=on_epoch_end,
                      on_start=on_start)


def train_into(train_features: str | Path, config: TrainingConfig, progress: bool, directory: Path,
               say: Callable[[str], None]) -> None:
    """Train, then write a stage's files: final and best weights, their history, the validation ids.

    Runs in the suite's process or in a worker process (tqdm bars only in the first); ``say`` gets the line
    of each epoch (every line also goes to this module's log).
    """
    def lines(line: str) -> None:
        _log.info(line)
        if line.startswith("epoch"):
            say(line)

    result = train_classifier(train_features, config, progress=progress and multiprocessing.parent_process() is None,
                              log=lines)
    result.save(directory / "final.pt", "final")
    result.save(directory / "best.pt", "best")
    atomic_write_text(directory / "val_ids.json", json.dumps(result.val_ids) + "\n")


def _train(
    train_features: Mapping | str | Path,
    config: TrainingConfig,
    *,
    progress: bool,
    log: Callable[[str], None] | None,
    on_epoch_end: Callable[[EpochRecord, MLPClassifier], None] | None,
    on_start: Callable[[MLPClassifier], None] | None = None,
) -> TrainingResult:
    say = log or (lambda _line: None)
    features, where, path = _load_training_features(train_features)
    meta = features["meta"]
    split_meta = meta.get("split") if isinstance(meta.get("split"), Mapping) else {}
    if split_meta.get("side") == "test":
        raise InputError(
            f"{where} is the test side of a split",
            expected="the training side (train.pt); the test set is read once, at evaluation",
            fix="pass the split directory or its train.pt",
        )
    input_dim = features.width
    info = feature_info(meta)
    protein_model, dna_model = info["protein_model"], info["dna_model"]
    train_ids, val_ids = _carve_validation(features, config.val_fraction, config.seed, where)
    train_part = features.take(features.positions(train_ids))
    val_part = features.take(features.positions(val_ids))
    device = resolve_device(config.device)

    model = MLPClassifier(
        input_dim,
        config.hidden_dim,
        2,
        config.dropout,
        protein_model=protein_model,
        dna_model=dna_model,
    ).to(device)
    if on_start is not None:
        on_start(model)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_size, gamma=config.lr_gamma)
    generator = torch.Generator()
    generator.manual_seed(config.seed)

    say(
        f"training the MLP on {describe_features(input_dim, protein_model, dna_model)}: {len(train_ids)} training / "
        f"{len(val_ids)} validation samples (validation = {config.val_fraction:g} of each class of {where}, "
        f"seed {config.seed}; change with --val-fraction / --seed); the test set is not read"
    )
    say(
        f"SGD lr {config.learning_rate:g} momentum {config.momentum:g}, StepLR step {config.lr_step_size} gamma "
        f"{config.lr_gamma:g}, batch {config.batch_size}, up to {config.max_epochs} epochs (--max-epochs), early "
        f"stopping after {config.patience} epochs without a lower validation loss (--patience); keeping the "
        f"{config.save} weights (--save best|final); device {device}"
    )

    history = TrainingHistory(patience=config.patience, train_samples=len(train_ids), val_samples=len(val_ids))
    best_state = _clone_state(model)
    stale = 0
    stop_reason = STOP_MAX_EPOCHS
    for epoch in range(1, config.max_epochs + 1):
        started = time.perf_counter()
        lr = float(optimizer.param_groups[0]["lr"])
        model.train()
        loss_sum, seen = 0.0, 0
        batches = tqdm(epoch_batches(len(train_ids), config.batch_size, generator),
                       desc=f"epoch {epoch}/{config.max_epochs}", unit="batch", leave=False,
                       disable=not progress or not sys.stderr.isatty())  # in a pipe: the line per epoch only
        for positions in batches:
            # Rows come from disk a batch at a time (store.py): memory stays flat whatever the set's size.
            x = train_part.gather(positions.numpy()).to(device, non_blocking=True)
            y = train_part.labels[positions].to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(y)
            seen += len(y)
        train_loss = loss_sum / max(seen, 1)
        val_loss, val_accuracy = _evaluate(model, val_part, device)
        scheduler.step()
        improved = math.isfinite(val_loss) and val_loss < history.best_val_loss - config.min_delta
        if improved:
            history.best_val_loss = val_loss
            history.best_epoch = epoch
            best_state = _clone_state(model)
            stale = 0
        else:
            stale += 1
        record = EpochRecord(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            lr=lr,
            seconds=round(time.perf_counter() - started, 4),
            improved=improved,
        )
        history.epochs.append(record)
        say(
            f"epoch {epoch:>3}/{config.max_epochs}  train_loss {train_loss:.4f}  val_loss {val_loss:.4f}  "
            f"val_accuracy {val_accuracy:.4f}  lr {lr:.3g}  {record.seconds:.1f}s" + ("  *best" if improved else "")
        )
        if on_epoch_end is not None:
            on_epoch_end(record, model)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            stop_reason = STOP_NON_FINITE
            break
        if stale >= config.patience:
            stop_reason = STOP_EARLY
            break
    history.stopped_epoch = len(history.epochs)
    history.stop_reason = stop_reason
    final_state = _clone_state(model)
    if history.best_epoch == 0:  # no finite validation loss at all: "best" can only mean the last weights
        best_state = final_state
    reason = {
        STOP_EARLY: f"early stopping: no lower validation loss for {config.patience} epochs",
        STOP_MAX_EPOCHS: f"reached --max-epochs {config.max_epochs}",
        STOP_NON_FINITE: "the loss became NaN or infinite; lower the learning rate or check the features",
    }[stop_reason]
    say(
        f"stopped after epoch {history.stopped_epoch} ({reason}); best epoch {history.best_epoch} with validation "
        f"loss {history.best_val_loss:.4f}; keeping the {config.save} weights "
        f"(epoch {history.best_epoch if config.save == 'best' else history.stopped_epoch})"
    )
    if config.save == "best":
        model.load_state_dict(best_state)
    model.eval()
    return TrainingResult(
        model=model,
        history=history,
        config=config,
        best_state=best_state,
        final_state=final_state,
        input_dim=input_dim,
        protein_model=protein_model,
        dna_model=dna_model,
        train_ids=train_ids,
        val_ids=val_ids,
        device=str(device),
        split_id=split_meta.get("split_id"),
        split_manifest_sha256=split_meta.get("manifest_sha256"),
        features={**info, "dim": input_dim},
        lineage=training_lineage(features["ids"], meta, path),
    )


__all__ = [
    "resolve_device",
    "deterministic_training",
    "seed_everything",
    "train_classifier",
]
