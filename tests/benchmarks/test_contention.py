"""benchmarks/contention.py in a short mode: every stage runs, quiet and beside a busy process, and is recorded with
the load average (no timing assertions: the numbers belong in benchmarks/NOTES.md). One thread count keeps it to
8 child processes; a second count is the same code under another OMP_NUM_THREADS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.scripts import imported_script

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("train", "evaluate", "stream", "smoke-train", "extract")
pytestmark = pytest.mark.slow


def _tiny_split(directory: Path) -> Path:
    """A 400-sample split at 64-d, made as the benchmark makes its stream split (scale.py is what it imports)."""
    with imported_script("benchmarks/scale.py"), imported_script("benchmarks/contention.py") as contention:
        return contention.stream_split(directory, 400, 64)


def test_contention_measures_each_cell_quiet_and_busy(tmp_path):
    out = tmp_path / "contention.json"
    run = subprocess.run([sys.executable, "benchmarks/contention.py", "--threads", "1", "--dim", "64",
                          "--eval-rows", "256", "--seconds", "0.2", "--stream-rows", "400",
                          "--smoke-split", str(_tiny_split(tmp_path)), "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    cells = [(c["stage"], c["load"], c["threads"]) for c in report["cells"]]
    assert cells == [(stage, load, threads) for stage in STAGES for load in ("quiet", "busy") for threads in (1,)]
    for cell in report["cells"]:
        assert cell["finished"] and cell["samples_per_s"] > 0 and len(cell["load_average_before"].split()) == 3
        assert cell["steps"] >= (1 if cell["stage"] == "smoke-train" else 3)
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["load_average_end"]
    assert "smoke-train 1 thread(s): beside a busy process" in run.stdout


def test_smoke_train_without_a_smoke_split_is_one_usage_error(tmp_path):
    run = subprocess.run([sys.executable, "benchmarks/contention.py", "--stages", "smoke-train", "--smoke-split",
                          str(tmp_path / "none"), "--json", str(tmp_path / "c.json")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "--stages: unknown" not in run.stderr
