"""Train/test split of merged feature files, made once and shared by both embedders.

The split is defined by sample ids, not by rows, so the split made on the
FastESM2_650 features applies unchanged to the ESM2 3B features of the same
samples (:func:`apply_split`). Locked decisions it implements:

* the test set is a stratified random sample: ``floor(n * test_fraction + 1/2)``
  samples of each class (round half up, exact rational arithmetic), chosen with
  a fixed seed from the class's ids in sorted order, so file order never
  matters;
* it lives in its own directory (:class:`~virnucpro_core.paths.SplitPaths`) apart from the inputs;
  ``train.pt`` / ``test.pt`` are views: which input file and row hold each
  sample's features, never a copy of them (memory and disk stay flat at 2 M
  samples);
* the default split is sample-level, as in the original VirNucPro; frames and
  chunks of one genome can then sit on both sides, so every split measures
  that leakage. ``group_by="source"`` keeps each source record on one side;
  ``group_by="cluster"`` keeps each group of an explicit ``groups`` mapping
  (id → group, e.g. protein clusters from :mod:`virnucpro_core.split.clusters`) on
  one side, drawing whole groups across both classes (:func:`~virnucpro_core.split.ids._joint_group_level`);
* ``manifest.json`` lists every id and is byte-identical for identical inputs
  and parameters (no timestamps, fixed key order, sorted ids). An existing,
  different split in the same directory is refused unless ``overwrite=True``:
  the test set is made once.

Sample ids look like ``{record}_chunk_{k}F{f}`` / ``..._chunk_{k}R{f}``; the
source record is the part before the last ``_chunk_``, the chunk the part
before the trailing frame tag.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from virnucpro_core.defaults import GROUP_BY_CHOICES, TEST_FRACTION
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.custody import digest
from virnucpro_core.files import files_together
from virnucpro_core.paths import SplitPaths
from virnucpro_core.layouts.features import MergedRows, concat_rows, feature_info, open_rows, save_view
from virnucpro_core.split.ids import CLASS_LABELS, CLASS_NAMES, ROUNDING_RULE, min_class_size, source_of, stratified_ids
from virnucpro_core.split.records import InputFile, SplitManifest, SplitResult, SplitSummary
from virnucpro_core.split.summary import _sample_list, duplicate_rows, summarize

logger = logging.getLogger("virnucpro.split")

# The library also takes "cluster" with an explicit groups mapping (the acceptance suite's clustered split).
GROUP_BY_MODES = (*GROUP_BY_CHOICES, "cluster")

_SHOW = 5  # ids named in an error message
# Reads one input file of a split as (rows, sha256).
InputOpener = Callable[[Path], tuple[MergedRows, str]]


# --------------------------------------------------------------------------- merged files


def _safe_equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # tensors and other values without a plain ==
        return False


VOCAB_KEYS = {"protein_vocab": "protein-model vocabulary", "dna_vocab": "DNA-model vocabulary"}


def vocabulary_problems(infos: Sequence[Mapping], names: Sequence[str]) -> list[str]:
    """Where :func:`feature_info` of several inputs shows token ids from different vocabularies.

    A fingerprint on some inputs but not on others is a problem too: those were
    made by a version before fingerprints, when ESM token ids could be wrong.
    """
    problems = []
    for key, what in VOCAB_KEYS.items():
        values = [info.get(key) for info in infos]
        if len({str(v) for v in values}) > 1:
            shown = ", ".join(f"{name}: {v[:12] if v else 'none recorded'}" for name, v in zip(names, values, strict=True))
            problems.append(f"{what} fingerprints differ ({shown})")
    return problems


# --------------------------------------------------------------------------- loading inputs


def _as_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def open_input(path: Path) -> tuple[MergedRows, str]:
    """An input file's rows (left on disk) and its SHA-256: how a split reads an input unless told otherwise."""
    return open_rows(path), digest(path)


