"""Metrics of many resamples at once (counts, one sort) equal sklearn's on each resampled array."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from virnucpro_core.evaluate.metrics import METRICS, _score_vector, bootstrap_intervals
from virnucpro_core.evaluate.resampled import COLUMNS, ResampledMetrics, counts_of

CONFUSION = ["accuracy", "precision", "recall", "f1", "mcc"]  # bit for bit
RANKING = ["roc_auc", "average_precision"]  # to rounding


def _case(n: int, seed: int, *, ties: bool):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    p_viral = np.clip(0.5 + (y_true - 0.5) * 0.3 + rng.normal(0, 0.25, n), 0, 1)
    if ties:
        p_viral = np.round(p_viral, 1)  # many equal scores, and exact 0.5s
    y_pred = (p_viral > 0.5).astype(int)
    return y_true, y_pred, p_viral


def _sklearn(y_true, y_pred, p_viral, rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.stack([_score_vector(y_true[i], y_pred[i], p_viral[i]) for i in rows])


@pytest.mark.parametrize("n, seed, ties", [(439, 0, False), (439, 1, True), (7, 2, True), (3, 3, False)])
def test_every_metric_equals_sklearn_on_the_resampled_arrays(n, seed, ties):
    y_true, y_pred, p_viral = _case(n, seed, ties=ties)
    rows = np.random.default_rng(seed).integers(0, n, size=(200, n))
    ours, reference = ResampledMetrics(y_true, y_pred, p_viral)(rows), _sklearn(y_true, y_pred, p_viral, rows)
    assert list(COLUMNS) == list(METRICS)
    for name in CONFUSION:
        k = COLUMNS.index(name)
        assert np.array_equal(ours[:, k], reference[:, k]), name
    for name in RANKING:
        k = COLUMNS.index(name)
        assert np.array_equal(np.isnan(ours[:, k]), np.isnan(reference[:, k])), f"{name}: one-class resamples"
        assert np.allclose(ours[:, k], reference[:, k], rtol=0, atol=1e-12, equal_nan=True), name
    if n <= 7:
        assert np.isnan(ours[:, COLUMNS.index("roc_auc")]).any(), "small n: some resamples hold one class"


def test_counts_are_how_often_each_sample_is_drawn():
    rows = np.array([[0, 0, 2], [1, 2, 2]])
    assert counts_of(rows, 3).tolist() == [[2, 0, 1], [0, 1, 2]]


def test_intervals_match_the_per_resample_loop():
    y_true, y_pred, p_viral = _case(439, 5, ties=True)
    fast = bootstrap_intervals(y_true, y_pred, p_viral, n_bootstrap=300, seed=42)
    from virnucpro_core.evaluate import bootstrap

    values = bootstrap.resampled(lambda rows: _sklearn(y_true, y_pred, p_viral, rows), len(y_true),
                                 n_resamples=300, seed=42)
    for k, name in enumerate(METRICS):
        column = values[:, k][~np.isnan(values[:, k])]
        low, high = bootstrap.percentile_interval(column, 0.95)
        assert fast[name].n_resamples == len(column)
        assert abs(fast[name].low - low) <= 1e-12 and abs(fast[name].high - high) <= 1e-12, name
