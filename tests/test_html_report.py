"""The acceptance verdict and the report's HTML, from hand-made outcomes."""

from __future__ import annotations

from types import SimpleNamespace

from virnucpro_core.benchmark import TimingResult
from virnucpro_core.html_report import Outcome, ReportContext, decide_verdict, render_sections

ACCURACY = "test_accuracy.py::test_accuracy_gate"
SPEED = "test_speed.py::test_speed_gate"


def timing(embedder: str, seconds: float) -> TimingResult:
    return TimingResult(f"as-deployed/{embedder}", embedder, {"dtype": "float32", "toks_per_batch": 2048}, 10, 1000,
                        [seconds] * 3, 1, "cpu")


def context(outcomes, profile="smoke", weights="random", timings=None) -> ReportContext:
    settings = SimpleNamespace(profile=profile, weights=weights, size="tiny", seed=42, viral=(), host=(),
                               max_accuracy_drop=0.05, max_time_ratio=0.5)
    return ReportContext(settings=settings, run=None, timings=timings or {}, outcomes=outcomes)


def test_pass_needs_every_test_passed_and_both_gates():
    timings = {("as-deployed", "fast"): timing("fastesm2_650", 1.0), ("as-deployed", "baseline"): timing("esm2_3b", 4.0)}
    verdict = decide_verdict(context([Outcome(ACCURACY, "passed"), Outcome(SPEED, "passed")], timings=timings))
    assert verdict.status == "PASS"
    assert any("1.000 s / ESM2 3B 4.000 s = 0.250 ≤ limit 0.5" in r for r in verdict.reasons), verdict.reasons


def test_a_skipped_gate_makes_the_run_incomplete_and_says_why():
    why = "random weights cannot validate accuracy"
    verdict = decide_verdict(context([Outcome(ACCURACY, "skipped", why), Outcome(SPEED, "passed")]))
    assert verdict.status == "INCOMPLETE"
    assert f"accuracy gate not decided: {why}" in verdict.reasons


def test_any_failure_fails_with_next_steps():
    outcomes = [Outcome(ACCURACY, "passed"), Outcome(SPEED, "failed", "Failed: speed gate FAIL: ratio 0.7 > 0.5"),
                Outcome("test_training.py::test_validation_loss_fell[fast]", "passed")]
    verdict = decide_verdict(context(outcomes))
    assert verdict.status == "FAIL"
    assert verdict.reasons[0] == f"{SPEED}: speed gate FAIL: ratio 0.7 > 0.5"
    assert verdict.next_steps


def test_no_outcomes_is_incomplete():
    assert decide_verdict(context([])).status == "INCOMPLETE"


def test_html_opens_with_the_smoke_notice_then_the_verdict():
    html = "".join(render_sections(context([Outcome(ACCURACY, "passed"), Outcome(SPEED, "failed", "x")])))
    notice, banner = html.index("does not validate FastESM2_650"), html.index("Verdict: FAIL")
    assert notice < banner


def test_random_weights_in_the_full_profile_are_flagged():
    html = "".join(render_sections(context([], profile="full", weights="random")))
    assert "Random-weight stand-ins" in html
