"""Evidence helpers: verdict levels, group mapping, paired intervals, the report's tables."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from virnucpro_core.gate.acceptance_report import generalisation_table
from virnucpro_core.errors import InputError
from virnucpro_core.gate.generalisation import (
    Evidence,
    SplitRow,
    group_rows,
    level_rows,
    paired_intervals,
    read_group_file,
)
from virnucpro_core.evaluate.predictions import Predictions

IDS = ["v1_chunk_1F1", "v1_chunk_1R1", "v1_chunk_2F2", "h1_chunk_1F1", "h1_chunk_1R3", "h2_chunk_1F1"]
Y = [1, 1, 1, 0, 0, 0]


def preds(p):
    p = np.array(p)
    return Predictions(IDS, Y, p, (p > 0.5).astype(int), [10] * 6)


FAST = preds([0.9, 0.2, 0.4, 0.3, 0.6, 0.7])
BASE = preds([0.8, 0.7, 0.6, 0.1, 0.2, 0.3])


def test_levels_by_hand():
    levels = {row.level: row for row in level_rows(FAST, BASE, "mean")}
    # frames: fast right on 0.9, 0.3 -> 2/6; baseline right on all 6.
    assert levels["frame"].fast_accuracy == pytest.approx(2 / 6) and levels["frame"].baseline_accuracy == 1.0
    # chunks (v1_chunk_1, v1_chunk_2, h1_chunk_1, h2_chunk_1): fast 0.9>=0.8 viral ok; 0.4<0.6 host wrong;
    # h1: max viral 0.6 >= max host 0.7? no -> host ok; h2: 0.7 >= 0.3 viral wrong -> 2/4.
    assert levels["chunk"].n == 4 and levels["chunk"].fast_accuracy == 0.5 and levels["chunk"].baseline_accuracy == 1
    # records by mean: fast v1 0.5 -> viral ok, h1 0.45 host ok, h2 0.7 viral wrong -> 2/3.
    assert levels["record"].n == 3 and levels["record"].fast_accuracy == pytest.approx(2 / 3)


def test_group_rows_from_a_group_file(tmp_path):
    table = tmp_path / "groups.tsv"
    table.write_text("# id\tgroup\nv1\tvir_a\nh1\thost_a\nh2_chunk_1F1\thost_b\n")
    settings = SimpleNamespace(groups_file=table, groups={}, seed=1)
    rows, origin = group_rows(settings, FAST, BASE)
    assert origin.startswith("--groups") and [(r.group, r.classes, r.n) for r in rows] == [
        ("host_a", "host", 2), ("host_b", "host", 1), ("vir_a", "viral", 3)]
    vir = rows[2]
    assert vir.fast_accuracy == pytest.approx(1 / 3) and vir.baseline_accuracy == 1.0
    assert vir.drop == pytest.approx(2 / 3) and vir.drop_ci[0] <= vir.drop <= vir.drop_ci[1]
    table.write_text("v1\n")
    with pytest.raises(InputError, match="lack a group"):
        read_group_file(table)


def test_paired_intervals_are_seeded_and_cover_the_means():
    a, b = np.array([1, 0, 1, 1, 0, 1] * 20), np.array([1, 1, 1, 1, 0, 1] * 20)
    first, second = paired_intervals(a, b, seed=3), paired_intervals(a, b, seed=3)
    assert first == second
    assert first[0][0] <= a.mean() <= first[0][1] and first[2][0] <= b.mean() - a.mean() <= first[2][1]


def test_generalisation_table_marks_only_the_locked_split_as_gating():
    rows = [SplitRow("locked", "locked", True, "measured", n_test=10, fast_accuracy=0.9, baseline_accuracy=0.92,
                     drop=0.02, drop_ci=(-0.01, 0.05), mcnemar_p=0.5,
                     leakage={"shared_sources": 3, "samples_from_shared_sources": 10, "samples_sharing_a_chunk": 4}),
            SplitRow("cluster", "cluster", False, "skipped", "mmseqs (MMseqs2) is not installed")]
    header, body = generalisation_table(Evidence(splits=rows))
    assert body[0][1] == "gates the verdict" and body[1][1] == "skipped" and "not installed" in body[1][4]
    assert "3 shared records (10 test samples)" in body[0][-1]
    assert header[2:4] == ["ESM2 3B accuracy", "FastESM2_650 accuracy"] and body[0][2:4] == ["0.9200", "0.9000"], (
        "one model order everywhere: the baseline first, as the drop (ESM2 3B − FastESM2) reads")


def test_every_evidence_table_puts_esm2_3b_before_fastesm2():
    from virnucpro_core.gate.acceptance_report import group_table, level_table
    from virnucpro_core.gate.generalisation import GroupRow, LevelRow

    evidence = Evidence(groups=[GroupRow("phage", "viral", 10, 0.8, (0.7, 0.9), 0.9, (0.8, 1.0), 0.1, (0.0, 0.2))],
                        levels=[LevelRow("record", "mean p_viral", 5, 0.6, 0.8)])
    for (header, body), baseline, fast in ((group_table(evidence), "0.9000 [0.8000, 1.0000]",
                                            "0.8000 [0.7000, 0.9000]"),
                                           (level_table(evidence), "0.8000", "0.6000")):
        names = [h for h in header if "accuracy" in h]
        assert [n.split(" accuracy")[0] for n in names] == ["ESM2 3B", "FastESM2_650"], header
        assert body[0][header.index(names[0])] == baseline and body[0][header.index(names[1])] == fast, body


def test_clustered_split_is_skipped_with_the_install_command_without_mmseqs(monkeypatch):
    import virnucpro_core.split.clusters as clusters
    from virnucpro_core.gate.generalisation import _extra_splits

    monkeypatch.setattr(clusters.shutil, "which", lambda name: None)
    row = _extra_splits(SimpleNamespace(proteins={}), SimpleNamespace(), "cluster")
    assert row.status == "skipped" and not row.gated
    assert "not installed" in row.reason and "apt-get install -y mmseqs2" in row.reason
    merged = _extra_splits(SimpleNamespace(proteins=None), SimpleNamespace(), "cluster")
    assert merged.status == "skipped" and "no protein sequences" in merged.reason
