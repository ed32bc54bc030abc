"""Outputs are ours or refused: every command records what it wrote, and replaces only its own unchanged files.

Each folder a command writes into holds ``.virnucpro-outputs.json``: for each
file written there, which command wrote it, when, and its content record
(:class:`~virnucpro_core.custody.ContentRecord`). Before any work,
:class:`OutputClaim` checks the files a command is about to write:

* a file of that name that the record says this command wrote, unchanged
  since, is replaced (and the command says so);
* a file we did not write (no record: the user's own, another program's, or
  one older than these records), or one changed since we wrote it, is refused,
  naming every such file, unless ``--force``;
* a file another command wrote (``evaluate --out split/manifest.json``) or
  that views read their rows from (a split's or an import's inputs) is refused
  even with ``--force``: replacing it would break the split or the views.

One writer per output at a time: the claim holds a lock (the kernel's
``flock``, on ``.<name>.virnucpro-lock`` beside the output, removed when the
command ends; after ``kill -9`` the kernel drops the lock and the next command
takes the file over) from the check to the end of the command; a second
command on the same output says who holds it and waits, so two runs never mix
their files and a half-written output is never taken for a finished one. The
record is updated once the command's files are in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from virnucpro_core.custody import ContentRecord, changed
from virnucpro_core.errors import InputError, os_error_message
from virnucpro_core.files import atomic_write_text, check_output

RECORD = ".virnucpro-outputs.json"
ACCEPTANCE = "acceptance"  # the acceptance suite's reports, claimed like a command's outputs
RECORD_FORMAT = "virnucpro-outputs"
LOCK_SUFFIX = ".virnucpro-lock"
_POLL_S = 0.5


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------------- the record of one folder


def read_record(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The entries of ``folder``'s record by file name (``{}`` when there is none or it is unreadable)."""
    try:
        data = json.loads((Path(folder) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("format") == RECORD_FORMAT else None
    return {str(k): v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}


def _update_record(folder: Path, change: Callable[[dict[str, dict[str, Any]]], None]) -> None:
    """Apply ``change`` to ``folder``'s record entries under an exclusive lock on the record, and write it whole.

    The record is replaced by rename, so a waiter that locked the old file sees another inode and locks again.
    """
    path = folder / RECORD
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        entries = read_record(folder)
        change(entries)
        atomic_write_text(path, json.dumps({"format": RECORD_FORMAT, "version": 1,
                                            "files": dict(sorted(entries.items()))}, indent=1) + "\n")
    finally:
        os.close(fd)


def needed_by(views: Sequence[str | os.PathLike], inputs: Iterable[str | os.PathLike]) -> None:
    """Note, in each input's folder, that ``views`` read their rows from it: no command's ``--out`` replaces it
    while they exist as they were written (a view made again from other files no longer counts). Best effort: a
    folder we cannot write (the user's read-only data) keeps no note."""
    readers = {str(Path(v).resolve()): ContentRecord.of(v).to_dict() for v in views}
    for source in inputs:
        source = Path(source).resolve()

        def add(entries: dict[str, dict[str, Any]], name: str = source.name) -> None:
            entry = entries.setdefault(name, {})
            entry["needed_by"] = {**_current_readers(entry), **readers}

        try:
            _update_record(source.parent, add)
        except OSError:
            continue


# ---------------------------------------------------------------------------- one command's claim


@dataclass(frozen=True)
class Output:
    """One output of a command: a file, or a directory with the names it writes there."""

    path: Path
    writes: tuple[str, ...] = ()  # for a directory: the names it writes (files or folders of files)

    @property
    def is_directory(self) -> bool:
        return bool(self.writes)

    @property
    def folder(self) -> Path:
        """Where its record lives: the directory itself, or the file's folder."""
        return self.path if self.is_directory else self.path.parent

    def targets(self) -> list[Path]:
        return [self.path / name for name in self.writes] if self.is_directory else [self.path]

    @property
    def lock(self) -> Path:
        return self.path.parent / f".{self.path.name}{LOCK_SUFFIX}"


def _files_of(target: Path) -> list[Path]:
    """The files a target is: itself, or every file under it when it is a folder."""
    if target.is_dir() and not target.is_symlink():
        return sorted(p for p in target.rglob("*") if p.is_file() or p.is_symlink())
    return [target] if target.exists() or target.is_symlink() else []


class OutputClaim:
    """The outputs one command is about to write: checked before any work, locked while it runs, recorded after.

    Use as a context manager around the command's work::

        with OutputClaim("split", [Output(out, ("manifest.json", ...))], force=args.force, inputs=[...]):
            ...  # write

    On entering: every output is checked (:func:`~virnucpro_core.files.check_output`: not an input, the right
    kind, a writable place), locked (a second command on it waits, and says for whom) and checked against its
    folder's record (only this command's own unchanged files are replaced, unless ``force``). On leaving without
    an error, every file written is recorded. Attributes after entering: ``replacing`` (our earlier files this
    run replaces) and ``forced`` (files --force lets it replace).
    """

    def __init__(self, command: str, outputs: Sequence[Output], *, force: bool = False,
                 inputs: Iterable[str | os.PathLike | None] = (), option: str = "--out",
                 announce: Callable[[str], None] = print, timeout: float | None = None,
                 may_reuse: bool = False) -> None:
        """``may_reuse``: the command may keep an earlier output as it is (``extract``, ``split``), so it says
        itself whether it wrote or reused, and no "replacing" note comes first."""
        self.command, self.outputs, self.force, self.option = command, list(outputs), force, option
        self.may_reuse = may_reuse
        self.inputs = [p for p in inputs if p is not None]
        self.announce, self.timeout = announce, timeout
        self.replacing: list[Path] = []
        self.forced: list[Path] = []
        self._locks: list[tuple[int, Path]] = []  # the lock files held: descriptor and path
        self._made: list[Path] = []  # folders made for a lock file, removed again if the command fails
        self._before: dict[Path, tuple[int, int] | None] = {}

    # ------------------------------------------------------------------ entering

    def __enter__(self) -> OutputClaim:
        for output in self.outputs:
            check_output(output.path, kind="directory" if output.is_directory else "file", inputs=self.inputs,
                         writes=output.writes, option=self.option)
        try:
            for output in self.outputs:
                self._lock(output)
            self._check()
        except BaseException:
            self._release()
            raise
        for output in self.outputs:
            for target in output.targets():
                for path in _files_of(target) or [target]:
                    self._before[path] = _state(path)
        return self

    def _lock(self, output: Output) -> None:
        """Hold ``output``'s lock file, waiting (and saying for whom) while another command holds it.

        The holder removes the file when it finishes, so a waiter that then gets the lock checks that it locked
        the file now at that path, and starts again on the new one otherwise.
        """
        try:
            missing = [p for p in [output.lock.parent, *output.lock.parent.parents] if not p.exists()]
            output.lock.parent.mkdir(parents=True, exist_ok=True)
            self._made += missing
        except OSError as error:
            raise InputError(f"{self.option} {output.path} cannot be written: {os_error_message(error)}",
                             fix=f"choose another {self.option}, or fix the folder's permissions") from None
        start, told = time.monotonic(), False
        while True:
            try:
                fd = os.open(output.lock, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as error:
                raise InputError(f"{self.option} {output.path} cannot be written: {os_error_message(error)}",
                                 fix=f"choose another {self.option}, or fix the folder's permissions") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = _holder(output.lock)
                if not told:
                    self.announce(f"{output.path} is being written by another command ({holder}); waiting for it to "
                                  f"finish (stop it, or choose another {self.option}, not to wait)")
                    told = True
                if self.timeout is not None and time.monotonic() - start >= self.timeout:
                    raise InputError(f"{self.option} {output.path} is being written by another command ({holder})",
                                     found=f"still locked after {self.timeout:g} s",
                                     fix=f"wait for it to finish, or choose another {self.option}") from None
                time.sleep(_POLL_S)
                continue
            if _same_file(fd, output.lock):
                break
            os.close(fd)  # its holder finished and removed it: lock the one there now
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, virnucpro {self.command}, started {_now()}\n".encode(), 0)
        self._locks.append((fd, output.lock))

    def _check(self) -> None:
        """Sort every existing file of the outputs into replaceable, forced and refused; raise for the refused."""
        refused: dict[str, list[Path]] = {}  # problem -> files, so that one message names each problem once
        never: dict[str, list[Path]] = {}
        who = _who(self.command)
        for output in self.outputs:
            entries = read_record(output.folder)
            for target in output.targets():
                for path in _files_of(target):
                    name = path.relative_to(output.folder).as_posix()
                    problem, always = _problem(path, entries.get(name), self.command)
                    if problem is None:
                        self.replacing.append(path)
                    elif always:
                        never.setdefault(problem, []).append(path)
                    elif self.force:
                        self.forced.append(path)
                    else:
                        refused.setdefault(problem, []).append(path)
        if never:
            count = sum(map(len, never.values()))
            raise InputError(
                f"{self.option} would replace {count} file(s) that must stay as they are: {_listed(never)}",
                expected=f"an {self.option} where {who} writes only its own files",
                found=f"{count} file(s) of other outputs",
                fix=f"choose another {self.option}; nothing was written",
            )
        if refused:
            count = sum(map(len, refused.values()))
            raise InputError(
                f"{self.option} holds {count} file(s) of the names {who} writes that virnucpro did not write, or "
                f"that changed since: {_listed(refused)}",
                expected=f"a new {self.option}, or one holding only files {who} wrote earlier, unchanged",
                found=f"{count} such file(s)",
                fix=f"choose another {self.option}, move those files away, or pass --force to replace them; nothing "
                "was written",
            )
        if self.replacing and not self.may_reuse:
            self.announce("note: replacing " + ", ".join(str(p) for p in self.replacing)
                          + f", written earlier by {who}")
        if self.forced:
            self.announce("note: --force: replacing " + ", ".join(str(p) for p in self.forced)
                          + ", which virnucpro did not write (or which changed since)")

    # ------------------------------------------------------------------ leaving

    def __exit__(self, kind, error, traceback) -> None:
        self.finish(succeeded=kind is None)

    def finish(self, *, succeeded: bool) -> None:
        """Record what was written (when the command ``succeeded``) and drop the locks; for a claim held across
        hooks (the acceptance suite's reports) rather than a ``with`` block. Safe to call twice."""
        try:
            if succeeded and self._locks:
                self._record()
        finally:
            self._release()
            if not succeeded:
                self._unmake()

    def _unmake(self) -> None:
        """After a failure: the folders made for lock files go again, when nothing else is in them."""
        for folder in self._made:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        self._made.clear()

    def _record(self) -> None:
        for output in self.outputs:
            if not output.folder.is_dir():
                continue
            written = {}
            for target in output.targets():
                for path in _files_of(target):
                    if path.is_file() and _state(path) != self._before.get(path):
                        written[path.relative_to(output.folder).as_posix()] = ContentRecord.of(path).to_dict()
            gone = [t.relative_to(output.folder).as_posix() for t in output.targets() if not t.exists()]

            def change(entries: dict[str, dict[str, Any]], written=written, gone=gone,
                       folder=output.folder) -> None:
                for name in gone:
                    entries.pop(name, None)
                for name in [n for n, e in entries.items() if e.get("command") == self.command]:
                    if not (folder / name).exists():  # e.g. a figure this run did not draw again
                        entries.pop(name)
                for name, content in written.items():
                    readers = _current_readers(entries.get(name))
                    keep = {"needed_by": readers} if readers else {}
                    entries[name] = {"command": self.command, "written": _now(), "content": content, **keep}

            if written or gone:
                _update_record(output.folder, change)

    def _release(self) -> None:
        for fd, path in self._locks:
            with contextlib.suppress(OSError):
                if _same_file(fd, path):
                    path.unlink()  # removed while held: a waiter sees it gone and locks a new one
            os.close(fd)  # closing drops the flock
        self._locks.clear()


def _who(command: str) -> str:
    return "the acceptance suite" if command == ACCEPTANCE else f"`virnucpro {command}`"


def _listed(problems: dict[str, list[Path]]) -> str:
    return "; ".join(f"{', '.join(map(str, paths))} ({problem})" for problem, paths in problems.items())


def _current_readers(entry: dict[str, Any] | None) -> dict[str, Any]:
    """The views an entry notes that still read the file: there, and as they were when noted."""
    noted = (entry or {}).get("needed_by")
    if not isinstance(noted, dict):
        return {}
    return {view: record for view, record in noted.items()
            if (content := ContentRecord.from_dict(record)) is not None and changed(view, content) is None}


def _problem(path: Path, entry: dict[str, Any] | None, command: str) -> tuple[str | None, bool]:
    """Why ``path`` may not be replaced by ``command`` (None: it may), and whether --force cannot allow it."""
    readers = list(_current_readers(entry))
    if readers:
        return (f"{len(readers)} view(s) read their rows from it, e.g. {readers[0]}: replacing it would break "
                "them", True)
    if entry is None or "content" not in entry:
        return (f"not written by virnucpro: no record in {path.parent / RECORD}", False)
    if entry.get("command") != command:
        return (f"written by {_who(str(entry.get('command')))}, not by {_who(command)}", True)
    content = ContentRecord.from_dict(entry.get("content"))
    difference = "has no content record" if content is None else changed(path, content)
    if difference is not None:
        return (f"changed since {_who(command)} wrote it on {entry.get('written')}: it {difference}", False)
    return None, False


def _state(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``fd`` is the file at ``path`` now."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _holder(lock: Path) -> str:
    try:
        return lock.read_text(encoding="utf-8", errors="replace").strip() or "pid unknown"
    except OSError:
        return "pid unknown"
