"""What each gate compares and the relation to its limit under which it passes.

:mod:`virnucpro_core.gate.gates` applies both rules: to the comparison's exact
accuracy drop and to the timings' ratio. Limits are not here: they come from the
run's settings (or ``virnucpro compare``'s options).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ACCURACY, SPEED = "accuracy", "speed"
# A gate within its limit on a run whose verdict is not PASS: said without the word the verdict banner owns.
WITHIN_LIMIT = "measured: within limit"


@dataclass(frozen=True)
class GateRule:
    """What a gate compares: its metric, and the relation to the limit under which it passes."""

    gate: str
    metric: str
    relation: str  # "<" (strictly below the limit) or "≤" (at most the limit)

    @property
    def negation(self) -> str:
        """The relation a failing value has to the limit."""
        return {"<": "≥", "≤": ">"}[self.relation]

    def holds(self, measured: Any, limit: Any) -> bool:
        """Whether ``measured`` passes against ``limit`` (numbers of any exact or float type)."""
        return measured < limit if self.relation == "<" else measured <= limit

    def sentence(self, value: str, limit: float, passed: bool, detail: str, *, ci: str = "") -> str:
        """``accuracy drop 0.0123 (95 % CI …) < limit 0.05: PASS — detail``: metric, value, CI, limit, verdict."""
        relation = self.relation if passed else self.negation
        return (f"{self.metric} {value}{f' ({ci})' if ci else ''} {relation} limit {limit:g}: "
                f"{'PASS' if passed else 'FAIL'} — {detail}")


def within_limit(sentence: str) -> str:
    """A passed gate's :meth:`GateRule.sentence` for a run that is not a PASS: ``… < limit 0.05: measured: within
    limit — …``, so that the verdict is stated once, by the run, and never contradicted by a gate line."""
    return re.sub(r": PASS(?= —|$)", f": {WITHIN_LIMIT}", sentence, count=1)


ACCURACY_RULE = GateRule(ACCURACY, "accuracy drop", "<")
SPEED_RULE = GateRule(SPEED, "time ratio", "≤")
