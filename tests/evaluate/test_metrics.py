"""Metrics of one model: hand-computed values on 8 samples, the per-chunk rule, bootstrap CIs, files, errors."""

from __future__ import annotations

import json

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from virnucpro_core.evaluate.aggregation import aggregate_chunks
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.evaluate.metrics import METRICS, Evaluation, bootstrap_intervals, evaluate, length_breakdown
from virnucpro_core.evaluate.predictions import Predictions

# Eight frames, hand-labelled. TP: 0, 2, 3; FN: 1; FP: 4; TN: 5, 6, 7.
IDS = [
    "v1_chunk_1F1", "v1_chunk_1R1", "v1_chunk_2F1", "v2_chunk_1F2",
    "h1_chunk_1F1", "h1_chunk_1R3", "h1_chunk_2F1", "h2_chunk_1F1",
]
Y_TRUE = [1, 1, 1, 1, 0, 0, 0, 0]
P_VIRAL = [0.9, 0.4, 0.8, 0.7, 0.6, 0.2, 0.3, 0.1]
LENGTHS = [10, 30, 30, 60, 10, 120, 400, 60]


def eight() -> Predictions:
    return Predictions(IDS, Y_TRUE, P_VIRAL, [int(p > 0.5) for p in P_VIRAL], LENGTHS, meta={"model": "test"})


def test_hand_computed_metrics():
    e = evaluate(eight(), n_bootstrap=0)
    # TP=3 FN=1 FP=1 TN=3.
    assert e.confusion_matrix == [[3, 1], [1, 3]], "rows true host/viral, columns predicted host/viral"
    assert (e.tn, e.fp, e.fn, e.tp) == (3, 1, 1, 3)
    assert (e.n, e.n_viral, e.n_host) == (8, 4, 4)
    assert e.accuracy == pytest.approx(6 / 8)
    assert e.precision == pytest.approx(3 / 4)
    assert e.recall == pytest.approx(3 / 4)
    assert e.f1 == pytest.approx(3 / 4)
    # (TP*TN - FP*FN) / sqrt(4*4*4*4) = (9 - 1) / 16
    assert e.mcc == pytest.approx(0.5)
    # 15 of the 16 (viral, host) pairs are ranked right: only 0.4 < 0.6 is not.
    assert e.roc_auc == pytest.approx(15 / 16)
    # Ranked: P P P N P N N N -> 1/4 * (1 + 1 + 1 + 4/5)
    assert e.average_precision == pytest.approx(0.95)
    assert e.ci == {}, "n_bootstrap=0 gives no intervals"


def test_metric_accessor_lists_names_on_typo():
    e = evaluate(eight(), n_bootstrap=0)
    assert e.metric("roc_auc") == e.roc_auc
    with pytest.raises(KeyError, match="accuracy"):
        e.metric("auc")


def test_chunk_calls_follow_virnucpro_rule():
    e8 = eight()
    chunks = aggregate_chunks(e8.ids, e8.p_viral, y_true=e8.y_true)
    assert chunks.ids == ["v1_chunk_1", "v1_chunk_2", "v2_chunk_1", "h1_chunk_1", "h1_chunk_2", "h2_chunk_1"]
    assert chunks.n_frames.tolist() == [2, 1, 1, 2, 1, 1]
    # v1_chunk_1: max p_viral 0.9 >= max p_host 0.6 -> viral, although its R1 frame alone is a false negative.
    # h1_chunk_1: max p_viral 0.6 < max p_host 0.8 -> host.
    assert chunks.y_pred.tolist() == [1, 1, 1, 0, 0, 0]
    assert chunks.max_p_viral[0] == pytest.approx(0.9) and chunks.max_p_host[0] == pytest.approx(0.6)
    e = evaluate(eight(), n_bootstrap=0)
    assert e.chunks.n_chunks == 6 and e.chunks.n_frames == 8
    assert e.chunks.accuracy == 1.0 and e.chunks.confusion_matrix == [[3, 0], [0, 3]]