def _load_inputs(viral_paths, host_paths, open_input: InputOpener = open_input) -> tuple[MergedRows, list[InputFile]]:
    """Open every input file (rows stay on disk), check labels against roles and widths across files; raise once."""
    pooled: list[MergedRows] = []
    inputs: list[InputFile] = []
    problems: list[str] = []
    for role, paths in (("viral", _as_paths(viral_paths)), ("host", _as_paths(host_paths))):
        expected_label = CLASS_LABELS[role]
        for path in paths:
            features, digest = open_input(path)
            wrong = int((features.labels != expected_label).sum())
            if wrong:
                problems.append(
                    f"{path} was given as --{role} but {wrong} of its {len(features)} samples are labelled "
                    f"{1 - expected_label} ({CLASS_NAMES[1 - expected_label]}); expected all {expected_label}"
                )
            pooled.append(features)
            inputs.append(InputFile(role, path.name, digest, len(features)))
    widths = {features.width for features in pooled if len(features)}
    if len(widths) > 1:
        detail = ", ".join(f"{i.name}: {f.width}" for i, f in zip(inputs, pooled, strict=True))
        raise DimensionError(
            "the input feature files have different widths",
            expected="one feature set (all FastESM2_650 or all ESM2 3B files)",
            found=detail,
            fix="pass the viral and host files of one embedder together; split the other with --manifest",
        )
    infos = [feature_info(f.meta) for f in pooled]
    for key in ("protein_model", "dna_model", "size", "protein_weights", "dna_weights", "chunk_size", "protein_dtype"):
        names = {str(info[key]) for info in infos if info[key] is not None}
        if len(names) > 1:
            problems.append(f"{key} differs between files: {', '.join(sorted(names))}")
    problems += vocabulary_problems(infos, [i.name for i in inputs])
    seen: Counter[str] = Counter()
    for features in pooled:
        seen.update(features.ids)
    duplicates = sorted(i for i, c in seen.items() if c > 1)
    if duplicates:
        problems.append(
            f"{len(duplicates)} id(s) occur in more than one input file, e.g. {', '.join(duplicates[:_SHOW])}"
        )
    if problems:
        raise InputError(
            f"the input feature files cannot be split together ({len(problems)} problem(s))",
            found="; ".join(problems),
            fix="pass viral files with --viral and host files with --host, each sample once",
        )
    return concat_rows(pooled, _common_meta([f.meta for f in pooled])), inputs


def _common_meta(metas: Sequence[Mapping]) -> dict:
    """Meta entries every input agrees on, recursively (per-file entries such as file names are dropped)."""
    if not metas:
        return {}
    common = {}
    for key, value in metas[0].items():
        others = [m.get(key) for m in metas[1:] if isinstance(m, Mapping)]
        if len(others) != len(metas) - 1:
            continue
        if isinstance(value, Mapping) and all(isinstance(o, Mapping) for o in others):
            common[key] = _common_meta([value, *others])
        elif all(_safe_equal(o, value) for o in others):
            common[key] = value
    return common


def _check_class_sizes(features: Mapping, inputs: Sequence[InputFile], fraction: float, group_by: str) -> None:
    need = min_class_size(fraction)
    counts = Counter(features["labels"].tolist())
    for name, label in (("viral", 1), ("host", 0)):
        n = counts.get(label, 0)
        files = ", ".join(i.name for i in inputs if i.role == name) or "(no files)"
        if n < need:
            what = f"no {name} samples" if n == 0 else f"only {n} {name} sample(s)"
            raise InputError(
                f"{what} in {files}; expected at least {need}",
                expected=f"at least {need} {name} samples, so that {fraction:g} of them rounds to at least one test "
                "sample and leaves at least one for training",
                found=f"{n}",
                fix=f"pass the {name} feature files with --{name}",
            )
    if group_by == "source":
        sources: dict[int, set[str]] = {0: set(), 1: set()}
        for sample, label in zip(features["ids"], features["labels"].tolist(), strict=True):
            sources[label].add(source_of(sample))
        for name, label in (("viral", 1), ("host", 0)):
            if len(sources[label]) < 2:
                raise InputError(
                    f"group-by source needs at least 2 {name} source records; found {len(sources[label])}",
                    expected="several source records per class, so whole records can go to the test side",
                    found=", ".join(sorted(sources[label])[:_SHOW]),
                    fix="use --group-by sample (and report its leakage) or add records",
                )
        both = sorted(sources[0] & sources[1])
        if both:
            raise InputError(
                f"{len(both)} source record(s) have both viral and host samples, e.g. {', '.join(both[:_SHOW])}",
                expected="each source record in one class",
                fix="rename the records so host and viral ids differ, or use --group-by sample",
            )


