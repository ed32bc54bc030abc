"""Extraction shared out among ranks: the same file as one process, resumable, and failures that stop everyone.

The first tests run the ranks as threads of this process (``tests/ranks.py``),
in a second or two. The ``slow`` ones run the real thing on the CPU:
``python -m torch.distributed.run --nproc_per_node=2 -m virnucpro_core.cli
extract`` with a tiny stand-in, about 10 s per launch on 2 cores.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from virnucpro_core.extract import features as F
from virnucpro_core.extract.distributed import RanksFailed, torchrun_command
from virnucpro_core.extract.embeddings import records_sha256
from virnucpro_core.errors import InputError
from virnucpro_core.layouts.virnucpro import load_features
from virnucpro_core.models.registry import load_model
from virnucpro_core.paths import ShardPaths

from tests.ranks import run_ranks, store_groups
from tests.extract.test_features import write_proteins


@pytest.fixture(scope="module")
def fastesm():
    # Seed 42: the CLI's default, so the torchrun runs below make the same vectors.
    return load_model("fastesm2_650", weights="random", size="tiny", device="cpu", seed=42)


@pytest.fixture
def groups():
    with store_groups() as make:
        yield make


def shard_paths(loaded, fasta: Path, out: Path, shard_size: int) -> ShardPaths:
    """Where ``extract_to_file`` keeps the shards of this extraction (default token budget)."""
    key, _ = F.cache_key(loaded, records_sha256(F.read_records(fasta, "esm")), toks_per_batch=8192,
                         shard_size=shard_size)
    return ShardPaths(out, key)


def same_features(a: Path, b: Path) -> None:
    x, y = load_features(a), load_features(b)
    assert x.ids == y.ids, "the records are not in the same order"
    assert torch.equal(x.data, y.data) and torch.equal(x.lengths, y.lengths), "the vectors differ"
    assert x.meta == y.meta, f"meta differs: {set(x.meta.items()) ^ set(y.meta.items())}"
    assert a.read_bytes() == b.read_bytes(), "equal tensors and meta, yet different bytes"


# --------------------------------------------------------------------------- ranks as threads


def test_two_ranks_share_the_shards_and_write_what_one_process_writes(tmp_path, fastesm, groups):
    fasta = write_proteins(tmp_path / "p.faa", 10)
    reference = F.extract_to_file(fastesm, fasta, tmp_path / "one" / "p.pt", shard_size=3, progress=False)
    out = tmp_path / "two" / "p.pt"
    done: dict[int, list[int]] = {0: [], 1: []}

    def body(group):
        record = lambda index, total: done[group.rank.rank].append(index)  # noqa: E731
        return F.extract_to_file(fastesm, fasta, out, shard_size=3, progress=False, on_shard=record, group=group)

    assert run_ranks(groups(2), body) == [out, out]
    assert done == {0: [0, 2], 1: [1, 3]}, "shard i belongs to rank i % 2"
    same_features(out, reference)
    assert sorted(p.name for p in out.parent.iterdir()) == ["p.pt"], "shards are removed once assembled"


def test_ranks_reuse_the_shards_they_own_from_an_interrupted_run(tmp_path, fastesm, groups, monkeypatch, caplog):
    fasta = write_proteins(tmp_path / "p.faa", 10)
    reference = F.extract_to_file(fastesm, fasta, tmp_path / "ref" / "p.pt", shard_size=3, progress=False)
    out = tmp_path / "run" / "p.pt"

    class Interrupt(Exception):
        pass

    def stop_after_third(index, total):
        if index == 2:
            raise Interrupt

    with pytest.raises(Interrupt):  # one process, killed after shards 0, 1 and 2
        F.extract_to_file(fastesm, fasta, out, shard_size=3, progress=False, on_shard=stop_after_third)
    embedded: list[str] = []
    real = F.extract_embeddings

    def spy(loaded, chunk, **kwargs):
        embedded.extend(rid for rid, _ in chunk)
        return real(loaded, chunk, **kwargs)

    monkeypatch.setattr(F, "extract_embeddings", spy)
    with caplog.at_level(logging.INFO, logger="virnucpro_core.extract.features"):
        run_ranks(groups(2), lambda group: F.extract_to_file(fastesm, fasta, out, shard_size=3, progress=False,
                                                             group=group))
    assert embedded == ["s9"], "only the unfinished shard (3: record s9, rank 1's) is embedded again"
    assert "reused 3/4 shards from" in caplog.text and "--rebuild" in caplog.text, caplog.text
    same_features(out, reference)


def test_a_failing_rank_stops_both_and_a_rerun_resumes(tmp_path, fastesm, groups):
    fasta = write_proteins(tmp_path / "p.faa", 10)
    reference = F.extract_to_file(fastesm, fasta, tmp_path / "ref" / "p.pt", shard_size=3, progress=False)
    out = tmp_path / "run" / "p.pt"
    paths = shard_paths(fastesm, fasta, out, 3)
    paths.shard(1).mkdir(parents=True)  # rank 1's first shard cannot be written

    def body(group):
        return F.extract_to_file(fastesm, fasta, out, shard_size=3, progress=False, group=group)

    errors = run_ranks(groups(2), body)
    assert all(isinstance(e, RanksFailed) for e in errors), errors
    message = str(errors[0])
    assert message.startswith(f"rank 1 of 2: cannot use {paths.shard(1)}: Is a directory"), message
    assert [e.silent for e in errors] == [False, True]
    assert not out.exists() and paths.shard(0).is_file() and paths.shard(2).is_file(), "rank 0 finished its share"

    paths.shard(1).rmdir()
    assert run_ranks(groups(2), body) == [out, out]
    same_features(out, reference)


def test_ranks_that_compute_different_things_are_refused(tmp_path, fastesm, groups):
    fasta = write_proteins(tmp_path / "p.faa", 6)
    other = load_model("fastesm2_650", weights="random", size="tiny", device="cpu", seed=7)

    def body(group):
        loaded = fastesm if group.rank.is_main else other
        return F.extract_to_file(loaded, fasta, tmp_path / "p.pt", shard_size=3, progress=False, group=group)

    errors = run_ranks(groups(2), body)
    assert all(isinstance(e, InputError) for e in errors), errors
    assert "seed: rank 0 42, rank 1 7" in str(errors[0]) and [e.silent for e in errors] == [False, True]
    assert not (tmp_path / "p.pt").exists()


# --------------------------------------------------------------------------- torchrun, 2 CPU processes


def torchrun(*args: str) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node=2 -m virnucpro_core.cli ARGS``."""
    command = torchrun_command(args, 2)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"] and "--nproc_per_node=2" in command
    return command


