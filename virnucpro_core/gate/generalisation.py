"""Evidence beside the gate: other splits, per-group accuracy, calibration and verdicts per chunk and record.

The locked split (stratified 10 % per class, sample-level, seeded) alone gates.
Everything here is evidence, built from the same merged features (only the
MLPs are retrained, with the same hyperparameters) and reported in the
"Generalisation" and following sections; it never changes the verdict or the
exit status (:mod:`virnucpro_core.gate.verdict` ignores it, and a failure here is
reported in its section, not as a broken stage).

Splits, one row each:

* ``locked`` — the gated split.
* ``source`` — source-disjoint: every input record wholly in train or test,
  stratified by class, ~10 % per class (:func:`split.make_split` with
  ``group_by="source"``).
* ``cluster`` — similarity-clustered: the samples' proteins clustered with
  MMseqs2 (:mod:`virnucpro_core.split.clusters`), frames of a chunk joined, whole
  groups per side. Skipped, with the reason and the install command, when
  ``mmseqs`` is missing or the inputs carry no protein sequences.

Each row's leakage: test samples whose source record / chunk also has training
samples, test proteins with an identical sequence in training, and the highest
identity of a test protein to any training protein (``mmseqs easy-search``).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from virnucpro_core.defaults import EMBEDDER_NAMES
from virnucpro_core.errors import InputError, VirNucProError
from virnucpro_core.evaluate import bootstrap
from virnucpro_core.files import atomic_write_text, sha256_text
from virnucpro_core.split.ids import chunk_of, source_of
from virnucpro_core.gate.splits import split_stage
from virnucpro_core.gate.stages import RunFiles, StageCache, StageJob, stage_code
from virnucpro_core.compare.comparison import compare
from virnucpro_core.evaluate.aggregation import CHUNK_RULE, aggregate_chunks, aggregate_records, labels_per_group
from virnucpro_core.evaluate.calibration import calibrate
from virnucpro_core.evaluate.metrics import FRAME_RULE, evaluate
from virnucpro_core.predict.scoring import predict_features
from virnucpro_core.split.clusters import INSTALL_HINT, cluster_proteins, cross_identity, linked_groups, mmseqs_missing

log = logging.getLogger("virnucpro.generalisation")

SPLIT_TITLES = {
    "locked": "locked: stratified 10 % per class, sample-level (VirNucPro's split) — gated",
    "source": "source-disjoint: whole records per side, ~10 % per class — evidence",
    "cluster": "similarity-clustered: whole MMseqs2 protein clusters per side — evidence",
}
N_BOOTSTRAP = 1000


@dataclass
class SplitRow:
    """One split's comparison of the two MLPs and the leakage it leaves."""

    name: str
    title: str
    gated: bool
    status: str  # measured, skipped, failed
    reason: str = ""
    n_test: int = 0
    fast_accuracy: float | None = None
    baseline_accuracy: float | None = None
    drop: float | None = None
    drop_ci: tuple[float, float] | None = None
    mcnemar_p: float | None = None
    leakage: dict[str, Any] = field(default_factory=dict)
    warning: str | None = None


@dataclass
class GroupRow:
    """Accuracy of both models on the test samples of one group (= recall for a viral group, specificity for host)."""

    group: str
    classes: str
    n: int
    fast_accuracy: float
    fast_ci: tuple[float, float]
    baseline_accuracy: float
    baseline_ci: tuple[float, float]
    drop: float
    drop_ci: tuple[float, float]


@dataclass
class LevelRow:
    """Accuracy of both models when calls are made per frame, per chunk or per input record."""

    level: str
    rule: str
    n: int
    fast_accuracy: float
    baseline_accuracy: float


@dataclass
class Evidence:
    splits: list[SplitRow] = field(default_factory=list)
    groups: list[GroupRow] = field(default_factory=list)
    groups_from: str = ""
    calibration: dict[str, Any] = field(default_factory=dict)  # model name -> calibration.Calibration
    levels: list[LevelRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"gated": "locked split only; every other figure here is evidence and cannot change the verdict",
                "splits": [asdict(r) for r in self.splits], "groups": [asdict(g) for g in self.groups],
                "groups_from": self.groups_from,
                "calibration": {name: c.to_dict() for name, c in self.calibration.items()},
                "levels": [asdict(level) for level in self.levels], "notes": list(self.notes)}


