"""One acceptance run at a time per ``--artifacts`` folder: the run-level lock.

Two suites on one artifacts folder would build the same stages into the same
places at once. :class:`ArtifactsLock` holds an exclusive ``flock`` on
``<artifacts>/.run.lock`` for the whole session: a second run says whose lock
it waits for and waits (or, with a timeout, refuses with one message). The
kernel drops the lock when its holder ends, ``kill -9`` included, so a killed
run never leaves a folder locked; the file itself is left in place.

The same kernel lock marks a folder a run is still using (:func:`hold`): a
run's report staging folder, which the next run removes when no process holds
it any more (:func:`remove_unheld`) — a run killed, or one a full disk stopped.
"""

from __future__ import annotations

import fcntl
import os
import time
import shutil
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

from virnucpro_core.errors import InputError, os_error_message

LOCK_NAME = ".run.lock"
_POLL_S = 0.5


class ArtifactsLock:
    """The exclusive lock of one artifacts folder, taken by :meth:`acquire`, dropped by :meth:`release`."""

    def __init__(self, artifacts: str | os.PathLike) -> None:
        self.artifacts = Path(artifacts)
        self.path = self.artifacts / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, announce: Callable[[str], None] = print, timeout: float | None = None) -> "ArtifactsLock":
        """Take the lock, waiting while another run holds it (say so once through ``announce``).

        Args:
            announce: where the waiting message goes.
            timeout: seconds to wait at most (``None``: as long as the other run takes).

        Raises:
            InputError: the folder cannot hold the lock (read-only, a file), or ``timeout`` passed.
        """
        try:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise InputError(f"--artifacts {self.artifacts} cannot be used: {os_error_message(error)}",
                             expected="a folder this user can write to (the suite caches its stages there)",
                             fix="choose another --artifacts, or fix its permissions") from None
        start, told = time.monotonic(), False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    announce(f"another acceptance run is using {self.artifacts} ({self.holder_text()}); waiting for it "
                             "to finish (stop it, or pass another --artifacts, not to wait)")
                    told = True
                if timeout is not None and time.monotonic() - start >= timeout:
                    os.close(fd)
                    raise InputError(f"--artifacts {self.artifacts} is in use by another acceptance run "
                                     f"({self.holder_text()})", found=f"still locked after {timeout:g} s",
                                     fix="wait for that run to finish, or pass another --artifacts") from None
                time.sleep(_POLL_S)
        os.ftruncate(fd, 0)
        started = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        os.pwrite(fd, f"pid {os.getpid()}, started {started} UTC\n".encode(), 0)
        self._fd = fd
        return self

    def holder_text(self) -> str:
        """Who holds the lock, as its holder wrote it: pid and start time."""
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").strip() or "pid unknown"
        except OSError:
            return "pid unknown"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def hold(folder: str | os.PathLike) -> int | None:
    """Lock ``folder`` for as long as this process keeps the returned descriptor open (``os.close`` it to let go);
    ``None`` when another process holds it, or it cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def remove_unheld(folders: Iterable[Path]) -> list[Path]:
    """Remove every one of ``folders`` that no process holds (:func:`hold`); return those removed."""
    removed = []
    for folder in sorted(folders):
        if folder.is_dir() and not folder.is_symlink() and (descriptor := hold(folder)) is not None:
            shutil.rmtree(folder, ignore_errors=True)
            os.close(descriptor)
            removed.append(folder)
    return removed
