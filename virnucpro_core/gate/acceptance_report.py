"""The acceptance run's reports as data: their tables, texts and notices, the run id and the reports' staging.

Every table here is ``(header, rows)`` of display strings, read from finished
results; :func:`~virnucpro_core.gate.report_model.build_report` puts them into
the report's sections, which the HTML page (:mod:`virnucpro_core.gate.html_report`)
and ``acceptance.md`` (:mod:`virnucpro_core.gate.report_files`) lay out, and
``acceptance.json`` holds the same numbers; the speed section's are
:mod:`virnucpro_core.gate.speed_report`'s.
Each file names the run (:func:`new_run_id`); a run writes
its reports beside their place and moves them in only when all are finished,
replacing what an earlier run left there (:class:`ReportStaging`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from virnucpro_core.code_identity import describe_package
from virnucpro_core.custody import known_digest
from virnucpro_core.defaults import EMBEDDER_NAMES
from virnucpro_core.paths import ReportPaths
from virnucpro_core.compare.report import drop_table, length_table, split_table
from virnucpro_core.tables import Table
from virnucpro_core.compare.rules import within_limit
from virnucpro_core.gate.gates import ACCURACY
from virnucpro_core.gate.lock import hold, remove_unheld
from virnucpro_core.gate.session import AcceptanceSession, unless_unreadable
from virnucpro_core.gate.verdict import PASS, Verdict
from virnucpro_core.gate.benchmark import machine_info
from virnucpro_core.gate.given import feature_sets_note
from virnucpro_core.threads import cpu_count, describe_choices, load_average
from virnucpro_core.models.registry import describe_identity, identity_records

SMOKE_NOTICE = (
    "This run checks the acceptance suite's machinery on bundled synthetic data with random-weight stand-in "
    "models. It does not validate FastESM2_650."
)
RANDOM_NOTICE = (
    "Random-weight stand-ins: accuracy figures below (if any) say nothing about FastESM2_650; only the "
    "timings of the real architectures are meaningful."
)
OTHER_MODEL_NOTICE = ("Another model was validated (--allow-other-model): the figures below describe it, not the "
                      "model it stood in for; the verdict cannot be PASS.")
DROP_DEFINITION = (
    "Sign convention: drop = ESM2 3B − FastESM2_650, for accuracy and every other metric; a positive drop means "
    "FastESM2_650 is worse. The gate passes when the accuracy drop is below the limit."
)


def new_run_id(now: datetime | None = None) -> tuple[str, str]:
    """``(run id, start time)``: ``20261202T031500Z-3fa2c1`` and ``2026-12-02T03:15:00+00:00``."""
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}", now.isoformat()


@dataclass
class ReportStaging:
    """A run's reports, written beside their place and moved in only when all are finished.

    :meth:`begin` makes a staging folder beside the reports folder; the run writes every report there
    (pytest-html's page, pytest-benchmark's JSON, our markdown and JSON). :meth:`publish` then moves them
    in (renames only) and removes the files an earlier run wrote there that this run did not, so a folder
    never holds two runs' files side by side. :meth:`discard` (a run that gave no verdict: Ctrl-C, an
    internal error, reports that could not be written) leaves the earlier reports exactly as they were.
    The run holds a lock on its staging folder (the kernel's: released when the process ends, even by
    ``kill -9``); :meth:`begin` removes the staging folders of earlier runs that no process holds any more.
    """

    final: ReportPaths
    html: Path
    staging: Path
    lock: int | None = field(default=None, repr=False)  # a descriptor of the staging folder, locked (flock)

    @classmethod
    def begin(cls, html: Path) -> ReportStaging:
        html = Path(html)
        html.parent.mkdir(parents=True, exist_ok=True)
        remove_unheld(html.parent.glob(f".{html.stem}.*.part"))  # earlier runs' (killed, or out of space)
        staging = Path(tempfile.mkdtemp(prefix=f".{html.stem}.", suffix=".part", dir=html.parent))
        return cls(ReportPaths(html.parent), html, staging, hold(staging))

    @property
    def staged(self) -> ReportPaths:
        return ReportPaths(self.staging)

    @property
    def staged_html(self) -> Path:
        return self.staging / self.html.name

    def final_path(self, staged: Path) -> Path:
        """Where a staged file goes (the HTML page to ``--html``, the others beside it)."""
        return self.html if Path(staged) == self.staged_html else self.final.root / Path(staged).name

    def publish(self) -> list[Path]:
        """Move every staged report into place; remove the earlier run's files this run did not write."""
        published = []
        # acceptance.json, the verdict on disk, goes in last: until then the earlier verdict stands whole
        for staged in sorted(self.staging.iterdir(), key=lambda p: p.name == self.staged.json.name):
            if staged.is_file():
                target = self.final_path(staged)
                os.replace(staged, target)
                published.append(target)
        for earlier in {*self.final.owned(), self.html} - set(published):
            if earlier.is_file():
                earlier.unlink()
        assets = self.final.html_stylesheet.parent
        if assets.is_dir() and not any(assets.iterdir()):
            assets.rmdir()
        self.discard()
        return published

    def discard(self) -> None:
        """Remove the staging folder and what is in it (the earlier reports stay as they were)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None



def environment_rows(ctx: AcceptanceSession) -> list[tuple[str, str]]:
    """Run, settings, machine, commit and every loaded model with its weights and vocabulary."""

    rows = [("run id", ctx.run_id), ("started (UTC)", ctx.started)]
    settings = ctx.settings
    if settings is not None:
        rows += [
            ("profile", settings.profile),
            ("weights", _weights_row(ctx)),
            ("seed", str(settings.seed)),
            ("viral inputs", _describe_inputs(settings.viral)),
            ("host inputs", _describe_inputs(settings.host)),
            ("limits", f"accuracy drop < {settings.max_accuracy_drop}; time ratio ≤ {settings.max_time_ratio}"),
        ]
        if ctx.other_model:  # also when the other model made merged inputs, which no model row below describes
            rows.insert(4, ("OTHER MODEL", ctx.other_model))  # after "weights"
    device = unless_unreadable(ctx.run.device, None) if ctx.run is not None else None
    rows += [(key, str(value)) for key, value in machine_info(device).items() if value is not None]
    rows += [
        ("CPU cores", str(cpu_count())),
        ("intra-op threads", describe_choices()),
        ("load average (1/5/15 min) at start", ctx.load_at_start),
        ("load average (1/5/15 min) at end", load_average()),
    ]
    rows.append(("code", describe_package()))
    if ctx.parity is not None:
        rows.append(("FastESM2 parity with its own code", ctx.parity.summary()))
    if feature_sets_note(ctx.run):
        rows.append(("feature sets", feature_sets_note(ctx.run)))
    for model in ctx.run.loaded_models() if ctx.run is not None else []:
        p = model.provenance
        origin = (f"revision {p.get('revision') or 'unknown'} from {p.get('source')}"
                  if p.get("weights") == "pretrained" else f"stand-in seed {p.get('seed')}")
        other = "".join(f"; OTHER MODEL (--allow-other-model): {describe_identity(record)}"
                        for record in identity_records(p))
        rows.append((f"model {model.spec.display_name} ({p.get('dtype')})",
                     f"{p.get('weights')} weights, size {p.get('size')}, {origin}; {p.get('path', 'eager')} path; "
                     f"hub id {model.spec.hub_id}; "
                     f"dim {model.dim}; vocabulary {p.get('vocab')} (sha256 {str(p.get('vocab_sha256'))[:12]})"
                     + other))
    return rows


def _describe_inputs(paths, shown: int = 4) -> str:
    """Input files, or for many (a data_merge tree has hundreds) their count per folder."""
    if len(paths) <= shown:
        return ", ".join(str(p) for p in paths)
    folders: dict[str, int] = {}
    for path in paths:
        folders[str(Path(path).parent)] = folders.get(str(Path(path).parent), 0) + 1
    return f"{len(paths)} files: " + ", ".join(f"{n} in {folder}" for folder, n in folders.items())


def _weights_row(ctx: AcceptanceSession) -> str:
    settings = ctx.settings
    if ctx.run is not None and unless_unreadable(ctx.run.has_merged_inputs, False):
        row = f"from the merged feature inputs: {ctx.random_weights or 'pretrained'}"
        if settings.declarations:
            # VirNucPro-layout files record nothing of how they were made; the user declared it.
            row += ("; VirNucPro-layout files: DECLARED, not verified — "
                    + ", ".join(f"--declare-features {d}" for d in settings.declarations))
        return row
    return f"{settings.weights} (stand-in size: {settings.size})" if settings.weights == "random" else settings.weights


@dataclass
class SplitReport:
    """The split the gates were measured on."""

    description: str
    classes: Table
    lengths: Table
    leakage: dict
    leakage_warning: str | None
    duplicates: Table | None = None  # identical feature rows (absent from a split made before they were counted)


def split_report(ctx: AcceptanceSession) -> SplitReport | None:
    split = ctx.results.split if ctx.results is not None else None
    if split is None:
        return None
    summary = split.summary
    leak = summary.leakage
    warning = None
    if leak.leaked_samples:
        warning = (
            f"Leakage: {leak.leaked_samples} of {leak.test_samples} test samples ({leak.fraction:.1%}) come from "
            f"genomes that also have training samples, and {leak.chunk_leaked_samples} ({leak.chunk_fraction:.1%}) "
            "share a chunk (the same DNA, another reading frame) with a training sample. Both models' accuracies "
            "are therefore optimistic: they partly measure recognition of near-duplicates, not generalisation to "
            "new genomes, and the drop between the models may differ on unseen genomes. VirNucPro's sample-level "
            "split allows this; `virnucpro split --group-by source` keeps each genome on one side."
        )
    description = (f"Split {summary.split_id[:12]}: {summary.rounding_rule}; seed {summary.seed}; "
                   f"split by {summary.group_by}; both models use these exact test samples.")
    leakage = {"test_samples": leak.test_samples, "leaked_samples": leak.leaked_samples,
               "fraction": leak.fraction, "chunk_leaked_samples": leak.chunk_leaked_samples,
               "chunk_fraction": leak.chunk_fraction, "leaked_sources": leak.leaked_sources}
    duplicates, table = summary.duplicates, None
    if duplicates is not None:
        table = (["identical feature rows", "samples"],
                 [*([f"within {name} (copies of an earlier {name} row)", str(count)]
                    for name, count in sorted(duplicates.within_class.items(), reverse=True)),
                  ["across classes (label conflicts)", f"{duplicates.conflicting_samples} samples, "
                                                       f"{duplicates.conflicting_vectors} vectors"],
                  ["test samples identical to a training sample", f"{duplicates.test_identical_to_training} of "
                                                                  f"{duplicates.test_samples}"]])
        extra = []
        if duplicates.test_identical_to_training:
            extra.append(f"{duplicates.test_identical_to_training} of {duplicates.test_samples} test samples have "
                         "a feature vector identical to a training sample's: for them the test measures memory, "
                         "not generalisation.")
        if duplicates.warning:
            extra.append(duplicates.warning[0].upper() + duplicates.warning[1:] + ".")
        if extra:
            warning = " ".join([*([warning] if warning else []), *extra])
            leakage["test_identical_to_training"] = duplicates.test_identical_to_training
    return SplitReport(description, split_table(summary), length_table(summary), leakage, warning, table)


TRAINING_TEXT = ("VirNucPro's hyperparameters for both: 512 hidden, BatchNorm, dropout 0.5, SGD lr 2e-4 momentum 0.9, "
                 "StepLR 10/0.85, batch 32, early stopping on a validation set carved from the training side.")


def evaluated_weights_text(ctx: AcceptanceSession) -> str | None:
    """Which weights produced the accuracy figures, said once: the final ones (the locked default, as VirNucPro
    shipped them), with the best validation epoch the loss curves mark and the option that evaluates it instead."""
    trained = ctx.results.trained if ctx.results is not None else {}
    models = [(name, trained[e]) for e, name in EMBEDDER_NAMES.items() if e in trained]
    if not models:
        return None
    final = ", ".join(f"{name} epoch {t.final.meta.epoch}" for name, t in models)
    best = ", ".join(f"{name} epoch {t.history.best_epoch}" for name, t in models)
    return (f"Evaluated: the final weights, after each MLP's last epoch ({final}), as VirNucPro shipped them. The loss "
            f"curves mark each model's best validation epoch ({best}); those weights are kept beside the final ones "
            "(best.pt) and not evaluated here: `virnucpro train --save best` saves them instead, for "
            "`virnucpro evaluate`.")


def training_text(ctx: AcceptanceSession) -> str:
    """The training section's prose: the hyperparameters, then which weights were evaluated."""
    return " ".join(text for text in (TRAINING_TEXT, evaluated_weights_text(ctx)) if text)


