"""The acceptance run's markdown and JSON files: ``acceptance.md``, ``acceptance.json`` and ``comparison.md``.

``acceptance.md`` lays out :func:`~virnucpro_core.gate.report_model.build_report`'s
sections, as the HTML page does (:mod:`virnucpro_core.gate.html_report`);
``acceptance.json`` holds the same results as numbers a CI script reads
(``docs/acceptance.schema.json``), each gate its
:meth:`~virnucpro_core.gate.gates.GateResult.to_dict`; ``comparison.md`` is
the accuracy comparison's own report (:mod:`virnucpro_core.compare.report`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from virnucpro_core.compare import report as text_report
from virnucpro_core.files import atomic_write_text
from virnucpro_core.defaults import EMBEDDER_NAMES
from virnucpro_core.gate.acceptance_report import environment_rows, files_table
from virnucpro_core.gate.gates import ACCURACY, SPEED
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
from virnucpro_core.gate.session import AcceptanceSession
from virnucpro_core.gate.speed_report import peak_memory_dict, speed_ratios_list, switch_savings
from virnucpro_core.gate.verdict import EXIT_CODES, PASS, Verdict
from virnucpro_core.paths import ReportPaths
from virnucpro_core.tables import markdown_table, markdown_text


def run_line(report: AcceptanceReport) -> str:
    """``Run <id>, started <time> UTC; verdict <status>, exit status <code>.``"""
    v = report.verdict
    return f"Run {v.run_id}, started {v.started} UTC; verdict {v.status}, exit status {v.exit_code}."


def render_markdown(report: AcceptanceReport) -> str:
    """``acceptance.md``: the report's sections as markdown, every text escaped (figures are the HTML page's)."""
    lines = [f"# {report.heading}", "", run_line(report), ""]
    if report.notice:
        lines += [f"**{markdown_text(report.notice)}**", ""]
    lines += ["## Verdict", ""] + [f"- {markdown_text(r)}" for r in report.verdict.reasons] + [""]
    if report.next_steps:
        lines += ["## Next steps", ""] + [f"{i}. {markdown_text(s)}" for i, s in enumerate(report.next_steps, 1)]
        lines += [""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += _markdown_block(block)
    return "\n".join(lines).rstrip() + "\n"


def _markdown_block(block) -> list[str]:
    if isinstance(block, Paragraph):
        text = markdown_text(block.text)
        return [f"**{text}**" if block.strong else text, ""]
    if isinstance(block, Callout):
        return [f"> **{block.label}** {markdown_text(block.text)}", ""]
    if isinstance(block, TableBlock):
        return markdown_table(block.table) + [""]
    if isinstance(block, Heading):
        return [f"### {block.title}", ""]
    if isinstance(block, Link):
        return [f"{block.label}: [{block.target}]({block.target})", ""]
    if isinstance(block, Bullets):
        return [f"- {markdown_text(item)}" for item in block.items] + [""]
    if isinstance(block, Figure):
        return []  # drawn on the HTML page only
    raise TypeError(f"no markdown for {block!r}")


def write_side_reports(ctx: AcceptanceSession, verdict: Verdict, paths: ReportPaths, *, allow_incomplete: bool = False,
                       finished: str = "", report: AcceptanceReport | None = None) -> list[Path]:
    """Write ``acceptance.md``, ``acceptance.json`` and (when accuracy was compared) ``comparison.md``.

    ``report``: the session's :func:`~virnucpro_core.gate.report_model.build_report` (built here if not given).
    """

    results = ctx.results
    comparison = results.comparison if results is not None else None
    report = report or build_report(ctx, verdict, exit_code=verdict.exit_code(allow_incomplete))
    written = []
    if comparison is not None:
        detail = paths.comparison_markdown
        split = results.split
        text_report.write_markdown(comparison, detail, split_summary=split.summary.to_dict() if split else None,
                                   provenance=model_provenance(ctx), run=run_line(report), run_verdict=verdict.title)
        written.append(detail)
    atomic_write_text(paths.markdown, render_markdown(report))

    banner = report.notice
    evidence = results.evidence if results is not None else None
    savings = switch_savings(ctx)
    payload = {
        "run": {"id": ctx.run_id, "started": ctx.started, "finished": finished},
        "verdict": verdict.to_dict(allow_incomplete),
        "exit_codes": EXIT_CODES,
        "profile": ctx.profile,
        "smoke": ctx.smoke,
        "notice": banner,
        "settings": ctx.settings.to_dict() if ctx.settings is not None else None,
        "environment": dict(environment_rows(ctx)),
        "files": [dict(zip(["file", "path", "sha256"], row, strict=True))
                  for row in (files_table(ctx) or (None, []))[1]],
        "test_set": _test_set_dict(ctx),
        "training": _training_dict(ctx),
        "generalisation": evidence.to_dict() if evidence is not None else None,
        "comparison": comparison.to_dict() if comparison is not None else None,
        "parity": ctx.parity.to_dict() if ctx.parity is not None else None,
        "timings": {f"{p}/{e}": t.to_dict() for (p, e), t in ctx.timings.items()},
        "gates": gates_dict(ctx, verdict),
        "speed_ratios": speed_ratios_list(ctx),
        "peak_gpu_memory": peak_memory_dict(ctx),
        "switch_savings": savings.to_dict() if savings is not None else None,
        "stages": [{"stage": s.stage, "reused": s.reused, "seconds": s.seconds}
                   for s in getattr(ctx.run, "stages", [])],
        "outcomes": [{"name": o.name, "outcome": o.outcome, "message": o.message} for o in ctx.outcomes],
    }
    atomic_write_text(paths.json, json.dumps(payload, indent=2, default=str) + "\n")
    return [paths.markdown, paths.json, *written]


def gates_dict(ctx: AcceptanceSession, verdict: Verdict | None = None) -> dict[str, dict[str, Any]]:
    """Each gate's :meth:`~virnucpro_core.gate.gates.GateResult.to_dict`, keyed by gate, the limit the run's setting
    where the gate records none; a passed gate's reason says PASS only when the run's ``verdict`` is PASS."""
    settings = ctx.settings
    limits = {ACCURACY: getattr(settings, "max_accuracy_drop", None), SPEED: getattr(settings, "max_time_ratio", None)}
    passed = verdict is not None and verdict.status == PASS
    return {gate.gate: gate.to_dict(limit=limits[gate.gate], run_passed=passed) for gate in ctx.gates()}


def _test_set_dict(ctx: AcceptanceSession) -> dict | None:
    split = ctx.results.split if ctx.results is not None else None
    return split.summary.to_dict() if split is not None else None


def _training_dict(ctx: AcceptanceSession) -> dict:
    out = {}
    for embedder, name in EMBEDDER_NAMES.items():
        trained = ctx.results.trained.get(embedder) if ctx.results is not None else None
        if trained is not None:
            history = trained.history
            out[name] = {"input_dim": trained.final.meta.input_dim, "epochs": len(history.epochs),
                         "best_epoch": history.best_epoch, "best_val_loss": history.best_val_loss,
                         "stop_reason": history.stop_reason, "train_loss": history.train_loss,
                         "val_loss": history.val_loss}
    return out


def model_provenance(ctx: AcceptanceSession) -> dict:
    """Each loaded model's provenance, keyed ``name (dtype)``."""
    if ctx.run is None:
        return {}
    return {f"{model.spec.name} ({model.provenance.get('dtype')})": model.provenance
            for model in ctx.run.loaded_models()}
