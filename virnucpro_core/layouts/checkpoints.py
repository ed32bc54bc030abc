"""MLP checkpoints on disk: every layout the suite reads, and the one it writes.

Three layouts are accepted, all read with ``torch.load(weights_only=True)``, so
no code named in a file's pickle ever runs:

* ``virnucpro-accept`` — ours, written by :func:`save_checkpoint` (behind
  ``virnucpro train``): ``{'format': 'virnucpro-mlp-checkpoint', 'version': 1,
  'state_dict', 'meta'}``, tensors and JSON types only. ``meta`` says which
  features the model expects and how it was trained.
* ``original`` — the original VirNucPro's (Li-Jing-1997/VirNucPro; the
  published ``300_model.pth`` and ``500_model.pth``). Its ``train.py`` saves
  the whole module, ``torch.save(model, 'model.pth')``, with ``MLPClassifier``
  defined in the script itself, so the pickle names ``__main__.MLPClassifier``
  and torch's ``Linear``, ``BatchNorm1d`` and ``Dropout``; its
  ``prediction.py`` reads it with a plain ``torch.load`` (``weights_only=False``
  before torch 2.6), which runs whatever the pickle says. Here each of those
  four classes is replaced by an inert placeholder (:data:`PICKLED_MODULES`)
  that only keeps the pickled attributes; the state dict, BatchNorm's ``eps``
  and dropout's ``p`` are taken from that tree. The file holds no code, so
  the forward pass is the published one (hidden_layer → bn1 → ReLU → dropout
  → output_layer), which :class:`~virnucpro_core.models.classifier.MLPClassifier`
  computes on the same keys. The protein model follows from the width (3328 →
  ESM2 3B, 2048 → FastESM2_650) or from the caller. Files in torch's legacy
  (pre-1.6) format cannot be read this way and are refused with a way out.
* ``fastesm2-fork`` — the FastESM2 fork's (broadinstitute/virnucpro-broad,
  branch virnucpro-docker-fastesm2: ``save_checkpoint_with_metadata`` in
  ``train.py`` and ``scripts/train_fastesm.py``): ``{'epoch',
  'model_state_dict', 'optimizer_state_dict', 'best_loss', 'metadata'}`` where
  ``metadata`` holds ``checkpoint_version`` ('2.0.0'), ``model_type``
  ('fastesm650'), ``huggingface_model_id``, ``dna_dim``, ``protein_dim``,
  ``merged_dim``, ``input_dim``, ``hidden_dim``, ``num_class``,
  ``training_date`` and ``pytorch_version``. Its ``prediction.py`` loads it
  with ``weights_only=False``; here the metadata is checked against itself
  and against the tensors (widths of the real models, or of their tiny
  stand-ins for tests).

A file whose pickle names anything else (``posix.system``, ``builtins.eval``,
``subprocess.Popen``, another class) is refused, naming the global, before
``torch.load`` sees it; ``torch.load(weights_only=True)`` stays the gate for
anything the scan cannot name. Fields a foreign file cannot state (which
weights, epoch, chunk size, protein dtype) stay None, never guessed;
``meta.features['origin']`` says which layout the file came in.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.models.classifier import (
    CheckpointMeta,
    LoadedCheckpoint,
    MLPClassifier,
    describe_features,
    display_name,
    infer_protein_model,
)
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.files import atomic_torch_save
from virnucpro_core.input_files import NOT_FOUND, path_problem
from virnucpro_core.layouts.foreign_checkpoints import (
    FORK,
    ORIGINAL,
    OURS,
    PICKLED_MODULES,
    PickledMLP,
    protein_model_from_width,
    read_fork,
    read_original,
)
from virnucpro_core.pickles import (
    PickledObject,
    is_tensor_global,
    load_failure,
    load_weights_only,
    pickled_globals,
)

CHECKPOINT_FORMAT = "virnucpro-mlp-checkpoint"
CHECKPOINT_VERSION = 1

ACCEPTED = (
    "a checkpoint written by `virnucpro train`, an original VirNucPro model file (300_model.pth / "
    "500_model.pth: torch.save of the whole MLPClassifier) or a FastESM2 fork checkpoint (model_state_dict + "
    "metadata)"
)


# --------------------------------------------------------------------------- reading safely


def _read(path: Path, data: bytes) -> Any:
    """The object of ``path``, whose bytes are ``data``, read with ``torch.load(weights_only=True)`` after
    refusing unexpected globals.

    Raises:
        InputError: the pickle names other globals than tensors, containers and the original's four module
            classes (nothing of it is run); or torch cannot read it with ``weights_only=True``.
    """
    names, is_zip = pickled_globals(data)
    foreign = [name for name in names if name not in PICKLED_MODULES and not is_tensor_global(name)]
    if foreign:
        raise InputError(
            f"{path} cannot be loaded safely as a checkpoint: its pickle calls or builds "
            f"{', '.join(foreign)}, which no checkpoint layout needs; nothing of it was run",
            expected="a checkpoint whose pickle holds only tensors, containers and (original VirNucPro layout) the "
            "modules MLPClassifier, Linear, BatchNorm1d, Dropout",
            found="pickled globals " + ", ".join(foreign),
            fix="do not load it with torch.load(weights_only=False) or the original prediction.py either (that "
            "would run it); get the checkpoint from its source again, or retrain with `virnucpro train`",
        )
    if not is_zip and PickledMLP.pickled_name in names:
        raise InputError(
            f"{path} is an original VirNucPro whole-module checkpoint in torch's legacy format (torch < 1.6), "
            "which cannot be read without running its pickled code",
            expected="the zip format torch.save has written since torch 1.6",
            found="legacy torch.save format naming __main__.MLPClassifier",
            fix="re-save it with torch >= 1.6 in the environment that trained it, if you trust the file "
            "(`torch.save(torch.load(path, weights_only=False), new_path)`), or retrain with `virnucpro train`",
        )
    try:
        return load_weights_only(data, PICKLED_MODULES.values())
    except Exception as error:  # unpickling errors have many types
        found = load_failure(error) if is_zip or names else f"not a torch.save file ({load_failure(error)})"
        raise InputError(
            f"{path} cannot be loaded safely as a checkpoint",
            expected=f"{ACCEPTED}, readable with torch.load(weights_only=True)",
            found=found,
            fix="pass one of these layouts (a damaged or partly written file must be copied or trained again)",
        ) from error


def detect_layout(path: str | Path) -> str:
    """Which layout a checkpoint file is in (a key of :data:`~virnucpro_core.layouts.foreign_checkpoints.LAYOUTS`), read without running pickled code.

    Raises:
        InputError: no such file, an unsafe or unreadable pickle, or none of the three layouts.
    """
    path = _checked_path(path)
    return _layout_of(path, _read(path, path.read_bytes()))


def _checked_path(path: str | Path) -> Path:
    path = Path(path)
    kind = path_problem(path)
    if kind is NOT_FOUND:
        raise InputError(
            f"no checkpoint at {path}",
            expected="a .pt file written by `virnucpro train` (or an original VirNucPro or FastESM2 fork model file)",
            fix=f"train one with `virnucpro train --features SPLIT_DIR --out {path}` or check the path",
        )
    if kind is not None:  # a directory, a pipe, a link loop or dangling link, no permission: said as what it is
        raise kind.error(path, expected="a checkpoint file (.pt)")
    return path


def _layout_of(path: Path, payload: Any) -> str:
    if isinstance(payload, Mapping) and payload.get("format") == CHECKPOINT_FORMAT:
        return OURS
    if isinstance(payload, Mapping) and "model_state_dict" in payload:
        return FORK
    if isinstance(payload, PickledMLP):
        return ORIGINAL
    if isinstance(payload, Mapping):
        found = f"keys {sorted(map(str, payload))}"
    elif isinstance(payload, PickledObject):
        found = f"a pickled {payload.pickled_name} alone"
    else:
        found = type(payload).__name__
    raise InputError(
        f"{path} is not a VirNucPro MLP checkpoint",
        expected=f"a dict with format {CHECKPOINT_FORMAT!r}, 'state_dict' and 'meta' (from `virnucpro train`), "
        "a whole pickled __main__.MLPClassifier (original VirNucPro) or a dict with 'model_state_dict' and "
        "'metadata' (FastESM2 fork)",
        found=found,
        fix="pass a checkpoint written by `virnucpro train`, or one of the original's or the fork's model files",
    )


# --------------------------------------------------------------------------- ours: write and read


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


def _ours(path: Path, payload: Mapping) -> tuple[CheckpointMeta, Any, dict]:
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
    return CheckpointMeta.from_dict(meta_dict), payload.get("state_dict") or {}, {}


# --------------------------------------------------------------------------- loading, whatever the layout


def fit_checkpoint(
    loaded: LoadedCheckpoint, *, expected_input_dim: int | None = None, expected_protein_model: str | None = None
) -> LoadedCheckpoint:
    """What :func:`load_checkpoint` of ``loaded``'s file returns with these expectations (and no
    ``protein_widths``), made from the checkpoint loaded before: the file is not read again.

    Raises:
        DimensionError: as :func:`load_checkpoint`.
    """
    meta = loaded.meta
    if loaded.layout == ORIGINAL:  # it names no protein model: its width does (the real models'), else the caller
        protein_model, source = protein_model_from_width(
            loaded.path, ORIGINAL, meta.input_dim, expected_input_dim=expected_input_dim,
            expected_protein_model=expected_protein_model, protein_widths=None,
        )  # fmt: skip
        if (protein_model, source) != (meta.protein_model, meta.features.get("protein_model_from")):
            meta = replace(meta, protein_model=protein_model, features={**meta.features, "protein_model_from": source})
    check_fits(loaded.path, meta, expected_input_dim=expected_input_dim, expected_protein_model=expected_protein_model)
    if meta is loaded.meta:
        return loaded
    model = copy.copy(loaded.model)  # the same weights, named after the model the caller's features come from
    model.protein_model = meta.protein_model
    return replace(loaded, model=model, meta=meta)


def check_fits(path: str | Path, meta: CheckpointMeta, *, expected_input_dim: int | None = None,
               expected_protein_model: str | None = None) -> None:
    """Refuse a checkpoint (``meta``; ``path`` names it) trained on features of another width or embedder than
    the pipeline's, with a :class:`DimensionError` naming both."""
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


