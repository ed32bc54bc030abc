"""Feature files, merging, cached/resumable extraction and the extract/merge commands."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from virnucpro_core.extract import features as F
from virnucpro_core.extract import merged as M
from virnucpro_core.layouts import features as L
from virnucpro_core.extract.embeddings import extract_embeddings, records_sha256
from virnucpro_core.layouts.rows import Embeddings
from virnucpro_core.layouts.virnucpro import load_features
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.models.registry import load_model
from virnucpro_core.models.specs import get_spec

AMINO = "ACDEFGHIKLMNPQRSTVWY"


@pytest.fixture(scope="module")
def fastesm():
    return load_model("fastesm2_650", weights="random", size="tiny", device="cpu", seed=0)


def write_proteins(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        seq = "".join(rng.choice(AMINO) for _ in range(rng.randint(8, 40)))
        lines.append(f">s{i}\n{seq}\n")
    path.write_text("".join(lines))
    return path


def write_nucleotides(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    path.write_text(
        "".join(f">s{i}\n{''.join(rng.choice('ACGT') for _ in range(rng.randint(30, 90)))}\n" for i in range(n))
    )
    return path


def fake_features(
    model: str, ids: list[str], *, size: str = "full", dim: int | None = None, seed: int = 0
) -> Embeddings:
    """A feature file's content without running a model (merge tests)."""
    spec = get_spec(model)
    dim = dim or spec.dim_for(size)
    data = torch.randn(len(ids), dim, generator=torch.Generator().manual_seed(seed))
    meta = {
        "model": model, "display_name": spec.display_name, "weights": "pretrained", "size": size, "revision": "abc",
        "seed": None, "dtype": "float32", "pooling": spec.pooling, "input_sha256": "0" * 64, "dim": dim, "n": len(ids),
    }  # fmt: skip
    return Embeddings(list(ids), data, torch.arange(len(ids), dtype=torch.long) + 10, meta)


# --------------------------------------------------------------------------- per-model files


def test_save_load_round_trip(tmp_path):
    emb = fake_features("fastesm2_650", ["a", "b", "c"])
    L.save_features(emb, tmp_path / "f.pt")
    back = load_features(tmp_path / "f.pt")
    assert back.ids == emb.ids and torch.equal(back.data, emb.data) and torch.equal(back.lengths, emb.lengths)
    assert back.meta == emb.meta and back["data"] is back.data
    assert sorted(torch.load(tmp_path / "f.pt", weights_only=True)) == ["data", "ids", "lengths", "meta"]
    assert [p.name for p in tmp_path.iterdir()] == ["f.pt"], "no temporary files left behind"


def test_layout_problems_are_listed_together(tmp_path):
    emb = fake_features("fastesm2_650", ["a", "a", "c"])
    bad = emb.to_dict()
    bad["data"] = bad["data"].double()
    del bad["lengths"]
    del bad["meta"]["pooling"]
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(InputError) as info:
        load_features(tmp_path / "bad.pt")
    message = str(info.value)
    for expected in (
        "missing key 'lengths'",
        "duplicate id(s): a",
        "torch.float64",
        "meta lacks 'pooling'",
        str(tmp_path / "bad.pt"),
    ):
        assert expected in message, message


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "junk.pt").write_text("not a torch file")
    with pytest.raises(InputError, match="not a readable feature file"):
        load_features(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="not found"):
        load_features(tmp_path / "absent.pt")


# --------------------------------------------------------------------------- merging


@pytest.mark.parametrize(
    ("protein_model", "width"), [("fastesm2_650", 2048), ("esm2_3b", 3328)], ids=["fastesm2", "esm2_3b"]
)
def test_merge_concatenates_dna_then_protein_in_protein_order(tmp_path, protein_model, width):
    dna = fake_features("dnabert_s", ["a", "b", "c"], seed=1)
    protein = fake_features(protein_model, ["c", "a", "b"], seed=2)
    L.save_features(dna, tmp_path / "dna.pt")
    L.save_features(protein, tmp_path / "protein.pt")
    merged = M.merge_features(tmp_path / "dna.pt", tmp_path / "protein.pt", "viral")
    assert merged.ids == ["c", "a", "b"] and merged.data.shape == (3, width)
    assert torch.equal(merged.data[0, :768], dna.data[2]) and torch.equal(merged.data[0, 768:], protein.data[0])
    assert merged.labels.tolist() == [1, 1, 1] and merged.labels.dtype == torch.int64
    assert torch.equal(merged.lengths, protein.lengths)
    assert merged.meta["protein"]["model"] == protein_model and merged.meta["dim"] == width

    L.save_merged(merged, tmp_path / "merged.pt")
    back = L.load_merged(tmp_path / "merged.pt")
    assert back.ids == merged.ids and torch.equal(back.data, merged.data) and torch.equal(back.labels, merged.labels)


