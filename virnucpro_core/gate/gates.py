"""The two acceptance gates: the rule each applies, the decision each makes and the typed result each comes to.

Both gates are decided here, for the acceptance suite and ``virnucpro compare`` alike:

* ``accuracy`` — ESM2 3B accuracy − FastESM2 accuracy on the identical test
  samples must be strictly below the limit (``settings.max_accuracy_drop``);
  shown with its paired 95 % CI. :func:`~virnucpro_core.compare.comparison.compare`
  measures the drop exactly; :func:`decide_accuracy` applies
  :data:`~virnucpro_core.compare.rules.ACCURACY_RULE` to it (the sentence a
  reader sees, the next steps of a FAIL) and records the decision on the
  comparison for its reports; :func:`accuracy_gate` is the decided
  comparison as the gate's result.
* ``speed`` — FastESM2's embedding time over ESM2 3B's, the as-deployed pair,
  must be at most the limit (``settings.max_time_ratio``): :func:`speed_gate`.

Each gate is computed once, here, into a :class:`GateResult`: the measured
value, the limit, the comparison that passes, the CI where there is one, the
status, the sentence a reader sees and the numbers behind it. The acceptance
tests assert on these results, and the verdict and every report read the same
objects (through :class:`~virnucpro_core.gate.session.AcceptanceSession`).
:func:`settle` joins a measurement with the outcome of the test that decides
the gate: a gate whose test errored, was skipped or did not run is ``error``
or ``not run``, whatever was measured. Limits are never restated here: they
come from the run's settings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virnucpro_core.compare.comparison import Comparison, exact, fmt, fmt_ci, uses_random_weights
from virnucpro_core.compare.rules import ACCURACY, ACCURACY_RULE, SPEED, SPEED_RULE, within_limit
from virnucpro_core.defaults import EMBEDDER_FAMILIES
from virnucpro_core.files import atomic_write_text
from virnucpro_core.evaluate.metrics import Interval
from virnucpro_core.tables import json_number

if TYPE_CHECKING:  # annotations only: keeps the benchmark (and torch) out of this import
    from virnucpro_core.gate.benchmark import TimingResult

GATES = (ACCURACY, SPEED)  # in the order the verdict lists them
PASSED, FAILED, NOT_RUN, ERROR = "passed", "failed", "not run", "error"
MEASURED = (PASSED, FAILED)
SPEED_PAIRING = "as-deployed"  # the gated pair; like-for-like is shown beside it, never gated


@dataclass
class GateResult:
    """What one gate came to.

    Attributes:
        gate: ``accuracy`` or ``speed``.
        status: ``passed`` / ``failed`` (measured) or ``not run`` / ``error`` (nothing to judge).
        reason: the one sentence the verdict and the reports show.
        measured: the gated value (accuracy drop, time ratio); None when not measured.
        limit: the limit it was judged against (from the run's settings).
        relation: the relation that passes (``<`` or ``≤``).
        ci: the measured value's confidence interval, where there is one (the accuracy drop's paired 95 % CI).
        failure: what the gate's test fails with: the reason with its context and next steps.
        next_steps: what to do about a failed gate.
        numbers: the figures behind it (accuracies, times, proteins, device, pairing, ...).
    """

    gate: str
    status: str
    reason: str
    measured: float | None = None
    limit: float | None = None
    relation: str = ""
    ci: Interval | None = None
    failure: str = ""
    next_steps: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def was_measured(self) -> bool:
        """Passed or failed: a value was judged against the limit."""
        return self.status in MEASURED

    @property
    def result(self) -> str:
        """``PASS`` / ``FAIL`` for a measured gate, else its status."""
        return {PASSED: "PASS", FAILED: "FAIL"}.get(self.status, self.status)

    def to_dict(self, *, limit: float | None = None, run_passed: bool = False) -> dict[str, Any]:
        """The gate as numbers a CI script reads: its entry in ``acceptance.json``'s ``gates``
        (``docs/acceptance.schema.json``): metric, status, result, value, limit, relation, CI, reason.

        ``value`` and ``ci`` are null when nothing was measured; ``limit`` (the run's setting) stands in for a gate
        that records none. A passed gate's ``reason`` says PASS only when the run passed (``run_passed``), as in the
        banner; otherwise "measured: within limit".
        """
        rule = {ACCURACY: ACCURACY_RULE, SPEED: SPEED_RULE}[self.gate]
        ci = self.ci if self.ci is not None and self.was_measured else None
        return {
            "metric": rule.metric,
            "status": self.status,
            "result": self.result,
            "value": json_number(self.measured) if self.was_measured else None,
            "limit": json_number(self.limit if self.limit is not None else limit),
            "relation": rule.relation,
            "ci": {"low": json_number(ci.low), "high": json_number(ci.high),
                   "level": json_number(self.numbers.get("confidence_level"))} if ci is not None else None,
            "reason": self.reason if run_passed else within_limit(self.reason),
        }

    def to_record(self) -> dict[str, Any]:
        """Every field, for :meth:`save` and :meth:`from_record` (the report's entry is :meth:`to_dict`)."""
        data = asdict(self)
        data["ci"] = self.ci.to_dict() if self.ci is not None else None
        return data

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> GateResult:
        fields = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        fields["ci"] = Interval.from_dict(data["ci"]) if data.get("ci") else None
        return cls(**fields)

    def save(self, path: str | Path) -> Path:
        atomic_write_text(path, json.dumps(self.to_record(), indent=1, ensure_ascii=False) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> GateResult:
        return cls.from_record(json.loads(Path(path).read_text(encoding="utf-8")))


# ---------------------------------------------------------------------------- deciding the accuracy gate


def decide_accuracy(comparison: Comparison) -> Comparison:
    """The accuracy gate's decision on a comparison's measurement, recorded on a copy of it for its reports.

    :data:`ACCURACY_RULE` applied exactly (:attr:`~virnucpro_core.compare.comparison.Comparison.exact_drop`
    against the limit as it is written: a drop equal to the limit fails); ``reason``, the sentence a reader sees
    (metric, value, CI, limit, verdict, accuracies); ``next_steps`` on a FAIL.
    """
    passed = ACCURACY_RULE.holds(comparison.exact_drop, exact(comparison.max_accuracy_drop))
    decided = replace(comparison, passed=passed, reason=_accuracy_reason(comparison, passed), next_steps=[])
    if not passed:
        decided.next_steps = accuracy_next_steps(decided)
    return decided


def _accuracy_reason(comparison: Comparison, passed: bool) -> str:
    if comparison.drop_ci is not None:
        ci = f"{comparison.confidence_level:.0%} CI {fmt_ci(comparison.drop_ci)}".replace("%", " %")
    else:
        ci = "no CI: n_bootstrap=0" if comparison.paired else "no paired CI: baseline from metrics only"
    detail = (f"{comparison.baseline_name} accuracy {fmt(comparison.baseline.accuracy)}, {comparison.fast_name} "
              f"{fmt(comparison.fast.accuracy)} on {comparison.n} test samples"
              + ("" if comparison.paired else f"; baseline from {comparison.baseline_source}, not paired"))
    return ACCURACY_RULE.sentence(fmt(comparison.accuracy_drop), comparison.max_accuracy_drop, passed, detail, ci=ci)


def accuracy_next_steps(comparison: Comparison) -> list[str]:
    """Concrete actions for a failed accuracy gate, most likely cause first, from what the comparison measured."""
    fast, base = comparison.fast_name, comparison.baseline_name
    steps = []
    if any(uses_random_weights(meta) for meta in comparison.provenance.values()):
        steps.append("These predictions come from random-weight stand-ins: this FAIL says nothing about FastESM2. "
                     "Rerun with --weights pretrained and the published checkpoints.")
    steps.append(f"Check the {fast} weights: the published Synthyra/FastESM2_650 checkpoint at the pinned revision, "
                 "loaded as pretrained (see the provenance: weights, source, revision, dtype). A wrong or partly "
                 "initialised checkpoint alone explains a large drop.")
    rows = [r for r in comparison.length_rows() if r.n >= 10] or comparison.length_rows()
    if rows:
        worst = max(rows, key=lambda r: r.drop)
        if worst.drop > 0:
            steps.append(
                f"The drop is largest for proteins of {worst.label} residues (n={worst.n}: "
                f"{base} {fmt(worst.baseline_accuracy)}, {fast} {fmt(worst.fast_accuracy)}, drop {fmt(worst.drop)}). "
                f"Check how {fast} embeds those: "
                "truncation, special tokens, and that mean pooling skips padding.")
    chunk_drop = comparison.chunk_accuracy_drop
    if not math.isnan(chunk_drop):
        verdict = "below" if chunk_drop < comparison.max_accuracy_drop else "also at or above"
        steps.append(f"Per-chunk calls (VirNucPro's reported output): drop {fmt(chunk_drop)}, {verdict} the limit "
                     f"{comparison.max_accuracy_drop:g}; see the per-chunk table.")
    ci = comparison.drop_ci
    if ci is not None and ci.low < comparison.max_accuracy_drop <= ci.high:
        steps.append(f"The CI ({fmt_ci(ci)}) straddles the limit: a larger test set decides "
                     "(`virnucpro split --test-fraction`, or more input genomes).")
    if comparison.mcnemar is not None and comparison.mcnemar.p_value >= 0.05:
        steps.append(f"McNemar p = {comparison.mcnemar.p_value:.3g}: on these {comparison.n} samples the models' "
                     "errors do not differ significantly; more test samples would tell a real drop from noise.")
    steps.append(f"Check the {fast} training curves: if it stopped early or its validation loss was still falling, "
                 "retrain with more patience (`virnucpro train --patience 10 --max-epochs 300`) on the same split "
                 "and seed.")
    steps.append("Check the test set: leakage of genomes or chunks into training (split distribution.json, "
                 "`virnucpro split --group-by source` to remove it), and that both models used the same split id.")
    if not comparison.paired:
        steps.append("Give the baseline's per-sample predictions instead of a metrics file, for a paired CI and "
                     "McNemar's test on the same samples.")
    return steps


# ---------------------------------------------------------------------------- measuring


def accuracy_gate(comparison: Comparison) -> GateResult:
    """The accuracy gate's result from a comparison (decided by :func:`decide_accuracy` here if it was not)."""
    if comparison.passed is None:
        comparison = decide_accuracy(comparison)
    steps = "".join(f"\n  - {step}" for step in comparison.next_steps)
    return GateResult(
        gate=ACCURACY,
        status=PASSED if comparison.passed else FAILED,
        reason=comparison.reason,
        measured=comparison.accuracy_drop,
        limit=comparison.max_accuracy_drop,
        relation=ACCURACY_RULE.relation,
        ci=comparison.drop_ci,
        failure="" if comparison.passed else
        f"accuracy gate {comparison.reason}" + (f"\nnext steps:{steps}" if steps else ""),
        next_steps=list(comparison.next_steps),
        numbers={"fast_accuracy": comparison.fast.accuracy, "baseline_accuracy": comparison.baseline.accuracy,
                 "test_samples": comparison.n, "paired": comparison.paired,
                 "confidence_level": comparison.confidence_level, "baseline_source": comparison.baseline_source},
    )


# Shown when the speed gate fails, after the check of the device the rounds ran on (IDLE_STEPS); the like-for-like
# pair tells the model from its settings.
SPEED_NEXT_STEPS = [
    "Compare the like-for-like pair: if it passes, the difference comes from dtype or batching, not the model.",
    "Raise --bench-sample for steadier timings, or profile the extractor with benchmarks/extract_throughput.py.",
]
IDLE_STEPS = {
    "gpu": "Check that the GPU was idle and the same for both models (see Environment).",
    "cpu": ("The rounds ran on the CPU: check that the machine was idle (see Environment: CPU cores and the load "
            "average at the start and end of the run) and rerun when it is."),
}


def speed_next_steps(device: str) -> list[str]:
    """What to do about a failed speed gate timed on ``device``: first check that device was idle."""
    return [IDLE_STEPS["gpu" if str(device).startswith("cuda") else "cpu"], *SPEED_NEXT_STEPS]

#: A model's slowest timed round over its fastest above which the speed gate calls its timing unstable.
UNSTABLE_SPREAD = 1.5
UNSTABLE_STEP = ("The speed gate's timing was unstable (a model's rounds spread by more than "
                 f"{UNSTABLE_SPREAD}x, max/min; see its rounds in the report): rerun on an idle machine before "
                 "trusting the time ratio; the verdict still uses the mean of the timed rounds.")


def spread(runs_s: list[float]) -> float:
    """The slowest round over the fastest (1.0 for one round; infinite when a round took no time)."""
    fastest = min(runs_s)
    return max(runs_s) / fastest if fastest > 0 else float("inf")


def time_ratio(timings: Mapping[tuple[str, str], TimingResult], pairing: str) -> float | None:
    """FastESM2's mean time over ESM2 3B's in one pairing, or None when either was not timed."""
    fast, baseline = timings.get((pairing, "fast")), timings.get((pairing, "baseline"))
    if fast is None or baseline is None:
        return None
    return fast.mean_s / baseline.mean_s


def speed_gate(timings: Mapping[tuple[str, str], TimingResult], limit: float) -> GateResult:
    """The speed gate from the as-deployed timings (``(pairing, embedder) → TimingResult``) and the run's limit.

    Without both timings it is an ``error``: their benchmark test failed or did not run, so nothing can pass.
    """
    pairing = SPEED_PAIRING
    missing = [embedder for embedder in EMBEDDER_FAMILIES if (pairing, embedder) not in timings]
    if missing:
        sentence = (f"speed gate FAIL ({pairing}): no timing for {', '.join(EMBEDDER_FAMILIES[m] for m in missing)} — "
                    "its benchmark test failed or did not run, so the gate cannot pass")
        return GateResult(SPEED, ERROR, sentence, limit=limit, relation=SPEED_RULE.relation, failure=sentence,
                          numbers={"pairing": pairing})
    fast, baseline = timings[(pairing, "fast")], timings[(pairing, "baseline")]
    ratio = fast.mean_s / baseline.mean_s
    passed = SPEED_RULE.holds(ratio, limit)
    detail = (f"FastESM2 {fast.mean_s:.3f} s / ESM2 3B {baseline.mean_s:.3f} s ({pairing}, {fast.sequences} proteins, "
              f"on {fast.device})")
    spreads = {"fast": spread(fast.runs_s), "baseline": spread(baseline.runs_s)}
    unstable = [f"{EMBEDDER_FAMILIES[e]} {s:.2f}x" for e, s in spreads.items() if s > UNSTABLE_SPREAD]
    if unstable:
        detail += (f"; timing UNSTABLE: rounds spread {', '.join(unstable)} (max/min, limit {UNSTABLE_SPREAD}) — "
                   "rerun on an idle machine")
    failure = "" if passed else (
        f"speed gate FAIL ({pairing}): FastESM2 {fast.mean_s:.3f} s vs ESM2 3B {baseline.mean_s:.3f} s for "
        f"{fast.sequences} proteins (mean of {len(fast.runs_s)} runs) -> time ratio {ratio:.3f} > limit {limit}")
    return GateResult(
        gate=SPEED,
        status=PASSED if passed else FAILED,
        reason=SPEED_RULE.sentence(f"{ratio:.3f}", limit, passed, detail),
        measured=ratio,
        limit=limit,
        relation=SPEED_RULE.relation,
        failure=failure,
        next_steps=([] if passed else speed_next_steps(fast.device)) + ([UNSTABLE_STEP] if unstable else []),
        numbers={"pairing": pairing, "fast_mean_s": fast.mean_s, "baseline_mean_s": baseline.mean_s,
                 "proteins": fast.sequences, "runs": len(fast.runs_s), "device": fast.device,
                 "fast_runs_s": list(fast.runs_s), "baseline_runs_s": list(baseline.runs_s),
                 "fast_spread": spreads["fast"], "baseline_spread": spreads["baseline"], "unstable": bool(unstable)},
    )


# ---------------------------------------------------------------------------- settling against the test's outcome


def settle(gate: str, measured: GateResult | None, outcome: Any) -> GateResult:
    """What ``gate`` came to, given its measurement and the outcome of the test that decides it.

    The measurement stands when the test agrees with it (passed / failed); otherwise nothing was judged: a test
    that was not run or skipped is ``not run``, one that broke (or contradicts its measurement) is ``error``.
    ``outcome``: a :class:`~virnucpro_core.gate.session.Outcome` or None.
    """
    if measured is not None and measured.was_measured and outcome is not None and outcome.outcome == measured.status:
        return measured
    return unmeasured(gate, outcome)


def unmeasured(gate: str, outcome: Any) -> GateResult:
    """A gate nothing was judged for, with why, from its test's outcome (None: its test was not run)."""
    if outcome is None:
        return GateResult(gate, NOT_RUN, "its test was not run (deselected?)")
    if outcome.outcome == "skipped":
        return GateResult(gate, NOT_RUN, first_line(outcome.message) or "skipped")
    if outcome.outcome == "pending":
        return GateResult(gate, ERROR, "its test started but did not finish")
    if outcome.outcome == "passed":
        return GateResult(gate, ERROR, "its test passed but left no measurement to judge")
    return GateResult(gate, ERROR, first_line(outcome.message).removeprefix("Failed: ") or outcome.outcome)


def first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""
