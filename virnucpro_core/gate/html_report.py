"""The acceptance report as one self-contained HTML file a reviewer can read without a guide.

:func:`render_html` lays out :func:`~virnucpro_core.gate.report_model.build_report`'s
sections — verdict, accuracy, speed, test set, evidence, training,
environment, files, stages — as ``acceptance.md`` does. pytest-html writes
the file (with its table of every test) from its own template; our part goes
in through its public hooks (the title through ``pytest_html_report_title``,
the styles and sections through ``pytest_html_results_summary``:
:func:`summary_prefix`), and our styles hide its own environment heading, so
the page has one of each. Figures are inline PNGs drawn from the run's
results (:func:`figures`), styles inline; every colour pair meets WCAG's
4.5:1 contrast for text (:data:`PALETTE`, checked by the tests). Nothing here
computes a stage."""

from __future__ import annotations

import base64
import html
import re

from virnucpro_core.gate import acceptance_report as data
from virnucpro_core.gate.report_model import (
    AcceptanceReport,
    Bullets,
    Callout,
    Figure,
    Heading,
    Link,
    Paragraph,
    TableBlock,
    build_report,
)
from virnucpro_core.tables import Table
from virnucpro_core.gate.session import AcceptanceSession
from virnucpro_core.gate.verdict import Verdict
from virnucpro_core.compare import figures as fig

# (text, background) colour pairs we set; tests check each reaches a 4.5:1 contrast ratio.
PALETTE = {
    "body": ("#1f1f1f", "#ffffff"),
    "muted": ("#4d4d4d", "#ffffff"),
    "link": ("#0b4f8a", "#ffffff"),
    "table header": ("#1f1f1f", "#eeeeee"),
    "PASS": ("#ffffff", "#1e6b24"),
    "FAIL": ("#ffffff", "#b3261e"),
    "INCOMPLETE": ("#ffffff", "#8a4b00"),
    "ERROR": ("#ffffff", "#5c2d91"),
    "notice": ("#1f1f1f", "#fff3e0"),
    "warning": ("#1f1f1f", "#fff8d6"),
    "passed": ("#1e6b24", "#ffffff"),
    "failed": ("#b3261e", "#ffffff"),
    "skipped": ("#8a4b00", "#ffffff"),
}


def _css() -> str:
    c = PALETTE
    return f"""<style>
body, #results-table, #environment td {{color:{c['body'][0]};background:{c['body'][1]}}}
body {{font-size:14px;max-width:1200px;margin:0 auto;padding:0 16px}}
p, li, td, th {{line-height:1.45}}
a, a:visited {{color:{c['link'][0]}}}
.vnp-muted, .vnp figcaption, .filter, .run-count, #results-table .col-duration {{color:{c['muted'][0]}}}
span.passed, .passed .col-result {{color:{c['passed'][0]}}}
span.failed, span.error, span.xpassed, .failed .col-result, .error .col-result, .xpassed .col-result {{color:{c['failed'][0]}}}
span.skipped, span.xfailed, span.rerun, .skipped .col-result, .xfailed .col-result, .rerun .col-result {{color:{c['skipped'][0]}}}
.vnp-banner {{padding:14px 18px;border-radius:6px;margin:12px 0}}
.vnp .vnp-banner h2 {{margin:0 0 6px;font-size:1.5em;border:none}}
{''.join(f'#vnp-verdict.vnp-{s} {{background:{c[s][1]}}} #vnp-verdict.vnp-{s} * {{color:{c[s][0]}}}'
         for s in ('PASS', 'FAIL', 'INCOMPLETE', 'ERROR'))}
.vnp-notice {{padding:10px 14px;border-left:6px solid #8a4b00;color:{c['notice'][0]};background:{c['notice'][1]};font-weight:bold}}
.vnp-warning {{padding:10px 14px;border-left:6px solid #8a6d00;color:{c['warning'][0]};background:{c['warning'][1]}}}
table.vnp {{border-collapse:collapse;margin:8px 0 16px}}
table.vnp td, table.vnp th {{border:1px solid #b0b0b0;padding:4px 8px;text-align:left}}
table.vnp th {{color:{c['table header'][0]};background:{c['table header'][1]}}}
.vnp section h2, .vnp h2 {{border-bottom:1px solid #b0b0b0;color:{c['body'][0]}}}
code {{background:#f2f2f2;color:{c['body'][0]};padding:0 3px}}
.filters button, .collapse button, .filters button:hover, .collapse button:hover {{color:{c['link'][0]}}}
.collapsible td:not(.col-links):hover::after {{color:{c['muted'][0]}}}
.summary__reload__button, .summary__reload__button:hover {{color:{c['PASS'][0]};background:{c['PASS'][1]}}}
#environment-header, #environment, .summary__data > h2 {{display:none}}
</style>"""


