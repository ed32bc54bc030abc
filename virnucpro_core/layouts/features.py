"""Feature files on disk: ours, the original VirNucPro's and the FastESM2 fork's.

Our layouts (``torch.save`` of a dict, read with ``weights_only=True``):

* per-model file: ``{'ids': [str], 'data': float32 [n, dim], 'lengths': int64 [n], 'meta': {...}}``
* merged file: ``{'ids': [str], 'data': float32 [n, dna_dim + protein_dim],
  'labels': int64 [n] (viral 1, host 0), 'lengths': int64 [n] (protein lengths), 'meta': {...}}``

The original VirNucPro's layouts (its ``units.py`` / ``train.py`` /
``prediction.py``); the FastESM2 fork writes the same ones with 1280-d protein
vectors:

* DNABERT-S file: ``{'nucleotide': [ids], 'data': [{'label': id, 'mean_representation': [768 floats]}]}``
* ESM file: ``{'proteins': [ids], 'data': [tensor(2560)]}``
* merged file: ``{'ids': [...], 'data': tensor [n, 3328], 'labels': [0]}`` (host) or ``[1]`` (viral), one
  label for the whole file; without ``labels`` for prediction. Training reads every ``*.pt`` under
  ``data/data_merge/*/``: the folder ``viral.1.1_merged`` is viral, every other folder (one per RefSeq
  category) is host.

Foreign files carry no provenance: which embedder made them, in which
precision, with which weights. :class:`Declaration` is what the user states
about them; imported files record it as *declared*, never as verified. Their
protein lengths are unknown and recorded as 0 (``meta['lengths_known']`` is
false). Every file is read with ``torch.load(weights_only=True)``, so nothing
in it runs.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.embeddings import Embeddings
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.files import atomic_torch_save
from virnucpro_core.models import DTYPES, SPECS, WEIGHTS, get_spec

log = logging.getLogger(__name__)

FEATURE_KEYS = ("ids", "data", "lengths", "meta")
MERGED_KEYS = ("ids", "data", "labels", "lengths", "meta")
REQUIRED_META = ("model", "display_name", "weights", "size", "dtype", "pooling", "input_sha256", "dim", "n")
LABELS = {"viral": 1, "host": 0}
CLASS_NAMES = {label: name for name, label in LABELS.items()}

# The original's training data tree: one folder per RefSeq category; this one is viral.
ORIGINAL_VIRAL_FOLDER = "viral.1.1_merged"
MERGED_FOLDER_SUFFIX = "_merged"

# Layout names, as messages and meta state them.
OURS_FEATURES = "virnucpro-accept per-model features"
OURS_MERGED = "virnucpro-accept merged features"
ORIGINAL_MERGED = "VirNucPro merged features (original or FastESM2 fork)"
ORIGINAL_DNABERT = "VirNucPro DNABERT-S features"
ORIGINAL_ESM = "VirNucPro ESM features (original or FastESM2 fork)"
UNKNOWN = "unknown"

_SHOW = 5  # ids named in an error message


# --------------------------------------------------------------------------- reading any file


def torch_load(path: str | os.PathLike, what: str, *, mmap: bool = False) -> Any:
    """``torch.load(weights_only=True)`` of a feature file, with one clear error for anything unreadable.

    ``mmap=True`` maps tensors instead of reading them (a file of the old
    non-zip format is then read whole). A file that asks the unpickler for
    anything but tensors and plain values is refused here, before it can run.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}", fix="run `virnucpro extract` / `virnucpro merge` first, "
                         "or fix the path")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as error:
            if mmap and "mmap" in str(error):  # legacy (non-zip) torch.save format
                return torch.load(path, map_location="cpu", weights_only=True)
            raise
    except Exception as error:  # pickle, zip and unpickler errors all mean "not a file we can read safely"
        first = str(error).splitlines()[0] if str(error) else ""
        unsafe = _unsafe_global(str(error))
        raise InputError(
            f"{path} is not a readable {what} file" + (" (it asks to run code, which is refused)" if unsafe else ""),
            expected="a torch.save'd dict of tensors, lists and plain values (virnucpro-accept's or VirNucPro's "
            "layouts), readable with torch.load(weights_only=True)",
            found=unsafe or f"{type(error).__name__}: {first}",
            fix="re-create it with `virnucpro extract` / `virnucpro merge`; never load a file of unknown origin "
            "with weights_only=False",
        ) from None


