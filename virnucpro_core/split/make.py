"""Train/test split of merged feature files, made once and shared by both embedders.

The split is defined by sample ids, not by rows, so the split made on the
FastESM2_650 features applies unchanged to the ESM2 3B features of the same
samples (:func:`apply_split`). Locked decisions it implements:

* the test set is a stratified random sample: ``floor(n * test_fraction + 1/2)``
  samples of each class (round half up, exact rational arithmetic), chosen with
  a fixed seed from the class's ids in sorted order, so file order never
  matters;
* it lives in its own directory (:class:`SplitPaths`) apart from the inputs;
  ``train.pt`` / ``test.pt`` are views: which input file and row hold each
  sample's features, never a copy of them (memory and disk stay flat at 2 M
  samples);
* the default split is sample-level, as in the original VirNucPro; frames and
  chunks of one genome can then sit on both sides, so every split measures
  that leakage. ``group_by="source"`` keeps each source record on one side;
  ``group_by="cluster"`` keeps each group of an explicit ``groups`` mapping
  (id → group, e.g. protein clusters from :mod:`virnucpro_core.split.clusters`) on
  one side, drawing whole groups across both classes (:func:`_joint_group_level`);
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
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from virnucpro_core.defaults import GROUP_BY_CHOICES
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.files import atomic_write_text, sha256_file, sha256_text
from virnucpro_core.layouts.features import MergedRows, concat_rows, open_rows, save_view
from virnucpro_core.preprocess.sequences import source_id

MANIFEST_FORMAT = "virnucpro-split"
MANIFEST_VERSION = 1
CLASS_LABELS: dict[str, int] = {"host": 0, "viral": 1}
CLASS_NAMES: dict[int, str] = {label: name for name, label in CLASS_LABELS.items()}
# The library also takes "cluster" with an explicit groups mapping (the acceptance suite's clustered split).
GROUP_BY_MODES = (*GROUP_BY_CHOICES, "cluster")
ROUNDING_RULE = "test samples per class = floor(n * test_fraction + 1/2) (round half up, exact rational arithmetic)"

# Streams of the seeded generator, so test and validation draws never share one.
_PURPOSE_TEST = 0
_PURPOSE_VALIDATION = 1
_FRAME_TAG = re.compile(r"[FR][1-3]$")
_SHOW = 5  # ids named in an error message
# Reads one input file of a split as (rows, sha256).
InputOpener = Callable[[Path], tuple[MergedRows, str]]


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class SplitPaths:
    """Outputs of ``virnucpro split`` in one directory."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def train(self) -> Path:
        """Training samples of both classes: a view (ids, labels, lengths and where each row is in the inputs)."""
        return self.root / "train.pt"

    @property
    def test(self) -> Path:
        """Held-out test samples of both classes, a view like :attr:`train`; read once, at the end."""
        return self.root / "test.pt"

    @property
    def manifest(self) -> Path:
        """Every train and test id with label and source, parameters and input hashes."""
        return self.root / "manifest.json"

    @property
    def distribution(self) -> Path:
        """:class:`SplitSummary`: class counts, length distributions, leakage."""
        return self.root / "distribution.json"


# --------------------------------------------------------------------------- ids


def chunk_of(sample_id: str) -> str:
    """The chunk a frame id came from: the id without its trailing ``F1..F3`` / ``R1..R3``."""
    if "_chunk_" in sample_id and _FRAME_TAG.search(sample_id):
        return sample_id[:-2]
    return sample_id


def source_of(sample_id: str) -> str:
    """The source record of a sample id (the part before the last ``_chunk_``)."""
    return source_id(sample_id)


def round_half_up(n: int, fraction: float) -> int:
    """``floor(n * fraction + 1/2)`` computed exactly (``fraction`` read as its decimal text)."""
    return math.floor(n * Fraction(str(fraction)) + Fraction(1, 2))


def min_class_size(fraction: float) -> int:
    """Smallest class that gives at least one test and one training sample at ``fraction``."""
    n = 1
    while not (1 <= round_half_up(n, fraction) < n):
        n += 1
        if n > 10_000_000:  # fraction too close to 0 or 1 to ever split
            break
    return n


def _rng(seed: int, label: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(label), int(purpose)])


