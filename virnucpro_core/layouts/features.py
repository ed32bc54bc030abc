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

import numpy as np
import torch

from virnucpro_core.custody import ContentRecord, changed, digests
from virnucpro_core.defaults import LABELS
from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_torch_save
from virnucpro_core.pickles import torch_load
from virnucpro_core.layouts.rows import Embeddings
from virnucpro_core.layouts.store import FileRows, RowView, TensorRows

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
    return MergedRows(list(features["ids"]), features["labels"], features["lengths"], dict(features["meta"]),
                      RowView.whole([TensorRows(features["data"])]))


def concat_rows(parts: list[MergedRows], meta: Mapping) -> MergedRows:
    """One set of several (rows of each part after the last)."""
    return MergedRows([i for p in parts for i in p.ids], torch.cat([p.labels for p in parts]),
                      torch.cat([p.lengths for p in parts]), dict(meta), RowView.concat([p.rows for p in parts]))


def open_rows(path: str | os.PathLike, *, obj: Any = None, check_finite: bool = True) -> MergedRows:
    """One of our merged files or views, rows left on disk; every problem of the small parts listed at once.

    A merged file's rows are scanned block by block for NaN or infinite values
    (``check_finite``); a view's were scanned when it was made, and its input
    files must still hold the content recorded then (:mod:`virnucpro_core.custody`),
    with every row index inside its file.
    """
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
        if check_finite:  # one read of the file: its rows checked and its bytes hashed (custody.digest is then free)
            for start, block in rows.hashed_blocks():
                marks[start : start + len(block), 0][~torch.isfinite(block).all(dim=1)] = float("nan")
        small["data"] = marks
    checked = check_merged(small, str(path))
    return MergedRows(checked["ids"], checked["labels"], checked["lengths"], checked["meta"], RowView.whole([rows]),
                      path)


VIEW_VERSION = 2  # 2: every input file's content record (version 1 trusted path and size)


def save_view(rows: MergedRows, path: str | os.PathLike) -> Path:
    """Write ``rows`` as a view: ids, labels, lengths, meta and where each row is, not the rows themselves.

    Each input file is recorded with its row count, its width and its content record (SHA-256 and stat
    record; :mod:`virnucpro_core.custody`) and its path both absolute and relative to the view's folder,
    so the view and its inputs can move together.
    """
    files = rows.rows.files
    if any(getattr(f, "path", None) is None for f in files):
        raise ValueError("a view can only point to rows in files")
    folder = Path(path).resolve().parent
    obj = {
        "format": VIEW_FORMAT,
        "version": VIEW_VERSION,
        "inputs": [{"path": str(Path(f.path).resolve()), "relative": os.path.relpath(Path(f.path).resolve(), folder),
                    "rows": f.n, "width": f.width, "content": ContentRecord.of(f.path).to_dict()} for f in files],
        "file_index": torch.from_numpy(rows.rows.file_index.astype("int32")),
        "row_index": torch.from_numpy(rows.rows.row_index.astype("int64")),
        "ids": list(rows.ids),
        "labels": rows.labels.to(torch.int64),
        "lengths": rows.lengths.to(torch.int64),
        "meta": dict(rows.meta),
    }
    return atomic_torch_save(obj, Path(path))


_REMAKE_VIEW = "make the view again from the files as they are now (rerun `virnucpro split` / `virnucpro import`; " \
    "the acceptance suite rebuilds its own), or put the recorded files back"


def _view_source(view: Path, entry: Mapping) -> Path:
    """Where a view's input file is: its absolute path, else its path relative to the view's folder."""
    recorded = Path(str(entry.get("path", "")))
    relative = entry.get("relative")
    if not recorded.is_absolute():
        return view.parent / recorded
    if not recorded.is_file() and isinstance(relative, str) and (view.parent / relative).is_file():
        return view.parent / relative
    return recorded