def _unsafe_global(message: str) -> str | None:
    """The object a refused pickle asked for, from torch's weights-only unpickler message."""
    import re

    found = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)", message, re.IGNORECASE)
    return f"the file asks the unpickler for {found.group(1)}, which is not tensors or plain data" if found else None


def detect_layout(obj: Any) -> str:
    """Which layout a loaded file's object has (one of the layout names above, or :data:`UNKNOWN`)."""
    if not isinstance(obj, Mapping):
        return UNKNOWN
    if "nucleotide" in obj and "data" in obj:
        return ORIGINAL_DNABERT
    if "proteins" in obj and "data" in obj:
        return ORIGINAL_ESM
    if "ids" in obj and "data" in obj:
        if "meta" in obj and "lengths" in obj:
            return OURS_MERGED if "labels" in obj else OURS_FEATURES
        if "meta" not in obj and "lengths" not in obj:
            return ORIGINAL_MERGED
    return UNKNOWN


def _describe_keys(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return "a dict with keys " + ", ".join(sorted(map(str, obj)))
    return type(obj).__name__


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


# --------------------------------------------------------------------------- our per-model files


def save_features(emb: Embeddings, path: str | os.PathLike) -> Path:
    """Write ``emb`` to ``path`` atomically in the per-model feature layout."""
    return atomic_torch_save(emb.to_dict(), Path(path))


def _id_problems(ids: Any) -> list[str]:
    if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids):
        return ["'ids' is not a list of strings"]
    duplicates = sorted(i for i, c in Counter(ids).items() if c > 1)
    if duplicates:
        return [f"{len(duplicates)} duplicate id(s): {', '.join(duplicates[:_SHOW])}"]
    return []


def load_features(path: str | os.PathLike) -> Embeddings:
    """Read and validate one of our per-model feature files (every problem listed at once).

    An original VirNucPro DNABERT-S / ESM file is named as such, with the
    command that converts it (:func:`load_original_features` reads it).
    """
    path = Path(path)
    obj = torch_load(path, "feature")
    layout = detect_layout(obj)
    if layout in (ORIGINAL_DNABERT, ORIGINAL_ESM):
        return load_original_features(path, obj=obj)
    problems = [f"missing key {k!r}" for k in FEATURE_KEYS if not isinstance(obj, Mapping) or k not in obj]
    if isinstance(obj, Mapping):
        ids, data, lengths, meta = obj.get("ids"), obj.get("data"), obj.get("lengths"), obj.get("meta")
        if ids is not None:
            problems += _id_problems(ids)
        n = len(ids) if isinstance(ids, (list, tuple)) else None
        if data is not None:
            if not isinstance(data, torch.Tensor) or data.dim() != 2:
                problems.append(f"'data' is not a 2-D tensor (found {_describe(data)})")
            elif data.dtype != torch.float32:
                problems.append(f"'data' is {data.dtype}, not torch.float32")
            elif n is not None and data.shape[0] != n:
                problems.append(f"'data' has {data.shape[0]} rows for {n} ids")
        if lengths is not None:
            if not isinstance(lengths, torch.Tensor) or lengths.dtype != torch.int64 or lengths.dim() != 1:
                problems.append("'lengths' is not a 1-D int64 tensor")
            elif n is not None and lengths.shape[0] != n:
                problems.append(f"'lengths' has {lengths.shape[0]} entries for {n} ids")
        if meta is not None and not isinstance(meta, dict):
            problems.append("'meta' is not a dict")
        elif isinstance(meta, dict):
            problems += [f"meta lacks {k!r}" for k in REQUIRED_META if k not in meta]
            if isinstance(data, torch.Tensor) and data.dim() == 2 and "dim" in meta and data.shape[1] != meta["dim"]:
                problems.append(f"'data' is {data.shape[1]} wide but meta says dim {meta['dim']}")
    if problems:
        raise InputError(
            f"{path} is not a valid feature file ({layout} layout found)",
            expected=f"the {OURS_FEATURES} layout: keys " + ", ".join(repr(k) for k in FEATURE_KEYS),
            found="; ".join(problems),
            fix="re-create it with `virnucpro extract`",
        )
    return Embeddings(list(obj["ids"]), obj["data"], obj["lengths"], obj["meta"])


# --------------------------------------------------------------------------- our merged files


