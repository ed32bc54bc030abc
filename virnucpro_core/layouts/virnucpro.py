"""The original VirNucPro's feature files (and the FastESM2 fork's), read without re-extracting anything.

Layouts (the original's ``units.py`` / ``train.py`` / ``prediction.py``; the
fork writes the same ones with 1280-d protein vectors):

* DNABERT-S file: ``{'nucleotide': [ids], 'data': [{'label': id, 'mean_representation': [768 floats]}]}``
* ESM file: ``{'proteins': [ids], 'data': [tensor(2560)]}``
* merged file: ``{'ids': [...], 'data': tensor [n, 3328], 'labels': [0]}`` (host) or ``[1]`` (viral), one
  label for the whole file; without ``labels`` for prediction. Training reads every ``*.pt`` under
  ``data/data_merge/*/``: the folder ``viral.1.1_merged`` is viral, every other folder (one per RefSeq
  category) is host.

These files carry no provenance: which embedder made them, in which
precision, with which weights. A :class:`~virnucpro_core.layouts.declarations.Declaration`
is what the user states about them; imported sets record it as *declared*, never as verified. Their
protein lengths are unknown and recorded as 0 (``meta['lengths_known']`` is
false).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.input_files import folder_files, is_broken_link, path_problem, refuse_unreadable
from virnucpro_core.layouts.features import (
    CLASS_NAMES,
    FEATURE_KEYS,
    LABELS,
    ORIGINAL_DNABERT,
    ORIGINAL_ESM,
    ORIGINAL_MERGED,
    OURS_FEATURES,
    OURS_MERGED,
    REQUIRED_META,
    MergedFeatures,
    MergedRows,
    _describe,
    _describe_keys,
    _id_problems,
    concat_rows,
    detect_layout,
    feature_info,
    open_rows,
)
from virnucpro_core.pickles import torch_load
from virnucpro_core.layouts.declarations import Declaration, declaration_for, protein_model_of_width, widths_expected
from virnucpro_core.layouts.rows import Embeddings, data_sha256, id_list_sha256
from virnucpro_core.layouts.store import FileRows, RowView
from virnucpro_core.models.specs import SPECS, get_spec

log = logging.getLogger(__name__)

# The original's training data tree: one folder per RefSeq category; this one is viral.
ORIGINAL_VIRAL_FOLDER = "viral.1.1_merged"
MERGED_FOLDER_SUFFIX = "_merged"
_SHOW = 5  # ids named in an error message


def load_merged_file(path: str | os.PathLike) -> Any:
    """A merged feature file as ``torch.load`` gives it, tensors memory-mapped (how a file is read unless a
    caller that has it open already passes its own ``load``)."""
    return torch_load(path, "merged feature", mmap=True)


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
    """The ``*.pt`` files of a directory, sorted by name (as VirNucPro's training script lists them).

    Raises:
        InputError: an entry that is a dangling symlink or a loop, or a ``*.pt`` that cannot be read (each named):
            a folder input accounts for every entry, never leaving one out silently.
    """
    found, problems = folder_files(Path(directory), ".pt")
    refuse_unreadable(Path(directory), problems)
    return found


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
    folder's name without ``_merged`` (the RefSeq category). A link that leads nowhere, in the tree or in a
    folder, and a ``*.pt`` that cannot be read are one error naming each (nothing is left out silently).
    """
    directory = Path(directory)
    files = []
    problems = [f"{entry}: {path_problem(entry).what}" for entry in sorted(directory.iterdir())
                if is_broken_link(entry)]
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        label = "viral" if folder.name == ORIGINAL_VIRAL_FOLDER else "host"
        group = folder.name[: -len(MERGED_FOLDER_SUFFIX)] if folder.name.endswith(MERGED_FOLDER_SUFFIX) else folder.name
        found, unreadable = folder_files(folder, ".pt")
        files += [TreeFile(p, label, group) for p in found]
        problems += unreadable
    refuse_unreadable(directory, problems)
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


def import_merged(paths: Sequence[str | os.PathLike], label: str, declarations: Sequence[Declaration] = (),
                  **options: Any) -> MergedFeatures:
    """:func:`import_rows` with every row read into memory (small sets and tests)."""
    return import_rows(paths, label, declarations, **options).to_merged()


def import_rows(
    paths: Sequence[str | os.PathLike],
    label: str,
    declarations: Sequence[Declaration] = (),
    *,
    size: str = "full",
    groups: Mapping[Path, str] | None = None,
    option: str = "--declare",
    load: Callable[[Path], Any] = load_merged_file,
) -> MergedRows:
    """Merged files of one class (ours or VirNucPro's, one embedder) as one set whose rows stay in those files.

    Nothing is copied: the result points to each file's rows (save it with
    :func:`~virnucpro_core.layouts.features.save_view`), which are read one
    block at a time to check they are finite. VirNucPro's files get their
    provenance from ``declarations`` (the protein model is read off the width
    and must be declared); labels come from the file where it has them and
    must agree with ``label``. Our own files keep their meta.

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
    objs = [load(p) for p in paths]
    layouts = {detect_layout(o) for o in objs}
    if layouts == {OURS_MERGED}:
        return _join_ours(paths, objs, label)
    if layouts != {ORIGINAL_MERGED}:
        shown = ", ".join(f"{p.name}: {detect_layout(o)}" for p, o in zip(paths, objs, strict=True))
        raise InputError(f"the {label} feature files are not all in one merged layout",
                         expected=f"all {OURS_MERGED} or all {ORIGINAL_MERGED}", found=shown,
                         fix="convert VirNucPro's files with `virnucpro import` first, or pass one kind")
    files = [read_foreign_merged(p, obj=o) for p, o in zip(paths, objs, strict=True)]
    problems = []
    expected_label = LABELS[label]
    for f in files:
        if f.label is not None and f.label != expected_label:
            problems.append(f"{f.path} is labelled {f.label} ({CLASS_NAMES[f.label]}) but was given as {label}")
    widths = Counter(f.width for f in files)
    if len(widths) > 1:
        raise DimensionError(f"the {label} files have different widths, so they come from different embedders",
                             expected="one width: " + widths_expected(size),
                             found=", ".join(f"{f.path.name}: {f.width}" for f in files),
                             fix="pass each embedder's files separately")
    width = widths.most_common(1)[0][0]
    protein_model = protein_model_of_width(width, size)
    if protein_model is None:
        raise DimensionError(f"{files[0].path} is {width} wide, which no supported embedder pair gives",
                             expected=widths_expected(size), found=str(width),
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
    opened = [FileRows.open(f.path, obj) for f, obj in zip(files, objs, strict=True)]
    bad = []
    for f, rows in zip(files, opened, strict=True):
        # One read of each file: its rows checked and its bytes hashed for the view's content record.
        count = sum(int((~torch.isfinite(block)).any(dim=1).sum()) for _, block in rows.hashed_blocks())
        if count:
            bad.append(f"{f.path.name}: {count} row(s)")
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
    return MergedRows(ids, labels, torch.zeros(total, dtype=torch.int64), meta, RowView.whole(opened))


def _join_ours(paths: Sequence[Path], objs: Sequence[Any], label: str) -> MergedRows:
    parts = [open_rows(p, obj=o) for p, o in zip(paths, objs, strict=True)]
    expected = LABELS[label]
    wrong = [f"{p}: {int((part.labels != expected).sum())} sample(s) not {label}"
             for p, part in zip(paths, parts, strict=True) if bool((part.labels != expected).any())]
    if wrong:
        raise InputError(f"files given as {label} hold other samples", found="; ".join(wrong),
                         fix="pass viral files as viral and host files as host")
    if len(parts) == 1:
        return parts[0]
    widths = {part.width for part in parts}
    if len(widths) > 1:
        raise DimensionError(f"the {label} files have different widths",
                             found=", ".join(f"{p.name}: {part.width}" for p, part in zip(paths, parts, strict=True)),
                             fix="pass each embedder's files separately")
    ids = [i for part in parts for i in part.ids]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise InputError(f"{len(duplicates)} id(s) occur in more than one {label} file",
                         found=", ".join(duplicates[:_SHOW]), fix="pass each sample once")
    meta = dict(parts[0].meta)
    meta.update(n=len(ids), joined_files=[p.name for p in paths])
    return concat_rows(parts, meta)


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


def protein_model_of_file(path: str | os.PathLike, size: str, load: Callable[[Path], Any] = load_merged_file,
                          ) -> str | None:
    """The protein model a merged file (ours or VirNucPro's) comes from: our meta, else the width.

    Tensors are memory-mapped, so this reads little more than the file's header.
    """
    obj = load(Path(path))
    layout = detect_layout(obj)
    if layout == OURS_MERGED and isinstance(obj.get("meta"), Mapping):
        return feature_info(obj["meta"])["protein_model"]
    data = obj.get("data") if isinstance(obj, Mapping) else None
    if layout == ORIGINAL_MERGED and isinstance(data, torch.Tensor) and data.ndim == 2:
        return protein_model_of_width(int(data.shape[1]), size)
    return None


def plan_import(inputs: Mapping[str, Sequence[str | os.PathLike]], size: str,
                load: Callable[[Path], Any] = load_merged_file) -> dict[tuple[str, str], list[Path]]:
    """``(protein model, class) → files``: which merged inputs make which embedder's set of each class.

    ``load`` reads a file (a run passes its own, so each file is opened once).

    Raises:
        DimensionError: a file whose width (or meta) names no supported protein model.
    """
    plan: dict[tuple[str, str], list[Path]] = {}
    unknown = []
    for label, paths in inputs.items():
        for path in map(Path, paths):
            model = protein_model_of_file(path, size, load)
            if model is None:
                unknown.append(path.name)
            else:
                plan.setdefault((model, label), []).append(path)
    if unknown:
        raise DimensionError(f"{len(unknown)} merged file(s) come from no supported embedder pair",
                             expected="widths " + widths_expected(size),
                             found=", ".join(unknown[:_SHOW]) + (" ..." if len(unknown) > _SHOW else ""),
                             fix="pass merged DNABERT-S ‖ protein-model features" +
                             ("" if size == "tiny" else " (stand-in features need --size tiny)"))
    return dict(sorted(plan.items()))


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
            elif isinstance(data, torch.Tensor) and "data_sha256" in meta and not problems:
                found = data_sha256(data)
                if found != meta["data_sha256"]:
                    problems.append(f"'data' is not what was written: its vectors have sha256 {found[:16]}…, "
                                    f"{str(meta['data_sha256'])[:16]}… when extracted")
            if isinstance(ids, list) and "ids_sha256" in meta and not problems \
                    and id_list_sha256(ids) != meta["ids_sha256"]:
                problems.append("'ids' are not the ones extracted: renamed or reordered since (the vectors "
                                "no longer belong to the ids beside them)")
    if problems:
        raise InputError(
            f"{path} is not a valid feature file ({layout} layout found)",
            expected=f"the {OURS_FEATURES} layout: keys " + ", ".join(repr(k) for k in FEATURE_KEYS),
            found="; ".join(problems),
            fix="re-create it with `virnucpro extract`",
        )
    return Embeddings(list(obj["ids"]), obj["data"], obj["lengths"], obj["meta"])
