"""The train/test split: stratified counts, leakage, group-by-source, manifests, applying to a second embedder."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pytest
import torch

from virnucpro_core.layouts.features import read_merged
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.files import sha256_file
from virnucpro_core.split.ids import chunk_of, min_class_size, round_half_up, source_of
from virnucpro_core.split.make import apply_split, load_split, make_split
from virnucpro_core.paths import SplitPaths
from virnucpro_core.split.records import InputFile, SampleList, SplitManifest, SplitSummary
from virnucpro_core.split.summary import summarize

# Hand-made data: 200 samples, 24-d, 6 source records (viral 40 + 30 + 50 = 120, host 30 + 25 + 25 = 80).
VIRAL_SOURCES = {"virA": 40, "virB": 30, "virC": 50}
HOST_SOURCES = {"hostA": 30, "hostB": 25, "hostC": 25}


def sample_ids(sources: dict[str, int]) -> list[str]:
    """Two frames per chunk: ``{src}_chunk_{k}F1`` and ``{src}_chunk_{k}R2``."""
    return [
        f"{src}_chunk_{i // 2 + 1}{'F1' if i % 2 == 0 else 'R2'}" for src, n in sources.items() for i in range(n)
    ]


def merged(
    sources: dict[str, int], label: int, *, dim: int = 24, seed: int = 0, protein_model: str = "fastesm2_650"
) -> dict:
    ids = sample_ids(sources)
    generator = torch.Generator().manual_seed(seed)
    n = len(ids)
    return {
        "ids": ids,
        "data": torch.randn(n, dim, generator=generator) + (0.75 if label else -0.75),
        "labels": torch.full((n,), label, dtype=torch.long),
        "lengths": torch.randint(40, 120, (n,), generator=generator),
        "meta": {"protein_model": protein_model, "dna_model": "dnabert_s", "dim": dim, "label": "viral" if label else "host"},
    }


@pytest.fixture
def inputs(tmp_path):
    viral, host = tmp_path / "viral.pt", tmp_path / "host.pt"
    torch.save(merged(VIRAL_SOURCES, 1, seed=1), viral)
    torch.save(merged(HOST_SOURCES, 0, seed=2), host)
    return viral, host


# --------------------------------------------------------------------------- rounding and ids


@pytest.mark.parametrize(
    ("n", "fraction", "expected"),
    [(120, 0.1, 12), (80, 0.1, 8), (25, 0.1, 3), (15, 0.1, 2), (14, 0.1, 1), (5, 0.1, 1), (4, 0.1, 0), (81, 0.1, 8)],
    ids=["120", "80", "25-half-up", "15-half-up", "14", "5-half-up", "4", "81"],
)
def test_round_half_up(n, fraction, expected):
    assert round_half_up(n, fraction) == expected, f"round_half_up({n}, {fraction})"


def test_min_class_size():
    assert min_class_size(0.1) == 5
    assert min_class_size(0.5) == 2


def test_source_and_chunk_of_ids():
    assert source_of("NC_001.1_chunk_12F3") == "NC_001.1"
    assert source_of("a_chunk_b_chunk_2R1") == "a_chunk_b"
    assert chunk_of("NC_001.1_chunk_12F3") == "NC_001.1_chunk_12"
    assert chunk_of("NC_001.1_chunk_12R1") == "NC_001.1_chunk_12"
    assert chunk_of("plain_id") == "plain_id"


# --------------------------------------------------------------------------- stratification


def test_stratified_counts(inputs, tmp_path):
    viral, host = inputs
    result = make_split(viral, host, out_dir=tmp_path / "split")
    summary = result.summary
    v, h = summary.class_split("viral"), summary.class_split("host")
    assert (v.full, v.train, v.test, v.target_test) == (120, 108, 12, 12)
    assert (h.full, h.train, h.test, h.target_test) == (80, 72, 8, 8)
    assert v.test_fraction_achieved == pytest.approx(0.1) and h.test_fraction_achieved == pytest.approx(0.1)
    assert (v.ratio_full, v.ratio_train, v.ratio_test) == (0.6, 0.6, 0.6)
    assert "round half up" in summary.rounding_rule
    assert len(result.manifest.train) == 180 and len(result.manifest.test) == 20


def test_split_files(inputs, tmp_path):
    viral, host = inputs
    result = make_split(viral, host, out_dir=tmp_path / "split")
    paths = SplitPaths(tmp_path / "split")
    assert sorted(p.name for p in paths.root.iterdir()) == ["distribution.json", "manifest.json", "test.pt", "train.pt"]
    train = read_merged(paths.train)
    test = read_merged(paths.test)
    assert train["ids"] == result.manifest.train.ids == sorted(train["ids"])
    assert test["ids"] == result.manifest.test.ids
    assert not set(train["ids"]) & set(test["ids"])
    assert train["data"].shape == (180, 24) and test["data"].shape == (20, 24)
    assert test["labels"].tolist() == result.manifest.test.labels
    assert sorted(test["labels"].tolist()) == [0] * 8 + [1] * 12
    original = torch.load(viral, weights_only=True)
    sample = next(i for i in test["ids"] if i.startswith("vir"))
    row = original["ids"].index(sample)
    assert torch.equal(test["data"][test["ids"].index(sample)], original["data"][row])
    assert train["meta"]["protein_model"] == "fastesm2_650" and train["meta"]["split"]["side"] == "train"
    assert train["meta"]["split"]["manifest_sha256"] == sha256_file(paths.manifest)
    assert SplitSummary.load(paths.distribution).to_dict() == result.summary.to_dict()
    # The report's length figure draws from the summary: every sample's length counted once, on its side.
    histogram = SplitSummary.load(paths.distribution).length_histogram
    assert sum(histogram.train) == 180 and sum(histogram.test) == 20
    assert histogram.test_median == float(np.median(test["lengths"].numpy()))


def test_length_distribution_and_ks(inputs, tmp_path):
    viral, host = inputs
    summary = make_split(viral, host, out_dir=tmp_path / "split").summary
    lengths = summary.lengths["all"]
    assert lengths.full.n == 200 and lengths.train.n == 180 and lengths.test.n == 20
    assert 40 <= lengths.full.min <= lengths.full.median <= lengths.full.max < 120
    assert 0.0 <= lengths.ks_statistic <= 1.0 and 0.0 <= lengths.ks_pvalue <= 1.0
    assert set(summary.lengths) == {"all", "viral", "host"}


def test_split_ignores_file_and_row_order(inputs, tmp_path):
    viral, host = inputs
    first = make_split(viral, host, out_dir=tmp_path / "a").manifest
    data = torch.load(host, weights_only=True)
    half = len(data["ids"]) // 2
    parts = []
    for k, rows in enumerate((range(half, len(data["ids"])), range(half))):
        rows = list(reversed(rows))
        part = {
            "ids": [data["ids"][i] for i in rows],
            "data": data["data"][rows],
            "labels": data["labels"][rows],
            "lengths": data["lengths"][rows],
            "meta": data["meta"],
        }
        parts.append(tmp_path / f"host{k}.pt")
        torch.save(part, parts[-1])
    second = make_split([viral], parts, out_dir=tmp_path / "b").manifest
    assert second.split_id == first.split_id
    assert second.test.ids == first.test.ids


# --------------------------------------------------------------------------- reproducibility


def test_manifest_byte_identical_for_same_seed(inputs, tmp_path):
    viral, host = inputs
    make_split(viral, host, out_dir=tmp_path / "a", seed=7)
    make_split(viral, host, out_dir=tmp_path / "b", seed=7)
    a, b = SplitPaths(tmp_path / "a"), SplitPaths(tmp_path / "b")
    assert a.manifest.read_bytes() == b.manifest.read_bytes(), "manifests of identical runs differ"
    assert a.distribution.read_bytes() == b.distribution.read_bytes()
    assert a.train.read_bytes() == b.train.read_bytes() and a.test.read_bytes() == b.test.read_bytes()
    text = a.manifest.read_text()
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:", text), "manifest must not carry timestamps"
    keys = list(json.loads(text))
    assert keys[:4] == ["format", "version", "split_id", "seed"]


def test_other_seed_other_split(inputs, tmp_path):
    viral, host = inputs
    a = make_split(viral, host, out_dir=tmp_path / "a", seed=1).manifest
    b = make_split(viral, host, out_dir=tmp_path / "b", seed=2).manifest
    assert a.test.ids != b.test.ids and a.split_id != b.split_id


def test_rerun_reuses_and_different_split_is_refused(inputs, tmp_path):
    viral, host = inputs
    out = tmp_path / "split"
    make_split(viral, host, out_dir=out)
    messages = []
    again = make_split(viral, host, out_dir=out, log=messages.append)
    assert again.reused and "reusing the split" in messages[0] and "--force" in messages[0]
    with pytest.raises(InputError, match="already holds a different split") as info:
        make_split(viral, host, out_dir=out, seed=43)
    assert "--manifest" in str(info.value) and "--force" in str(info.value)
    replaced = make_split(viral, host, out_dir=out, seed=43, overwrite=True)
    assert not replaced.reused and SplitManifest.load(out).seed == 43


def test_edited_manifest_is_refused(inputs, tmp_path):
    viral, host = inputs
    out = tmp_path / "split"
    make_split(viral, host, out_dir=out)
    data = json.loads(SplitPaths(out).manifest.read_text())
    data["test"]["ids"][0], data["train"]["ids"][0] = data["train"]["ids"][0], data["test"]["ids"][0]
    SplitPaths(out).manifest.write_text(json.dumps(data))
    with pytest.raises(InputError, match="edited after it was written"):
        SplitManifest.load(SplitPaths(out).manifest)


def test_a_made_split_loads_back_from_its_files_as_it_was_made(inputs, tmp_path):
    """load_split reads the manifest and the summary back, checks them, and recomputes nothing."""
    viral, host = inputs
    made = make_split(viral, host, out_dir=tmp_path / "split", seed=3)
    loaded = load_split(tmp_path / "split", inputs_sha256=[sha256_file(viral), sha256_file(host)])
    assert loaded.manifest == made.manifest and loaded.summary == made.summary and loaded.paths == made.paths
    assert loaded.manifest.to_json() == made.paths.manifest.read_text(), "the manifest's bytes (its hash) unchanged"
    assert loaded.summary.to_dict() == made.summary.to_dict() and loaded.reused


def test_a_split_of_other_inputs_or_with_files_missing_is_not_loaded(inputs, tmp_path):
    viral, host = inputs
    made = make_split(viral, host, out_dir=tmp_path / "split")
    with pytest.raises(InputError, match="made from other inputs than these") as info:
        load_split(tmp_path / "split", inputs_sha256=[sha256_file(host), sha256_file(viral)])
    assert "--rebuild" in str(info.value)
    made.paths.test.unlink()
    with pytest.raises(InputError, match="incomplete: test.pt missing"):
        load_split(tmp_path / "split")


def test_a_split_reads_each_input_through_the_opener_it_is_given(inputs, tmp_path):
    """A run hands make_split / apply_split its own opener, so each input is opened and hashed once per run."""
    from virnucpro_core.split.make import open_input

    viral, host = inputs
    opened = []

    def opener(path):
        opened.append(path.name)
        return open_input(path)

    first = make_split(viral, host, out_dir=tmp_path / "a", open_input=opener)
    apply_split(first.manifest, viral, host, out_dir=tmp_path / "b", open_input=opener)
    assert opened == ["viral.pt", "host.pt", "viral.pt", "host.pt"]
    assert [i.sha256 for i in first.manifest.inputs] == [sha256_file(viral), sha256_file(host)]


# --------------------------------------------------------------------------- leakage


def _manifest(train: list[tuple[str, int]], test: list[tuple[str, int]]) -> SplitManifest:
    def side(pairs):
        pairs = sorted(pairs)
        return SampleList([i for i, _ in pairs], [lab for _, lab in pairs], [source_of(i) for i, _ in pairs])

    return SplitManifest(
        seed=0, test_fraction=0.1, group_by="sample", rounding_rule="r", train=side(train), test=side(test),
        features={}, inputs=[InputFile("viral", "x.pt", "0" * 64, 0)],
    )


def test_leakage_counts_on_hand_made_split():
    manifest = _manifest(
        train=[("a_chunk_1F1", 1), ("a_chunk_2F1", 1), ("b_chunk_1F1", 1), ("h_chunk_1F1", 0), ("h_chunk_2F2", 0)],
        test=[("a_chunk_1R1", 1), ("a_chunk_3F2", 1), ("c_chunk_1F1", 1), ("h_chunk_2R3", 0), ("g_chunk_1F1", 0)],
    )
    leak = summarize(manifest, {i: 100 for i in manifest.train.ids + manifest.test.ids}).leakage
    # a_chunk_1R1, a_chunk_3F2 (source a) and h_chunk_2R3 (source h) have training samples of their source;
    # a_chunk_1R1 and h_chunk_2R3 even of their chunk.
    assert (leak.test_samples, leak.leaked_samples, leak.leaked_sources) == (5, 3, 2)
    assert leak.fraction == 0.6
    assert (leak.chunk_leaked_samples, leak.chunk_fraction) == (2, 0.4)


def test_sample_split_leakage_matches_recount(inputs, tmp_path):
    viral, host = inputs
    result = make_split(viral, host, out_dir=tmp_path / "split")
    train_sources = set(result.manifest.train.sources)
    expected = sum(s in train_sources for s in result.manifest.test.sources)
    # every record has far more than 10 % of the samples, so every test sample leaks
    assert result.summary.leakage.leaked_samples == expected == 20
    assert result.summary.leakage.fraction == 1.0
    per_source = {s.source: s for s in result.summary.sources}
    assert sorted(per_source) == ["hostA", "hostB", "hostC", "virA", "virB", "virC"]
    assert sum(s.total for s in per_source.values()) == 200 and per_source["virA"].total == 40
    assert sum(s.test for s in per_source.values()) == 20


# --------------------------------------------------------------------------- group by source


def test_group_by_source_has_no_leakage(inputs, tmp_path):
    viral, host = inputs
    result = make_split(viral, host, out_dir=tmp_path / "split", group_by="source")
    assert result.summary.leakage.leaked_samples == 0 and result.summary.leakage.chunk_leaked_samples == 0
    assert not set(result.manifest.train.sources) & set(result.manifest.test.sources)
    # no record fits under 12 viral / 8 host, so the record closest to the target goes to test:
    # virB (30 of 120) and one 25-sample host record (25 of 80)
    assert result.summary.class_split("viral").test == 30 and set(result.manifest.test.sources) >= {"virB"}
    assert result.summary.class_split("host").test == 25
    assert "cannot hit the target exactly" in result.summary.format_table()


def test_group_by_source_close_to_target_with_many_records(tmp_path):
    viral_sources = {f"v{k:02d}": size for k, size in enumerate([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16])}
    host_sources = {f"h{k:02d}": size for k, size in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13])}
    torch.save(merged(viral_sources, 1), tmp_path / "v.pt")
    torch.save(merged(host_sources, 0), tmp_path / "h.pt")
    result = make_split(tmp_path / "v.pt", tmp_path / "h.pt", out_dir=tmp_path / "split", group_by="source")
    v, h = result.summary.class_split("viral"), result.summary.class_split("host")
    assert (v.full, v.target_test, h.full, h.target_test) == (120, 12, 80, 8)
    assert abs(v.test - 12) <= 2 and abs(h.test - 8) <= 2, (v.test, h.test)
    assert result.summary.leakage.leaked_samples == 0


def test_group_by_source_refuses_records_in_both_classes(tmp_path):
    torch.save(merged({"shared": 10, "v2": 10}, 1), tmp_path / "v.pt")
    torch.save(merged({"shared_": 0, "h1": 10, "h2": 10}, 0), tmp_path / "h.pt")
    data = torch.load(tmp_path / "h.pt", weights_only=True)
    data["ids"][0] = "shared_chunk_99F1"
    torch.save(data, tmp_path / "h.pt")
    with pytest.raises(InputError, match="both viral and host samples, e.g. shared"):
        make_split(tmp_path / "v.pt", tmp_path / "h.pt", out_dir=tmp_path / "s", group_by="source")


# --------------------------------------------------------------------------- applying to a second embedder


def test_apply_split_to_second_embedder(inputs, tmp_path):
    viral, host = inputs
    first = make_split(viral, host, out_dir=tmp_path / "fastesm")
    esm_viral, esm_host = tmp_path / "esm_viral.pt", tmp_path / "esm_host.pt"
    v = merged(VIRAL_SOURCES, 1, dim=40, seed=5, protein_model="esm2_3b")
    order = list(reversed(range(len(v["ids"]))))  # another row order must not matter
    v = {**v, "ids": [v["ids"][i] for i in order], "data": v["data"][order]}
    torch.save(v, esm_viral)
    torch.save(merged(HOST_SOURCES, 0, dim=40, seed=6, protein_model="esm2_3b"), esm_host)
    second = apply_split(SplitPaths(tmp_path / "fastesm").manifest, esm_viral, esm_host, out_dir=tmp_path / "esm")
    assert second.manifest.split_id == first.manifest.split_id
    assert second.manifest.applied_from == sha256_file(first.paths.manifest)
    assert second.manifest.features["protein_model"] == "esm2_3b" and second.manifest.features["dim"] == 40
    a = read_merged(first.paths.test)
    b = read_merged(second.paths.test)
    assert a["ids"] == b["ids"] and torch.equal(a["labels"], b["labels"])
    assert b["data"].shape == (20, 40)


def test_apply_split_refuses_other_ids(inputs, tmp_path):
    viral, host = inputs
    make_split(viral, host, out_dir=tmp_path / "fastesm")
    v = merged(VIRAL_SOURCES, 1, dim=40)
    dropped = v["ids"][:3]
    keep = list(range(3, len(v["ids"])))
    v = {**v, "ids": [v["ids"][i] for i in keep], "data": v["data"][keep], "labels": v["labels"][keep],
         "lengths": v["lengths"][keep]}
    v["ids"][0] = "stranger_chunk_1F1"
    torch.save(v, tmp_path / "ev.pt")
    torch.save(merged(HOST_SOURCES, 0, dim=40), tmp_path / "eh.pt")
    with pytest.raises(InputError) as info:
        apply_split(tmp_path / "fastesm" / "manifest.json", tmp_path / "ev.pt", tmp_path / "eh.pt", out_dir=tmp_path / "e")
    message = str(info.value)
    assert "4 id(s) of the split are missing" in message  # 3 dropped + the one renamed
    assert dropped[0] in message
    assert "1 id(s) are not in the split, e.g. stranger_chunk_1F1" in message
    assert "200 ids" in message
    assert not (tmp_path / "e").exists()


# --------------------------------------------------------------------------- bad inputs


def test_empty_class_error(tmp_path):
    torch.save(merged(VIRAL_SOURCES, 1), tmp_path / "v.pt")
    torch.save(merged({}, 0), tmp_path / "h.pt")
    with pytest.raises(InputError, match=r"no host samples in h\.pt; expected at least 5"):
        make_split(tmp_path / "v.pt", tmp_path / "h.pt", out_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_swapped_roles_error(inputs, tmp_path):
    viral, host = inputs
    with pytest.raises(InputError, match="was given as --viral but 80 of its 80 samples are labelled 0"):
        make_split(host, viral, out_dir=tmp_path / "s")


def test_width_mismatch_between_files(tmp_path):
    torch.save(merged(VIRAL_SOURCES, 1, dim=24), tmp_path / "v.pt")
    torch.save(merged(HOST_SOURCES, 0, dim=40), tmp_path / "h.pt")
    with pytest.raises(DimensionError, match="different widths") as info:
        make_split(tmp_path / "v.pt", tmp_path / "h.pt", out_dir=tmp_path / "s")
    assert "v.pt: 24" in str(info.value) and "h.pt: 40" in str(info.value)


def test_broken_file_lists_every_problem(tmp_path):
    bad = merged(VIRAL_SOURCES, 1)
    bad["data"][3, 0] = float("nan")
    bad["lengths"] = bad["lengths"][:-1]
    bad["ids"][1] = bad["ids"][0]
    torch.save(bad, tmp_path / "v.pt")
    torch.save(merged(HOST_SOURCES, 0), tmp_path / "h.pt")
    with pytest.raises(InputError, match=r"3 problem\(s\)") as info:
        make_split(tmp_path / "v.pt", tmp_path / "h.pt", out_dir=tmp_path / "s")
    message = str(info.value)
    assert "NaN" in message and "'lengths' has 119 entries" in message and "duplicate id" in message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"test_fraction": 1.5}, "test_fraction 1.5"), ({"seed": -1}, "seed -1"), ({"group_by": "genome"}, "sample, source")],
    ids=["fraction", "seed", "group-by"],
)
def test_bad_parameters(inputs, tmp_path, kwargs, message):
    viral, host = inputs
    with pytest.raises(InputError, match=message):
        make_split(viral, host, out_dir=tmp_path / "s", **kwargs)


# --------------------------------------------------------------------------- command


def _parser():
    from virnucpro_core.commands import split as split_command

    parser = argparse.ArgumentParser(prog="virnucpro")
    split_command.register(parser.add_subparsers(dest="command"))
    return parser


def test_split_command(inputs, tmp_path, capsys):
    viral, host = inputs
    args = _parser().parse_args(["split", "--viral", str(viral), "--host", str(host), "--out", str(tmp_path / "s")])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "viral       120      108       12" in out and "leakage: 20/20 test samples" in out
    assert f"wrote {tmp_path / 's' / 'manifest.json'}" in out
    args = _parser().parse_args(
        ["split", "--viral", str(viral), "--host", str(host), "--out", str(tmp_path / "t"),
         "--manifest", str(tmp_path / "s" / "manifest.json"), "--seed", "3"]
    )
    with pytest.raises(InputError, match="--seed cannot be combined with --manifest"):
        args.run(args)


def _with_vocab(features: dict, protein_vocab: str | None) -> dict:
    """Merged-file meta as `virnucpro merge` writes it, with the protein model's vocabulary fingerprint."""
    protein = {"model": "fastesm2_650", "weights": "pretrained"}
    if protein_vocab is not None:
        protein["vocab_sha256"] = protein_vocab
    features["meta"]["protein"] = protein
    return features


