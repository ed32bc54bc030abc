"""The acceptance report: verdict, environment, test set, training, accuracy, speed — as HTML sections.

The acceptance suite puts these sections at the top of pytest-html's
self-contained report (figures embedded as base64 PNG) and writes the same
content as markdown and JSON beside it. Everything here reads finished
results; nothing computes a stage.
"""

from __future__ import annotations

import base64
import html
import json
import math
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from virnucpro_core.errors import VirNucProError
from virnucpro_core.files import atomic_write_text

GATES = {"accuracy": "test_accuracy.py::test_accuracy_gate", "speed": "test_speed.py::test_speed_gate"}
SMOKE_NOTICE = (
    "SMOKE PROFILE — this run checks the acceptance suite's machinery on bundled synthetic data with "
    "random-weight stand-in models. It does not validate FastESM2_650."
)
RANDOM_NOTICE = (
    "Random-weight stand-ins: accuracy figures below (if any) say nothing about FastESM2_650; only the "
    "timings of the real architectures are meaningful."
)
SPEED_NEXT_STEPS = [
    "Check that the GPU was idle and the same for both models (see Environment).",
    "Compare the like-for-like pair: if it passes, the difference comes from dtype or batching, not the model.",
    "Raise --bench-sample for steadier timings, or profile the extractor with benchmarks/extract_throughput.py.",
]


@dataclass
class Outcome:
    """One test's result as the report shows it."""

    name: str
    outcome: str  # passed, failed, error, skipped, pending
    message: str = ""


@dataclass
class Verdict:
    status: str  # PASS, FAIL, INCOMPLETE
    reasons: list[str]
    next_steps: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"  - {reason}" for reason in self.reasons]
        if self.next_steps:
            lines.append("  next steps:")
            lines += [f"    {i}. {step}" for i, step in enumerate(self.next_steps, start=1)]
        return lines


@dataclass
class ReportContext:
    """Everything the report shows, gathered once at the end of the session."""

    settings: Any
    run: Any
    timings: dict
    outcomes: list[Outcome]
    gpu_problem: str | None = None

    def peek(self, stage: str) -> Any:
        return self.run.peek(stage) if self.run is not None else None

    def outcome(self, suffix: str) -> Outcome | None:
        matches = [o for o in self.outcomes if o.name.endswith(suffix) or o.name.split("[")[0].endswith(suffix)]
        return matches[0] if matches else None

    @property
    def profile(self) -> str:
        return getattr(self.settings, "profile", "unknown")

    @property
    def random_weights(self) -> str | None:
        """Why this run's accuracy cannot validate FastESM2 (random weights in the options or the inputs), or None."""
        if self.run is not None:
            return _unless_unreadable(self.run.random_weights_reason, None)
        return "--weights random" if getattr(self.settings, "weights", None) == "random" else None


# ---------------------------------------------------------------------------- verdict


def decide_verdict(ctx: ReportContext) -> Verdict:
    """PASS only when every test passed and both gates ran; FAIL on any failure; else INCOMPLETE."""
    if not ctx.outcomes:
        return Verdict("INCOMPLETE", ["no acceptance test ran"])
    failed = [o for o in ctx.outcomes if o.outcome in ("failed", "error")]
    comparison = ctx.peek("comparison")
    reasons = [f"{o.name}: {_first_line(o.message).removeprefix('Failed: ')}" for o in failed]
    undecided = False
    for gate, name in GATES.items():
        outcome = ctx.outcome(name)
        if outcome is not None and outcome.outcome in ("failed", "error"):
            continue  # already listed above
        if outcome is None or outcome.outcome != "passed":
            undecided = True
            why = outcome.message if outcome is not None and outcome.message else "did not run"
            reasons.append(f"{gate} gate not decided: {_first_line(why)}")
        elif gate == "accuracy" and comparison is not None:
            reasons.append(f"accuracy gate: {comparison.reason}")
        elif gate == "speed":
            reasons.append(f"speed gate: {_speed_sentence(ctx)}")
    if not failed:
        return Verdict("INCOMPLETE" if undecided else "PASS", reasons)
    steps: list[str] = []
    accuracy, speed = ctx.outcome(GATES["accuracy"]), ctx.outcome(GATES["speed"])
    if accuracy is not None and accuracy.outcome == "failed" and comparison is not None:
        steps += list(comparison.next_steps)
    if speed is not None and speed.outcome == "failed":
        steps += SPEED_NEXT_STEPS
    if not steps:
        steps.append("Read the first failure below: it names the stage, the input and what to do.")
    return Verdict("FAIL", reasons, steps)