def training_table(ctx: AcceptanceSession) -> Table | None:
    trained = ctx.results.trained if ctx.results is not None else {}
    rows = [[EMBEDDER_NAMES[e], str(t.final.meta.input_dim), str(len(t.history.epochs)), str(t.history.best_epoch),
             f"{t.history.best_val_loss:.4f}", t.history.stop_reason]
            for e, t in ((e, trained.get(e)) for e in EMBEDDER_NAMES) if t is not None]
    if not rows:
        return None
    return ["protein model", "input dim", "epochs", "best epoch", "best validation loss", "stopped by"], rows


def accuracy_headline(ctx: AcceptanceSession, verdict: Verdict | None = None) -> str:
    """The accuracy section's first line: the accuracy gate's sentence (metric, drop, CI, limit, result).

    A passed gate says PASS only when the run's ``verdict`` is PASS; otherwise "measured: within limit".
    """
    reason = ctx.measure(ACCURACY).reason
    headline = reason if verdict is not None and verdict.status == PASS else within_limit(reason)
    shared = feature_sets_note(ctx.run)  # --baseline-features: the DNABERT-S block is the user's in both sets
    return headline + (f" Here {shared}." if shared else "")


def accuracy_gate_table(comparison: Any, verdict: Verdict | None = None) -> Table:
    """The gated drop, its CI, the limit, the gate's result and McNemar's test, with the sign convention in the row
    names; the result says PASS only when the run's ``verdict`` is PASS."""
    header, rows = drop_table(comparison, verdict.title if verdict is not None else None)
    if comparison.mcnemar is not None:
        m = comparison.mcnemar
        rows.insert(3, ["McNemar exact p (paired errors)", f"{m.p_value:.4g} ({m.discordant} discordant pairs: "
                                                           f"{m.baseline_only_correct} only ESM2 3B right, "
                                                           f"{m.fast_only_correct} only FastESM2 right)"])
    else:
        rows.insert(3, ["McNemar exact p (paired errors)", f"not computed: {comparison.paired_note}"])
    return ["quantity", "value"], rows


