"""Independent stages built at once in worker processes: the same files as one after another, progress, failures."""

from __future__ import annotations

import functools
import json
import multiprocessing
import time

import pytest
import torch

from virnucpro_core import threads
from virnucpro_core.errors import InputError
from virnucpro_core.gate.stages import Progress, StageCache, StageJob, stage_code
from virnucpro_core.layouts.checkpoints import load_checkpoint
from virnucpro_core.split.make import make_split
from virnucpro_core.train.results import TrainingConfig, TrainingHistory
from virnucpro_core.train.training import train_into

from tests.train.test_training import features


def _split(tmp_path, name: str, seed: int):
    data = features(seed=seed, dim=16)
    viral = {k: (v[:120] if k != "meta" else v) for k, v in data.items()}
    host = {k: (v[120:] if k != "meta" else v) for k, v in data.items()}
    torch.save(viral, tmp_path / f"{name}-viral.pt")
    torch.save(host, tmp_path / f"{name}-host.pt")
    make_split(tmp_path / f"{name}-viral.pt", tmp_path / f"{name}-host.pt", out_dir=tmp_path / name, seed=seed)
    return tmp_path / name / "train.pt"


def _jobs(trains, root, config):
    return [StageJob(f"train[{name}]", {"train": str(train), "config": config.to_dict()},
                     lambda key, name=name: root / f"{name}-{key}",
                     functools.partial(train_into, train, config, False), stage_code("train"))
            for name, train in trains.items()]


def _trained(directory):
    return {"final": load_checkpoint(directory / "final.pt"), "best": load_checkpoint(directory / "best.pt"),
            "history": TrainingHistory.load(directory / "final.history.json"),
            "val_ids": json.loads((directory / "val_ids.json").read_text())}


def test_trainings_in_parallel_processes_give_the_weights_of_one_after_another(tmp_path):
    trains = {"a": _split(tmp_path, "a", 1), "b": _split(tmp_path, "b", 2), "c": _split(tmp_path, "c", 3)}
    config = TrainingConfig(max_epochs=4, patience=2, seed=7)
    lines = []
    one_by_one, at_once = StageCache(rebuild=False, announce=lines.append), StageCache(rebuild=False,
                                                                                          announce=lines.append)
    sequential = [one_by_one.cached_job(job, _trained) for job in _jobs(trains, tmp_path / "seq", config)]
    jobs = _jobs(trains, tmp_path / "par", config)
    at_once.prebuild(jobs, processes=2)
    assert all((job.directory / "stage.json").is_file() for job in jobs), "the workers built every stage"
    parallel = [at_once.cached_job(job, _trained) for job in jobs]

    for one, other in zip(sequential, parallel):
        for which in ("final", "best"):
            first, second = one[which].model.state_dict(), other[which].model.state_dict()
            assert first.keys() == second.keys()
            assert all(torch.equal(first[k], second[k]) for k in first), f"{which} weights differ"
            assert one[which].meta.epoch == other[which].meta.epoch
        assert one["val_ids"] == other["val_ids"]
        assert ([(e.train_loss, e.val_loss, e.val_accuracy) for e in one["history"].epochs]
                == [(e.train_loss, e.val_loss, e.val_accuracy) for e in other["history"].epochs])
    records = at_once.records
    assert [r.reused for r in records] == [False] * 3, "stages a worker built are logged as built, not reused"
    assert all("in a worker process (3 stages, 2 at a time)" in r.detail for r in records)
    assert any(line.startswith("train[a]: built in") and "worker process" in line for line in lines)
    # Built once: asking again reuses them.
    again = StageCache(rebuild=False, announce=lines.append)
    again.prebuild(jobs, processes=2)
    for job in jobs:
        again.cached_job(job, _trained)
    assert [r.reused for r in again.records] == [True] * 3


