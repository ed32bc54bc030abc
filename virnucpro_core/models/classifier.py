"""VirNucPro's MLP classifier and what a checkpoint says about it.

The architecture is the original one (``train.py`` of VirNucPro): Linear(input →
512) → BatchNorm1d → ReLU → Dropout(0.5) → Linear(512 → 2), Xavier-uniform
weights. Layer names are kept (``hidden_layer``, ``bn1``, ``output_layer``) so
state dicts of the original models load too. Unlike the original, Linear biases
start at zero (a locked decision of this suite).

:class:`CheckpointMeta` says which features a model expects and how it was
trained; :class:`LoadedCheckpoint` is a model rebuilt from a file. Reading and
writing checkpoint files (ours, the original VirNucPro's and the FastESM2
fork's) lives in :mod:`virnucpro_core.layouts.checkpoints`.
"""

from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata as _metadata
from pathlib import Path

import torch
from torch import nn

from virnucpro_core.defaults import DISPLAY_NAMES
from virnucpro_core.errors import DimensionError
from virnucpro_core.models.specs import SPECS

# Width and name of each embedder's vector in the merged features (DNA first, then protein),
# from the model registry so there is one source of truth.
FEATURE_WIDTHS: dict[str, int] = {name: spec.dim for name, spec in SPECS.items()}
DEFAULT_DNA_MODEL = "dnabert_s"


def display_name(model: str | None) -> str:
    """Human name of an embedder key (``'esm2_3b'`` → ``'ESM2 3B'``); unknown keys are returned as given."""
    if model is None:
        return "unknown-model"
    return DISPLAY_NAMES.get(model, model)


def infer_protein_model(input_dim: int, dna_model: str | None = DEFAULT_DNA_MODEL) -> str | None:
    """The protein model whose width plus the DNA model's gives ``input_dim`` (None if none does)."""
    dna_width = FEATURE_WIDTHS.get(dna_model or DEFAULT_DNA_MODEL, 0)
    for name, width in FEATURE_WIDTHS.items():
        if name != (dna_model or DEFAULT_DNA_MODEL) and dna_width + width == input_dim:
            return name
    return None


def describe_features(input_dim: int, protein_model: str | None = None, dna_model: str | None = None) -> str:
    """``'2048 features (DNABERT-S 768 + FastESM2_650 1280)'``; just ``'24 features'`` for unknown widths."""
    dna = dna_model or DEFAULT_DNA_MODEL
    protein = protein_model or infer_protein_model(input_dim, dna)
    if protein in FEATURE_WIDTHS and dna in FEATURE_WIDTHS:
        dna_width, protein_width = FEATURE_WIDTHS[dna], FEATURE_WIDTHS[protein]
        if dna_width + protein_width == input_dim:
            return (
                f"{input_dim} features ({display_name(dna)} {dna_width} + {display_name(protein)} {protein_width})"
            )
    if protein_model:
        return f"{input_dim} features ({display_name(protein_model)})"
    return f"{input_dim} features"


class MLPClassifier(nn.Module):
    """VirNucPro's classifier: one hidden layer with batch norm and dropout.

    Args:
        input_dim: width of the merged feature vectors (2048 for FastESM2_650, 3328 for ESM2 3B).
        hidden_dim: hidden units (512 in VirNucPro).
        num_classes: output logits (2: host = 0, viral = 1).
        dropout: dropout probability after the hidden layer (0.5 in VirNucPro).
        protein_model: embedder key the features came from; used in error messages only.
        dna_model: DNA embedder key; used in error messages only.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int = 512,
        num_classes: int = 2,
        dropout: float = 0.5,
        *,
        protein_model: str | None = None,
        dna_model: str | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("input_dim", input_dim), ("hidden_dim", hidden_dim), ("num_classes", num_classes)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise DimensionError(f"MLP {name} must be a positive integer, got {value!r}")
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.num_classes = num_classes
        self.dropout_p = float(dropout)
        self.protein_model = protein_model
        self.dna_model = dna_model
        self.hidden_layer = nn.Linear(input_dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(self.dropout_p)
        self.output_layer = nn.Linear(hidden_dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform Linear weights, zero biases; BatchNorm at its defaults."""
        for module in (self.hidden_layer, self.output_layer):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        self.bn1.reset_parameters()
        self.bn1.reset_running_stats()

    def describe_input(self) -> str:
        return describe_features(self.input_dim, self.protein_model, self.dna_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[batch, num_classes]`` for features ``[batch, input_dim]``."""
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            if x.ndim == 2:
                got = describe_features(int(x.shape[1]), None, self.dna_model)
            else:
                got = f"a tensor of shape {tuple(x.shape)}"
            raise DimensionError(
                f"MLP expects {self.describe_input()}, got {got}",
                expected=f"a [batch, {self.input_dim}] tensor",
                found=f"shape {tuple(x.shape)}",
                fix="feed the features of the embedder this model was built for, or build/load the matching model",
            )
        x = self.hidden_layer(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.dropout(x)
        return self.output_layer(x)


# --------------------------------------------------------------------------- checkpoint meta


def library_versions() -> dict[str, str]:
    """Versions that decide whether a checkpoint reproduces: python, torch, numpy, scikit-learn, this package."""
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for key, dist in (("numpy", "numpy"), ("sklearn", "scikit-learn"), ("virnucpro_accept", "virnucpro-accept")):
        try:
            versions[key] = _metadata.version(dist)
        except _metadata.PackageNotFoundError:
            versions[key] = "not installed"
    return versions


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class CheckpointMeta:
    """What a checkpoint was trained on and how; stored beside the weights.

    ``which`` is ``"final"`` (weights after the last epoch) or ``"best"``
    (weights of the epoch with the lowest validation loss); ``epoch`` is the
    1-based epoch those weights come from. Checkpoints of the original
    VirNucPro and of the FastESM2 fork cannot state some fields (``which``,
    ``epoch``, ``created``, ``versions``, the chunk size in ``features``):
    those are None (or absent), never guessed, and ``features['origin']``
    names the layout the file came in.
    """

    protein_model: str | None
    dna_model: str | None
    input_dim: int
    hidden_dim: int = 512
    num_classes: int = 2
    dropout: float = 0.5
    which: str | None = "final"
    epoch: int | None = 0
    seed: int | None = None
    split_manifest_sha256: str | None = None
    split_id: str | None = None
    features: dict = field(default_factory=dict)  # size and weights kind of the embedders (split.feature_info)
    hyperparameters: dict = field(default_factory=dict)
    train_samples: int | None = None
    val_samples: int | None = None
    versions: dict = field(default_factory=library_versions)
    lineage: dict | None = None  # split.lineage.Lineage: which split it was trained on (None: not recorded)
    code: dict | None = None  # code_identity.CodeIdentity of the training that made it
    created: str | None = field(default_factory=_now_iso)
    class_labels: dict = field(default_factory=lambda: {"host": 0, "viral": 1})

    def describe(self) -> str:
        return describe_features(self.input_dim, self.protein_model, self.dna_model)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> CheckpointMeta:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class LoadedCheckpoint:
    """A model rebuilt from a checkpoint (in eval mode), the checkpoint's meta, and, when known, the file's sha256
    and layout (a key of ``layouts.foreign_checkpoints.LAYOUTS``)."""

    model: MLPClassifier
    meta: CheckpointMeta
    path: Path
    sha256: str | None = None
    layout: str | None = None
