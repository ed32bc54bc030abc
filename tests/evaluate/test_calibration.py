"""Calibration figures against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from virnucpro_core.evaluate.calibration import (
    brier_score,
    calibrate,
    calibration_table,
    expected_calibration_error,
    fdr_threshold,
    parse_prevalence,
    reliability_bins,
    reweighted_rates,
)
from virnucpro_core.errors import InputError

Y = np.array([1, 1, 0, 1, 0, 0])
P = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.1])


def test_brier_by_hand():
    # (0.1² + 0.2² + 0.7² + 0.4² + 0.3² + 0.1²) / 6 = 0.80 / 6
    assert brier_score(Y, P) == pytest.approx(0.80 / 6)


def test_ece_equal_mass_bins_by_hand():
    # sorted p 0.1 0.3 0.6 | 0.7 0.8 0.9 with y 0 0 1 | 0 1 1: |1/3 - 1/3| and |2/3 - 0.8| -> ECE = 0.5 * 0.1333
    assert expected_calibration_error(Y, P, 2) == pytest.approx(0.5 * (0.8 - 2 / 3))
    # three bins: |0 - 0.2|, |0.5 - 0.65|, |1 - 0.85| -> mean 0.5 / 3
    assert expected_calibration_error(Y, P, 3) == pytest.approx(0.5 / 3)
    bins = reliability_bins(Y, P, 3)
    assert [b.n for b in bins] == [2, 2, 2] and [b.viral_fraction for b in bins] == [0.0, 0.5, 1.0]
    assert [b.n for b in reliability_bins(Y, P, 4)] == [2, 2, 1, 1]  # sizes differ by at most one
    with pytest.raises(InputError, match="bins"):
        reliability_bins(Y, P, 0)


def test_prevalence_reweighting_by_hand():
    assert parse_prevalence("1:19") == pytest.approx(0.05) and parse_prevalence(0.25) == 0.25
    with pytest.raises(InputError, match="1:19"):
        parse_prevalence("0:5")
    # Calls p > 0.5: TP 3 of 3 viral, FP 1 of 3 host. At 1:3 (pi = 0.25): precision = 0.25 / (0.25 + 1/3 * 0.75) = 0.5.
    rates = reweighted_rates(Y, P > 0.5, 0.25)
    assert rates["precision"] == pytest.approx(0.5) and rates["fdr"] == pytest.approx(0.5)
    assert rates["recall"] == 1.0 and rates["false_positive_rate"] == pytest.approx(1 / 3)
    # At 1:19: 0.05 / (0.05 + 0.95 / 3) = 0.13636...
    assert reweighted_rates(Y, P > 0.5, 0.05)["precision"] == pytest.approx(0.05 / (0.05 + 0.95 / 3))
    # Explicit weights give the same: viral frames weigh pi / 3, host frames (1 - pi) / 3.
    w = np.where(Y == 1, 0.25 / 3, 0.75 / 3)
    called = P > 0.5
    assert (w * (called & (Y == 1))).sum() / (w * called).sum() == pytest.approx(rates["precision"])


def test_fdr_threshold_by_hand():
    # At pi = 0.25: t = 0.8 calls 2 viral, 0 host (FDR 0); t = 0.7 adds a host frame: FDR = 0.25 / (1/6 + 1/4) = 0.6.
    assert fdr_threshold(Y, P, 0.25, 0.05) == {"threshold": 0.8, "fdr": 0.0, "recall": pytest.approx(2 / 3)}
    assert fdr_threshold(Y, P, 0.25, 0.5) == {"threshold": 0.6, "fdr": pytest.approx(0.5), "recall": 1.0}
    assert fdr_threshold(np.array([0, 1]), np.array([0.9, 0.1]), 0.05, 0.05) is None  # no threshold gets there


def test_calibrate_bundles_the_figures():
    c = calibrate("m", Y, P, (P > 0.5).astype(int), n_bins=3, prevalence="1:3")
    assert c.prevalence == pytest.approx(0.25) and c.ece == pytest.approx(0.5 / 3)
    assert c.to_dict()["fdr_threshold"]["threshold"] == 0.8


def test_the_table_says_the_eces_bins_once_in_its_header_and_the_text_spells_ece_out():
    from types import SimpleNamespace

    from virnucpro_core.gate.acceptance_report import calibration_text

    both = {name: calibrate(name, Y, P, (P > 0.5).astype(int), n_bins=3) for name in ("ESM2 3B", "FastESM2_650")}
    header, rows = calibration_table(both)
    assert header[2] == "ECE (3 equal-mass bins)", header
    assert [row[2] for row in rows] == [f"{0.5 / 3:.4f}"] * 2, "a cell holds the number alone"
    text = calibration_text(SimpleNamespace(calibration=both))
    assert "Expected calibration error (ECE), 3 equal-mass bins" in text and text.count("ECE") == 1, text
