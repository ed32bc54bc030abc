"""Reports of a comparison: terminal summary, markdown (verdict, random-weights warning), JSON, and the command."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from virnucpro_core.compare import report
from virnucpro_core.commands import compare as compare_command
from virnucpro_core.compare.comparison import Comparison, compare
from virnucpro_core.gate.gates import decide_accuracy
from virnucpro_core.evaluate.metrics import evaluate
from virnucpro_core.evaluate.predictions import Predictions
from virnucpro_core.paths import CompareReportPaths
from tests.lineage import with_lineage


def make(wrong: set[int], n: int = 20, meta: dict | None = None) -> Predictions:
    y = np.array([1] * (n // 2) + [0] * (n - n // 2))
    y_pred = np.array([1 - y[i] if i in wrong else y[i] for i in range(n)])
    p_viral = np.where(y_pred == 1, 0.8, 0.2) + np.linspace(0, 0.1, n)
    return Predictions([f"rec{i}_chunk_1F1" for i in range(n)], y, p_viral, y_pred,
                       [20 + 10 * (i % 8) for i in range(n)], meta=with_lineage(meta))


def comparison(fast_wrong: set[int], base_wrong: set[int] = frozenset(), **meta) -> Comparison:
    fast, base = make(fast_wrong, meta=meta.get("fast")), make(set(base_wrong), meta=meta.get("baseline"))
    return decide_accuracy(compare(fast, base, fast_evaluation=evaluate(fast, n_bootstrap=20),
                                   baseline_evaluation=evaluate(base, n_bootstrap=20), n_bootstrap=20))


@pytest.fixture(scope="module")
def failing() -> Comparison:
    return comparison({0, 1, 12}, fast={"weights": "pretrained"}, baseline={"weights": "pretrained"})


def test_summary_has_table_verdict_and_next_steps(failing):
    text = report.format_summary(failing)
    lines = text.splitlines()
    assert lines[1].split()[:3] == ["metric", "ESM2", "3B"], text
    accuracy = next(line for line in lines if line.startswith("accuracy"))
    assert accuracy.split() == ["accuracy", "1.0000", "0.8500", "0.1500"], "drop = baseline − FastESM2: positive, FastESM2 is worse"
    assert "verdict: accuracy drop 0.1500" in text and "≥ limit 0.05: FAIL" in text
    assert "next steps:" in text and "  1. " in text
    assert "RANDOM" not in text


def test_summary_of_a_pass_has_no_next_steps():
    text = report.format_summary(comparison(set()))
    assert "< limit 0.05: PASS" in text and "next steps" not in text


def test_markdown_has_verdict_sections_and_figure_links(tmp_path, failing):
    figures_dir = tmp_path / "figures"
    figures_dir.mkdir()
    (figures_dir / "roc_pr_curves.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    path = report.write_markdown(failing, tmp_path / "report.md", figures_dir=figures_dir,
                                 histories={"FastESM2_650": ([0.7, 0.5], [0.8, 0.6], 2)})
    text = path.read_text()
    assert text.startswith("# FastESM2_650 vs ESM2 3B: accuracy gate — FAIL")
    assert failing.reason in text
    for section in ("## Next steps", "## Provenance", "## Metrics (frame level)", "## McNemar's test",
                    "## Confusion matrices", "## Accuracy by protein length", "## Per-chunk metrics",
                    "## Training", "## Figures"):
        assert section in text, f"{section} missing"
    assert "](figures/roc_pr_curves.png)" in text, "figure linked relative to the report"
    assert "confusion_matrices.png" not in text, "only figures that exist are linked"
    assert "random-weight" not in text.lower()


@pytest.mark.parametrize("run_verdict", ["INCOMPLETE (smoke profile)", "FAIL", "ERROR"])
def test_comparison_markdown_of_a_run_that_is_not_a_pass_never_says_pass(tmp_path, run_verdict):
    """The acceptance run's verdict is stated once: a passed accuracy gate on it is "measured: within limit"."""
    text = report.write_markdown(comparison(set()), tmp_path / "c.md", run_verdict=run_verdict).read_text()
    title = text.splitlines()[0]
    assert title == f"# FastESM2_650 vs ESM2 3B: accuracy gate measured: within limit (run verdict {run_verdict})"
    assert "PASS" not in text and "< limit 0.05: measured: within limit — " in text, text[:600]
    assert report.write_markdown(comparison(set()), tmp_path / "p.md", run_verdict="PASS").read_text().startswith(
        "# FastESM2_650 vs ESM2 3B: accuracy gate — PASS"), "a PASS run's comparison says PASS"
    failed = report.write_markdown(comparison({0, 1, 12}), tmp_path / "f.md", run_verdict="FAIL").read_text()
    assert failed.startswith("# FastESM2_650 vs ESM2 3B: accuracy gate — FAIL"), "a failed gate still says FAIL"


@pytest.mark.parametrize("where", ["provenance", "predictions"], ids=["provenance-arg", "predictions-meta"])
def test_markdown_warns_loudly_about_random_weights(tmp_path, where):
    if where == "provenance":
        c = comparison(set())
        provenance = {"FastESM2_650": {"weights": "random", "size": "tiny", "seed": 0}}
    else:
        c = comparison(set(), fast={"weights": "random"})
        provenance = None
    text = report.write_markdown(c, tmp_path / "r.md", provenance=provenance).read_text()
    assert "accuracy from random-weight stand-ins does not validate fastesm2" in text.lower()
    assert text.index("RANDOM-WEIGHT") < text.index("## "), "the warning comes before every section"
    assert "PASS" in text
    assert "RANDOM-WEIGHT" in report.format_summary(c, provenance)