def _sample_level(ids: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    ordered = sorted(ids)
    order = rng.permutation(len(ordered))
    return [ordered[i] for i in order[:count]]


def _group_level(ids: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    """Whole source records, in seeded random order, until ``count`` samples are reached as closely as possible.

    First pass: take each group that does not overshoot. If still short, add the
    one remaining group that brings the total closest to ``count`` (only if that
    is closer, or the test side is still empty). At least one group stays in
    training.
    """
    sizes = Counter(source_of(i) for i in ids)
    groups = sorted(sizes)
    order = [groups[i] for i in rng.permutation(len(groups))]
    chosen: list[str] = []
    total = 0
    for group in order:
        if total == count:
            break
        if total + sizes[group] <= count:
            chosen.append(group)
            total += sizes[group]
    taken = set(chosen)
    remaining = [g for g in order if g not in taken]
    if total < count and len(remaining) > 1:
        best = min(remaining, key=lambda g: abs(total + sizes[g] - count))  # ties: first in seeded order
        if total == 0 or abs(total + sizes[best] - count) < count - total:
            chosen.append(best)
    keep = set(chosen)
    return sorted(i for i in ids if source_of(i) in keep)


def stratified_ids(
    ids: Sequence[str],
    labels: Sequence[int],
    fraction: float,
    seed: int,
    *,
    group_by: str = "sample",
    purpose: str = "test",
    groups: Mapping[str, str] | None = None,
) -> list[str]:
    """Ids drawn from each class separately: ``round_half_up(n_class * fraction)`` per class.

    Args:
        ids: sample ids (unique).
        labels: class of each id.
        fraction: share of each class to draw.
        seed: the draw depends only on the seed and the set of ids, not their order.
        group_by: ``"sample"`` draws ids; ``"source"`` draws whole source records.
        purpose: ``"test"`` or ``"validation"``; each uses its own random stream.
        groups: id → group, required by ``group_by="cluster"`` (whole groups per side).

    Returns:
        The drawn ids, sorted.
    """
    purpose_code = {"test": _PURPOSE_TEST, "validation": _PURPOSE_VALIDATION}[purpose]
    if group_by == "cluster":
        return _joint_group_level(ids, labels, groups or {}, fraction, _rng(seed, 2, purpose_code))
    by_class: dict[int, list[str]] = {}
    for sample, label in zip(ids, labels, strict=True):
        by_class.setdefault(int(label), []).append(sample)
    drawn: list[str] = []
    for label in sorted(by_class):
        members = by_class[label]
        rng = _rng(seed, label, purpose_code)
        count = round_half_up(len(members), fraction)
        pick = _group_level if group_by == "source" else _sample_level
        drawn.extend(pick(members, count, rng))
    return sorted(drawn)


def _joint_group_level(ids: Sequence[str], labels: Sequence[int], groups: Mapping[str, str], fraction: float,
                       rng: np.random.Generator) -> list[str]:
    """Whole groups (which may hold both classes) in seeded random order, each taken when it overshoots no class's
    target ``round_half_up(n_class * fraction)``; stops once every target is met. A group larger than a class's
    target never goes to the test side, so at least one group stays in training."""
    members: dict[str, Counter] = {}
    for sample, label in zip(ids, labels, strict=True):
        members.setdefault(groups[sample], Counter())[int(label)] += 1
    totals = Counter(int(label) for label in labels)
    target = {label: round_half_up(n, fraction) for label, n in totals.items()}
    names = sorted(members)
    taken: Counter = Counter()
    chosen: set[str] = set()
    for name in (names[i] for i in rng.permutation(len(names))):
        if all(taken[label] >= target[label] for label in target):
            break
        counts = members[name]
        if all(taken[label] + n <= target[label] for label, n in counts.items()):
            chosen.add(name)
            taken.update(counts)
    empty = [CLASS_NAMES.get(label, str(label)) for label in sorted(target) if taken[label] == 0]
    if empty:
        largest = sorted(((sum(c.values()), n) for n, c in members.items()), reverse=True)[:3]
        raise InputError(
            f"no {' or '.join(empty)} group fits the test side: every group is larger than the class's test target",
            expected=f"groups no larger than {fraction:g} of each class: "
            + ", ".join(f"{CLASS_NAMES.get(k, k)} {v} samples" for k, v in sorted(target.items())),
            found=f"{len(members)} groups; the largest: " + ", ".join(f"{n} ({size} samples)" for size, n in largest),
            fix="cluster at a higher identity or coverage (smaller clusters), or use group_by source",
        )
    return sorted(s for s in ids if groups[s] in chosen)


# --------------------------------------------------------------------------- merged files


def _safe_equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # tensors and other values without a plain ==
        return False


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


# --------------------------------------------------------------------------- typed records


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


# --------------------------------------------------------------------------- loading inputs


def _as_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def open_input(path: Path) -> tuple[MergedRows, str]:
    """An input file's rows (left on disk) and its SHA-256: how a split reads an input unless told otherwise."""
    return open_rows(path), sha256_file(path)


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


# --------------------------------------------------------------------------- summaries


def _sample_list(ids: Sequence[str], labels_by_id: Mapping[str, int]) -> SampleList:
    ordered = sorted(ids)
    return SampleList(ordered, [labels_by_id[i] for i in ordered], [source_of(i) for i in ordered])


def summarize(manifest: SplitManifest, lengths_by_id: Mapping[str, int]) -> SplitSummary:
    """Class counts, length distributions, per-source counts and leakage of a split."""
    train, test = manifest.train, manifest.test
    n_all, n_train, n_test = len(train) + len(test), len(train), len(test)
    classes = []
    for name in ("viral", "host"):
        label = CLASS_LABELS[name]
        tr = train.labels.count(label)
        te = test.labels.count(label)
        full = tr + te
        classes.append(
            ClassSplit(
                name=name,
                label=label,
                full=full,
                train=tr,
                test=te,
                ratio_full=round(full / n_all, 10) if n_all else 0.0,
                ratio_train=round(tr / n_train, 10) if n_train else 0.0,
                ratio_test=round(te / n_test, 10) if n_test else 0.0,
                target_test=round_half_up(full, manifest.test_fraction),
                test_fraction_achieved=round(te / full, 10) if full else 0.0,
            )
        )

    def lengths(side: SampleList, label: int | None) -> np.ndarray:
        # 0 is "not recorded" (features imported from VirNucPro's files): left out of the distributions.
        return np.array(
            [lengths_by_id[i] for i, lab in zip(side.ids, side.labels, strict=True)
             if (label is None or lab == label) and lengths_by_id[i] > 0],
            dtype=np.int64,
        )

    comparisons = {}
    for key, label in (("all", None), ("viral", 1), ("host", 0)):
        tr, te = lengths(train, label), lengths(test, label)
        comparisons[key] = LengthComparison.of(np.concatenate([tr, te]), tr, te)

    train_sources = Counter(train.sources)
    test_sources = Counter(test.sources)
    label_of_source = dict(zip(train.sources + test.sources, train.labels + test.labels, strict=True))
    sources = [
        SourceCount(s, label_of_source[s], train_sources[s] + test_sources[s], train_sources[s], test_sources[s])
        for s in sorted(label_of_source, key=lambda s: (-label_of_source[s], s))
    ]
    leaked = [s for s in test.sources if s in train_sources]
    train_chunks = {chunk_of(i) for i in train.ids}
    chunk_leaked = sum(1 for i in test.ids if chunk_of(i) in train_chunks)
    leakage = Leakage(
        test_samples=n_test,
        leaked_samples=len(leaked),
        fraction=round(len(leaked) / n_test, 10) if n_test else 0.0,
        leaked_sources=len(set(leaked)),
        chunk_leaked_samples=chunk_leaked,
        chunk_fraction=round(chunk_leaked / n_test, 10) if n_test else 0.0,
    )
    return SplitSummary(
        split_id=manifest.split_id,
        seed=manifest.seed,
        group_by=manifest.group_by,
        test_fraction=manifest.test_fraction,
        rounding_rule=manifest.rounding_rule,
        features=manifest.features,
        classes=classes,
        lengths=comparisons,
        leakage=leakage,
        sources=sources,
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
            if not paths.distribution.is_file():
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
    split_meta = {
        "split_id": manifest.split_id,
        "manifest_sha256": manifest.sha256,
        "seed": manifest.seed,
        "test_fraction": manifest.test_fraction,
        "group_by": manifest.group_by,
    }
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
        target = paths.train if side == "train" else paths.test
        # A view: which input row each sample is, not a copy of the rows (memory and disk stay flat).
        save_view(features.take(features.positions(samples.ids), meta), target)
    summary.save(paths.distribution)
    manifest.save(paths.manifest)  # last: its presence marks a finished split
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
    test_fraction: float = 0.1,
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
