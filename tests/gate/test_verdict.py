"""The verdict and exit status, from hand-made outcomes: each of the four verdicts means one thing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from virnucpro_core.gate.benchmark import TimingResult
from virnucpro_core.gate.gates import ACCURACY as ACCURACY_GATE
from virnucpro_core.gate.gates import SPEED as SPEED_GATE
from virnucpro_core.gate.gates import UNSTABLE_STEP
from virnucpro_core.extract.parity import ParityResult
from virnucpro_core.gate.session import EVIDENCE, PARITY, AcceptanceSession, Outcome
from virnucpro_core.gate.validation import RunResults
from virnucpro_core.gate.verdict import EXIT_CODES, OTHER_CODE_STEP, PARITY_STEP, decide_verdict

ROOT = Path(__file__).resolve().parents[2]
# The names the reports show; the verdict finds each test by the role its markers give it, never by these.
ACCURACY, SPEED = "test_accuracy.py::test_accuracy_gate", "test_speed.py::test_speed_gate"
PARITY_TEST = "test_parity.py::test_fastesm_matches_its_own_code"


def timing(embedder: str, seconds: float, device: str = "cuda:0") -> TimingResult:
    return TimingResult(f"as-deployed/{embedder}", embedder, {"dtype": "float32", "toks_per_batch": 2048}, 10, 1000,
                        [seconds] * 3, 1, device)


def comparison(passed: bool):
    """The part of a Comparison the accuracy gate is measured from."""
    reason = "accuracy drop 0.01 < limit 0.05: PASS" if passed else "accuracy drop 0.09 ≥ limit 0.05: FAIL"
    return SimpleNamespace(passed=passed, reason=reason, next_steps=["Check the FastESM2_650 weights."],
                           accuracy_drop=0.01 if passed else 0.09, max_accuracy_drop=0.05, drop_ci=None,
                           fast=SimpleNamespace(accuracy=0.9), baseline=SimpleNamespace(accuracy=0.91), n=100,
                           paired=True, confidence_level=0.95, baseline_source="per-sample predictions")


class Run:
    """The part of ValidationRun the verdict reads."""

    def __init__(self, other_model: str | None = None, comparison=None) -> None:
        self.results = RunResults(comparison=comparison)
        self.other_model = other_model

    def random_weights_reason(self):
        return None

    def other_model_reason(self):
        return self.other_model

def parity_result(status="passed", reason="min cosine 0.999998 ≥ 0.999 over 48 proteins") -> ParityResult:
    return ParityResult(status=status, reason=reason, model_dir="/models/FastESM2_650", device="cuda:0",
                        dtype="float32")


def context(outcomes, *, profile="full", weights="pretrained", ratio=0.25, compared=True, passed=True,
            parity="passed", other_model=None, **extra) -> AcceptanceSession:
    """``parity``: the stashed ParityResult's status (None: none stashed, as when its test skipped before running)."""
    settings = SimpleNamespace(profile=profile, weights=weights, size="full", max_accuracy_drop=0.05,
                               max_time_ratio=0.5)
    timings = {} if ratio is None else {("as-deployed", "fast"): timing("fastesm2_650", ratio),
                                        ("as-deployed", "baseline"): timing("esm2_3b", 1.0)}
    run = Run(other_model, comparison(passed) if compared else None)
    result = parity_result() if parity == "passed" else parity
    return AcceptanceSession(settings=settings, run=run, timings=timings, outcomes=outcomes, parity=result, **extra)


def both(accuracy="passed", speed="passed", accuracy_message="", speed_message="", parity="passed",
         parity_message=""):
    """The two gates' outcomes and the parity check's (``parity=None``: its test was not run)."""
    outcomes = [Outcome.deciding(ACCURACY_GATE, accuracy, accuracy_message, name=ACCURACY),
                Outcome.deciding(SPEED_GATE, speed, speed_message, name=SPEED)]
    return outcomes if parity is None else [*outcomes, Outcome(PARITY_TEST, parity, parity_message, PARITY)]


