"""Figures: valid PNGs, byte-identical on a rerun whatever the caller's matplotlib style, written atomically."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from virnucpro_core.compare import figures
from virnucpro_core.split.records import LengthHistogram
from virnucpro_core.evaluate.metrics import Evaluation, evaluate
from virnucpro_core.evaluate.predictions import Predictions

NAMES = ["FastESM2_650", "ESM2 3B"]


def preds(shift: float) -> Predictions:
    rng = np.random.default_rng(0)
    y = np.repeat([1, 0], 30)
    logits = np.column_stack([np.zeros(60), rng.normal(size=60) + shift * (2 * y - 1)])
    ids = [f"r{i // 3}_chunk_{i}F1" for i in range(60)]
    return Predictions.from_logits(ids, logits, y, rng.integers(10, 170, 60))


@pytest.fixture(scope="module")
def models():
    fast, base = preds(1.0), preds(1.5)
    return fast, base, evaluate(fast, n_bootstrap=0), evaluate(base, n_bootstrap=0)


class History:
    """Stands in for TrainingHistory: the attributes the figures read."""

    train_loss = [0.7, 0.5, 0.4, 0.38]
    val_loss = [0.72, 0.55, 0.5, 0.52]
    best_epoch = 3


def all_figures(models) -> dict[str, bytes]:
    fast, base, fast_eval, base_eval = models
    return {
        "confusion": figures.confusion_matrices_png(fast_eval, base_eval, NAMES),
        "confusion_metrics_only": figures.confusion_matrices_png(fast_eval, Evaluation.from_dict({"accuracy": 0.9}),
                                                                 NAMES),
        "roc_pr": figures.roc_pr_curves_png(fast, base, NAMES),
        "roc_pr_fast_only": figures.roc_pr_curves_png(fast, None, NAMES),
        "loss": figures.loss_curves_png({"FastESM2_650": ([0.7, 0.6, 0.55], [0.8, 0.7, 0.72], 2),
                                         "ESM2 3B": History()}),
        "lengths": figures.length_histogram_png(LengthHistogram.of(list(range(10, 170)), [15, 60, 99, 120])),
        "lengths_none": figures.length_histogram_png(LengthHistogram.of([0, 0], [])),
    }


def test_figures_are_png_and_deterministic(models):
    first = all_figures(models)
    with matplotlib.rc_context({"lines.linewidth": 6, "font.size": 20, "axes.facecolor": "black"}):
        second = all_figures(models)  # a caller's style must not leak into the report
    for name, data in first.items():
        assert data.startswith(figures.PNG_MAGIC), f"{name} is not a PNG"
        assert b"Software" not in data[:4096], f"{name} carries a Software text chunk"
        assert second[name] == data, f"{name} changed between two identical calls"


def test_path_is_written_atomically(tmp_path, models):
    fast, base, _, _ = models
    target = tmp_path / "sub" / "roc.png"
    data = figures.roc_pr_curves_png(fast, base, NAMES, path=target)
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == ["roc.png"], "no temporary file left behind"


def test_write_figures_names_files(tmp_path, models):
    fast, base, fast_eval, base_eval = models
    written = figures.write_figures(tmp_path, fast_eval=fast_eval, baseline_eval=base_eval, fast_preds=fast,
                                    baseline_preds=base, histories={"FastESM2_650": History()},
                                    train_lengths=[10, 20, 30], test_lengths=[15, 25])
    assert set(written) == set(figures.FIGURE_FILES)
    for key, path in written.items():
        assert path.name == figures.FIGURE_FILES[key]
        assert path.read_bytes().startswith(figures.PNG_MAGIC), key


def test_speed_rounds_figure_is_a_png_of_every_round(tmp_path):
    png = figures.speed_rounds_png({"as-deployed": {"FastESM2_650": [0.2, 0.3, 0.2], "ESM2 3B": [1.3, 20.95, 1.3]},
                                    "like-for-like": {"FastESM2_650": [0.2, 0.2, 0.2], "ESM2 3B": [1.0, 1.1, 1.0]}},
                                   tmp_path / "rounds.png")
    assert png.startswith(b"\x89PNG") and (tmp_path / "rounds.png").read_bytes() == png
    assert figures.speed_rounds_png({}).startswith(b"\x89PNG")


def test_figures_write_negative_numbers_with_the_minus_sign_whatever_the_callers_style():
    """Tick labels of negative values use U+2212 (matplotlib's axes.unicode_minus), as the reports' tables do."""
    seen = {}

    def fill(figure):
        seen["unicode_minus"] = matplotlib.rcParams["axes.unicode_minus"]
        axes = figure.subplots()
        axes.plot([-1.0, 1.0], [-0.5, 0.5])
        figure.canvas.draw()
        seen["ticks"] = [label.get_text() for label in axes.get_xticklabels()]

    with matplotlib.rc_context({"axes.unicode_minus": False}):
        figures._render(fill, (3.0, 2.0), None)
    assert seen["unicode_minus"] is True
    negative = [t for t in seen["ticks"] if t.startswith(("−", "-"))]
    assert negative and all(t.startswith("−") for t in negative), seen["ticks"]


def test_the_rounds_figure_names_esm2_3b_first_and_each_model_keeps_its_colour(monkeypatch):
    drawn = {}
    real = figures._render

    def keep(fill, size, path):
        def spy(figure):
            fill(figure)
            axes = figure.axes[0]
            drawn["legend"] = [text.get_text() for text in axes.get_legend().get_texts()]
            drawn["colours"] = {line.get_label(): line.get_color() for line in axes.get_lines()
                                if not line.get_label().startswith("_")}
        return real(spy, size, path)

    monkeypatch.setattr(figures, "_render", keep)
    figures.speed_rounds_png({"as-deployed": {"FastESM2_650": [0.2, 0.3, 0.2], "ESM2 3B": [1.3, 1.4, 1.3]}})
    assert drawn["legend"][:2] == ["ESM2 3B", "FastESM2_650"], drawn["legend"]
    assert drawn["colours"]["FastESM2_650"] == "tab:orange" and drawn["colours"]["ESM2 3B"] == "tab:blue"


def test_the_length_histogram_keeps_both_sides_counts_over_shared_bins():
    train, test = [0, 10, 20, 20, 30, 40, 150], [15, 25, 0]
    histogram = LengthHistogram.of(train, test)
    edges = np.histogram_bin_edges([10, 20, 20, 30, 40, 150, 15, 25], bins="auto")
    assert histogram.edges == edges.tolist()  # length 0 (not recorded) left out of both sides
    assert histogram.train == np.histogram([10, 20, 20, 30, 40, 150], edges)[0].tolist() and sum(histogram.train) == 6
    assert sum(histogram.test) == 2 and histogram.train_median == 25.0 and histogram.test_median == 20.0
    assert LengthHistogram.of([], [0]).edges == []
