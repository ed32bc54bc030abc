"""The comparison as text: a terminal summary, a markdown report and a JSON report.

Data and layout are kept apart: the ``*_table`` functions turn result objects
into ``(header, rows)`` of display strings (:data:`~virnucpro_core.tables.Table`);
:func:`format_summary`, :func:`write_markdown` and the acceptance reports
(:mod:`virnucpro_core.gate.report_model`) only lay those tables out, with
:mod:`virnucpro_core.tables`' layouts. Every write is atomic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from virnucpro_core.compare.comparison import (
    DROP_CI_METHOD,
    Comparison,
    fmt,
    fmt_ci,
    uses_random_weights,
)
from virnucpro_core.compare.figures import FIGURE_FILES, FIGURE_TITLES
from virnucpro_core.compare.rules import WITHIN_LIMIT, within_limit
from virnucpro_core.files import atomic_write_text
from virnucpro_core.evaluate.metrics import CHUNK_RULE, CI_METHOD, FRAME_RULE, Evaluation
from virnucpro_core.split.records import SplitSummary
from virnucpro_core.tables import Table, markdown_table, markdown_text, text_table

REPORT_FORMAT = "virnucpro-comparison-report"
REPORT_VERSION = 1
RANDOM_WARNING = (
    "RANDOM-WEIGHT STAND-INS: these predictions come from models with random weights. "
    "Accuracy from random-weight stand-ins does not validate FastESM2; rerun with the pretrained weights."
)



# --------------------------------------------------------------------------- tables (data → rows)


def metrics_table(comparison: Comparison, level: str = "frame", *, with_ci: bool = True) -> Table:
    """Every metric of both models and its drop: baseline − FastESM2 (positive: FastESM2 is worse).

    Args:
        level: ``"frame"`` (per sample, the gated level) or ``"chunk"`` (VirNucPro's per-chunk call).
        with_ci: add each model's bootstrap CI (frame level only).
    """
    base, fast = comparison.baseline_name, comparison.fast_name
    rows_in = comparison.metric_rows(level)
    show_ci = with_ci and level == "frame"
    level_text = f"{comparison.confidence_level:.0%}".replace("%", " %")
    if show_ci:
        header = ["metric", base, f"{base} {level_text} CI", fast, f"{fast} {level_text} CI", f"drop ({base} − {fast})"]
    else:
        header = ["metric", base, fast, f"drop ({base} − {fast})"]
    rows = []
    for row in rows_in:
        if show_ci:
            rows.append([row.label, fmt(row.baseline), fmt_ci(row.baseline_ci), fmt(row.fast), fmt_ci(row.fast_ci),
                         fmt(row.drop)])
        else:
            rows.append([row.label, fmt(row.baseline), fmt(row.fast), fmt(row.drop)])
    return header, rows


def chunk_table(comparison: Comparison) -> Table:
    """Per-chunk metrics of both models, with the number of chunks and frames."""
    header, rows = metrics_table(comparison, "chunk", with_ci=False)
    fast, base = comparison.fast.chunks, comparison.baseline.chunks
    if fast is not None and base is not None:
        rows = [["chunks (frames)", f"{base.n_chunks} ({base.n_frames})", f"{fast.n_chunks} ({fast.n_frames})", ""],
                *rows]
    return header, rows


def confusion_table(evaluation: Evaluation) -> Table:
    """``[[tn, fp], [fn, tp]]`` as a table: rows true class, columns predicted class."""
    header = ["", "predicted host (0)", "predicted viral (1)"]
    if evaluation.confusion_matrix is None:
        return header, [["true host (0)", "—", "—"], ["true viral (1)", "—", "—"]]
    (tn, fp), (fn, tp) = evaluation.confusion_matrix
    return header, [["true host (0)", f"{tn} (TN)", f"{fp} (FP)"], ["true viral (1)", f"{fn} (FN)", f"{tp} (TP)"]]


def length_breakdown_table(comparison: Comparison) -> Table:
    """Accuracy per protein-length bin for both models, and the drop (baseline − FastESM2)."""
    base, fast = comparison.baseline_name, comparison.fast_name
    header = ["protein length (residues)", "n", f"{base} accuracy", f"{fast} accuracy", "drop"]
    rows = [[r.label, str(r.n), fmt(r.baseline_accuracy), fmt(r.fast_accuracy), fmt(r.drop)]
            for r in comparison.length_rows()]
    if not rows:  # baseline from a metrics file without bins: FastESM2 alone
        header = ["protein length (residues)", "n", f"{fast} accuracy"]
        rows = [[b.label, str(b.n), fmt(b.accuracy)] for b in comparison.fast.length_bins]
    return header, rows


def gate_result(comparison: Comparison, run_verdict: str | None = None) -> str:
    """PASS / FAIL, or "measured: within limit" for a passed gate in a run whose verdict (``run_verdict``) is not
    PASS: the run's verdict is stated once, and no gate line contradicts it."""
    if run_verdict is None or run_verdict.startswith("PASS") or not comparison.passed:
        return comparison.verdict
    return WITHIN_LIMIT


def drop_table(comparison: Comparison, run_verdict: str | None = None) -> Table:
    """The gated number: the drop, its CI, the limit and the gate's result (see :func:`gate_result`)."""
    level_text = f"{comparison.confidence_level:.0%}".replace("%", " %")
    ci = fmt_ci(comparison.drop_ci) if comparison.drop_ci else "— (" + comparison.paired_note.split(":")[0] + ")"
    rows = [
        ["accuracy drop (baseline − FastESM2)", fmt(comparison.accuracy_drop)],
        [f"{level_text} CI of the drop", ci],
        ["limit (strict: drop < limit)", f"{comparison.max_accuracy_drop:g}"],
        ["verdict" if run_verdict is None else "accuracy gate", gate_result(comparison, run_verdict)],
        ["chunk-level accuracy drop (not gated)", fmt(comparison.chunk_accuracy_drop)],
        ["test samples", str(comparison.n)],
        ["baseline from", comparison.baseline_source],
    ]
    return ["", ""], rows


def mcnemar_table(comparison: Comparison) -> Table:
    """The paired correct/wrong table (rows baseline, columns FastESM2) and McNemar's p-value."""
    m = comparison.mcnemar
    fast, base = comparison.fast_name, comparison.baseline_name
    header = ["", f"{fast} correct", f"{fast} wrong"]
    if m is None:
        return header, []
    return header, [
        [f"{base} correct", str(m.both_correct), str(m.baseline_only_correct)],
        [f"{base} wrong", str(m.fast_only_correct), str(m.both_wrong)],
        ["discordant pairs", str(m.discordant), ""],
        ["McNemar exact p-value", f"{m.p_value:.4g}", ""],
    ]


def describe_model(meta: Mapping[str, Any] | None) -> str:
    """One embedder's provenance in a line: weights, size, source, revision, dtype, vocabulary."""
    if not isinstance(meta, Mapping) or not meta:
        return "not recorded"
    parts = [f"{meta.get('weights', 'unknown')} weights"]
    if meta.get("weights") == "random":
        parts.append(f"stand-in seed {meta.get('seed')}")
    if meta.get("size"):
        parts.append(f"size {meta['size']}")
    if meta.get("source"):
        parts.append(f"from {meta['source']}")
    if meta.get("revision"):
        parts.append(f"revision {str(meta['revision'])[:12]}")
    if meta.get("dtype"):
        parts.append(str(meta["dtype"]))
    if meta.get("vocab_sha256"):
        parts.append(f"vocabulary sha256 {str(meta['vocab_sha256'])[:12]}")
    if meta.get("provenance") == "declared":
        # Files in VirNucPro's layout say nothing about how they were made: the user said it.
        parts.insert(0, f"DECLARED, not verified ({meta.get('declared_by')})")
    return ", ".join(parts)


def checkpoint_weights(checkpoint: Mapping[str, Any]) -> str:
    """``'best weights, epoch 3'`` for our checkpoints; the origin for the original's or the fork's, which
    do not say (a checkpoint entry of predictions' meta, :func:`~virnucpro_core.predict.scoring.checkpoint_info`)."""
    if checkpoint.get("which"):
        return f"{checkpoint['which']} weights, epoch {checkpoint.get('epoch')}"
    trained = checkpoint.get("trained_on") if isinstance(checkpoint.get("trained_on"), Mapping) else {}
    return str(trained.get("origin") or "weights of unknown origin")


def _describe_checkpoint(meta: Mapping[str, Any]) -> str:
    checkpoint = meta.get("checkpoint") if isinstance(meta.get("checkpoint"), Mapping) else {}
    if not checkpoint:
        return "not recorded"
    name = Path(str(checkpoint.get("path", "?"))).name
    return (f"{name} ({checkpoint_weights(checkpoint)}, "
            f"{checkpoint.get('input_dim')} inputs, sha256 {str(checkpoint.get('sha256'))[:12]}), "
            f"split {str(checkpoint.get('split_id'))[:12]}")


def provenance_table(comparison: Comparison, provenance: Mapping[str, Any] | None = None) -> Table:
    """What produced the numbers, one line per piece: each arm's embedders and classifier, the models loaded,
    the baseline's origin, the pairing and the bootstrap."""
    rows = []
    for key, name in (("baseline", comparison.baseline_name), ("fast", comparison.fast_name)):
        meta = comparison.provenance.get(key)
        if meta:
            rows.append([f"{name}: protein embedder", describe_model(meta.get("protein"))])
            rows.append([f"{name}: DNA embedder", describe_model(meta.get("dna"))])
            rows.append([f"{name}: classifier", _describe_checkpoint(meta)])
    for key, value in (provenance or {}).items():
        rows.append([f"loaded {key}", describe_model(value) if isinstance(value, Mapping) else str(value)])
    rows.append(["baseline from", comparison.baseline_source])
    rows.append(["pairing", comparison.paired_note])
    rows.append(["bootstrap", f"{comparison.n_bootstrap} resamples, seed {comparison.seed}"])
    return ["item", "value"], rows


def random_weight_sources(comparison: Comparison, provenance: Mapping[str, Any] | None = None) -> list[str]:
    """Names of the models / provenance entries that used random-weight stand-ins."""
    found = [name for key, name in (("fast", comparison.fast_name), ("baseline", comparison.baseline_name))
             if uses_random_weights(comparison.provenance.get(key))]
    for key, value in (provenance or {}).items():
        if (isinstance(value, Mapping) and uses_random_weights(value)) or (key == "weights" and value == "random"):
            found.append(str(key))
    return found


def _split_summary(summary: Any):
    return summary if isinstance(summary, SplitSummary) else SplitSummary.from_dict(summary)


def split_table(summary: Any) -> Table:
    """Class counts of the split (a :class:`~virnucpro_core.split.records.SplitSummary` or its dict)."""
    summary = _split_summary(summary)
    header = ["class", "all", "train", "test", "target test", "test share achieved"]
    rows = [[c.name, str(c.full), str(c.train), str(c.test), str(c.target_test), f"{c.test_fraction_achieved:.4f}"]
            for c in summary.classes]
    return header, rows


def length_table(summary: Any) -> Table:
    """Protein-length distribution of train and test per class, with the KS test train vs test."""
    summary = _split_summary(summary)
    header = ["class", "train n", "test n", "train median", "test median", "train mean", "test mean",
              "KS D (train vs test)", "KS p"]
    rows = []
    for key, comp in summary.lengths.items():
        rows.append([key, str(comp.train.n), str(comp.test.n), f"{comp.train.median:g}", f"{comp.test.median:g}",
                     f"{comp.train.mean:.1f}", f"{comp.test.mean:.1f}",
                     "—" if comp.ks_statistic is None else f"{comp.ks_statistic:.4f}",
                     "—" if comp.ks_pvalue is None else f"{comp.ks_pvalue:.4g}"])
    return header, rows


def _history_parts(history: Any) -> tuple[list[float], list[float], int | None, Any]:
    if hasattr(history, "train_loss"):
        return list(history.train_loss), list(history.val_loss), getattr(history, "best_epoch", None), history
    train, val, best = history
    return list(train), list(val), best, None


def training_table(histories: Mapping[str, Any]) -> Table:
    """Epochs, best epoch and losses per model (TrainingHistory objects or (train, val, best) tuples)."""
    header = ["model", "epochs", "best epoch", "best val loss", "final train loss", "stopped by"]
    rows = []
    for name, history in histories.items():
        train, val, best, full = _history_parts(history)
        best_val = val[best - 1] if best and 0 < best <= len(val) else float("nan")
        rows.append([name, str(len(train)), str(best or "—"), fmt(best_val),
                     fmt(train[-1] if train else float("nan")), getattr(full, "stop_reason", "") or "—"])
    return header, rows


# --------------------------------------------------------------------------- layouts


def format_summary(comparison: Comparison, provenance: Mapping[str, Any] | None = None) -> str:
    """A compact terminal summary: metric | baseline | FastESM2 | drop, the verdict line, next steps on FAIL."""
    lines = []
    random_sources = random_weight_sources(comparison, provenance)
    if random_sources:
        lines += [f"!! {RANDOM_WARNING} ({', '.join(random_sources)})", ""]
    pairing = "paired" if comparison.paired else "not paired"
    lines.append(f"{comparison.fast_name} vs {comparison.baseline_name} on {comparison.n} test samples ({pairing})")
    lines += text_table(metrics_table(comparison, with_ci=False))
    chunk = comparison.metric_rows("chunk")
    if chunk:
        acc = next(r for r in chunk if r.name == "accuracy")
        lines.append(f"per-chunk accuracy: {comparison.baseline_name} {fmt(acc.baseline)}, "
                     f"{comparison.fast_name} {fmt(acc.fast)} (drop {fmt(acc.drop)})")
    if comparison.mcnemar is not None:
        lines.append(f"McNemar exact p = {comparison.mcnemar.p_value:.4g} "
                     f"({comparison.mcnemar.discordant} discordant pairs)")
    for note in comparison.notes:
        lines.append(f"note: {note}")
    lines += ["", f"verdict: {comparison.reason}"]
    if comparison.undecided:
        lines.append(f"note: {comparison.undecided_statement()}")
    if comparison.next_steps:
        lines.append("next steps:")
        lines += [f"  {i}. {step}" for i, step in enumerate(comparison.next_steps, start=1)]
    return "\n".join(lines)


def _figure_links(figures_dir: Path, relative_to: Path) -> list[str]:
    lines = []
    for key, name in FIGURE_FILES.items():
        target = figures_dir / name
        if target.is_file():
            link = Path(os.path.relpath(target, relative_to)).as_posix()
            lines += [f"![{FIGURE_TITLES[key]}]({link})", ""]
    return lines


def markdown_lines(
    comparison: Comparison,
    *,
    split_summary: Any = None,
    histories: Mapping[str, Any] | None = None,
    figures_dir: str | Path | None = None,
    provenance: Mapping[str, Any] | None = None,
    relative_to: str | Path = ".",
    run: str | None = None,
    run_verdict: str | None = None,
) -> list[str]:
    """The markdown report's lines (see :func:`write_markdown`)."""
    fast, base = comparison.fast_name, comparison.baseline_name
    reason, title = comparison.reason, f"accuracy gate — {comparison.verdict}"
    if gate_result(comparison, run_verdict) == WITHIN_LIMIT:  # the run's verdict is stated once, not contradicted
        title, reason = f"accuracy gate {WITHIN_LIMIT} (run verdict {run_verdict})", within_limit(reason)
    lines = [f"# {fast} vs {base}: {title}", ""]
    if run:
        lines += [markdown_text(run), ""]
    random_sources = random_weight_sources(comparison, provenance)
    if random_sources:
        lines += [f"> **⚠ {RANDOM_WARNING}** (random weights: {', '.join(random_sources)})", ""]
    lines += [f"**{markdown_text(reason)}**", ""]
    if comparison.undecided:
        lines += [f"> **{markdown_text(comparison.undecided_statement())}**", ""]
    lines += ["Sign convention: drop = baseline − FastESM2 for every metric; a positive drop means FastESM2 is "
              "worse.", ""]
    for note in comparison.notes:
        lines += [f"> Note: {markdown_text(note)}", ""]
    if comparison.next_steps:
        lines += ["## Next steps", ""] + [f"{i}. {markdown_text(s)}" for i, s in enumerate(comparison.next_steps, 1)]
        lines += [""]

    lines += ["## Provenance", ""] + markdown_table(provenance_table(comparison, provenance)) + [""]
    if not comparison.paired:
        lines += [f"The baseline's numbers came from **{markdown_text(comparison.baseline_source)}**, not from predictions made "
                  "here: no paired confidence interval and no McNemar test.", ""]

    if split_summary is not None:
        lines += ["## Test set", ""]
        try:
            summary = _split_summary(split_summary)
            lines += [f"Split {summary.split_id[:12]}, seed {summary.seed}, grouped by {summary.group_by}; "
                      f"{summary.rounding_rule}.", ""]
            lines += markdown_table(split_table(summary)) + [""] + markdown_table(length_table(summary)) + [""]
            leak = summary.leakage
            lines += [f"Leakage: {leak.leaked_samples} of {leak.test_samples} test samples ({leak.fraction:.1%}) "
                      f"come from source records that also have training samples; {leak.chunk_leaked_samples} "
                      "share a chunk with a training sample.", ""]
        except (KeyError, TypeError, ValueError):
            lines += ["```json", json.dumps(split_summary, indent=1, default=str), "```", ""]

    lines += ["## Accuracy gate", ""] + markdown_table(drop_table(comparison, run_verdict)) + [""]
    if comparison.drop_ci is not None:
        lines += [f"CI: {DROP_CI_METHOD}, {comparison.n_bootstrap} resamples, seed {comparison.seed}.", ""]

    lines += ["## Metrics (frame level)", "", f"Positive class: viral. {FRAME_RULE}.", ""]
    lines += markdown_table(metrics_table(comparison)) + [""]
    lines += [f"CIs: {CI_METHOD}; {comparison.n_bootstrap} resamples, seed {comparison.seed}.", ""]

    lines += ["## McNemar's test", ""]
    if comparison.mcnemar is not None:
        lines += markdown_table(mcnemar_table(comparison)) + ["", f"{comparison.mcnemar.method}.", ""]
    else:
        lines += [f"Not run: {comparison.paired_note}.", ""]

    lines += ["## Confusion matrices", ""]
    for name, evaluation in ((base, comparison.baseline), (fast, comparison.fast)):
        lines += [f"**{name}**", ""] + markdown_table(confusion_table(evaluation)) + [""]

    lines += ["## Accuracy by protein length", ""] + markdown_table(length_breakdown_table(comparison)) + [""]

    lines += ["## Per-chunk metrics", "",
              f"{CHUNK_RULE}. ROC-AUC and PR-AUC rank chunks by max p_viral − max p_host.", ""]
    header, rows = chunk_table(comparison)
    lines += (markdown_table((header, rows)) if rows else ["Not available for the baseline."]) + [""]

    if histories:
        lines += ["## Training", ""] + markdown_table(training_table(histories)) + [""]

    if figures_dir is not None:
        links = _figure_links(Path(figures_dir), Path(relative_to))
        if links:
            lines += ["## Figures", ""] + links
    return lines


def write_markdown(
    comparison: Comparison,
    path: str | Path,
    *,
    split_summary: Any = None,
    histories: Mapping[str, Any] | None = None,
    figures_dir: str | Path | None = None,
    provenance: Mapping[str, Any] | None = None,
    run: str | None = None,
    run_verdict: str | None = None,
) -> Path:
    """The detailed markdown report: verdict, provenance (random weights stated loudly), metrics with CIs,
    confusion matrices, per-length and per-chunk breakdowns, McNemar, next steps and figure links.

    Args:
        comparison: the result of :func:`~virnucpro_core.compare.comparison.compare`.
        path: the ``.md`` file to write.
        split_summary: the split's :class:`~virnucpro_core.split.records.SplitSummary` (or its dict).
        histories: model name → TrainingHistory or ``(train_loss, val_loss, best_epoch)``.
        figures_dir: directory holding the PNGs of :data:`~virnucpro_core.compare.figures.FIGURE_FILES`; the ones
            present are linked relative to ``path``.
        provenance: extra provenance, e.g. model name → ``{"weights": "pretrained", "revision": ...}``.
        run: a line naming the run that wrote the file (the acceptance suite's run id and time).
        run_verdict: that run's verdict (``Verdict.title``); unless it is PASS, a passed accuracy gate is titled
            "measured: within limit", never PASS.
    """
    path = Path(path)
    lines = markdown_lines(comparison, split_summary=split_summary, histories=histories, figures_dir=figures_dir,
                           provenance=provenance, relative_to=path.parent, run=run, run_verdict=run_verdict)
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path


def _history_dict(history: Any) -> dict[str, Any]:
    if hasattr(history, "to_dict"):
        return history.to_dict()
    train, val, best, _ = _history_parts(history)
    return {"train_loss": train, "val_loss": val, "best_epoch": best}


def report_dict(
    comparison: Comparison,
    *,
    split_summary: Any = None,
    histories: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    figures: Iterable[str | Path] = (),
) -> dict[str, Any]:
    random_sources = random_weight_sources(comparison, provenance)
    if split_summary is not None and hasattr(split_summary, "to_dict"):
        split_summary = split_summary.to_dict()
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "verdict": comparison.verdict,
        "reason": comparison.reason,
        "undecided": comparison.undecided_statement(),
        "samples_to_decide": comparison.samples_to_decide() if comparison.undecided else None,
        "next_steps": list(comparison.next_steps),
        "random_weights": bool(random_sources),
        "warning": RANDOM_WARNING if random_sources else None,
        "provenance": dict(provenance or {}),
        "comparison": comparison.to_dict(),
        "split": split_summary,
        "training": {name: _history_dict(h) for name, h in (histories or {}).items()},
        "figures": [str(f) for f in figures],
    }


def write_json(
    comparison: Comparison,
    path: str | Path,
    *,
    split_summary: Any = None,
    histories: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    figures: Sequence[str | Path] = (),
) -> Path:
    """The JSON report: verdict, random-weights flag, the full comparison, split, training histories."""
    data = report_dict(comparison, split_summary=split_summary, histories=histories, provenance=provenance,
                       figures=figures)
    atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")
    return Path(path)