def test_pass_needs_both_gates_measured_within_their_limits():
    verdict = decide_verdict(context(both()))
    assert verdict.status == "PASS" and verdict.exit_code() == 0 and not verdict.next_steps
    assert any("time ratio 0.250 ≤ limit 0.5: PASS" in r for r in verdict.reasons), verdict.reasons


def test_an_unstable_timing_keeps_pass_and_says_to_rerun_on_an_idle_machine():
    session = context(both())
    session.timings[("as-deployed", "baseline")] = TimingResult("as-deployed/esm2_3b", "esm2_3b", {}, 10, 1000,
                                                                [1.0, 2.0, 1.0], 1, "cuda:0")
    verdict = decide_verdict(session)
    assert verdict.status == "PASS", verdict.reasons  # the mean of 3: 0.25 / 1.333 = 0.188
    assert verdict.next_steps == [UNSTABLE_STEP]
    assert any("timing UNSTABLE" in r for r in verdict.reasons), verdict.reasons


OTHER = ('another model than FastESM2_650 was validated (--allow-other-model): model_type esm, 33 layers × 1280, '
         '20 heads, vocabulary 33 (ESM-2 650M (facebook/esm2_t33_650M_UR50D)); differs in model_type "esm" '
         '(expected "fast_esm")')


def test_both_gates_passing_on_another_model_is_incomplete_not_pass():
    verdict = decide_verdict(context(both(), other_model=OTHER))
    assert verdict.status == "INCOMPLETE" and verdict.exit_code() == 11
    assert verdict.reasons[0] == OTHER
    assert any("time ratio 0.250 ≤ limit 0.5: measured: within limit —" in r for r in verdict.reasons), verdict.reasons
    assert not any("PASS" in r for r in verdict.reasons), "only the verdict states the verdict"
    assert verdict.next_steps[0].startswith("For a verdict on FastESM2_650 against ESM2 3B, rerun without "
                                            "--allow-other-model"), verdict.next_steps


def test_both_gates_passing_on_stages_of_other_code_is_incomplete_naming_each_stage():
    session = context(both())
    session.run.cache = SimpleNamespace(other_code=[("train[fast]", "built by other code (version 0.1.0 → 0.2.0)")])
    verdict = decide_verdict(session)
    assert verdict.status == "INCOMPLETE" and verdict.exit_code() == 11
    assert verdict.reasons[0].startswith("1 stage(s) built by other code were reused (--reuse-stages-from-other-code)")
    assert "train[fast]: built by other code (version 0.1.0 → 0.2.0)" in verdict.reasons[0]
    assert verdict.next_steps == [OTHER_CODE_STEP]


def test_another_model_is_said_in_every_incomplete_verdict_and_a_measured_failure_stays_fail():
    why = "random weights cannot validate accuracy (--weights random)"
    skipped = decide_verdict(context(both(accuracy="skipped", accuracy_message=why), compared=False,
                                     other_model=OTHER))
    assert skipped.status == "INCOMPLETE" and skipped.reasons[0] == OTHER
    smoke = decide_verdict(context(both(), profile="smoke", other_model=OTHER))
    assert smoke.status == "INCOMPLETE" and OTHER in smoke.reasons
    failed = decide_verdict(context(both(speed="failed"), ratio=0.9, other_model=OTHER))
    assert failed.status == "FAIL"


def test_a_measured_speed_failure_is_fail_with_next_steps():
    verdict = decide_verdict(context(both(speed="failed", speed_message="speed gate FAIL"), ratio=0.7))
    assert verdict.status == "FAIL" and verdict.exit_code() == EXIT_CODES["FAIL"] == 10
    assert any("time ratio 0.700 > limit 0.5: FAIL" in r for r in verdict.reasons), verdict.reasons
    assert any("like-for-like" in s for s in verdict.next_steps)


