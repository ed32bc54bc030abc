"""The acceptance suite end to end, in a subprocess as CI runs it: verdicts, exit status and the report files.

The runs share one artifacts directory (the session's ``smoke_artifacts``, also
the screenshots test's), so only the first builds the stages (about 1.5 min on
2 cores); the others reuse them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bs4 import BeautifulSoup

from tests.earlier_runs import earlier_reports
from tests.html_checks import acceptance_json_problems, minus_sign_problems, report_problems
from tests.virnucpro_layouts import write_data_merge

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
CPU_ONLY = pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without CUDA reports")


@pytest.fixture(scope="module")
def artifacts(smoke_artifacts) -> Path:
    return smoke_artifacts


def acceptance(*options: str, reports: Path, artifacts: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "acceptance/", "-q", "-p", "no:cacheprovider", "--artifacts", str(artifacts),
         "--html", str(reports / "acceptance.html"), *options],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip


def read(reports: Path) -> tuple[dict, str, BeautifulSoup]:
    report = json.loads((reports / "acceptance.json").read_text(encoding="utf-8"))
    page = (reports / "acceptance.html").read_text(encoding="utf-8")
    return report, page, BeautifulSoup(page, "html.parser")


def test_forced_speed_failure_is_fail_with_next_steps_and_a_complete_report(tmp_path, artifacts):
    reports = tmp_path / "reports"
    run = acceptance("--max-time-ratio", "0.01", "--allow-incomplete", reports=reports, artifacts=artifacts)
    assert run.returncode == 10, f"FAIL exits 10 even with --allow-incomplete, got {run.returncode}\n{run.stdout[-3000:]}"
    assert run.stdout.count("acceptance verdict: FAIL (smoke profile)") == 1, run.stdout[-3000:]
    report, page, soup = read(reports)
    verdict = report["verdict"]
    assert (verdict["status"], verdict["exit_code"], verdict["smoke"]) == ("FAIL", 10, True)
    assert verdict["gates"]["speed"]["state"] == "failed" and verdict["gates"]["accuracy"]["state"] == "passed"
    assert any("like-for-like" in step for step in verdict["next_steps"])
    assert ("load average" in verdict["next_steps"][0]) != torch.cuda.is_available(), verdict["next_steps"]
    assert acceptance_json_problems(report) == []
    speed, accuracy = report["gates"]["speed"], report["gates"]["accuracy"]
    assert (speed["status"], speed["limit"]) == ("failed", 0.01) and speed["value"] > 0.01, speed
    assert speed["value"] == report["speed_ratios"][0]["time_ratio"], "the gate and the table give one ratio"
    assert (accuracy["status"], accuracy["limit"]) == ("passed", 0.05) and accuracy["value"] < 0.05, accuracy
    assert accuracy["ci"]["low"] <= accuracy["value"] <= accuracy["ci"]["high"]
    assert accuracy["value"] == report["comparison"]["accuracy_drop"], "one drop in the whole file"

    assert report_problems(page, smoke=True) == []
    headings = [h.get_text() for h in soup.find_all("h2")]
    for section in ("Next steps", "Accuracy", "Speed", "Test set", "Training", "Environment", "Stages", "Tests"):
        assert section in headings, (section, headings)
    accuracy = soup.find(id="vnp-accuracy").get_text(" ")
    assert "McNemar exact p" in accuracy and "95 % CI of the drop" in accuracy and "positive drop means" in accuracy
    speed = soup.find(id="vnp-speed")
    ratio_header = [th.get_text() for th in speed.find("table").find_all("th")]
    assert ratio_header[-2:] == ["limit", "result"] and "FAIL" in speed.find("table").get_text()
    assert "CUDA" not in speed.p.get_text() or torch.cuda.is_available(), "a CPU run must not claim a CUDA clock"
    assert soup.find(id="vnp-test-set").find(class_="vnp-warning"), "leakage is shown as a warning box"

    markdown = (reports / "acceptance.md").read_text(encoding="utf-8")
    assert markdown.startswith("# VirNucPro FastESM2_650 acceptance — FAIL (smoke profile)")
    detail = (reports / "comparison.md").read_text(encoding="utf-8")
    assert minus_sign_problems(markdown, "acceptance.md") + minus_sign_problems(detail, "comparison.md") == []
    savings = report["switch_savings"]
    assert savings["unit"] == ("GPU-hours" if torch.cuda.is_available() else "CPU-hours"), savings
    this_run = savings["inputs"][0]
    assert this_run["label"] == "this run's input" and this_run["sequences"] > report["test_set"]["leakage"][
        "test_samples"], this_run
    assert f"embedding {this_run['sequences']:,} proteins (this run's input)" in markdown
    assert f"embedding {this_run['sequences']:,} proteins" in soup.find(id="vnp-speed").get_text(" ")
    assert report["peak_gpu_memory"]["measured"] == torch.cuda.is_available()
    training = soup.find(id="vnp-training").get_text(" ")
    assert "Evaluated: the final weights" in training and "--save best" in training, training
    assert soup.find(id="vnp-accuracy").find(string="Accuracy by protein length") is not None
    for section in ("## Test set", "## Training", "## Accuracy", "## Speed", "> **Warning.** Leakage"):
        assert section in markdown, section
    assert report["test_set"]["leakage"]["test_samples"] == 439 and set(report["training"]) == {"FastESM2_650",
                                                                                                "ESM2 3B"}
    run_id = report["run"]["id"]
    assert run_id in markdown and run_id in soup.get_text() and run_id in (reports / "comparison.md").read_text()
    assert (reports / "comparison.md").read_text().startswith(
        "# FastESM2_650 vs ESM2 3B: accuracy gate measured: within limit (run verdict FAIL (smoke profile))")
    assert "PASS" not in soup.find(id="vnp-verdict").get_text() + soup.find(id="vnp-accuracy").get_text(), (
        "the run is a FAIL: the passed accuracy gate is 'measured: within limit', never PASS")
    assert json.loads((reports / "benchmark.json").read_text())["virnucpro_run"]["id"] == run_id


@CPU_ONLY
def test_gpu_marker_on_cpu_is_incomplete_once_and_replaces_an_earlier_runs_reports(tmp_path, artifacts):
    reports = tmp_path / "reports"
    earlier_reports(reports, ("comparison.md", "benchmark.json", "acceptance.md", "assets/style.css"),
                    "from an earlier run\n")
    run = acceptance("-m", "gpu", reports=reports, artifacts=artifacts)
    assert run.returncode == 11, f"INCOMPLETE exits 11 without --allow-incomplete\n{run.stdout[-3000:]}"
    report, page, _ = read(reports)
    assert report["verdict"]["status"] == "INCOMPLETE" and len(report["verdict"]["reasons"]) == 1
    assert "no CUDA GPU" in report["verdict"]["reasons"][0] and "CPU-only build" in report["verdict"]["reasons"][0]
    assert sorted(p.name for p in reports.iterdir() if not p.name.startswith(".")) == [
        "acceptance.html", "acceptance.json", "acceptance.md"], "files of the earlier run must be gone"
    assert "earlier run" not in (reports / "acceptance.md").read_text()
    assert report_problems(page, smoke=True) == []


@CPU_ONLY
def test_require_gpu_without_a_gpu_is_one_error_not_a_failure(tmp_path, artifacts):
    reports = tmp_path / "reports"
    run = acceptance("-m", "gpu", "--require-gpu", reports=reports, artifacts=artifacts)
    assert run.returncode == 12, f"ERROR exits 12\n{run.stdout[-3000:]}"
    report, page, _ = read(reports)
    assert report["verdict"]["status"] == "ERROR" and len(report["verdict"]["reasons"]) == 1
    reason = report["verdict"]["reasons"][0]
    assert "--require-gpu" in reason and "CPU-only build" in reason and "0 CUDA device(s)" in reason, reason
    assert report["verdict"]["next_steps"], "what to do"
    assert run.stdout.count("--require-gpu was given") == 1, "said once, not once per test"
    assert report_problems(page, smoke=True) == []
    assert "bundled synthetic data" not in page and report["notice"] is None, "nothing was read: no smoke notice"


def test_full_profile_with_random_weights_decides_no_accuracy(tmp_path, artifacts):
    """Accuracy is skipped with its reason, never computed; INCOMPLETE exits 11 unless allowed."""
    reports = tmp_path / "reports"
    run = acceptance("--profile", "full", "--weights", "random", "--size", "tiny", "--device", "cpu",
                     reports=reports, artifacts=artifacts)
    assert run.returncode == 11, f"INCOMPLETE exits 11\n{run.stdout[-3000:]}"
    report, page, soup = read(reports)
    assert report["verdict"]["status"] == "INCOMPLETE", report["verdict"]
    assert any("random weights cannot validate accuracy" in r for r in report["verdict"]["reasons"])
    assert report["comparison"] is None, "no comparison may be computed from random weights in the full profile"
    assert soup.find(id="vnp-accuracy") is None and "Random-weight stand-ins" in page
    assert report_problems(page, smoke=False) == []


def test_another_model_with_allow_other_model_is_named_and_never_passes(tmp_path, artifacts):
    """--allow-other-model through pytest's options: loaded, in the verdict, the banner and the environment table."""
    from virnucpro_core.models.registry import write_standin

    models = {name: write_standin(name, "tiny", tmp_path / name, seed=42)
              for name in ("fastesm2_650", "esm2_3b", "dnabert_s")}
    config = json.loads((models["fastesm2_650"] / "config.json").read_text())
    (models["fastesm2_650"] / "config.json").write_text(json.dumps({**config, "model_type": "esm"}))
    reports = tmp_path / "reports"
    # Other models: every stage is built anew, so train and time briefly (what is checked is how it is named).
    run = acceptance("--weights", "pretrained", "--device", "cpu", "--fast-model", str(models["fastesm2_650"]),
                     "--baseline-model", str(models["esm2_3b"]), "--dna-model", str(models["dnabert_s"]),
                     "--allow-other-model", "--max-epochs", "3", "--bench-runs", "1", "--bench-warmup", "0",
                     reports=reports, artifacts=artifacts)
    assert run.returncode == 11, f"INCOMPLETE exits 11\n{run.stdout[-3000:]}"
    report, page, soup = read(reports)
    reason = ('another model than FastESM2_650 was validated (--allow-other-model): model_type esm, 2 layers × 64, '
              '4 heads, vocabulary 33; differs in model_type "esm" (expected "fast_esm")')
    assert report["verdict"]["status"] == "INCOMPLETE" and reason in report["verdict"]["reasons"], report["verdict"]
    assert "Another model was validated" in report["notice"] and report["environment"]["OTHER MODEL"] == reason
    assert report["settings"]["allow_other_model"] is True
    assert reason in soup.find(id="vnp-verdict").get_text() and "Another model" in soup.find(class_="vnp-notice").get_text()
    assert report_problems(page, smoke=True) == []