GENERALISATION_TEXT = (
    "Only the locked split gates. The other rows retrain both MLPs with the same hyperparameters on the same "
    "features, split so that test genomes (source-disjoint) or test protein clusters (similarity-clustered, "
    "MMseqs2) are unseen in training: evidence of how the drop holds on new genomes, never part of the verdict "
    "or the exit status. Leakage: test samples whose record / chunk also has training samples, test proteins "
    "identical to a training protein, and the highest identity of a test protein to any training protein."
)


def _signed(value: float) -> str:
    """``+0.0068`` / ``−0.0046``: a sign always, and the true minus sign (U+2212) the other tables use."""
    return f"{value:+.4f}".replace("-", "−")


def _ci(interval) -> str:
    return f"[{_signed(interval[0])}, {_signed(interval[1])}]" if interval else "—"


def _acc(value: float, interval) -> str:
    return f"{value:.4f} [{interval[0]:.4f}, {interval[1]:.4f}]"


def _leak_text(leak: dict) -> str:
    if not leak:
        return "—"
    parts = [f"{leak['shared_sources']} shared records ({leak['samples_from_shared_sources']} test samples)",
             f"{leak['samples_sharing_a_chunk']} test samples share a chunk"]
    if "test_proteins_identical_to_training" in leak:
        parts.append(f"{leak['test_proteins_identical_to_training']} identical proteins")
    if leak.get("max_identity_to_training") is not None:
        over = next((f"{v} at ≥ {k.split('_')[-2]}" for k, v in leak.items() if k.endswith("_identity")
                     and k.startswith("test_proteins_at")), "")
        parts.append(f"highest identity {leak['max_identity_to_training']:.3f} at ≥ {leak['identity_coverage']:g} "
                     f"coverage, median best "
                     f"{leak['median_best_identity']:.3f}" + (f", {over}" if over else ""))
    elif "identity_coverage" in leak:
        parts.append(f"no test protein aligns to a training protein over ≥ {leak['identity_coverage']:g} coverage")
    elif "identity" in leak:
        parts.append(leak["identity"])
    return "; ".join(parts)