def test_host_label_is_zero(tmp_path):
    L.save_features(fake_features("dnabert_s", ["a"]), tmp_path / "d.pt")
    L.save_features(fake_features("esm2_3b", ["a"]), tmp_path / "p.pt")
    assert M.merge_features(tmp_path / "d.pt", tmp_path / "p.pt", "host").labels.tolist() == [0]
    with pytest.raises(InputError, match="viral"):
        M.merge_features(tmp_path / "d.pt", tmp_path / "p.pt", "phage")


def test_non_finite_features_are_not_merged(tmp_path):
    protein = fake_features("fastesm2_650", ["a", "b", "c"])
    protein.data[1, 5] = float("nan")
    protein.data[2, 0] = float("inf")
    L.save_features(fake_features("dnabert_s", ["a", "b", "c"]), tmp_path / "d.pt")
    L.save_features(protein, tmp_path / "p.pt")
    with pytest.raises(InputError, match="NaN or infinite values cannot be merged") as info:
        M.merge_features(tmp_path / "d.pt", tmp_path / "p.pt", "viral")
    assert f"{tmp_path / 'p.pt'}: 2 of 3 rows" in str(info.value) and "(b, c)" in str(info.value), str(info.value)


def test_wrong_width_names_both_files_and_dimensions(tmp_path):
    L.save_features(fake_features("dnabert_s", ["a", "b"]), tmp_path / "dna.pt")
    L.save_features(fake_features("fastesm2_650", ["a", "b"], dim=1024), tmp_path / "protein.pt")
    with pytest.raises(DimensionError) as info:
        M.merge_features(tmp_path / "dna.pt", tmp_path / "protein.pt", "viral")
    message = str(info.value)
    assert "expected: 768 (DNABERT-S) + 1280 (FastESM2_650) = 2048" in message, message
    assert "found: 768 (dna.pt) + 1024 (protein.pt) = 1792" in message, message


def test_tiny_and_full_features_do_not_mix(tmp_path):
    L.save_features(fake_features("dnabert_s", ["a"], size="tiny", dim=32), tmp_path / "dna.pt")
    L.save_features(fake_features("fastesm2_650", ["a"]), tmp_path / "protein.pt")
    with pytest.raises(DimensionError, match="same --size"):
        M.merge_features(tmp_path / "dna.pt", tmp_path / "protein.pt", "viral")


def test_ids_in_one_file_only_are_listed_with_counts(tmp_path):
    L.save_features(fake_features("dnabert_s", ["a", "b", "c", "x1"]), tmp_path / "dna.pt")
    L.save_features(fake_features("fastesm2_650", ["a", "b", "c", "y1", "y2"]), tmp_path / "protein.pt")
    with pytest.raises(InputError) as info:
        M.merge_features(tmp_path / "dna.pt", tmp_path / "protein.pt", "viral")
    message = str(info.value)
    assert "2 of 5 ids only in protein.pt: y1, y2" in message, message
    assert "1 of 4 ids only in dna.pt: x1" in message, message


@pytest.mark.parametrize(
    ("dna_model", "protein_model", "message"),
    [
        ("fastesm2_650", "fastesm2_650", "is not DNABERT-S features"),
        ("dnabert_s", "dnabert_s", "is not protein-model features"),
    ],
    ids=["protein-as-dna", "dna-as-protein"],
)
def test_wrong_model_family(tmp_path, dna_model, protein_model, message):
    L.save_features(fake_features(dna_model, ["a"]), tmp_path / "dna.pt")
    L.save_features(fake_features(protein_model, ["a"]), tmp_path / "protein.pt")
    with pytest.raises(InputError, match=message):
        M.merge_features(tmp_path / "dna.pt", tmp_path / "protein.pt", "viral")