def test_markdown_states_baseline_from_file(tmp_path):
    fast = make({0})
    metrics = tmp_path / "esm2_3b_metrics.json"
    metrics.write_text(json.dumps({"accuracy": 0.98, "n": 20, "meta": with_lineage()}))
    from virnucpro_core.evaluate.metrics import Evaluation

    c = decide_accuracy(compare(fast, None, baseline_metrics=Evaluation.load(metrics), n_bootstrap=0))
    text = report.write_markdown(c, tmp_path / "r.md").read_text()
    assert f"came from **metrics file {metrics}**" in text
    assert "Not run: not paired" in text


def test_tables_are_rows_of_strings(failing):
    for table in (report.metrics_table(failing), report.metrics_table(failing, with_ci=False),
                  report.chunk_table(failing), report.confusion_table(failing.fast),
                  report.length_breakdown_table(failing), report.mcnemar_table(failing), report.drop_table(failing),
                  report.provenance_table(failing)):
        header, rows = table
        assert rows, header
        assert all(len(row) == len(header) for row in rows), header
        assert all(isinstance(cell, str) for row in rows for cell in row), header
    header, rows = report.confusion_table(failing.fast)
    assert rows == [["true host (0)", "9 (TN)", "1 (FP)"], ["true viral (1)", "2 (FN)", "8 (TP)"]]


def test_json_report(tmp_path, failing):
    path = report.write_json(failing, tmp_path / "report.json", provenance={"esm2_3b": {"weights": "random"}})
    data = json.loads(path.read_text())
    assert data["verdict"] == "FAIL" and data["reason"] == failing.reason
    assert data["random_weights"] is True and "does not validate FastESM2" in data["warning"]
    assert Comparison.from_dict(data["comparison"]).reason == failing.reason


def run_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    compare_command.register(parser.add_subparsers())
    args = parser.parse_args(["compare", *argv])
    return args.run(args)


@pytest.mark.parametrize(("fast_wrong", "status"), [({3}, 0), ({0, 1, 2}, 1)], ids=["pass", "fail"])
def test_compare_command(tmp_path, capsys, fast_wrong, status):
    make(fast_wrong).save(tmp_path / "fast.npz")
    make({5}).save(tmp_path / "base.json")  # baseline one wrong: drop 0 (pass) or 2/20 (fail)
    out = tmp_path / "out"
    code = run_command(["--fast", str(tmp_path / "fast.npz"), "--baseline", str(tmp_path / "base.json"),
                        "--out", str(out), "--n-bootstrap", "10"])
    assert code == status
    printed = capsys.readouterr().out
    assert ("PASS" if status == 0 else "FAIL") in printed
    paths = CompareReportPaths(out)
    for path in (paths.markdown, paths.json, paths.comparison, paths.evaluation("fast"),
                 paths.evaluation("baseline"), paths.figure("confusion"), paths.figure("roc_pr")):
        assert path.is_file(), f"{path} not written"
    # The baseline's evaluation serves as --baseline-metrics of a later run.
    code = run_command(["--fast", str(tmp_path / "fast.npz"), "--baseline-metrics", str(paths.evaluation("baseline")),
                        "--out", str(tmp_path / "out2"), "--n-bootstrap", "0"])
    assert code == status
    assert "not paired" in capsys.readouterr().out


SPLIT = {
    "split_id": "0123456789abcdef", "seed": 1, "group_by": "sample", "test_fraction": 0.1, "rounding_rule": "half up",
    "features": {},
    "classes": [{"name": "viral", "label": 1, "full": 10, "train": 9, "test": 1, "ratio_full": 0.5,
                 "ratio_train": 0.5, "ratio_test": 0.5, "target_test": 1, "test_fraction_achieved": 0.1}],
    "lengths": {"all": {"full": {"n": 10, "min": 1, "median": 5.0, "mean": 5.0, "max": 9},
                        "train": {"n": 9, "min": 1, "median": 5.0, "mean": 5.0, "max": 9},
                        "test": {"n": 1, "min": 3, "median": 3.0, "mean": 3.0, "max": 3},
                        "ks_statistic": 0.5, "ks_pvalue": 0.3}},
    "leakage": {"test_samples": 1, "leaked_samples": 1, "fraction": 1.0, "leaked_sources": 1,
                "chunk_leaked_samples": 0, "chunk_fraction": 0.0},
    "sources": [],
}


def test_split_tables_and_test_set_section(tmp_path, failing):
    assert report.split_table(SPLIT) == (
        ["class", "all", "train", "test", "target test", "test share achieved"],
        [["viral", "10", "9", "1", "1", "0.1000"]],
    )
    header, rows = report.length_table(SPLIT)
    assert rows == [["all", "9", "1", "5", "3", "5.0", "3.0", "0.5000", "0.3"]]
    text = report.write_markdown(failing, tmp_path / "r.md", split_summary=SPLIT).read_text()
    assert "## Test set" in text and "Leakage: 1 of 1 test samples (100.0%)" in text


@pytest.mark.parametrize(
    ("checkpoint", "expected"),
    [
        ({"which": "best", "epoch": 3}, "best weights, epoch 3"),
        ({"which": None, "epoch": None, "trained_on": {"origin": "original VirNucPro whole-module checkpoint"}},
         "original VirNucPro whole-module checkpoint"),
        ({"which": None, "epoch": None}, "weights of unknown origin"),
    ],
    ids=["ours", "original", "unknown"],
)
def test_a_checkpoint_names_its_weights_or_where_it_came_from(checkpoint, expected):
    assert report.checkpoint_weights(checkpoint) == expected
    assert f"m.pt ({expected}, " in report._describe_checkpoint({"checkpoint": {"path": "x/m.pt", **checkpoint}})
