"""A full disk as the acceptance suite meets it (issue 38): before the run, while its reports are written, before
and during an extraction. Outcome: one message naming the place, an exit status from the README (4 for a place
refused before the run, 12 for a run that could not finish), nothing half-written left behind, the earlier
reports as they were, and no stage run twice.

The disk is made full by ``tests/full_disk_plugin.py`` (``-p``), where the test says, without filling a real one.
Most runs select ``acceptance/test_parity.py`` alone (it skips at once on the smoke profile's stand-ins), so
each is the suite's start and end in seconds.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.earlier_runs import earlier_reports
from tests.test_hostile_inputs import clear_error
from virnucpro_core import files
from virnucpro_core.gate.lock import hold

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]
QUICK = "acceptance/test_parity.py"  # skips at once with stand-ins: a run that is its start and end


def suite(*options: str, **env: str) -> subprocess.CompletedProcess:
    """The suite as a user starts it, with the full-disk plugin loaded (inert unless ``env`` switches it on)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "full_disk_plugin", *options],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS), **env})


def _earlier_reports(reports: Path) -> dict[str, str]:
    return earlier_reports(reports)


def _reports(reports: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in reports.iterdir() if not p.name.startswith(".")}


@pytest.mark.slow
def test_a_full_disk_for_the_reports_is_refused_before_the_run(tmp_path):
    reports = tmp_path / "reports"
    earlier = _earlier_reports(reports)
    run = suite(QUICK, "--artifacts", str(tmp_path / "art"), "--html", str(reports / "acceptance.html"),
                FULL_DISK_UNDER=str(reports))
    assert run.returncode == 4, run.stdout[-3000:] + run.stderr[-3000:]
    assert "--html" in run.stderr and "not enough free space for the run's reports" in run.stderr, run.stderr
    assert "4,096 bytes free" in run.stderr and "Traceback" not in run.stdout + run.stderr
    assert _reports(reports) == earlier


@pytest.mark.slow
def test_reports_that_cannot_be_written_are_one_error_and_nothing_is_left_behind(tmp_path):
    reports = tmp_path / "reports"
    earlier = _earlier_reports(reports)
    stale = reports / ".acceptance.killed.part"  # what a run killed while writing its reports leaves
    stale.mkdir()
    (stale / "acceptance.json").write_text("half")
    live = reports / ".acceptance.running.part"  # another run's, still writing: kept
    live.mkdir()
    holder = hold(live)
    try:
        html = ["--artifacts", str(tmp_path / "art"), "--html", str(reports / "acceptance.html")]
        run = suite(QUICK, *html, FULL_DISK_REPORTS="1")
        out = run.stdout + run.stderr
        assert run.returncode == 12, out[-4000:]
        assert "Traceback" not in out and "INTERNALERROR" not in out, out[-4000:]
        assert out.count("acceptance: the reports could not be written — exit status 12") == 1, out[-4000:]
        assert "No space left on device" in out and ".acceptance." in out, "the message names the place"
        assert "wrote " not in out, "nothing is said written that was not"
        assert _reports(reports) == earlier, "the earlier reports stay as they were"
        assert sorted(p.name for p in reports.glob(".acceptance.*.part")) == [live.name], \
            "this run's staging folder is removed, and the killed run's with it; a running one's is kept"
        # The next run, with room: its reports replace the earlier ones, and say so only now they are there.
        run = suite(QUICK, *html, "--allow-incomplete")
        assert run.returncode == 0, run.stdout[-3000:]
        assert f"wrote {reports / 'acceptance.html'}" in run.stdout
        assert "an earlier run's" not in (reports / "acceptance.json").read_text()
        assert sorted(p.name for p in reports.glob(".acceptance.*.part")) == [live.name]
    finally:
        os.close(holder)


@pytest.mark.slow
def test_free_space_is_checked_before_extracting_and_a_failed_stage_runs_once(tmp_path):
    art = tmp_path / "art"
    # The split, then training: each stage asks for DNABERT-S's viral features.
    run = suite("acceptance/test_test_set.py", "acceptance/test_training.py", "--artifacts", str(art), "--html",
                str(tmp_path / "reports" / "acceptance.html"), FULL_DISK_UNDER=str(art))
    out = run.stdout + run.stderr
    assert run.returncode == 12, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    assert "--artifacts" in out and "not enough free space for" in out and "4,096 bytes free" in out, out[-4000:]
    # Training asks for the features the split could not extract, and is told, without extracting again.
    assert out.count("extract[dnabert_s,viral]: nucleotide.fa with DNABERT-S") == 1, out[-4000:]
    assert "extract[dnabert_s,viral] failed earlier in this run and is not run again" in out, out[-4000:]
    assert not (art / "features").exists() or not any((art / "features").rglob("*.pt")), "nothing was embedded"


def test_a_full_disk_during_extraction_names_the_file(tmp_path, run_cli, monkeypatch):
    (tmp_path / "p.faa").write_text(">a\nMKVLA\n>b\nMSTNPK\n")

    def full(self, data):  # a write that fails as the kernel says it: ENOSPC, no file named
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files._HashingWriter, "write", full)
    out = tmp_path / "f.pt"
    code, _, err = run_cli(["extract", "--model", "fastesm2_650", "--weights", "random", "--size", "tiny",
                            str(tmp_path / "p.faa"), "--out", str(out), "--no-progress"])
    clear_error(code, err, "No space left on device", f"{out}.shards", "free space")
    assert not out.exists()
