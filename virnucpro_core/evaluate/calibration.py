"""Calibration and realistic prevalence: are the viral scores probabilities, and what does a call mean in a metagenome?

The test set is balanced (about 1:1 viral:host frames); a metagenome is not.
For each model this computes, on the frame-level test predictions:

* the Brier score, ``mean((p_viral - y)^2)``;
* the expected calibration error over **equal-mass** bins: the frames sorted
  by ``p_viral`` (stable sort) and cut into ``n_bins`` groups of sizes differing
  by at most one (``numpy.array_split``); ECE = Σ_b (n_b / n) · |mean(y)_b −
  mean(p)_b|. The bins also give the reliability diagram;
* precision and false-discovery rate at a viral prevalence ``π`` (default 1:19
  viral:non-viral, π = 0.05) by reweighting the test set: each viral frame
  weighs ``π / n_viral``, each host frame ``(1 − π) / n_host``, so precision =
  TPR·π / (TPR·π + FPR·(1 − π));
* the lowest threshold ``t`` (call viral iff ``p_viral ≥ t``) whose reweighted
  FDR is ≤ ``max_fdr`` (default 5 %), with the recall it keeps — the most
  sensitive threshold that meets the FDR target; None when no threshold does.

The model's own calls (arg-max, ``p_viral > 0.5``) give the "at the default
threshold" figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from virnucpro_core.defaults import VIRAL_PREVALENCE
from virnucpro_core.errors import InputError

DEFAULT_BINS = 10
DEFAULT_PREVALENCE = VIRAL_PREVALENCE
DEFAULT_MAX_FDR = 0.05


def parse_prevalence(text: str | float) -> float:
    """Viral prevalence π from ``"1:19"`` (viral:non-viral) or a fraction in (0, 1)."""
    try:
        if isinstance(text, str) and ":" in text:
            viral, other = (Fraction(part.strip()) for part in text.split(":"))
            # Both parts are counts: -1:-19 gives 1/20 as a fraction, and is no prevalence.
            value = float(viral / (viral + other)) if viral > 0 and other > 0 else float("nan")
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise InputError(f"viral prevalence {text!r} is not usable", expected="viral:non-viral such as 1:19, or a "
                         "fraction strictly between 0 and 1 such as 0.05", fix="pass e.g. --viral-prevalence 1:19")
    return value


def brier_score(y_true: np.ndarray, p_viral: np.ndarray) -> float:
    y, p = np.asarray(y_true, dtype=np.float64), np.asarray(p_viral, dtype=np.float64)
    return float(np.mean((p - y) ** 2))


@dataclass
class ReliabilityBin:
    """One equal-mass bin: its score range, size, mean score and observed viral fraction."""

    low: float
    high: float
    n: int
    mean_p_viral: float
    viral_fraction: float


def reliability_bins(y_true: np.ndarray, p_viral: np.ndarray, n_bins: int = DEFAULT_BINS) -> list[ReliabilityBin]:
    """Equal-mass bins of the frames sorted by score (sizes differ by at most one); empty bins left out."""
    if n_bins < 1:
        raise InputError(f"{n_bins} calibration bins", expected="at least 1 bin, e.g. 10", fix="pass --ece-bins 10")
    y, p = np.asarray(y_true, dtype=np.float64), np.asarray(p_viral, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    return [ReliabilityBin(float(p[idx].min()), float(p[idx].max()), int(len(idx)), float(p[idx].mean()),
                           float(y[idx].mean()))
            for idx in np.array_split(order, n_bins) if len(idx)]


def expected_calibration_error(y_true: np.ndarray, p_viral: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    bins = reliability_bins(y_true, p_viral, n_bins)
    n = sum(b.n for b in bins)
    return float(sum(b.n / n * abs(b.viral_fraction - b.mean_p_viral) for b in bins))


def reweighted_rates(y_true: np.ndarray, called: np.ndarray, prevalence: float) -> dict[str, float]:
    """Precision, FDR and recall of the ``called`` frames when viral frames make up ``prevalence`` of the data."""
    y, c = np.asarray(y_true).astype(bool), np.asarray(called).astype(bool)
    n_viral, n_host = int(y.sum()), int((~y).sum())
    if not n_viral or not n_host:
        raise InputError("prevalence reweighting needs both classes", found=f"{n_viral} viral, {n_host} host frames")
    tpr = float((c & y).sum() / n_viral)
    fpr = float((c & ~y).sum() / n_host)
    positive = tpr * prevalence + fpr * (1.0 - prevalence)
    precision = tpr * prevalence / positive if positive > 0 else float("nan")
    return {"precision": precision, "fdr": 1.0 - precision if positive > 0 else float("nan"), "recall": tpr,
            "false_positive_rate": fpr}


def fdr_threshold(y_true: np.ndarray, p_viral: np.ndarray, prevalence: float, max_fdr: float = DEFAULT_MAX_FDR
                  ) -> dict[str, float] | None:
    """The lowest ``t`` (viral iff ``p_viral ≥ t``) with reweighted FDR ≤ ``max_fdr``, its FDR and recall; or None."""
    y, p = np.asarray(y_true).astype(bool), np.asarray(p_viral, dtype=np.float64)
    n_viral, n_host = int(y.sum()), int((~y).sum())
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    tp, fp = np.cumsum(y_sorted), np.cumsum(~y_sorted)
    last = np.r_[np.flatnonzero(np.diff(p_sorted) != 0), len(p_sorted) - 1]  # the last frame of each distinct score
    tpr, fpr = tp[last] / n_viral, fp[last] / n_host
    positive = tpr * prevalence + fpr * (1.0 - prevalence)
    fdr = np.where(positive > 0, fpr * (1.0 - prevalence) / np.where(positive > 0, positive, 1.0), 1.0)
    ok = np.flatnonzero((fdr <= max_fdr) & (tp[last] > 0))
    if not len(ok):
        return None
    best = ok[-1]  # thresholds fall along `last`: the lowest qualifying one keeps the most recall
    return {"threshold": float(p_sorted[last[best]]), "fdr": float(fdr[best]), "recall": float(tpr[best])}


@dataclass
class Calibration:
    """One model's calibration and prevalence-adjusted figures on the test frames (see the module docstring)."""

    model: str
    n: int
    brier: float
    ece: float
    n_bins: int
    bins: list[ReliabilityBin]
    prevalence: float
    prevalence_text: str
    at_default: dict[str, float]
    max_fdr: float
    fdr_threshold: dict[str, float] | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibrate(model: str, y_true: np.ndarray, p_viral: np.ndarray, y_pred: np.ndarray, *,
              n_bins: int = DEFAULT_BINS, prevalence: str | float = DEFAULT_PREVALENCE,
              max_fdr: float = DEFAULT_MAX_FDR) -> Calibration:
    """Every figure of this module for one model's frame-level test predictions."""
    pi = parse_prevalence(prevalence)
    return Calibration(
        model=model, n=len(y_true), brier=brier_score(y_true, p_viral),
        ece=expected_calibration_error(y_true, p_viral, n_bins), n_bins=n_bins,
        bins=reliability_bins(y_true, p_viral, n_bins), prevalence=pi, prevalence_text=str(prevalence),
        at_default=reweighted_rates(y_true, y_pred, pi), max_fdr=max_fdr,
        fdr_threshold=fdr_threshold(y_true, p_viral, pi, max_fdr),
    )


def calibration_table(calibrations: Mapping[str, Calibration]) -> tuple[list[str], list[list[str]]]:
    """Report rows, one per model; the ECE's bins are said once, in its header."""
    bins = sorted({c.n_bins for c in calibrations.values()})
    header = ["model", "Brier", f"ECE ({', '.join(map(str, bins))} equal-mass bins)", "precision at prevalence",
              "FDR at prevalence", "recall", "threshold for FDR ≤ target", "recall at that threshold"]
    rows = []
    for name, c in calibrations.items():
        t = c.fdr_threshold
        rows.append([name, f"{c.brier:.4f}", f"{c.ece:.4f}",
                     f"{c.at_default['precision']:.4f}", f"{c.at_default['fdr']:.4f}",
                     f"{c.at_default['recall']:.4f}",
                     f"{t['threshold']:.4f} (FDR {t['fdr']:.4f})" if t else f"none reaches FDR ≤ {c.max_fdr:g}",
                     f"{t['recall']:.4f}" if t else "—"])
    return header, rows
