"""FastESM2 vs baseline: the strict verdict, paired CI, McNemar, id alignment, and baselines from metrics files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from virnucpro_core.compare.comparison import Comparison, McNemar
from virnucpro_core.compare.comparison import compare as measure
from virnucpro_core.errors import InputError
from virnucpro_core.evaluate.metrics import Evaluation, evaluate
from virnucpro_core.evaluate.predictions import Predictions
from virnucpro_core.gate.gates import decide_accuracy

from tests.lineage import SPLIT, matched, with_lineage
from virnucpro_core.split.lineage import LineageCheck


def compare(*args, **kwargs) -> Comparison:
    """The comparison with the accuracy gate's decision, as ``virnucpro compare`` and the suite make it."""
    return decide_accuracy(measure(*args, **kwargs))


def make(correct: list[bool], *, meta: dict | None = None, order: list[int] | None = None) -> Predictions:
    """Half viral, half host, one frame per chunk; ``correct[i]`` says whether sample i is called right."""
    n = len(correct)
    y = np.array([1 if i < n // 2 else 0 for i in range(n)])
    y_pred = np.where(correct, y, 1 - y)
    p_viral = np.where(y_pred == 1, 0.8, 0.2) + np.linspace(0, 0.1, n)  # distinct scores for the curves
    ids = [f"rec{i}_chunk_1F1" for i in range(n)]
    lengths = [20 + 10 * (i % 8) for i in range(n)]
    p = Predictions(ids, y, p_viral, y_pred, lengths, meta=with_lineage(meta))
    return p.take([ids[i] for i in order]) if order else p


def wrong_at(n: int, *indices: int) -> list[bool]:
    return [i not in indices for i in range(n)]


def paired(fast: Predictions, base: Predictions, **kwargs) -> Comparison:
    """compare() with evaluations made without intervals: only the drop's CI is bootstrapped (fast tests)."""
    return compare(fast, base, fast_evaluation=evaluate(fast, n_bootstrap=0),
                   baseline_evaluation=evaluate(base, n_bootstrap=0), **kwargs)


def test_pass_when_drop_below_limit():
    c = paired(make(wrong_at(20, 3)), make(wrong_at(20, 3)), n_bootstrap=50)
    assert c.passed and c.verdict == "PASS" and c.accuracy_drop == 0.0
    assert c.reason.startswith("accuracy drop 0.0000 (95 % CI 0.0000 to 0.0000) < limit 0.05: PASS"), c.reason
    assert c.next_steps == []
    assert c.paired and c.mcnemar.p_value == 1.0


def test_exactly_at_limit_fails():
    # 20 samples: baseline all right, FastESM2 one wrong -> drop exactly 1/20 = 0.05, not < 0.05.
    c = compare(make(wrong_at(20, 0)), make(wrong_at(20)), n_bootstrap=0)
    assert c.accuracy_drop == 0.05 and not c.passed
    assert "accuracy drop 0.0500 (no CI: n_bootstrap=0) ≥ limit 0.05: FAIL" in c.reason, c.reason
    assert "ESM2 3B accuracy 1.0000, FastESM2_650 0.9500 on 20 test samples" in c.reason
    passed = compare(make(wrong_at(20, 0)), make(wrong_at(20)), n_bootstrap=0, max_accuracy_drop=0.051)
    assert passed.passed


def test_failing_gate_gives_next_steps():
    c = paired(make(wrong_at(40, *range(1, 8))), make(wrong_at(40, 0)), n_bootstrap=50)
    assert not c.passed and c.accuracy_drop == pytest.approx(6 / 40)
    assert "≥ limit 0.05: FAIL" in c.reason
    steps = "\n".join(c.next_steps)
    for expected in ("weights", "residues", "patience", "leakage", "Per-chunk"):
        assert expected in steps, f"{expected!r} missing from next steps:\n{steps}"


def test_random_weights_come_first_in_next_steps():
    c = compare(make(wrong_at(20, 0, 1, 2), meta={"weights": "random"}), make(wrong_at(20)), n_bootstrap=0)
    assert "random-weight stand-ins" in c.next_steps[0]


def test_mcnemar_exact_p_value():
    # FastESM2 alone right on 1 sample, the baseline alone right on 7: p = 2 * (1 + 8) / 2**8 = 18/256.
    c = compare(make(wrong_at(40, *range(1, 8))), make(wrong_at(40, 0)), n_bootstrap=0)
    m = c.mcnemar
    assert (m.both_correct, m.fast_only_correct, m.baseline_only_correct, m.both_wrong) == (32, 1, 7, 0)
    assert m.p_value == pytest.approx(0.0703125)
    assert m.table == [[32, 7], [1, 0]]


def test_mcnemar_without_discordant_pairs():
    m = McNemar.from_correct(np.array([True, False]), np.array([True, False]))
    assert m.discordant == 0 and m.p_value == 1.0


def test_paired_ci_is_deterministic_and_brackets_the_drop():
    fast, base = make(wrong_at(40, 1, 5, 9, 30)), make(wrong_at(40, 2))
    a = paired(fast, base, n_bootstrap=200, seed=3)
    b = paired(fast, base, n_bootstrap=200, seed=3)
    assert a.drop_ci == b.drop_ci and a.reason == b.reason
    assert a.drop_ci.low <= a.accuracy_drop <= a.drop_ci.high


def test_baseline_order_does_not_matter():
    fast = make(wrong_at(20, 4))
    shuffled = make(wrong_at(20, 7), order=list(np.random.default_rng(0).permutation(20)))
    c = compare(fast, shuffled, n_bootstrap=0)
    assert c.accuracy_drop == 0.0 and c.mcnemar.discordant == 2


def test_mismatched_ids_are_named():
    fast = make(wrong_at(10))
    base = make(wrong_at(10))
    base.ids[0] = "other_chunk_9F1"
    with pytest.raises(InputError) as info:
        compare(fast, base, n_bootstrap=0)
    message = str(info.value)
    assert "rec0_chunk_1F1" in message and "other_chunk_9F1" in message, message
    assert "identical test samples" in message


def test_different_labels_for_the_same_id_are_an_error():
    fast, base = make(wrong_at(10)), make(wrong_at(10))
    base.y_true[0] = 0
    with pytest.raises(InputError, match="different y_true"):
        compare(fast, base, n_bootstrap=0)


def test_baseline_from_metrics_file(tmp_path):
    fast = make(wrong_at(20, 0))
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"accuracy": 0.97, "n": 20, "meta": with_lineage()}))
    c = compare(fast, None, baseline_metrics=Evaluation.load(path), n_bootstrap=0)
    assert not c.paired and c.mcnemar is None and c.drop_ci is None
    assert str(path) in c.baseline_source and str(path) in c.paired_note
    assert "no paired CI" in c.reason and "not paired" in c.reason
    assert c.accuracy_drop == pytest.approx(0.02) and c.passed
    assert any("ids_sha256" in note for note in c.notes), "the unverifiable test set is noted"


