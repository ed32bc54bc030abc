"""The validation report's HTML as a reader sees it: one file, verdict first, one environment, readable colours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from bs4 import BeautifulSoup

from tests.html_checks import acceptance_json_problems, minus_sign_problems, report_problems, visible_text
from tests.lineage import with_lineage
from virnucpro_core.gate import acceptance_report
from virnucpro_core.gate.html_report import PALETTE, _prose, contrast_ratio, render_sections
from virnucpro_core.split.records import Leakage, SplitSummary
from virnucpro_core.gate.gates import ACCURACY, SPEED
from virnucpro_core.gate.session import AcceptanceSession, Outcome
from virnucpro_core.gate.validation import RunResults
from virnucpro_core.gate.verdict import decide_verdict

ROOT = Path(__file__).resolve().parents[2]


def context(outcomes, profile="smoke", weights="random") -> AcceptanceSession:
    settings = SimpleNamespace(profile=profile, weights=weights, size="tiny", seed=42, viral=(), host=(),
                               max_accuracy_drop=0.05, max_time_ratio=0.5)
    return AcceptanceSession(settings=settings, run=None, timings={}, outcomes=outcomes,
                             run_id="20261202T000000Z-abc123", started="2026-12-02T00:00:00+00:00")


def sections(ctx: AcceptanceSession) -> BeautifulSoup:
    return BeautifulSoup(render_sections(ctx, decide_verdict(ctx), exit_code=11), "html.parser")


# --------------------------------------------------------------------------- colours


@pytest.mark.parametrize("name", list(PALETTE))
def test_every_colour_pair_reaches_4_5_to_1(name):
    text, background = PALETTE[name]
    assert contrast_ratio(text, background) >= 4.5, f"{name}: {text} on {background} is {contrast_ratio(text, background):.2f}:1"


def test_contrast_ratio_matches_wcag_examples():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21)
    assert contrast_ratio("#999999", "#ffffff") == pytest.approx(2.85, abs=0.01), "pytest-html's grey fails 4.5:1"


# --------------------------------------------------------------------------- our sections


def _timed(ctx: AcceptanceSession) -> AcceptanceSession:
    """``ctx`` with both models timed, as-deployed: a run that read its inputs."""
    from virnucpro_core.gate.benchmark import TimingResult

    ctx.timings = {("as-deployed", e): TimingResult(f"as-deployed/{e}", e, {"dtype": "float32", "toks_per_batch": 2048},
                                                    10, 1000, [seconds] * 3, 1, "cpu")
                   for e, seconds in (("fast", 0.25), ("baseline", 1.0))}
    return ctx


def test_verdict_comes_first_then_the_smoke_notice():
    soup = sections(_timed(context([Outcome.deciding(ACCURACY, "skipped", "no weights"),
                                    Outcome.deciding(SPEED, "skipped", "no GPU")])))
    first = soup.find("section")
    assert first["id"] == "vnp-verdict" and first.h2.get_text() == "Verdict: INCOMPLETE (smoke profile)"
    assert "20261202T000000Z-abc123" in first.get_text() and "exit status 11" in first.get_text()
    notice = soup.find(class_="vnp-notice")
    assert "does not validate FastESM2_650" in notice.get_text()


def test_an_incomplete_banner_states_the_verdict_once_and_gates_within_limit_never_say_pass():
    ctx = _timed(context([Outcome.deciding(ACCURACY, "skipped", "no weights"), Outcome.deciding(SPEED, "passed")]))
    soup = sections(ctx)
    banner = soup.find(id="vnp-verdict").get_text(" ")
    assert banner.count("INCOMPLETE") == 1 and "PASS" not in banner, banner
    assert "time ratio 0.250 ≤ limit 0.5: measured: within limit" in banner, banner
    speed = soup.find(id="vnp-speed").find("table").get_text(" ")
    assert "measured: within limit" in speed and "PASS" not in speed, speed


def test_an_error_page_that_read_nothing_has_no_smoke_notice():
    """--require-gpu without a GPU (or a bad input) stops the run before it reads the bundled data: the page says
    ERROR (smoke profile) and why, never that this run checked the suite on synthetic data."""
    ctx = context([])
    ctx.environment_error = "--require-gpu was given and this runner has no usable CUDA GPU; nothing was measured"
    verdict = decide_verdict(ctx)
    soup = BeautifulSoup(render_sections(ctx, verdict, exit_code=12), "html.parser")
    assert verdict.status == "ERROR" and soup.find(id="vnp-verdict").h2.get_text() == "Verdict: ERROR (smoke profile)"
    assert soup.find(class_="vnp-notice") is None and "bundled synthetic data" not in soup.get_text(), soup.get_text()
    assert acceptance_report.notice(ctx) is None, "acceptance.md and acceptance.json carry no smoke notice either"
    assert acceptance_report.notice(_timed(ctx)) == acceptance_report.SMOKE_NOTICE, "once it read, it says so"


def test_the_training_section_says_once_which_weights_were_evaluated():
    """Final weights evaluated (their epoch), the best validation epoch the loss curves mark, the option for it."""
    def trained(final_epoch, best_epoch):
        history = SimpleNamespace(epochs=list(range(final_epoch)), best_epoch=best_epoch, best_val_loss=0.1,
                                  stop_reason="early_stopping", train_loss=[0.5] * final_epoch,
                                  val_loss=[0.4] * final_epoch, stopped_epoch=final_epoch)
        meta = SimpleNamespace(input_dim=8, epoch=final_epoch, which="final")
        return SimpleNamespace(final=SimpleNamespace(meta=meta), history=history)

    results = RunResults()
    results.trained = {"fast": trained(63, 58), "baseline": trained(80, 75)}
    ctx = AcceptanceSession(run=SimpleNamespace(results=results))
    text = acceptance_report.training_text(ctx)
    assert ("Evaluated: the final weights, after each MLP's last epoch (ESM2 3B epoch 80, FastESM2_650 epoch 63)"
            in text and "best validation epoch (ESM2 3B epoch 75, FastESM2_650 epoch 58)" in text), text
    assert "`virnucpro train --save best`" in text and text.lower().count("evaluated") == 2, text
    assert [row[0] for row in acceptance_report.training_table(ctx)[1]] == ["ESM2 3B", "FastESM2_650"]


def _predictions(correct: list[int], lengths: list[int]):
    import numpy as np

    from virnucpro_core.evaluate.predictions import Predictions

    y = np.array([1, 0] * (len(correct) // 2))
    pred = np.where(np.array(correct, bool), y, 1 - y)
    return Predictions([f"s{i}_chunk_1F1" for i in range(len(y))], y, pred.astype(float), pred, lengths,
                       meta=with_lineage())


def test_the_accuracy_section_has_the_mcnemar_table_and_accuracy_by_length_of_comparison_md():
    """The HTML lays out comparison.md's own tables (compare.report), with a header on every column."""
    from virnucpro_core.compare.comparison import compare
    from virnucpro_core.compare.report import length_breakdown_table, mcnemar_table
    from virnucpro_core.gate.gates import decide_accuracy

    lengths = [40] * 10 + [400] * 10
    fast = _predictions([1] * 8 + [0, 0] + [1] * 10, lengths)
    baseline = _predictions([1] * 10 + [0] + [1] * 9, lengths)
    comparison = decide_accuracy(compare(fast, baseline, max_accuracy_drop=0.05, n_bootstrap=50, seed=1,
                                         names=("FastESM2_650", "ESM2 3B")))
    ctx = context([Outcome.deciding(ACCURACY, "failed" if not comparison.passed else "passed")])
    ctx.run = SimpleNamespace(results=RunResults(comparison=comparison), random_weights_reason=lambda: None,
                              other_model_reason=lambda: None, device=lambda: "cpu", loaded_models=lambda: [],
                              stages=[], has_merged_inputs=lambda: False)
    accuracy = sections(ctx).find(id="vnp-accuracy")
    tables = {h3.get_text(): h3.find_next_sibling("table") for h3 in accuracy.find_all("h3")}
    assert set(tables) == {"McNemar's test (paired errors)", "Accuracy by protein length"}, tables.keys()
    for title, expected in (("McNemar's test (paired errors)", mcnemar_table(comparison)),
                            ("Accuracy by protein length", length_breakdown_table(comparison))):
        table = tables[title]
        heads = [th.get_text() for th in table.find_all("th")]
        cells = [[td.get_text() for td in tr.find_all("td")] for tr in table.tbody.find_all("tr")]
        assert cells and all(heads) and heads[1:] == expected[0][1:] and cells == expected[1], (title, heads, cells)
    assert tables["McNemar's test (paired errors)"].th.get_text() == "ESM2 3B (rows) / FastESM2_650 (columns)"
    m = comparison.mcnemar
    assert (m.both_correct, m.baseline_only_correct, m.fast_only_correct, m.both_wrong) == (17, 2, 1, 0)
    assert minus_sign_problems(visible_text(accuracy), "accuracy") == []


