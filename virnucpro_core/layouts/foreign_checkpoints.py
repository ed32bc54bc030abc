"""The foreign MLP checkpoints: the original VirNucPro's whole-module pickle and the FastESM2 fork's dict.

Each reader turns a file's payload, already loaded by
:func:`virnucpro_core.layouts.checkpoints.load_checkpoint` with
``torch.load(weights_only=True)`` and the inert placeholders of
:data:`PICKLED_MODULES`, into our :class:`~virnucpro_core.models.classifier.CheckpointMeta`
and a state dict, every structural problem listed at once. What each layout
holds is told in :mod:`virnucpro_core.layouts.checkpoints`; the layouts' names
(:data:`LAYOUTS`) live here, the lowest module that reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.models.classifier import DEFAULT_DNA_MODEL, CheckpointMeta, describe_features
from virnucpro_core.models.specs import SPECS
from virnucpro_core.pickles import PickledObject

OURS = "virnucpro-accept"
ORIGINAL = "original"
FORK = "fastesm2-fork"
LAYOUTS: dict[str, str] = {
    OURS: "a checkpoint written by `virnucpro train`",
    ORIGINAL: "original VirNucPro whole-module checkpoint",
    FORK: "FastESM2 fork checkpoint (broadinstitute/virnucpro-broad)",
}
# The fork's metadata names its protein model; 'fastesm650' is the only value its code writes.
FORK_MODEL_TYPES = {"fastesm650": "fastesm2_650"}
FORK_METADATA = ("checkpoint_version", "model_type", "dna_dim", "protein_dim", "merged_dim", "input_dim",
                 "hidden_dim", "num_class")  # fmt: skip


# --------------------------------------------------------------------------- placeholders of the original's modules


class PickledMLP(PickledObject):
    pickled_name = "__main__.MLPClassifier"


class PickledLinear(PickledObject):
    pickled_name = "torch.nn.modules.linear.Linear"


class PickledBatchNorm1d(PickledObject):
    pickled_name = "torch.nn.modules.batchnorm.BatchNorm1d"


class PickledDropout(PickledObject):
    pickled_name = "torch.nn.modules.dropout.Dropout"


# The classes an original whole-module checkpoint names, each read as an inert placeholder.
PICKLED_MODULES: dict[str, type[PickledObject]] = {
    cls.pickled_name: cls for cls in (PickledMLP, PickledLinear, PickledBatchNorm1d, PickledDropout)
}


# --------------------------------------------------------------------------- the original's whole-module pickle

# Submodules of the original MLPClassifier (VirNucPro train.py) and the class each must be.
_ORIGINAL_MODULES = {"hidden_layer": PickledLinear, "bn1": PickledBatchNorm1d, "dropout": PickledDropout,
                     "output_layer": PickledLinear}  # fmt: skip


def _kind(value: Any) -> str:
    return value.pickled_name if isinstance(value, PickledObject) else type(value).__name__


def _tensors_of(module: PickledObject, prefix: str, state: dict, problems: list[str]) -> None:
    """Parameters and persistent buffers of a pickled module tree, under their state-dict names."""
    attributes = module.attributes
    where = prefix.rstrip(".") or "the model"
    skip = attributes.get("_non_persistent_buffers_set") or set()
    for kind in ("_parameters", "_buffers"):
        entries = attributes.get(kind)
        if not isinstance(entries, Mapping):
            problems.append(f"{where} has no {kind} dict")
            continue
        for name, value in entries.items():
            if isinstance(value, torch.Tensor) and not (kind == "_buffers" and name in skip):
                state[f"{prefix}{name}"] = value.detach()
            elif value is not None and not isinstance(value, torch.Tensor):
                problems.append(f"{prefix}{name} is a {_kind(value)}, not a tensor")
    children = attributes.get("_modules")
    if not isinstance(children, Mapping):
        problems.append(f"{where} has no _modules dict")
        return
    for name, child in children.items():
        if isinstance(child, PickledObject):
            _tensors_of(child, f"{prefix}{name}.", state, problems)


def read_original(path: Path, tree: PickledMLP, **guess: Any) -> tuple[CheckpointMeta, dict, dict]:
    """State dict and meta of the original's pickled module tree; every structural problem listed at once."""
    problems: list[str] = []
    children = tree.attributes.get("_modules")
    children = children if isinstance(children, Mapping) else {}
    for name, cls in _ORIGINAL_MODULES.items():
        if not isinstance(children.get(name), cls):
            problems.append(f"{name} is {_kind(children[name]) if name in children else 'missing'}, "
                            f"not {cls.pickled_name}")  # fmt: skip
    problems += [f"unexpected submodule {name} ({_kind(children[name])})" for name in children
                 if name not in _ORIGINAL_MODULES]  # fmt: skip
    state: dict[str, torch.Tensor] = {}
    _tensors_of(tree, "", state, problems)
    attrs = {name: getattr(children.get(name), "attributes", {}) for name in _ORIGINAL_MODULES}
    hidden, output = state.get("hidden_layer.weight"), state.get("output_layer.weight")
    if hidden is None or output is None or hidden.ndim != 2 or output.ndim != 2:
        problems.append("hidden_layer.weight and output_layer.weight are not both 2-D tensors")
    else:
        said = {("hidden_layer", "in_features"): hidden.shape[1], ("hidden_layer", "out_features"): hidden.shape[0],
                ("output_layer", "in_features"): output.shape[1], ("output_layer", "out_features"): output.shape[0],
                ("bn1", "num_features"): hidden.shape[0]}  # fmt: skip
        problems += [f"{module}.{attr} is {attrs[module][attr]!r} but its weights give {size}"
                     for (module, attr), size in said.items() if attrs[module].get(attr, size) != size]  # fmt: skip
    problems += [f"bn1.{attr} is {attrs['bn1'][attr]!r}, not True" for attr in ("affine", "track_running_stats")
                 if attrs["bn1"].get(attr, True) is not True]  # fmt: skip
    # The two numbers of the forward pass that are not tensors: BatchNorm's eps (used in eval) and dropout p.
    for module, attr, default, top in (("bn1", "eps", 1e-5, 1.0), ("dropout", "p", 0.5, 1.0)):
        value = attrs[module].get(attr, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
            problems.append(f"{module}.{attr} is {value!r}, not a number in [0, {top}]")
    if problems:
        raise InputError(
            f"{path} is a pickled __main__.MLPClassifier but not the original VirNucPro MLP",
            expected="submodules hidden_layer (Linear), bn1 (BatchNorm1d), dropout (Dropout), output_layer "
            "(Linear) whose attributes agree with their weights",
            found="; ".join(problems),
            fix="pass the published 300_model.pth / 500_model.pth unchanged, or retrain with `virnucpro train`",
        )
    input_dim, hidden_dim, num_classes = int(hidden.shape[1]), int(hidden.shape[0]), int(output.shape[0])
    protein_model, source = protein_model_from_width(path, ORIGINAL, input_dim, **guess)
    features = {"origin": LAYOUTS[ORIGINAL], "layout": ORIGINAL, "protein_model_from": source,
                "chunk_size": None, "protein_dtype": None}  # fmt: skip
    dropout = float(attrs["dropout"].get("p", 0.5))
    meta = CheckpointMeta(protein_model, DEFAULT_DNA_MODEL, input_dim, hidden_dim, num_classes, dropout,
                          which=None, epoch=None, features=features, versions={}, created=None)  # fmt: skip
    return meta, state, {"bn_eps": float(attrs["bn1"].get("eps", 1e-5))}


def protein_model_from_width(
    path: Path,
    layout: str,
    input_dim: int,
    *,
    expected_input_dim: int | None,
    expected_protein_model: str | None,
    protein_widths: Mapping[int, str] | None,
) -> tuple[str | None, str | None]:
    """The protein model of a checkpoint that does not name it: from its width, else from the caller."""
    dna_width = SPECS[DEFAULT_DNA_MODEL].dim
    widths = {dna_width + spec.dim: name for name, spec in SPECS.items() if spec.family == "esm"}
    widths.update(protein_widths or {})
    if input_dim in widths:
        return widths[input_dim], f"its {input_dim}-d input width"
    if expected_protein_model:
        return expected_protein_model, "named by the caller"
    if expected_input_dim is not None and expected_input_dim != input_dim:
        return None, None  # the pipeline's width check names both widths
    raise DimensionError(
        f"{path} ({LAYOUTS[layout]}) does not name its protein model, and its {input_dim}-d input fits none",
        expected=" or ".join(describe_features(width, name) for width, name in sorted(widths.items())),
        found=f"{input_dim} features",
        fix="pass the published 300_model.pth / 500_model.pth or another model trained on DNABERT-S + ESM2 3B or "
        "FastESM2_650 features (library callers may name the model with expected_protein_model=...)",
    )


# --------------------------------------------------------------------------- the FastESM2 fork's dict


def read_fork(path: Path, payload: Mapping) -> tuple[CheckpointMeta, dict, dict]:
    """Meta of the fork's checkpoint, its metadata checked against itself and against the weights."""
    metadata, state = payload.get("metadata"), payload.get("model_state_dict")
    missing: list[str] = []
    if not isinstance(metadata, Mapping):
        missing.append("no 'metadata' dict (the fork's own prediction.py refuses such files too)")
        metadata = {}
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        missing.append("'model_state_dict' is not a dict of tensors")
        state = {}
    missing += [f"metadata[{key!r}] missing" for key in FORK_METADATA if key not in metadata]
    dims = {key: metadata[key] for key in FORK_METADATA[2:] if key in metadata}
    missing += [f"metadata[{k!r}] is {v!r}, not an integer" for k, v in dims.items()
                if isinstance(v, bool) or not isinstance(v, int)]  # fmt: skip
    version, model_type = metadata.get("checkpoint_version"), metadata.get("model_type")
    if "checkpoint_version" in metadata and str(version).split(".")[0] != "2":
        missing.append(f"checkpoint_version {version!r} (this loader knows the fork's version 2.x)")
    if "model_type" in metadata and model_type not in FORK_MODEL_TYPES:
        missing.append(f"model_type {model_type!r} (known: {', '.join(map(repr, FORK_MODEL_TYPES))})")
    if missing:
        raise InputError(
            f"{path} looks like a FastESM2 fork checkpoint but cannot be read as one",
            expected="{'epoch', 'model_state_dict', 'optimizer_state_dict', 'best_loss', 'metadata'} with metadata "
            + ", ".join(FORK_METADATA) + " (as the fork's save_checkpoint_with_metadata writes)",
            found="; ".join(missing),
            fix="pass the file the fork's training wrote, unchanged, or retrain with `virnucpro train`",
        )
    protein_model = FORK_MODEL_TYPES[model_type]
    protein, dna = SPECS[protein_model], SPECS[DEFAULT_DNA_MODEL]
    clash: list[str] = []
    if dims["dna_dim"] + dims["protein_dim"] != dims["merged_dim"]:
        clash.append(f"dna_dim {dims['dna_dim']} + protein_dim {dims['protein_dim']} != merged_dim "
                     f"{dims['merged_dim']}")  # fmt: skip
    if dims["input_dim"] != dims["merged_dim"]:
        clash.append(f"input_dim {dims['input_dim']} != merged_dim {dims['merged_dim']}")
    for key, spec in (("protein_dim", protein), ("dna_dim", dna)):  # the real model's width, or its stand-in's
        if dims[key] not in (spec.dim, spec.dim_for("tiny")):
            clash.append(f"{key} {dims[key]} is not {spec.display_name}'s {spec.dim} (nor its tiny stand-in's "
                         f"{spec.dim_for('tiny')})")  # fmt: skip
    hidden, output = state.get("hidden_layer.weight"), state.get("output_layer.weight")
    if hidden is not None and tuple(hidden.shape) != (dims["hidden_dim"], dims["input_dim"]):
        clash.append(f"hidden_layer.weight is {tuple(hidden.shape)}, metadata says "
                     f"({dims['hidden_dim']}, {dims['input_dim']}) (hidden_dim, input_dim)")  # fmt: skip
    if output is not None and int(output.shape[0]) != dims["num_class"]:
        clash.append(f"output_layer.weight has {int(output.shape[0])} rows, metadata says num_class "
                     f"{dims['num_class']}")  # fmt: skip
    if clash:
        raise DimensionError(
            f"the metadata of {path} (FastESM2 fork checkpoint) contradicts itself or its weights",
            expected="metadata dims that add up and match the tensors of model_state_dict",
            found="; ".join(clash),
            fix="the file was edited or assembled from different runs; use the file the fork's training wrote, "
            "or retrain with `virnucpro train`",
        )
    scalars = {key: payload.get(key) for key in ("epoch", "best_loss")}
    features = {
        "origin": LAYOUTS[FORK], "layout": FORK, "checkpoint_version": str(version), "model_type": model_type,
        "huggingface_model_id": hub_id if isinstance(hub_id := metadata.get("huggingface_model_id"), str) else None,
        "chunk_size": None, "protein_dtype": None,
        **{f"fork_{k}": v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
           for k, v in scalars.items()},
    }  # fmt: skip
    date, torch_version = metadata.get("training_date"), metadata.get("pytorch_version")
    meta = CheckpointMeta(
        protein_model, DEFAULT_DNA_MODEL, dims["input_dim"], dims["hidden_dim"], dims["num_class"], 0.5,
        which=None, epoch=None, features=features, created=date if isinstance(date, str) else None,
        versions={"torch": torch_version} if isinstance(torch_version, str) else {},
    )  # fmt: skip
    return meta, dict(state), {}
