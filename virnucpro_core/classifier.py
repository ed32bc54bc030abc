"""VirNucPro's MLP classifier and its checkpoints.

The architecture is the original one (``train.py`` of VirNucPro): Linear(input →
512) → BatchNorm1d → ReLU → Dropout(0.5) → Linear(512 → 2), Xavier-uniform
weights. Layer names are kept (``hidden_layer``, ``bn1``, ``output_layer``) so
state dicts of the original models load too. Unlike the original, Linear biases
start at zero (a locked decision of this suite).

Checkpoints are plain dicts (``state_dict`` of tensors + ``meta`` of JSON
types) so ``torch.load(path, weights_only=True)`` reads them without running
pickled code. Their ``meta`` says which features the model expects, and
:func:`load_checkpoint` refuses a checkpoint whose width or protein model does
not match the pipeline that will feed it.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from importlib import metadata as _metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.files import atomic_torch_save
from virnucpro_core.models import SPECS

CHECKPOINT_FORMAT = "virnucpro-mlp-checkpoint"
CHECKPOINT_VERSION = 1

# Width and name of each embedder's vector in the merged features (DNA first, then protein),
# from the model registry so there is one source of truth.
FEATURE_WIDTHS: dict[str, int] = {name: spec.dim for name, spec in SPECS.items()}
DISPLAY_NAMES: dict[str, str] = {name: spec.display_name for name, spec in SPECS.items()}
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


# --------------------------------------------------------------------------- checkpoints


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
    1-based epoch those weights come from.
    """

    protein_model: str | None
    dna_model: str | None
    input_dim: int
    hidden_dim: int = 512
    num_classes: int = 2
    dropout: float = 0.5
    which: str = "final"
    epoch: int = 0
    seed: int | None = None
    split_manifest_sha256: str | None = None
    split_id: str | None = None
    features: dict = field(default_factory=dict)  # size and weights kind of the embedders (split.feature_info)
    hyperparameters: dict = field(default_factory=dict)
    train_samples: int | None = None
    val_samples: int | None = None
    versions: dict = field(default_factory=library_versions)
    created: str = field(default_factory=_now_iso)
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
    """A model rebuilt from a checkpoint (in eval mode) and the checkpoint's meta."""

    model: MLPClassifier
    meta: CheckpointMeta
    path: Path


