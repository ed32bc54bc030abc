"""The committed report screenshots (docs/report-*.png) show the numbers the current code computes.

``tools/screenshot_report.py`` writes ``docs/report-top.json`` beside the pictures: the numbers they show.
This test runs the smoke suite as ``make smoke`` does and compares those numbers, not pixels.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts import import_script

ROOT = Path(__file__).resolve().parents[2]
shown_numbers = import_script("tools/screenshot_report.py").shown_numbers

pytestmark = pytest.mark.slow
SIDECAR = ROOT / "docs" / "report-top.json"


def test_the_committed_screenshot_shows_the_current_smoke_runs_numbers(tmp_path, smoke_artifacts):
    committed = json.loads(SIDECAR.read_text(encoding="utf-8"))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "acceptance/", "-q", "-p", "no:cacheprovider", "--allow-incomplete",
         "--artifacts", str(smoke_artifacts), "--html", str(tmp_path / "reports" / "acceptance.html")],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert run.returncode in (0, 11), run.stdout[-3000:] + run.stderr[-2000:]
    current = shown_numbers(tmp_path / "reports" / "acceptance.json")
    assert current["accuracy_drop"] is not None and current["test_samples"], current
    assert committed == current, (f"docs/report-*.png show {committed}, the code now gives {current}: rerun "
                                  "`make smoke && .venv/bin/python tools/screenshot_report.py` and commit docs/")
