"""Render the validation report in headless Chromium and save PNGs, to look at it as a reviewer would.

Usage::

    .venv/bin/python tools/screenshot_report.py [REPORT.html] [OUT_DIR] [--width 1280]

Writes ``OUT_DIR/report-top.png`` (the first screen: title, verdict, next
steps) and ``OUT_DIR/report-full.png`` (the whole page, trailing blank space
trimmed). Needs Debian's ``chromium`` (``apt-get install chromium``).
Defaults: ``reports/acceptance.html`` into ``docs/``.
"""

from __future__ import annotations

import argparse
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


if __name__ == "__main__":
    main()
