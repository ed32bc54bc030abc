"""The acceptance report as one self-contained HTML file a reviewer can read without a guide.

pytest-html writes the file (with its table of every test) from its own
template; our sections — verdict, accuracy, speed, test set, training,
environment, stages — go in through its public hooks (the title through
``pytest_html_report_title``, the sections through
``pytest_html_results_summary``: :func:`summary_prefix`), and our styles hide
its own environment heading, so the page has one of each. Figures are inline PNGs, styles inline; every colour
pair meets WCAG's 4.5:1 contrast for text (:data:`PALETTE`, checked by the
tests). Nothing here computes a stage: it lays out
:mod:`virnucpro_core.gate.acceptance_report`'s tables.
"""

from __future__ import annotations

import base64
import html
import re

from virnucpro_core.gate import acceptance_report as data
from virnucpro_core.compare.report import length_breakdown_table, mcnemar_table, metrics_table
from virnucpro_core.tables import Table
from virnucpro_core.gate.session import AcceptanceSession
from virnucpro_core.gate.verdict import Verdict
from virnucpro_core.compare import figures as fig
from virnucpro_core.evaluate.calibration import calibration_table
from virnucpro_core.layouts.features import open_rows

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
    if split is not None:
        out["test-set lengths"] = fig.length_histogram_png(
            open_rows(split.paths.train).lengths.tolist(), open_rows(split.paths.test).lengths.tolist())
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
    """Our part of the page, in reading order, verdict first."""
    pictures = figures(ctx)
    status_line = f"Run {ctx.run_id}, started {ctx.started} UTC" + (
        f"; exit status {exit_code}" if exit_code is not None else "")
    reasons = "".join(f"<li>{_prose(r)}</li>" for r in verdict.reasons)
    parts = [
        f'<section id="vnp-verdict" class="vnp-banner vnp-{verdict.status}"><h2>Verdict: {html.escape(verdict.title)}'
        f"</h2><p>{html.escape(status_line)}</p><ul>{reasons}</ul></section>"
    ]
    notice = data.notice(ctx)
    if notice:
        parts.append(f'<p class="vnp-notice">{html.escape(notice)}</p>')
    if verdict.next_steps:
        steps = "".join(f"<li>{_prose(s)}</li>" for s in verdict.next_steps)
        parts.append(_section("next-steps", "Next steps", f"<ol>{steps}</ol>"))

    results = ctx.results
    comparison = results.comparison if results is not None else None
    if comparison is not None:
        body = [f"<p><b>{_prose(data.accuracy_headline(ctx, verdict))}</b></p>", f"<p>{_prose(data.DROP_DEFINITION)}</p>",
                _table(data.accuracy_gate_table(comparison, verdict)), _table(metrics_table(comparison)),
                *_paired_errors(comparison), "<h3>Accuracy by protein length</h3>",
                _table(length_breakdown_table(comparison))]
        body += [_img(t, pictures[t]) for t in ("confusion matrices", "ROC and PR curves") if t in pictures]
        parts.append(_section("accuracy", "Accuracy", *body))

    if ctx.timings:
        savings = data.switch_savings(ctx)
        parts.append(_section("speed", "Speed", f"<p>{_prose(data.speed_protocol(ctx))}</p>",
                              _table(data.speed_ratio_table(ctx, verdict)), _table(data.speed_timing_table(ctx)),
                              f"<p>{_prose(data.peak_memory_text(ctx))}</p>",
                              *([_img("every timed round of the speed gate", pictures["speed rounds"])]
                                if "speed rounds" in pictures else []),
                              *([f'<h3 id="vnp-savings">What the switch saves</h3>'
                                 f"<p>{_prose(data.savings_text(savings))}</p>", _table(data.savings_table(savings)),
                                 '<h3 id="vnp-projection">A whole run, projected</h3>'
                                 f"<p>{_prose(data.projection_text(savings))}</p>",
                                 _table(data.projection_table(savings))]
                                if savings is not None else [])))

    split = data.split_report(ctx)
    if split is not None:
        body = [f"<p>{_prose(split.description)}</p>"]
        if split.leakage_warning:
            body.append(f'<div class="vnp-warning" role="note"><b>Warning.</b> {_prose(split.leakage_warning)}</div>')
        body += [_table(split.classes), _table(split.lengths)]
        if split.duplicates is not None:
            body.append(_table(split.duplicates))
        if "test-set lengths" in pictures:
            body.append(_img("protein lengths of the training and test sets", pictures["test-set lengths"]))
        parts.append(_section("test-set", "Test set", *body))

    evidence = results.evidence if results is not None else None
    if evidence is not None:
        parts += _evidence_sections(evidence, pictures)

    training = data.training_table(ctx)
    if training is not None:
        body = [f"<p>{_prose(data.training_text(ctx))}</p>", _table(training)]
        if "loss curves" in pictures:
            body.append(_img("training and validation loss", pictures["loss curves"]))
        parts.append(_section("training", "Training", *body))

    rows = [list(r) for r in data.environment_rows(ctx)]
    parts.append(_section("environment", "Environment", _table((["item", "value"], rows))))
    files = data.files_table(ctx, shown=8)
    if files is not None:
        parts.append(_section("files", "Files behind the verdict", f"<p>{_prose(data.FILES_TEXT)}</p>", _table(files)))
    stages = data.stage_table(ctx)
    if stages is not None:
        parts.append(_section("stages", "Stages", f"<p>Artifacts: {html.escape(str(ctx.run.paths.root))} (rerun "
                                                   "with --rebuild to recompute)</p>", _table(stages)))
    return f'<div class="vnp">{"".join(parts)}</div>'


