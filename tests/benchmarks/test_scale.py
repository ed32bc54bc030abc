"""benchmarks/scale.py in its CPU smoke mode: every stage runs in its own process and is measured (no timing
assertions: the numbers belong in benchmarks/NOTES.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_scale_smoke_measures_each_stage(tmp_path):
    out = tmp_path / "scale.json"
    run = subprocess.run([sys.executable, "benchmarks/scale.py", "--n", "1000,2000", "--dim", "64", "--shard-rows",
                          "400", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(r["n"], r["stage"]) for r in report["rows"]] == [
        (n, stage) for n in (1000, 2000) for stage in ("custody", "split", "train", "train-reference", "evaluate",
                                                       "bootstrap", "bootstrap-reference")]
    for row in report["rows"]:
        assert row["peak_rss_bytes"] > 0 and row["seconds"] > 0 and row["samples"] > 0, row
    for stage in ("train", "train-reference"):  # the same training samples on both paths
        train = [r for r in report["rows"] if r["stage"] == stage]
        assert [r["samples"] for r in train] == [810, 1620]  # 90 % train, 90 % of that after validation
    assert set(report["rss_slope"]) == {"custody", "split", "train", "train-reference", "evaluate", "bootstrap",
                                        "bootstrap-reference"}
    for stage in ("bootstrap", "bootstrap-reference"):  # the test side: 10 % per class
        rows = [r for r in report["rows"] if r["stage"] == stage]
        assert [r["samples"] for r in rows] == [100, 200] and all(r["ms_per_resample"] > 0 for r in rows), rows
    for row in report["rows"]:
        assert set(row["custody_s"]) == {"verify", "finite", "digest"}, row
    custody = [r for r in report["rows"] if r["stage"] == "custody"]
    assert [r["files"] for r in custody] == [4, 6], custody  # shards of 400 rows per class
    assert all(r["digest_gb_s"] > 0 and r["digests_gb_s"] > 0 and r["fast_path_ms_per_file"] > 0 for r in custody)
    train = next(r for r in report["rows"] if r["stage"] == "train")
    assert train["custody_s"]["verify"] > 0 and train["custody_s"]["finite"] > 0, "training reads through views"
    assert "| 2,000 |" in run.stdout and "slope of peak RSS" in run.stdout
