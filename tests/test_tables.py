"""The report tables shared by compare/ and gate/: escaped for markdown, aligned for the terminal, numbers for JSON."""

from __future__ import annotations

import math

from virnucpro_core.tables import json_number, markdown_table, markdown_text, text_table


def test_markdown_text_shows_html_and_never_runs_it():
    assert markdown_text("<script>alert(1)</script>") == "&lt;script>alert(1)&lt;/script>"
    assert markdown_text("a &amp; b") == "a &amp;amp; b"
    assert markdown_text("drop < limit") == "drop < limit"


def test_a_markdown_table_escapes_pipes_line_ends_and_tags_in_every_cell():
    lines = markdown_table((["id", "group"], [["a|b", "<img onerror=x>"], ["two\nlines", "ok"]]))
    assert lines[0].count("|") == 3 and len(lines) == 4
    assert "a\\|b" in lines[2] and "&lt;img" in lines[2] and "<img" not in lines[2]
    assert "\n" not in "".join(lines)


def test_a_text_table_aligns_the_first_column_left_and_the_rest_right():
    lines = text_table((["model", "accuracy"], [["ESM2 3B", "0.95"], ["FastESM2", "0.9"]]))
    assert all(len(line.rstrip()) <= len(lines[0].rstrip()) + 4 for line in lines)
    row = next(line for line in lines if line.startswith("FastESM2"))
    assert row.rstrip().endswith(" 0.9")


def test_json_number_keeps_floats_and_drops_what_json_cannot_carry():
    assert json_number(1) == 1.0 and isinstance(json_number(1), float)
    assert json_number(None) is None and json_number(math.nan) is None