@dataclass
class MergedFeatures:
    """DNA ‖ protein features of one class, in the merged layout.

    Attributes:
        ids: sample ids (order of the protein file).
        data: float32 ``[n, dna_dim + protein_dim]``.
        labels: int64 ``[n]``; viral 1, host 0.
        lengths: int64 ``[n]`` protein lengths (0: not known, e.g. imported from VirNucPro's files).
        meta: label, dims, both inputs' paths and provenance.
    """

    ids: list[str]
    data: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.data.shape[1])

    def to_dict(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "data": self.data, "labels": self.labels, "lengths": self.lengths,
                "meta": dict(self.meta)}

    def __getitem__(self, key: str) -> Any:
        if key not in MERGED_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def save(self, path: str | os.PathLike) -> Path:
        return save_merged(self, path)


def save_merged(merged: MergedFeatures | Mapping, path: str | os.PathLike) -> Path:
    """Write merged features (the dataclass or its dict) atomically."""
    obj = merged.to_dict() if isinstance(merged, MergedFeatures) else dict(merged)
    return atomic_torch_save(obj, Path(path))


def check_merged(obj: Any, where: str) -> dict:
    """Validate one merged-feature dict of our layout; raise one :class:`InputError` listing every problem.

    Returns the dict with ``data`` as float32 and ``labels`` / ``lengths`` as int64.
    """
    fix = "rebuild it with `virnucpro merge`"
    layout = detect_layout(obj)
    if layout == ORIGINAL_MERGED:
        raise InputError(
            f"{where} is a {ORIGINAL_MERGED} file, which says nothing about how it was made",
            expected=f"the {OURS_MERGED} layout (keys {', '.join(MERGED_KEYS)})",
            found=_describe_keys(obj),
            fix="convert it once with `virnucpro import DIR --declare MODEL:DTYPE --out OUT` (or give it to the "
            "acceptance suite with --declare-features); `virnucpro predict --features` reads it as it is",
        )
    if not isinstance(obj, Mapping) or any(key not in obj for key in MERGED_KEYS):
        missing = [key for key in MERGED_KEYS if not isinstance(obj, Mapping) or key not in obj]
        raise InputError(
            f"{where} is not a merged feature file ({layout} layout found): missing key(s) {', '.join(missing)}",
            expected=f"the {OURS_MERGED} layout: keys " + ", ".join(MERGED_KEYS),
            found=_describe_keys(obj),
            fix=fix,
        )
    problems: list[str] = []
    ids, data, labels, lengths, meta = (obj[key] for key in MERGED_KEYS)
    problems += _id_problems(ids)
    n = len(ids) if isinstance(ids, (list, tuple)) else 0
    if not isinstance(data, torch.Tensor) or data.ndim != 2 or not data.is_floating_point():
        problems.append(f"'data' must be a 2-d float tensor, found {_describe(data)}")
    elif data.shape[0] != n:
        problems.append(f"'data' has {data.shape[0]} rows but there are {n} ids")
    else:
        bad_rows = int((~torch.isfinite(data)).any(dim=1).sum())
        if bad_rows:
            problems.append(f"{bad_rows} row(s) of 'data' hold NaN or infinite values")
    for key, value in (("labels", labels), ("lengths", lengths)):
        if not isinstance(value, torch.Tensor) or value.ndim != 1 or value.is_floating_point():
            problems.append(f"'{key}' must be a 1-d integer tensor, found {_describe(value)}")
        elif value.shape[0] != n:
            problems.append(f"'{key}' has {value.shape[0]} entries but there are {n} ids")
    if isinstance(labels, torch.Tensor) and labels.ndim == 1 and not labels.is_floating_point():
        unknown = sorted(set(labels.tolist()) - set(CLASS_NAMES))
        if unknown:
            problems.append(f"'labels' holds {unknown}; expected only 1 (viral) and 0 (host)")
    if not isinstance(meta, Mapping):
        problems.append(f"'meta' must be a dict, found {type(meta).__name__}")
    if problems:
        raise InputError(
            f"{where} is not a usable merged feature file ({len(problems)} problem(s))",
            expected=f"the {OURS_MERGED} layout",
            found="; ".join(problems),
            fix=fix,
        )
    return {"ids": list(ids), "data": data.to(torch.float32), "labels": labels.to(torch.int64),
            "lengths": lengths.to(torch.int64), "meta": dict(meta)}


def read_merged(path: str | os.PathLike) -> dict:
    """One of our merged feature files as its checked dict (every problem listed at once)."""
    return check_merged(torch_load(path, "merged feature"), str(path))