def test_metrics_dict_compared_exactly():
    # 0.3 - 0.25 is 0.04999999999999999 in floating point; the gate compares the decimals: 0.05, FAIL.
    fast = make(wrong_at(20, *range(5, 20)))  # 5 of 20 right: 0.25
    c = compare(fast, None, baseline_metrics={"accuracy": 0.3, "meta": with_lineage()}, n_bootstrap=0)
    assert not c.passed


def test_metrics_of_another_test_set_are_refused():
    fast = make(wrong_at(20))
    other = evaluate(make(wrong_at(22)), n_bootstrap=0)
    with pytest.raises(InputError, match="another test set"):
        compare(fast, None, baseline_metrics=other, n_bootstrap=0)
    with pytest.raises(InputError, match="count 30 test samples"):
        compare(fast, None, baseline_metrics={"accuracy": 0.9, "n": 30, "meta": with_lineage()}, n_bootstrap=0)


@pytest.mark.parametrize("both", [True, False], ids=["both", "neither"])
def test_exactly_one_baseline(both):
    fast = make(wrong_at(10))
    with pytest.raises(InputError, match="exactly one"):
        compare(fast, fast if both else None, baseline_metrics={"accuracy": 0.9} if both else None)


def test_precomputed_evaluations_are_reused():
    fast, base = make(wrong_at(20, 1)), make(wrong_at(20))
    fe = evaluate(fast, n_bootstrap=0)
    c = compare(fast, base, fast_evaluation=fe, n_bootstrap=0)
    assert c.fast is fe
    with pytest.raises(InputError, match="other samples"):
        compare(fast, base, fast_evaluation=evaluate(make(wrong_at(22)), n_bootstrap=0), n_bootstrap=0)