@pytest.mark.parametrize(("viral_vocab", "host_vocab"), [("a" * 64, "b" * 64), ("a" * 64, None)],
                         ids=["different", "one-unrecorded"])
def test_features_of_different_protein_vocabularies_are_not_split_together(tmp_path, viral_vocab, host_vocab):
    torch.save(_with_vocab(merged(VIRAL_SOURCES, 1), viral_vocab), tmp_path / "v.pt")
    torch.save(_with_vocab(merged(HOST_SOURCES, 0), host_vocab), tmp_path / "h.pt")
    with pytest.raises(InputError, match="protein-model vocabulary fingerprints differ") as info:
        make_split(tmp_path / "v.pt", tmp_path / "h.pt", out_dir=tmp_path / "s")
    assert f"v.pt: {'a' * 12}" in str(info.value), str(info.value)
    assert not (tmp_path / "s").exists(), "nothing is written"


def test_features_of_one_vocabulary_split_together(tmp_path):
    torch.save(_with_vocab(merged(VIRAL_SOURCES, 1), "a" * 64), tmp_path / "v.pt")
    torch.save(_with_vocab(merged(HOST_SOURCES, 0), "a" * 64), tmp_path / "h.pt")
    make_split(tmp_path / "v.pt", tmp_path / "h.pt", out_dir=tmp_path / "s")
    test_meta = torch.load(tmp_path / "s" / "test.pt", weights_only=True)["meta"]
    assert test_meta["protein"]["vocab_sha256"] == "a" * 64, "the fingerprint travels with the split"
