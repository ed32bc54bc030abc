"""The split pair as cached stages: made once on FastESM2's side, applied to ESM2 3B's, read back from the cache."""

from __future__ import annotations

import torch

from tests.split.test_make import HOST_SOURCES, VIRAL_SOURCES, merged
from virnucpro_core.defaults import TEST_FRACTION
from virnucpro_core.gate.splits import split_count, split_stage
from virnucpro_core.gate.stages import RunFiles, StageCache


def _inputs(tmp_path, embedder: str, dim: int) -> tuple:
    viral, host = tmp_path / f"{embedder}-viral.pt", tmp_path / f"{embedder}-host.pt"
    torch.save(merged(VIRAL_SOURCES, 1, dim=dim, seed=1), viral)
    torch.save(merged(HOST_SOURCES, 0, dim=dim, seed=2), host)
    return viral, host


def test_the_baseline_side_gets_the_fast_sides_samples_and_a_second_run_reads_both_back(tmp_path):
    lines: list[str] = []
    fast_in, baseline_in = _inputs(tmp_path, "fast", 24), _inputs(tmp_path, "baseline", 40)

    def pair(cache: StageCache) -> tuple:
        files = RunFiles()
        fast = split_stage(cache, files, "split[fast]", lambda key: tmp_path / "stages" / f"fast-{key}", *fast_in,
                           seed=42, count=split_count)
        baseline = split_stage(cache, files, "split[baseline]", lambda key: tmp_path / "stages" / f"baseline-{key}",
                               *baseline_in, source=fast.manifest, count=split_count)
        return fast, baseline

    fast, baseline = pair(StageCache(rebuild=False, announce=lines.append))
    assert baseline.manifest.test.ids == fast.manifest.test.ids and baseline.manifest.train.ids == fast.manifest.train.ids
    n = sum(VIRAL_SOURCES.values()) + sum(HOST_SOURCES.values())
    assert len(fast.manifest.test.ids) == round(n * TEST_FRACTION)
    assert split_count(fast) == f"{len(fast.manifest.train.ids):,} training and {len(fast.manifest.test.ids):,} test samples"
    assert any("split[fast]: built" in line and split_count(fast) in line for line in lines), lines

    lines.clear()
    again_fast, again_baseline = pair(StageCache(rebuild=False, announce=lines.append))
    assert again_fast.manifest.sha256 == fast.manifest.sha256
    assert again_baseline.manifest.sha256 == baseline.manifest.sha256
    assert not any(": built" in line for line in lines), lines