def test_random_weights_in_the_full_profile_are_flagged():
    text = sections(context([], profile="full", weights="random")).get_text()
    assert "Random-weight stand-ins" in text


def test_leakage_is_a_warning_that_says_what_it_means():
    leakage = Leakage(test_samples=10, leaked_samples=10, fraction=1.0, leaked_sources=3, chunk_leaked_samples=4,
                      chunk_fraction=0.4)
    summary = SplitSummary("abcdef0123456789", 42, "sample", 0.1, "round half up", {}, [], {}, leakage, [])
    split = SimpleNamespace(summary=summary)
    ctx = AcceptanceSession(run=SimpleNamespace(results=RunResults(splits={"fast": split})))
    warning = acceptance_report.split_report(ctx).leakage_warning
    assert "10 of 10 test samples (100.0%)" in warning and "4 (40.0%) share a chunk" in warning
    assert "optimistic" in warning, "the warning says what leakage means for the accuracy figures"
    box = BeautifulSoup(_prose(warning), "html.parser")
    assert box.code.get_text() == "virnucpro split --group-by source" and "`" not in str(box)


def test_the_minus_sign_check_finds_hyphen_minus_numbers_and_leaves_ids_dates_ranges_and_flags():
    fine = ("run 20261202T000000Z-abc123 of 2026-12-02, lengths 300-500, lr 2e-4, `--save best`, -m gpu, "
            "x86_64-with-glibc2.36, /tmp/pytest-12/a, drop −0.0046 [−0.0182, +0.0068]")
    assert minus_sign_problems(fine, "text") == []
    bad = minus_sign_problems("drop -0.0046 [-0.0182, +0.0068] (-.5) |-1|", "text")
    assert len(bad) == 4 and all("hyphen-minus" in p for p in bad), bad


