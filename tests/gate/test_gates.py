"""The two gates as typed results: each rule, each measurement, and how a test's outcome settles it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from virnucpro_core.gate.benchmark import TimingResult
from virnucpro_core.compare.comparison import compare
from virnucpro_core.compare.rules import ACCURACY_RULE, SPEED_RULE
from virnucpro_core.gate.gates import (
    ACCURACY,
    SPEED,
    IDLE_STEPS,
    SPEED_NEXT_STEPS,
    UNSTABLE_STEP,
    GateResult,
    accuracy_gate,
    decide_accuracy,
    settle,
    speed_gate,
)
from virnucpro_core.evaluate.predictions import Predictions
from virnucpro_core.gate.session import AcceptanceSession, Outcome
from tests.lineage import with_lineage


def timing(embedder: str, seconds: float, pairing: str = "as-deployed") -> TimingResult:
    return TimingResult(f"{pairing}/{embedder}", embedder, {"dtype": "float32"}, 12, 1200, [seconds] * 3, 1, "cpu")


def timings(fast: float, baseline: float = 1.0) -> dict:
    return {("as-deployed", "fast"): timing("fastesm2_650", fast), ("as-deployed", "baseline"): timing("esm2_3b", baseline)}


def test_the_rules_are_strictly_below_and_at_most():
    assert ACCURACY_RULE.holds(0.049, 0.05) and not ACCURACY_RULE.holds(0.05, 0.05)
    assert SPEED_RULE.holds(0.5, 0.5) and not SPEED_RULE.holds(0.5001, 0.5)
    assert (ACCURACY_RULE.negation, SPEED_RULE.negation) == ("≥", ">")


@pytest.mark.parametrize(("ratio", "status", "sentence"), [
    (0.25, "passed", "time ratio 0.250 ≤ limit 0.5: PASS — FastESM2 0.250 s / ESM2 3B 1.000 s (as-deployed, "
                     "12 proteins, on cpu)"),
    (0.5, "passed", "time ratio 0.500 ≤ limit 0.5: PASS"),
    (0.7, "failed", "time ratio 0.700 > limit 0.5: FAIL"),
], ids=["within", "at-the-limit", "beyond"])
def test_speed_gate_judges_the_as_deployed_ratio_against_the_limit(ratio, status, sentence):
    gate = speed_gate({**timings(ratio), ("like-for-like", "fast"): timing("fastesm2_650", 9.0, "like-for-like")}, 0.5)
    assert (gate.gate, gate.status, gate.limit, gate.relation) == (SPEED, status, 0.5, "≤")
    assert gate.measured == pytest.approx(ratio)
    assert gate.reason.startswith(sentence), gate.reason
    assert gate.numbers == {"pairing": "as-deployed", "fast_mean_s": pytest.approx(ratio), "baseline_mean_s": 1.0,
                            "proteins": 12, "runs": 3, "device": "cpu", "fast_runs_s": [ratio] * 3,
                            "baseline_runs_s": [1.0] * 3, "fast_spread": 1.0, "baseline_spread": 1.0,
                            "unstable": False}
    if status == "failed":
        assert gate.failure == ("speed gate FAIL (as-deployed): FastESM2 0.700 s vs ESM2 3B 1.000 s for 12 proteins "
                                "(mean of 3 runs) -> time ratio 0.700 > limit 0.5")
        assert gate.next_steps == [IDLE_STEPS["cpu"], *SPEED_NEXT_STEPS]
    else:
        assert gate.failure == "" and gate.next_steps == []


def test_an_unstable_round_is_flagged_but_the_verdict_keeps_the_mean_of_three():
    # ESM2 3B once took 20.95 s instead of 1.3 s: its rounds spread 16x; the ratio is still the means' ratio.
    noisy = {("as-deployed", "fast"): timing("fastesm2_650", 0.3),
             ("as-deployed", "baseline"): TimingResult("as-deployed/baseline", "esm2_3b", {}, 12, 1200,
                                                       [1.3, 20.95, 1.3], 1, "cpu")}
    gate = speed_gate(noisy, 0.5)
    assert gate.status == "passed" and gate.measured == pytest.approx(0.3 / ((1.3 + 20.95 + 1.3) / 3))
    assert gate.numbers["unstable"] is True and gate.numbers["baseline_spread"] == pytest.approx(20.95 / 1.3)
    assert "timing UNSTABLE: rounds spread ESM2 3B 16.12x" in gate.reason, gate.reason
    assert gate.next_steps == [UNSTABLE_STEP]


def test_a_spread_at_the_limit_is_stable():
    steady = {("as-deployed", "fast"): TimingResult("f", "fastesm2_650", {}, 12, 1200, [2.0, 3.0, 2.5], 1, "cpu"),
              ("as-deployed", "baseline"): timing("esm2_3b", 10.0)}
    gate = speed_gate(steady, 0.5)
    assert gate.numbers["fast_spread"] == pytest.approx(1.5) and gate.numbers["unstable"] is False
    assert "UNSTABLE" not in gate.reason and gate.next_steps == []


@pytest.mark.parametrize(("device", "says", "never"), [
    ("cuda:0", "the GPU was idle", "load average"),
    ("cpu", "load average", "GPU"),
], ids=["gpu", "cpu"])
def test_a_failed_speed_gate_first_checks_the_device_its_rounds_ran_on(device, says, never):
    """A CPU run is told to check the machine's load, never the GPU it did not use."""
    slow = {(p, e): TimingResult(f"{p}/{e}", m, {}, 12, 1200, [s] * 3, 1, device)
            for (p, e), (m, s) in {("as-deployed", "fast"): ("fastesm2_650", 0.9),
                                   ("as-deployed", "baseline"): ("esm2_3b", 1.0)}.items()}
    gate = speed_gate(slow, 0.5)
    assert gate.status == "failed" and says in gate.next_steps[0] and never not in gate.next_steps[0], gate.next_steps
    assert gate.next_steps[1:] == SPEED_NEXT_STEPS


