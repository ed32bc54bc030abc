"""Tables as every report shows them: ``(header, rows)`` of display strings, laid out as markdown or terminal text.

The comparison's reports (:mod:`virnucpro_core.compare.report`) and the
acceptance reports (:mod:`virnucpro_core.gate.report_model` and its renderers)
build their tables from result objects; the layouts here know nothing of
those objects, so both packages import this module and neither the other's.
:func:`markdown_text` escapes what a markdown viewer would run as HTML, as
the HTML report escapes it; :func:`json_number` is a number as a JSON report
holds it.
"""

from __future__ import annotations

import re
from typing import Any

Table = tuple[list[str], list[list[str]]]

# Where markdown passes HTML through (CommonMark's raw HTML and entities).
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#?\w+;)")


def markdown_text(text: Any) -> str:
    """``text`` safe in markdown: every ``<`` that could open an HTML tag, comment or declaration, and every ``&``
    that could start an entity, as an HTML entity, as the HTML report escapes them, so that a file name, id or
    group name holding ``<script>`` or ``<img onerror=...>`` is shown, never run, by a markdown viewer. A ``<``
    no tag can follow (``drop < limit``) stays as it is, readable in the file itself."""
    text = _ENTITY.sub("&amp;", str(text))
    return _TAG_START.sub("&lt;", text)


def markdown_table(table: Table) -> list[str]:
    """A markdown table whose every cell is escaped (:func:`markdown_text`; ``|`` and line ends too)."""
    header, rows = table

    def cell(text: Any) -> str:
        return markdown_text(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def text_table(table: Table) -> list[str]:
    """Fixed-width columns for the terminal: first column left-aligned, the rest right-aligned."""
    header, rows = table
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(row)]
        out.append("  ".join(cells).rstrip())
    return out


def json_number(value: Any) -> float | None:
    """A float for JSON, or None (absent, or NaN, which JSON cannot carry)."""
    return None if value is None or value != value else float(value)