# --------------------------------------------------------------------------- cached, resumable extraction


def test_extract_to_file_matches_direct_extraction_and_cleans_up(tmp_path, fastesm):
    fasta = write_proteins(tmp_path / "p.faa", 11)
    out = F.extract_to_file(fastesm, fasta, tmp_path / "out" / "p.pt", shard_size=4, progress=False)
    emb = load_features(out)
    direct = extract_embeddings(fastesm, F.read_records(fasta, "esm"), progress=False)
    assert emb.ids == direct.ids and torch.allclose(emb.data, direct.data, atol=1e-6)
    assert emb.meta["input_file"] == fasta.name and len(emb.meta["cache_key"]) == 64
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p.pt"], "shards are removed once assembled"


def test_in_a_pipe_extraction_says_a_line_per_shard_and_draws_no_bar(tmp_path, fastesm, capfd):
    fasta = write_proteins(tmp_path / "p.faa", 5)
    F.extract_to_file(fastesm, fasta, tmp_path / "p.pt", shard_size=2, progress=True)  # pytest's stderr: a pipe
    err = capfd.readouterr().err
    assert "\r" not in err, "no redrawn tqdm bar in a log"
    lines = [line for line in err.splitlines() if line.startswith("shard ")]
    assert [line.split(":")[0] for line in lines] == ["shard 1/3", "shard 2/3", "shard 3/3"], err
    assert lines[0].split(": ")[1].startswith("2 sequences in ")


def test_rerun_reuses_the_finished_output(tmp_path, fastesm, caplog):
    fasta = write_proteins(tmp_path / "p.faa", 5)
    out = F.extract_to_file(fastesm, fasta, tmp_path / "p.pt", shard_size=2, progress=False)
    stamp = out.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="virnucpro_core.extract.features"):
        F.extract_to_file(fastesm, fasta, out, shard_size=2, progress=False)
    assert "reusing" in caplog.text and "--rebuild" in caplog.text, caplog.text
    assert out.stat().st_mtime_ns == stamp
    F.extract_to_file(fastesm, fasta, out, shard_size=2, progress=False, rebuild=True)
    assert out.stat().st_mtime_ns != stamp


def test_other_model_settings_do_not_reuse(tmp_path, fastesm, caplog):
    fasta = write_proteins(tmp_path / "p.faa", 5)
    out = F.extract_to_file(fastesm, fasta, tmp_path / "p.pt", progress=False)
    other = load_model("fastesm2_650", weights="random", device="cpu", seed=1)
    with caplog.at_level(logging.INFO, logger="virnucpro_core.extract.features"):
        F.extract_to_file(other, fasta, out, progress=False)
    assert "reusing" not in caplog.text
    assert load_features(out).meta["seed"] == 1


def test_feature_files_carry_the_vocabulary_fingerprint_and_it_keys_the_cache(tmp_path, fastesm, caplog):
    from virnucpro_core.models.registry import vocab_sha256

    fasta = write_proteins(tmp_path / "p.faa", 5)
    out = F.extract_to_file(fastesm, fasta, tmp_path / "p.pt", progress=False)
    meta = load_features(out).meta
    assert meta["vocab_sha256"] == vocab_sha256(fastesm.tokenizer) and meta["vocab"] == fastesm.provenance["vocab"]
    other_vocab = dataclasses.replace(fastesm, provenance={**fastesm.provenance, "vocab_sha256": "0" * 64})
    with caplog.at_level(logging.INFO, logger="virnucpro_core.extract.features"):
        F.extract_to_file(other_vocab, fasta, out, progress=False)
    assert "reusing" not in caplog.text, "features of another vocabulary must not be reused"


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_identical_file(tmp_path, fastesm, caplog):
    fasta = write_proteins(tmp_path / "p.faa", 10)
    reference = F.extract_to_file(fastesm, fasta, tmp_path / "ref" / "p.pt", shard_size=3, progress=False)

    def stop_after_second(index, total):
        if index == 1:
            raise Interrupt

    out = tmp_path / "run" / "p.pt"
    with pytest.raises(Interrupt):
        F.extract_to_file(fastesm, fasta, out, shard_size=3, progress=False, on_shard=stop_after_second)
    assert not out.exists()
    with caplog.at_level(logging.INFO, logger="virnucpro_core.extract.features"):
        F.extract_to_file(fastesm, fasta, out, shard_size=3, progress=False)
    assert "reusing 2/4 shards from" in caplog.text and "--rebuild" in caplog.text, caplog.text
    assert out.read_bytes() != b"" and _same(out, reference)