def test_a_measured_accuracy_failure_is_fail_with_the_comparisons_next_steps():
    verdict = decide_verdict(context(both(accuracy="failed"), passed=False))
    assert verdict.status == "FAIL"
    assert verdict.next_steps == ["Check the FastESM2_650 weights."]


def test_a_gate_whose_stage_broke_is_error_not_fail():
    """A failed stage is no measurement: the model must not be blamed for it."""
    outcomes = both(accuracy="error", accuracy_message="Failed: stage 'train[fast]' failed: no such file x.pt")
    verdict = decide_verdict(context(outcomes, compared=False))
    assert verdict.status == "ERROR" and verdict.exit_code() == 12
    assert any("stage 'train[fast]' failed: no such file x.pt" in r for r in verdict.reasons), verdict.reasons


def test_speed_gate_failing_without_timings_is_error():
    verdict = decide_verdict(context(both(speed="failed", speed_message="no timing for ESM2 3B"), ratio=None))
    assert verdict.status == "ERROR"


def test_a_failed_precondition_check_is_error():
    outcomes = [*both(), Outcome("test_test_set.py::test_each_class_is_ten_percent", "failed", "viral: 3 of 40")]
    verdict = decide_verdict(context(outcomes))
    assert verdict.status == "ERROR"
    assert verdict.reasons[0] == "test_test_set.py::test_each_class_is_ten_percent: viral: 3 of 40"


def test_a_measured_failure_outranks_a_broken_check_and_both_are_said():
    outcomes = [*both(speed="failed"), Outcome("test_training.py::test_validation_loss_fell[fast]", "failed", "x")]
    verdict = decide_verdict(context(outcomes, ratio=0.9))
    assert verdict.status == "FAIL"
    assert any(r.startswith("also broken: test_training.py") for r in verdict.reasons), verdict.reasons


def test_a_skipped_gate_is_incomplete_and_says_why_once():
    why = "random weights cannot validate accuracy (--weights random): pass --weights pretrained"
    verdict = decide_verdict(context(both(accuracy="skipped", accuracy_message=why), compared=False))
    assert verdict.status == "INCOMPLETE" and verdict.exit_code() == 11
    assert verdict.exit_code(allow_incomplete=True) == 0
    assert f"accuracy gate not run: {why}" in verdict.reasons
    assert sum(why in r for r in verdict.reasons) == 1


def test_the_smoke_profile_never_passes():
    verdict = decide_verdict(context(both(), profile="smoke"))
    assert verdict.status == "INCOMPLETE" and verdict.smoke and verdict.title == "INCOMPLETE (smoke profile)"
    assert "checks the suite, not FastESM2_650" in verdict.reasons[0]
    assert not any("pass" in reason.lower() for reason in verdict.reasons), (
        "an INCOMPLETE banner says PASS nowhere: its gates 'measured within their limits'", verdict.reasons)
    assert verdict.to_dict()["smoke"] is True and verdict.to_dict()["exit_code"] == 11


def test_a_forced_failure_in_the_smoke_profile_is_still_fail():
    forced = decide_verdict(context(both(speed="failed"), profile="smoke", ratio=0.9))
    assert forced.status == "FAIL" and forced.smoke and forced.exit_code(allow_incomplete=True) == 10


def test_a_gate_test_that_contradicts_its_measurement_is_error():
    """The speed test failed although the ratio is within the limit: something else broke; no FAIL, no PASS."""
    verdict = decide_verdict(context(both(speed="failed", speed_message="assert shape"), ratio=0.2))
    assert verdict.status == "ERROR"


def test_require_gpu_without_one_is_one_error_naming_what_torch_sees():
    problem = "--require-gpu was given and this runner has no usable CUDA GPU: torch 2.13.0+cpu is a CPU-only build"
    verdict = decide_verdict(context([], environment_error=problem))
    assert verdict.status == "ERROR" and verdict.reasons == [problem]
    assert "cu128" in verdict.next_steps[0]


