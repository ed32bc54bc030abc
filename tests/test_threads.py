"""threads.py: each stage's intra-op threads, the user's choice winning, and the previous count restored."""

from __future__ import annotations

import torch

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
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    choice = threads.choose("train")
    assert (choice.threads, choice.source) == (3, "OMP_NUM_THREADS")


def test_threads_option_wins_over_omp_num_threads(monkeypatch):
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
