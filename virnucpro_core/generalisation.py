"""Evidence beside the gate: other splits, per-group accuracy, calibration and verdicts per chunk and record.

The locked split (stratified 10 % per class, sample-level, seeded) alone gates.
Everything here is evidence, built from the same merged features (only the
MLPs are retrained, with the same hyperparameters) and reported in the
"Generalisation" and following sections; it never changes the verdict or the
exit status (:mod:`virnucpro_core.verdict` ignores it, and a failure here is
reported in its section, not as a broken stage).

Splits, one row each:

* ``locked`` — the gated split.
* ``source`` — source-disjoint: every input record wholly in train or test,
  stratified by class, ~10 % per class (:func:`split.make_split` with
  ``group_by="source"``).
* ``cluster`` — similarity-clustered: the samples' proteins clustered with
  MMseqs2 (:mod:`virnucpro_core.clusters`), frames of a chunk joined, whole
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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from virnucpro_core.errors import VirNucProError
from virnucpro_core.files import atomic_write_text, sha256_file, sha256_text

log = logging.getLogger("virnucpro.generalisation")

SPLIT_TITLES = {
    "locked": "locked: stratified 10 % per class, sample-level (VirNucPro's split) — gated",
    "source": "source-disjoint: whole records per side, ~10 % per class — evidence",
    "cluster": "similarity-clustered: whole MMseqs2 protein clusters per side — evidence",
}
N_BOOTSTRAP = 1000
_BATCH = 50


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
    rng = np.random.default_rng(seed)
    stats = []
    for start in range(0, n_bootstrap, _BATCH):
        idx = rng.integers(0, len(a), size=(min(_BATCH, n_bootstrap - start), len(a)))
        stats.append(np.stack([a[idx].mean(1), b[idx].mean(1), b[idx].mean(1) - a[idx].mean(1)], axis=1))
    values = np.concatenate(stats)
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    return tuple(tuple(float(x) for x in np.quantile(values[:, k], q)) for k in range(3))


# ---------------------------------------------------------------------------- splits


def _proteins(run) -> dict[str, str] | None:
    """Protein of every sample (FASTA inputs only; merged features carry none)."""
    from virnucpro_core.features import read_records

    if run.has_merged_inputs():
        return None
    if "evidence proteins" not in run._memo:
        proteins: dict[str, str] = {}
        for label in ("viral", "host"):
            proteins.update(read_records(run.preprocessed(label).protein, "esm"))
        run._memo["evidence proteins"] = proteins
    return run._memo["evidence proteins"]


def _cluster_groups(run) -> dict[str, str]:
    from virnucpro_core.clusters import cluster_proteins, linked_groups

    s = run.settings
    fastas = [run.preprocessed(label).protein for label in ("viral", "host")]
    params = {"proteins": [sha256_file(f) for f in fastas], "min_seq_id": s.cluster_identity,
              "coverage": s.cluster_coverage, "link_chunks": True}

    def build(directory: Path) -> None:
        clusters = cluster_proteins(fastas, directory, min_seq_id=s.cluster_identity, coverage=s.cluster_coverage)
        (directory / "proteins.faa").unlink(missing_ok=True)
        atomic_write_text(directory / "groups.json", json.dumps(linked_groups(clusters), sort_keys=True) + "\n")

    def count(groups: dict) -> str:
        return f"{len(groups):,} proteins in {len(set(groups.values())):,} groups (clusters joined by chunk)"

    return run._cached("clusters", params, lambda key: run.paths.evidence("clusters", key), build,
                       lambda d: json.loads((d / "groups.json").read_text()), count)


def _split_pair(run, kind: str, groups: Mapping[str, str] | None) -> dict:
    """``{"fast": SplitResult, "baseline": SplitResult}`` of one extra split (made on FastESM2's features)."""
    from virnucpro_core.split import apply_split, make_split

    s = run.settings
    viral, host = run.merged("fast", "viral"), run.merged("fast", "host")
    params = {"viral": sha256_file(viral), "host": sha256_file(host), "seed": s.seed, "test_fraction": 0.1,
              "group_by": kind, "groups": None if groups is None else sha256_text(json.dumps(sorted(groups.items())))}
    group_by = "source" if kind == "source" else "cluster"

    def make(d: Path, overwrite: bool):
        return make_split(viral, host, test_fraction=0.1, seed=s.seed, group_by=group_by, groups=groups,
                          out_dir=d, overwrite=overwrite)

    fast = run._cached(f"split[{kind},fast]", params, lambda key: run.paths.evidence(f"split-{kind}-fast", key),
                       lambda d: make(d, True), lambda d: make(d, False),
                       lambda r: f"{len(r.manifest.train.ids):,} training and {len(r.manifest.test.ids):,} test")
    bviral, bhost = run.merged("baseline", "viral"), run.merged("baseline", "host")
    bparams = {"manifest": fast.manifest.sha256, "viral": sha256_file(bviral), "host": sha256_file(bhost)}
    baseline = run._cached(
        f"split[{kind},baseline]", bparams, lambda key: run.paths.evidence(f"split-{kind}-baseline", key),
        lambda d: apply_split(fast.manifest, bviral, bhost, out_dir=d, overwrite=True),
        lambda d: apply_split(fast.manifest, bviral, bhost, out_dir=d))
    return {"fast": fast, "baseline": baseline}


def _leakage(run, split, proteins: dict[str, str] | None) -> dict[str, Any]:
    from virnucpro_core.clusters import cross_identity, mmseqs_missing

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
    s = run.settings
    params = {"manifest": split.manifest.sha256, "threshold": s.cluster_identity, "coverage": s.cluster_coverage}
    found = run._cached(
        f"identity[{split.manifest.group_by}]", params,
        lambda key: run.paths.evidence(f"identity-{split.manifest.group_by}", key),
        lambda d: atomic_write_text(d / "identity.json", json.dumps(
            cross_identity(test, train, d, threshold=s.cluster_identity, coverage=s.cluster_coverage).to_dict())
            + "\n"),
        lambda d: json.loads((d / "identity.json").read_text()))
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


def _extra_split_row(run, kind: str, proteins) -> SplitRow:
    from virnucpro_core.clusters import INSTALL_HINT, mmseqs_missing
    from virnucpro_core.comparison import compare
    from virnucpro_core.metrics import evaluate
    from virnucpro_core.prediction import predict_features

    if kind == "cluster":
        if proteins is None:
            return SplitRow(kind, SPLIT_TITLES[kind], False, "skipped",
                            "merged feature inputs carry no protein sequences to cluster; pass FASTA inputs")
        missing = mmseqs_missing()
        if missing:
            return SplitRow(kind, SPLIT_TITLES[kind], False, "skipped", f"{missing} (install: {INSTALL_HINT})")
    try:
        groups = _cluster_groups(run) if kind == "cluster" else None
        splits = _split_pair(run, kind, groups)
        predictions = {}
        for embedder, split in splits.items():
            trained = run.trained_on(embedder, split, f"train[{kind},{embedder}]",
                                     lambda key, e=embedder: run.paths.evidence(f"train-{kind}-{e}", key))
            predictions[embedder] = predict_features(trained.final, split.paths.test)
        # The row needs accuracies, the paired drop CI and McNemar: no per-metric bootstrap (saves ~10 s a split).
        evaluations = {e: evaluate(p, n_bootstrap=0, seed=run.settings.seed) for e, p in predictions.items()}
        comparison = compare(predictions["fast"], predictions["baseline"],
                             max_accuracy_drop=run.settings.max_accuracy_drop, seed=run.settings.seed,
                             fast_evaluation=evaluations["fast"], baseline_evaluation=evaluations["baseline"])
        run._memo[f"comparison[{kind}]"] = comparison
        return _row_from(kind, comparison, len(predictions["fast"]), _leakage(run, splits["fast"], proteins),
                         run.settings.max_accuracy_drop)
    except VirNucProError as error:
        log.warning("%s split: %s", kind, error)
        return SplitRow(kind, SPLIT_TITLES[kind], False, "failed", str(error).splitlines()[0])


# ---------------------------------------------------------------------------- groups, levels, calibration


def read_group_file(path: str | Path) -> dict[str, str]:
    """``id <TAB> group`` lines (``#`` comments and blank lines skipped); ids are record or sample ids."""
    from virnucpro_core.errors import InputError

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


def sample_groups(run, ids: list[str]) -> tuple[dict[str, str], str]:
    """Group of each test sample and where the groups came from ({} when the inputs carry none)."""
    from virnucpro_core.layouts.features import torch_load
    from virnucpro_core.split import source_of

    s = run.settings
    if s.groups_file is not None:
        mapping = read_group_file(s.groups_file)
        found = {i: mapping.get(i, mapping.get(source_of(i))) for i in ids}
        return {i: g for i, g in found.items() if g is not None}, f"--groups {s.groups_file}"
    if s.groups:
        by_id = {}
        for path, group in s.groups.items():
            for sample in torch_load(Path(path), "merged feature", mmap=True)["ids"]:
                by_id[str(sample)] = group
        return {i: by_id[i] for i in ids if i in by_id}, "data_merge folders (--data-dir)"
    return {}, ""


def group_rows(run, fast, baseline) -> tuple[list[GroupRow], str]:
    groups, origin = sample_groups(run, fast.ids)
    if not groups:
        return [], origin
    fast_ok, base_ok = fast.correct, baseline.take(fast.ids).correct
    rows = []
    for group in sorted(set(groups.values())):
        mask = np.array([groups.get(i) == group for i in fast.ids])
        classes = sorted({"viral" if y else "host" for y in fast.y_true[mask].tolist()})
        f_ci, b_ci, d_ci = paired_intervals(fast_ok[mask], base_ok[mask], seed=run.settings.seed)
        rows.append(GroupRow(group, "+".join(classes), int(mask.sum()), float(fast_ok[mask].mean()), f_ci,
                             float(base_ok[mask].mean()), b_ci, float(base_ok[mask].mean() - fast_ok[mask].mean()),
                             d_ci))
    return rows, origin


def level_rows(fast, baseline, record_rule: str) -> list[LevelRow]:
    from virnucpro_core.aggregation import CHUNK_RULE, aggregate_chunks, aggregate_records, labels_per_group
    from virnucpro_core.metrics import FRAME_RULE
    from virnucpro_core.split import chunk_of, source_of

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


def build_evidence(run) -> Evidence:
    """Every figure of this module for a :class:`~virnucpro_core.validation.ValidationRun` (see the docstring)."""
    from virnucpro_core.calibration import calibrate

    evidence = Evidence()
    s = run.settings
    if s.baseline_from_metrics:
        evidence.notes.append("the ESM2 3B baseline comes from --baseline-metrics: no baseline predictions, so no "
                              "extra splits, per-group, level or calibration comparison")
        return evidence
    comparison = run.comparison()
    fast, baseline = run.predictions("fast"), run.predictions("baseline")
    proteins = _proteins(run)
    locked = run.split()
    evidence.splits.append(_row_from("locked", comparison, len(fast), _leakage(run, locked, proteins),
                                     s.max_accuracy_drop))
    for kind in ("source", "cluster"):
        evidence.splits.append(_extra_split_row(run, kind, proteins))
    evidence.groups, evidence.groups_from = group_rows(run, fast, baseline)
    if not evidence.groups:
        evidence.notes.append("no groups: pass --groups id<TAB>group, or --data-dir with VirNucPro's data_merge tree")
    evidence.levels = level_rows(fast, baseline, s.record_rule)
    for name, p in (("FastESM2_650", fast), ("ESM2 3B", baseline.take(fast.ids))):
        evidence.calibration[name] = calibrate(name, p.y_true, p.p_viral, p.y_pred, prevalence=s.viral_prevalence)
    return evidence
