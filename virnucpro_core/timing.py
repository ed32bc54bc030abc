"""Timed runs: what every timing result shares, in the suite's speed gate and in the benchmark scripts.

A timing result keeps every duration (``runs_s``, seconds, warmup runs apart)
and derives its statistics from them here, one way for all:
:class:`~virnucpro_core.gate.benchmark.TimingResult` (the speed gate, rates from
the mean) and the rows of ``benchmarks/extract_throughput.py`` and
``benchmarks/preprocess_throughput.py`` (rates from the median). It imports
nothing beyond the standard library, so light scripts can use it.
"""

from __future__ import annotations

import statistics


class TimedRuns:
    """The statistics of a result's timed runs; the result (a dataclass) holds them as ``runs_s``."""

    runs_s: list[float]

    @property
    def mean_s(self) -> float:
        return statistics.fmean(self.runs_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s)
