"""The reliability attack as a test: each case a hostile user tried, through the CLI, and the outcome it must have.

Outcome classes: a clear error (exit 2, the file named, no traceback, nothing
of the user's lost) or a correct output. Cases that need models use tiny
hand-made files, so the module runs in seconds.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virnucpro_core import files

from virnucpro_core.preprocess import sequences
from virnucpro_core.models.classifier import CheckpointMeta, MLPClassifier
from virnucpro_core.errors import InputError
from virnucpro_core.layouts.features import MergedFeatures
from virnucpro_core.files import sha256_file
from virnucpro_core.layouts.checkpoints import save_checkpoint
from virnucpro_core.evaluate.predictions import Predictions
from tests.lineage import matched

WIDTH = 12


def clear_error(code: int, err: str, *words: str) -> None:
    assert code == 2, f"expected a clear error (exit 2), got {code}\n{err}"
    assert "Traceback" not in err and err.count("error:") == 1, err
    for word in words:
        assert word in err, f"{word!r} not in the message:\n{err}"


def merged_file(path: Path, n: int = 8) -> Path:
    """A labelled merged feature file of both classes (what `virnucpro split` writes as test.pt)."""
    generator = torch.Generator().manual_seed(0)
    ids = [f"r{i}_chunk_1F1" for i in range(n)]
    labels = torch.tensor([i % 2 for i in range(n)])
    features = MergedFeatures(ids, torch.randn(n, WIDTH, generator=generator), labels,
                              torch.full((n,), 99, dtype=torch.long), {"protein_model": "fastesm2_650"})
    return features.save(path)


def checkpoint(path: Path) -> Path:
    model = MLPClassifier(WIDTH, protein_model="fastesm2_650", dna_model="dnabert_s")
    return save_checkpoint(model, path, CheckpointMeta("fastesm2_650", "dnabert_s", WIDTH))


def predictions(path: Path, model: str, checkpoint_sha: str) -> Path:
    meta = {"model": model, "checkpoint": {"path": f"{model}.pt", "sha256": checkpoint_sha},
            "split": {"split_id": "s" * 64, "side": "test"}, "protein": {"model": model}, "dna": {},
            "lineage": matched("s" * 64)}
    ids = [f"r{i}_chunk_1F1" for i in range(8)]
    y = [i % 2 for i in range(8)]
    return Predictions(ids, y, [0.9 if v else 0.1 for v in y], y, [99] * 8, meta=meta).save(path)


# --------------------------------------------------------------------------- WRONG


def test_compare_refuses_swapped_files(tmp_path, run_cli):
    esm, fast = predictions(tmp_path / "esm.json", "esm2_3b", "a" * 64), predictions(tmp_path / "f.json",
                                                                                     "fastesm2_650", "b" * 64)
    code, _, err = run_cli(["compare", "--fast", str(esm), "--baseline", str(fast), "--out", str(tmp_path / "c")])
    clear_error(code, err, "come from esm2_3b, not fastesm2_650", "swap the files")
    assert not (tmp_path / "c").exists()


def test_compare_refuses_the_same_file_twice(tmp_path, run_cli):
    fast = predictions(tmp_path / "f.json", "fastesm2_650", "b" * 64)
    code, _, err = run_cli(["compare", "--fast", str(fast), "--baseline", str(fast), "--out", str(tmp_path / "c")])
    clear_error(code, err, "same file")


def test_a_nan_checkpoint_is_refused_not_scored(tmp_path, run_cli):
    path = checkpoint(tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["hidden_layer.weight"].fill_(float("nan"))
    torch.save(raw, path)
    code, _, err = run_cli(["evaluate", "--model", str(path), "--features", str(merged_file(tmp_path / "t.pt")),
                            "--out", str(tmp_path / "p.json")])
    clear_error(code, err, str(path), "NaN or infinite weight")
    assert not (tmp_path / "p.json").exists()
    (tmp_path / "x.fa").write_text(">x\nATGAAATTTGGGCCC\n")
    code, _, err = run_cli(["predict", str(tmp_path / "x.fa"), "--model", str(path), "--out", str(tmp_path / "calls")])
    clear_error(code, err, "NaN or infinite weight")
    assert not (tmp_path / "calls").exists(), "nothing is called 'virus' with scores of -inf"


def test_rna_gives_the_frames_of_its_dna(tmp_path, run_cli):
    dna = "ATGAAATTTGGGCCCAAATTTAGCTAGCTAGGATCCATGCATTTGACCA" * 7
    (tmp_path / "dna.fa").write_text(f">x\n{dna}\n")
    (tmp_path / "rna.fa").write_text(f">x\n{dna.replace('T', 'U')}\n")
    for name in ("dna", "rna"):
        code, out, err = run_cli(["preprocess", str(tmp_path / f"{name}.fa"), "--out", str(tmp_path / name)])
        assert code == 0, err
    assert "read as T" in out
    assert (tmp_path / "rna" / "protein.faa").read_text() == (tmp_path / "dna" / "protein.faa").read_text()


# --------------------------------------------------------------------------- LOSS


@pytest.mark.parametrize("case", ["train", "extract", "merge", "evaluate-both-outputs", "preprocess-into-input"])
def test_an_output_never_overwrites_an_input(tmp_path, run_cli, case):
    split = tmp_path / "split"
    split.mkdir()
    train = merged_file(split / "train.pt")
    model = checkpoint(tmp_path / "m.pt")
    (tmp_path / "p.faa").write_text(">a\nMKV\n")
    (tmp_path / "protein.faa").write_text(">g\nACGTACGTACGT\n")
    argv = {
        "train": ["train", "--features", str(split), "--out", str(train)],
        "extract": ["extract", "--model", "fastesm2_650", "--weights", "random", str(tmp_path / "p.faa"),
                    "--out", str(tmp_path / "p.faa")],
        "merge": ["merge", str(train), str(model), "--label", "viral", "--out", str(train)],
        "evaluate-both-outputs": ["evaluate", "--model", str(model), "--features", str(train),
                                  "--out", str(tmp_path / "x.json"), "--metrics-out", str(tmp_path / "x.json")],
        "preprocess-into-input": ["preprocess", str(tmp_path / "protein.faa"), "--out", str(tmp_path)],
    }[case]
    before = {p: sha256_file(p) for p in (train, model, tmp_path / "p.faa", tmp_path / "protein.faa")}
    code, _, err = run_cli(argv)
    clear_error(code, err, "would overwrite the input")
    assert {p: sha256_file(p) for p in before} == before, "an input was changed"


def test_a_full_disk_during_preprocess_leaves_the_earlier_set_whole(tmp_path, run_cli, monkeypatch):
    (tmp_path / "g.fa").write_text(">g\n" + "ATGAAATTTGGGCCC" * 40 + "\n")
    out = tmp_path / "out"
    assert run_cli(["preprocess", str(tmp_path / "g.fa"), "--out", str(out)])[0] == 0
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    (tmp_path / "g.fa").write_text(">g\n" + "ATGCCCTTTGGGAAA" * 40 + "\n")
    written = []

    def full_after_one_block(writer, samples):
        real_write(writer, samples)  # the new chunks, nucleotides and proteins go to the staging folder ...
        written.append(len(samples.chunks))
        raise OSError(errno.ENOSPC, "No space left on device", str(writer.paths.protein))  # ... when the disk fills

    real_write = sequences.SampleWriter.write
    monkeypatch.setattr(sequences.SampleWriter, "write", full_after_one_block)
    code, _, err = run_cli(["preprocess", str(tmp_path / "g.fa"), "--out", str(out)])
    clear_error(code, err, "No space left on device", "free space")
    assert written and written[0] > 0, "the failure must come after new output was written"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier, "the earlier complete set must stay as it was"
    assert not list(tmp_path.glob(".*.part")), "no staging folder is left behind"


def test_training_into_an_unwritable_place_stops_before_training(tmp_path, run_cli, monkeypatch):
    split = tmp_path / "split"
    split.mkdir()
    merged_file(split / "train.pt")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = files.os.access
    monkeypatch.setattr(files.os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    code, out, err = run_cli(["train", "--features", str(split), "--out", str(locked / "m.pt")])
    clear_error(code, err, "is not writable", str(locked))
    assert "epoch" not in out, "nothing may be trained before the output place is known to be writable"


# --------------------------------------------------------------------------- TRACEBACK


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["extract", "--model", "fastesm2_650", "x.faa", "--out", "DIR"], ["is a directory"]),
        (["preprocess", "x.fa", "--out", "FILE"], ["is a file"]),
        (["split", "--viral", "v.pt", "--host", "h.pt", "--out", "FILE"], ["is a file"]),
        (["compare", "--fast", "f.json", "--baseline-metrics", "b.json", "--out", "FILE"], ["is a file"]),
        (["predict", "x.fa", "--model", "m.pt", "--out", "FILE"], ["is a file"]),
        (["merge", "d.pt", "p.pt", "--label", "viral", "--out", "DIR"], ["is a directory"]),
        (["train", "--features", "t.pt", "--out", "DIR"], ["is a directory"]),
        (["evaluate", "--model", "m.pt", "--features", "t.pt", "--out", "DIR"], ["--out DIR: unknown file type"]),
        (["evaluate", "--model", "m.pt", "--features", "t.pt", "--out", "DIR.json"], ["is a directory"]),
    ],
    ids=["extract", "preprocess", "split", "compare", "predict", "merge", "train", "evaluate-suffix",
         "evaluate"],
)
def test_outputs_of_the_wrong_kind_are_clear_errors(tmp_path, run_cli, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "DIR").mkdir()
    (tmp_path / "DIR.json").mkdir()
    (tmp_path / "FILE").write_text("mine\n")
    code, _, err = run_cli(argv)
    clear_error(code, err, *words)
    assert (tmp_path / "FILE").read_text() == "mine\n"


def test_a_seed_out_of_range_is_a_usage_error(run_cli):
    code, _, err = run_cli(["evaluate", "--model", "m.pt", "--features", "t.pt", "--out", "p.json",
                            "--seed", str(2**64)])
    assert code == 2 and "expected a seed from 0 to" in err and "Traceback" not in err, err


def test_os_errors_become_one_message(tmp_path, run_cli, monkeypatch):
    (tmp_path / "g.fa").write_text(">g\nATGAAATTTGGGCCC\n")

    def denied(writer, samples):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "out" / "chunks.fa"))

    monkeypatch.setattr(sequences.SampleWriter, "write", denied)
    code, _, err = run_cli(["preprocess", str(tmp_path / "g.fa"), "--out", str(tmp_path / "out")])
    clear_error(code, err, "Permission denied", "chunks.fa", "choose a location you can write to")


# --------------------------------------------------------------------------- fuzzing preprocess


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.lists(st.tuples(st.text(max_size=12), st.text(alphabet="ACGTUNRYKMSWBDHVacgtun-*.x \t", max_size=80)),
             max_size=4).map(lambda rs: "".join(f">{h}\n{s}\n" for h, s in rs)),
))
def test_any_fasta_gives_frames_by_the_rule_or_one_clear_error(tmp_path, text):
    path = tmp_path / "in.fa"
    path.write_bytes(text.encode("utf-8", errors="replace"))
    try:
        result = sequences.preprocess(path, 9, tmp_path / "out")
    except InputError:
        return
    frames = sequences.read_fasta(result.paths.nucleotide) if result.frames else []
    records = sequences.read_fasta(path)
    expected = [f.id for r in records for c in sequences.chunk_record(
        sequences.FastaRecord(r.id, r.seq.replace("U", "T").replace("u", "t")), 9)
        for f in sequences.select_frames(c)]
    assert [f.id for f in frames] == expected
    assert json.loads(result.paths.summary.read_text())["frames"] == len(expected)


# --------------------------------------------------------------------------- SILENT made loud


def _tiny_checkpoint(path: Path, chunk_size: int) -> Path:
    """Width of the tiny DNABERT-S + FastESM2 stand-ins (48 + 64), trained on features cut at ``chunk_size``."""
    model = MLPClassifier(112, protein_model="fastesm2_650", dna_model="dnabert_s")
    features = {"protein_model": "fastesm2_650", "dna_model": "dnabert_s", "size": "tiny", "chunk_size": chunk_size,
                "protein_dtype": "float32"}
    return save_checkpoint(model, path, CheckpointMeta("fastesm2_650", "dnabert_s", 112, features=features))


def test_predict_refuses_another_chunk_size_than_the_checkpoints(tmp_path, run_cli):
    ckpt = _tiny_checkpoint(tmp_path / "m.pt", 300)
    (tmp_path / "x.fa").write_text(">x\n" + "ATGAAATTTGGGCCC" * 50 + "\n")
    argv = ["predict", str(tmp_path / "x.fa"), "--model", str(ckpt), "--weights", "random", "--device", "cpu",
            "--no-progress", "--chunk-size", "500"]
    code, _, err = run_cli([*argv, "--out", str(tmp_path / "a")])
    clear_error(code, err, "chunk size 500 bp", "300 bp chunks", "--allow-mismatch")
    code, out, err = run_cli([*argv, "--out", str(tmp_path / "b"), "--allow-mismatch"])
    assert code == 0 and "note: this run uses chunk size 500 bp" in out, out + err
    code, out, err = run_cli([*argv[:-2], "--out", str(tmp_path / "c")])
    assert code == 0, err
    assert json.loads((tmp_path / "c" / "preprocess" / "preprocess.json").read_text())["chunk_size"] == 300, (
        "without --chunk-size, predict cuts as the checkpoint's training data was cut")


def test_evaluate_refuses_an_empty_feature_file(tmp_path, run_cli):
    no_rows = torch.zeros(0, dtype=torch.long)
    empty = MergedFeatures([], torch.zeros(0, WIDTH), no_rows, no_rows, {"protein_model": "fastesm2_650"})
    empty.save(tmp_path / "t.pt")
    model = checkpoint(tmp_path / "m.pt")
    code, _, err = run_cli(["evaluate", "--model", str(model), "--features", str(tmp_path / "t.pt"),
                            "--out", str(tmp_path / "p.json"), "--allow-other-split"])
    clear_error(code, err, "holds no samples")


def test_rerunning_onto_earlier_outputs_says_so(tmp_path, run_cli):
    (tmp_path / "g.fa").write_text(">g\n" + "ATGAAATTTGGGCCC" * 20 + "\n")
    argv = ["preprocess", str(tmp_path / "g.fa"), "--out", str(tmp_path / "out")]
    assert "replacing" not in run_cli(argv)[1]
    code, out, _ = run_cli(argv)
    assert code == 0 and "written earlier by `virnucpro preprocess`" in out and "note: replacing" in out, out


# --------------------------------------------------------------------------- files that ask to run code


class _Payload:
    """Unpickling this runs ``touch MARKER``: what a malicious feature file does with ``weights_only=False``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("command", ["merge", "import", "split", "train", "evaluate", "predict --features"])