# ---------------------------------------------------------------------------- bootstrap


def paired_intervals(fast: np.ndarray, baseline: np.ndarray, *, seed: int, n_bootstrap: int = N_BOOTSTRAP,
                     level: float = 0.95) -> tuple[tuple[float, float], ...]:
    """Percentile CIs of mean(fast), mean(baseline) and mean(baseline − fast) from the same paired resamples."""
    a, b = np.asarray(fast, dtype=float), np.asarray(baseline, dtype=float)

    def means(rows: np.ndarray) -> np.ndarray:
        return np.stack([a[rows].mean(1), b[rows].mean(1), b[rows].mean(1) - a[rows].mean(1)], axis=1)

    values = bootstrap.draws(means, len(a), n_resamples=n_bootstrap, seed=seed)
    return tuple(bootstrap.percentile_interval(values[:, k], level) for k in range(3))


# ---------------------------------------------------------------------------- what the evidence is built from


@dataclass
class EvidenceInputs:
    """The finished stages of a validation run the evidence is built from.

    Attributes:
        settings: the run's settings (seed, limits, clustering, groups, prevalence, record rule).
        comparison: the gated comparison on the locked split.
        predictions: ``fast`` / ``baseline`` predictions on the locked split's test set.
        locked: the locked (gated) split.
        merged: ``embedder → (viral, host)`` merged feature files the extra splits are made from.
        protein_fastas: the preprocessed protein FASTA of each class, to cluster (None for merged inputs).
        proteins: every sample's protein (None for merged inputs, which carry none).
    """

    settings: Any
    comparison: Any
    predictions: dict[str, Any]
    locked: Any
    merged: dict[str, tuple[Path, Path]]
    protein_fastas: list[Path] | None
    proteins: dict[str, str] | None


@dataclass
class EvidenceStages:
    """How the evidence builds and reuses its own stages (extra splits, their MLPs, clusters, identity searches).

    Attributes:
        cache: the run's :class:`~virnucpro_core.gate.stages.StageCache` (and the files it opened and hashed).
        directory: ``(what, key) → folder`` of an evidence stage.
        train: ``(embedder, split, stage, directory_of) → TrainedModel``: the run's MLP trained on a split.
        training_job: ``(split, stage, directory_of) → StageJob`` of that training, to build several at once.
        train_at_once: builds such jobs at once where the cores allow (``train`` then loads them).
    """

    cache: StageCache
    directory: Callable[[str, str], Path]
    train: Callable[..., Any]
    training_job: Callable[..., StageJob]
    train_at_once: Callable[[list[StageJob]], None]


# ---------------------------------------------------------------------------- splits


def _cluster_groups(inputs: EvidenceInputs, stages: EvidenceStages) -> dict[str, str]:
    s = inputs.settings
    fastas = inputs.protein_fastas
    params = {"proteins": [stages.cache.files.sha256(f) for f in fastas], "min_seq_id": s.cluster_identity,
              "coverage": s.cluster_coverage, "link_chunks": True}

    def build(directory: Path) -> None:
        clusters = cluster_proteins(fastas, directory, min_seq_id=s.cluster_identity, coverage=s.cluster_coverage)
        (directory / "proteins.faa").unlink(missing_ok=True)
        atomic_write_text(directory / "groups.json", json.dumps(linked_groups(clusters), sort_keys=True) + "\n")

    def count(groups: dict) -> str:
        return f"{len(groups):,} proteins in {len(set(groups.values())):,} groups (clusters joined by chunk)"

    return stages.cache.cached("clusters", params, lambda key: stages.directory("clusters", key), build,
                               lambda d: json.loads((d / "groups.json").read_text()), count,
                               code=stage_code("clusters"))