# --------------------------------------------------------------------------- writing


def _write(
    features: MergedRows,
    manifest: SplitManifest,
    paths: SplitPaths,
    *,
    overwrite: bool,
    log: Callable[[str], None] | None,
) -> SplitResult:
    lengths_by_id = dict(zip(features["ids"], features["lengths"].tolist(), strict=True))
    summary = summarize(manifest, lengths_by_id)
    if paths.manifest.is_file():
        existing = paths.manifest.read_text(encoding="utf-8")
        if existing == manifest.to_json() and paths.train.is_file() and paths.test.is_file():
            if log:
                log(
                    f"reusing the split in {paths.root} (same inputs and parameters, split {manifest.split_id[:12]}); "
                    "pass --force to rebuild it"
                )
            saved = SplitSummary.load(paths.distribution) if paths.distribution.is_file() else None
            summary.duplicates = saved.duplicates if saved is not None else None
            if summary.duplicates is None:  # a split made before rows were compared: counted, not rewritten
                summary.duplicates = duplicate_rows(features, manifest)
            if saved is None:
                summary.save(paths.distribution)
            return SplitResult(paths, manifest, summary, reused=True)
        if not overwrite:
            try:
                old_id = json.loads(existing).get("split_id", "?")
            except ValueError:
                old_id = "?"
            raise InputError(
                f"{paths.root} already holds a different split (split {str(old_id)[:12]}); the test set is made once "
                "and reused for both models",
                expected=f"an empty directory, or the split made from the same inputs and parameters "
                f"(this one would be {manifest.split_id[:12]})",
                found=f"{paths.manifest}",
                fix=f"apply the existing split to other features with --manifest {paths.manifest}, choose another "
                "--out, or pass --force to replace it",
            )
        paths.manifest.unlink()  # an incomplete directory never looks finished
    summary.duplicates = duplicate_rows(features, manifest)
    if summary.duplicates.warning:
        (log or logger.warning)(f"warning: {summary.duplicates.warning}")
    split_meta = {
        "split_id": manifest.split_id,
        "manifest_sha256": manifest.sha256,
        "seed": manifest.seed,
        "test_fraction": manifest.test_fraction,
        "group_by": manifest.group_by,
    }
    # The four files are one result, staged beside and moved in together (manifest.json last): a full disk or a
    # kill leaves no half-written split, and no empty folder where there was none.
    with files_together(paths.root, paths.manifest.name) as staging:
        staged = SplitPaths(staging)
        for side, samples in (("train", manifest.train), ("test", manifest.test)):
            meta = dict(features["meta"])
            meta.update(
                protein_model=manifest.features.get("protein_model"),
                dna_model=manifest.features.get("dna_model"),
                dim=manifest.features.get("dim"),
                n=len(samples),
                label="both",
                split={**split_meta, "side": side},
            )
            target = staged.train if side == "train" else staged.test
            # A view: which input row each sample is, not a copy of the rows (memory and disk stay flat).
            save_view(features.take(features.positions(samples.ids), meta), target)
        summary.save(staged.distribution)
        manifest.save(staged.manifest)  # last: its presence marks a finished split
    return SplitResult(paths, manifest, summary)


