"""threads.py: each stage's intra-op threads, the user's choice winning, and the previous count restored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from virnucpro_core.layouts.features import MergedFeatures

from virnucpro_core import threads


def test_training_runs_on_one_thread_and_restores_the_count(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    with threads.stage_threads("train") as choice:
        assert torch.get_num_threads() == 1, "batch-32 training is meant to run on one intra-op thread"
        assert (choice.threads, choice.source) == (1, "chosen for this stage")
    assert torch.get_num_threads() == before
    assert threads.CHOICES["train"] == choice


def test_omp_num_threads_wins_over_the_stage_choice(monkeypatch):
    monkeypatch.setattr(threads, "cpu_count", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    choice = threads.choose("train")
    assert (choice.threads, choice.source) == (3, "OMP_NUM_THREADS")


def test_threads_option_wins_over_omp_num_threads(monkeypatch):
    monkeypatch.setattr(threads, "cpu_count", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    threads.set_user_threads(2)
    try:
        choice = threads.choose("evaluate")
    finally:
        threads.set_user_threads(None)
    assert (choice.threads, choice.source) == (2, "--threads")


def test_extraction_keeps_torch_default(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    choice = threads.choose("extract")
    assert (choice.threads, choice.source) == (torch.get_num_threads(), "torch default")


def test_machine_description_has_cores_and_three_load_averages():
    assert threads.cpu_count() >= 1
    load = threads.load_average()
    assert load == "unknown" or len(load.split()) == 3, load
    assert "train" in threads.describe_choices()


def test_the_environment_line_says_how_many_trainings_ran_at_once(monkeypatch):
    monkeypatch.setattr(threads, "CHOICES", {"train": threads.ThreadChoice("train", 1, "chosen for this stage")})
    monkeypatch.setattr(threads, "PARALLEL", {})
    assert threads.describe_choices() == "train 1 (chosen for this stage)"
    threads.PARALLEL["train"] = 2
    assert threads.describe_choices() == "train 1 (chosen for this stage), 2 at once in worker processes"


def test_tiny_standins_extract_on_one_thread_real_models_with_torch_default(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    tiny, full = threads.choose(threads.extraction_stage("tiny")), threads.choose(threads.extraction_stage("full"))
    assert (tiny.stage, tiny.threads, tiny.source) == ("tiny stand-in extract", 1, "chosen for this stage")
    assert (full.stage, full.source) == ("extract", "torch default")


def test_torchrun_ranks_run_on_torchruns_one_thread_unless_the_user_set_omp_num_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.torchrun_choice("extract") == threads.ThreadChoice("extract", 1, "torchrun's default")
    monkeypatch.setattr(threads, "cpu_count", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert threads.torchrun_choice("extract") == threads.ThreadChoice("extract", 4, "OMP_NUM_THREADS")


def test_workers_are_recorded_with_their_threads_and_how_many_ran_at_once(monkeypatch):
    monkeypatch.setattr(threads, "CHOICES", {})
    monkeypatch.setattr(threads, "PARALLEL", {})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads.record_workers("extract", 2, threads.torchrun_choice("extract"))
    threads.record_workers("train", 1)
    assert threads.describe_choices() == ("extract 1 (torchrun's default), 2 at once in worker processes; "
                                          "train 1 (chosen for this stage)")


# --------------------------------------------------------------------------- more threads than cores (issue 38)


def test_more_threads_than_cores_are_capped_with_one_line(monkeypatch):
    monkeypatch.setattr(threads, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "_omp_capped", None)
    monkeypatch.setenv("OMP_NUM_THREADS", "99999")
    before = torch.get_num_threads()
    try:
        line = threads.cap_environment()
        assert line == ("note: OMP_NUM_THREADS=99999 is more threads than the 2 core(s) this process may use: 2 are "
                        "used (more only wait for each other, and thousands crash OpenMP)")
        assert os.environ["OMP_NUM_THREADS"] == "2", "what torchrun and worker processes inherit"
        assert torch.get_num_threads() <= 2
        assert threads.cap_environment() is None, "said once"
        assert threads.choose("train") == threads.ThreadChoice("train", 2, "OMP_NUM_THREADS 99999, capped at the 2 "
                                                                           "cores"), "the report says what was asked"
        assert threads.set_user_threads(20000).startswith("note: --threads 20000 is more threads than the 2 core(s)")
        assert threads.choose("train").threads == 2
        assert threads.set_user_threads(2) is None
    finally:
        threads.set_user_threads(None)
        torch.set_num_threads(before)


def _small_split(folder: Path) -> Path:
    folder.mkdir()
    n = 40
    data = torch.randn(n, 12, generator=torch.Generator().manual_seed(0))
    MergedFeatures([f"r{i}_chunk_1F1" for i in range(n)], data,
                   torch.tensor([i % 2 for i in range(n)]), torch.full((n,), 99, dtype=torch.long),
                   {"protein_model": "fastesm2_650"}).save(folder / "train.pt")
    return folder


def test_train_with_a_thread_count_in_the_tens_of_thousands_trains(tmp_path, run_cli):
    """OMP_NUM_THREADS=99999 was a segmentation fault (exit 139), 20000 "libgomp: Thread creation failed": set before
    the process starts, as a user sets it, so that OpenMP reads it as it loads."""
    split = _small_split(tmp_path / "split")
    run = subprocess.run([sys.executable, "-m", "virnucpro_core.cli", "train", "--features", str(split), "--out",
                          str(tmp_path / "m.pt"), "--max-epochs", "2", "--no-progress"], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "99999"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.count("note: OMP_NUM_THREADS=99999 is more threads than the") == 1, run.stderr
    assert (tmp_path / "m.pt").is_file()
    code, _, err = run_cli(["train", "--features", str(split), "--out", str(tmp_path / "t.pt"), "--max-epochs", "1",
                            "--no-progress", "--threads", "99999"])
    assert code == 0 and err.count("note: --threads 99999 is more threads than the") == 1, err