def generalisation_table(evidence: Any) -> Table:
    rows = []
    for r in evidence.splits:
        if r.status != "measured":
            rows.append([r.title, r.status, "", "", r.reason, "", "", ""])
            continue
        rows.append([r.title, "gates the verdict" if r.gated else "evidence (not gated)",
                     f"{r.baseline_accuracy:.4f}", f"{r.fast_accuracy:.4f}", f"{_signed(r.drop)} {_ci(r.drop_ci)}",
                     f"{r.mcnemar_p:.4g}" if r.mcnemar_p is not None else "—", str(r.n_test), _leak_text(r.leakage)])
    return ["split", "role", "ESM2 3B accuracy", "FastESM2_650 accuracy", "drop (ESM2 3B − FastESM2) [95 % CI]",
            "McNemar p", "test samples", "leakage"], rows


def group_table(evidence: Any) -> Table:
    return ["group", "class", "test samples", "ESM2 3B accuracy [95 % CI]", "FastESM2_650 accuracy [95 % CI]",
            "drop [95 % CI]"], [
        [g.group, g.classes, str(g.n), _acc(g.baseline_accuracy, g.baseline_ci), _acc(g.fast_accuracy, g.fast_ci),
         f"{_signed(g.drop)} {_ci(g.drop_ci)}"]
        for g in evidence.groups]


