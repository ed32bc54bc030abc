"""The split's typed records: manifest, per-class counts, length statistics, leakage and summary."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_write_text, sha256_text
from virnucpro_core.paths import SplitPaths
from virnucpro_core.split.ids import CLASS_LABELS

MANIFEST_FORMAT = "virnucpro-split"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class InputFile:
    """One input feature file as the manifest records it (name only, so moves keep the manifest)."""

    role: str  # "viral" or "host"
    name: str
    sha256: str
    samples: int


@dataclass
class SampleList:
    """Parallel lists of one side of the split, sorted by id."""

    ids: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class SplitManifest:
    """What defines a split, and what it was made from.

    ``split_id`` hashes only what defines the split (parameters, ids, labels), so
    a manifest applied to another embedder's features keeps it; ``inputs`` and
    ``features`` describe the files of this directory.
    """

    seed: int
    test_fraction: float
    group_by: str
    rounding_rule: str
    train: SampleList
    test: SampleList
    features: dict
    inputs: list[InputFile]
    applied_from: str | None = None  # sha256 of the manifest this split was copied from
    split_id: str = ""
    format: str = MANIFEST_FORMAT
    version: int = MANIFEST_VERSION

    def __post_init__(self) -> None:
        if not self.split_id:
            self.split_id = self.compute_split_id()

    def compute_split_id(self) -> str:
        core = {
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "group_by": self.group_by,
            "rounding_rule": self.rounding_rule,
            "train": [self.train.ids, self.train.labels],
            "test": [self.test.ids, self.test.labels],
        }
        return sha256_text(json.dumps(core, separators=(",", ":")))

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "version": self.version,
            "split_id": self.split_id,
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "group_by": self.group_by,
            "rounding_rule": self.rounding_rule,
            "class_labels": dict(sorted(CLASS_LABELS.items())),
            "features": dict(sorted(self.features.items())),
            "inputs": [asdict(i) for i in self.inputs],
            "applied_from": self.applied_from,
            "counts": {"train": len(self.train), "test": len(self.test)},
            "train": asdict(self.train),
            "test": asdict(self.test),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    @property
    def sha256(self) -> str:
        """Hash of the manifest file's bytes (what checkpoints record)."""
        return sha256_text(self.to_json())

    def labels_by_id(self) -> dict[str, int]:
        return dict(zip(self.train.ids + self.test.ids, self.train.labels + self.test.labels, strict=True))

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, data: Mapping) -> SplitManifest:
        return cls(
            seed=int(data["seed"]),
            test_fraction=float(data["test_fraction"]),
            group_by=str(data["group_by"]),
            rounding_rule=str(data["rounding_rule"]),
            train=SampleList(**data["train"]),
            test=SampleList(**data["test"]),
            features=dict(data.get("features") or {}),
            inputs=[InputFile(**i) for i in data.get("inputs", [])],
            applied_from=data.get("applied_from"),
            split_id=str(data["split_id"]),
            format=str(data.get("format", MANIFEST_FORMAT)),
            version=int(data.get("version", MANIFEST_VERSION)),
        )

    @classmethod
    def load(cls, path: str | Path) -> SplitManifest:
        """Read a manifest; refuse files that are not one or whose ids were edited."""
        path = Path(path)
        if path.is_dir():
            path = SplitPaths(path).manifest
        if not path.is_file():
            raise InputError(
                f"no split manifest at {path}",
                expected="manifest.json written by `virnucpro split`",
                fix="run `virnucpro split --viral ... --host ... --out DIR` first, then pass DIR/manifest.json",
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}")
            manifest = cls.from_dict(data)
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"{path} is not a split manifest",
                expected=f"JSON with format {MANIFEST_FORMAT!r} written by `virnucpro split`",
                found=f"{type(error).__name__}: {error}",
                fix="point to the manifest.json of a split directory",
            ) from error
        recomputed = manifest.compute_split_id()
        if recomputed != manifest.split_id:
            raise InputError(
                f"{path} was edited after it was written: its ids no longer match its split_id",
                expected=f"split_id {manifest.split_id}",
                found=f"the ids hash to {recomputed}",
                fix="restore the manifest or make a new split",
            )
        return manifest


@dataclass
class ClassSplit:
    """Counts of one class on each side of the split."""

    name: str
    label: int
    full: int
    train: int
    test: int
    ratio_full: float  # share of this class among all samples
    ratio_train: float
    ratio_test: float
    target_test: int  # round_half_up(full * test_fraction)
    test_fraction_achieved: float  # test / full


