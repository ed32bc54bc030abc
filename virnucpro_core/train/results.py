"""The training's inputs and outputs, typed: its configuration, its history epoch by epoch, its result.

:class:`TrainingConfig` holds the original ``train.py``'s hyperparameters (the
defaults) and what this suite adds; :class:`TrainingHistory` is what each epoch
measured, saved beside a checkpoint for the loss-curve figure;
:class:`TrainingResult` is a trained model with both sets of weights, and
:func:`write_checkpoint` saves the chosen ones with their
:class:`~virnucpro_core.models.classifier.CheckpointMeta`. The training itself is
:mod:`virnucpro_core.train.training`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from virnucpro_core.code_identity import code_of
from virnucpro_core.defaults import DEVICE, MAX_EPOCHS, PATIENCE, SAVE, SAVE_CHOICES, SEED, VAL_FRACTION
from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_write_text
from virnucpro_core.layouts.checkpoints import save_checkpoint
from virnucpro_core.models.classifier import CheckpointMeta, MLPClassifier
from virnucpro_core.paths import TrainingPaths
from virnucpro_core.split.lineage import Lineage

@dataclass
class TrainingConfig:
    """Hyperparameters of one training run; the defaults are VirNucPro's."""

    hidden_dim: int = 512
    dropout: float = 0.5
    learning_rate: float = 2e-4
    momentum: float = 0.9
    lr_step_size: int = 10
    lr_gamma: float = 0.85
    batch_size: int = 32
    max_epochs: int = MAX_EPOCHS
    patience: int = PATIENCE
    min_delta: float = 0.0  # an epoch improves when val_loss < best - min_delta
    save: str = SAVE  # "final": weights after the last epoch; "best": lowest validation loss
    val_fraction: float = VAL_FRACTION
    seed: int = SEED
    device: str = DEVICE

    def __post_init__(self) -> None:
        problems = []
        for name in ("hidden_dim", "lr_step_size", "batch_size", "max_epochs", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} {value!r} is not a positive integer")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            problems.append(f"seed {self.seed!r} is not a non-negative integer")
        if not 0 < self.val_fraction < 1:
            problems.append(f"val_fraction {self.val_fraction!r} is not between 0 and 1 (exclusive)")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout {self.dropout!r} is not in [0, 1)")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate {self.learning_rate!r} is not positive")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum {self.momentum!r} is not in [0, 1)")
        if not 0 < self.lr_gamma <= 1:
            problems.append(f"lr_gamma {self.lr_gamma!r} is not in (0, 1]")
        if self.min_delta < 0:
            problems.append(f"min_delta {self.min_delta!r} is negative")
        if self.save not in SAVE_CHOICES:
            problems.append(f"save {self.save!r} is not one of {', '.join(SAVE_CHOICES)}")
        if problems:
            raise InputError(
                "invalid training configuration: " + "; ".join(problems),
                expected="VirNucPro's defaults: batch 32, lr 2e-4, momentum 0.9, StepLR 10/0.85, up to 200 epochs, "
                "patience 5, save final or best, val_fraction 0.1",
                fix="change the option(s) named above",
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class EpochRecord:
    """One epoch: mean losses over samples, validation accuracy, the learning rate it used, wall time."""

    epoch: int  # 1-based
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float
    improved: bool  # validation loss improved on the best so far (these weights became "best")


@dataclass
class TrainingHistory:
    """Per-epoch losses and how training ended."""

    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stopped_epoch: int = 0
    stop_reason: str = ""
    patience: int = 5
    train_samples: int = 0
    val_samples: int = 0

    @property
    def train_loss(self) -> list[float]:
        return [e.train_loss for e in self.epochs]

    @property
    def val_loss(self) -> list[float]:
        return [e.val_loss for e in self.epochs]

    @property
    def val_accuracy(self) -> list[float]:
        return [e.val_accuracy for e in self.epochs]

    @property
    def lr(self) -> list[float]:
        return [e.lr for e in self.epochs]

    @property
    def epoch_numbers(self) -> list[int]:
        return [e.epoch for e in self.epochs]

    def to_dict(self, *, include_timing: bool = True) -> dict:
        epochs = [asdict(e) for e in self.epochs]
        if not include_timing:
            for entry in epochs:
                entry.pop("seconds")
        return {
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
            "stopped_epoch": self.stopped_epoch,
            "stop_reason": self.stop_reason,
            "patience": self.patience,
            "train_samples": self.train_samples,
            "val_samples": self.val_samples,
            "epochs": epochs,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> TrainingHistory:
        best = data.get("best_val_loss")
        return cls(
            epochs=[EpochRecord(**{"seconds": 0.0, **e}) for e in data.get("epochs", [])],
            best_epoch=int(data.get("best_epoch", 0)),
            best_val_loss=math.inf if best is None else float(best),
            stopped_epoch=int(data.get("stopped_epoch", 0)),
            stop_reason=str(data.get("stop_reason", "")),
            patience=int(data.get("patience", 5)),
            train_samples=int(data.get("train_samples", 0)),
            val_samples=int(data.get("val_samples", 0)),
        )

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TrainingHistory:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass
class TrainingResult:
    """A trained model (weights chosen by ``config.save``), its history and what it was trained on."""

    model: MLPClassifier
    history: TrainingHistory
    config: TrainingConfig
    best_state: dict[str, torch.Tensor]
    final_state: dict[str, torch.Tensor]
    input_dim: int
    protein_model: str | None
    dna_model: str | None
    train_ids: list[str]
    val_ids: list[str]
    device: str
    split_id: str | None = None
    split_manifest_sha256: str | None = None
    features: dict = field(default_factory=dict)
    lineage: Lineage | None = None

    @property
    def which(self) -> str:
        return self.config.save

    def epoch_of(self, which: str) -> int:
        return self.history.best_epoch if which == "best" else self.history.stopped_epoch

    def state_of(self, which: str) -> dict[str, torch.Tensor]:
        if which not in SAVE_CHOICES:
            raise InputError(f"unknown weights {which!r}", expected=" or ".join(SAVE_CHOICES), found=which)
        return self.best_state if which == "best" else self.final_state

    def checkpoint_meta(self, which: str | None = None) -> CheckpointMeta:
        which = which or self.which
        return CheckpointMeta(
            protein_model=self.protein_model,
            dna_model=self.dna_model,
            input_dim=self.input_dim,
            hidden_dim=self.config.hidden_dim,
            num_classes=2,
            dropout=self.config.dropout,
            which=which,
            epoch=self.epoch_of(which),
            seed=self.config.seed,
            split_manifest_sha256=self.split_manifest_sha256,
            split_id=self.split_id,
            features=dict(self.features),
            hyperparameters=self.config.to_dict(),
            train_samples=len(self.train_ids),
            val_samples=len(self.val_ids),
            lineage=self.lineage.to_dict() if self.lineage is not None else None,
            code=code_of("train").to_dict(),
        )

    def save(self, checkpoint: str | Path, which: str | None = None) -> TrainingPaths:
        """Write the checkpoint (``which`` weights, default ``config.save``) and the history JSON beside it."""
        return write_checkpoint(self, checkpoint, which)


def write_checkpoint(result: TrainingResult, checkpoint: str | Path, which: str | None = None) -> TrainingPaths:
    """Save ``result``'s ``which`` weights (default ``config.save``) with their meta, and the history JSON."""
    which = which or result.which
    paths = TrainingPaths(Path(checkpoint))
    model = MLPClassifier(
        result.input_dim,
        result.config.hidden_dim,
        2,
        result.config.dropout,
        protein_model=result.protein_model,
        dna_model=result.dna_model,
    )
    model.load_state_dict(result.state_of(which))
    save_checkpoint(model, paths.checkpoint, result.checkpoint_meta(which))
    result.history.save(paths.history)
    return paths