def test_chunk_tie_is_viral_frame_tie_is_host():
    # Chunk A: frames 0.25 and 0.75 -> max p_viral 0.75 == max p_host 0.75 -> viral (>=).
    # Chunk B: frames 0.25 and 0.625 -> 0.625 < 0.75 -> host.
    p = Predictions(["a_chunk_1F1", "a_chunk_1R1", "b_chunk_1F1", "b_chunk_1R1"], [1, 1, 0, 0],
                    [0.25, 0.75, 0.25, 0.625], [0, 1, 0, 1], [5, 5, 5, 5])
    assert aggregate_chunks(p.ids, p.p_viral, y_true=p.y_true).y_pred.tolist() == [1, 0]
    # A single frame at exactly 0.5 is a tie: viral as a chunk, host as a frame (arg-max picks class 0).
    tie = Predictions.from_logits(["c_chunk_1F1"], [[0.0, 0.0]], [1], [5])
    assert tie.p_viral[0] == 0.5 and tie.y_pred[0] == 0
    assert aggregate_chunks(tie.ids, tie.p_viral, y_true=tie.y_true).y_pred.tolist() == [1]


def test_chunk_with_mixed_labels_is_an_error():
    p = Predictions(["a_chunk_1F1", "a_chunk_1R1"], [1, 0], [0.5, 0.5], [0, 0], [1, 1])
    with pytest.raises(InputError, match="a_chunk_1"):
        aggregate_chunks(p.ids, p.p_viral, y_true=p.y_true)


def test_from_logits_softmax_and_argmax():
    p = Predictions.from_logits(["x", "y"], np.array([[0.0, math.log(3)], [2.0, 0.0]]), [1, 0], [7, 8])
    assert p.p_viral.tolist() == pytest.approx([0.75, 1 / (1 + math.e**2)])
    assert p.y_pred.tolist() == [1, 0]
    assert p.lengths.dtype == np.int64 and p.y_true.dtype == np.int64


def test_from_logits_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    p = Predictions.from_logits(["x"], torch.tensor([[0.0, 1.0]]), torch.tensor([1]), torch.tensor([3]))
    assert p.y_pred.tolist() == [1]


def test_from_logits_wrong_shape():
    with pytest.raises(DimensionError, match=r"\[2, 2\]"):
        Predictions.from_logits(["x", "y"], np.zeros((2, 3)), [1, 0], [1, 1])


def test_inconsistent_predictions_report_every_problem():
    with pytest.raises(InputError) as info:
        Predictions(["a", "a", "b"], [1, 2, 0], [0.5, 1.5, 0.1], [1, 0, 0], [1, 2, 3])
    message = str(info.value)
    for part in ("y_true holds values other than 0", "0 NaN or infinite value(s) and 1 outside [0, 1]",
                 "duplicated ids"):
        assert part in message, message


def test_non_finite_probabilities_in_a_file_name_the_file_and_count(tmp_path):
    path = eight().save(tmp_path / "p.json")
    data = json.loads(path.read_text())
    data["p_viral"][0] = float("nan")
    data["p_viral"][3] = float("inf")
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        Predictions.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: predictions are not consistent"), message
    assert "2 NaN or infinite value(s)" in message and "virnucpro evaluate" in message, message


def test_length_breakdown():
    bins = length_breakdown(eight(), (0, 25, 50, 100))
    assert [(b.label, b.n, b.correct) for b in bins] == [("0–24", 2, 1), ("25–49", 2, 1), ("50–99", 2, 2),
                                                         ("≥ 100", 2, 2)]
    assert [b.accuracy for b in bins] == [0.5, 0.5, 1.0, 1.0]
    assert sum(b.n for b in bins) == 8


def test_length_bins_must_increase():
    with pytest.raises(InputError, match="increasing"):
        length_breakdown(eight(), (0, 50, 50))


def test_bootstrap_is_deterministic_for_a_seed():
    a = evaluate(eight(), n_bootstrap=100, seed=7)
    b = evaluate(eight(), n_bootstrap=100, seed=7)
    c = evaluate(eight(), n_bootstrap=100, seed=8)
    assert a.ci == b.ci, "same seed, same intervals"
    assert a.ci != c.ci, "another seed resamples differently"
    assert set(a.ci) == set(METRICS)
    for name, interval in a.ci.items():
        assert interval.low <= interval.high, name
    assert a.ci["accuracy"].contains(a.accuracy)