def _paired_errors(comparison) -> list[str]:
    """McNemar's 2×2 table of the comparison (comparison.md's), its corner naming what the rows and columns are."""
    header, rows = mcnemar_table(comparison)
    if not rows:
        return ["<h3>McNemar's test (paired errors)</h3>", f"<p>Not run: {_prose(comparison.paired_note)}.</p>"]
    corner = f"{comparison.baseline_name} (rows) / {comparison.fast_name} (columns)"
    return ["<h3>McNemar's test (paired errors)</h3>", _table(([corner, *header[1:]], rows)),
            f"<p>{_prose(comparison.mcnemar.method)}.</p>"]


def _evidence_sections(evidence, pictures: dict[str, bytes]) -> list[str]:
    """Generalisation, per-group, calibration and levels: evidence beside the gate, never gated."""

    body = [f"<p>{_prose(data.GENERALISATION_TEXT)}</p>", _table(data.generalisation_table(evidence))]
    body += [f'<div class="vnp-warning" role="note"><b>Warning (evidence, not gated).</b> {_prose(r.warning)}</div>'
             for r in evidence.splits if r.warning]
    body += [f"<p>{_prose(note)}</p>" for note in evidence.notes]
    parts = [_section("generalisation", "Generalisation (evidence, not gated)", *body)]
    if evidence.groups:
        parts.append(_section("groups", "Per-group accuracy", f"<p>Groups from {_prose(evidence.groups_from)}. "
                              f"{_prose(data.GROUPS_TEXT)}</p>", _table(data.group_table(evidence))))
    if evidence.calibration:
        body = [f"<p>{_prose(data.calibration_text(evidence))}</p>", _table(calibration_table(evidence.calibration))]
        if "reliability diagram" in pictures:
            body.append(_img("reliability diagram (equal-mass bins)", pictures["reliability diagram"]))
        parts.append(_section("calibration", "Calibration and prevalence", *body))
    if evidence.levels:
        parts.append(_section("levels", "Verdict levels", _table(data.level_table(evidence))))
    return parts


# ---------------------------------------------------------------------------- pytest-html's page


def summary_prefix(sections: str) -> list[str]:
    """What goes into pytest-html's page through its ``pytest_html_results_summary`` hook, before its count of the
    tests: our styles (:data:`PALETTE`; they also hide pytest-html's own environment heading and table, which
    pytest-metadata leaves empty, and its "Summary" heading), our sections, and the heading of pytest-html's
    table of every test, "Tests"."""
    return [_css(), sections, '<h2 id="vnp-tests">Tests</h2>']


def page_title(ctx: AcceptanceSession, verdict: Verdict) -> str:
    if ctx.smoke:
        return f"SMOKE PROFILE — VirNucPro FastESM2_650 acceptance — {verdict.status} (does not validate FastESM2_650)"
    return f"VirNucPro FastESM2_650 acceptance — {verdict.status} — {ctx.profile} profile"


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
