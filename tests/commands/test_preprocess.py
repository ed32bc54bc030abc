"""`virnucpro preprocess` from the command line: outputs, and one clear message per bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from virnucpro_core.outputs import RECORD


def test_preprocess_ok(tmp_path, run_cli):
    fasta = tmp_path / "in.fna"
    fasta.write_text(">g1\n" + "ATGAAATTTGGGCCC" * 30 + "\n")
    code, out, err = run_cli(["preprocess", str(fasta), "--chunk-size", "300", "--out", str(tmp_path / "o")])
    assert code == 0, err
    assert "1 records -> 2 chunks of 300 bp" in out
    assert sorted(p.name for p in (tmp_path / "o").iterdir() if p.name != RECORD) == [
        "chunks.fa",
        "nucleotide.fa",
        "preprocess.json",
        "protein.faa",
    ]


@pytest.mark.parametrize(
    ("content", "chunk_size", "message"),
    [
        ("", "300", "no FASTA records"),
        ("no header here\n", "300", "before the first '>' header"),
        (">a\nACGT\n>a\nACGT\n", "300", "duplicate id 'a'"),
        (">a\nACGT*\n", "300", "character(s) '*'"),
        (">a\nACGT\n", "0", "positive integer"),
        (">a\nACGT\n", "three", "positive integer"),
    ],
    ids=["empty-file", "no-records", "duplicate-ids", "bad-character", "zero-chunk", "text-chunk"],
)
def test_bad_input_one_clear_message_nothing_written(tmp_path, run_cli, content, chunk_size, message):
    fasta = tmp_path / "in.fa"
    fasta.write_text(content)
    out_dir = tmp_path / "out"
    code, _, err = run_cli(["preprocess", str(fasta), "--chunk-size", chunk_size, "--out", str(out_dir)])
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_missing_file(tmp_path, run_cli):
    code, _, err = run_cli(["preprocess", str(tmp_path / "nope.fa"), "--out", str(tmp_path / "o")])
    assert code == 2 and "no such file" in err


def test_console_script_prints_no_traceback(tmp_path):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\nAC GT\n>a\nACGT\n")
    proc = subprocess.run(
        [sys.executable, "-m", "virnucpro_core.cli", "preprocess", str(fasta), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "duplicate id 'a'" in proc.stderr and "Traceback" not in proc.stderr


def test_workers_do_not_change_the_output(tmp_path, run_cli):
    """Both smoke files together (~886,000 bases): two default blocks, so --workers 2 starts a pool."""
    smoke = Path(__file__).resolve().parents[2] / "fixtures" / "smoke"
    fasta = tmp_path / "both.fasta"
    fasta.write_bytes((smoke / "viral.fasta").read_bytes() + (smoke / "host.fasta").read_bytes())
    outputs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        code, _, err = run_cli(["preprocess", str(fasta), "--workers", workers, "--out", str(out)])
        assert code == 0, err
        outputs[workers] = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != RECORD}
    assert len(outputs["1"]) == 4 and outputs["1"]["protein.faa"], "four files, with frames"
    assert outputs["1"] == outputs["2"], "the output must not depend on the number of workers"


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_workers_must_be_a_positive_number(tmp_path, run_cli, workers):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\nACGTACGT\n")
    code, _, err = run_cli(["preprocess", str(fasta), "--workers", workers, "--out", str(tmp_path / "o")])
    assert code == 2 and "--workers: " in err and "expected a positive integer" in err, err
    assert not (tmp_path / "o").exists()


def test_workers_help_states_the_default_and_the_trade_off(run_cli):
    code, out, _ = run_cli(["preprocess", "--help"])
    text = " ".join(out.split())
    assert code == 0
    assert "--workers N" in text and "default: every core this process may use" in text
    assert "The output is the same for any N" in text and "memory grows by" in text
