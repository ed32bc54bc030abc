"""Test-set metrics of one classifier: scalar metrics with bootstrap CIs, per-length and per-chunk views.

The positive class is viral (label 1); host is 0. A sample is one translated
frame (id ``{record}_chunk_{k}F1`` .. ``R3``); its viral score is the softmax
probability of class 1.

* Frame-level call: the arg-max of the two logits, i.e. viral iff
  ``p_viral > 0.5``; a tie goes to host, as ``torch.max`` does in VirNucPro's
  ``prediction.py``.
* Chunk-level call (:func:`evaluate_chunks`), as VirNucPro reports a chunk: the
  chunk is viral iff its highest viral score over its frames is ≥ its highest
  host score (a tie goes to viral).

Every metric comes from :mod:`sklearn.metrics`; precision (and F1) is 0 when
nothing is predicted viral (``zero_division=0``). Confidence intervals are
percentile bootstrap intervals from :mod:`virnucpro_core.evaluate.bootstrap`
(samples resampled with replacement, one seeded generator, the same resamples
for every metric), each batch of resamples scored at once by
:mod:`virnucpro_core.evaluate.resampled` with sklearn's formulas. A resample that holds one class only has no ROC-AUC or average
precision: those resamples are left out of those two metrics' intervals
(``Interval.n_resamples`` says how many were used), never counted as 0 or 1.

Files: :class:`~virnucpro_core.evaluate.predictions.Predictions` saves to JSON
or ``.npz`` (see its docstring); :class:`Evaluation` to JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as skm

from virnucpro_core.evaluate import bootstrap
from virnucpro_core.evaluate.resampled import ResampledMetrics
from virnucpro_core.evaluate.aggregation import CHUNK_RULE, aggregate_chunks
from virnucpro_core.errors import InputError
from virnucpro_core.evaluate.predictions import FORMAT_VERSION, HOST, VIRAL, Predictions, _float, _nan_to_none
from virnucpro_core.files import atomic_write_text

EVALUATION_FORMAT = "virnucpro-evaluation"

# Scalar metrics in report order, with the names people read.
METRICS: dict[str, str] = {
    "accuracy": "accuracy",
    "precision": "precision (viral)",
    "recall": "recall (viral)",
    "f1": "F1 (viral)",
    "roc_auc": "ROC-AUC",
    "average_precision": "PR-AUC (average precision)",
    "mcc": "MCC",
}

# Protein length bins, in residues: [0, 25), [25, 50), ..., [300, ∞). VirNucPro's
# 300 / 500 nt chunks translate to proteins of at most 100 / 166 residues.
DEFAULT_LENGTH_BINS: tuple[int, ...] = (0, 25, 50, 75, 100, 125, 150, 200, 300)

FRAME_RULE = "frame: viral iff p_viral > p_host (arg-max of the logits; a tie is host, as torch.max)"
CI_METHOD = (
    "percentile bootstrap (scipy.stats.bootstrap, paired resampling of samples); resamples with one class "
    "are left out of ROC-AUC and average precision"
)


# --------------------------------------------------------------------------- metric values


@dataclass
class Interval:
    """A confidence interval; ``n_resamples``: bootstrap resamples where the metric was defined."""

    low: float
    high: float
    n_resamples: int = 0

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return _nan_to_none(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Sequence[float]) -> Interval:
        if isinstance(data, Mapping):
            return cls(_float(data.get("low")), _float(data.get("high")), int(data.get("n_resamples") or 0))
        low, high = data  # [low, high] as some hand-written metrics files have it
        return cls(_float(low), _float(high), 0)


def _score_vector(y_true: np.ndarray, y_pred: np.ndarray, p_viral: np.ndarray) -> np.ndarray:
    """All scalar metrics, in :data:`METRICS` order; NaN for ROC-AUC / AP when y_true has one class."""
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, pos_label=VIRAL, average="binary", zero_division=0.0
    )
    both = np.any(y_true == VIRAL) and np.any(y_true == HOST)
    values = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": skm.roc_auc_score(y_true, p_viral) if both else math.nan,
        "average_precision": skm.average_precision_score(y_true, p_viral, pos_label=VIRAL) if both else math.nan,
        "mcc": skm.matthews_corrcoef(y_true, y_pred),
    }
    return np.array([float(values[name]) for name in METRICS])


def _confusion(y_true: np.ndarray, y_pred: np.ndarray) -> list[list[int]]:
    """``[[tn, fp], [fn, tp]]``: rows true host/viral, columns predicted host/viral."""
    return skm.confusion_matrix(y_true, y_pred, labels=[HOST, VIRAL]).tolist()


def bootstrap_intervals(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    p_viral: np.ndarray,
    *,
    n_bootstrap: int = 1000,
    seed: int = 42,
    confidence_level: float = 0.95,
) -> dict[str, Interval]:
    """Percentile bootstrap CIs of every metric in :data:`METRICS`, from the same seeded resamples.

    Each batch of resamples is scored at once (:class:`~virnucpro_core.evaluate.resampled.ResampledMetrics`:
    the values sklearn gives on each resampled array). Resamples where a metric is undefined (ROC-AUC / AP
    with one class) are left out of that metric's quantiles.
    """
    if n_bootstrap <= 0:
        return {}
    distribution = bootstrap.resampled(ResampledMetrics(y_true, y_pred, p_viral), len(y_true),
                                       n_resamples=n_bootstrap, seed=seed)
    intervals = {}
    for column, name in enumerate(METRICS):
        values = distribution[:, column][~np.isnan(distribution[:, column])]
        if len(values) == 0:
            intervals[name] = Interval(math.nan, math.nan, 0)
        else:
            intervals[name] = Interval(*bootstrap.percentile_interval(values, confidence_level), int(len(values)))
    return intervals


# --------------------------------------------------------------------------- length and chunk views


@dataclass
class LengthBin:
    """Frame-level accuracy of the samples whose protein length is in ``[low, high)`` residues."""

    low: int
    high: int | None  # exclusive; None: no upper bound
    n: int
    n_viral: int
    correct: int
    accuracy: float

    @property
    def label(self) -> str:
        return f"≥ {self.low}" if self.high is None else f"{self.low}–{self.high - 1}"

    @property
    def key(self) -> tuple[int, int | None]:
        return (self.low, self.high)


def length_breakdown(predictions: Predictions, edges: Sequence[int] = DEFAULT_LENGTH_BINS) -> list[LengthBin]:
    """Accuracy per protein-length bin ``[edges[i], edges[i+1])``, the last one open; empty bins left out.

    Samples of length 0 (not recorded) are in no bin.
    """
    edges = [int(e) for e in edges]
    if not edges or any(b <= a for a, b in zip(edges, edges[1:])) or edges[0] < 0:
        raise InputError("length bins must be increasing, non-negative residue counts",
                         expected="e.g. (0, 50, 100, 200)", found=repr(tuple(edges)))
    if edges[0] > 0:
        edges = [0, *edges]
    which = np.digitize(predictions.lengths, edges, right=False) - 1  # bin index, 0-based
    which[predictions.lengths == 0] = -1  # length not recorded (imported from VirNucPro's files): in no bin
    bins = []
    for i, low in enumerate(edges):
        mask = which == i
        if not mask.any():
            continue
        y, yp = predictions.y_true[mask], predictions.y_pred[mask]
        bins.append(LengthBin(
            low=low,
            high=edges[i + 1] if i + 1 < len(edges) else None,
            n=int(mask.sum()),
            n_viral=int((y == VIRAL).sum()),
            correct=int((y == yp).sum()),
            accuracy=float(skm.accuracy_score(y, yp)),
        ))
    return bins


@dataclass
class ChunkEvaluation:
    """Metrics of the per-chunk calls; ROC-AUC / AP rank chunks by ``max p_viral − max p_host``."""

    n_chunks: int
    n_frames: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float
    average_precision: float
    mcc: float
    confusion_matrix: list[list[int]]
    rule: str = CHUNK_RULE

    def metric(self, name: str) -> float:
        return float(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        return _nan_to_none(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChunkEvaluation:
        return cls(
            n_chunks=int(data.get("n_chunks") or 0),
            n_frames=int(data.get("n_frames") or 0),
            **{name: _float(data.get(name)) for name in METRICS},
            confusion_matrix=data.get("confusion_matrix") or [[0, 0], [0, 0]],
            rule=data.get("rule", CHUNK_RULE),
        )


def evaluate_chunks(predictions: Predictions) -> ChunkEvaluation:
    """Metrics of the chunk calls (:func:`~virnucpro_core.evaluate.aggregation.aggregate_chunks`, the rule ``virnucpro
    predict`` uses too), each chunk labelled by its frames.

    Raises:
        InputError: frames of one chunk carry different true labels.
    """
    chunks = aggregate_chunks(predictions.ids, predictions.p_viral, y_true=predictions.y_true)
    values = dict(zip(METRICS, _score_vector(chunks.y_true, chunks.y_pred, chunks.margin)))
    return ChunkEvaluation(
        n_chunks=len(chunks.ids),
        n_frames=len(predictions),
        **{name: float(v) for name, v in values.items()},
        confusion_matrix=_confusion(chunks.y_true, chunks.y_pred),
    )


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """Test-set metrics of one model (frame level unless named ``chunks``).

    Scalar metrics are floats (NaN when a metrics file did not give them).
    ``confusion_matrix`` is ``[[tn, fp], [fn, tp]]`` (rows: true host, viral;
    columns: predicted host, viral). ``ci`` maps a metric name to its bootstrap
    interval. ``origin`` says where the numbers came from; ``loaded_from``
    (not saved) is the file :meth:`load` read.
    """

    n: int
    n_viral: int
    n_host: int
    accuracy: float
    precision: float = math.nan
    recall: float = math.nan
    f1: float = math.nan
    roc_auc: float = math.nan
    average_precision: float = math.nan
    mcc: float = math.nan
    confusion_matrix: list[list[int]] | None = None
    ci: dict[str, Interval] = field(default_factory=dict)
    length_bins: list[LengthBin] = field(default_factory=list)
    chunks: ChunkEvaluation | None = None
    n_bootstrap: int = 0
    seed: int | None = None
    confidence_level: float = 0.95
    ids_sha256: str | None = None
    origin: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    loaded_from: str | None = field(default=None, compare=False)

    # -- accessors
    def metric(self, name: str) -> float:
        """A scalar metric by name (one of :data:`METRICS`)."""
        if name not in METRICS:
            raise KeyError(f"unknown metric {name!r}; metrics are {', '.join(METRICS)}")
        return float(getattr(self, name))

    def interval(self, name: str) -> Interval | None:
        return self.ci.get(name)

    @property
    def tn(self) -> int:
        return self._cell(0, 0)

    @property
    def fp(self) -> int:
        return self._cell(0, 1)

    @property
    def fn(self) -> int:
        return self._cell(1, 0)

    @property
    def tp(self) -> int:
        return self._cell(1, 1)

    def _cell(self, row: int, col: int) -> int:
        if self.confusion_matrix is None:
            raise ValueError("this evaluation has no confusion matrix (it was read from a metrics-only file)")
        return int(self.confusion_matrix[row][col])

    # -- files
    def to_dict(self) -> dict[str, Any]:
        return _nan_to_none({
            "format": EVALUATION_FORMAT,
            "version": FORMAT_VERSION,
            "n": self.n,
            "n_viral": self.n_viral,
            "n_host": self.n_host,
            **{name: float(getattr(self, name)) for name in METRICS},
            "confusion_matrix": self.confusion_matrix,
            "ci": {name: interval.to_dict() for name, interval in self.ci.items()},
            "ci_method": CI_METHOD if self.ci else None,
            "length_bins": [asdict(b) for b in self.length_bins],
            "chunks": self.chunks.to_dict() if self.chunks is not None else None,
            "frame_rule": FRAME_RULE,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
            "confidence_level": self.confidence_level,
            "ids_sha256": self.ids_sha256,
            "origin": self.origin,
            "meta": self.meta,
        })

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "metrics") -> Evaluation:
        """Read a saved evaluation, or a hand-written metrics file that gives at least ``accuracy``.

        Metrics it lacks become NaN, with no intervals or breakdowns.
        """
        if not isinstance(data, Mapping) or data.get("accuracy") is None:
            found = f"keys {', '.join(sorted(map(str, data)))}" if isinstance(data, Mapping) else type(data).__name__
            raise InputError(
                f"{where} gives no accuracy",
                expected='a JSON object with at least "accuracy" (a fraction in [0, 1]); optionally "n", '
                f'{", ".join(repr(m) for m in METRICS if m != "accuracy")}, "confusion_matrix" [[tn, fp], [fn, tp]], '
                '"ids_sha256"',
                found=found,
                fix="pass the evaluation.json written by Evaluation.save, or write the baseline's accuracy into a "
                "JSON object",
            )
        _check_numbers(data, where)
        accuracy = float(data["accuracy"])
        if not 0.0 <= accuracy <= 1.0:
            raise InputError(f"{where}: accuracy {accuracy} is not a fraction", expected="a value in [0, 1]",
                             found=str(accuracy), fix="write accuracy as a fraction (0.95), not a percentage")
        try:
            return cls._from_checked_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            found = f"missing field {error}" if isinstance(error, KeyError) else f"{type(error).__name__}: {error}"
            raise InputError(
                f"{where}: a field of the evaluation is malformed",
                expected='the layout Evaluation.save writes ("confusion_matrix" [[tn, fp], [fn, tp]], "ci" '
                '{metric: {"low", "high"}}, "length_bins" and "chunks" as saved)',
                found=found,
                fix="pass the evaluation.json written by Evaluation.save, or keep only the scalar metrics",
            ) from None

    @classmethod
    def _from_checked_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        matrix = data.get("confusion_matrix")
        n = int(data.get("n") or (sum(map(sum, matrix)) if matrix else 0))
        return cls(
            n=n,
            n_viral=int(data.get("n_viral") or (sum(matrix[1]) if matrix else 0)),
            n_host=int(data.get("n_host") or (sum(matrix[0]) if matrix else 0)),
            **{name: _float(data.get(name)) for name in METRICS},
            confusion_matrix=[[int(v) for v in row] for row in matrix] if matrix else None,
            ci={name: Interval.from_dict(v) for name, v in (data.get("ci") or {}).items() if v is not None},
            length_bins=[LengthBin(**b) for b in data.get("length_bins") or []],
            chunks=ChunkEvaluation.from_dict(data["chunks"]) if data.get("chunks") else None,
            n_bootstrap=int(data.get("n_bootstrap") or 0),
            seed=data.get("seed"),
            confidence_level=float(data.get("confidence_level") or 0.95),
            ids_sha256=data.get("ids_sha256"),
            origin=str(data.get("origin") or ""),
            meta=dict(data.get("meta") or {}),
        )

    def save(self, path: str | Path) -> Path:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Evaluation:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no metrics file at {path}", expected="evaluation JSON (Evaluation.save)",
                             fix="check the path of --baseline-metrics")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise InputError(f"{path} is not valid JSON", found=str(error)) from error
        evaluation = cls.from_dict(data, str(path))
        evaluation.loaded_from = str(path)
        return evaluation


# Scalar fields of a metrics file and what each must be.
_COUNT_FIELDS = ("n", "n_viral", "n_host", "n_bootstrap")


def _check_numbers(data: Mapping[str, Any], where: str) -> None:
    """Refuse non-numeric metrics and counts (e.g. ``"accuracy": "abc"``), naming every bad field at once."""
    problems = []
    for name in (*METRICS, *_COUNT_FIELDS, "confidence_level"):
        value = data.get(name)
        if value is None:
            continue
        try:
            number = float(value)
            if name in _COUNT_FIELDS and (isinstance(value, bool) or number != int(number) or number < 0):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            problems.append(f"{name} = {value!r}")
    if problems:
        raise InputError(
            f"{where}: {len(problems)} field(s) are not numbers of the right kind",
            expected="metrics as numbers (accuracy 0.93, or null when unknown); n, n_viral, n_host and "
            "n_bootstrap as non-negative integers",
            found=", ".join(problems),
            fix="write each value as a JSON number, e.g. \"accuracy\": 0.93 (null for an unknown metric)",
        )


def _check_evaluable(predictions: Predictions) -> None:
    if len(predictions) == 0:
        raise InputError("no predictions to evaluate", expected="at least one viral and one host test sample",
                         found="0 samples", fix="check that the test split is not empty")
    classes = set(np.unique(predictions.y_true).tolist())
    if classes != {HOST, VIRAL}:
        present = "viral (1)" if VIRAL in classes else "host (0)"
        raise InputError(
            f"the test samples are all {present}: ROC-AUC and average precision are undefined with one class, "
            "and accuracy would only measure one side",
            expected="test samples of both classes, viral (1) and host (0)",
            found=f"{len(predictions)} samples, all {present}",
            fix="evaluate on the test split of both classes (virnucpro split draws each class separately)",
        )


def evaluate(
    predictions: Predictions,
    *,
    n_bootstrap: int = 1000,
    seed: int = 42,
    length_bins: Sequence[int] = DEFAULT_LENGTH_BINS,
    confidence_level: float = 0.95,
) -> Evaluation:
    """Every metric of one model's test-set predictions.

    Args:
        predictions: frame-level predictions with true labels.
        n_bootstrap: bootstrap resamples for the confidence intervals (0: none).
            About 5 ms each; more gives steadier interval ends.
        seed: seed of the resampling; the same seed gives the same intervals.
        length_bins: protein-length bin edges in residues (see :func:`length_breakdown`).
        confidence_level: of the intervals.

    Raises:
        InputError: no samples, or samples of one class only.
    """
    _check_evaluable(predictions)
    if n_bootstrap < 0:
        raise InputError("n_bootstrap must be 0 (no intervals) or more", found=str(n_bootstrap))
    y, yp, pv = predictions.y_true, predictions.y_pred, predictions.p_viral
    point = dict(zip(METRICS, _score_vector(y, yp, pv)))
    return Evaluation(
        n=len(predictions),
        n_viral=int((y == VIRAL).sum()),
        n_host=int((y == HOST).sum()),
        **{name: float(value) for name, value in point.items()},
        confusion_matrix=_confusion(y, yp),
        ci=bootstrap_intervals(y, yp, pv, n_bootstrap=n_bootstrap, seed=seed, confidence_level=confidence_level),
        length_bins=length_breakdown(predictions, length_bins),
        chunks=evaluate_chunks(predictions),
        n_bootstrap=n_bootstrap,
        seed=seed,
        confidence_level=confidence_level,
        ids_sha256=predictions.ids_sha256,
        origin=f"computed from {len(predictions)} test predictions",
        meta=dict(predictions.meta),
    )