def test_a_feature_file_that_runs_code_is_refused_by_every_command(tmp_path, run_cli, command):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"ids": ["a_chunk_1F1"], "data": torch.zeros(1, WIDTH), "labels": [1], "x": _Payload(marker)}, evil)
    good = merged_file(tmp_path / "good.pt")
    split_dir = tmp_path / "split"
    split_dir.mkdir()
    (split_dir / "train.pt").write_bytes(evil.read_bytes())
    argv = {
        "merge": ["merge", str(evil), str(good), "--label", "viral", "--out", str(tmp_path / "m.pt")],
        "import": ["import", "--viral", str(evil), "--host", str(good), "--out", str(tmp_path / "i")],
        "split": ["split", "--viral", str(evil), "--host", str(good), "--out", str(tmp_path / "s")],
        "train": ["train", "--features", str(split_dir), "--out", str(tmp_path / "t.pt")],
        "evaluate": ["evaluate", "--model", str(checkpoint(tmp_path / "c.pt")), "--features", str(evil),
                     "--out", str(tmp_path / "p.json")],
        "predict --features": ["predict", "--features", str(evil), "--model", str(checkpoint(tmp_path / "c.pt")),
                               "--out", str(tmp_path / "calls")],
    }[command]
    code, _, err = run_cli(argv)
    clear_error(code, err, "train.pt" if command == "train" else "evil.pt", "asks to run code", "system")
    assert not marker.exists(), "the payload ran"
