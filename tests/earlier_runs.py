"""What an earlier run of the suite left in a reports folder: its files, recorded as the suite's own
(virnucpro_core.outputs), so that a later run may replace them."""

from __future__ import annotations

from pathlib import Path

from virnucpro_core.outputs import ACCEPTANCE, Output, OutputClaim


def earlier_reports(reports: Path, names=("acceptance.html", "acceptance.json", "acceptance.md"),
                    text: str = "an earlier run's {name}\n") -> dict[str, str]:
    """Write ``names`` under ``reports`` as an earlier run of the suite did; returns every visible file's text."""
    with OutputClaim(ACCEPTANCE, [Output(reports, tuple(names))], announce=lambda _line: None):
        for name in names:
            (reports / name).parent.mkdir(parents=True, exist_ok=True)
            (reports / name).write_text(text.format(name=name))
    return {p.name: p.read_text() for p in reports.iterdir() if p.is_file() and not p.name.startswith(".")}