def test_gpu_marker_without_a_gpu_is_one_incomplete_reason():
    why = "`-m gpu` selects the GPU gate and this machine has no CUDA GPU"
    verdict = decide_verdict(context([], not_run=why))
    assert verdict.status == "INCOMPLETE" and verdict.reasons == [why]


def test_no_test_run_is_incomplete():
    assert decide_verdict(context([])).status == "INCOMPLETE"


@pytest.mark.parametrize("status", ["PASS", "FAIL", "INCOMPLETE", "ERROR"])
def test_exit_codes_are_distinct_and_clear_of_pytests_own(status):
    assert len(set(EXIT_CODES.values())) == 4
    assert EXIT_CODES[status] == 0 or EXIT_CODES[status] > 5, "0-5 are pytest's (failed, interrupted, usage...)"


EVIDENCE_OUTCOMES = [
    Outcome("test_generalisation.py::test_extra_splits_ran", "failed", "cluster split: mmseqs exited with status 1",
            EVIDENCE),
    Outcome("test_generalisation.py::test_calibration_is_reported", "error", "stage 'evidence' failed", EVIDENCE),
    Outcome("test_generalisation.py::test_groups_are_reported", "passed", "", EVIDENCE),
]


@pytest.mark.parametrize(
    ("outcomes", "profile", "passed"),
    [(both(), "full", True), (both(accuracy="failed"), "full", False), (both(), "smoke", True),
     (both(speed="skipped", speed_message="no GPU"), "full", True)],
    ids=["pass", "accuracy-fail", "smoke-incomplete", "speed-not-run"],
)
def test_extra_splits_cannot_change_the_verdict(outcomes, profile, passed):
    """Failed or erroring evidence tests, and an evidence stage whose unseen-genome split loses far more accuracy
    than the limit, leave status, reasons, next steps and exit code exactly as they are without them."""
    plain = decide_verdict(context(list(outcomes), profile=profile, passed=passed))
    evidence = SimpleNamespace(splits=[SimpleNamespace(name="source", drop=0.4, gated=False, warning="loses 0.4")])
    ctx = context([*outcomes, *EVIDENCE_OUTCOMES], profile=profile, passed=passed)
    ctx.run.results.evidence = evidence
    with_evidence = decide_verdict(ctx)
    assert (with_evidence.status, with_evidence.reasons, with_evidence.next_steps) == (
        plain.status, plain.reasons, plain.next_steps)
    assert with_evidence.exit_code() == plain.exit_code() and with_evidence.exit_code(True) == plain.exit_code(True)


def test_evidence_alone_is_no_acceptance_run():
    assert decide_verdict(context(EVIDENCE_OUTCOMES)).status == "INCOMPLETE"


# ---------------------------------------------------------------------------- FastESM2 parity in the full profile

EINOPS = ("the model's own code (modeling_fastesm.FastEsmModel) does not load here: it imports einops, which is not "
          "installed in this environment; install it with `pip install einops` or `make install` (this project "
          "depends on every module FastESM2's code imports), then rerun")
NO_SNAPSHOT = ("no FastESM2 snapshot on this machine to compare with its own code: FastESM2_650 is not in the "
               "Hugging Face cache")
FIX = ("give --fast-model DIR with the real Synthyra/FastESM2_650 snapshot including its modeling_fastesm.py "
       "(`hf download Synthyra/FastESM2_650 --local-dir DIR`), and `make install` for the modules its code imports")


def test_a_full_pretrained_pass_has_the_parity_check_run_and_passed():
    verdict = decide_verdict(context(both()))
    assert verdict.status == "PASS" and verdict.exit_code() == 0, verdict.reasons
    assert not any("parity" in r for r in verdict.reasons), verdict.reasons


