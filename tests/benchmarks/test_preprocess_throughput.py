"""benchmarks/preprocess_throughput.py in its CPU smoke mode (20 genomes): the run, its checks and its gate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from virnucpro_core.preprocess.sequences import read_fasta

from tests.scripts import imported_script


@pytest.fixture(scope="module")
def pt():
    with imported_script("benchmarks/preprocess_throughput.py") as module:
        yield module


@pytest.fixture(scope="module")
def report(pt, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("pt") / "throughput.json"
    argv = ["--genomes", "20", "--runs", "1", "--warmup", "0", "--workers", "1,2", "--json", str(out)]
    assert pt.main(argv) == 0, "the smoke run did not exit 0"
    return json.loads(out.read_text(encoding="utf-8"))


def test_smoke_run_times_the_reference_and_each_worker_count(report):
    rows = [(v["name"], v["workers"]) for v in report["variants"]]
    assert rows == [("reference", 1), ("vectorised", 1), ("vectorised", 2)]
    for v in report["variants"]:
        for key in ("median_s", "records_per_s", "bases_per_s", "speedup"):
            assert math.isfinite(v[key]) and v[key] > 0, f"{v['name']} x{v['workers']}: {key} = {v[key]}"
        assert len(v["runs_s"]) == 1 and v["warmup_runs"] == 0 and v["records"] == 20
        assert v["identical"], f"{v['name']} x{v['workers']} wrote other bytes than the reference"
        assert v["outputs"] == report["variants"][0]["outputs"], "the saved hashes must agree with 'identical'"
    assert report["variants"][0]["speedup"] == 1.0
    assert 20 * 5_000 <= report["input"]["bases"] <= 20 * 50_000
    assert report["machine"]["nproc"] >= 1 and report["machine"]["load_average_after"] is not None
    assert report["command"][:2] == ["python", "benchmarks/preprocess_throughput.py"]


def test_a_different_byte_fails_the_run(pt, monkeypatch, capsys):
    real = pt.preprocess

    def one_more_residue(fasta, chunk_size, out, **options):
        result = real(fasta, chunk_size, out, **options)
        with open(Path(out) / "protein.faa", "a") as handle:
            handle.write(">extra\nM\n")
        return result

    monkeypatch.setattr(pt, "preprocess", one_more_residue)
    assert pt.main(["--genomes", "2", "--runs", "1", "--warmup", "0", "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "vectorised with 1 worker(s) wrote other bytes than the reference" in err, err


def test_a_missed_speed_target_names_the_metric_the_value_and_the_limit(pt, capsys):
    argv = ["--genomes", "2", "--runs", "1", "--warmup", "0", "--workers", "1", "--min-speedup", "1000000"]
    assert pt.main(argv) == 1
    err = capsys.readouterr().err
    assert "speed-up (best vectorised median vs reference median) measured" in err and "limit 1000000.00x" in err


def test_synthetic_genomes_are_seeded_and_look_like_genomes(pt, tmp_path):
    made = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        made[name] = tmp_path / f"{name}.fa"
        assert pt.write_genomes(made[name], 30, 1_000, 3_000, seed)[0] == 30
    assert made["a"].read_bytes() == made["b"].read_bytes(), "the same seed must give the same genomes"
    assert made["a"].read_bytes() != made["c"].read_bytes(), "another seed must give other genomes"
    records = read_fasta(made["a"])
    assert all(1_000 <= len(r.seq) <= 3_000 for r in records)
    text = "".join(r.seq for r in records)
    assert any(c.islower() for c in text) and "N" in text, "soft-masked stretches and N runs are part of the input"
