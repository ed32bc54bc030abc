"""Feature files on disk: ours, and how any feature file is told apart.

Our layouts (``torch.save`` of a dict, read with ``weights_only=True``):

* per-model file: ``{'ids': [str], 'data': float32 [n, dim], 'lengths': int64 [n], 'meta': {...}}``
* merged file: ``{'ids': [str], 'data': float32 [n, dna_dim + protein_dim],
  'labels': int64 [n] (viral 1, host 0), 'lengths': int64 [n] (protein lengths), 'meta': {...}}``

The original VirNucPro's layouts (its ``units.py`` / ``train.py`` /
``prediction.py``; the FastESM2 fork writes the same ones with 1280-d protein
vectors) are read by :mod:`virnucpro_core.layouts.virnucpro`:

* DNABERT-S file: ``{'nucleotide': [ids], 'data': [{'label': id, 'mean_representation': [768 floats]}]}``
* ESM file: ``{'proteins': [ids], 'data': [tensor(2560)]}``
* merged file: ``{'ids': [...], 'data': tensor [n, 3328], 'labels': [0]}`` (host) or ``[1]`` (viral), one
  label for the whole file; without ``labels`` for prediction. Training reads every ``*.pt`` under
  ``data/data_merge/*/``: the folder ``viral.1.1_merged`` is viral, every other folder (one per RefSeq
  category) is host.

Every file is read with ``torch.load(weights_only=True)``, so nothing in it runs.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from virnucpro_core.defaults import LABELS
from virnucpro_core.extract.embeddings import Embeddings
from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_torch_save

log = logging.getLogger(__name__)

FEATURE_KEYS = ("ids", "data", "lengths", "meta")
MERGED_KEYS = ("ids", "data", "labels", "lengths", "meta")
REQUIRED_META = ("model", "display_name", "weights", "size", "dtype", "pooling", "input_sha256", "dim", "n")
CLASS_NAMES = {label: name for name, label in LABELS.items()}


# Layout names, as messages and meta state them.
OURS_FEATURES = "virnucpro-accept per-model features"
OURS_VIEW = "virnucpro-accept feature view"
VIEW_FORMAT = "virnucpro-feature-view"
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
    if obj.get("format") == VIEW_FORMAT:
        return OURS_VIEW
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
        from virnucpro_core.layouts.virnucpro import load_original_features

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


@dataclass(init=False)
class MergedFeatures(Embeddings):
    """DNA ‖ protein features of one class, in the merged layout: :class:`Embeddings` with a label per row.

    Attributes:
        ids: sample ids (order of the protein file).
        data: float32 ``[n, dna_dim + protein_dim]``.
        labels: int64 ``[n]``; viral 1, host 0.
        lengths: int64 ``[n]`` protein lengths (0: not known, e.g. imported from VirNucPro's files).
        meta: label, dims, both inputs' paths and provenance.
    """

    labels: torch.Tensor | None = None
    KEYS: ClassVar[tuple[str, ...]] = MERGED_KEYS

    # Arguments in the merged layout's key order (labels before lengths), as every caller passes them.
    def __init__(self, ids: list[str], data: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor,
                 meta: dict[str, Any] | None = None) -> None:
        super().__init__(ids, data, lengths, {} if meta is None else meta)
        self.labels = labels

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
    """One of our merged feature files (or a view, its rows read into memory) as its checked dict.

    For small sets and tests; the streaming paths use :func:`open_rows`.
    """
    obj = torch_load(path, "merged feature", mmap=True)
    if detect_layout(obj) == OURS_VIEW:
        return open_rows(path, obj=obj).to_merged().to_dict()
    return check_merged(obj, str(path))


def load_merged(path: str | os.PathLike) -> MergedFeatures:
    """One of our merged feature files as :class:`MergedFeatures` (every problem listed at once)."""
    return MergedFeatures(**read_merged(path))


# --------------------------------------------------------------------------- rows streamed from disk, and views


@dataclass
class MergedRows:
    """A merged set whose ids, labels, lengths and meta are in memory and whose rows stay on disk.

    ``rows`` reads them on demand (:mod:`virnucpro_core.layouts.store`), so memory does
    not grow with the set. Opened from one of our merged files or a view file
    (:func:`open_rows`); written as a view (:func:`save_view`), never copied.
    """

    ids: list[str]
    labels: torch.Tensor
    lengths: torch.Tensor
    meta: dict[str, Any]
    rows: Any  # store.RowView
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def width(self) -> int:
        return int(self.rows.width)

    def __getitem__(self, key: str) -> Any:
        if key not in ("ids", "labels", "lengths", "meta"):
            raise KeyError(key)
        return getattr(self, key)

    def gather(self, positions: Any) -> torch.Tensor:
        """float32 rows at these positions, in the order given."""
        return self.rows.gather(positions)

    def take(self, positions: Any, meta: Mapping | None = None) -> MergedRows:
        """The subset at ``positions`` (in that order), sharing the files."""
        import numpy as np

        positions = np.asarray(positions, dtype=np.int64)
        index = torch.from_numpy(positions)
        return MergedRows([self.ids[i] for i in positions.tolist()], self.labels[index], self.lengths[index],
                          dict(self.meta if meta is None else meta), self.rows.take(positions))

    def positions(self, ids: list[str]) -> list[int]:
        """Positions of ``ids`` (all present) in this set."""
        where = {sample: i for i, sample in enumerate(self.ids)}
        return [where[i] for i in ids]

    def to_merged(self) -> MergedFeatures:
        """Every row in memory (small sets only)."""
        return MergedFeatures(list(self.ids), self.rows.materialize(), self.labels.clone(), self.lengths.clone(),
                              dict(self.meta))


def rows_in_memory(features: Mapping) -> MergedRows:
    """A checked merged dict (``check_merged``) as :class:`MergedRows` over its in-memory ``data``."""
    from virnucpro_core.layouts.store import RowView, TensorRows

    return MergedRows(list(features["ids"]), features["labels"], features["lengths"], dict(features["meta"]),
                      RowView.whole([TensorRows(features["data"])]))


def concat_rows(parts: list[MergedRows], meta: Mapping) -> MergedRows:
    """One set of several (rows of each part after the last)."""
    from virnucpro_core.layouts.store import RowView

    return MergedRows([i for p in parts for i in p.ids], torch.cat([p.labels for p in parts]),
                      torch.cat([p.lengths for p in parts]), dict(meta), RowView.concat([p.rows for p in parts]))


def open_rows(path: str | os.PathLike, *, obj: Any = None, check_finite: bool = True) -> MergedRows:
    """One of our merged files or views, rows left on disk; every problem of the small parts listed at once.

    A merged file's rows are scanned block by block for NaN or infinite values
    (``check_finite``); a view's were scanned when it was made, and its input
    files must still be where, and as large as, they were.
    """
    from virnucpro_core.layouts.store import FileRows, RowView

    path = Path(path)
    if obj is None:
        obj = torch_load(path, "merged feature", mmap=True)
    if detect_layout(obj) == OURS_VIEW:
        return _open_view(path, obj)
    data = obj.get("data") if isinstance(obj, Mapping) else None
    rows = None
    small = dict(obj) if isinstance(obj, Mapping) else obj
    if isinstance(data, torch.Tensor) and data.ndim == 2 and data.is_floating_point():
        rows = FileRows.open(path, obj)
        # check_merged sees one column per row: NaN where the row has a non-finite value (scanned a block at a
        # time), so every problem of the file is still named in one message.
        marks = torch.zeros((rows.n, 1), dtype=torch.float32)
        if check_finite:
            for start, block in rows.blocks():
                marks[start : start + len(block), 0][~torch.isfinite(block).all(dim=1)] = float("nan")
        small["data"] = marks
    checked = check_merged(small, str(path))
    return MergedRows(checked["ids"], checked["labels"], checked["lengths"], checked["meta"], RowView.whole([rows]),
                      path)


def save_view(rows: MergedRows, path: str | os.PathLike) -> Path:
    """Write ``rows`` as a view: ids, labels, lengths, meta and where each row is, not the rows themselves."""
    files = rows.rows.files
    if any(getattr(f, "path", None) is None for f in files):
        raise ValueError("a view can only point to rows in files")
    obj = {
        "format": VIEW_FORMAT,
        "version": 1,
        "inputs": [{"path": str(Path(f.path).resolve()), "bytes": Path(f.path).stat().st_size, "rows": f.n,
                    "width": f.width} for f in files],
        "file_index": torch.from_numpy(rows.rows.file_index.astype("int32")),
        "row_index": torch.from_numpy(rows.rows.row_index.astype("int64")),
        "ids": list(rows.ids),
        "labels": rows.labels.to(torch.int64),
        "lengths": rows.lengths.to(torch.int64),
        "meta": dict(rows.meta),
    }
    return atomic_torch_save(obj, Path(path))


def _open_view(path: Path, obj: Mapping) -> MergedRows:
    from virnucpro_core.layouts.store import FileRows, RowView

    problems = []
    files = []
    for entry in obj.get("inputs") or []:
        source = Path(entry.get("path", ""))
        if not source.is_file():
            problems.append(f"{source} is gone")
        elif source.stat().st_size != entry.get("bytes"):
            problems.append(f"{source} changed ({source.stat().st_size} bytes, was {entry.get('bytes')})")
        else:
            files.append(FileRows.open(source))
    if problems:
        raise InputError(f"{path} points to feature files that moved or changed since it was written",
                         expected="the merged files it was made from, unchanged and in place",
                         found="; ".join(problems),
                         fix="put them back, or make it again (e.g. rerun `virnucpro split` / `virnucpro import`)")
    checked = check_merged({"ids": obj["ids"], "data": torch.zeros((len(obj["ids"]), 0)), "labels": obj["labels"],
                            "lengths": obj["lengths"], "meta": obj["meta"]}, str(path))
    view = RowView(files, obj["file_index"].numpy().astype("int32"), obj["row_index"].numpy().astype("int64"))
    return MergedRows(checked["ids"], checked["labels"], checked["lengths"], checked["meta"], view, path)