def _prose(text: str) -> str:
    """Escaped text with `inline code` as <code> (no literal backticks reach the page)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _table(table: Table) -> str:
    header, rows = table
    head = "".join(f'<th scope="col">{html.escape(str(h))}</th>' for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_prose(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="vnp"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _img(title: str, png: bytes) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{encoded}" style="max-width:100%">'
            f"<figcaption>{html.escape(title)}</figcaption></figure>")


def _section(section_id: str, title: str, *parts: str) -> str:
    return f'<section id="vnp-{section_id}"><h2>{html.escape(title)}</h2>{"".join(parts)}</section>'


def figures(ctx: AcceptanceSession) -> dict[str, bytes]:
    """PNG figures of whatever stages finished."""

    names = data.EMBEDDER_NAMES
    out: dict[str, bytes] = {}
    if ctx.timings:
        rounds: dict[str, dict[str, list[float]]] = {}
        for (pairing, embedder), timing in ctx.timings.items():
            rounds.setdefault(pairing, {})[names.get(embedder, embedder)] = list(timing.runs_s)
        out["speed rounds"] = fig.speed_rounds_png(rounds)
    results = ctx.results
    if results is None:
        return out
    split = results.split
    if split is not None and split.summary.length_histogram is not None:
        out["test-set lengths"] = fig.length_histogram_png(split.summary.length_histogram)
    histories = {names[e]: results.trained[e].history for e in names if e in results.trained}
    if histories:
        out["loss curves"] = fig.loss_curves_png(
            {name: (h.train_loss, h.val_loss, h.best_epoch) for name, h in histories.items()})
    evals = {e: results.evaluations.get(e) for e in names}
    preds = {e: results.predictions.get(e) for e in names}
    if all(evals.values()):
        out["confusion matrices"] = fig.confusion_matrices_png(evals["fast"], evals["baseline"],
                                                               [names["fast"], names["baseline"]])
    evidence = results.evidence
    if evidence is not None and evidence.calibration:
        out["reliability diagram"] = fig.reliability_png(evidence.calibration)
    if all(preds.values()):
        out["ROC and PR curves"] = fig.roc_pr_curves_png(preds["fast"], preds["baseline"],
                                                         [names["fast"], names["baseline"]])
    return out


def render_sections(ctx: AcceptanceSession, verdict: Verdict, *, exit_code: int | None = None) -> str:
    """Our part of the page: :func:`~virnucpro_core.gate.report_model.build_report`'s sections, verdict first."""
    return render_html(build_report(ctx, verdict, exit_code=exit_code), figures(ctx))


def render_html(report: AcceptanceReport, pictures: dict[str, bytes]) -> str:
    """The report's sections as HTML, each text escaped; a figure the run has no picture for is left out."""
    v = report.verdict
    status_line = f"Run {v.run_id}, started {v.started} UTC" + (
        f"; exit status {v.exit_code}" if v.exit_code is not None else "")
    reasons = "".join(f"<li>{_prose(r)}</li>" for r in v.reasons)
    parts = [
        f'<section id="vnp-verdict" class="vnp-banner vnp-{v.status}"><h2>Verdict: {html.escape(v.title)}'
        f"</h2><p>{html.escape(status_line)}</p><ul>{reasons}</ul></section>"
    ]
    if report.notice:
        parts.append(f'<p class="vnp-notice">{html.escape(report.notice)}</p>')
    if report.next_steps:
        steps = "".join(f"<li>{_prose(s)}</li>" for s in report.next_steps)
        parts.append(_section("next-steps", "Next steps", f"<ol>{steps}</ol>"))
    for section in report.sections:
        parts.append(_section(section.anchor, section.title, *(_html_block(b, pictures) for b in section.blocks)))
    return f'<div class="vnp">{"".join(parts)}</div>'


def _html_block(block, pictures: dict[str, bytes]) -> str:
    if isinstance(block, Paragraph):
        return f"<p><b>{_prose(block.text)}</b></p>" if block.strong else f"<p>{_prose(block.text)}</p>"
    if isinstance(block, Callout):
        return f'<div class="vnp-warning" role="note"><b>{html.escape(block.label)}</b> {_prose(block.text)}</div>'
    if isinstance(block, TableBlock):
        return _table(block.table)
    if isinstance(block, Heading):
        anchor = f' id="vnp-{block.anchor}"' if block.anchor else ""
        return f"<h3{anchor}>{html.escape(block.title)}</h3>"
    if isinstance(block, Link):
        target = html.escape(block.target)
        return f'<p>{html.escape(block.label)}: <a href="{target}">{target}</a></p>'
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_prose(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Figure):
        return _img(block.caption, pictures[block.key]) if block.key in pictures else ""
    raise TypeError(f"no HTML for {block!r}")


# ---------------------------------------------------------------------------- pytest-html's page


def summary_prefix(sections: str) -> list[str]:
    """What goes into pytest-html's page through its ``pytest_html_results_summary`` hook, before its count of the
    tests: our styles (:data:`PALETTE`; they also hide pytest-html's own environment heading and table, which
    pytest-metadata leaves empty, and its "Summary" heading), our sections, and the heading of pytest-html's
    table of every test, "Tests"."""
    return [_css(), sections, '<h2 id="vnp-tests">Tests</h2>']


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