@dataclass
class LengthStats:
    """Protein length (residues) of the samples of one side."""

    n: int
    min: int
    median: float
    mean: float
    max: int

    @classmethod
    def of(cls, lengths: np.ndarray) -> LengthStats:
        if len(lengths) == 0:
            return cls(0, 0, 0.0, 0.0, 0)
        return cls(
            int(len(lengths)),
            int(lengths.min()),
            float(np.median(lengths)),
            round(float(lengths.mean()), 6),
            int(lengths.max()),
        )


@dataclass
class LengthComparison:
    """Length distributions of full/train/test and a two-sample KS test train vs test."""

    full: LengthStats
    train: LengthStats
    test: LengthStats
    ks_statistic: float | None
    ks_pvalue: float | None

    @classmethod
    def of(cls, full: np.ndarray, train: np.ndarray, test: np.ndarray) -> LengthComparison:
        # scipy.stats takes ~0.5 s to import; only the split summary needs it
        from scipy.stats import ks_2samp

        if len(train) and len(test):
            result = ks_2samp(train, test)
            statistic, pvalue = round(float(result.statistic), 10), round(float(result.pvalue), 10)
        else:
            statistic = pvalue = None
        return cls(LengthStats.of(full), LengthStats.of(train), LengthStats.of(test), statistic, pvalue)

    @classmethod
    def from_dict(cls, data: Mapping) -> LengthComparison:
        return cls(
            LengthStats(**data["full"]),
            LengthStats(**data["train"]),
            LengthStats(**data["test"]),
            data["ks_statistic"],
            data["ks_pvalue"],
        )


@dataclass
class SourceCount:
    """Samples of one source record on each side."""

    source: str
    label: int
    total: int
    train: int
    test: int


@dataclass
class Leakage:
    """Test samples that share a genome (or a chunk) with training samples.

    ``leaked_samples``: test samples whose source record also has training
    samples. ``chunk_leaked_samples``: test samples whose chunk (same DNA,
    another frame) also has training samples — the closest kind of leak.
    """

    test_samples: int
    leaked_samples: int
    fraction: float
    leaked_sources: int
    chunk_leaked_samples: int
    chunk_fraction: float


@dataclass
class Duplicates:
    """Identical feature rows (the same vector, byte for byte) across the split's samples.

    ``within_class``: per class, samples whose vector an earlier sample of that
    class already has. ``conflicting_vectors`` / ``conflicting_samples``:
    vectors held by samples of both classes (a label conflict: no classifier
    can call both right) and the samples holding them; ``conflict_examples``:
    up to five ``[viral id, host id]`` pairs. ``test_identical_to_training``:
    test samples whose vector is a training sample's (leakage no id shows).
    """

    within_class: dict[str, int]
    conflicting_vectors: int
    conflicting_samples: int
    conflict_examples: list[list[str]]
    test_identical_to_training: int
    test_samples: int

    @property
    def warning(self) -> str | None:
        """One line for a split whose rows conflict across classes (``None`` when none do)."""
        if not self.conflicting_vectors:
            return None
        examples = ", ".join(f"{v} = {h}" for v, h in self.conflict_examples)
        return (f"{self.conflicting_samples} samples share {self.conflicting_vectors} identical feature vector(s) "
                f"with opposite labels (viral and host), e.g. {examples}: the same input cannot be both, so check "
                "the inputs for a file given under both classes or records renamed into the other class")


@dataclass(frozen=True)
class LengthHistogram:
    """Protein lengths of the training and test samples over shared bins (numpy's ``auto`` edges of both), with
    each side's size and median: what the report's length figure draws, kept with the summary so that the figure
    needs no second pass over the features. Length 0 (not recorded) is left out."""

    edges: list[float]
    train: list[int]
    test: list[int]
    train_median: float
    test_median: float

    @classmethod
    def of(cls, train_lengths: Any, test_lengths: Any) -> LengthHistogram:
        train = np.asarray(train_lengths, dtype=float).reshape(-1)
        test = np.asarray(test_lengths, dtype=float).reshape(-1)
        train, test = train[train > 0], test[test > 0]
        both = np.concatenate([train, test])
        if len(both) == 0:
            return cls([], [], [], 0.0, 0.0)
        edges = np.histogram_bin_edges(both, bins="auto")
        return cls([float(e) for e in edges], np.histogram(train, edges)[0].tolist(),
                   np.histogram(test, edges)[0].tolist(), float(np.median(train)) if len(train) else 0.0,
                   float(np.median(test)) if len(test) else 0.0)