def test_a_build_that_fails_in_a_worker_is_built_again_here_and_raises_there(tmp_path):
    config = TrainingConfig(max_epochs=2, patience=2, seed=7)
    trains = {"good": _split(tmp_path, "good", 1), "bad": tmp_path / "missing" / "train.pt"}
    jobs = _jobs(trains, tmp_path / "out", config)
    cache = StageCache(rebuild=False, announce=lambda line: None)
    cache.prebuild(jobs, processes=2)
    good, bad = jobs
    assert (good.directory / "stage.json").is_file() and not (bad.directory / "stage.json").exists()
    cache.cached_job(good, _trained)
    with pytest.raises(InputError):
        cache.cached_job(bad, _trained)
    assert [r.stage for r in cache.records] == ["train[good]"]


def test_one_stage_or_one_process_builds_nothing_ahead(tmp_path):
    config = TrainingConfig(max_epochs=2, patience=2, seed=7)
    jobs = _jobs({"a": _split(tmp_path, "a", 1), "b": _split(tmp_path, "b", 2)}, tmp_path / "out", config)
    cache = StageCache(rebuild=False, announce=lambda line: None)
    cache.prebuild(jobs, processes=1)
    cache.prebuild(jobs[:1], processes=2)
    assert not any(job.directory.exists() for job in jobs), "nothing to run beside: cached() builds them here"


def test_processes_follow_the_cores_and_each_trainings_threads(monkeypatch):
    monkeypatch.setattr(threads, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads, "_user_threads", None)  # an in-process command's --threads elsewhere in the session
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.parallel_processes("train", 2) == 2 and threads.parallel_processes("train", 20) == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert threads.parallel_processes("train", 4) == 2, "4 threads each on 8 cores: two at a time"
    monkeypatch.setattr(threads, "cpu_count", lambda: 2)
    assert threads.parallel_processes("train", 4) == 1, "never fewer than one"


def test_progress_lines_come_at_most_every_interval():
    now = [0.0]
    lines = []
    say = Progress("train[fast]", lines.append, every=15.0, clock=lambda: now[0])
    for t in (1.0, 14.9, 15.0, 20.0, 31.0):
        now[0] = t
        say(f"epoch at {t}")
    assert lines == ["train[fast]: epoch at 15.0", "train[fast]: epoch at 31.0"]


def test_a_long_training_here_says_its_epochs(tmp_path, monkeypatch):
    """No stage is silent for long: an in-process training announces epochs (every interval; 0 s here)."""
    config = TrainingConfig(max_epochs=3, patience=3, seed=7)
    lines = []
    cache = StageCache(rebuild=False, announce=lines.append)
    monkeypatch.setattr(cache, "progress", lambda stage: Progress(stage, lines.append, every=0.0))
    cache.cached_job(_jobs({"a": _split(tmp_path, "a", 1)}, tmp_path / "out", config)[0], _trained)
    epochs = [line for line in lines if line.startswith("train[a]: epoch")]
    assert len(epochs) == 3 and epochs[0].startswith("train[a]: epoch   1/3")


class Stop(BaseException):
    """Stands in for Ctrl-C's KeyboardInterrupt (which would stop pytest itself)."""


def _says_then_sleeps(directory, say):
    say("started")
    time.sleep(120)


def test_an_interrupted_prebuild_stops_its_workers_and_marks_nothing_finished(tmp_path, monkeypatch):
    jobs = [StageJob(f"slow[{k}]", {"k": k}, lambda key, k=k: tmp_path / f"slow-{k}-{key}", _says_then_sleeps,
                     stage_code("train"))
            for k in range(2)]
    cache = StageCache(rebuild=False, announce=lambda line: None)

    def interrupt(stage):
        def say(line):
            raise Stop()
        return say

    monkeypatch.setattr(cache, "progress", interrupt)
    started = time.monotonic()
    with pytest.raises(Stop):
        cache.prebuild(jobs, processes=2)
    assert time.monotonic() - started < 60, "the workers were stopped, not waited for"
    assert multiprocessing.active_children() == []
    assert not any((job.directory / "stage.json").exists() for job in jobs)