def test_side_by_side_rows_and_length_breakdown():
    c = compare(make(wrong_at(20, 0)), make(wrong_at(20)), n_bootstrap=0)
    rows = {r.name: r for r in c.metric_rows()}
    assert rows["accuracy"].drop == pytest.approx(0.05), "drop = baseline − FastESM2: positive when FastESM2 is worse"
    assert {r.name for r in c.metric_rows("chunk")} == set(rows)
    by_length = c.length_rows()
    assert sum(r.n for r in by_length) == 20
    assert max(by_length, key=lambda r: r.drop).label == "0–24", "sample 0 has length 20"


def test_comparison_round_trip(tmp_path):
    c = compare(make(wrong_at(20, 0, 3), meta={"weights": "pretrained"}), make(wrong_at(20)), n_bootstrap=20)
    path = c.save(tmp_path / "comparison.json")
    loaded = Comparison.load(path)
    assert loaded.to_dict() == c.to_dict()
    assert loaded.reason == c.reason and loaded.mcnemar == c.mcnemar and loaded.passed == c.passed


@pytest.mark.parametrize(("fast_vocab", "base_vocab"), [("a" * 64, "b" * 64), (None, "b" * 64)],
                         ids=["different", "one-unrecorded"])
def test_predictions_from_different_protein_vocabularies_are_not_compared(fast_vocab, base_vocab):
    def meta(vocab):
        return {"protein": {"model": "x", "vocab_sha256": vocab} if vocab else {"model": "x"}, "dna": {}}

    fast, base = make(wrong_at(10), meta=meta(fast_vocab)), make(wrong_at(10), meta=meta(base_vocab))
    with pytest.raises(InputError, match="tokenised with different vocabularies") as info:
        compare(fast, base, n_bootstrap=0)
    assert "protein-model vocabulary fingerprints differ" in str(info.value), str(info.value)
    assert compare(fast, make(wrong_at(10), meta=meta(fast_vocab)), n_bootstrap=0).passed


def _origin(model: str, checkpoint: str = "c" * 64, split: str = "s" * 64, side: str = "test") -> dict:
    """Predictions meta as predict_features writes it."""
    return {"model": model, "checkpoint": {"path": f"/x/{model}.pt", "sha256": checkpoint},
            "split": {"split_id": split, "side": side}, "protein": {"model": model}, "dna": {}}


def test_swapped_files_are_refused_and_named():
    fast = make(wrong_at(10), meta=_origin("esm2_3b", "a" * 64))
    base = make(wrong_at(10), meta=_origin("fastesm2_650", "b" * 64))
    with pytest.raises(InputError) as info:
        compare(fast, base, n_bootstrap=0)
    message = str(info.value)
    assert "the fast predictions come from esm2_3b, not fastesm2_650" in message and "swap the files" in message


@pytest.mark.parametrize(
    ("fast_meta", "base_meta", "expected"),
    [
        (_origin("fastesm2_650"), _origin("esm2_3b"), "same checkpoint"),
        (_origin("fastesm2_650", "a" * 64, "1" * 64), _origin("esm2_3b", "b" * 64, "2" * 64), "different splits"),
        (_origin("fastesm2_650", "a" * 64, side="train"), _origin("esm2_3b", "b" * 64, side="train"), "train side"),
    ],
    ids=["one-checkpoint-twice", "two-test-sets", "not-the-test-set"],
)
def test_pairs_that_are_not_a_comparison_are_refused(fast_meta, base_meta, expected):
    with pytest.raises(InputError, match="cannot be compared") as info:
        compare(make(wrong_at(10), meta=fast_meta), make(wrong_at(10), meta=base_meta), n_bootstrap=0)
    assert expected in str(info.value) and "fast: protein model fastesm2_650" in str(info.value), str(info.value)