def _plain(value: Any, where: str) -> Any:
    """Refuse meta values that weights_only loading could not read back (only JSON types pass)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"checkpoint {where} must hold only JSON types (str, int, float, bool, None, list, dict): {error}"
        ) from error


def non_finite_counts(state: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """Tensor name → number of NaN or infinite values, for the tensors that have any."""
    counts = {key: int((~torch.isfinite(value)).sum()) for key, value in state.items() if value.is_floating_point()}
    return {key: count for key, count in sorted(counts.items()) if count}


def save_checkpoint(model: MLPClassifier, path: str | Path, metadata: CheckpointMeta) -> Path:
    """Write ``{'format', 'version', 'state_dict', 'meta'}`` atomically; loadable with ``weights_only=True``.

    Raises:
        InputError: the model holds NaN or infinite values (diverged training): nothing is written.
    """
    bad = non_finite_counts(model.state_dict())
    if bad:
        raise InputError(
            f"training produced {sum(bad.values())} NaN or infinite weight value(s); {path} is not written",
            expected="finite weights and BatchNorm statistics",
            found=", ".join(f"{key}: {count}" for key, count in bad.items()),
            fix="check the features' scale (`virnucpro merge` output should hold embedding values of order 1) "
            "or lower the learning rate",
        )
    if metadata.input_dim != model.input_dim:
        raise DimensionError(
            "checkpoint meta and model disagree on the input width",
            expected=f"meta.input_dim == model.input_dim ({model.input_dim})",
            found=f"meta.input_dim {metadata.input_dim}",
            fix="build the meta from the model that is saved",
        )
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "state_dict": {key: value.detach().cpu().clone() for key, value in model.state_dict().items()},
        "meta": _plain(metadata.to_dict(), "meta"),
    }
    path = Path(path)
    return atomic_torch_save(payload, path)


def load_checkpoint(
    path: str | Path,
    *,
    expected_input_dim: int | None = None,
    expected_protein_model: str | None = None,
    device: str | torch.device = "cpu",
) -> LoadedCheckpoint:
    """Rebuild the model of a checkpoint and check it fits the pipeline that will feed it.

    Args:
        path: file written by :func:`save_checkpoint`.
        expected_input_dim: width of the features this pipeline produces (2048 / 3328).
        expected_protein_model: protein embedder key of this pipeline (``'fastesm2_650'``, ``'esm2_3b'``).
        device: where to put the model.

    Raises:
        InputError: missing file, not a checkpoint, or missing/unexpected weights.
        DimensionError: the checkpoint was trained on features of another width or embedder.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"no checkpoint at {path}",
            expected="a .pt file written by `virnucpro train`",
            fix=f"train one with `virnucpro train --features SPLIT_DIR --out {path}` or check the path",
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors have many types
        raise InputError(
            f"{path} cannot be loaded safely as a checkpoint",
            expected="a dict of tensors and plain values (torch.load(weights_only=True)), as `virnucpro train` writes",
            found=f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
            fix="the original VirNucPro's model.pth pickles the whole model and is not accepted; retrain with "
            "`virnucpro train`",
        ) from error
    if not isinstance(payload, Mapping) or payload.get("format") != CHECKPOINT_FORMAT:
        found = f"keys {sorted(map(str, payload))}" if isinstance(payload, Mapping) else type(payload).__name__
        raise InputError(
            f"{path} is not a VirNucPro MLP checkpoint",
            expected=f"a dict with format {CHECKPOINT_FORMAT!r}, 'state_dict' and 'meta'",
            found=found,
            fix="pass a checkpoint written by `virnucpro train`",
        )
    meta_dict = payload.get("meta")
    required = [f.name for f in fields(CheckpointMeta) if f.default is MISSING and f.default_factory is MISSING]
    absent = [name for name in required if not isinstance(meta_dict, Mapping) or name not in meta_dict]
    if absent:
        raise InputError(
            f"{path} has no usable 'meta': {', '.join(absent)} missing",
            expected=f"a checkpoint whose meta records {', '.join(required)} (as `virnucpro train` writes)",
            found=f"meta keys {sorted(map(str, meta_dict))}" if isinstance(meta_dict, Mapping) else "no meta",
            fix="retrain with `virnucpro train`; an edited or foreign checkpoint cannot say which features it fits",
        )
    meta = CheckpointMeta.from_dict(meta_dict)
    pipeline_model = expected_protein_model or (
        infer_protein_model(expected_input_dim, meta.dna_model) if expected_input_dim else None
    )
    if expected_input_dim is not None and meta.input_dim != expected_input_dim:
        raise DimensionError(
            f"checkpoint {path} was trained on {meta.input_dim}-d {display_name(meta.protein_model)} features; "
            f"this pipeline feeds {expected_input_dim}-d {display_name(pipeline_model)} features — retrain or pick "
            "the matching checkpoint",
            expected=describe_features(expected_input_dim, pipeline_model, meta.dna_model),
            found=meta.describe(),
            fix=f"retrain with `virnucpro train` on the {display_name(pipeline_model)} split, or load the checkpoint "
            f"trained on {display_name(pipeline_model)} features",
        )
    if expected_protein_model is not None and meta.protein_model not in (None, expected_protein_model):
        raise DimensionError(
            f"checkpoint {path} was trained on {display_name(meta.protein_model)} features; this pipeline feeds "
            f"{display_name(expected_protein_model)} features — retrain or pick the matching checkpoint",
            expected=display_name(expected_protein_model),
            found=display_name(meta.protein_model),
            fix="load the checkpoint trained on this pipeline's embedder",
        )
    model = MLPClassifier(
        meta.input_dim,
        meta.hidden_dim,
        meta.num_classes,
        meta.dropout,
        protein_model=meta.protein_model,
        dna_model=meta.dna_model,
    )
    state = payload.get("state_dict") or {}
    expected_shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    missing = sorted(set(expected_shapes) - set(state))
    unexpected = sorted(set(state) - set(expected_shapes))
    wrong = sorted(
        f"{key} {tuple(state[key].shape)} (expected {expected_shapes[key]})"
        for key in set(state) & set(expected_shapes)
        if tuple(state[key].shape) != expected_shapes[key]
    )
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(unexpected))
        if wrong:
            parts.append("wrong shape " + ", ".join(wrong))
        error_type = DimensionError if wrong and not missing and not unexpected else InputError
        raise error_type(
            f"the weights in {path} do not fit the MLP its meta describes "
            f"({meta.describe()}, hidden {meta.hidden_dim})",
            expected="weights " + ", ".join(f"{k} {v}" for k, v in expected_shapes.items()),
            found="; ".join(parts),
            fix="the file is damaged or was edited; retrain with `virnucpro train`",
        )
    bad = non_finite_counts(state)
    if bad:
        raise InputError(
            f"{path} holds {sum(bad.values())} NaN or infinite weight value(s): its predictions cannot be trusted",
            expected="finite weights and BatchNorm statistics",
            found=", ".join(f"{key}: {count}" for key, count in sorted(bad.items())),
            fix="retrain with `virnucpro train` (diverged training or features out of range, e.g. not scaled, "
            "give non-finite weights)",
        )
    model.load_state_dict(state)
    model.to(device)
    model.eval()
    return LoadedCheckpoint(model, meta, path)
