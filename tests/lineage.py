"""Lineage records for predictions made in tests: what `virnucpro evaluate` records when a checkpoint's training
split is the test set's (virnucpro_core.split.lineage)."""

from __future__ import annotations

from virnucpro_core.split.lineage import LineageCheck

SPLIT = "5" * 64


def matched(split: str = SPLIT) -> dict:
    """The lineage check of a checkpoint trained on ``split`` and evaluated on its test set."""
    return LineageCheck(True, split, split).to_dict()


def with_lineage(meta: dict | None = None, split: str = SPLIT) -> dict:
    """``meta`` with a matched lineage check, unless it states one."""
    return {"lineage": matched(split), **(meta or {})}