def _validate_parameters(test_fraction: float, seed: int, group_by: str) -> None:
    problems = []
    if not isinstance(test_fraction, (int, float)) or not 0 < float(test_fraction) < 1:
        problems.append(f"test_fraction {test_fraction!r} is not between 0 and 1 (exclusive)")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        problems.append(f"seed {seed!r} is not a non-negative integer")
    if group_by not in GROUP_BY_MODES:
        problems.append(f"group_by {group_by!r} is not one of {', '.join(GROUP_BY_MODES)}")
    if problems:
        raise InputError(
            "invalid split parameters: " + "; ".join(problems),
            expected="test_fraction in (0, 1), e.g. 0.1; seed >= 0; group_by 'sample', 'source' or 'cluster'",
            fix="change the option(s) named above",
        )


def make_split(
    viral_paths: str | Path | Iterable[str | Path],
    host_paths: str | Path | Iterable[str | Path],
    *,
    test_fraction: float = TEST_FRACTION,
    seed: int = 42,
    group_by: str = "sample",
    out_dir: str | Path,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
    groups: Mapping[str, str] | None = None,
    open_input: InputOpener = open_input,
) -> SplitResult:
    """Split merged viral and host feature files into train and test, stratified by class.

    Args:
        viral_paths: merged feature file(s) of viral samples (labels 1).
        host_paths: merged feature file(s) of host samples (labels 0).
        test_fraction: share of each class in the test set, rounded half up per class.
        seed: the split depends only on the seed and the ids, not on file or row order.
        group_by: ``"sample"`` (VirNucPro's split; leakage is measured) or ``"source"``
            (whole source records per side; no leakage, fraction hit as closely as the
            record sizes allow) or ``"cluster"`` (whole groups of ``groups`` per side, drawn
            across both classes).
        groups: sample id → group, for ``group_by="cluster"``; must name every sample.
        out_dir: directory for ``train.pt``, ``test.pt``, ``manifest.json``, ``distribution.json``.
        overwrite: replace a different split already in ``out_dir`` (otherwise refused).
        log: where to say that an existing identical split was reused.
        open_input: reads an input file as ``(rows, sha256)`` (a run passes one that opens each file once).

    Returns:
        :class:`SplitResult` with the paths, manifest and summary.
    """
    _validate_parameters(test_fraction, seed, group_by)
    test_fraction = float(test_fraction)
    features, inputs = _load_inputs(viral_paths, host_paths, open_input)
    _check_class_sizes(features, inputs, test_fraction, group_by)
    ids = features["ids"]
    labels = features["labels"].tolist()
    labels_by_id = dict(zip(ids, labels, strict=True))
    if group_by == "cluster":
        _check_groups(ids, groups)
    test_ids = stratified_ids(ids, labels, test_fraction, seed, group_by=group_by, purpose="test", groups=groups)
    test_set = set(test_ids)
    train_ids = [i for i in ids if i not in test_set]
    manifest = SplitManifest(
        seed=seed,
        test_fraction=test_fraction,
        group_by=group_by,
        rounding_rule=ROUNDING_RULE,
        train=_sample_list(train_ids, labels_by_id),
        test=_sample_list(test_ids, labels_by_id),
        features=_features_entry(features),
        inputs=inputs,
    )
    return _write(features, manifest, SplitPaths(Path(out_dir)), overwrite=overwrite, log=log)


def _check_groups(ids: Sequence[str], groups: Mapping[str, str] | None) -> None:
    missing = [i for i in ids if i not in (groups or {})]
    if missing:
        raise InputError(
            f"group_by cluster: {len(missing)} of {len(ids)} samples have no group, e.g. {', '.join(missing[:_SHOW])}",
            expected="a group (cluster id) for every sample id of the features",
            fix="cluster the proteins of the same preprocess run the features came from",
        )


def _features_entry(features: MergedRows) -> dict:
    return {**feature_info(features.meta), "dim": features.width}