def load_merged(path: str | os.PathLike) -> MergedFeatures:
    """One of our merged feature files as :class:`MergedFeatures` (every problem listed at once)."""
    return MergedFeatures(**read_merged(path))


# --------------------------------------------------------------------------- declared provenance


@dataclass(frozen=True)
class Declaration:
    """What the user states about foreign features: which protein model made them, in which dtype, with which
    weights. Recorded as declared, never as verified.

    The DNA half is DNABERT-S in every VirNucPro layout.
    """

    model: str
    dtype: str
    weights: str = "pretrained"

    OPTION_FORMAT = "MODEL:DTYPE[:WEIGHTS], e.g. esm2_3b:float32 or fastesm2_650:float16"

    @classmethod
    def parse(cls, text: str, *, option: str = "--declare") -> Declaration:
        parts = text.split(":")
        models = sorted(n for n, s in SPECS.items() if s.family == "esm")
        problems = []
        if len(parts) not in (2, 3):
            problems.append("not two or three ':'-separated parts")
        else:
            if parts[0] not in models:
                problems.append(f"model {parts[0]!r} is not one of {', '.join(models)}")
            if parts[1] not in DTYPES:
                problems.append(f"dtype {parts[1]!r} is not one of {', '.join(DTYPES)}")
            if len(parts) == 3 and parts[2] not in WEIGHTS:
                problems.append(f"weights {parts[2]!r} is not one of {', '.join(WEIGHTS)}")
        if problems:
            raise InputError(f"{option} {text!r} cannot be read", expected=cls.OPTION_FORMAT,
                             found="; ".join(problems), fix=f"e.g. {option} esm2_3b:float32")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.model}:{self.dtype}:{self.weights}"

    def entry(self, model: str, size: str, dtype: str | None, origin: str) -> dict[str, Any]:
        """A provenance entry in the shape of our feature meta, marked as declared."""
        spec = get_spec(model)
        return {
            "model": model,
            "display_name": spec.display_name,
            "weights": self.weights,
            "size": size,
            "dtype": dtype,
            "dim": spec.dim_for(size),
            "pooling": spec.pooling,
            "provenance": "declared",
            "declared_by": str(self),
            "origin": origin,
        }


# How each protein model's features were usually made, for the hint in a missing-declaration error.
_USUAL_DTYPE = {"esm2_3b": ("float32", "the original VirNucPro"),
                "fastesm2_650": ("float16", "the FastESM2 fork (fp16 extraction)")}


def declaration_for(declarations: Sequence[Declaration], protein_model: str, what: str,
                    option: str = "--declare") -> Declaration:
    """The declaration naming ``protein_model``; a clear error when there is none (or more than one)."""
    matching = [d for d in declarations if d.model == protein_model]
    if len(matching) == 1:
        return matching[0]
    spec = get_spec(protein_model)
    if not matching:
        raise InputError(
            f"{what} are {spec.display_name} features in VirNucPro's layout, which does not say how they were made",
            expected=f"{option} {protein_model}:DTYPE[:WEIGHTS] stating the precision (and weights: pretrained or "
            "random) they were extracted with",
            found="declarations: " + (", ".join(map(str, declarations)) or "none"),
            fix=f"add {option} {protein_model}:{_USUAL_DTYPE[protein_model][0]} if they came from "
            f"{_USUAL_DTYPE[protein_model][1]}, or the dtype you extracted them in; it is reported as declared",
        )
    raise InputError(f"{option} names {protein_model} {len(matching)} times",
                     found=", ".join(map(str, matching)), fix="give one declaration per protein model")


def protein_model_of_width(width: int, size: str) -> str | None:
    """The protein model whose width plus DNABERT-S's (at ``size``) is ``width``; None when none fits."""
    dna = get_spec("dnabert_s").dim_for(size)
    fits = [n for n, s in SPECS.items() if s.family == "esm" and dna + s.dim_for(size) == width]
    return fits[0] if len(fits) == 1 else None


def _widths_expected(size: str) -> str:
    dna = get_spec("dnabert_s").dim_for(size)
    return ", ".join(f"{dna + s.dim_for(size)} (DNABERT-S {dna} + {s.display_name} {s.dim_for(size)})"
                     for s in SPECS.values() if s.family == "esm")


# --------------------------------------------------------------------------- VirNucPro's merged files


