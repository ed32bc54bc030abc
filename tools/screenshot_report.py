"""Render the validation report in headless Chromium and save PNGs, to look at it as a reviewer would.

Usage::

    .venv/bin/python tools/screenshot_report.py [REPORT.html] [OUT_DIR] [--width 1280]

Writes ``OUT_DIR/report-top.png`` (the first screen: title, verdict, next
steps), ``OUT_DIR/report-full.png`` (the whole page, trailing blank space
trimmed) and ``OUT_DIR/report-top.json``: the numbers the screenshots show, read
from the ``acceptance.json`` beside the report, so ``tests/tools/test_screenshot_report.py``
can tell when the committed pictures no longer show what the code computes.
Needs Debian's ``chromium`` (``apt-get install chromium``).
Defaults: ``reports/acceptance.html`` into ``docs/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FULL_HEIGHT = 16000  # taller than any report so far; the blank rest is trimmed


def chromium() -> str:
    for name in BROWSERS:
        if shutil.which(name):
            return shutil.which(name)
    sys.exit(f"no headless browser found (looked for {', '.join(BROWSERS)}): `apt-get install chromium`")


def screenshot(report: Path, out: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
             f"--window-size={width},{height}", f"--screenshot={out}", report.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip


def trim_bottom(path: Path, margin: int = 24) -> None:
    """Cut the blank rows below the last content (the page is shorter than the window)."""
    image = Image.open(path).convert("RGB")
    box = ImageChops.difference(image, Image.new("RGB", image.size, (255, 255, 255))).getbbox()
    if box:
        image.crop((0, 0, image.width, min(image.height, box[3] + margin))).save(path)


def shrink(path: Path) -> None:
    """A 256-colour palette: a third of the bytes, no visible change for text, tables and line plots."""
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)


def shown_numbers(acceptance_json: Path) -> dict:
    """The numbers a screenshot shows, as the report rounds them (clock readings left out: they vary per run)."""
    report = json.loads(acceptance_json.read_text(encoding="utf-8"))
    comparison = report.get("comparison") or {}
    mcnemar, ci = comparison.get("mcnemar") or {}, comparison.get("drop_ci") or {}

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(float(value), 4)

    return {
        "profile": report.get("profile"),
        "verdict": report["verdict"]["status"],
        "test_samples": (comparison.get("fast") or {}).get("n"),
        "accuracy": {comparison[f"{side}_name"]: rounded((comparison.get(side) or {}).get("accuracy"))
                     for side in ("baseline", "fast") if f"{side}_name" in comparison},
        "accuracy_drop": rounded(comparison.get("accuracy_drop")),
        "drop_ci": [rounded(ci.get("low")), rounded(ci.get("high"))],
        "mcnemar_p": rounded(mcnemar.get("p_value")),
        "mcnemar_table": {k: mcnemar.get(k) for k in ("both_correct", "fast_only_correct", "baseline_only_correct",
                                                       "both_wrong")},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="?", default=ROOT / "reports" / "acceptance.html", type=Path)
    parser.add_argument("out_dir", nargs="?", default=ROOT / "docs", type=Path)
    parser.add_argument("--width", type=int, default=1280, help="window width in CSS pixels (default: 1280)")
    parser.add_argument("--prefix", default="report", help="file name prefix (default: report)")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        sys.exit(f"no report at {args.report}: run `make smoke` first, or pass the report's path")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    top, full = args.out_dir / f"{args.prefix}-top.png", args.out_dir / f"{args.prefix}-full.png"
    screenshot(args.report, top, args.width, 1000)
    screenshot(args.report, full, args.width, FULL_HEIGHT)
    trim_bottom(full)
    for path in (top, full):
        shrink(path)
        width, height = Image.open(path).size
        print(f"wrote {path} ({width}×{height} px)")
    numbers = args.out_dir / f"{args.prefix}-top.json"
    numbers.write_text(json.dumps(shown_numbers(args.report.parent / "acceptance.json"), indent=1,
                                  ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {numbers} (the numbers the screenshots show)")


if __name__ == "__main__":
    main()
