"""One chunk aggregation for evaluation and prediction; the per-record rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from virnucpro_core.evaluate.aggregation import aggregate_chunks, aggregate_records
from virnucpro_core.errors import InputError
from virnucpro_core.predict.tables import verdicts
from virnucpro_core.evaluate.predictions import Predictions

# Hand-made frames with every suffix F1..R3; chunk ids end in digits, so stripping two characters matters.
IDS = ["rec_a_chunk_1F1", "rec_a_chunk_1F2", "rec_a_chunk_1F3", "rec_a_chunk_1R1", "rec_a_chunk_1R2",
       "rec_a_chunk_1R3", "rec_a_chunk_12R2", "rec_a_chunk_12F1", "rec_b_chunk_2F3", "rec_b_chunk_2R1"]
P_VIRAL = np.array([0.10, 0.20, 0.30, 0.40, 0.45, 0.35, 0.80, 0.10, 0.50, 0.50])
# Worked by hand: chunk_1 max viral 0.45 < max host 0.90 -> host; chunk_12 max viral 0.80 < max host 0.90
# (from F1) -> host; rec_b chunk_2: 0.50 >= 0.50 -> viral (tie is viral).
EXPECTED = {"rec_a_chunk_1": 0, "rec_a_chunk_12": 0, "rec_b_chunk_2": 1}


def original_rule(ids, p_viral) -> dict[str, bool]:
    """VirNucPro's prediction.py: Modified_ID = id[:-2]; Is_Virus = max(score2) >= max(score1) per Modified_ID."""
    frame = pd.DataFrame({"Sequence_ID": ids, "score1": 1.0 - p_viral, "score2": p_viral})
    frame["Modified_ID"] = frame["Sequence_ID"].str[:-2]
    grouped = frame.groupby("Modified_ID", sort=False).agg(score1=("score1", "max"), score2=("score2", "max"))
    return {k: bool(v) for k, v in (grouped["score2"] >= grouped["score1"]).items()}


def test_chunks_follow_the_original_rule_on_a_hand_made_example():
    chunks = aggregate_chunks(IDS, P_VIRAL)
    assert dict(zip(chunks.ids, chunks.y_pred.tolist())) == EXPECTED
    assert {k: bool(v) for k, v in EXPECTED.items()} == original_rule(IDS, P_VIRAL)
    assert chunks.n_frames.tolist() == [6, 2, 2]
    assert chunks.max_p_host.tolist() == pytest.approx([0.90, 0.90, 0.50])


def test_evaluation_and_prediction_share_the_aggregation():
    labels = [0] * 8 + [1] * 2
    labelled = Predictions(IDS, labels, P_VIRAL, (P_VIRAL > 0.5).astype(int), [5] * 10)
    evaluated = aggregate_chunks(labelled.ids, labelled.p_viral, y_true=labelled.y_true)
    calls = aggregate_chunks(IDS, P_VIRAL, ["rec_a_chunk_1", "rec_a_chunk_12", "rec_a_chunk_3", "rec_b_chunk_2"])
    assert evaluated.y_pred.tolist() == [0, 0, 1] and evaluated.y_true.tolist() == [0, 0, 1]
    assert verdicts(calls) == ["others", "others", "no_frames", "virus"]
    assert np.isnan(calls.max_p_viral[2]) and calls.n_frames.tolist() == [6, 2, 0, 2]


def test_a_frame_outside_the_listed_chunks_is_refused():
    with pytest.raises(InputError, match="rec_b_chunk_2"):
        aggregate_chunks(IDS, P_VIRAL, ["rec_a_chunk_1", "rec_a_chunk_12"])


def test_record_rules():
    records = aggregate_records(IDS, P_VIRAL)
    assert records.ids == ["rec_a", "rec_b"]
    assert records.mean_p_viral.tolist() == pytest.approx([2.7 / 8, 0.5])
    assert records.y_pred.tolist() == [0, 1]  # mean 0.3375 < 0.5; 0.5 >= 0.5
    majority = aggregate_records(IDS, P_VIRAL, rule="majority", threshold=0.5)
    assert majority.n_chunks.tolist() == [2, 1] and majority.viral_chunk_share.tolist() == [0.0, 1.0]
    assert aggregate_records(IDS, P_VIRAL, threshold=0.3).y_pred.tolist() == [1, 1]
    with pytest.raises(InputError, match="mean"):
        aggregate_records(IDS, P_VIRAL, rule="median")
