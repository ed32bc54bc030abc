"""MLP checkpoints on disk: detect, load, validate and save.

Checkpoints are plain dicts (``state_dict`` of tensors + ``meta`` of JSON
types) so ``torch.load(path, weights_only=True)`` reads them without running
pickled code. Their ``meta`` says which features the model expects, and
:func:`load_checkpoint` refuses a checkpoint whose width or protein model does
not match the pipeline that will feed it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.classifier import (
    CheckpointMeta,
    LoadedCheckpoint,
    MLPClassifier,
    describe_features,
    display_name,
    infer_protein_model,
)
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.files import atomic_torch_save

CHECKPOINT_FORMAT = "virnucpro-mlp-checkpoint"
CHECKPOINT_VERSION = 1


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