@dataclass
class SplitSummary:
    """``distribution.json``: how the split distributes classes, lengths and sources."""

    split_id: str
    seed: int
    group_by: str
    test_fraction: float
    rounding_rule: str
    features: dict
    classes: list[ClassSplit]
    lengths: dict[str, LengthComparison]  # "all", "viral", "host"
    leakage: Leakage
    sources: list[SourceCount]
    duplicates: Duplicates | None = None  # None in a distribution.json written before rows were compared
    length_histogram: LengthHistogram | None = None  # None in a distribution.json written before it was kept

    def to_dict(self) -> dict:
        return {
            "split_id": self.split_id,
            "seed": self.seed,
            "group_by": self.group_by,
            "test_fraction": self.test_fraction,
            "rounding_rule": self.rounding_rule,
            "features": dict(sorted(self.features.items())),
            "classes": [asdict(c) for c in self.classes],
            "lengths": {key: asdict(value) for key, value in self.lengths.items()},
            "leakage": asdict(self.leakage),
            "sources": [asdict(s) for s in self.sources],
            **({"duplicates": asdict(self.duplicates)} if self.duplicates is not None else {}),
            **({"length_histogram": asdict(self.length_histogram)} if self.length_histogram is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> SplitSummary:
        return cls(
            split_id=data["split_id"],
            seed=int(data["seed"]),
            group_by=data["group_by"],
            test_fraction=float(data["test_fraction"]),
            rounding_rule=data["rounding_rule"],
            features=dict(data["features"]),
            classes=[ClassSplit(**c) for c in data["classes"]],
            lengths={k: LengthComparison.from_dict(v) for k, v in data["lengths"].items()},
            leakage=Leakage(**data["leakage"]),
            sources=[SourceCount(**s) for s in data["sources"]],
            duplicates=Duplicates(**data["duplicates"]) if data.get("duplicates") else None,
            length_histogram=LengthHistogram(**data["length_histogram"]) if data.get("length_histogram") else None,
        )

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> SplitSummary:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def class_split(self, name: str) -> ClassSplit:
        for entry in self.classes:
            if entry.name == name:
                return entry
        raise KeyError(f"no class {name!r}; classes are {[c.name for c in self.classes]}")

    def format_table(self) -> str:
        """A few lines for the terminal."""
        lines = [
            f"split {self.split_id[:12]}: group_by={self.group_by}, seed={self.seed}, "
            f"test fraction {self.test_fraction:g} per class (round half up)",
            f"{'class':<6} {'full':>8} {'train':>8} {'test':>8} {'target':>8} {'achieved':>9}",
        ]
        for c in self.classes:
            lines.append(
                f"{c.name:<6} {c.full:>8} {c.train:>8} {c.test:>8} {c.target_test:>8} "
                f"{c.test_fraction_achieved:>9.4f}"
            )
        overall = self.lengths["all"]
        ks = (
            f"KS D={overall.ks_statistic:.4f} p={overall.ks_pvalue:.4g}"
            if overall.ks_statistic is not None
            else "KS n/a"
        )
        lines.append(
            f"protein length median/mean train {overall.train.median:g}/{overall.train.mean:.1f}, "
            f"test {overall.test.median:g}/{overall.test.mean:.1f}; {ks}"
        )
        off = [c for c in self.classes if c.test != c.target_test]
        if off:
            lines.append(
                "note: whole source records cannot hit the target exactly: "
                + "; ".join(f"{c.name} {c.test} test samples instead of {c.target_test}" for c in off)
            )
        leak = self.leakage
        lines.append(
            f"leakage: {leak.leaked_samples}/{leak.test_samples} test samples ({100 * leak.fraction:.1f} %) come "
            f"from {leak.leaked_sources} source record(s) that also have training samples; "
            f"{leak.chunk_leaked_samples} share a chunk with a training sample"
            + (" (use --group-by source to remove it)" if leak.leaked_samples else "")
        )
        return "\n".join(lines)


@dataclass
class SplitResult:
    """What :func:`make_split` / :func:`apply_split` produced and where it is."""

    paths: SplitPaths
    manifest: SplitManifest
    summary: SplitSummary
    reused: bool = False