def _split_pair(inputs: EvidenceInputs, stages: EvidenceStages, kind: str, groups: Mapping[str, str] | None) -> dict:
    """``{"fast": SplitResult, "baseline": SplitResult}`` of one extra split (made on FastESM2's features).

    Each is built once and then read back from its manifest, never recomputed.
    """
    s, files = inputs.settings, stages.cache.files
    params = {"group_by": kind, "groups": None if groups is None else sha256_text(json.dumps(sorted(groups.items())))}
    group_by = "source" if kind == "source" else "cluster"
    fast = split_stage(stages.cache, files, f"split[{kind},fast]", lambda key: stages.directory(f"split-{kind}-fast", key),
                       *inputs.merged["fast"], seed=s.seed, params=params,
                       count=lambda r: f"{len(r.manifest.train.ids):,} training and {len(r.manifest.test.ids):,} test",
                       group_by=group_by, groups=groups)
    baseline = split_stage(stages.cache, files, f"split[{kind},baseline]",
                           lambda key: stages.directory(f"split-{kind}-baseline", key), *inputs.merged["baseline"],
                           source=fast.manifest)
    return {"fast": fast, "baseline": baseline}


def _leakage(inputs: EvidenceInputs, stages: EvidenceStages, split) -> dict[str, Any]:
    proteins = inputs.proteins
    leak = split.summary.leakage
    out: dict[str, Any] = {"test_samples": leak.test_samples, "shared_sources": leak.leaked_sources,
                           "samples_from_shared_sources": leak.leaked_samples,
                           "samples_sharing_a_chunk": leak.chunk_leaked_samples}
    if proteins is None:
        out["identity"] = "not measured: merged feature inputs carry no protein sequences"
        return out
    test = {i: proteins[i] for i in split.manifest.test.ids}
    train = {i: proteins[i] for i in split.manifest.train.ids}
    train_seqs = set(train.values())
    out["test_proteins_identical_to_training"] = sum(seq in train_seqs for seq in test.values())
    missing = mmseqs_missing()
    if missing:
        out["identity"] = f"highest train-test identity not measured: {missing}"
        return out
    s = inputs.settings
    params = {"manifest": split.manifest.sha256, "threshold": s.cluster_identity, "coverage": s.cluster_coverage}
    found = stages.cache.cached(
        f"identity[{split.manifest.group_by}]", params,
        lambda key: stages.directory(f"identity-{split.manifest.group_by}", key),
        lambda d: atomic_write_text(d / "identity.json", json.dumps(
            cross_identity(test, train, d, threshold=s.cluster_identity, coverage=s.cluster_coverage).to_dict())
            + "\n"),
        lambda d: json.loads((d / "identity.json").read_text()), code=stage_code("identity"))
    out["max_identity_to_training"] = found["max_identity"]
    out["median_best_identity"] = found["median_best_identity"]
    out[f"test_proteins_at_or_above_{found['threshold']:g}_identity"] = found["at_or_above_threshold"]
    out["identity_coverage"] = found["coverage"]
    out["identity_method"] = ("mmseqs easy-search of every test protein against every training protein "
                              f"(alignments covering >= {found['coverage']:g} of both, E-value <= 1e-3; fident)")
    return out


def _row_from(name: str, comparison, n_test: int, leakage: dict, limit: float) -> SplitRow:
    row = SplitRow(name, SPLIT_TITLES[name], name == "locked", "measured", n_test=n_test,
                   fast_accuracy=comparison.fast.accuracy, baseline_accuracy=comparison.baseline.accuracy,
                   drop=comparison.accuracy_drop,
                   drop_ci=(comparison.drop_ci.low, comparison.drop_ci.high) if comparison.drop_ci else None,
                   mcnemar_p=comparison.mcnemar.p_value if comparison.mcnemar else None, leakage=leakage)
    if name != "locked" and comparison.accuracy_drop >= limit:
        row.warning = (f"on the {name} split (genomes unseen in training) FastESM2_650 loses "
                       f"{comparison.accuracy_drop:.4f} accuracy, at or beyond the gate's limit {limit:g}: the gated "
                       "figure may be optimistic for new genomes. Evidence only — the verdict is unchanged.")
    return row