@pytest.mark.parametrize(
    ("parity_outcome", "message", "stashed", "why"),
    [("skipped", f"FastESM2 parity not run: {EINOPS}", parity_result("not run", EINOPS), EINOPS),
     ("skipped", NO_SNAPSHOT, None, NO_SNAPSHOT),
     (None, "", None, "its test was not run (deselected?)")],
    ids=["code-does-not-load", "no-snapshot", "deselected"],
)
def test_gates_passed_without_parity_is_incomplete_with_why_and_the_fix(parity_outcome, message, stashed, why):
    verdict = decide_verdict(context(both(parity=parity_outcome, parity_message=message), parity=stashed))
    assert verdict.status == "INCOMPLETE" and verdict.exit_code() == 11 and not verdict.smoke
    assert verdict.reasons[0] == (f"FastESM2 parity with its own code not run: {why} — a full-profile PASS requires "
                                  f"it to run and pass: {FIX}"), verdict.reasons[0]
    assert sum("parity" in r for r in verdict.reasons) == 1, verdict.reasons
    assert any("time ratio 0.250 ≤ limit 0.5: measured: within limit" in r for r in verdict.reasons[1:]), verdict.reasons
    assert verdict.next_steps == [PARITY_STEP] and "tools/fastesm_parity.py DIR" in PARITY_STEP


def test_a_gate_not_run_and_parity_not_run_are_both_said():
    why = "no CUDA GPU: the speed gate times FastESM2 on a GPU"
    outcomes = both(speed="skipped", speed_message=why, parity="skipped", parity_message=NO_SNAPSHOT)
    verdict = decide_verdict(context(outcomes, ratio=None, parity=None))
    assert verdict.status == "INCOMPLETE"
    assert f"speed gate not run: {why}" in verdict.reasons
    assert verdict.reasons[-1].startswith(f"FastESM2 parity with its own code not run: {NO_SNAPSHOT} — "), (
        verdict.reasons)
    assert verdict.next_steps[-1] == PARITY_STEP


def test_a_measured_failure_stays_fail_and_says_parity_did_not_run():
    outcomes = both(speed="failed", speed_message="speed gate FAIL", parity="skipped", parity_message=NO_SNAPSHOT)
    verdict = decide_verdict(context(outcomes, ratio=0.7, parity=None))
    assert verdict.status == "FAIL" and verdict.exit_code() == 10
    assert verdict.reasons[-1] == (f"also: FastESM2 parity with its own code not run ({NO_SNAPSHOT}), so these "
                                   "features were not checked against the model's own code"), verdict.reasons


def test_a_parity_check_that_ran_and_failed_is_an_error_not_a_parity_not_run():
    failed = "FastESM2 parity FAIL: our FastESM2 vectors differ from its own code's (min cosine 0.91 < 0.999)"
    stashed = parity_result("failed", "min cosine 0.91 < 0.999 over 48 proteins")
    error = decide_verdict(context(both(parity="failed", parity_message=failed), parity=stashed))
    assert error.status == "ERROR" and error.reasons[0] == f"{PARITY_TEST}: {failed}", error.reasons
    fail = decide_verdict(context(both(speed="failed", parity="failed", parity_message=failed), ratio=0.7,
                                  parity=stashed))
    assert fail.status == "FAIL" and fail.reasons[-1] == f"also broken: {PARITY_TEST}: {failed}", fail.reasons
    assert not any("not run" in r for r in error.reasons + fail.reasons), error.reasons + fail.reasons


