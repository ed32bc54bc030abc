"""FastESM2_650 against the ESM2 3B baseline on the identical test samples: what the accuracy gate is decided on.

:func:`compare` measures ``accuracy drop = baseline accuracy − FastESM2
accuracy`` (absolute, frame level) and everything a reader weighs it with. The
measurement is exact (:attr:`Comparison.exact_drop`): with paired predictions
the drop is ``(correct_baseline − correct_fast) / n`` in rational arithmetic,
otherwise the two accuracies as written. The gate's decision (the drop must be
strictly below ``max_accuracy_drop``, :data:`virnucpro_core.compare.rules.ACCURACY_RULE`;
a drop equal to the limit fails) is made by
:func:`virnucpro_core.gate.gates.decide_accuracy`, for ``virnucpro compare`` and
the acceptance suite alike, and recorded on the comparison
(:attr:`Comparison.passed`, ``reason``, ``next_steps``) for its reports.

With the baseline's per-sample predictions the comparison is *paired*: ids
must match exactly, the drop gets a paired bootstrap CI (the same resampled
indices for both models, from :mod:`virnucpro_core.evaluate.bootstrap`,
percentile method) and McNemar's exact test runs on the discordant pairs
(:func:`scipy.stats.binomtest`, two-sided, p = 0.5). With a baseline metrics
file only, neither is possible and the comparison says so (``paired=False``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from virnucpro_core.defaults import COMPARE_NAMES, MAX_ACCURACY_DROP
from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_write_text
from virnucpro_core.evaluate import bootstrap
from virnucpro_core.evaluate.metrics import METRICS, Evaluation, Interval, evaluate
from virnucpro_core.evaluate.predictions import Predictions
from virnucpro_core.layouts.features import feature_info
from virnucpro_core.compare.pairing import BASELINE_MODEL, FAST_MODEL, align, check_lineage, check_pair, check_roles
from virnucpro_core.split.make import vocabulary_problems

COMPARISON_FORMAT = "virnucpro-comparison"
FORMAT_VERSION = 1
DEFAULT_NAMES = COMPARE_NAMES
MCNEMAR_METHOD = "McNemar exact test: two-sided binomial test of the discordant pairs, p = 0.5 (scipy.stats.binomtest)"
DROP_CI_METHOD = "paired percentile bootstrap: the same resampled test samples for both models (scipy.stats.bootstrap)"
_SHOW = 5  # ids named in an error message


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for people: fixed decimals, a true minus sign, '—' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:.{digits}f}"
    return text.replace("-", "−") if text.startswith("-") else text


def fmt_ci(interval: Interval | None, digits: int = 4) -> str:
    if interval is None or math.isnan(interval.low):
        return "—"
    return f"{fmt(interval.low, digits)} to {fmt(interval.high, digits)}"


# --------------------------------------------------------------------------- pieces


@dataclass
class McNemar:
    """The paired correct/incorrect table of the two models and McNemar's exact p-value."""

    both_correct: int
    fast_only_correct: int  # FastESM2 right, baseline wrong
    baseline_only_correct: int  # baseline right, FastESM2 wrong
    both_wrong: int
    p_value: float
    method: str = MCNEMAR_METHOD

    @property
    def discordant(self) -> int:
        return self.fast_only_correct + self.baseline_only_correct

    @property
    def table(self) -> list[list[int]]:
        """Rows: baseline correct / wrong; columns: FastESM2 correct / wrong."""
        return [[self.both_correct, self.baseline_only_correct], [self.fast_only_correct, self.both_wrong]]

    @classmethod
    def from_correct(cls, fast_correct: np.ndarray, baseline_correct: np.ndarray) -> McNemar:
        fast_correct, baseline_correct = np.asarray(fast_correct, bool), np.asarray(baseline_correct, bool)
        fast_only = int((fast_correct & ~baseline_correct).sum())
        baseline_only = int((~fast_correct & baseline_correct).sum())
        discordant = fast_only + baseline_only
        # No discordant pair: the models agree everywhere, no evidence of a difference.
        p_value = 1.0 if discordant == 0 else float(stats.binomtest(fast_only, discordant, 0.5).pvalue)
        return cls(
            both_correct=int((fast_correct & baseline_correct).sum()),
            fast_only_correct=fast_only,
            baseline_only_correct=baseline_only,
            both_wrong=int((~fast_correct & ~baseline_correct).sum()),
            p_value=p_value,
        )


