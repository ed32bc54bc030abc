"""A validation run's stage machinery: the cache every stage is built into or reused from, and the run's files.

:class:`StageCache` builds a stage into a directory keyed by a hash of its
inputs and parameters unless a finished one is there (``stage.json``, which
records the content of every output: a changed output rebuilds the stage),
loads it back from that directory either way, and keeps the stage log
(:class:`StageRecord`). :class:`RunFiles` opens and hashes each file the run
reads once per run: the SHA-256 that stage keys record, the layout and meta
of a merged input, the rows a split is made from.

Independent stages (:class:`StageJob`, e.g. the gate's two MLP trainings, the
evidence's four) can be built at once in worker processes
(:meth:`StageCache.prebuild`) where the cores allow; each worker runs exactly
the build the stage would run here, with the same intra-op threads, so the
files are the same as one after another (tests/gate/test_stages_in_parallel.py). A long
build reports progress: one line per stage at most every
:data:`PROGRESS_EVERY` seconds, so no stage is silent for longer.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import multiprocessing
import os
import queue as queues
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from virnucpro_core import threads
from virnucpro_core.code_identity import CodeIdentity, code_of, with_tool
from virnucpro_core.custody import ContentRecord, changed, digest
from virnucpro_core.errors import InputError, VirNucProError, describe_error
from virnucpro_core.files import atomic_write_text, sha256_text
from virnucpro_core.layouts.features import MergedRows, detect_layout, open_rows
from virnucpro_core.pickles import torch_load
from virnucpro_core.split.clusters import mmseqs_version

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


# 2: stage.json records every output's content (1 recorded only that the stage finished); 3: and the code that built it
STAGE_FORMAT = 3


@dataclass(frozen=True)
class Staleness:
    """Why a finished stage is not simply reused: its outputs changed, or other code built it."""

    reason: str
    other_code: bool = False  # only the code differs: --reuse-stages-from-other-code may keep it


def _stale(done: Path, code: CodeIdentity) -> Staleness | None:
    """Why the stage that ``done`` (its ``stage.json``) marks finished cannot be reused as it is; None when it can.

    A missing ``stage.json`` is an unfinished stage (None here: it is simply built). Outputs are checked first:
    a stage whose files changed is rebuilt whatever code built it.
    """
    try:
        record = json.loads(done.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return Staleness(f"{done.name} is unreadable")
    outputs = record.get("outputs") if isinstance(record, dict) else None
    if not isinstance(outputs, dict) or record.get("format") not in (2, STAGE_FORMAT):
        return Staleness("its outputs were recorded without their content (an older version)")
    for name, entry in outputs.items():
        content = ContentRecord.from_dict(entry)
        difference = "has no content record" if content is None else changed(done.parent / name, content)
        if difference is not None:
            return Staleness(f"{name} {difference}")
    other = code.change_from(record.get("code"))
    return Staleness(other, other_code=True) if other else None


def stage_code(kind: str) -> CodeIdentity:
    """The code identity of a kind of stage (:data:`virnucpro_core.code_identity.RESULTS`), MMseqs2's version
    included for the stages that run it."""
    code = code_of(kind)
    return with_tool(code, "mmseqs", mmseqs_version()) if kind in ("clusters", "identity") else code


#: The longest a building stage stays silent: progress lines come at most this often (seconds).
PROGRESS_EVERY = 15.0

Say = Callable[[str], None]


def stage_key(params: dict) -> str:
    """The directory key of a stage with these parameters."""
    return sha256_text(json.dumps(params, sort_keys=True, default=str))[:16]


@dataclass(frozen=True)
class StageJob:
    """A stage that can be built in another process: what :meth:`StageCache.cached` takes, ``build`` picklable.

    ``build(directory, say)`` writes the stage's files; ``say`` takes progress lines. It must be a
    module-level function or a ``functools.partial`` of one, so a worker process can run it.
    """

    stage: str
    params: dict
    directory_of: Callable[[str], Path]
    build: Callable[[Path, Say], None]
    code: CodeIdentity

    @property
    def directory(self) -> Path:
        return self.directory_of(stage_key(self.params))


class Progress:
    """A stage's progress lines, announced as ``stage: line`` at most every ``every`` seconds."""

    def __init__(self, stage: str, announce: Say, every: float = PROGRESS_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stage, self.announce, self.every, self.clock = stage, announce, every, clock
        self.last = clock()

    def __call__(self, line: str) -> None:
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self.announce(f"{self.stage}: {line}")


# Worker processes of StageCache.prebuild: progress lines go back through this queue.
_worker_queue: Any = None


def _start_worker(progress: Any, user_threads: int | None) -> None:
    global _worker_queue
    _worker_queue = progress
    # Ctrl-C reaches the whole process group: the run's process stops the workers (no traceback from each).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threads.set_user_threads(user_threads)  # --threads reaches the worker (OMP_NUM_THREADS is inherited)


def _build_in_worker(build: Callable[[Path, Say], None], directory: Path, stage: str) -> tuple[bool, Any]:
    """``(True, seconds)`` when ``build`` finished; ``(False, error)`` when it raised one of ours or an OS error
    (raised again where the stage is asked for, not built a second time); ``(False, why)`` for anything else (a
    bug: built again here, for its traceback)."""
    start = time.perf_counter()
    try:
        build(directory, lambda line: _worker_queue.put((stage, line)))
    except (VirNucProError, OSError) as error:
        return False, error
    except Exception as error:  # noqa: BLE001 - reported back; the stage is then built in the run's own process
        return False, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return True, time.perf_counter() - start


def _writable(stage: str, directory: Path) -> None:
    """Refuse to build ``stage`` into a folder this process cannot write (a cache shared read-only by another
    user, a read-only mount), before its build runs, not when its result is saved: a file is created and
    removed there (the only test that also holds for root and for immutable folders).

    Raises:
        InputError: naming the folder and what to do; rerunning the same command cannot help.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test."):
            pass
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise InputError(
            f"{stage}: its stage folder {directory} cannot be written ({os.strerror(error.errno)}), so it cannot be "
            "built there, and rerunning cannot help",
            expected="an --artifacts folder whose stage folders this user may write",
            found="a stage to build in a read-only folder (a cache shared by another user, or a read-only mount?)",
            fix="pass --artifacts a folder of your own (copy the shared one to start from its finished stages: "
            "`cp -r SHARED MINE`), or ask the folder's owner to build the stage",
        ) from None


class StageCache:
    """Builds stages into directories keyed by their parameters, or reuses finished ones; logs every stage."""

    def __init__(self, *, rebuild: bool, announce: Callable[[str], None], files: RunFiles | None = None,
                 reuse_other_code: bool = False) -> None:
        """``rebuild``: recompute even finished stages; ``announce``: one line as each stage starts and ends;
        ``reuse_other_code``: keep finished stages that other code built (each one is listed in
        :attr:`other_code`, which the report's banner shows)."""
        self.rebuild = rebuild
        self.announce = announce
        self.files = files or RunFiles()
        self.reuse_other_code = reuse_other_code
        self.records: list[StageRecord] = []
        self.other_code: list[tuple[str, str]] = []  # (stage, what changed) of stages reused from other code
        self._prebuilt: dict[Path, tuple[float, str]] = {}  # directory -> (seconds, how) of stages built by prebuild
        self._failed: dict[str, BaseException] = {}  # stage -> its error: a failed stage is not run again
        self._worker_errors: dict[str, BaseException] = {}  # stage -> the error its build raised in a worker

    @contextlib.contextmanager
    def attempt(self, stage: str) -> Iterator[None]:
        """Run a stage's work at most once per run: a stage whose work failed raises at once, naming its first
        error, instead of running again (minutes of extraction or training, to fail the same way)."""
        if stage in self._failed:
            raise VirNucProError(f"{stage} failed earlier in this run and is not run again: "
                                 f"{describe_error(self._failed[stage]).splitlines()[0]}")
        try:
            yield
        except (VirNucProError, OSError) as error:
            self._failed[stage] = error
            raise

    def progress(self, stage: str) -> Progress:
        """Where a building stage sends its progress lines (announced at most every :data:`PROGRESS_EVERY` s)."""
        return Progress(stage, self.announce)

    def _state(self, directory: Path, code: CodeIdentity) -> tuple[bool, str | None]:
        """Whether ``directory`` holds a finished stage that may be reused (never when rebuilding), and why a
        finished one may not (its outputs and code checked once: :func:`_stale`)."""
        done = directory / "stage.json"
        if self.rebuild or not done.is_file():
            return False, None
        stale = _stale(done, code)
        if stale is None:
            return True, None
        if stale.other_code and self.reuse_other_code:
            return True, stale.reason
        return False, stale.reason

    def _start(self, stage: str, directory: Path, stale: str | None) -> None:
        """Say why the stage is built (``stale``: why a finished one is not reused) and clear its old record."""
        done = directory / "stage.json"
        if stale is not None:
            log.warning("%s: %s; rebuilding %s", stage, stale, directory)
            self.announce(f"{stage}: {stale}; rebuilding ...")
        else:
            log.info("%s: building into %s", stage, directory)
        _writable(stage, directory)
        done.unlink(missing_ok=True)

    @staticmethod
    def _finish(stage: str, params: dict, directory: Path, code: CodeIdentity) -> None:
        """Record the stage finished, with the content of every file its build wrote and the code that built it."""
        done = directory / "stage.json"
        outputs = {str(path.relative_to(directory)): ContentRecord.of(path).to_dict()
                   for path in sorted(directory.rglob("*"))
                   if path.is_file() and path != done and not path.name.startswith(".")}
        atomic_write_text(done, json.dumps({"stage": stage, "params": params, "format": STAGE_FORMAT,
                                            "code": code.to_dict(), "outputs": outputs}, indent=2, default=str)
                          + "\n")

    def reused_from_other_code(self, stage: str, directory: Path, change: str) -> None:
        """Say, once, that a stage (or feature file) other code built is kept (--reuse-stages-from-other-code),
        and list it in :attr:`other_code`."""
        log.warning("%s: %s; reused anyway (--reuse-stages-from-other-code) from %s", stage, change, directory)
        self.announce(f"{stage}: {change}; reused anyway (--reuse-stages-from-other-code)")
        self.other_code.append((stage, change))

    def prebuild(self, jobs: Sequence[StageJob], processes: int) -> int:
        """Build the unfinished ones of ``jobs`` at once, one worker process each, up to ``processes`` at a time.

        Nothing happens with fewer than two to build or ``processes < 2``: :meth:`cached` builds them one after
        another, as always. A stage built here is finished on disk; :meth:`cached` then loads it and logs it as
        built (with its build time). A build that raises one of our errors or an OS error (a full disk) in a
        worker is left unfinished and :meth:`cached` raises that error where the stage is asked for, without
        building it again; one that raises anything else (a bug) is built again there, for its traceback.

        Returns the worker processes it ran (0 when it built nothing).
        """
        if processes < 2 or len(jobs) < 2:
            return 0
        todo: dict[Path, tuple[StageJob, str | None]] = {}
        for job in jobs:
            directory = job.directory
            if directory not in todo and directory not in self._prebuilt:
                finished, stale = self._state(directory, job.code)
                if not finished:
                    todo[directory] = job, stale
        workers = min(processes, len(todo))
        if workers < 2:
            return 0
        how = f"in a worker process ({len(todo)} stages, {workers} at a time)"
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no OpenMP or lock state forked
        progress = context.Queue()
        pool = context.Pool(workers, initializer=_start_worker, initargs=(progress, threads.user_threads()))
        try:
            pending = {}
            for directory, (job, stale) in todo.items():
                self._start(job.stage, directory, stale)
                self.announce(f"{job.stage}: building {how} ...")
                pending[directory] = pool.apply_async(_build_in_worker, (job.build, directory, job.stage))
            says = {job.stage: self.progress(job.stage) for job, _ in todo.values()}
            while not all(result.ready() for result in pending.values()):
                try:
                    stage, line = progress.get(timeout=0.2)
                except queues.Empty:
                    continue
                says[stage](line)
            pool.close()
        except BaseException:  # Ctrl-C, or anything else: stop the workers now, nothing is marked finished
            pool.terminate()
            raise
        finally:
            pool.join()
            progress.close()
        for directory, result in pending.items():
            job, _ = todo[directory]
            ok, value = result.get()
            if ok:
                self._finish(job.stage, job.params, directory, job.code)
                self._prebuilt[directory] = (value, how)
            elif isinstance(value, BaseException):  # ours or the machine's: said where the stage is asked for
                self._worker_errors[job.stage] = value
            else:
                log.info("%s: the worker process failed (%s); it is built in this process instead", job.stage, value)
        return workers

    def record(self, stage: str, reused: bool, start: float, key: str, items: str = "", detail: str = "",
               how: str = "") -> None:
        """Log a stage that finished (built or reused) since ``start`` (``time.perf_counter()``).

        ``how``: how it was built, when not simply here (kept as the record's detail).
        """
        seconds = time.perf_counter() - start
        self.records.append(StageRecord(stage, reused, seconds, key, detail or how))
        self.announce(f"{stage}: {'reused' if reused else 'built'} in {seconds:.1f} s" + (f" {how}" if how else "")
                      + (f" ({items})" if items else ""))

    def cached(self, stage: str, params: dict, directory_of: Callable[[str], Path],
               build: Callable[[Path], Any], load: Callable[[Path], Any],
               count: Callable[[Any], str] | None = None, *, code: CodeIdentity) -> Any:
        """``load(directory)`` of ``stage``, built first into the directory keyed by ``params`` unless finished.

        A finished stage is one whose ``stage.json`` records the content of every file the build wrote
        (:mod:`virnucpro_core.custody`), all still there and unchanged, and was built by ``code``
        (:func:`virnucpro_core.code_identity.code_identity` of the library modules the build runs): a file
        changed since, cut short or removed, or other code, rebuilds the stage, with one line naming what
        changed (``train[fast]: built by other code (virnucpro_core/train/training.py changed); rebuilding``),
        unless the cache keeps stages of other code (``reuse_other_code``; then the line says it was kept).
        Stages that depend on it are keyed by its outputs' digests, so they follow. ``build`` writes the stage's files (its return value is ignored:
        what a stage gives is always what ``load`` reads back); ``count`` describes the result's size for the
        progress line (``"2,182 frames"``).
        """
        key = stage_key(params)
        directory = directory_of(key)
        start = time.perf_counter()
        prebuilt = self._prebuilt.pop(directory, None)
        if prebuilt is not None and (directory / "stage.json").is_file():
            seconds, how = prebuilt
            start -= seconds  # the stage's time is its build's, in the worker
            value = load(directory)
            self.record(stage, False, start, key, count(value) if count else "", how=how)
            return value
        error = self._worker_errors.pop(stage, None)
        if error is not None:  # its build failed in a worker: said here, where it is asked for, not built again
            self._failed[stage] = error
            raise error
        reused, stale = self._state(directory, code)
        if reused and stale:
            self.reused_from_other_code(stage, directory, stale)
        elif reused:
            log.info("%s: reusing %s (pass --rebuild to recompute)", stage, directory)
        else:
            with self.attempt(stage):
                self._start(stage, directory, stale)
                self.announce(f"{stage}: building ...")
                build(directory)
                self._finish(stage, params, directory, code)
        value = load(directory)
        self.record(stage, reused, start, key, count(value) if count else "")
        return value

    def cached_job(self, job: StageJob, load: Callable[[Path], Any],
                   count: Callable[[Any], str] | None = None) -> Any:
        """:meth:`cached` of a :class:`StageJob` (built here, with progress lines, unless :meth:`prebuild` did)."""
        return self.cached(job.stage, job.params, job.directory_of,
                           lambda directory: job.build(directory, self.progress(job.stage)), load, count,
                           code=job.code)

    def write_log(self, path: Path) -> None:
        atomic_write_text(path, json.dumps([asdict(s) for s in self.records], indent=2) + "\n")
