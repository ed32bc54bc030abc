"""The split pair, cached: a split made on FastESM2's features, the same split applied to ESM2 3B's.

The locked split (:meth:`virnucpro_core.gate.validation.ValidationRun.split`) and
each extra split of the evidence (:mod:`virnucpro_core.gate.generalisation`) are
built by :func:`split_stage`: once into their stage directory, then always read
back from their manifest (:func:`~virnucpro_core.split.make.load_split`), never
recomputed. The baseline's side is keyed by the FastESM2 side's manifest, so it
follows when that changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from virnucpro_core.defaults import TEST_FRACTION
from virnucpro_core.gate.stages import RunFiles, StageCache, stage_code
from virnucpro_core.split.make import apply_split, load_split, make_split
from virnucpro_core.split.records import SplitManifest, SplitResult


def split_stage(cache: StageCache, files: RunFiles, stage: str, directory_of: Callable[[str], Path],
                viral: Path, host: Path, *, seed: int | None = None, source: SplitManifest | None = None,
                params: Mapping[str, Any] | None = None, count: Callable[[SplitResult], str] | None = None,
                **options: Any) -> SplitResult:
    """One side of a split pair as the cached stage ``stage``.

    Without ``source``: the split made on ``viral`` / ``host`` with ``seed`` and the
    test fraction (:data:`~virnucpro_core.defaults.TEST_FRACTION`); ``params``
    adds to the stage's key and ``options`` go to
    :func:`~virnucpro_core.split.make.make_split` (``group_by``, ``groups``).
    With ``source``: that manifest's split applied to ``viral`` / ``host``
    (:func:`~virnucpro_core.split.make.apply_split`). ``count`` describes the
    result in the stage's line.
    """
    hashes = [files.sha256(viral), files.sha256(host)]
    if source is None:
        key = {"viral": hashes[0], "host": hashes[1], "seed": seed, "test_fraction": TEST_FRACTION, **(params or {})}

        def build(directory: Path) -> None:
            make_split(viral, host, test_fraction=TEST_FRACTION, seed=seed, out_dir=directory, overwrite=True,
                       open_input=files.split_input, **options)
    else:
        key = {"manifest": source.sha256, "viral": hashes[0], "host": hashes[1]}

        def build(directory: Path) -> None:
            apply_split(source, viral, host, out_dir=directory, overwrite=True, open_input=files.split_input)

    return cache.cached(stage, key, directory_of, build, lambda d: load_split(d, inputs_sha256=hashes), count,
                        code=stage_code("split"))


def split_count(split: SplitResult) -> str:
    """``'1,200 training and 134 test samples'``: a split's size for its stage line."""
    manifest = split.manifest
    return f"{len(manifest.train.ids):,} training and {len(manifest.test.ids):,} test samples"