def test_one_class_resamples_are_left_out_of_auc():
    # 3 samples: about a third of the resamples hold one class; their ROC-AUC is undefined, not 0 or 1.
    ci = bootstrap_intervals(np.array([1, 0, 0]), np.array([1, 0, 1]), np.array([0.9, 0.2, 0.6]),
                             n_bootstrap=200, seed=0)
    assert 0 < ci["roc_auc"].n_resamples < 200
    assert ci["accuracy"].n_resamples == 200
    assert not math.isnan(ci["roc_auc"].low)


def test_empty_predictions_error():
    with pytest.raises(InputError, match="no predictions"):
        evaluate(Predictions([], [], [], [], []))


def test_single_class_error_explains_roc_auc():
    p = Predictions(["a", "b"], [1, 1], [0.9, 0.2], [1, 0], [5, 5])
    with pytest.raises(InputError, match="ROC-AUC .* undefined with one class"):
        evaluate(p)


@pytest.mark.parametrize("suffix", [".json", ".npz"], ids=["json", "npz"])
def test_predictions_round_trip(tmp_path, suffix):
    p = eight()
    path = p.save(tmp_path / f"preds{suffix}")
    q = Predictions.load(path)
    assert q.ids == p.ids and q.meta == p.meta
    for name in ("y_true", "p_viral", "y_pred", "lengths"):
        assert np.array_equal(getattr(q, name), getattr(p, name)), name
    assert list(tmp_path.iterdir()) == [path], "no temporary file left behind"


def test_predictions_wrong_suffix_and_wrong_file(tmp_path):
    with pytest.raises(InputError, match=".json or .npz"):
        eight().save(tmp_path / "preds.csv")
    other = tmp_path / "other.json"
    other.write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not a predictions file"):
        Predictions.load(other)


def test_evaluation_round_trip(tmp_path):
    e = evaluate(eight(), n_bootstrap=20, seed=1)
    path = e.save(tmp_path / "evaluation.json")
    loaded = Evaluation.load(path)
    assert loaded == e
    assert loaded.loaded_from == str(path)


def test_evaluation_from_minimal_metrics():
    e = Evaluation.from_dict({"accuracy": 0.93, "n": 8})
    assert e.accuracy == 0.93 and e.n == 8
    assert math.isnan(e.roc_auc) and e.confusion_matrix is None and e.ci == {}
    with pytest.raises(InputError, match="gives no accuracy"):
        Evaluation.from_dict({"acc": 0.9})
    with pytest.raises(InputError, match="not a fraction"):
        Evaluation.from_dict({"accuracy": 93})


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_chunk_verdict_ignores_frame_order(p_frames, rng):
    tags = ["F1", "F2", "F3", "R1", "R2", "R3"][: len(p_frames)]
    order = list(range(len(p_frames)))
    rng.shuffle(order)
    ids = [f"rec_chunk_1{tags[i]}" for i in order]
    p = Predictions(ids, [1] * len(ids), [p_frames[i] for i in order], [0] * len(ids), [1] * len(ids))
    verdict = aggregate_chunks(p.ids, p.p_viral, y_true=p.y_true)
    assert verdict.ids == ["rec_chunk_1"]
    assert verdict.y_pred[0] == int(max(p_frames) >= max(1.0 - q for q in p_frames))


def test_bootstrap_in_batches_gives_the_intervals_of_one_batch(monkeypatch):
    """Memory is bounded by drawing resamples in batches; the seeded intervals must not change."""
    from virnucpro_core.compare import comparison
    from virnucpro_core.evaluate import bootstrap, metrics

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    p = np.clip(y * 0.6 + rng.random(400) * 0.5, 0, 1)
    pred = (p >= 0.5).astype(int)
    batched = metrics.bootstrap_intervals(y, pred, p, n_bootstrap=200, seed=9)
    drop_batched = comparison._paired_drop_ci(y == pred, rng.random(400) < 0.9, n_bootstrap=200, seed=9,
                                              confidence_level=0.95)
    monkeypatch.setattr(bootstrap, "BATCH", None)
    rng = np.random.default_rng(3)
    rng.integers(0, 2, 400), rng.random(400)  # the same draws as above, for the second paired vector
    assert metrics.bootstrap_intervals(y, pred, p, n_bootstrap=200, seed=9) == batched
    assert comparison._paired_drop_ci(y == pred, rng.random(400) < 0.9, n_bootstrap=200, seed=9,
                                      confidence_level=0.95) == drop_batched