GROUPS_TEXT = ("Accuracy on the locked split's test samples of each group; in a one-class group it is the recall "
               "(viral) or specificity (host). Intervals: percentile bootstrap, 1,000 paired resamples.")


def level_table(evidence: Any) -> Table:
    return ["level", "rule", "calls", "ESM2 3B accuracy", "FastESM2_650 accuracy"], [
        [v.level, v.rule, str(v.n), f"{v.baseline_accuracy:.4f}", f"{v.fast_accuracy:.4f}"] for v in evidence.levels]


def calibration_text(evidence: Any) -> str:
    first = next(iter(evidence.calibration.values()))
    return (f"Locked split, frame level. Expected calibration error (ECE), {first.n_bins} equal-mass bins of test "
            "frames: the size-weighted mean over the bins of |viral fraction − mean viral score|. Precision and FDR "
            f"reweighted to a viral prevalence of {first.prevalence_text} (π = {first.prevalence:.4f}): viral frames "
            f"weigh π / n_viral, host frames (1 − π) / n_host; at the model's own calls (p_viral > 0.5). The "
            f"threshold is the lowest t (viral iff p_viral ≥ t) with reweighted FDR ≤ {first.max_fdr:g}.")


FILES_TEXT = ("The files the verdict was computed from, by content: each input as this run read it, the split "
              "manifest that names the test set, and the checkpoint each model's predictions came from. A view or "
              "cached stage is used only while the files it recorded still hold these bytes.")


def files_table(ctx: AcceptanceSession, shown: int | None = None) -> Table | None:
    """Inputs, the split manifest and the evaluated checkpoints with their SHA-256 (``shown``: inputs listed).

    Only digests this run computed are given: an input the run stopped before reading says so.
    """
    settings = ctx.settings
    if settings is None:
        return None
    rows = []
    for role, paths in (("viral input", settings.viral), ("host input", settings.host)):
        for number, path in enumerate(paths):
            if shown is not None and number == shown:
                rows.append([role, f"… {len(paths) - shown} more (all in acceptance.json)", ""])
                break
            rows.append([role, str(path), known_digest(path) or "not read: the run stopped before it"])
    results = ctx.results
    split = results.split if results is not None else None
    if split is not None:
        rows.append(["split manifest", str(split.paths.manifest), split.manifest.sha256])
    for embedder, name in EMBEDDER_NAMES.items():
        trained = results.trained.get(embedder) if results is not None else None
        if trained is not None:
            rows.append([f"{name} checkpoint (evaluated)", str(trained.final.path), trained.final.sha256 or ""])
    return ["file", "path", "sha256"], rows


def stage_table(ctx: AcceptanceSession) -> Table | None:
    if ctx.run is None or not ctx.run.stages:
        return None
    return ["stage", "status", "seconds"], [[s.stage, "reused" if s.reused else "built", f"{s.seconds:.1f}"]
                                            for s in ctx.run.stages]


def read_anything(ctx: AcceptanceSession) -> bool:
    """Whether the run built or reused a stage or timed a model: a run that broke or stopped before (a bad input,
    ``--require-gpu`` without a GPU) read nothing, and has no figures for the smoke notice to qualify."""
    return bool(ctx.timings) or bool(getattr(ctx.run, "stages", None))


def notice(ctx: AcceptanceSession) -> str | None:
    """The banner under the verdict: smoke profile (when the run read its bundled data) or random weights,
    another model (``--allow-other-model``) and each stage built by other code that was kept
    (``--reuse-stages-from-other-code``)."""
    notices = [SMOKE_NOTICE if ctx.smoke and read_anything(ctx) else
               RANDOM_NOTICE if not ctx.smoke and ctx.random_weights else None]
    if ctx.other_model:
        notices.append(f"{OTHER_MODEL_NOTICE} {ctx.other_model[0].upper()}{ctx.other_model[1:]}.")
    if ctx.other_code:
        notices.append(f"OTHER CODE: {ctx.other_code}.")
    comparison = ctx.results.comparison if ctx.results is not None else None
    if comparison is not None and comparison.undecided:
        notices.append(comparison.undecided_statement())
    return " ".join(text for text in notices if text) or None


def page_title(ctx: AcceptanceSession, verdict: Verdict) -> str:
    if ctx.smoke:
        return f"SMOKE PROFILE — VirNucPro FastESM2_650 acceptance — {verdict.status} (does not validate FastESM2_650)"
    return f"VirNucPro FastESM2_650 acceptance — {verdict.status} — {ctx.profile} profile"
