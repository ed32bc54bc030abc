"""The accuracy gate: FastESM2 loses less than 5 % accuracy against ESM2 3B on the same test set."""

from __future__ import annotations

import math

import pytest

from virnucpro_core.gate.gates import ACCURACY
from virnucpro_core.gate.validation import EMBEDDERS

REQUIRED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
# Both tests skip with the reason when random weights make accuracy meaningless (conftest: meaningful_accuracy).


def test_metrics_present_and_finite(evaluations, embedder):
    evaluation = evaluations[embedder]
    values = {name: getattr(evaluation, name, None) for name in REQUIRED_METRICS}
    bad = {name: value for name, value in values.items() if not isinstance(value, float) or not math.isfinite(value)}
    assert not bad, f"{EMBEDDERS[embedder]}: metrics missing or not finite: {bad}"
    matrix = evaluation.confusion_matrix
    assert sum(map(sum, matrix)) == evaluation.n, (
        f"{EMBEDDERS[embedder]}: confusion matrix {matrix} counts {sum(map(sum, matrix))} samples, "
        f"the test set has {evaluation.n}"
    )


@pytest.mark.gate(ACCURACY)
def test_accuracy_gate(comparison, acceptance):
    """Decides the accuracy gate: the library measures it from the comparison; this asserts on that result."""
    gate = acceptance.measure(ACCURACY)
    assert gate is not None and gate.measured == comparison.accuracy_drop, "the gate is measured from the comparison"
    if not gate.passed:
        pytest.fail(gate.failure, pytrace=False)