@pytest.mark.parametrize(
    ("profile", "weights", "outcomes", "status"),
    [("smoke", "random", both(), "INCOMPLETE"),
     ("full", "random", both(accuracy="skipped", accuracy_message="random weights cannot validate accuracy"),
      "INCOMPLETE"),
     ("full", "random", both(speed="failed"), "FAIL")],
    ids=["smoke", "random-weights", "random-weights-fail"],
)
def test_parity_does_not_change_the_verdict_without_pretrained_weights_in_the_full_profile(profile, weights,
                                                                                             outcomes, status):
    """There the parity test skips by design (no real snapshot): the verdict is what the gates make it."""
    ratio = 0.9 if status == "FAIL" else 0.25
    with_parity = decide_verdict(context(outcomes, profile=profile, weights=weights, ratio=ratio))
    why = f"--weights {weights}: no real FastESM2 snapshot to compare with its own code"
    skipped = [Outcome(PARITY_TEST, "skipped", why, PARITY) if o.role == PARITY else o for o in outcomes]
    without = decide_verdict(context(skipped, profile=profile, weights=weights, ratio=ratio, parity=None))
    assert without.status == with_parity.status == status
    assert (without.reasons, without.next_steps) == (with_parity.reasons, with_parity.next_steps)
    assert not any("parity" in r for r in without.reasons), without.reasons


# ---------------------------------------------------------------------------- gates found by marker, not by name


def test_the_verdict_never_reads_a_tests_name():
    """Renamed gate tests decide their gates as before; a test named like a gate test but unmarked decides none."""
    renamed = [Outcome.deciding(ACCURACY_GATE, "passed", name="test_a.py::test_anything"),
               Outcome.deciding(SPEED_GATE, "failed", "too slow", name="test_b.py::test_whatever"),
               Outcome(PARITY_TEST.replace("fastesm", "x"), "passed", "", PARITY)]
    assert decide_verdict(context(renamed, ratio=0.7)).reasons == decide_verdict(context(both(speed="failed"),
                                                                                         ratio=0.7)).reasons
    unmarked = [Outcome(ACCURACY, "passed"), Outcome(SPEED, "passed"), Outcome(PARITY_TEST, "passed")]
    verdict = decide_verdict(context(unmarked))
    assert verdict.status == "INCOMPLETE" and [g.status for g in verdict.gates] == ["not run", "not run"]
    assert "accuracy gate not run: its test was not run (deselected?)" in verdict.reasons


PLUGIN_CONFTEST = '''
from acceptance import report_plugin


def pytest_addoption(parser):
    parser.addoption("--allow-incomplete", action="store_true")


def pytest_configure(config):
    config.pluginmanager.register(report_plugin.AcceptanceReport(config), report_plugin.PLUGIN_NAME)
'''
MARKED_TESTS = '''
import pytest


@pytest.mark.gate("accuracy")
def test_first_renamed():
    pytest.fail("stage 'compare' failed: no such file x.pt", pytrace=False)


@pytest.mark.gate("speed")
def test_second_renamed():
    pytest.skip("no CUDA GPU here")


@pytest.mark.evidence
def test_extra():
    assert False, "evidence never counts"
'''