def _open_view(path: Path, obj: Mapping) -> MergedRows:
    """A view's rows, after checking that every input file holds what was recorded and every index is inside it."""
    if obj.get("version") != VIEW_VERSION:
        raise InputError(f"{path} is a feature view of an older version ({obj.get('version')}), which recorded only "
                         "the path and size of its input files",
                         expected=f"a view of version {VIEW_VERSION}, which records each input file's content",
                         found=f"version {obj.get('version')}", fix=_REMAKE_VIEW)
    inputs = list(obj.get("inputs") or [])
    problems, files = [], []
    # Files whose stat record changed are hashed first, several at once; each check below then reads nothing.
    records = [(_view_source(path, entry), ContentRecord.from_dict(entry.get("content"))) for entry in inputs]
    digests([source for source, record in records
             if record is not None and source.is_file() and not record.same_state(source.stat())])
    for entry in inputs:
        source = _view_source(path, entry)
        record = ContentRecord.from_dict(entry.get("content"))
        difference = "has no content record" if record is None else changed(source, record)
        if difference is not None:
            problems.append(f"{source} {difference}")
            continue
        rows = FileRows.open(source)
        if (rows.n, rows.width) != (entry.get("rows"), entry.get("width")):
            problems.append(f"{source} holds {rows.n} rows of width {rows.width}, the view recorded "
                            f"{entry.get('rows')} of width {entry.get('width')}")
        files.append(rows)
    if problems:
        raise InputError(f"{path} points to feature files that are not the ones it was made from",
                         expected="each input file with the content (SHA-256) recorded when the view was written",
                         found="; ".join(problems), fix=_REMAKE_VIEW)
    file_index = obj["file_index"].numpy().astype("int64")
    row_index = obj["row_index"].numpy().astype("int64")
    n = len(obj["ids"])
    if len(file_index) != n or len(row_index) != n:
        problems.append(f"{len(file_index)} file and {len(row_index)} row indices for {n} ids")
    elif n:
        outside = (file_index < 0) | (file_index >= len(files))
        if outside.any():
            problems.append(f"{int(outside.sum())} file index(es) outside 0..{len(files) - 1}, e.g. "
                            f"{int(file_index[outside][0])} for {obj['ids'][int(np.flatnonzero(outside)[0])]}")
        else:
            counts = np.array([f.n for f in files], dtype=np.int64)[file_index]
            outside = (row_index < 0) | (row_index >= counts)
            if outside.any():
                first = int(np.flatnonzero(outside)[0])
                problems.append(f"{int(outside.sum())} row index(es) outside their file, e.g. row "
                                f"{int(row_index[first])} of {files[file_index[first]].path} "
                                f"({counts[first]} rows) for {obj['ids'][first]}")
    if problems:
        raise InputError(f"{path} is not a usable feature view",
                         expected="one file index and one row index per id, each inside its file",
                         found="; ".join(problems), fix=_REMAKE_VIEW)
    checked = check_merged({"ids": obj["ids"], "data": torch.zeros((len(obj["ids"]), 0)), "labels": obj["labels"],
                            "lengths": obj["lengths"], "meta": obj["meta"]}, str(path))
    view = RowView(files, file_index.astype("int32"), row_index)
    return MergedRows(checked["ids"], checked["labels"], checked["lengths"], checked["meta"], view, path)


def feature_info(meta: Mapping) -> dict:
    """Which embedders made a merged file: model keys, size, weights kind, vocabulary fingerprints, the protein
    model's dtype and the chunk size (None where unknown).

    Reads the top-level ``protein_model`` / ``dna_model`` keys if present, else the
    ``meta['protein']`` / ``meta['dna']`` provenance that ``virnucpro merge`` writes
    (predictions carry the same two entries).
    """
    protein = meta.get("protein") if isinstance(meta.get("protein"), Mapping) else {}
    dna = meta.get("dna") if isinstance(meta.get("dna"), Mapping) else {}
    return {
        "protein_model": meta.get("protein_model") or protein.get("model"),
        "dna_model": meta.get("dna_model") or dna.get("model"),
        "size": meta.get("size") or protein.get("size"),
        "protein_weights": protein.get("weights"),
        "dna_weights": dna.get("weights"),
        "protein_vocab": protein.get("vocab_sha256"),
        "dna_vocab": dna.get("vocab_sha256"),
        "protein_dtype": protein.get("dtype"),
        "chunk_size": protein.get("chunk_size") or dna.get("chunk_size"),
    }