def _extra_splits(inputs: EvidenceInputs, stages: EvidenceStages, kind: str) -> dict | SplitRow:
    """One extra split's ``{"fast": ..., "baseline": ...}``, or its row when it is skipped or fails."""
    if kind == "cluster":
        if inputs.proteins is None:
            return SplitRow(kind, SPLIT_TITLES[kind], False, "skipped",
                            "merged feature inputs carry no protein sequences to cluster; pass FASTA inputs")
        missing = mmseqs_missing()
        if missing:
            return SplitRow(kind, SPLIT_TITLES[kind], False, "skipped", f"{missing} (install: {INSTALL_HINT})")
    try:
        groups = _cluster_groups(inputs, stages) if kind == "cluster" else None
        return _split_pair(inputs, stages, kind, groups)
    except VirNucProError as error:
        return _failed_row(kind, error)


def _failed_row(kind: str, error: VirNucProError) -> SplitRow:
    log.warning("%s split: %s", kind, error)
    return SplitRow(kind, SPLIT_TITLES[kind], False, "failed", str(error).splitlines()[0])


def _train_directory(stages: EvidenceStages, kind: str, embedder: str) -> Callable[[str], Path]:
    return lambda key: stages.directory(f"train-{kind}-{embedder}", key)


def _extra_split_row(inputs: EvidenceInputs, stages: EvidenceStages, kind: str, splits: dict) -> SplitRow:
    s = inputs.settings
    try:
        predictions = {}
        for embedder, split in splits.items():
            trained = stages.train(embedder, split, f"train[{kind},{embedder}]", _train_directory(stages, kind, embedder))
            predictions[embedder] = predict_features(trained.final, split.paths.test)
        # The row needs accuracies, the paired drop CI and McNemar: no per-metric bootstrap (saves ~10 s a split).
        evaluations = {e: evaluate(p, n_bootstrap=0, seed=s.seed) for e, p in predictions.items()}
        comparison = compare(predictions["fast"], predictions["baseline"], max_accuracy_drop=s.max_accuracy_drop,
                             seed=s.seed, fast_evaluation=evaluations["fast"],
                             baseline_evaluation=evaluations["baseline"])
        return _row_from(kind, comparison, len(predictions["fast"]), _leakage(inputs, stages, splits["fast"]),
                         s.max_accuracy_drop)
    except VirNucProError as error:
        return _failed_row(kind, error)


def _extra_split_rows(inputs: EvidenceInputs, stages: EvidenceStages) -> list[SplitRow]:
    """The source-disjoint and similarity-clustered rows: both splits made first, their four MLPs then
    trained at once where the cores allow (identical to one after another), then each row measured."""
    prepared = {kind: _extra_splits(inputs, stages, kind) for kind in ("source", "cluster")}
    jobs = [stages.training_job(split, f"train[{kind},{embedder}]", _train_directory(stages, kind, embedder))
            for kind, splits in prepared.items() if isinstance(splits, dict) for embedder, split in splits.items()]
    stages.train_at_once(jobs)
    return [splits if isinstance(splits, SplitRow) else _extra_split_row(inputs, stages, kind, splits)
            for kind, splits in prepared.items()]


# ---------------------------------------------------------------------------- groups, levels, calibration


