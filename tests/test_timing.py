"""What every timing result shares: its statistics come from its timed runs, one way for the gate and the scripts."""

from __future__ import annotations

from dataclasses import dataclass

from virnucpro_core.gate.benchmark import TimingResult
from virnucpro_core.timing import TimedRuns


@dataclass
class Row(TimedRuns):
    runs_s: list[float]


def test_mean_and_median_come_from_the_runs():
    row = Row([3.0, 1.0, 2.0, 10.0])
    assert row.mean_s == 4.0 and row.median_s == 2.5
    assert Row([0.5]).mean_s == Row([0.5]).median_s == 0.5


def test_the_speed_gates_timing_result_is_one():
    assert issubclass(TimingResult, TimedRuns)