def test_virnucpro_data_merge_trees_run_the_accuracy_gate_with_declared_provenance(tmp_path):
    """The user's existing features, in VirNucPro's layout, with nothing re-extracted: the accuracy gate runs,
    the speed gate cannot (no sequences), and the report says the features' provenance was declared."""
    base = write_data_merge(tmp_path / "original" / "data_merge", "esm2_3b")
    fast = write_data_merge(tmp_path / "fork" / "data_merge", "fastesm2_650")
    reports, artifacts = tmp_path / "reports", tmp_path / "artifacts"
    tree_options = ["--data-dir", str(base), "--data-dir", str(fast), "--size", "tiny", "--device", "cpu"]
    run = acceptance(*tree_options, reports=reports, artifacts=artifacts)
    said = run.stdout + run.stderr
    assert run.returncode == 4, f"undeclared VirNucPro files are a usage error, said once\n{said[-3000:]}"
    assert said.count("which does not say how they were made") == 1, said[-3000:]
    assert "--declare-features esm2_3b:float32" in said, said[-3000:]

    run = acceptance(*tree_options, "--declare-features", "esm2_3b:float32", "--declare-features",
                     "fastesm2_650:float16", "--allow-incomplete", reports=reports, artifacts=artifacts)
    assert run.returncode == 0, f"INCOMPLETE, allowed\n{run.stdout[-3000:]}"
    report, page, soup = read(reports)
    verdict = report["verdict"]
    assert verdict["status"] == "INCOMPLETE" and not verdict["smoke"]
    assert verdict["gates"]["accuracy"]["state"] == "passed", verdict
    assert verdict["gates"]["speed"]["state"] != "passed"
    assert report["test_set"]["leakage"]["test_samples"] == 48  # 10 % of 240 per class
    assert "DECLARED, not verified" in soup.find(id="vnp-environment").get_text(" ")
    comparison = (reports / "comparison.md").read_text(encoding="utf-8")
    assert "DECLARED, not verified (esm2_3b:float32:pretrained)" in comparison
    assert "DECLARED, not verified (fastesm2_650:float16:pretrained)" in comparison
    assert report_problems(page, smoke=False) == []
