"""Figures of the comparison as PNG bytes: confusion matrices, ROC and PR curves, loss curves, length histogram.

Each function returns the PNG's bytes (for the HTML report, base64) and, with
``path``, also writes them atomically. Rendering uses matplotlib's object API
on an Agg canvas: pyplot is never imported, so no GUI backend is touched and
no global figure state is shared (safe in pytest, threads and headless
machines). Output is deterministic: matplotlib's default style whatever the
caller's rcParams, and no ``Software`` text chunk (PNG carries no timestamp).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn import metrics as skm
from sklearn.metrics import ConfusionMatrixDisplay

from virnucpro_core.files import atomic_path
from virnucpro_core.defaults import COMPARE_NAMES
from virnucpro_core.evaluate.metrics import Evaluation
from virnucpro_core.evaluate.predictions import VIRAL, Predictions
from virnucpro_core.paths import FIGURE_FILES
from virnucpro_core.split.records import LengthHistogram

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DPI = 100
FIGURE_TITLES = {
    "confusion": "Confusion matrices (test set, frame level)",
    "roc_pr": "ROC and precision-recall curves (test set, frame level)",
    "loss": "Training and validation loss",
    "lengths": "Protein lengths of the training and test sets",
}
_RC = {"font.size": 10, "axes.titlesize": 11, "figure.dpi": DPI, "savefig.dpi": DPI}
_COLORS = ("tab:orange", "tab:blue")  # first model, second model


def _render(fill, size: tuple[float, float], path: str | Path | None) -> bytes:
    """Draw with ``fill(figure)`` under matplotlib's default style and return PNG bytes."""
    with matplotlib.rc_context():
        matplotlib.rcdefaults()  # undone when the context exits; the caller's style never leaks in
        matplotlib.rcParams.update(_RC)
        figure = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(figure)
        fill(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    data = buffer.getvalue()
    if path is not None:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    return data


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


# --------------------------------------------------------------------------- confusion matrices


def confusion_matrices_png(
    fast_eval: Evaluation,
    baseline_eval: Evaluation | None,
    names: Sequence[str],
    path: str | Path | None = None,
) -> bytes:
    """Both models' 2×2 confusion matrices side by side (counts; rows true, columns predicted), baseline first.

    ``names``: ``(FastESM2's, the baseline's)``, as the other figures take them.
    """
    evaluations = [baseline_eval, fast_eval]  # one model order everywhere: the baseline (ESM2 3B) first

    def fill(figure: Figure) -> None:
        axes = figure.subplots(1, 2)
        for ax, evaluation, name in zip(axes, evaluations, list(names)[::-1]):
            if evaluation is None or evaluation.confusion_matrix is None:
                _empty(ax, f"{name}:\nno confusion matrix\n(metrics file only)")
                ax.set_title(name)
                continue
            matrix = np.asarray(evaluation.confusion_matrix)
            display = ConfusionMatrixDisplay(matrix, display_labels=["host (0)", "viral (1)"])
            display.plot(ax=ax, cmap="Blues", colorbar=False, values_format="d")
            ax.set_title(f"{name}\naccuracy {evaluation.accuracy:.4f}, n = {evaluation.n}")
            ax.set_xlabel("predicted class")
            ax.set_ylabel("true class")
        figure.suptitle(FIGURE_TITLES["confusion"])

    return _render(fill, (9.0, 4.2), path)


# --------------------------------------------------------------------------- ROC / PR


def roc_pr_curves_png(
    fast_preds: Predictions,
    baseline_preds: Predictions | None,
    names: Sequence[str],
    path: str | Path | None = None,
) -> bytes:
    """ROC (left) and precision-recall (right) curves of both models, AUCs in the legends; viral is positive."""
    models = [(p, name, color) for p, name, color in zip((fast_preds, baseline_preds), names, _COLORS) if p is not None]
    models.reverse()  # the baseline (ESM2 3B) first in the legends, as in every table; each keeps its colour

    def fill(figure: Figure) -> None:
        roc_ax, pr_ax = figure.subplots(1, 2)
        for preds, name, color in models:
            fpr, tpr, _ = skm.roc_curve(preds.y_true, preds.p_viral, pos_label=VIRAL)
            auc = skm.roc_auc_score(preds.y_true, preds.p_viral)
            roc_ax.plot(fpr, tpr, color=color, label=f"{name} (ROC-AUC = {auc:.4f})")
            precision, recall, _ = skm.precision_recall_curve(preds.y_true, preds.p_viral, pos_label=VIRAL)
            ap = skm.average_precision_score(preds.y_true, preds.p_viral, pos_label=VIRAL)
            pr_ax.plot(recall, precision, color=color, drawstyle="steps-post", label=f"{name} (AP = {ap:.4f})")
        roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
        roc_ax.set(xlabel="false positive rate (host called viral)", ylabel="true positive rate (viral recall)",
                   title="ROC curve", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
        if models:
            prevalence = float(np.mean(models[0][0].y_true == VIRAL))
            pr_ax.axhline(prevalence, color="grey", linestyle=":", label=f"chance (viral share {prevalence:.2f})")
        pr_ax.set(xlabel="recall (viral)", ylabel="precision (viral)", title="Precision-recall curve",
                  xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
        roc_ax.legend(loc="lower right", fontsize=8)
        pr_ax.legend(loc="lower left", fontsize=8)
        figure.suptitle(FIGURE_TITLES["roc_pr"])

    return _render(fill, (10.0, 4.6), path)


# --------------------------------------------------------------------------- loss curves


def _history_tuple(history: Any) -> tuple[list[float], list[float], int | None]:
    """``(train_loss, val_loss, best_epoch)`` from a tuple or a TrainingHistory-like object."""
    if hasattr(history, "train_loss"):
        return list(history.train_loss), list(history.val_loss), getattr(history, "best_epoch", None)
    train, val, best = history
    return list(train), list(val), best


def loss_curves_png(histories: Mapping[str, Any], path: str | Path | None = None) -> bytes:
    """Training and validation loss per epoch, one panel per model, the best (early-stopping) epoch marked.

    Args:
        histories: model name → ``(train_loss, val_loss, best_epoch)`` (epochs 1-based)
            or a :class:`~virnucpro_core.train.training.TrainingHistory`.
    """
    items = [(name, *_history_tuple(h)) for name, h in histories.items()]

    def fill(figure: Figure) -> None:
        axes = np.atleast_1d(figure.subplots(1, max(len(items), 1), sharey=True, squeeze=False)[0])
        if not items:
            _empty(axes[0], "no training history")
        for ax, (name, train, val, best) in zip(axes, items):
            ax.plot(range(1, len(train) + 1), train, color="tab:blue", marker=".", label="training")
            ax.plot(range(1, len(val) + 1), val, color="tab:orange", marker=".", linestyle="--", label="validation")
            if best:
                ax.axvline(best, color="grey", linestyle=":", label=f"best validation epoch {best}")
            ax.set(title=name, xlabel="epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=8)
        axes[0].set_ylabel("cross-entropy loss (mean per sample)")
        figure.suptitle(FIGURE_TITLES["loss"])

    return _render(fill, (5.0 * max(len(items), 1) + 0.5, 4.2), path)


# --------------------------------------------------------------------------- speed-gate rounds


def speed_rounds_png(rounds: Mapping[str, Mapping[str, list[float]]], path: str | Path | None = None) -> bytes:
    """Every timed round of the speed gate, one panel per pairing, one line per model, its mean dashed.

    Args:
        rounds: pairing → model name → seconds per timed round (in the order they ran, interleaved).
    """
    items = list(rounds.items())

    def fill(figure: Figure) -> None:
        axes = np.atleast_1d(figure.subplots(1, max(len(items), 1), sharey=True, squeeze=False)[0])
        if not items:
            _empty(axes[0], "no timed rounds")
        for ax, (pairing, models) in zip(axes, items):
            # FastESM2 first in ``rounds`` keeps its colour; the baseline (ESM2 3B) comes first in the legend.
            for color, (name, runs) in reversed(list(zip(_COLORS, models.items()))):
                ax.plot(range(1, len(runs) + 1), runs, color=color, marker="o", label=name)
                if runs:
                    ax.axhline(sum(runs) / len(runs), color=color, linestyle="--", linewidth=1)
            ax.set(title=pairing, xlabel="timed round (after the warm-up)", ylim=(0, None))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=8)
        axes[0].set_ylabel("seconds (dashed: mean)")
        figure.suptitle("Speed-gate rounds (the two models interleaved)")

    return _render(fill, (4.5 * max(len(items), 1) + 0.5, 3.6), path)


# --------------------------------------------------------------------------- calibration


def reliability_png(calibrations: Mapping[str, Any], path: str | Path | None = None) -> bytes:
    """Reliability diagram: observed viral fraction against mean viral score per equal-mass bin, one line per model.

    Args:
        calibrations: model name → :class:`~virnucpro_core.evaluate.calibration.Calibration`.
    """
    items = list(calibrations.items())

    def fill(figure: Figure) -> None:
        ax = figure.subplots()
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
        for colour, (name, c) in zip(_COLORS, items):
            ax.plot([b.mean_p_viral for b in c.bins], [b.viral_fraction for b in c.bins], color=colour, marker="o",
                    label=f"{name} (ECE {c.ece:.3f}, Brier {c.brier:.3f})")
        bins = items[0][1].n_bins if items else 0
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean viral score in the bin",
               ylabel="viral fraction of the bin's test frames",
               title=f"Reliability, {bins} equal-mass bins of test frames")
        ax.legend(fontsize=8, loc="upper left")

    return _render(fill, (5.5, 4.6), path)


# --------------------------------------------------------------------------- lengths


def length_histogram_png(histogram: LengthHistogram, path: str | Path | None = None) -> bytes:
    """Protein-length distributions of training and test samples (share of each set, shared bins), drawn from a
    split summary's :class:`~virnucpro_core.split.records.LengthHistogram` (its counts, not the lengths again)."""
    edges = np.asarray(histogram.edges, dtype=float)

    def fill(figure: Figure) -> None:
        ax = figure.subplots()
        if len(edges) < 2:
            _empty(ax, "no protein lengths recorded")
        else:
            sides = ((histogram.train, histogram.train_median, "training", "tab:blue"),
                     (histogram.test, histogram.test_median, "test", "tab:orange"))
            for counts, median, name, color in sides:
                n = int(sum(counts))
                if n:
                    ax.stairs(np.asarray(counts, dtype=float) / n, edges, linewidth=1.8, color=color,  # share of the set
                              label=f"{name} (n = {n}, median {median:g})")
            ax.legend(fontsize=8)
        ax.set(xlabel="protein length (residues)", ylabel="share of the set's samples", title=FIGURE_TITLES["lengths"])

    return _render(fill, (7.0, 4.2), path)


# --------------------------------------------------------------------------- all of them


def write_figures(
    directory: str | Path,
    *,
    fast_eval: Evaluation,
    baseline_eval: Evaluation | None,
    fast_preds: Predictions | None = None,
    baseline_preds: Predictions | None = None,
    names: Sequence[str] = COMPARE_NAMES,
    histories: Mapping[str, Any] | None = None,
    train_lengths: Sequence[int] | None = None,
    test_lengths: Sequence[int] | None = None,
) -> dict[str, Path]:
    """Write every figure the inputs allow into ``directory`` (names in :data:`FIGURE_FILES`)."""
    directory = Path(directory)
    written = {}
    target = directory / FIGURE_FILES["confusion"]
    confusion_matrices_png(fast_eval, baseline_eval, names, target)
    written["confusion"] = target
    if fast_preds is not None:
        target = directory / FIGURE_FILES["roc_pr"]
        roc_pr_curves_png(fast_preds, baseline_preds, names, target)
        written["roc_pr"] = target
    if histories:
        target = directory / FIGURE_FILES["loss"]
        loss_curves_png(histories, target)
        written["loss"] = target
    if train_lengths is not None and test_lengths is not None:
        target = directory / FIGURE_FILES["lengths"]
        length_histogram_png(LengthHistogram.of(train_lengths, test_lengths), target)
        written["lengths"] = target
    return written