def _speed_sentence(ctx: ReportContext) -> str:
    fast, baseline = ctx.timings.get(("as-deployed", "fast")), ctx.timings.get(("as-deployed", "baseline"))
    if fast is None or baseline is None:
        return "passed"
    limit = getattr(ctx.settings, "max_time_ratio", 0.5)
    return (f"FastESM2 {fast.mean_s:.3f} s / ESM2 3B {baseline.mean_s:.3f} s = "
            f"{fast.mean_s / baseline.mean_s:.3f} ≤ limit {limit} (as-deployed, {fast.sequences} proteins)")


def _weights_row(ctx: ReportContext) -> str:
    settings = ctx.settings
    if ctx.run is not None and _unless_unreadable(ctx.run.has_merged_inputs, False):
        return f"from the merged feature inputs: {ctx.random_weights or 'pretrained'}"
    return f"{settings.weights} (stand-in size: {settings.size})" if settings.weights == "random" else settings.weights


def _unless_unreadable(call: Callable[[], Any], default: Any) -> Any:
    """``call()``, or ``default`` when the inputs cannot be read (the tests that read them report it)."""
    try:
        return call()
    except VirNucProError:
        return default


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


# ---------------------------------------------------------------------------- data gathering


def environment(ctx: ReportContext) -> list[tuple[str, str]]:
    from virnucpro_core.benchmark import machine_info

    rows: list[tuple[str, str]] = []
    settings = ctx.settings
    if settings is not None:
        rows += [
            ("profile", settings.profile),
            ("weights", _weights_row(ctx)),
            ("seed", str(settings.seed)),
            ("viral inputs", ", ".join(str(p) for p in settings.viral)),
            ("host inputs", ", ".join(str(p) for p in settings.host)),
            ("limits", f"accuracy drop < {settings.max_accuracy_drop}; time ratio ≤ {settings.max_time_ratio}"),
        ]
    device = ctx.run.device() if ctx.run is not None else None
    for key, value in machine_info(device).items():
        if value is not None:
            rows.append((key, str(value)))
    rows.append(("commit", _git_commit()))
    for model in ctx.run.loaded_models() if ctx.run is not None else []:
        p = model.provenance
        origin = (f"revision {p.get('revision') or 'unknown'} from {p.get('source')}"
                  if p.get("weights") == "pretrained" else f"stand-in seed {p.get('seed')}")
        rows.append((f"model {model.spec.display_name} ({p.get('dtype')})",
                     f"{p.get('weights')} weights, size {p.get('size')}, {origin}; "
                     f"hub id {model.spec.hub_id}; dim {model.dim}; "
                     f"vocabulary {p.get('vocab')} (sha256 {str(p.get('vocab_sha256'))[:12]})"))
    return rows


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def figures(ctx: ReportContext) -> dict[str, bytes]:
    """PNG figures of whatever stages finished."""
    from virnucpro_core import figures as fig

    names = {"fast": "FastESM2_650", "baseline": "ESM2 3B"}
    out: dict[str, bytes] = {}
    split = ctx.peek("split[fast]")
    if split is not None:
        from virnucpro_core.features import load_merged

        out["test-set lengths"] = fig.length_histogram_png(
            load_merged(split.paths.train).lengths.tolist(), load_merged(split.paths.test).lengths.tolist())
    histories = {names[e]: ctx.peek(f"train[{e}]").history for e in names if ctx.peek(f"train[{e}]") is not None}
    if histories:
        out["loss curves"] = fig.loss_curves_png(
            {name: (h.train_loss, h.val_loss, h.best_epoch) for name, h in histories.items()})
    evals = {e: ctx.peek(f"evaluation[{e}]") for e in names}
    preds = {e: ctx.peek(f"predictions[{e}]") for e in names}
    if all(evals.values()):
        out["confusion matrices"] = fig.confusion_matrices_png(evals["fast"], evals["baseline"],
                                                               [names["fast"], names["baseline"]])
    if all(preds.values()):
        out["ROC and PR curves"] = fig.roc_pr_curves_png(preds["fast"], preds["baseline"],
                                                         [names["fast"], names["baseline"]])
    return out


def speed_rows(ctx: ReportContext) -> list[list[str]]:
    rows = []
    for (pairing, _embedder), t in sorted(ctx.timings.items()):
        rows.append([
            pairing, t.model, t.settings.get("dtype", ""), str(t.settings.get("toks_per_batch", "")),
            ", ".join(f"{r:.3f}" for r in t.runs_s), f"{t.mean_s:.3f}", f"{t.sequences_per_s:,.1f}",
            f"{t.peak_memory_bytes / 2**30:.2f}" if t.peak_memory_bytes else "—",
        ])
    return rows