@dataclass
class ForeignMerged:
    """One merged file in VirNucPro's layout, validated; ``data`` may be memory-mapped.

    ``label`` is the file's one label (0 host, 1 viral), or None without ``labels``.
    """

    path: Path
    ids: list[str]
    data: torch.Tensor
    label: int | None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def width(self) -> int:
        return int(self.data.shape[1])


def _file_label(labels: Any, n: int) -> tuple[int | None, str | None]:
    """The one label of a VirNucPro merged file (``[0]``/``[1]``, or one per row), or a problem."""
    if isinstance(labels, torch.Tensor):
        labels = labels.reshape(-1).tolist()
    if not isinstance(labels, (list, tuple)) or not labels:
        return None, f"'labels' is {type(labels).__name__}, not a list like [0] or [1]"
    values = set()
    for value in labels:
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or value not in (0, 1):
            return None, f"'labels' holds {value!r}; expected 0 (host) or 1 (viral)"
        values.add(int(value))
    if len(labels) not in (1, n):
        return None, f"'labels' has {len(labels)} entries for {n} rows (expected 1 for the whole file, or {n})"
    if len(values) > 1:
        return None, "'labels' mixes 0 and 1; VirNucPro's merged files hold one class each"
    return values.pop(), None


def read_foreign_merged(path: str | os.PathLike, *, obj: Any = None) -> ForeignMerged:
    """Read one merged file in VirNucPro's layout (tensors memory-mapped where the file allows)."""
    path = Path(path)
    if obj is None:
        obj = torch_load(path, "merged feature", mmap=True)
    layout = detect_layout(obj)
    if layout != ORIGINAL_MERGED:
        raise InputError(
            f"{path} is not a merged file in VirNucPro's layout ({layout} layout found)",
            expected=f"{ORIGINAL_MERGED}: keys 'ids', 'data' and optionally 'labels'",
            found=_describe_keys(obj),
            fix="pass VirNucPro's *_merged.pt files (data/data_merge/<category>_merged/*.pt)",
        )
    problems = _id_problems(obj["ids"])
    ids = list(obj["ids"]) if not problems else []
    data = obj["data"]
    if not isinstance(data, torch.Tensor) or data.ndim != 2 or not data.is_floating_point():
        problems.append(f"'data' must be a 2-d float tensor, found {_describe(data)}")
    elif not problems and data.shape[0] != len(ids):
        problems.append(f"'data' has {data.shape[0]} rows for {len(ids)} ids")
    label = None
    if "labels" in obj:
        label, problem = _file_label(obj["labels"], len(ids))
        if problem:
            problems.append(problem)
    if problems:
        raise InputError(f"{path} is not a usable VirNucPro merged file ({len(problems)} problem(s))",
                         expected=ORIGINAL_MERGED, found="; ".join(problems),
                         fix="re-create it with VirNucPro's merge_data, or re-extract with `virnucpro`")
    return ForeignMerged(path, ids, data, label)


def merged_files(directory: str | os.PathLike) -> list[Path]:
    """The ``*.pt`` files of a directory, sorted by name (as VirNucPro's training script lists them)."""
    directory = Path(directory)
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(".pt"))


