"""What a reviewer needs of the validation report's HTML, checked with a real HTML parser.

:func:`report_problems` lists every way a page falls short; tests assert the
list is empty, so one failure names all problems at once. :func:`acceptance_json_problems`
does the same for ``acceptance.json`` against its schema (``docs/acceptance.schema.json``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bs4 import BeautifulSoup


def visible_text(soup: BeautifulSoup) -> str:
    copy = BeautifulSoup(str(soup), "html.parser")
    for hidden in copy(["script", "style", "template"]):
        hidden.decompose()
    return copy.get_text(" ")


def hidden_by_styles(soup: BeautifulSoup) -> list:
    """The elements the page's own ``<style>`` rules hide (``display:none``): pytest-html's environment heading and
    "Summary" heading, which our styles hide (pytest-html's template has them; no hook removes them)."""
    hidden = []
    for style in soup.find_all("style"):
        for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", style.get_text()):
            if re.search(r"display\s*:\s*none", body):
                for selector in selectors.split(","):
                    try:
                        hidden += soup.select(selector.strip())
                    except Exception:  # a selector soupsieve does not know (:hover, ::after) hides nothing here
                        continue
    return hidden


def is_shown(element, hidden: list) -> bool:
    return not any(element is h or any(parent is h for parent in element.parents) for h in hidden)


# A hyphen-minus where a number starts: after a space, a bracket or the start, not inside a word, an id
# (20261202T000000Z-abc123), a date (2026-12-02), a range (300-500), an exponent (2e-4) or a flag (--save).
ASCII_MINUS = re.compile(r"(?<![\w.\-/:])-(?=\.?\d)")


def minus_sign_problems(text: str, where: str) -> list[str]:
    """Every negative number in ``text`` written with the ASCII hyphen-minus, not the minus sign (U+2212) the
    reports use for drops, CI bounds and deltas."""
    return [f"{where}: hyphen-minus as a minus sign: ...{text[max(0, m.start() - 40):m.end() + 12]}..."
            for m in ASCII_MINUS.finditer(text)]


def report_problems(page: str, *, smoke: bool) -> list[str]:
    soup = BeautifulSoup(page, "html.parser")
    problems = []

    # One file: every resource inline (links to other pages are fine, loading from them is not).
    for tag in soup.find_all("link"):
        problems.append(f"external stylesheet or link tag: {tag}")
    for tag in soup.find_all(["script", "img", "video", "source", "iframe"]):
        src = tag.get("src")
        if src and not src.startswith("data:"):
            problems.append(f"<{tag.name}> loads {src}")
    for style in soup.find_all("style"):
        for url in re.findall(r"url\(([^)]*)\)", style.get_text()):
            if not url.strip("'\" ").startswith("data:"):
                problems.append(f"stylesheet loads {url}")

    hidden = hidden_by_styles(soup)
    headings = [h.get_text(" ", strip=True) for h in soup.find_all(["h2"]) if is_shown(h, hidden)]
    if headings.count("Environment") != 1:
        problems.append(f"{headings.count('Environment')} Environment sections, expected 1 (headings: {headings})")

    text = visible_text(soup)
    ours = soup.find(class_="vnp")  # our sections; pytest-html's table below holds test ids and captured logs
    problems += minus_sign_problems(visible_text(ours) if ours is not None else "", "report")
    if "`" in text:
        at = text.index("`")
        problems.append(f"literal backtick in the text: ...{text[max(0, at - 40):at + 40]}...")

    for table in soup.find_all("table"):
        rows = table.find_all("tr")
        if not rows or not any(row.find("td") for row in rows):
            continue  # an empty table (pytest-html's environment placeholder) has no columns to head
        header = table.find("thead")
        heads = [th.get_text(strip=True) for th in header.find_all("th")] if header else []
        widest = max(len(row.find_all(["td", "th"])) for row in rows if row.find("td"))
        if len(heads) < widest or not all(heads):
            problems.append(f"table with {widest} columns has headers {heads}: {str(table)[:120]}")

    # The verdict first: after the title, the first section shown and the first table shown are the banner's and
    # ours (pytest-html's line saying when it wrote the page may stand between).
    title = soup.find("h1")
    first = next((e for e in title.find_all_next(["section", "table"]) if is_shown(e, hidden)), None) if title else None
    banner = first if first is not None and first.name == "section" else None
    if banner is None or banner.get("id") != "vnp-verdict":
        problems.append(f"the verdict banner is not the first thing after the title: {str(first)[:160]}")
    elif not banner.find("h2") or not banner.find("h2").get_text().startswith("Verdict: "):
        problems.append(f"the banner has no verdict heading: {str(banner)[:160]}")
    elif smoke and "smoke profile" not in banner.find("h2").get_text():
        problems.append("smoke run without 'smoke profile' in the verdict heading")
    if smoke and (title is None or "SMOKE PROFILE" not in title.get_text()):
        problems.append("smoke run without SMOKE PROFILE in the title")
    if smoke and "SMOKE PROFILE" not in (soup.title.get_text() if soup.title else ""):
        problems.append("smoke run without SMOKE PROFILE in the page's <title>")
    return problems


SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "acceptance.schema.json"


def acceptance_json_problems(report: dict) -> list[str]:
    """Every way ``acceptance.json`` departs from ``docs/acceptance.schema.json``, with where (empty: it conforms)."""
    import jsonschema  # the test extra; only the tests that read acceptance.json need it

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in sorted(validator.iter_errors(report), key=lambda e: list(map(str, e.absolute_path)))]
