"""A validation run's stage machinery: the cache every stage is built into or reused from, and the run's files.

:class:`StageCache` builds a stage into a directory keyed by a hash of its
inputs and parameters unless a finished one is there (``stage.json``, which
records the content of every output: a changed output rebuilds the stage),
loads it back from that directory either way, and keeps the stage log
(:class:`StageRecord`). :class:`RunFiles` opens and hashes each file the run
reads once per run: the SHA-256 that stage keys record, the layout and meta
of a merged input, the rows a split is made from.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from virnucpro_core.custody import ContentRecord, changed, digest
from virnucpro_core.files import atomic_write_text, sha256_text
from virnucpro_core.layouts.features import MergedRows, detect_layout, open_rows
from virnucpro_core.layouts.pickles import torch_load

log = logging.getLogger("virnucpro.validation")


@dataclass
class StageRecord:
    """One line of the run's stage log: what ran, whether it was reused, how long it took."""

    stage: str
    reused: bool
    seconds: float
    key: str
    detail: str = ""


class RunFiles:
    """Every file a run reads, opened and hashed once.

    A file's hash is remembered with its stat record (size, times, inode), so a
    file rewritten during the run is hashed again.
    """

    def __init__(self) -> None:
        self._loaded: dict[Path, Any] = {}
        self._rows: dict[Path, MergedRows] = {}

    def sha256(self, path: str | Path) -> str:
        """Hex SHA-256 of the file's bytes (:func:`virnucpro_core.custody.digest`: once per state of the file)."""
        return digest(path)

    def loaded(self, path: str | Path) -> Any:
        """A merged feature file or view as ``torch.load`` gives it, tensors memory-mapped (read once)."""
        path = Path(path)
        if path not in self._loaded:
            self._loaded[path] = torch_load(path, "merged feature", mmap=True)
        return self._loaded[path]

    def layout(self, path: str | Path) -> str:
        """The layout of a merged feature file (:func:`~virnucpro_core.layouts.features.detect_layout`)."""
        return detect_layout(self.loaded(path))

    def meta(self, path: str | Path) -> dict:
        """The ``meta`` of a merged feature file or view of ours (``{}`` when it has none)."""
        obj = self.loaded(path)
        return dict(obj["meta"]) if isinstance(obj.get("meta"), dict) else {}

    def ids(self, path: str | Path) -> list:
        """The sample ids of a merged feature file."""
        return self.loaded(path)["ids"]

    def rows(self, path: str | Path) -> MergedRows:
        """A merged file or view opened as rows (checked once; the rows stay on disk)."""
        path = Path(path)
        if path not in self._rows:
            self._rows[path] = open_rows(path, obj=self.loaded(path))
        return self._rows[path]

    def split_input(self, path: Path) -> tuple[MergedRows, str]:
        """What :func:`~virnucpro_core.split.make.make_split` reads of an input: its rows and its SHA-256."""
        return self.rows(path), self.sha256(path)


STAGE_FORMAT = 2  # 2: stage.json records every output's content (1 recorded only that the stage finished)


def _stale(done: Path) -> str | None:
    """Why the stage that ``done`` (its ``stage.json``) marks finished cannot be reused; None when it can.

    A missing ``stage.json`` is an unfinished stage (None here: it is simply built).
    """
    try:
        record = json.loads(done.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return f"{done.name} is unreadable"
    outputs = record.get("outputs") if isinstance(record, dict) else None
    if not isinstance(outputs, dict) or record.get("format") != STAGE_FORMAT:
        return "its outputs were recorded without their content (an older version)"
    for name, entry in outputs.items():
        content = ContentRecord.from_dict(entry)
        difference = "has no content record" if content is None else changed(done.parent / name, content)
        if difference is not None:
            return f"{name} {difference}"
    return None


class StageCache:
    """Builds stages into directories keyed by their parameters, or reuses finished ones; logs every stage."""

    def __init__(self, *, rebuild: bool, announce: Callable[[str], None], files: RunFiles | None = None) -> None:
        """``rebuild``: recompute even finished stages; ``announce``: one line as each stage starts and ends."""
        self.rebuild = rebuild
        self.announce = announce
        self.files = files or RunFiles()
        self.records: list[StageRecord] = []

    def record(self, stage: str, reused: bool, start: float, key: str, items: str = "", detail: str = "") -> None:
        """Log a stage that finished (built or reused) since ``start`` (``time.perf_counter()``)."""
        seconds = time.perf_counter() - start
        self.records.append(StageRecord(stage, reused, seconds, key, detail))
        self.announce(f"{stage}: {'reused' if reused else 'built'} in {seconds:.1f} s" + (f" ({items})" if items else ""))

    def cached(self, stage: str, params: dict, directory_of: Callable[[str], Path],
               build: Callable[[Path], Any], load: Callable[[Path], Any],
               count: Callable[[Any], str] | None = None) -> Any:
        """``load(directory)`` of ``stage``, built first into the directory keyed by ``params`` unless finished.

        A finished stage is one whose ``stage.json`` records the content of every file the build wrote
        (:mod:`virnucpro_core.custody`), all still there and unchanged: a file changed since, cut short or
        removed rebuilds the stage, with one line naming it. Stages that depend on it are keyed by its
        outputs' digests, so they follow. ``build`` writes the stage's files (its return value is ignored:
        what a stage gives is always what ``load`` reads back); ``count`` describes the result's size for the
        progress line (``"2,182 frames"``).
        """
        key = sha256_text(json.dumps(params, sort_keys=True, default=str))[:16]
        directory = directory_of(key)
        done = directory / "stage.json"
        start = time.perf_counter()
        stale = None if self.rebuild else _stale(done)
        reused = done.is_file() and not self.rebuild and stale is None
        if reused:
            log.info("%s: reusing %s (pass --rebuild to recompute)", stage, directory)
        else:
            if stale is not None and done.is_file():
                log.warning("%s: %s; rebuilding %s", stage, stale, directory)
                self.announce(f"{stage}: {stale}; rebuilding ...")
            else:
                log.info("%s: building into %s", stage, directory)
                self.announce(f"{stage}: building ...")
            directory.mkdir(parents=True, exist_ok=True)
            done.unlink(missing_ok=True)
            build(directory)
            outputs = {str(path.relative_to(directory)): ContentRecord.of(path).to_dict()
                       for path in sorted(directory.rglob("*"))
                       if path.is_file() and path != done and not path.name.startswith(".")}
            atomic_write_text(done, json.dumps({"stage": stage, "params": params, "format": STAGE_FORMAT,
                                                "outputs": outputs}, indent=2, default=str) + "\n")
        value = load(directory)
        self.record(stage, reused, start, key, count(value) if count else "")
        return value

    def write_log(self, path: Path) -> None:
        atomic_write_text(path, json.dumps([asdict(s) for s in self.records], indent=2) + "\n")