@dataclass
class MetricRow:
    """One metric of both models side by side; ``drop`` is baseline − FastESM2 (positive: FastESM2 is worse)."""

    name: str
    label: str
    level: str  # "frame" or "chunk"
    baseline: float
    fast: float
    baseline_ci: Interval | None = None
    fast_ci: Interval | None = None

    @property
    def drop(self) -> float:
        return self.baseline - self.fast


@dataclass
class LengthRow:
    """Accuracy of both models in one protein-length bin; ``drop`` is baseline − FastESM2."""

    label: str
    low: int
    high: int | None
    n: int
    baseline_accuracy: float
    fast_accuracy: float

    @property
    def drop(self) -> float:
        return self.baseline_accuracy - self.fast_accuracy


# --------------------------------------------------------------------------- the comparison


@dataclass
class Comparison:
    """FastESM2 vs baseline: both evaluations, the accuracy drop with its CI, McNemar, and the gate's decision.

    Attributes:
        fast, baseline: the two models' evaluations on the same test set.
        accuracy_drop: baseline accuracy − FastESM2 accuracy (positive: FastESM2 is worse).
        drop_ci: paired bootstrap CI of the drop; None when not paired or ``n_bootstrap=0``.
        max_accuracy_drop: the limit; ``passed`` iff ``accuracy_drop < max_accuracy_drop``.
        passed: the accuracy gate's decision (:func:`virnucpro_core.gate.gates.decide_accuracy`); None until
            it is made (:func:`compare` only measures).
        reason: one sentence with metric, measured value, CI, limit and verdict (empty until decided).
        next_steps: what to do when the gate fails (empty on PASS).
        paired: the baseline came with per-sample predictions on the same ids.
        paired_note: what pairing gave, or why there is none.
        mcnemar: McNemar's exact test (paired only).
        baseline_source: where the baseline's numbers came from.
        notes: caveats the report must show (e.g. test-set identity not checkable).
        provenance: ``{"fast": meta, "baseline": meta}`` from the predictions' meta.
    """

    fast: Evaluation
    baseline: Evaluation
    accuracy_drop: float
    drop_ci: Interval | None
    max_accuracy_drop: float
    paired: bool
    paired_note: str
    mcnemar: McNemar | None
    baseline_source: str
    fast_name: str = DEFAULT_NAMES[0]
    baseline_name: str = DEFAULT_NAMES[1]
    n_bootstrap: int = 1000
    seed: int = 42
    confidence_level: float = 0.95
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    passed: bool | None = None
    reason: str = ""
    next_steps: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    @property
    def n(self) -> int:
        return self.fast.n

    @property
    def exact_drop(self) -> Fraction:
        """The accuracy drop in rational arithmetic, what the gate's rule is applied to: paired, the discordant
        pairs over the samples; otherwise the two accuracies as they are written (:func:`exact`)."""
        if self.paired and self.mcnemar is not None:
            return Fraction(self.mcnemar.baseline_only_correct - self.mcnemar.fast_only_correct, self.n)
        return exact(self.baseline.accuracy) - exact(self.fast.accuracy)

    @property
    def undecided(self) -> bool:
        """The drop's point estimate is within the limit, but the upper end of its CI is not: this test set cannot
        show that the drop is below the limit (the gate still follows its rule, the point estimate)."""
        ci = self.drop_ci
        return ci is not None and self.accuracy_drop < self.max_accuracy_drop <= ci.high

    def samples_to_decide(self) -> int | None:
        """About how many test samples would put the CI's upper end below the limit, at the observed rates of
        discordant pairs (normal approximation of the paired difference: n = z² (p₁₀ + p₀₁ − d²) / (limit − d)²);
        None when it cannot be said (not paired, or the drop is not below the limit)."""
        m, limit, drop = self.mcnemar, self.max_accuracy_drop, self.accuracy_drop
        if m is None or not self.n or drop >= limit:
            return None
        variance = (m.baseline_only_correct + m.fast_only_correct) / self.n - drop**2
        z = float(stats.norm.ppf(0.5 + self.confidence_level / 2))
        return max(self.n + 1, math.ceil(z * z * variance / (limit - drop) ** 2))

    def undecided_statement(self) -> str | None:
        """What the banner says when :attr:`undecided` (None otherwise)."""
        if not self.undecided:
            return None
        level = f"{self.confidence_level:.0%}".replace("%", " %")
        needed = self.samples_to_decide()
        more = (f" About {needed:,} test samples (this set has {self.n:,}) would show it at the observed rate of "
                f"discordant pairs ({self.mcnemar.discordant} of {self.n:,})." if needed else "")
        return (f"This test set cannot show that the accuracy drop is below the limit: the drop {fmt(self.accuracy_drop)} "
                f"is within {self.max_accuracy_drop:g}, but its {level} CI reaches {fmt(self.drop_ci.high)}. The "
                f"gate's rule (the point estimate) decides the verdict.{more}")

    def metric_rows(self, level: str = "frame") -> list[MetricRow]:
        """Every scalar metric of both models, frame level or chunk level (VirNucPro's per-chunk call)."""
        if level == "frame":
            fast, base = self.fast, self.baseline
        elif level == "chunk":
            fast, base = self.fast.chunks, self.baseline.chunks
            if fast is None or base is None:
                return []
        else:
            raise ValueError(f"level must be 'frame' or 'chunk', not {level!r}")
        rows = []
        for name, label in METRICS.items():
            rows.append(MetricRow(
                name=name, label=label, level=level,
                baseline=float(getattr(base, name)), fast=float(getattr(fast, name)),
                baseline_ci=self.baseline.ci.get(name) if level == "frame" else None,
                fast_ci=self.fast.ci.get(name) if level == "frame" else None,
            ))
        return rows

    def length_rows(self) -> list[LengthRow]:
        """Per-length accuracy of both models, over the bins both evaluations have."""
        base = {b.key: b for b in self.baseline.length_bins}
        rows = []
        for fast_bin in self.fast.length_bins:
            base_bin = base.get(fast_bin.key)
            if base_bin is None:
                continue
            rows.append(LengthRow(fast_bin.label, fast_bin.low, fast_bin.high, fast_bin.n,
                                  base_bin.accuracy, fast_bin.accuracy))
        return rows

    @property
    def chunk_accuracy_drop(self) -> float:
        if self.fast.chunks is None or self.baseline.chunks is None:
            return math.nan
        return self.baseline.chunks.accuracy - self.fast.chunks.accuracy

    # -- files
    def to_dict(self) -> dict[str, Any]:
        def row_dict(row: MetricRow) -> dict[str, Any]:
            return {
                "name": row.name, "label": row.label, "level": row.level, "baseline": row.baseline,
                "fast": row.fast, "drop": row.drop,
                "baseline_ci": row.baseline_ci.to_dict() if row.baseline_ci else None,
                "fast_ci": row.fast_ci.to_dict() if row.fast_ci else None,
            }

        data = {
            "format": COMPARISON_FORMAT,
            "version": FORMAT_VERSION,
            "verdict": self.verdict,
            "passed": self.passed,
            "reason": self.reason,
            "next_steps": list(self.next_steps),
            "accuracy_drop": self.accuracy_drop,
            "drop_ci": self.drop_ci.to_dict() if self.drop_ci else None,
            "drop_ci_method": DROP_CI_METHOD if self.drop_ci else None,
            "max_accuracy_drop": self.max_accuracy_drop,
            "paired": self.paired,
            "paired_note": self.paired_note,
            "mcnemar": asdict(self.mcnemar) if self.mcnemar else None,
            "baseline_source": self.baseline_source,
            "fast_name": self.fast_name,
            "baseline_name": self.baseline_name,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
            "confidence_level": self.confidence_level,
            "notes": list(self.notes),
            "provenance": self.provenance,
            "fast": self.fast.to_dict(),
            "baseline": self.baseline.to_dict(),
            # Derived views, for readers of the JSON; ignored by from_dict.
            "metrics": [row_dict(r) for r in self.metric_rows("frame") + self.metric_rows("chunk")],
            "length_breakdown": [{**asdict(r), "drop": r.drop} for r in self.length_rows()],
            "chunk_accuracy_drop": self.chunk_accuracy_drop,
        }
        return _json_safe(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        if data.get("format") != COMPARISON_FORMAT:
            raise InputError("not a comparison file", expected=f"format {COMPARISON_FORMAT!r}",
                             found=f"format {data.get('format')!r}", fix="pass a comparison.json from Comparison.save")
        return cls(
            fast=Evaluation.from_dict(data["fast"], "comparison: fast"),
            baseline=Evaluation.from_dict(data["baseline"], "comparison: baseline"),
            accuracy_drop=float(data["accuracy_drop"]),
            drop_ci=Interval.from_dict(data["drop_ci"]) if data.get("drop_ci") else None,
            max_accuracy_drop=float(data["max_accuracy_drop"]),
            passed=bool(data["passed"]),
            reason=str(data["reason"]),
            next_steps=list(data.get("next_steps") or []),
            paired=bool(data["paired"]),
            paired_note=str(data.get("paired_note") or ""),
            mcnemar=McNemar(**data["mcnemar"]) if data.get("mcnemar") else None,
            baseline_source=str(data.get("baseline_source") or ""),
            fast_name=str(data.get("fast_name") or DEFAULT_NAMES[0]),
            baseline_name=str(data.get("baseline_name") or DEFAULT_NAMES[1]),
            n_bootstrap=int(data.get("n_bootstrap") or 0),
            seed=int(data.get("seed") or 0),
            confidence_level=float(data.get("confidence_level") or 0.95),
            notes=list(data.get("notes") or []),
            provenance=dict(data.get("provenance") or {}),
        )

    def save(self, path: str | Path) -> Path:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Comparison:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no comparison file at {path}", fix="run `virnucpro compare` first")
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


# --------------------------------------------------------------------------- building it


def _paired_drop_ci(baseline_correct: np.ndarray, fast_correct: np.ndarray, *, n_bootstrap: int, seed: int,
                    confidence_level: float) -> Interval | None:
    if n_bootstrap <= 0:
        return None
    base, fast = np.asarray(baseline_correct, dtype=float), np.asarray(fast_correct, dtype=float)

    def drop(rows: np.ndarray) -> np.ndarray:
        return np.mean(base[rows], axis=-1) - np.mean(fast[rows], axis=-1)

    drops = bootstrap.resampled(drop, len(base), n_resamples=n_bootstrap, seed=seed)
    return Interval(*bootstrap.scipy_percentile_interval(drops, confidence_level), n_bootstrap)


def exact(value: float) -> Fraction:
    """A float as the decimal it prints as (0.05 → 1/20), so 0.9 − 0.85 equals a 0.05 limit exactly."""
    return Fraction(repr(float(value)))


def uses_random_weights(meta: Mapping[str, Any] | None) -> bool:
    """Whether provenance says random-weight stand-ins were used: a ``"weights": "random"`` anywhere in it."""
    if not isinstance(meta, Mapping):
        return False
    for key, value in meta.items():
        if key == "weights" and value == "random":
            return True
        if isinstance(value, Mapping) and uses_random_weights(value):
            return True
    return False


def compare(
    fast: Predictions,
    baseline: Predictions | None,
    *,
    baseline_metrics: Evaluation | Mapping[str, Any] | None = None,
    max_accuracy_drop: float = MAX_ACCURACY_DROP,
    n_bootstrap: int = 1000,
    seed: int = 42,
    confidence_level: float = 0.95,
    names: Sequence[str] = DEFAULT_NAMES,
    fast_evaluation: Evaluation | None = None,
    baseline_evaluation: Evaluation | None = None,
    baseline_source: str | None = None,
) -> Comparison:
    """Compare FastESM2 with the baseline on the identical test samples: the measurement the accuracy gate is
    decided on (:func:`virnucpro_core.gate.gates.decide_accuracy` decides it).

    Args:
        fast: FastESM2 predictions on the test set.
        baseline: ESM2 3B predictions on the same ids, or None when only its metrics exist.
        baseline_metrics: the baseline's :class:`Evaluation` or a metrics dict (at least
            ``accuracy``), used when ``baseline`` is None; no paired CI or McNemar then.
        max_accuracy_drop: the gate's limit (it passes iff baseline − FastESM2 accuracy is strictly below it).
        n_bootstrap: resamples for every CI (0: no CIs).
        seed: seed of every resampling.
        confidence_level: of every CI.
        names: display names of (fast, baseline).
        fast_evaluation, baseline_evaluation: evaluations already computed from these
            predictions (skips recomputing them; must be of the same test ids).
        baseline_source: how to describe where the baseline came from (default: derived).

    Raises:
        InputError: ids differ between the two predictions (names a few), both or
            neither of ``baseline`` / ``baseline_metrics`` given, a limit outside
            [0, 1], or a metrics file of another test set.
    """
    if (baseline is None) == (baseline_metrics is None):
        raise InputError(
            "give the baseline as predictions or as metrics, exactly one of them",
            expected="baseline predictions (paired comparison) or baseline_metrics (from a file)",
            found="both" if baseline is not None else "neither",
            fix="pass --baseline PREDICTIONS, or --baseline-metrics JSON when its features are unavailable",
        )
    if not (math.isfinite(max_accuracy_drop) and 0.0 <= max_accuracy_drop <= 1.0):
        raise InputError("max_accuracy_drop must be a fraction of accuracy", expected="a value in [0, 1], e.g. 0.05",
                         found=str(max_accuracy_drop))
    fast_name, baseline_name = names
    fast_eval = fast_evaluation or evaluate(fast, n_bootstrap=n_bootstrap, seed=seed, confidence_level=confidence_level)
    if fast_eval.ids_sha256 not in (None, fast.ids_sha256):
        raise InputError("fast_evaluation was computed on other samples than the fast predictions",
                         fix="evaluate the same predictions, or leave fast_evaluation out")
    level_text = f"{confidence_level:.0%}".replace("%", " %")
    notes: list[str] = []
    provenance = {"fast": dict(fast.meta)}

    check_roles(fast.meta, "fast", FAST_MODEL)
    if baseline is not None:
        check_roles(baseline.meta, "baseline", BASELINE_MODEL)
        check_pair(fast.meta, baseline.meta)
        check_lineage({"fast": fast.meta, "baseline": baseline.meta},
                       {"fast": "the FastESM2 predictions", "baseline": "the baseline predictions"})
        mixed = vocabulary_problems([feature_info(fast.meta), feature_info(baseline.meta)], names)
        if mixed:
            raise InputError(
                f"{fast_name} and {baseline_name} predictions come from features tokenised with different vocabularies",
                expected="both arms embedded with ESM-2's alphabet and the same DNABERT-S tokenizer "
                "(their fingerprints are in each feature file's meta: vocab_sha256)",
                found="; ".join(mixed),
                fix="re-extract the features of the arm without a fingerprint, or made with a foreign vocab.txt, "
                "with this version (`virnucpro extract`), then merge, split, train and evaluate again",
            )
        baseline = align(fast, baseline)
        base_eval = baseline_evaluation or evaluate(baseline, n_bootstrap=n_bootstrap, seed=seed,
                                                    confidence_level=confidence_level)
        if base_eval.ids_sha256 not in (None, baseline.ids_sha256):
            raise InputError("baseline_evaluation was computed on other samples than the baseline predictions",
                             fix="evaluate the same predictions, or leave baseline_evaluation out")
        provenance["baseline"] = dict(baseline.meta)
        fast_correct, base_correct = fast.correct, baseline.correct
        n = len(fast)
        drop = float(Fraction(int(base_correct.sum()) - int(fast_correct.sum()), n))
        ci = _paired_drop_ci(base_correct, fast_correct, n_bootstrap=n_bootstrap, seed=seed,
                             confidence_level=confidence_level)
        mcnemar = McNemar.from_correct(fast_correct, base_correct)
        paired = True
        paired_note = (f"paired on {n} identical test samples: {level_text} CI by {DROP_CI_METHOD}; "
                       f"{mcnemar.method}" + ("" if ci is not None else "; no CI (n_bootstrap=0)"))
        source = baseline_source or "per-sample predictions on the same test ids"
    else:
        base_eval = (baseline_metrics if isinstance(baseline_metrics, Evaluation)
                     else Evaluation.from_dict(baseline_metrics, "baseline metrics"))
        where = baseline_source or (f"metrics file {base_eval.loaded_from}" if base_eval.loaded_from
                                    else "a metrics object without per-sample predictions")
        check_lineage({"fast": fast.meta, "baseline": base_eval.meta},
                       {"fast": "the FastESM2 predictions", "baseline": f"the baseline metrics ({where})"})
        if base_eval.ids_sha256 is not None and base_eval.ids_sha256 != fast.ids_sha256:
            raise InputError(
                f"the baseline metrics ({where}) were measured on another test set",
                expected=f"ids_sha256 {fast.ids_sha256[:16]}… (the {len(fast)} FastESM2 test ids)",
                found=f"ids_sha256 {base_eval.ids_sha256[:16]}…",
                fix="evaluate the baseline on this split's test set, or compare on the split its metrics came from",
            )
        if base_eval.n and base_eval.n != len(fast):
            raise InputError(
                f"the baseline metrics ({where}) count {base_eval.n} test samples, FastESM2 has {len(fast)}",
                expected="metrics of the identical test samples",
                fix="evaluate the baseline on this split's test set",
            )
        if base_eval.ids_sha256 is None:
            notes.append(f"The baseline metrics ({where}) carry no ids_sha256: that they come from the identical "
                         f"{len(fast)} test samples cannot be checked.")
        provenance["baseline"] = dict(base_eval.meta)
        drop = float(exact(base_eval.accuracy) - exact(fast_eval.accuracy))
        ci, mcnemar, paired = None, None, False
        paired_note = (f"not paired: the baseline came from {where}, without per-sample predictions, so there is "
                       "no paired CI of the drop and no McNemar test")
        source = where

    return Comparison(
        fast=fast_eval,
        baseline=base_eval,
        accuracy_drop=drop,
        drop_ci=ci,
        max_accuracy_drop=float(max_accuracy_drop),
        paired=paired,
        paired_note=paired_note,
        mcnemar=mcnemar,
        baseline_source=source,
        fast_name=fast_name,
        baseline_name=baseline_name,
        n_bootstrap=n_bootstrap,
        seed=seed,
        confidence_level=confidence_level,
        notes=notes,
        provenance=provenance,
    )