def apply_split(
    manifest: SplitManifest | str | Path,
    viral_paths: str | Path | Iterable[str | Path],
    host_paths: str | Path | Iterable[str | Path],
    *,
    out_dir: str | Path,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
    open_input: InputOpener = open_input,
) -> SplitResult:
    """Split another embedder's features of the same samples exactly as ``manifest`` says.

    The feature files must hold exactly the manifest's ids with the same labels;
    otherwise an :class:`InputError` names missing and unexpected ids and their counts.
    The new ``manifest.json`` keeps the ``split_id`` and records the new inputs and
    the source manifest's hash (``applied_from``).
    """
    source = manifest if isinstance(manifest, SplitManifest) else SplitManifest.load(manifest)
    features, inputs = _load_inputs(viral_paths, host_paths, open_input)
    expected = source.labels_by_id()
    found = dict(zip(features["ids"], features["labels"].tolist(), strict=True))
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    relabelled = sorted(i for i in set(expected) & set(found) if expected[i] != found[i])
    if missing or unexpected or relabelled:
        parts = []
        if missing:
            parts.append(f"{len(missing)} id(s) of the split are missing, e.g. {', '.join(missing[:_SHOW])}")
        if unexpected:
            parts.append(f"{len(unexpected)} id(s) are not in the split, e.g. {', '.join(unexpected[:_SHOW])}")
        if relabelled:
            parts.append(f"{len(relabelled)} id(s) have another label, e.g. {', '.join(relabelled[:_SHOW])}")
        raise InputError(
            "these feature files do not hold the samples of the split",
            expected=f"the {len(expected)} ids of split {source.split_id[:12]} ({len(source.train)} train, "
            f"{len(source.test)} test) with their labels",
            found=f"{len(found)} ids: " + "; ".join(parts),
            fix="extract both embedders' features from the same preprocess output, or make a new split",
        )
    applied = SplitManifest(
        seed=source.seed,
        test_fraction=source.test_fraction,
        group_by=source.group_by,
        rounding_rule=source.rounding_rule,
        train=source.train,
        test=source.test,
        features=_features_entry(features),
        inputs=inputs,
        applied_from=source.sha256,
        split_id=source.split_id,
    )
    return _write(features, applied, SplitPaths(Path(out_dir)), overwrite=overwrite, log=log)


def load_split(out_dir: str | Path, *, inputs_sha256: Sequence[str] | None = None) -> SplitResult:
    """A finished split read back from its directory, checked, nothing recomputed.

    The manifest's ids are checked against its ``split_id``
    (:meth:`SplitManifest.load`), ``train.pt``, ``test.pt`` and
    ``distribution.json`` must be there, and with ``inputs_sha256`` (the
    SHA-256 of the input files, viral then host, as they were given) the
    manifest must record exactly those inputs.
    """
    paths = SplitPaths(Path(out_dir))
    manifest = SplitManifest.load(paths.manifest)
    missing = [p.name for p in (paths.train, paths.test, paths.distribution) if not p.is_file()]
    if missing:
        raise InputError(f"the split in {paths.root} is incomplete: {', '.join(missing)} missing",
                         expected="train.pt, test.pt, distribution.json beside manifest.json",
                         fix="make it again (`--rebuild` in the acceptance suite, `virnucpro split --force`)")
    recorded = [i.sha256 for i in manifest.inputs]
    if inputs_sha256 is not None and recorded != list(inputs_sha256):
        raise InputError(f"the split in {paths.root} was made from other inputs than these",
                         expected=f"inputs with sha256 {', '.join(h[:12] for h in inputs_sha256)}",
                         found=f"{', '.join(h[:12] for h in recorded)} in {paths.manifest}",
                         fix="make it again (`--rebuild` in the acceptance suite, `virnucpro split --force`)")
    return SplitResult(paths, manifest, SplitSummary.load(paths.distribution), reused=True)