def test_evidence_tables_write_negative_drops_and_bounds_with_the_minus_sign():
    """Generalisation and per-group drops and their CI bounds: U+2212, as the metric tables' drops."""
    row = SimpleNamespace(status="measured", title="locked", gated=True, baseline_accuracy=0.9544,
                          fast_accuracy=0.959, drop=-0.0046, drop_ci=(-0.0182, 0.0068), mcnemar_p=0.7266,
                          n_test=439, leakage={})
    group = SimpleNamespace(group="host_fam02", classes="host", n=37, baseline_accuracy=0.8649,
                            baseline_ci=(0.7568, 0.9466), fast_accuracy=0.9459, fast_ci=(0.8649, 1.0),
                            drop=-0.0811, drop_ci=(-0.1892, 0.0))
    evidence = SimpleNamespace(splits=[row], groups=[group])
    cells = [acceptance_report.generalisation_table(evidence)[1][0][4], acceptance_report.group_table(evidence)[1][0][5]]
    assert cells == ["−0.0046 [−0.0182, +0.0068]", "−0.0811 [−0.1892, +0.0000]"], cells
    assert minus_sign_problems(" ".join(cells), "cells") == []


# --------------------------------------------------------------------------- the finished page, end to end


PLUGIN_CONFTEST = '''
from acceptance import report_plugin


def pytest_addoption(parser):
    parser.addoption("--allow-incomplete", action="store_true")


def pytest_configure(config):
    config.pluginmanager.register(report_plugin.AcceptanceReport(config), report_plugin.PLUGIN_NAME)
'''


def test_a_real_pytest_html_page_becomes_one_readable_file(tmp_path):
    """pytest-html writes the page and our plugin finishes it; the parsed result has what a reviewer needs."""
    (tmp_path / "conftest.py").write_text(PLUGIN_CONFTEST)
    (tmp_path / "test_sample.py").write_text("def test_one():\n    pass\n")
    html = tmp_path / "reports" / "acceptance.html"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "test_sample.py", "-q", "-p", "no:cacheprovider", "--html", str(html),
         "--self-contained-html"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert run.returncode == 11, f"no gate ran: INCOMPLETE exits 11, got {run.returncode}\n{run.stdout[-2000:]}"
    page = html.read_text(encoding="utf-8")
    assert report_problems(page, smoke=False) == []
    assert sorted(p.name for p in html.parent.iterdir()) == ["acceptance.html", "acceptance.json", "acceptance.md"]
    report = json.loads((html.parent / "acceptance.json").read_text())
    assert report["verdict"]["status"] == "INCOMPLETE" and report["verdict"]["exit_code"] == 11
    assert acceptance_json_problems(report) == []
    assert [report["gates"][g]["status"] for g in ("accuracy", "speed")] == ["not run", "not run"]
    assert report["run"]["id"] and report["run"]["id"] in visible_text(BeautifulSoup(page, "html.parser"))
    assert report["run"]["id"] in (html.parent / "acceptance.md").read_text()


def test_the_checks_catch_a_bad_page():
    """The checker can fail: pytest-html's page as it comes has two flaws it must name."""
    page = ('<html><head><link href="assets/style.css" rel="stylesheet"/></head><body><h1 id="title">t</h1>'
            "<h2>Environment</h2><h2>Environment</h2><p>use `x`</p>"
            "<table><tr><td>a</td><td>b</td></tr></table></body></html>")
    problems = report_problems(page, smoke=True)
    for expected in ("external stylesheet", "2 Environment sections", "literal backtick", "has headers []",
                     "verdict banner is not the first", "SMOKE PROFILE in the title"):
        assert any(expected in p for p in problems), (expected, problems)


def test_collect_only_neither_decides_nor_touches_the_reports(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "acceptance.md").write_text("an earlier run's report\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "acceptance/", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--html", str(reports / "acceptance.html")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:]
    assert (reports / "acceptance.md").read_text() == "an earlier run's report\n"
    assert sorted(p.name for p in reports.iterdir()) == ["acceptance.md"]