def load_checkpoint(
    path: str | Path,
    *,
    expected_input_dim: int | None = None,
    expected_protein_model: str | None = None,
    protein_widths: Mapping[int, str] | None = None,
    device: str | torch.device = "cpu",
) -> LoadedCheckpoint:
    """Rebuild the model of a checkpoint of any accepted layout and check it fits the pipeline that will feed it.

    Args:
        path: file written by :func:`save_checkpoint`, an original VirNucPro model file or a FastESM2 fork
            checkpoint (see the module docstring).
        expected_input_dim: width of the features this pipeline produces (2048 / 3328).
        expected_protein_model: protein embedder key of this pipeline (``'fastesm2_650'``, ``'esm2_3b'``); also
            names the protein model of an original-layout file whose width is not a real model's.
        protein_widths: input width → protein model, for original-layout files of widths other than the real
            models' 3328 (ESM2 3B) and 2048 (FastESM2_650), e.g. stand-in widths.
        device: where to put the model.

    Raises:
        InputError: missing file, unsafe or unreadable pickle, not a checkpoint, or missing/unexpected weights.
        DimensionError: the checkpoint was trained on features of another width or embedder, or its metadata
            contradicts its weights.
    """
    path = _checked_path(path)
    data = path.read_bytes()  # read once: scanned, loaded and hashed from memory
    payload = _read(path, data)
    layout = _layout_of(path, payload)
    if layout == OURS:
        meta, state, extra = _ours(path, payload)
    elif layout == ORIGINAL:
        meta, state, extra = read_original(path, payload, expected_input_dim=expected_input_dim,
                                       expected_protein_model=expected_protein_model,
                                       protein_widths=protein_widths)  # fmt: skip
    else:
        meta, state, extra = read_fork(path, payload)
    check_fits(path, meta, expected_input_dim=expected_input_dim, expected_protein_model=expected_protein_model)
    model = MLPClassifier(
        meta.input_dim,
        meta.hidden_dim,
        meta.num_classes,
        meta.dropout,
        protein_model=meta.protein_model,
        dna_model=meta.dna_model,
    )
    model.bn1.eps = extra.get("bn_eps", model.bn1.eps)
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
    return LoadedCheckpoint(model, meta, path, hashlib.sha256(data).hexdigest(), layout)