def read_group_file(path: str | Path) -> dict[str, str]:
    """``id <TAB> group`` lines (``#`` comments and blank lines skipped); ids are record or sample ids."""

    out: dict[str, str] = {}
    bad = []
    with open(path, encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or not row[0].strip() or row[0].startswith("#"):
                continue
            if len(row) < 2 or not row[1].strip():
                bad.append(str(number))
                continue
            out[row[0].strip()] = row[1].strip()
    if bad:
        raise InputError(f"--groups {path}: line(s) {', '.join(bad[:10])} lack a group",
                         expected="id <TAB> group on every line", fix="fix those lines")
    return out


def sample_groups(settings, ids: list[str], files: RunFiles | None = None) -> tuple[dict[str, str], str]:
    """Group of each test sample and where the groups came from ({} when the inputs carry none).

    ``files``: the run's opened files, so a ``--data-dir`` input is not opened again for its ids.
    """
    s = settings
    files = files or RunFiles()
    if s.groups_file is not None:
        mapping = read_group_file(s.groups_file)
        found = {i: mapping.get(i, mapping.get(source_of(i))) for i in ids}
        return {i: g for i, g in found.items() if g is not None}, f"--groups {s.groups_file}"
    if s.groups:
        by_id = {}
        for path, group in s.groups.items():
            for sample in files.ids(Path(path)):
                by_id[str(sample)] = group
        return {i: by_id[i] for i in ids if i in by_id}, "data_merge folders (--data-dir)"
    return {}, ""


def group_rows(settings, fast, baseline, files: RunFiles | None = None) -> tuple[list[GroupRow], str]:
    groups, origin = sample_groups(settings, fast.ids, files)
    if not groups:
        return [], origin
    fast_ok, base_ok = fast.correct, baseline.take(fast.ids).correct
    rows = []
    for group in sorted(set(groups.values())):
        mask = np.array([groups.get(i) == group for i in fast.ids])
        classes = sorted({"viral" if y else "host" for y in fast.y_true[mask].tolist()})
        f_ci, b_ci, d_ci = paired_intervals(fast_ok[mask], base_ok[mask], seed=settings.seed)
        rows.append(GroupRow(group, "+".join(classes), int(mask.sum()), float(fast_ok[mask].mean()), f_ci,
                             float(base_ok[mask].mean()), b_ci, float(base_ok[mask].mean() - fast_ok[mask].mean()),
                             d_ci))
    return rows, origin


def level_rows(fast, baseline, record_rule: str) -> list[LevelRow]:
    baseline = baseline.take(fast.ids)
    chunks = {name: aggregate_chunks(p.ids, p.p_viral) for name, p in (("f", fast), ("b", baseline))}
    chunk_truth = labels_per_group([chunk_of(i) for i in fast.ids], fast.y_true, chunks["f"].ids, "chunk")
    records = {name: aggregate_records(p.ids, p.p_viral, rule=record_rule)
               for name, p in (("f", fast), ("b", baseline))}
    record_truth = labels_per_group([source_of(i) for i in fast.ids], fast.y_true, records["f"].ids, "record")
    return [
        LevelRow("frame", FRAME_RULE, len(fast), float(fast.correct.mean()), float(baseline.correct.mean())),
        LevelRow("chunk", CHUNK_RULE, len(chunk_truth), float((chunks["f"].y_pred == chunk_truth).mean()),
                 float((chunks["b"].y_pred == chunk_truth).mean())),
        LevelRow("record", records["f"].rule + " (the record's test frames)", len(record_truth),
                 float((records["f"].y_pred == record_truth).mean()),
                 float((records["b"].y_pred == record_truth).mean())),
    ]


# ---------------------------------------------------------------------------- all of it


def no_baseline() -> Evidence:
    """The evidence when the baseline comes from ``--baseline-metrics``: nothing to compare, and why."""
    return Evidence(notes=["the ESM2 3B baseline comes from --baseline-metrics: no baseline predictions, so no "
                           "extra splits, per-group, level or calibration comparison"])


def build_evidence(inputs: EvidenceInputs, stages: EvidenceStages) -> Evidence:
    """Every figure of this module from a validation run's finished stages (see the module docstring)."""

    evidence = Evidence()
    s = inputs.settings
    comparison = inputs.comparison
    fast, baseline = inputs.predictions["fast"], inputs.predictions["baseline"]
    evidence.splits.append(_row_from("locked", comparison, len(fast), _leakage(inputs, stages, inputs.locked),
                                     s.max_accuracy_drop))
    evidence.splits.extend(_extra_split_rows(inputs, stages))
    evidence.groups, evidence.groups_from = group_rows(s, fast, baseline, stages.cache.files)
    if not evidence.groups:
        evidence.notes.append("no groups: pass --groups id<TAB>group, or --data-dir with VirNucPro's data_merge tree")
    evidence.levels = level_rows(fast, baseline, s.record_rule)
    for name, p in ((EMBEDDER_NAMES["baseline"], baseline.take(fast.ids)), (EMBEDDER_NAMES["fast"], fast)):
        evidence.calibration[name] = calibrate(name, p.y_true, p.p_viral, p.y_pred, prevalence=s.viral_prevalence)
    return evidence
