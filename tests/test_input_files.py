"""Inputs that are not what they seem (issue 38), each through the CLI: a path that is a pipe, a directory, a device,
a link loop or a dangling link; a FASTA file that is compressed, UTF-16, FASTQ or GenBank, or holds ids that are
not UTF-8; a folder of features with entries that cannot be read.

Outcome: one clear message naming what the path or file really is (exit 2, no traceback, nothing written), or
the correct output (gzip, bzip2 and xz are read as they are).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from pathlib import Path

import pytest
import torch

from tests.test_hostile_inputs import clear_error, merged_file
from virnucpro_core import input_files
from virnucpro_core.files import sha256_file
from virnucpro_core.preprocess import fasta

GENOME = "ATGAAATTTGGGCCCAAATTTAGCTAGCTAGGATCCATGCATTTGACCA" * 8
TEXT = f">rec1 first\n{GENOME}\n>rec2\n{GENOME[::-1]}\n"


def preprocess(run_cli, path, out: Path):
    return run_cli(["preprocess", str(path), "--out", str(out)])


# --------------------------------------------------------------------------- what the path is


def _fifo(tmp_path: Path) -> str:
    os.mkfifo(tmp_path / "fifo.fa")
    return str(tmp_path / "fifo.fa")


def _process_substitution(tmp_path: Path) -> str:
    # What bash hands a command for <(zcat x.fa.gz): the read end of a pipe, as /dev/fd/N.
    read, write = os.pipe()
    os.write(write, TEXT.encode())
    return f"/proc/self/fd/{read}"


def _directory(tmp_path: Path) -> str:
    (tmp_path / "genomes").mkdir()
    return str(tmp_path / "genomes")


def _loop(tmp_path: Path) -> str:
    (tmp_path / "loop.fa").symlink_to(tmp_path / "loop.fa")
    return str(tmp_path / "loop.fa")


def _dangling(tmp_path: Path) -> str:
    (tmp_path / "gone.fa").symlink_to("/mnt/unmounted-drive/genomes.fa")
    return str(tmp_path / "gone.fa")


@pytest.mark.parametrize(
    ("make", "words"),
    [(_fifo, ["is a named pipe", "read only once", "zcat"]),
     (_process_substitution, ["is a named pipe", "<(zcat ...)"]),
     (_directory, ["is a directory"]),
     (lambda _tmp: "/dev/zero", ["/dev/zero: is a device"]),
     (_loop, ["is a symlink loop"]),
     (_dangling, ["is a dangling symlink to /mnt/unmounted-drive/genomes.fa", "mount the drive"])],
    ids=["fifo", "process-substitution", "directory", "dev-zero", "symlink-loop", "dangling-symlink"],
)  # fmt: skip
def test_a_path_that_is_no_file_is_named_as_what_it_is(tmp_path, run_cli, make, words):
    code, _, err = preprocess(run_cli, make(tmp_path), tmp_path / "out")
    clear_error(code, err, *words)
    assert "no such file" not in err
    assert not (tmp_path / "out").exists()


def test_an_unreadable_file_is_a_permission_problem_not_a_bad_download(tmp_path, run_cli, monkeypatch):
    path = tmp_path / "in.fa"
    path.write_text(TEXT)
    # The tests may run as root, whom no mode bit stops: the kernel's answer is simulated, both where it comes.
    real_access = input_files.os.access
    monkeypatch.setattr(input_files.os, "access", lambda p, mode: Path(p) != path and real_access(p, mode))
    code, _, err = preprocess(run_cli, path, tmp_path / "out")
    clear_error(code, err, "permission denied", "read access", "nothing needs downloading again")
    monkeypatch.undo()

    def denied(name, *args, **kwargs):  # os.access agrees, and then opening it fails (an ACL, a race)
        if Path(name) == path:
            raise PermissionError(13, "Permission denied", str(name))
        return open(name, *args, **kwargs)

    monkeypatch.setattr(fasta, "open", denied, raising=False)
    code, _, err = preprocess(run_cli, path, tmp_path / "out")
    clear_error(code, err, "permission denied")
    assert "download" not in err.replace("nothing needs downloading again", "") and "truncated" not in err, err


def test_unreadable_model_weights_are_a_permission_problem_not_a_download_to_redo(tmp_path, run_cli, monkeypatch):
    import safetensors

    from virnucpro_core.models.registry import write_standin

    model = write_standin("fastesm2_650", "tiny", tmp_path / "fm")
    weights = model / "model.safetensors"
    real_access, real_open = input_files.os.access, safetensors.safe_open

    def safe_open(path, *args, **kwargs):  # what the kernel answers a user without read access
        if Path(path) == weights:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(input_files.os, "access", lambda p, mode: Path(p) != weights and real_access(p, mode))
    monkeypatch.setattr(safetensors, "safe_open", safe_open)
    (tmp_path / "p.faa").write_text(">a\nMKVLA\n")
    code, _, err = run_cli(["extract", "--model", "fastesm2_650", "--model-path", str(model), str(tmp_path / "p.faa"),
                            "--out", str(tmp_path / "f.pt")])
    clear_error(code, err, f"{weights}: cannot be read: permission denied", "nothing needs downloading again")
    assert "re-download" not in err and "truncated" not in err, err


# --------------------------------------------------------------------------- what the file holds


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress], ids=["gzip", "bzip2", "xz"])
def test_compressed_fasta_is_read_as_it_is(tmp_path, run_cli, compress):
    (tmp_path / "plain.fa").write_text(TEXT)
    (tmp_path / "packed.fa.z").write_bytes(compress(TEXT.encode()))
    for name in ("plain.fa", "packed.fa.z"):
        code, _, err = preprocess(run_cli, tmp_path / name, tmp_path / name.split(".")[0])
        assert code == 0, err
    for output in ("chunks.fa", "nucleotide.fa", "protein.faa"):
        assert (tmp_path / "packed" / output).read_bytes() == (tmp_path / "plain" / output).read_bytes()
    packed = fasta.FastaFile.read(tmp_path / "packed.fa.z")
    assert packed.sha256 == sha256_file(tmp_path / "packed.fa.z"), "hashed as stored, compressed"


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"\x28\xb5\x2f\xfd" + b"\x00" * 32, ["is zstd-compressed", "zstd -d"]),
     (b"\xef\xbb\xbf" + TEXT.encode(), ["byte-order mark (BOM"]),
     (TEXT.encode("utf-16"), ["is UTF-16 text", "iconv -f UTF-16"]),
     (TEXT.encode("utf-16-le"), ["is UTF-16 text", "iconv -f UTF-16"]),
     (f"@read1\n{GENOME}\n+\n{'I' * len(GENOME)}\n".encode(), ["is FASTQ", "seqtk seq -a"]),
     (gzip.compress(f"@read1\n{GENOME}\n+\n{'I' * len(GENOME)}\n".encode()), ["is FASTQ"]),
     (b"LOCUS       NC_001416   48502 bp    DNA\nORIGIN\n        1 gggcggcgac\n//\n", ["is a GenBank flat file"]),
     (b"PK\x03\x04" + b"\x00" * 32, ["is a zip archive"])],
    ids=["zstd", "utf8-bom", "utf16-bom", "utf16-no-bom", "fastq", "fastq-gzip", "genbank", "zip"],
)  # fmt: skip
def test_another_format_given_as_fasta_is_named(tmp_path, run_cli, data, words):
    (tmp_path / "in.fa").write_bytes(data)
    code, _, err = preprocess(run_cli, tmp_path / "in.fa", tmp_path / "out")
    clear_error(code, err, *words)
    assert "sequence text before the first" not in err
    assert not (tmp_path / "out").exists()


def test_ids_that_are_not_utf8_are_refused_naming_the_line_and_bytes(tmp_path, run_cli):
    # Two Latin-1 ids, different in the file: read with U+FFFD they would be one id twice.
    (tmp_path / "latin1.fa").write_bytes(f">ok\n{GENOME}\n".encode() + b">caf\xe9\n" + GENOME.encode()
                                         + b"\n>caf\xe8 desc\n" + GENOME.encode() + b"\n")
    code, _, err = preprocess(run_cli, tmp_path / "latin1.fa", tmp_path / "out")
    clear_error(code, err, "line 3: id 'caf\\xe9' is not valid UTF-8 (byte(s) \\xe9", "Latin-1 it would read 'café'",
                "line 5: id 'caf\\xe8'", "iconv")
    assert "duplicate" not in err and "\ufffd" not in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "seq.fa").write_bytes(b">a\nACGT\xe9ACGT\n")
    code, _, err = preprocess(run_cli, tmp_path / "seq.fa", tmp_path / "out")
    clear_error(code, err, "line 2, column 5: character(s) '\\\\xe9'")


# --------------------------------------------------------------------------- symlink loops as input or --out


def _loop_args(tmp_path: Path, command: str, where: str) -> list[str]:
    loop = tmp_path / ("loop.json" if command == "evaluate" else "loop")  # evaluate writes .json or .npz
    loop.symlink_to(loop)
    real = {"preprocess": tmp_path / "in.fa", "extract": tmp_path / "p.faa", "merge": tmp_path / "m.pt",
            "evaluate": tmp_path / "m.pt", "train": tmp_path / "split"}[command]
    (tmp_path / "in.fa").write_text(TEXT)
    (tmp_path / "p.faa").write_text(">a\nMKVLA\n")
    (tmp_path / "split").mkdir()
    merged_file(tmp_path / "m.pt")
    given, out = (loop, tmp_path / "out.json") if where == "input" else (real, loop)
    return {
        "preprocess": ["preprocess", str(given), "--out", str(out)],
        "extract": ["extract", "--model", "fastesm2_650", "--weights", "random", "--size", "tiny", str(given),
                    "--out", str(out)],
        "merge": ["merge", str(given), str(given), "--label", "viral", "--out", str(out)],
        "evaluate": ["evaluate", "--model", str(given), "--features", str(tmp_path / "m.pt"), "--out", str(out)],
        "train": ["train", "--features", str(given), "--out", str(out)],
    }[command]


@pytest.mark.parametrize("where", ["input", "out"])
@pytest.mark.parametrize("command", ["preprocess", "extract", "merge", "evaluate", "train"])
def test_a_symlink_loop_as_input_or_out_is_one_message(tmp_path, run_cli, command, where):
    code, _, err = run_cli(_loop_args(tmp_path, command, where))
    clear_error(code, err, "is a symlink loop", "--out" if where == "out" else f"{tmp_path / 'loop'}")
    assert "RuntimeError" not in err


# --------------------------------------------------------------------------- a folder accounts for every entry


def _original_merged(path: Path, label: int) -> Path:
    torch.save({"ids": ["a_chunk_1F1", "b_chunk_1F1"], "data": torch.randn(2, 3328), "labels": [label]}, path)
    return path


def test_import_names_every_entry_of_a_data_merge_tree_it_cannot_read(tmp_path, run_cli, monkeypatch):
    tree = tmp_path / "data_merge"
    viral, host = tree / "viral.1.1_merged", tree / "bacteria_merged"
    viral.mkdir(parents=True)
    host.mkdir()
    _original_merged(viral / "v0.pt", 1)
    _original_merged(host / "h0.pt", 0)
    unreadable = _original_merged(host / "h1.pt", 0)
    (viral / "v1.pt").symlink_to("/mnt/unmounted-drive/v1.pt")  # data on a drive that is not mounted
    (host / "h2.pt").symlink_to(host / "h2.pt")
    (tree / "plant_merged").symlink_to("/mnt/unmounted-drive/plant_merged")  # a whole category
    real_access = input_files.os.access
    monkeypatch.setattr(input_files.os, "access", lambda p, mode: Path(p) != unreadable and real_access(p, mode))
    code, _, err = run_cli(["import", str(tree), "--declare", "esm2_3b:float32", "--out", str(tmp_path / "imp")])
    clear_error(code, err, "4 entries cannot be read", f"{viral / 'v1.pt'}: is a dangling symlink",
                f"{host / 'h2.pt'}: is a symlink loop", f"{unreadable}: cannot be read: permission denied",
                f"{tree / 'plant_merged'}: is a dangling symlink")
    assert not (tmp_path / "imp").exists(), "a partial data set is never imported"
    code, _, err = run_cli(["import", "--viral", str(viral), "--host", str(host), "--declare", "esm2_3b:float32",
                            "--out", str(tmp_path / "imp")])
    clear_error(code, err, "v1.pt: is a dangling symlink")
