"""Grouped splits keep whole records / clusters on one side; MMseqs2 clustering and the identity search."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from virnucpro_core.split.clusters import cluster_proteins, cross_identity, linked_groups, mmseqs_missing
from virnucpro_core.errors import InputError
from virnucpro_core.split.ids import chunk_of, round_half_up, source_of, stratified_ids
from virnucpro_core.split.make import make_split

from tests.split.test_make import merged

# A class: record name -> number of frames (2 per chunk).
records = st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), st.integers(1, 30), min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(viral=records, host=records, seed=st.integers(0, 2**32), fraction=st.sampled_from([0.1, 0.2, 0.3]))
def test_source_split_keeps_every_record_on_one_side(viral, host, seed, fraction):
    ids = [f"v{r}_chunk_{i // 2}{'F1' if i % 2 else 'R3'}" for r, n in viral.items() for i in range(n)]
    ids += [f"h{r}_chunk_{i // 2}{'F2' if i % 2 else 'R1'}" for r, n in host.items() for i in range(n)]
    labels = [1] * sum(viral.values()) + [0] * sum(host.values())
    test = set(stratified_ids(ids, labels, fraction, seed, group_by="source"))
    train = set(ids) - test
    assert not {source_of(i) for i in test} & {source_of(i) for i in train}, "a record sits on both sides"
    for label in (0, 1):  # at least one record of each class stays in training
        assert any(lab == label for i, lab in zip(ids, labels) if i in train)


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), min_size=3, max_size=25),
       seed=st.integers(0, 2**32))
def test_cluster_split_keeps_every_cluster_on_one_side(sizes, seed):
    """Clusters may mix classes; each ends up wholly in train or wholly in test, and no class overshoots its target."""
    ids, labels, groups = [], [], {}
    for k, (n_viral, n_host) in enumerate(sizes):
        for label, n in ((1, n_viral), (0, n_host)):
            for j in range(n):
                sample = f"r{k}{label}{j}_chunk_1F1"
                ids.append(sample), labels.append(label)
                groups[sample] = f"cluster{k}"
    totals = Counter(labels)
    if len(totals) < 2:
        return
    try:
        test = set(stratified_ids(ids, labels, 0.1, seed, group_by="cluster", groups=groups))
    except InputError as error:  # only when no group of some class fits its target
        assert "fits the test side" in str(error)
        return
    train = set(ids) - test
    assert not {groups[i] for i in test} & {groups[i] for i in train}, "a cluster sits on both sides"
    counts = Counter(lab for i, lab in zip(ids, labels) if i in test)
    for label, n in totals.items():
        assert counts[label] <= round_half_up(n, 0.1)


def test_make_split_by_cluster_end_to_end(tmp_path):
    viral, host = tmp_path / "viral.pt", tmp_path / "host.pt"
    torch.save(merged({f"v{k}": 20 for k in range(10)}, 1, seed=1), viral)
    torch.save(merged({f"h{k}": 20 for k in range(10)}, 0, seed=2), host)
    ids = torch.load(viral)["ids"] + torch.load(host)["ids"]
    groups = {i: f"g{source_of(i)[1:]}" for i in ids}  # group gK = records vK and hK: both classes
    result = make_split(viral, host, group_by="cluster", groups=groups, out_dir=tmp_path / "split", seed=3)
    train_groups = {groups[i] for i in result.manifest.train.ids}
    assert not train_groups & {groups[i] for i in result.manifest.test.ids}
    assert result.summary.leakage.leaked_samples == 0 and result.manifest.group_by == "cluster"
    with pytest.raises(InputError, match="have no group"):
        make_split(viral, host, group_by="cluster", groups={}, out_dir=tmp_path / "other")


def test_linked_groups_join_clusters_and_chunks():
    clusters = {"a_chunk_1F1": "x", "a_chunk_1R2": "y", "b_chunk_4F1": "y", "c_chunk_2F3": "z", "c_chunk_3F1": "z",
                "d_chunk_1F1": "w"}
    groups = linked_groups(clusters)
    assert groups["a_chunk_1F1"] == groups["b_chunk_4F1"] == groups["a_chunk_1R2"]  # chunk a_chunk_1 joins x and y
    assert groups["c_chunk_2F3"] == groups["c_chunk_3F1"] != groups["a_chunk_1F1"]
    assert len(set(groups.values())) == 3
    assert linked_groups(clusters, link_chunks=False)["a_chunk_1F1"] != linked_groups(clusters, link_chunks=False)[
        "a_chunk_1R2"]
    assert {chunk_of(i) for i in clusters} >= {"a_chunk_1"}


needs_mmseqs = pytest.mark.skipif(mmseqs_missing() is not None, reason=str(mmseqs_missing()))
PROTEIN = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDWUAIGLNRGNTIGA".replace("U", "S")  # noqa: E501


def _mutate(seq: str, every: int) -> str:
    return "".join("W" if i % every == 0 and c != "W" else c for i, c in enumerate(seq))


@needs_mmseqs
def test_mmseqs_clusters_similar_proteins_and_measures_identity(tmp_path):
    unrelated = "".join("ACDEFGHIKLMNPQRSTVWY"[(i * 7 + i // 3) % 20] for i in range(len(PROTEIN)))
    fasta = tmp_path / "p.faa"
    fasta.write_text(f">a_chunk_1F1\n{PROTEIN}\n>b_chunk_1F1\n{_mutate(PROTEIN, 10)}\n>c_chunk_1F1\n{unrelated}\n")
    clusters = cluster_proteins([fasta], tmp_path / "work", min_seq_id=0.6, threads=1)
    assert clusters["a_chunk_1F1"] == clusters["b_chunk_1F1"] != clusters["c_chunk_1F1"]
    strict = cluster_proteins([fasta], tmp_path / "work2", min_seq_id=0.95, threads=1)
    assert strict["a_chunk_1F1"] != strict["b_chunk_1F1"]  # ~90 % identical: apart at 95 %
    found = cross_identity({"b": _mutate(PROTEIN, 10), "c": unrelated}, {"a": PROTEIN}, tmp_path / "search",
                           threshold=0.6, threads=1)
    assert found.test_proteins == 2 and found.with_hit == 1 and found.at_or_above_threshold == 1
    assert 0.85 <= found.max_identity < 0.95
