"""benchmarks/contention.py in a short mode: every cell runs, quiet and beside a busy process, and is recorded with
the load average (no timing assertions: the numbers belong in benchmarks/NOTES.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_contention_measures_each_cell_quiet_and_busy(tmp_path):
    out = tmp_path / "contention.json"
    run = subprocess.run([sys.executable, "benchmarks/contention.py", "--threads", "1,2", "--dim", "64",
                          "--eval-rows", "256", "--seconds", "0.2", "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    cells = [(c["stage"], c["load"], c["threads"]) for c in report["cells"]]
    assert cells == [(stage, load, threads) for stage in ("train", "evaluate") for load in ("quiet", "busy")
                     for threads in (1, 2)]
    for cell in report["cells"]:
        assert cell["samples_per_s"] > 0 and cell["steps"] >= 3 and len(cell["load_average_before"].split()) == 3
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["load_average_end"]