def extract_args(fasta: Path, out: Path, shard_size: int) -> list[str]:
    return ["extract", str(fasta), "--out", str(out), "--model", "fastesm2_650", "--weights", "random",
            "--size", "tiny", "--device", "cpu", "--shard-size", str(shard_size), "--no-progress", "--rank-timeout", "20"]


def run(command: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_torchrun_two_processes_write_what_one_process_writes(tmp_path, run_cli):
    fasta = write_proteins(tmp_path / "p.faa", 23, seed=5)
    code, one_out, one_err = run_cli(extract_args(fasta, tmp_path / "one.pt", 4))
    assert code == 0, one_err
    proc = run(torchrun(*extract_args(fasta, tmp_path / "two.pt", 4)))
    assert proc.returncode == 0, proc.stderr
    same_features(tmp_path / "two.pt", tmp_path / "one.pt")
    assert proc.stdout.count(f"wrote {tmp_path / 'two.pt'}") == 1, proc.stdout
    assert "2 processes" in proc.stdout, proc.stdout
    assert "[rank 0/2] 2 processes share the shards" in proc.stderr, proc.stderr
    assert "[rank 1/2]" not in proc.stdout + proc.stderr, "only rank 0 speaks when all is well"


@pytest.mark.slow
def test_torchrun_one_failing_rank_is_one_message_and_the_rerun_resumes(tmp_path, fastesm):
    fasta = write_proteins(tmp_path / "p.faa", 23, seed=5)
    reference = F.extract_to_file(fastesm, fasta, tmp_path / "ref.pt", shard_size=4, progress=False)
    out = tmp_path / "run.pt"
    paths = shard_paths(fastesm, fasta, out, 4)
    paths.shard(3).mkdir(parents=True)  # rank 1's second shard cannot be written

    start = time.monotonic()
    proc = run(torchrun(*extract_args(fasta, out, 4)))
    took = time.monotonic() - start
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and not out.exists()
    assert output.count("virnucpro extract: error:") == 1, output
    assert f"virnucpro extract: error: rank 1 of 2: cannot use {paths.shard(3)}: Is a directory" in output, output
    assert "rerunning the same command reuses them" in output, output
    assert took < 60, f"the processes took {took:.0f} s to stop"
    left = sorted(p.name for p in paths.root.glob("shard_*.pt") if p.is_file())
    assert {"shard_00000.pt", "shard_00002.pt", "shard_00004.pt"} <= set(left), left

    paths.shard(3).rmdir()
    proc = run(torchrun(*extract_args(fasta, out, 4)))
    assert proc.returncode == 0, proc.stderr
    assert f"reused {len(left)}/6 shards from" in proc.stderr, proc.stderr
    same_features(out, reference)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX kill -9")
def test_torchrun_killed_mid_run_leaves_shards_that_a_rerun_reuses(tmp_path, fastesm, caplog):
    fasta = write_proteins(tmp_path / "p.faa", 240, seed=6)  # 60 shards: a few seconds of work for two ranks
    out = tmp_path / "run.pt"
    paths = shard_paths(fastesm, fasta, out, 4)
    job = subprocess.Popen(torchrun(*extract_args(fasta, out, 4)), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while len(list(paths.root.glob("shard_*.pt"))) < 4 and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(job.pid, signal.SIGKILL)  # torchrun and both ranks at once
    finally:
        job.wait(timeout=30)
    finished = len(list(paths.root.glob("shard_*.pt")))
    assert not out.exists(), "the run finished before it could be killed: give it a larger input"
    assert 4 <= finished < 60, finished

    with caplog.at_level(logging.INFO, logger="virnucpro_core.extract.features"):  # resumed by one process
        F.extract_to_file(fastesm, fasta, out, shard_size=4, progress=False)
    assert "reusing " in caplog.text and "/60 shards from" in caplog.text, caplog.text
    reference = F.extract_to_file(fastesm, fasta, tmp_path / "ref.pt", shard_size=4, progress=False)
    same_features(out, reference)