def test_speed_gate_without_a_timing_is_an_error_that_names_it():
    gate = speed_gate({("as-deployed", "fast"): timing("fastesm2_650", 0.2)}, 0.5)
    assert gate.status == "error" and not gate.was_measured and gate.measured is None
    assert gate.failure == gate.reason == ("speed gate FAIL (as-deployed): no timing for ESM2 3B — its benchmark test "
                                           "failed or did not run, so the gate cannot pass")


def _predictions(correct: list[int]) -> Predictions:
    y = np.array([1, 0] * (len(correct) // 2))
    pred = np.where(np.array(correct, bool), y, 1 - y)
    return Predictions([f"s{i}_chunk_1F1" for i in range(len(y))], y, pred.astype(float), pred, [30] * len(y),
                       meta=with_lineage())


@pytest.mark.parametrize(("baseline_right", "status"), [(19, "passed"), (20, "failed")], ids=["below", "at-limit"])
def test_accuracy_gate_is_the_comparisons_exact_decision_with_its_ci(baseline_right, status):
    """20 samples, FastESM2 right on 19: a drop of 0/20 passes, 1/20 = 0.05 equals the limit and fails."""
    fast = _predictions([1] * 19 + [0])
    baseline = _predictions([1] * baseline_right + [0] * (20 - baseline_right))
    measured = compare(fast, baseline, max_accuracy_drop=0.05, n_bootstrap=200, seed=1)
    assert measured.passed is None and measured.reason == "", "compare() measures; the gate decides"
    comparison = decide_accuracy(measured)
    gate = accuracy_gate(comparison)
    assert accuracy_gate(measured) == gate, "an undecided comparison is decided by the same function"
    assert (gate.gate, gate.status, gate.measured, gate.limit, gate.relation) == (
        ACCURACY, status, comparison.accuracy_drop, 0.05, "<")
    assert gate.ci == comparison.drop_ci and gate.ci is not None, "the paired 95 % CI of the drop"
    assert gate.reason == comparison.reason and gate.reason.startswith("accuracy drop ")
    assert gate.numbers["test_samples"] == 20 and gate.numbers["paired"] is True
    if status == "failed":
        assert "≥ limit 0.05: FAIL" in gate.reason and gate.failure.startswith(f"accuracy gate {gate.reason}")
        assert "\nnext steps:\n  - " in gate.failure and gate.next_steps == comparison.next_steps
    else:
        assert "< limit 0.05: PASS" in gate.reason and gate.failure == "" and gate.next_steps == []


def test_a_result_round_trips_through_its_file(tmp_path):
    fast, baseline = _predictions([1] * 19 + [0]), _predictions([1] * 20)
    gate = accuracy_gate(compare(fast, baseline, max_accuracy_drop=0.05, n_bootstrap=50, seed=1))
    assert GateResult.load(gate.save(tmp_path / "accuracy.json")) == gate
    speed = speed_gate(timings(0.3), 0.5)
    assert GateResult.from_record(speed.to_record()) == speed


@pytest.mark.parametrize(("outcome", "status", "reason"), [
    (None, "not run", "its test was not run (deselected?)"),
    (Outcome.deciding(SPEED, "skipped", "no CUDA GPU\nmore"), "not run", "no CUDA GPU"),
    (Outcome.deciding(SPEED, "pending"), "error", "its test started but did not finish"),
    (Outcome.deciding(SPEED, "error", "Failed: stage 'split' failed: x"), "error", "stage 'split' failed: x"),
    (Outcome.deciding(SPEED, "failed", "assert shape"), "error", "assert shape"),
    (Outcome.deciding(SPEED, "passed"), "passed", "time ratio 0.200 ≤ limit 0.5: PASS"),
], ids=["deselected", "skipped", "pending", "errored", "contradicts", "agrees"])
def test_a_measurement_stands_only_when_its_test_agrees(outcome, status, reason):
    gate = settle(SPEED, speed_gate(timings(0.2), 0.5), outcome)
    assert gate.status == status and gate.reason.startswith(reason), gate


def test_the_session_measures_each_gate_once_from_what_it_was_handed():
    settings = SimpleNamespace(max_time_ratio=0.4)
    session = AcceptanceSession(settings=settings)
    assert session.measure(ACCURACY) is None, "no comparison yet"
    assert session.measure(SPEED).status == "error"
    session.record_timing("as-deployed", "fast", timing("fastesm2_650", 0.45))
    session.record_timing("as-deployed", "baseline", timing("esm2_3b", 1.0))
    first = session.measure(SPEED)
    assert first.status == "failed" and first.limit == 0.4, "the limit is the settings'"
    assert session.measure(SPEED) is first, "measured once"
    assert session.gate(SPEED).status == "not run", "no test decided it"
    session.record_outcome(Outcome.deciding(SPEED, "failed", first.failure, name="test_x.py::test_y"))
    assert session.gate(SPEED) is first
