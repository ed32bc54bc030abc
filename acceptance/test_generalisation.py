"""Evidence beside the gate: other splits, groups, calibration, verdict levels.

These tests check that the evidence was built and is consistent; they are marked
``evidence``, so their outcomes never change the verdict or the exit status.
"""

from __future__ import annotations

import pytest

from virnucpro_core.split.clusters import mmseqs_missing

pytestmark = pytest.mark.evidence


def test_every_split_has_a_row(evidence):
    names = [row.name for row in evidence.splits]
    assert names == ["locked", "source", "cluster"], f"split rows: {names}"
    assert [row.gated for row in evidence.splits] == [True, False, False], "only the locked split gates"
    failed = [f"{row.name}: {row.reason}" for row in evidence.splits if row.status == "failed"]
    assert not failed, f"extra split(s) failed: {failed}"


def test_source_split_shares_no_record(evidence):
    row = next(r for r in evidence.splits if r.name == "source")
    assert row.status == "measured", row.reason
    assert row.leakage["shared_sources"] == 0 and row.leakage["samples_sharing_a_chunk"] == 0, row.leakage


def test_clustered_split_ran_or_says_why(evidence):
    row = next(r for r in evidence.splits if r.name == "cluster")
    if mmseqs_missing():
        assert row.status == "skipped" and "apt-get install -y mmseqs2" in row.reason, row.reason
        pytest.skip(row.reason)
    assert row.status == "measured", row.reason
    assert row.leakage["samples_sharing_a_chunk"] == 0, row.leakage


def test_groups_calibration_and_levels_are_reported(evidence, settings):
    if settings.groups_file is not None or settings.groups:
        assert evidence.groups, f"groups were given ({evidence.groups_from}) but no group has test samples"
    assert set(evidence.calibration) == {"FastESM2_650", "ESM2 3B"}
    assert [level.level for level in evidence.levels] == ["frame", "chunk", "record"]
