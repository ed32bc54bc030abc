"""Acceptance settings: the documented defaults and one clear error per bad option."""

from __future__ import annotations

import pytest

from virnucpro_core.errors import InputError
from virnucpro_core.validation import SMOKE_DATA, Settings


def test_no_data_means_smoke_profile_with_tiny_random_stand_ins():
    settings = Settings.resolve()
    assert (settings.profile, settings.weights, settings.size, settings.bench_sample) == ("smoke", "random", "tiny", 300)
    assert settings.viral == (SMOKE_DATA["viral"],) and settings.host == (SMOKE_DATA["host"],)
    assert not settings.accuracy_is_meaningful


def test_data_means_full_profile_with_pretrained_weights(tmp_path):
    viral, host = tmp_path / "viral.fa", tmp_path / "host.fa"
    viral.write_text(">v\nACGT\n")
    host.write_text(">h\nACGT\n")
    settings = Settings.resolve(viral=[viral], host=[host])
    assert (settings.profile, settings.weights, settings.size, settings.bench_sample) == ("full", "pretrained", "full", 1000)
    assert settings.accuracy_is_meaningful


def test_data_dir_picks_viral_and_host_files(tmp_path):
    for name in ("viral_a.fasta", "viral_b.fna.gz", "host.pt", "notes.txt"):
        (tmp_path / name).write_text("")
    settings = Settings.resolve(data_dir=tmp_path)
    assert [p.name for p in settings.viral] == ["viral_a.fasta", "viral_b.fna.gz"]
    assert [p.name for p in settings.host] == ["host.pt"]


def test_one_class_only_is_refused(tmp_path):
    (tmp_path / "viral.fa").write_text(">v\nACGT\n")
    with pytest.raises(InputError, match="both classes are needed"):
        Settings.resolve(viral=[tmp_path / "viral.fa"])


def test_bad_limits_are_reported_together():
    with pytest.raises(InputError) as error:
        Settings.resolve(max_accuracy_drop=1.5, max_time_ratio=0, bench_runs=0)
    message = str(error.value)
    assert "--max-accuracy-drop 1.5" in message and "--max-time-ratio 0" in message and "--bench-runs 0" in message