def _same(a: Path, b: Path) -> bool:
    x, y = load_features(a), load_features(b)
    return x.ids == y.ids and torch.equal(x.data, y.data) and torch.equal(x.lengths, y.lengths)


_CHILD = textwrap.dedent(
    """
    import sys
    from virnucpro_core.extract.features import extract_to_file
    from virnucpro_core.models.registry import load_model

    loaded = load_model("fastesm2_650", weights="random", size="tiny", device="cpu", seed=0)
    def report(index, total):
        print(f"shard {index} of {total}", flush=True)
    extract_to_file(loaded, sys.argv[1], sys.argv[2], shard_size=5, progress=False, on_shard=report)
    print("finished", flush=True)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX kill -9")
def test_kill_9_then_resume_gives_the_identical_file(tmp_path, fastesm, caplog):
    fasta = write_proteins(tmp_path / "p.faa", 400, seed=4)
    out = tmp_path / "run" / "p.pt"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(fasta), str(out)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        for line in child.stdout:
            if line.startswith("shard 1 of"):
                child.send_signal(signal.SIGKILL)  # mid-run: shard 2 may be half-written
                break
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, "the child finished before it could be killed"
    assert not out.exists()
    with caplog.at_level(logging.INFO, logger="virnucpro_core.extract.features"):
        F.extract_to_file(fastesm, fasta, out, shard_size=5, progress=False)
    assert "reusing" in caplog.text and "/80 shards from" in caplog.text, caplog.text
    reference = F.extract_to_file(fastesm, fasta, tmp_path / "ref" / "p.pt", shard_size=5, progress=False)
    assert _same(out, reference)


def test_protein_fasta_problems_are_collected(tmp_path):
    (tmp_path / "bad.faa").write_text(">a\nMKV*\n>a\nMKV\n>b\n\n>c\nmkv\n")
    with pytest.raises(InputError) as info:
        F.read_records(tmp_path / "bad.faa", "esm")
    message = str(info.value)
    for expected in ("'*'", "duplicate id 'a'", "'b' has no sequence", "'kmv'"):
        assert expected in message, message


def test_nucleotides_given_to_a_protein_model_are_refused(tmp_path):
    fasta = write_nucleotides(tmp_path / "n.fa", 3)
    with pytest.raises(InputError, match="looks like nucleotide sequences"):
        F.read_records(fasta, "esm")


# --------------------------------------------------------------------------- commands


def parser_for(*modules) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="virnucpro")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in modules:
        module.register(subparsers)
    return parser


def test_extract_command_help_states_defaults():
    from virnucpro_core.commands import extract

    text = parser_for(extract)._subparsers._group_actions[0].choices["extract"].format_help()
    for expected in (
        "default: pretrained",
        "default: tiny",
        "default: the precision policy: float16 for fastesm2_650 on CUDA, float32 otherwise",
        "default: auto",
        "8192 for esm",
        "default: 2000",
    ):
        assert expected in " ".join(text.split()), text


def test_extract_command_writes_features(tmp_path, capsys):
    from virnucpro_core.commands import extract

    fasta = write_proteins(tmp_path / "p.faa", 4)
    args = parser_for(extract).parse_args(
        [
            "extract",
            "--model",
            "esm2_3b",
            "--weights",
            "random",
            "--device",
            "cpu",
            "--no-progress",
            str(fasta),
            "--out",
            str(tmp_path / "p.pt"),
        ]
    )
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "4 records -> ESM2 3B (random weights, tiny, float32, cpu" in out and "128-d vectors" in out, out
    assert "eager path" in out, out
    features = load_features(tmp_path / "p.pt")
    assert features.data.shape == (4, 128) and features.meta["path"] == "eager"


def test_extract_command_refuses_a_compiled_path_for_dnabert(tmp_path, capsys):
    from virnucpro_core.commands import extract
    from virnucpro_core.errors import InputError

    fasta = tmp_path / "n.fa"
    fasta.write_text(">n1\nACGTACGTAC\n")
    args = parser_for(extract).parse_args(["extract", "--model", "dnabert_s", "--weights", "random", "--device", "cpu",
                                           "--extraction-path", "packed", str(fasta), "--out", str(tmp_path / "n.pt")])
    with pytest.raises(InputError, match="is for the ESM protein models, not DNABERT-S"):
        args.run(args)
    assert not (tmp_path / "n.pt").exists()


def test_the_execution_path_keys_the_cache(tmp_path, fastesm):
    """A compiled path rounds differently from eager: its file is another extraction, never reused for eager's."""
    from virnucpro_core.extract.forward import prepare_path

    records = [(f"p{i}", "MKV" * (i + 1)) for i in range(3)]
    eager = prepare_path(fastesm, "eager")
    key_eager, params = F.cache_key(eager, records_sha256(records), toks_per_batch=8192, shard_size=10)
    compiled = prepare_path(fastesm, "compiled")
    key_compiled, _ = F.cache_key(compiled, records_sha256(records), toks_per_batch=8192, shard_size=10)
    assert params["path"] == "eager" and key_eager != key_compiled


def test_extract_then_merge_commands(tmp_path, capsys):
    from virnucpro_core.commands import extract, merge

    parser = parser_for(extract, merge)
    nucleotide, protein = write_nucleotides(tmp_path / "n.fa", 3), write_proteins(tmp_path / "p.faa", 3)
    for model, fasta, out in (("dnabert_s", nucleotide, "dna.pt"), ("fastesm2_650", protein, "protein.pt")):
        args = parser.parse_args(
            [
                "extract",
                "--model",
                model,
                "--weights",
                "random",
                "--device",
                "cpu",
                "--no-progress",
                str(fasta),
                "--out",
                str(tmp_path / out),
            ]
        )
        assert args.run(args) == 0
    args = parser.parse_args(
        [
            "merge",
            str(tmp_path / "dna.pt"),
            str(tmp_path / "protein.pt"),
            "--label",
            "viral",
            "--out",
            str(tmp_path / "m.pt"),
        ]
    )
    assert args.run(args) == 0
    merged = L.load_merged(tmp_path / "m.pt")
    dna_dim, protein_dim = get_spec("dnabert_s").dim_for("tiny"), get_spec("fastesm2_650").dim_for("tiny")
    assert merged.data.shape == (3, dna_dim + protein_dim) and merged.labels.tolist() == [1, 1, 1]
    assert f"= {dna_dim + protein_dim} features" in capsys.readouterr().out


def test_merge_command_error_reaches_the_user(tmp_path):
    from virnucpro_core.commands import merge

    L.save_features(fake_features("dnabert_s", ["a"]), tmp_path / "dna.pt")
    L.save_features(fake_features("fastesm2_650", ["a"], dim=100), tmp_path / "protein.pt")
    args = parser_for(merge).parse_args(
        [
            "merge",
            str(tmp_path / "dna.pt"),
            str(tmp_path / "protein.pt"),
            "--label",
            "host",
            "--out",
            str(tmp_path / "m.pt"),
        ]
    )
    with pytest.raises(DimensionError, match="= 2048"):
        args.run(args)
    assert not (tmp_path / "m.pt").exists()


def test_features_of_a_preprocess_output_record_its_chunk_size(tmp_path, fastesm):
    from virnucpro_core.preprocess.sequences import preprocess
    from virnucpro_core.layouts.features import feature_info

    (tmp_path / "g.fa").write_text(">g\n" + "ATGAAATTTGGGCCC" * 30 + "\n")
    prep = preprocess(tmp_path / "g.fa", 150, tmp_path / "pp")
    out = F.extract_to_file(fastesm, prep.paths.protein, tmp_path / "p.pt", progress=False)
    meta = load_features(out).meta
    assert meta["chunk_size"] == 150
    assert feature_info({"protein": meta})["chunk_size"] == 150 and feature_info({"protein": meta})[
        "protein_dtype"] == "float32"
    loose = write_proteins(tmp_path / "loose.faa", 3)
    assert load_features(F.extract_to_file(fastesm, loose, tmp_path / "l.pt", progress=False)).meta[
        "chunk_size"] is None, "a FASTA that is not a preprocess output says nothing about chunks"
