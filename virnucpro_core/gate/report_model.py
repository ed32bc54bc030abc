"""The acceptance report as typed data, built once: verdict, notice, sections of paragraphs, tables and figures.

:func:`build_report` reads a finished
:class:`~virnucpro_core.gate.session.AcceptanceSession` (through the tables of
:mod:`virnucpro_core.gate.acceptance_report` and
:mod:`virnucpro_core.gate.speed_report`) into an :class:`AcceptanceReport`;
the markdown file (:mod:`virnucpro_core.gate.report_files`) and the HTML page
(:mod:`virnucpro_core.gate.html_report`) each lay out the same sections, so the
two never disagree on what a section holds or in which order. Nothing here
formats for one medium: text is plain (`inline code` in backticks), each
renderer escapes it; a figure is named here and drawn by the HTML renderer
from the run's results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from virnucpro_core.compare.report import length_breakdown_table, mcnemar_table, metrics_table
from virnucpro_core.evaluate.calibration import calibration_table
from virnucpro_core.gate import acceptance_report as data
from virnucpro_core.gate import speed_report as speed
from virnucpro_core.gate.session import AcceptanceSession
from virnucpro_core.gate.verdict import Verdict
from virnucpro_core.paths import ReportPaths
from virnucpro_core.tables import Table

DETAILS_FILE = ReportPaths(Path(".")).comparison_markdown.name  # the accuracy comparison's report, beside ours


@dataclass(frozen=True)
class Paragraph:
    text: str
    strong: bool = False  # the section's headline


@dataclass(frozen=True)
class Callout:
    """A paragraph a reader must not miss (leakage, a split's caveat), opened by ``label``."""

    text: str
    label: str = "Warning."


@dataclass(frozen=True)
class TableBlock:
    table: Table


@dataclass(frozen=True)
class Figure:
    """A picture of the run's results: ``key`` names it among :func:`~virnucpro_core.gate.html_report.figures`."""

    key: str
    caption: str


@dataclass(frozen=True)
class Heading:
    """A subsection's title inside a section."""

    title: str
    anchor: str = ""


@dataclass(frozen=True)
class Link:
    """``label: target``, the target a file beside the report."""

    label: str
    target: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


Block = Union[Paragraph, Callout, TableBlock, Figure, Heading, Link, Bullets]


@dataclass(frozen=True)
class Section:
    anchor: str  # the HTML section's id (vnp-<anchor>)
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class VerdictSummary:
    status: str
    title: str
    reasons: tuple[str, ...]
    run_id: str
    started: str
    exit_code: int | None


@dataclass(frozen=True)
class AcceptanceReport:
    """The whole report: the page title, the verdict, the notice under it, the next steps, then the sections."""

    title: str
    heading: str
    verdict: VerdictSummary
    notice: str | None
    next_steps: tuple[str, ...]
    sections: tuple[Section, ...] = field(default_factory=tuple)


def build_report(ctx: AcceptanceSession, verdict: Verdict, *, exit_code: int | None = None) -> AcceptanceReport:
    """The report's sections, in reading order, from the finished session."""
    summary = VerdictSummary(verdict.status, verdict.title, tuple(verdict.reasons), ctx.run_id, ctx.started,
                             exit_code)
    sections = [*_accuracy(ctx, verdict), *_speed(ctx, verdict), *_test_set(ctx), *_evidence(ctx), *_training(ctx)]
    sections.append(Section("environment", "Environment",
                            (TableBlock((["item", "value"], [list(r) for r in data.environment_rows(ctx)])),)))
    files = data.files_table(ctx, shown=8)
    if files is not None:
        sections.append(Section("files", "Files behind the verdict", (Paragraph(data.FILES_TEXT), TableBlock(files))))
    stages = data.stage_table(ctx)
    if stages is not None:
        sections.append(Section("stages", "Stages", (
            Paragraph(f"Artifacts: {ctx.run.paths.root} (rerun with --rebuild to recompute)"), TableBlock(stages))))
    return AcceptanceReport(data.page_title(ctx, verdict), f"VirNucPro FastESM2_650 acceptance — {verdict.title}",
                            summary, data.notice(ctx), tuple(verdict.next_steps), tuple(sections))


def _accuracy(ctx: AcceptanceSession, verdict: Verdict) -> list[Section]:
    comparison = ctx.results.comparison if ctx.results is not None else None
    if comparison is None:
        return []
    blocks: list[Block] = [Paragraph(data.accuracy_headline(ctx, verdict), strong=True),
                           Paragraph(data.DROP_DEFINITION), TableBlock(data.accuracy_gate_table(comparison, verdict)),
                           TableBlock(metrics_table(comparison)), Link("Details", DETAILS_FILE),
                           Heading("McNemar's test (paired errors)")]
    header, rows = mcnemar_table(comparison)
    if rows:
        corner = f"{comparison.baseline_name} (rows) / {comparison.fast_name} (columns)"
        blocks += [TableBlock(([corner, *header[1:]], rows)), Paragraph(f"{comparison.mcnemar.method}.")]
    else:
        blocks.append(Paragraph(f"Not run: {comparison.paired_note}."))
    blocks += [Heading("Accuracy by protein length"), TableBlock(length_breakdown_table(comparison)),
               Figure("confusion matrices", "confusion matrices"), Figure("ROC and PR curves", "ROC and PR curves")]
    return [Section("accuracy", "Accuracy", tuple(blocks))]


def _speed(ctx: AcceptanceSession, verdict: Verdict) -> list[Section]:
    if not ctx.timings:
        return []
    blocks: list[Block] = [Paragraph(speed.speed_protocol(ctx)), TableBlock(speed.speed_ratio_table(ctx, verdict)),
                           TableBlock(speed.speed_timing_table(ctx))]
    memory = speed.peak_memory_text(ctx)
    if memory:
        blocks.append(Paragraph(memory))
    blocks.append(Figure("speed rounds", "every timed round of the speed gate"))
    savings = speed.switch_savings(ctx)
    if savings is not None:
        blocks += [Heading("What the switch saves", "savings"), Paragraph(speed.savings_text(savings)),
                   TableBlock(speed.savings_table(savings)), Heading("A whole run, projected", "projection"),
                   Paragraph(speed.projection_text(savings)), TableBlock(speed.projection_table(savings))]
    return [Section("speed", "Speed", tuple(blocks))]


def _test_set(ctx: AcceptanceSession) -> list[Section]:
    split = data.split_report(ctx)
    if split is None:
        return []
    blocks: list[Block] = [Paragraph(split.description)]
    if split.leakage_warning:
        blocks.append(Callout(split.leakage_warning))
    blocks += [TableBlock(split.classes), TableBlock(split.lengths)]
    if split.duplicates is not None:
        blocks.append(TableBlock(split.duplicates))
    blocks.append(Figure("test-set lengths", "protein lengths of the training and test sets"))
    return [Section("test-set", "Test set", tuple(blocks))]


def _evidence(ctx: AcceptanceSession) -> list[Section]:
    """Generalisation, per-group, calibration and levels: evidence beside the gate, never gated."""
    evidence = ctx.results.evidence if ctx.results is not None else None
    if evidence is None:
        return []
    blocks: list[Block] = [Paragraph(data.GENERALISATION_TEXT), TableBlock(data.generalisation_table(evidence))]
    blocks += [Callout(r.warning, "Callout (evidence, not gated).") for r in evidence.splits if r.warning]
    if evidence.notes:
        blocks.append(Bullets(tuple(evidence.notes)))
    sections = [Section("generalisation", "Generalisation (evidence, not gated)", tuple(blocks))]
    if evidence.groups:
        sections.append(Section("groups", "Per-group accuracy", (
            Paragraph(f"Groups from {evidence.groups_from}. {data.GROUPS_TEXT}"),
            TableBlock(data.group_table(evidence)))))
    if evidence.calibration:
        sections.append(Section("calibration", "Calibration and prevalence", (
            Paragraph(data.calibration_text(evidence)), TableBlock(calibration_table(evidence.calibration)),
            Figure("reliability diagram", "reliability diagram (equal-mass bins)"))))
    if evidence.levels:
        sections.append(Section("levels", "Verdict levels", (TableBlock(data.level_table(evidence)),)))
    return sections


def _training(ctx: AcceptanceSession) -> list[Section]:
    training = data.training_table(ctx)
    if training is None:
        return []
    return [Section("training", "Training", (Paragraph(data.training_text(ctx)), TableBlock(training),
                                             Figure("loss curves", "training and validation loss")))]