@pytest.mark.parametrize("select", [[], ["-k", "not first"]], ids=["all", "accuracy-deselected"])
def test_the_plugin_gives_each_test_the_role_of_its_marker(tmp_path, select):
    """A real pytest session: the gates are the marked tests, whatever their names; a deselected gate is not run."""
    (tmp_path / "conftest.py").write_text(PLUGIN_CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers\nmarkers =\n    gate(name): g\n"
                                         "    evidence: e\n    parity: p\n")
    (tmp_path / "test_marked.py").write_text(MARKED_TESTS)
    html = tmp_path / "reports" / "acceptance.html"
    run = subprocess.run([sys.executable, "-m", "pytest", "test_marked.py", "-q", "-p", "no:cacheprovider", "--html",
                          str(html), *select], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    report = json.loads((html.parent / "acceptance.json").read_text())
    gates = report["verdict"]["gates"]
    assert gates["speed"] == {"state": "not run", "detail": "no CUDA GPU here"}, (gates, run.stdout[-2000:])
    if select:
        assert gates["accuracy"] == {"state": "not run", "detail": "its test was not run (deselected?)"}, gates
        assert report["verdict"]["status"] == "INCOMPLETE" and run.returncode == 11, run.stdout[-2000:]
    else:
        assert gates["accuracy"] == {"state": "error", "detail": "stage 'compare' failed: no such file x.pt"}, gates
        assert report["verdict"]["status"] == "ERROR" and run.returncode == 12, run.stdout[-2000:]
    assert not any("evidence never counts" in reason for reason in report["verdict"]["reasons"])


def test_acceptance_json_carries_each_gate_as_numbers_with_limit_ci_and_status():
    """What CI scripts read (docs/acceptance.schema.json): numbers, never the strings the tables show."""
    from virnucpro_core.evaluate.metrics import Interval
    from virnucpro_core.gate.report_files import gates_dict
    from virnucpro_core.gate.speed_report import speed_ratios_list

    ctx = context(both(speed="failed"), ratio=0.75)
    ctx.run.results.comparison.drop_ci = Interval(-0.004, 0.025, 1000)
    gates = gates_dict(ctx, decide_verdict(ctx))
    accuracy, speed = gates["accuracy"], gates["speed"]
    assert {k: accuracy[k] for k in ("metric", "status", "result", "value", "limit", "relation", "ci")} == {
        "metric": "accuracy drop", "status": "passed", "result": "PASS", "value": 0.01, "limit": 0.05,
        "relation": "<", "ci": {"low": -0.004, "high": 0.025, "level": 0.95}}, accuracy
    assert {k: speed[k] for k in ("metric", "status", "result", "limit", "relation", "ci")} == {
        "metric": "time ratio", "status": "failed", "result": "FAIL", "limit": 0.5, "relation": "≤", "ci": None}
    assert speed["value"] == pytest.approx(0.75) and type(speed["value"]) is float
    assert accuracy["reason"] == "accuracy drop 0.01 < limit 0.05: measured: within limit", "the run is a FAIL"
    passed = context(both())
    assert gates_dict(passed, decide_verdict(passed))["accuracy"]["reason"] == "accuracy drop 0.01 < limit 0.05: PASS"
    assert speed_ratios_list(ctx) == [{"pairing": "as-deployed", "time_ratio": pytest.approx(0.75),
                                       "speed_up": pytest.approx(1 / 0.75), "gated": True, "limit": 0.5,
                                       "relation": "≤", "status": "failed"}]


def test_acceptance_json_gates_not_measured_have_no_value_but_keep_the_limit():
    from virnucpro_core.gate.report_files import gates_dict

    gates = gates_dict(context(both(speed="skipped", speed_message="no CUDA GPU here"), ratio=None))
    assert gates["speed"]["status"] == "not run" and gates["speed"]["value"] is None and gates["speed"]["ci"] is None
    assert gates["speed"]["limit"] == 0.5 and gates["speed"]["reason"] == "no CUDA GPU here"


@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_a_run_that_is_not_a_pass_states_its_verdict_once_and_no_gate_line_says_pass(profile):
    """INCOMPLETE with both gates within their limits: the banner's reasons never say PASS; a PASS run's do."""
    incomplete = decide_verdict(context(both(), profile=profile, other_model=None if profile == "smoke" else OTHER))
    assert incomplete.status == "INCOMPLETE"
    gate_lines = [r for r in incomplete.reasons if r.startswith(("accuracy gate", "speed gate"))]
    assert len(gate_lines) == 2 and all("measured: within limit" in r for r in gate_lines), incomplete.reasons
    assert not any("PASS" in r for r in incomplete.reasons), incomplete.reasons
    failed = decide_verdict(context(both(speed="failed"), ratio=0.9))
    assert any(r.startswith("accuracy gate: accuracy drop 0.01 < limit 0.05: measured: within limit")
               for r in failed.reasons), failed.reasons
    assert any("> limit 0.5: FAIL" in r for r in failed.reasons), "a measured failure still says FAIL"
    passed = decide_verdict(context(both()))
    assert passed.status == "PASS" and sum(": PASS" in r for r in passed.reasons) == 2, passed.reasons