def speed_ratios(ctx: ReportContext) -> list[list[str]]:
    rows = []
    for pairing in ("as-deployed", "like-for-like"):
        fast, base = ctx.timings.get((pairing, "fast")), ctx.timings.get((pairing, "baseline"))
        if fast and base:
            gate = "gate" if pairing == "as-deployed" else "shown, not gated"
            rows.append([pairing, f"{fast.mean_s / base.mean_s:.3f}", f"{base.mean_s / fast.mean_s:.2f}×", gate])
    return rows


# ---------------------------------------------------------------------------- HTML


def _table(header: list[str] | None, rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header or [])
    thead = f"<thead><tr>{head}</tr></thead>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="vnp">{thead}<tbody>{body}</tbody></table>'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _img(title: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}" style="max-width:100%">'
            f"<figcaption>{html.escape(title)}</figcaption></figure>")


_STYLE = """<style>
.vnp-banner{padding:14px 18px;border-radius:6px;margin:12px 0;font-size:1.15em;color:#fff}
.vnp-PASS{background:#2e7d32}.vnp-FAIL{background:#c62828}.vnp-INCOMPLETE{background:#ef6c00}
.vnp-notice{padding:10px 14px;border-left:6px solid #ef6c00;background:#fff3e0;margin:10px 0;font-weight:bold}
table.vnp{border-collapse:collapse;margin:8px 0 16px}table.vnp td,table.vnp th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:0.95em}table.vnp th{background:#f2f2f2}.vnp-section h2{border-bottom:1px solid #ddd}
</style>"""


def render_sections(ctx: ReportContext) -> list[str]:
    """HTML fragments, in reading order, for the top of the pytest-html report."""
    from virnucpro_core import report as text_report

    verdict = decide_verdict(ctx)
    parts = [_STYLE]
    if ctx.profile == "smoke":
        parts.append(f'<p class="vnp-notice">{html.escape(SMOKE_NOTICE)}</p>')
    elif ctx.random_weights:
        parts.append(f'<p class="vnp-notice">{html.escape(RANDOM_NOTICE)}</p>')
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in verdict.reasons)
    parts.append(f'<div class="vnp-banner vnp-{verdict.status}"><b>Verdict: {verdict.status}</b><ul>{reasons}</ul></div>')
    if verdict.next_steps:
        steps = "".join(f"<li>{html.escape(s)}</li>" for s in verdict.next_steps)
        parts.append(f'<div class="vnp-section"><h2>Next steps</h2><ol>{steps}</ol></div>')
    if ctx.gpu_problem:
        parts.append(f'<p class="vnp-notice">{html.escape(ctx.gpu_problem)}</p>')

    pictures = figures(ctx)
    parts.append('<div class="vnp-section"><h2>Environment</h2>' + _table(None, environment(ctx)) + "</div>")

    split = ctx.peek("split[fast]")
    if split is not None:
        summary = split.summary
        section = ['<div class="vnp-section"><h2>Test set</h2>',
                   f"<p>{html.escape(summary.rounding_rule)}; seed {summary.seed}; split by {summary.group_by}.</p>",
                   _table(*text_report.split_table(summary)),
                   _table(*text_report.length_table(summary)),
                   f"<p>Leakage: {summary.leakage.leaked_samples} of {summary.leakage.test_samples} test samples "
                   f"({summary.leakage.fraction:.1%}) come from genomes that also have training samples; "
                   f"{summary.leakage.chunk_leaked_samples} share a chunk (another frame of the same DNA). "
                   "VirNucPro's sample-level split allows this; `virnucpro split --group-by source` avoids it.</p>"]
        if "test-set lengths" in pictures:
            section.append(_img("protein lengths of train and test", pictures["test-set lengths"]))
        parts.append("".join(section) + "</div>")

    trained = {e: ctx.peek(f"train[{e}]") for e in ("fast", "baseline")}
    if any(trained.values()):
        rows = [[t.final.meta.protein_model, t.final.meta.input_dim, len(t.history.epochs), t.history.best_epoch,
                 f"{t.history.best_val_loss:.4f}", t.history.stop_reason]
                for t in trained.values() if t is not None]
        section = ['<div class="vnp-section"><h2>Training</h2>',
                   "<p>VirNucPro's hyperparameters for both: 512 hidden, BatchNorm, dropout 0.5, SGD lr 2e-4 "
                   "momentum 0.9, StepLR 10/0.85, batch 32, early stopping on a validation set carved from the "
                   "training side; the final weights are evaluated.</p>",
                   _table(["protein model", "input dim", "epochs", "best epoch", "best val loss", "stopped by"], rows)]
        if "loss curves" in pictures:
            section.append(_img("loss curves", pictures["loss curves"]))
        parts.append("".join(section) + "</div>")

    comparison = ctx.peek("comparison")
    if comparison is not None:
        section = ['<div class="vnp-section"><h2>Accuracy</h2>',
                   f"<p><b>{html.escape(comparison.reason)}</b></p>",
                   _table(*text_report.metrics_table(comparison))]
        for title in ("confusion matrices", "ROC and PR curves"):
            if title in pictures:
                section.append(_img(title, pictures[title]))
        parts.append("".join(section) + "</div>")

    if ctx.timings:
        section = ['<div class="vnp-section"><h2>Speed</h2>',
                   f"<p>{len(next(iter(ctx.timings.values())).runs_s)} timed runs after "
                   f"{next(iter(ctx.timings.values())).warmup_runs} warmup run(s), CUDA-synchronised clock, "
                   "tokenisation to pooled vectors on the host. As-deployed: ESM2 3B as VirNucPro ran it (fp32, "
                   "2,048-token batches) against FastESM2 in the settings it ships with here (bf16 on a GPU, fp32 on "
                   "the CPU; the accuracy features were extracted the same way); like-for-like: both with "
                   "FastESM2's settings.</p>",
                   _table(["pairing", "model", "dtype", "tokens/batch", "runs (s)", "mean (s)", "proteins/s",
                           "peak GPU GiB (weights + runs)"], speed_rows(ctx)),
                   _table(["pairing", "FastESM2 / ESM2 3B time", "speed-up", ""], speed_ratios(ctx)),
                   "</div>"]
        parts.append("".join(section))

    if ctx.run is not None and ctx.run.stages:
        rows = [[s.stage, "reused" if s.reused else "built", f"{s.seconds:.1f}"] for s in ctx.run.stages]
        parts.append('<div class="vnp-section"><h2>Stages</h2>'
                     f"<p>Artifacts: {html.escape(str(ctx.run.paths.root))} (rerun with --rebuild to recompute)</p>"
                     + _table(["stage", "", "seconds"], rows) + "</div>")
    return parts