def is_data_merge_tree(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` looks like VirNucPro's ``data/data_merge``: subfolders named ``*_merged``."""
    directory = Path(directory)
    return directory.is_dir() and any(p.is_dir() and p.name.endswith(MERGED_FOLDER_SUFFIX)
                                      for p in directory.iterdir())


@dataclass(frozen=True)
class TreeFile:
    """One file of a ``data_merge`` tree with the class its folder gives it and the folder (its group)."""

    path: Path
    label: str
    group: str


def scan_data_merge(directory: str | os.PathLike) -> list[TreeFile]:
    """Every ``*.pt`` under ``directory/*_merged/``, labelled by VirNucPro's folder rule.

    ``viral.1.1_merged`` is viral; every other folder is host; the group is the
    folder's name without ``_merged`` (the RefSeq category).
    """
    directory = Path(directory)
    files = []
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        label = "viral" if folder.name == ORIGINAL_VIRAL_FOLDER else "host"
        group = folder.name[: -len(MERGED_FOLDER_SUFFIX)] if folder.name.endswith(MERGED_FOLDER_SUFFIX) else folder.name
        files += [TreeFile(p, label, group) for p in merged_files(folder)]
    if not files:
        raise InputError(f"{directory} holds no *.pt files in its subfolders",
                         expected="VirNucPro's data/data_merge layout: <category>_merged/*.pt, with "
                         f"{ORIGINAL_VIRAL_FOLDER} for the viral class", fix="check the path")
    return files


@dataclass
class ImportSummary:
    """What :func:`import_merged` read: files, rows, groups, layout and the declaration applied."""

    files: list[dict[str, Any]]
    rows: int
    width: int
    protein_model: str
    layout: str
    declared: str | None
    groups: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_merged(
    paths: Sequence[str | os.PathLike],
    label: str,
    declarations: Sequence[Declaration] = (),
    *,
    size: str = "full",
    groups: Mapping[Path, str] | None = None,
    option: str = "--declare",
) -> MergedFeatures:
    """Merged files of one class (ours or VirNucPro's, one embedder) as one of our merged sets.

    VirNucPro's files are read one at a time, memory-mapped where possible, and
    copied into one preallocated tensor, so the peak is the result plus one
    file's pages. Their provenance comes from ``declarations`` (the protein
    model is read off the width and must be declared); labels come from the
    file where it has them and must agree with ``label``. Our own files keep
    their meta; one of ours alone is returned as it is.

    Raises:
        InputError: unreadable or mixed layouts, labels that contradict ``label``,
            duplicate ids, non-finite values, or a missing declaration.
        DimensionError: a width that is no DNABERT-S + protein-model width, or files of different widths.
    """
    if label not in LABELS:
        raise InputError(f"unknown class {label!r}", expected="viral or host")
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError(f"no {label} feature files", fix=f"pass the {label} merged files")
    objs = [torch_load(p, "merged feature", mmap=True) for p in paths]
    layouts = {detect_layout(o) for o in objs}
    if layouts == {OURS_MERGED}:
        return _join_ours(paths, objs, label)
    if layouts != {ORIGINAL_MERGED}:
        shown = ", ".join(f"{p.name}: {detect_layout(o)}" for p, o in zip(paths, objs, strict=True))
        raise InputError(f"the {label} feature files are not all in one merged layout",
                         expected=f"all {OURS_MERGED} or all {ORIGINAL_MERGED}", found=shown,
                         fix="convert VirNucPro's files with `virnucpro import` first, or pass one kind")
    files = [read_foreign_merged(p, obj=o) for p, o in zip(paths, objs, strict=True)]
    del objs
    problems = []
    expected_label = LABELS[label]
    for f in files:
        if f.label is not None and f.label != expected_label:
            problems.append(f"{f.path} is labelled {f.label} ({CLASS_NAMES[f.label]}) but was given as {label}")
    widths = Counter(f.width for f in files)
    if len(widths) > 1:
        raise DimensionError(f"the {label} files have different widths, so they come from different embedders",
                             expected="one width: " + _widths_expected(size),
                             found=", ".join(f"{f.path.name}: {f.width}" for f in files),
                             fix="pass each embedder's files separately")
    width = widths.most_common(1)[0][0]
    protein_model = protein_model_of_width(width, size)
    if protein_model is None:
        raise DimensionError(f"{files[0].path} is {width} wide, which no supported embedder pair gives",
                             expected=_widths_expected(size), found=str(width),
                             fix="pass DNABERT-S ‖ ESM2 3B (3328) or DNABERT-S ‖ FastESM2_650 (2048) features"
                             + (" (or drop --size tiny)" if size == "tiny" else ""))
    declared = declaration_for(declarations, protein_model, f"{label} inputs {files[0].path.name}...", option)
    seen: Counter[str] = Counter()
    for f in files:
        seen.update(f.ids)
    duplicates = sorted(i for i, c in seen.items() if c > 1)
    if duplicates:
        problems.append(f"{len(duplicates)} id(s) occur more than once, e.g. {', '.join(duplicates[:_SHOW])}")
    if problems:
        raise InputError(f"the {label} VirNucPro files cannot be imported ({len(problems)} problem(s))",
                         found="; ".join(problems), fix="pass viral files as viral and host files as host")

    total = sum(len(f) for f in files)
    data = torch.empty((total, width), dtype=torch.float32)
    row, bad = 0, []
    for f in files:
        block = data[row : row + len(f)]
        block.copy_(f.data)
        finite = torch.isfinite(block).all(dim=1)
        if not bool(finite.all()):
            bad.append(f"{f.path.name}: {int((~finite).sum())} row(s)")
        row += len(f)
    if bad:
        raise InputError("VirNucPro features with NaN or infinite values cannot be used",
                         expected="finite values in every row", found="; ".join(bad),
                         fix="re-extract those files (a GPU fault or float16 overflow writes non-finite vectors)")
    dna_model = "dnabert_s"
    dna_dim = get_spec(dna_model).dim_for(size)
    group_counts = Counter()
    for f in files:
        group_counts[(groups or {}).get(f.path, label)] += len(f)
    summary = ImportSummary(
        files=[{"name": f.path.name, "folder": f.path.parent.name, "rows": len(f),
                "group": (groups or {}).get(f.path, label)} for f in files],
        rows=total, width=width, protein_model=protein_model, layout=ORIGINAL_MERGED, declared=str(declared),
        groups=dict(sorted(group_counts.items())),
    )
    meta = {
        "label": label,
        "dim": width,
        "dna_dim": dna_dim,
        "protein_dim": width - dna_dim,
        "n": total,
        "size": size,
        "layout": ORIGINAL_MERGED,
        "provenance": "declared",
        "lengths_known": False,
        "dna": declared.entry(dna_model, size, None, ORIGINAL_MERGED),
        "protein": declared.entry(protein_model, size, declared.dtype, ORIGINAL_MERGED),
        "imported": summary.to_dict(),
    }
    ids = [i for f in files for i in f.ids]
    labels = torch.full((total,), expected_label, dtype=torch.int64)
    log.info("imported %d %s rows of %s features from %d VirNucPro file(s) (declared %s)", total, label,
             get_spec(protein_model).display_name, len(files), declared)
    return MergedFeatures(ids, data, labels, torch.zeros(total, dtype=torch.int64), meta)


def _join_ours(paths: Sequence[Path], objs: Sequence[Any], label: str) -> MergedFeatures:
    checked = [check_merged(o, str(p)) for p, o in zip(paths, objs, strict=True)]
    expected = LABELS[label]
    wrong = [f"{p}: {int((c['labels'] != expected).sum())} sample(s) not {label}"
             for p, c in zip(paths, checked, strict=True) if bool((c["labels"] != expected).any())]
    if wrong:
        raise InputError(f"files given as {label} hold other samples", found="; ".join(wrong),
                         fix="pass viral files as viral and host files as host")
    if len(checked) == 1:
        return MergedFeatures(**checked[0])
    widths = {c["data"].shape[1] for c in checked}
    if len(widths) > 1:
        raise DimensionError(f"the {label} files have different widths",
                             found=", ".join(f"{p.name}: {c['data'].shape[1]}" for p, c in zip(paths, checked,
                                                                                                 strict=True)),
                             fix="pass each embedder's files separately")
    ids = [i for c in checked for i in c["ids"]]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise InputError(f"{len(duplicates)} id(s) occur in more than one {label} file",
                         found=", ".join(duplicates[:_SHOW]), fix="pass each sample once")
    meta = dict(checked[0]["meta"])
    meta.update(n=len(ids), joined_files=[p.name for p in paths])
    return MergedFeatures(ids, torch.cat([c["data"] for c in checked]), torch.cat([c["labels"] for c in checked]),
                          torch.cat([c["lengths"] for c in checked]), meta)


# --------------------------------------------------------------------------- VirNucPro's per-model files


def load_original_features(path: str | os.PathLike, *, obj: Any = None) -> Embeddings:
    """A VirNucPro DNABERT-S or ESM feature file as :class:`Embeddings` (lengths unknown: 0).

    The model is read off the layout (``nucleotide`` → DNABERT-S) or the width
    (2560 → ESM2 3B, 1280 → FastESM2_650); the meta says the provenance is
    inferred from the layout, with weights, dtype and vocabulary unknown.
    """
    path = Path(path)
    if obj is None:
        obj = torch_load(path, "feature")
    layout = detect_layout(obj)
    problems: list[str] = []
    ids_key = "nucleotide" if layout == ORIGINAL_DNABERT else "proteins"
    ids = obj.get(ids_key) if isinstance(obj, Mapping) else None
    problems += _id_problems(ids)
    rows = obj.get("data") if isinstance(obj, Mapping) else None
    vectors: list[torch.Tensor] = []
    if not isinstance(rows, (list, tuple)):
        problems.append(f"'data' is {_describe(rows)}, not a list")
    else:
        for index, row in enumerate(rows):
            if layout == ORIGINAL_DNABERT:
                if not isinstance(row, Mapping) or "mean_representation" not in row:
                    problems.append(f"data[{index}] is not {{'label', 'mean_representation'}}")
                    break
                if isinstance(ids, (list, tuple)) and index < len(ids) and row.get("label") != ids[index]:
                    problems.append(f"data[{index}]['label'] is {row.get('label')!r}, not the id {ids[index]!r}")
                    break
                row = row["mean_representation"]
            vector = torch.as_tensor(row, dtype=torch.float32).reshape(-1) if isinstance(
                row, (list, tuple, torch.Tensor)) else None
            if vector is None:
                problems.append(f"data[{index}] is {_describe(row)}, not a vector")
                break
            vectors.append(vector)
        if isinstance(ids, (list, tuple)) and len(rows) != len(ids):
            problems.append(f"'data' has {len(rows)} rows for {len(ids)} ids")
        if len({v.numel() for v in vectors}) > 1:
            problems.append("rows of different widths")
    if layout not in (ORIGINAL_DNABERT, ORIGINAL_ESM):
        problems.insert(0, f"{layout} layout found")
    if problems:
        raise InputError(f"{path} is not a usable VirNucPro feature file ({len(problems)} problem(s))",
                         expected=f"{ORIGINAL_DNABERT} or {ORIGINAL_ESM}", found="; ".join(problems),
                         fix="re-create it with VirNucPro's extraction, or use `virnucpro extract`")
    data = torch.stack(vectors) if vectors else torch.empty((0, 0))
    width = int(data.shape[1]) if vectors else 0
    if layout == ORIGINAL_DNABERT:
        model = "dnabert_s"
        size = "full" if width == get_spec(model).dim else "tiny" if width == get_spec(model).dim_for("tiny") else None
    else:
        model, size = next(((n, sz) for sz in ("full", "tiny") for n, s in SPECS.items()
                            if s.family == "esm" and s.dim_for(sz) == width), (None, None))
    if model is None or size is None:
        raise DimensionError(f"{path} holds {width}-d vectors, which no supported model gives",
                             expected="DNABERT-S 768, ESM2 3B 2560 or FastESM2_650 1280", found=str(width),
                             fix="pass VirNucPro's *_DNABERT_S.pt and *_ESM.pt files")
    spec = get_spec(model)
    meta = {
        "model": model, "display_name": spec.display_name, "weights": "pretrained", "size": size, "dtype": None,
        "pooling": spec.pooling, "input_sha256": None, "dim": width, "n": len(vectors), "layout": layout,
        "provenance": "inferred from VirNucPro's layout and the width (weights and dtype not recorded)",
    }
    return Embeddings(list(ids), data, torch.zeros(len(vectors), dtype=torch.int64), meta)


# --------------------------------------------------------------------------- grouping inputs by embedder


def protein_model_of_file(path: str | os.PathLike, size: str) -> str | None:
    """The protein model a merged file (ours or VirNucPro's) comes from: our meta, else the width.

    Tensors are memory-mapped, so this reads little more than the file's header.
    """
    from virnucpro_core.split import feature_info

    obj = torch_load(path, "merged feature", mmap=True)
    layout = detect_layout(obj)
    if layout == OURS_MERGED and isinstance(obj.get("meta"), Mapping):
        return feature_info(obj["meta"])["protein_model"]
    data = obj.get("data") if isinstance(obj, Mapping) else None
    if layout == ORIGINAL_MERGED and isinstance(data, torch.Tensor) and data.ndim == 2:
        return protein_model_of_width(int(data.shape[1]), size)
    return None


def plan_import(inputs: Mapping[str, Sequence[str | os.PathLike]], size: str) -> dict[tuple[str, str], list[Path]]:
    """``(protein model, class) → files``: which merged inputs make which embedder's set of each class.

    Raises:
        DimensionError: a file whose width (or meta) names no supported protein model.
    """
    plan: dict[tuple[str, str], list[Path]] = {}
    unknown = []
    for label, paths in inputs.items():
        for path in map(Path, paths):
            model = protein_model_of_file(path, size)
            if model is None:
                unknown.append(path.name)
            else:
                plan.setdefault((model, label), []).append(path)
    if unknown:
        raise DimensionError(f"{len(unknown)} merged file(s) come from no supported embedder pair",
                             expected="widths " + _widths_expected(size),
                             found=", ".join(unknown[:_SHOW]) + (" ..." if len(unknown) > _SHOW else ""),
                             fix="pass merged DNABERT-S ‖ protein-model features" +
                             ("" if size == "tiny" else " (stand-in features need --size tiny)"))
    return dict(sorted(plan.items()))
