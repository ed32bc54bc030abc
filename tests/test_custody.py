"""Chain of custody: a file is used through a view or a cached stage only if it holds what was recorded.

Each case of issue 22 as a user would make it: a same-size replacement with
other rows, permuted rows, NaN rows, an out-of-range row index, negated
weights in a cached checkpoint, a truncated cached file, a replacement with
the old mtime restored. Each is refused or rebuilt with a message naming the
file, never silently used.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from virnucpro_core import custody
from virnucpro_core.code_identity import code_of
from virnucpro_core.custody import ContentRecord, changed, digest
from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_torch_save, sha256_file
from virnucpro_core.gate.stages import StageCache
from virnucpro_core.layouts.features import open_rows, read_merged
from virnucpro_core.split.make import make_split

VIRAL = [f"vir{s}_chunk_{k}F1" for s in range(4) for k in range(10)]
HOST = [f"host{s}_chunk_{k}F1" for s in range(4) for k in range(10)]


def merged(ids: list[str], label: int, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {"ids": ids, "data": torch.randn(len(ids), 8, generator=generator) + (1.0 if label else -1.0),
            "labels": torch.full((len(ids),), label, dtype=torch.long), "lengths": torch.full((len(ids),), 50),
            "meta": {"protein_model": "fastesm2_650", "dna_model": "dnabert_s", "label": "viral" if label else "host"}}


@pytest.fixture
def split_dir(tmp_path):
    """A split of two merged files (views in ``split/``), and the merged files."""
    viral, host = tmp_path / "merged" / "viral.pt", tmp_path / "merged" / "host.pt"
    viral.parent.mkdir()
    torch.save(merged(VIRAL, 1, 1), viral)
    torch.save(merged(HOST, 0, 2), host)
    make_split(viral, host, test_fraction=0.1, seed=42, out_dir=tmp_path / "split")
    return tmp_path


def replace_keeping_mtime(path, obj):
    """Write ``obj`` over ``path`` the way ``cp new old; touch -r backup old`` would: same name, old mtime."""
    stat = path.stat()
    torch.save(obj, path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# --------------------------------------------------------------------------- content records


def test_a_record_is_checked_by_stat_first_and_by_digest_when_the_stat_differs(tmp_path, monkeypatch):
    path = tmp_path / "a.bin"
    path.write_bytes(b"abcd" * 1000)
    record = ContentRecord.of(path)
    assert record.sha256 == sha256_file(path) and record.size == 4000
    reads = []
    real = custody.hashlib.file_digest
    monkeypatch.setattr(custody.hashlib, "file_digest", lambda f, name: reads.append(f.name) or real(f, name))
    custody._DIGESTS.clear()
    assert changed(path, record) is None and reads == [], "an unchanged stat record reads no byte"
    os.utime(path, ns=(record.mtime_ns + 10**9, record.mtime_ns + 10**9))
    assert changed(path, record) is None and len(reads) == 1, "a touched file is hashed, and its content decides"
    path.write_bytes(b"abce" * 1000)
    os.utime(path, ns=(record.mtime_ns, record.mtime_ns))
    assert "other bytes of the same size" in changed(path, record), "old mtime restored: the ctime still differs"
    path.write_bytes(b"abc")
    assert "is 3 bytes" in changed(path, record) and "was 4,000 when recorded on" in changed(path, record)
    path.unlink()
    assert changed(path, record) == "is gone"


def test_a_change_names_both_digests_and_when_the_record_was_taken(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"one")
    record = ContentRecord.of(path)
    path.write_bytes(b"two")
    text = changed(path, record)
    assert record.sha256 in text and sha256_file(path) in text and record.recorded in text, text


def test_files_saved_with_torch_are_hashed_while_written(tmp_path, monkeypatch):
    calls = []
    real = custody.hashlib.file_digest
    monkeypatch.setattr(custody.hashlib, "file_digest", lambda f, name: calls.append(f.name) or real(f, name))
    path = atomic_torch_save({"x": torch.arange(10)}, tmp_path / "x.pt")
    assert digest(path) == sha256_file(path) and calls == [], "the digest computed while writing is the file's"
    assert ContentRecord.of(path).sha256 == sha256_file(path) and calls == []


def test_a_record_written_out_reads_back_and_an_older_one_reads_as_none(tmp_path):
    path = tmp_path / "a"
    path.write_text("x")
    record = ContentRecord.of(path)
    assert ContentRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert ContentRecord.from_dict({"path": "a", "bytes": 1}) is None and ContentRecord.from_dict(None) is None


# --------------------------------------------------------------------------- views


def test_an_untouched_view_reads_the_rows_it_recorded(split_dir):
    test = read_merged(split_dir / "split" / "test.pt")
    source = torch.load(split_dir / "merged" / "viral.pt")
    where = {sample: i for i, sample in enumerate(source["ids"])}
    viral = [i for i, label in enumerate(test["labels"].tolist()) if label == 1]
    assert viral and all(torch.equal(test["data"][i], source["data"][where[test["ids"][i]]]) for i in viral)


@pytest.mark.parametrize("tamper", ["same-size file of host rows", "permuted rows", "NaN rows",
                                    "old mtime restored"])
def test_a_view_whose_file_changed_underneath_is_refused(split_dir, tamper):
    viral = split_dir / "merged" / "viral.pt"
    original = torch.load(viral)
    if tamper == "same-size file of host rows":  # an ordinary cp of another class's file of the same shape
        other = merged(VIRAL, 0, 2)
        torch.save(other, viral)
    elif tamper == "permuted rows":
        torch.save({**original, "data": original["data"].flip(0)}, viral)
    elif tamper == "NaN rows":
        data = original["data"].clone()
        data[3] = float("nan")
        torch.save({**original, "data": data}, viral)
    else:
        replace_keeping_mtime(viral, {**original, "data": original["data"] * -1})
    for side in ("train.pt", "test.pt"):
        with pytest.raises(InputError) as error:
            open_rows(split_dir / "split" / side)
        text = str(error.value)
        assert str(viral) in text and "holds other bytes" in text and "virnucpro split" in text, text
        assert sha256_file(viral) in text and "recorded" in text, "both digests and when it was recorded"


def test_a_view_whose_file_is_the_same_bytes_again_is_used(split_dir):
    viral = split_dir / "merged" / "viral.pt"
    shutil.copy(viral, split_dir / "backup.pt")
    shutil.copy(split_dir / "backup.pt", viral)  # new mtime and ctime, same bytes: the digest decides
    assert len(open_rows(split_dir / "split" / "test.pt")) == 8


def edit_view(path, change):
    obj = torch.load(path)
    change(obj)
    torch.save(obj, path)


@pytest.mark.parametrize(("index", "value", "words"), [
    ("row_index", -1, "row index(es) outside their file"),
    ("row_index", 40, "row index(es) outside their file"),
    ("file_index", 2, "file index(es) outside 0..1"),
    ("file_index", -1, "file index(es) outside 0..1"),
])
def test_a_view_index_outside_its_files_is_refused_before_any_row_is_read(split_dir, monkeypatch, index, value, words):
    view = split_dir / "split" / "test.pt"

    def change(obj):
        obj[index][0] = value
    edit_view(view, change)
    from virnucpro_core.layouts import store
    monkeypatch.setattr(store.FileRows, "rows", lambda *a: pytest.fail("a row was read"))
    monkeypatch.setattr(store.RowView, "gather", lambda *a: pytest.fail("a row was read"))
    with pytest.raises(InputError) as error:
        open_rows(view)
    assert words in str(error.value) and str(view) in str(error.value)


def test_a_view_of_an_older_version_is_refused_with_what_to_do(split_dir):
    view = split_dir / "split" / "train.pt"

    def change(obj):
        obj["version"] = 1
        for entry in obj["inputs"]:
            entry.pop("content")
            entry["bytes"] = 1
    edit_view(view, change)
    with pytest.raises(InputError, match="older version") as error:
        open_rows(view)
    assert "virnucpro split" in str(error.value)


def test_a_view_and_its_files_moved_together_resolve_against_the_views_folder(split_dir, tmp_path_factory):
    moved = tmp_path_factory.mktemp("elsewhere") / "project"
    shutil.copytree(split_dir, moved)  # copies: other inodes and times, same bytes
    shutil.rmtree(split_dir / "merged")
    rows = open_rows(moved / "split" / "test.pt")
    assert {str(f.path) for f in rows.rows.files} == {str(moved / "split" / ".." / "merged" / n)
                                                      for n in ("viral.pt", "host.pt")}
    assert len(rows.gather(list(range(len(rows))))) == 8


def test_a_view_with_relative_paths_reads_them_from_its_own_folder_not_the_working_directory(split_dir, monkeypatch):
    view = split_dir / "split" / "test.pt"

    def change(obj):
        for entry in obj["inputs"]:
            entry["path"] = entry["relative"]
    edit_view(view, change)
    monkeypatch.chdir(split_dir.parent)
    assert len(open_rows(view)) == 8


def test_nan_rows_reached_through_a_view_are_named_by_file_and_row_where_read(split_dir):
    from virnucpro_core.layouts.store import FileRows, RowView
    import numpy as np

    path = split_dir / "nan.pt"
    data = torch.zeros(5, 4)
    data[2, 1] = float("inf")
    torch.save({"ids": list("abcde"), "data": data}, path)
    view = RowView([FileRows.open(path)], np.zeros(5, dtype=np.int32), np.arange(5))
    assert view.gather([0, 1]).shape == (2, 4)
    with pytest.raises(InputError, match=f"row 2 of {path}"):
        view.gather([4, 2])


def test_evaluating_through_a_view_whose_file_was_replaced_by_other_rows_is_refused(split_dir, run_cli):
    # The case: `cp` of a same-size file of host rows over the viral merged file, then evaluate: accuracy
    # fell from 0.948 to 0.497 with exit status 0. Now one message and exit status 2.
    model = split_dir / "m.pt"
    code, _, err = run_cli(["train", "--features", str(split_dir / "split"), "--out", str(model), "--max-epochs", "1",
                            "--no-progress"])
    assert code == 0, err
    args = ["evaluate", "--model", str(model), "--features", str(split_dir / "split" / "test.pt"), "--out",
            str(split_dir / "p.json"), "--n-bootstrap", "10"]
    assert run_cli(args)[0] == 0
    viral = split_dir / "merged" / "viral.pt"
    torch.save(merged(VIRAL, 0, 2), viral)
    code, out, err = run_cli(args)
    assert code == 2 and str(viral) in err and "holds other bytes" in err and "Traceback" not in err, err


def test_training_on_a_view_whose_file_changed_stops_before_the_first_epoch(split_dir, run_cli):
    viral = split_dir / "merged" / "viral.pt"
    torch.save(merged(VIRAL, 0, 2), viral)
    code, out, err = run_cli(["train", "--features", str(split_dir / "split"), "--out", str(split_dir / "m.pt"),
                              "--no-progress"])
    assert code == 2 and "holds other bytes" in err and str(viral) in err and "Traceback" not in err
    assert not (split_dir / "m.pt").exists()


# --------------------------------------------------------------------------- the suite's stage cache


def weights_stage(tmp_path, lines):
    cache = StageCache(rebuild=False, announce=lines.append)
    builds = []

    def build(directory):
        builds.append(1)
        atomic_torch_save({"weight": torch.arange(12.0).reshape(3, 4) + 1}, directory / "final.pt")
        (directory / "history.json").write_text('{"epochs": 3}\n')

    def run():
        return cache.cached("train[fast]", {"seed": 42}, lambda key: tmp_path / f"train-{key}", build,
                            lambda d: torch.load(d / "final.pt")["weight"], code=code_of("train"))
    return run, builds


@pytest.mark.parametrize("tamper", ["negated weights", "truncated", "old mtime restored", "removed"])
def test_a_cached_stage_whose_output_changed_is_rebuilt_with_a_notice(tmp_path, tamper):
    lines = []
    run, builds = weights_stage(tmp_path, lines)
    expected = run()
    (final,) = tmp_path.glob("train-*/final.pt")
    if tamper == "negated weights":  # same size, finite
        torch.save({"weight": -expected}, final)
    elif tamper == "truncated":
        final.write_bytes(final.read_bytes()[:100])
    elif tamper == "old mtime restored":
        replace_keeping_mtime(final, {"weight": -expected})
    else:
        final.unlink()
    assert torch.equal(run(), expected) and len(builds) == 2, "the altered file was used"
    assert any(line.startswith("train[fast]: final.pt ") and "rebuilding" in line for line in lines), lines
    assert torch.equal(run(), expected) and len(builds) == 2, "the rebuilt stage is reused"


def test_a_stage_recorded_without_content_is_rebuilt(tmp_path):
    lines = []
    run, builds = weights_stage(tmp_path, lines)
    run()
    (done,) = tmp_path.glob("train-*/stage.json")
    record = json.loads(done.read_text())
    done.write_text(json.dumps({"stage": record["stage"], "params": record["params"]}))
    run()
    assert len(builds) == 2 and any("older version" in line for line in lines)


def test_a_stage_records_every_output_it_wrote(tmp_path):
    run, _ = weights_stage(tmp_path, [])
    run()
    (done,) = tmp_path.glob("train-*/stage.json")
    outputs = json.loads(done.read_text())["outputs"]
    assert sorted(outputs) == ["final.pt", "history.json"]
    assert all(outputs[n]["sha256"] == sha256_file(done.parent / n) for n in outputs)


# --------------------------------------------------------------------------- extracted features


def test_an_extracted_file_whose_vectors_changed_is_extracted_again_and_refused_by_merge(tmp_path, caplog):
    import logging

    from virnucpro_core.extract import features as F
    from virnucpro_core.layouts.virnucpro import load_features
    from virnucpro_core.models.registry import load_model

    model = load_model("fastesm2_650", weights="random", size="tiny", device="cpu", seed=0)
    fasta = tmp_path / "p.faa"
    fasta.write_text(">s0\nMKVLAAGIVW\n>s1\nMSTNPKPQRK\n>s2\nMADEEKLPPG\n")
    out = F.extract_to_file(model, fasta, tmp_path / "p.pt", progress=False)
    written = torch.load(out)
    assert written["meta"]["data_sha256"]
    replace_keeping_mtime(out, {**written, "data": -written["data"]})  # same size, finite, old mtime
    with pytest.raises(InputError, match="'data' is not what was written"):
        load_features(out)  # what `virnucpro merge` reads it with
    with caplog.at_level(logging.WARNING, logger="virnucpro_core.extract.features"):
        F.extract_to_file(model, fasta, out, progress=False)
    assert "cannot be reused; extracting again" in caplog.text
    assert torch.equal(torch.load(out)["data"], written["data"])


def test_a_file_whose_ids_were_swapped_is_extracted_again_and_refused_by_merge(tmp_path, run_cli):
    from virnucpro_core.extract import features as F
    from virnucpro_core.models.registry import load_model

    fasta = tmp_path / "p.faa"
    fasta.write_text(">s0\nMKVLAAGIVW\n>s1\nMSTNPKPQRK\n>s2\nMADEEKLPPG\n")
    argv = ["extract", str(fasta), "--model", "fastesm2_650", "--weights", "random", "--size", "tiny", "--device",
            "cpu", "--no-progress", "--out", str(tmp_path / "p.pt")]
    code, out, err = run_cli(argv)
    assert code == 0 and f"wrote {tmp_path / 'p.pt'}" in out, err
    code, out, err = run_cli(argv)
    assert code == 0 and f"reused {tmp_path / 'p.pt'}" in out and "wrote" not in out, "nothing written: never 'wrote'"
    written = torch.load(tmp_path / "p.pt")
    swapped = ["s1", "s0", "s2"]  # two ids swapped, every vector where it was
    replace_keeping_mtime(tmp_path / "p.pt", {**written, "ids": swapped})
    dna = tmp_path / "d.fa"
    dna.write_text(">s0\nACGTACGTAC\n>s1\nACGTTTGTAC\n>s2\nACGGGCGTAC\n")
    dna_model = load_model("dnabert_s", weights="random", size="tiny", device="cpu", seed=0)
    F.extract_to_file(dna_model, dna, tmp_path / "d.pt", progress=False)
    code, _, err = run_cli(["merge", str(tmp_path / "d.pt"), str(tmp_path / "p.pt"), "--label", "viral", "--out",
                            str(tmp_path / "m.pt")])
    assert code == 2 and "'ids' are not the ones extracted" in err, err
    code, out, err = run_cli(argv)
    assert code == 2 and "changed since `virnucpro extract` wrote it" in err, "edited since: not ours to replace"
    code, out, err = run_cli([*argv, "--force"])
    assert code == 0 and f"wrote {tmp_path / 'p.pt'}" in out, "extracted again, not reused"
    assert torch.load(tmp_path / "p.pt")["ids"] == ["s0", "s1", "s2"]


def test_finite_rows_whose_sum_overflows_are_still_read(tmp_path):
    from virnucpro_core.layouts.store import FileRows, RowView
    import numpy as np

    path = tmp_path / "big.pt"
    torch.save({"ids": list("ab"), "data": torch.full((2, 4), 3e38)}, path)
    view = RowView([FileRows.open(path)], np.zeros(2, dtype=np.int32), np.arange(2))
    assert torch.equal(view.gather([0, 1]), torch.full((2, 4), 3e38))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_checking_a_files_rows_hashes_it_in_the_same_read(tmp_path, monkeypatch, dtype):
    path = tmp_path / "m.pt"
    torch.save({**merged(VIRAL, 1, 1), "data": merged(VIRAL, 1, 1)["data"].to(dtype)}, path)
    reads = []
    real = custody.hashlib.file_digest
    monkeypatch.setattr(custody.hashlib, "file_digest", lambda f, name: reads.append(f.name) or real(f, name))
    rows = open_rows(path)
    assert digest(path) == sha256_file(path) and reads == [], "the rows' check already hashed the file"
    assert len(rows) == len(VIRAL)


def test_a_finished_shard_whose_vectors_changed_is_computed_again(tmp_path, caplog):
    import logging

    from virnucpro_core.extract import features as F
    from virnucpro_core.models.registry import load_model

    class Interrupt(Exception):
        pass

    def stop(index, total):
        raise Interrupt

    model = load_model("fastesm2_650", weights="random", size="tiny", device="cpu", seed=0)
    fasta = tmp_path / "p.faa"
    fasta.write_text("".join(f">s{i}\nMKVLAAGIVW{'ACDEFGHIK'[i]}\n" for i in range(4)))
    reference = torch.load(F.extract_to_file(model, fasta, tmp_path / "ref.pt", shard_size=2, progress=False))
    out = tmp_path / "p.pt"
    with pytest.raises(Interrupt):
        F.extract_to_file(model, fasta, out, shard_size=2, progress=False, on_shard=stop)
    (shard,) = tmp_path.glob("p.pt.shards/*/*.pt")
    kept = torch.load(shard)
    torch.save({**kept, "data": -kept["data"]}, shard)  # same ids, same size, other vectors
    with caplog.at_level(logging.WARNING, logger="virnucpro_core.extract.features"):
        F.extract_to_file(model, fasta, out, shard_size=2, progress=False)
    assert "its vectors are not the ones written" in caplog.text
    assert torch.equal(torch.load(out)["data"], reference["data"])