def test_a_proper_pair_is_compared():
    fast = make(wrong_at(10), meta=_origin("fastesm2_650", "a" * 64))
    assert compare(fast, make(wrong_at(10), meta=_origin("esm2_3b", "b" * 64)), n_bootstrap=0).passed


# --------------------------------------------------------------------------- lineage: one split, checked at evaluation


def test_predictions_without_a_lineage_check_are_refused_naming_the_file():
    bare = Predictions(["a_chunk_1F1", "b_chunk_1F1"], [1, 0], [0.9, 0.1], [1, 0], [5, 5], meta={"model": "esm2_3b"})
    with pytest.raises(InputError, match="the baseline predictions records no lineage check"):
        compare(make([True, True]), bare.take(["a_chunk_1F1", "b_chunk_1F1"]), n_bootstrap=0)


def test_classifiers_of_two_splits_are_refused_naming_both():
    fast = make(wrong_at(10), meta={"lineage": matched("7" * 64)})
    with pytest.raises(InputError, match="trained on different splits: the FastESM2 predictions on split 777777777777 "
                       "and the baseline predictions on split 555555555555"):
        compare(fast, make(wrong_at(10)), n_bootstrap=0)


def test_an_evaluation_allowed_despite_its_split_is_never_compared():
    allowed = LineageCheck(False, "7" * 64, SPLIT, overlap=9, examples=["rec1_chunk_1F1"], allowed=True,
                           reason="the checkpoint was trained on split 777777777777, but test.pt is the test set of "
                           "split 555555555555")
    with pytest.raises(InputError, match="--allow-other-split.*9 test sample.s. were in its training set"):
        compare(make(wrong_at(10), meta={"lineage": allowed.to_dict()}), make(wrong_at(10)), n_bootstrap=0)


@pytest.mark.parametrize("metrics", [{"accuracy": 0.9}, {"accuracy": 0.9, "meta": {"lineage": matched("7" * 64)}}],
                         ids=["hand-written", "other-split"])
def test_baseline_metrics_of_unknown_or_other_lineage_are_refused(metrics):
    with pytest.raises(InputError, match="the two classifiers cannot be compared: .*baseline metrics"):
        compare(make(wrong_at(10)), None, baseline_metrics=metrics, n_bootstrap=0)


# --------------------------------------------------------------------------- a drop the test set cannot decide


def test_a_drop_within_the_limit_whose_ci_reaches_beyond_it_is_stated_with_the_samples_that_would_decide():
    # 100 samples: ESM2 3B alone right on 8, FastESM2 alone right on 4 -> drop 0.04 < 0.05, CI upper end ~0.11.
    fast = make([i not in range(8) for i in range(100)])
    base = make([i not in range(8, 12) for i in range(100)])
    c = compare(fast, base, n_bootstrap=400, seed=1)
    assert c.passed and c.accuracy_drop == pytest.approx(0.04) and c.drop_ci.high > 0.05
    assert c.undecided
    # n = z² (p10 + p01 − d²) / (limit − d)² = 1.96² × (0.12 − 0.0016) / 0.01² ≈ 4,549
    assert c.samples_to_decide() == 4549
    statement = c.undecided_statement()
    assert statement.startswith("This test set cannot show that the accuracy drop is below the limit: the drop 0.0400 "
                                "is within 0.05, but its 95 % CI reaches")
    assert "The gate's rule (the point estimate) decides the verdict. About 4,549 test samples (this set has 100)" \
        in statement


def test_a_decided_drop_or_a_failed_one_says_nothing_more():
    assert not compare(make(wrong_at(20)), make(wrong_at(20)), n_bootstrap=50).undecided
    failed = compare(make(wrong_at(20, 0, 1, 2)), make(wrong_at(20)), n_bootstrap=50)
    assert not failed.passed and not failed.undecided and failed.undecided_statement() is None