# ---------------------------------------------------------------------------- markdown and JSON


def write_side_reports(ctx: ReportContext, out_dir: Path) -> list[Path]:
    """Write acceptance.md, acceptance.json and comparison.md beside the HTML report."""
    from virnucpro_core.paths import ReportPaths

    paths = ReportPaths(Path(out_dir))
    verdict = decide_verdict(ctx)
    comparison = ctx.peek("comparison")
    lines = [f"# VirNucPro FastESM2_650 acceptance — {verdict.status}", ""]
    if ctx.profile == "smoke":
        lines += [f"**{SMOKE_NOTICE}**", ""]
    elif ctx.random_weights:
        lines += [f"**{RANDOM_NOTICE}**", ""]
    lines += [f"- {r}" for r in verdict.reasons] + [""]
    if verdict.next_steps:
        lines += ["## Next steps", ""] + [f"{i}. {s}" for i, s in enumerate(verdict.next_steps, 1)] + [""]
    lines += ["## Environment", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in environment(ctx)] + [""]
    ratios = speed_ratios(ctx)
    if ratios:
        lines += ["## Speed", "", "| pairing | model | dtype | tokens/batch | runs (s) | mean (s) | proteins/s | peak GiB |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in speed_rows(ctx)] + [""]
        lines += ["| pairing | time ratio | speed-up | |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in ratios] + [""]
    written = []
    if comparison is not None:
        from virnucpro_core import report as text_report

        detail = paths.root / "comparison.md"
        split = ctx.peek("split[fast]")
        text_report.write_markdown(comparison, detail, split_summary=split.summary.to_dict() if split else None,
                                   provenance=_provenance(ctx))
        lines += ["## Accuracy", "", f"{comparison.reason}", "", f"Details: [{detail.name}]({detail.name})", ""]
        written.append(detail)
    atomic_write_text(paths.markdown, "\n".join(lines) + "\n")
    payload = {
        "verdict": asdict(verdict),
        "profile": ctx.profile,
        "settings": ctx.settings.to_dict() if ctx.settings is not None else None,
        "environment": dict(environment(ctx)),
        "outcomes": [asdict(o) for o in ctx.outcomes],
        "comparison": comparison.to_dict() if comparison is not None else None,
        "timings": {f"{p}/{e}": t.to_dict() for (p, e), t in ctx.timings.items()},
    }
    atomic_write_text(paths.json, json.dumps(payload, indent=2, default=str) + "\n")
    return [paths.markdown, paths.json, *written]


def _provenance(ctx: ReportContext) -> dict:
    if ctx.run is None:
        return {}
    return {f"{model.spec.name} ({model.provenance.get('dtype')})": model.provenance
            for model in ctx.run.loaded_models()}
