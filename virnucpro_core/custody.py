"""Content records: a file we wrote or read is used again only if it still holds what was recorded.

A :class:`ContentRecord` is a file's SHA-256 and a stat record (size,
mtime_ns, ctime_ns, inode, device), taken when the file was written or first
read. Checking a file against its record (:func:`changed`)
takes the stat record as the fast path: unchanged, the file is the one that
was recorded (microseconds, no byte read). Any stat field different, the
digest is recomputed (one read of the file) and decides. A user cannot set a
file's ctime back, so a replacement with its old mtime restored (``cp`` then
``touch -r``) still takes the slow path and is caught. This is the idea of
DVC's state table (content digests behind an inode/mtime/size record), not
its code.

Digests are remembered for the life of the process by path and stat record
(:func:`digest`), and files written through
:func:`virnucpro_core.files.atomic_torch_save` are hashed while they are
written (:func:`remember`), so a run hashes each file at most once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


# (resolved path, stat key) -> sha256 of everything this process hashed or wrote.
_DIGESTS: dict[tuple[str, tuple[int, ...]], str] = {}


def _stat_key(stat: os.stat_result) -> tuple[int, ...]:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def remember(path: str | os.PathLike, sha256: str, read_as: os.stat_result | None = None) -> None:
    """Note that ``path``, as it is now on disk, has this digest (a file hashed as it was written or read).

    ``read_as``: the file's stat when the reading began; a file that changed since keeps no digest.
    """
    resolved = Path(path).resolve()
    now = _stat_key(resolved.stat())
    if read_as is None or _stat_key(read_as) == now:
        _DIGESTS[(str(resolved), now)] = sha256


def digest(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the file's bytes, read at most once per process for the same file state."""
    resolved = Path(path).resolve()
    key = (str(resolved), _stat_key(resolved.stat()))
    if key not in _DIGESTS:
        with open(resolved, "rb") as handle:
            found = hashlib.file_digest(handle, "sha256").hexdigest()
        # A file that changed while it was read: its digest describes no state of it worth remembering.
        if _stat_key(resolved.stat()) != key[1]:
            return found
        _DIGESTS[key] = found
    return _DIGESTS[key]


def known_digest(path: str | os.PathLike) -> str | None:
    """The digest of ``path`` as it is now if this process already computed it, else None (nothing is read)."""
    try:
        resolved = Path(path).resolve()
        return _DIGESTS.get((str(resolved), _stat_key(resolved.stat())))
    except OSError:
        return None


def digests(paths: Sequence[str | os.PathLike], workers: int | None = None) -> list[str]:
    """:func:`digest` of each path, several files at once (hashlib hashes without the GIL): a full check of
    many files runs at the disk's pace rather than one core's (default: one thread per usable core)."""
    workers = workers or len(os.sched_getaffinity(0))
    if len(paths) < 2 or workers < 2:
        return [digest(p) for p in paths]
    with ThreadPoolExecutor(max_workers=min(workers, len(paths))) as pool:
        return list(pool.map(digest, paths))


@dataclass(frozen=True)
class ContentRecord:
    """What a file held when it was recorded: its digest and the stat record of that state.

    Attributes:
        sha256: hex SHA-256 of the bytes.
        size, mtime_ns, ctime_ns, inode, device: ``os.stat`` of the file then.
        recorded: when (ISO 8601, UTC).
    """

    sha256: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int
    recorded: str

    @classmethod
    def of(cls, path: str | os.PathLike, sha256: str | None = None) -> ContentRecord:
        """The record of ``path`` as it is now (``sha256`` when already known, else :func:`digest`)."""
        stat = Path(path).stat()
        found = sha256 or digest(path)
        return cls(found, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev, _now())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ContentRecord | None:
        """The record written by :meth:`to_dict`, or None when ``data`` is not one (an older file)."""
        if not isinstance(data, Mapping):
            return None
        try:
            return cls(str(data["sha256"]), int(data["size"]), int(data["mtime_ns"]), int(data["ctime_ns"]),
                       int(data["inode"]), int(data["device"]), str(data["recorded"]))
        except (KeyError, TypeError, ValueError):
            return None

    def same_state(self, stat: os.stat_result) -> bool:
        """Whether ``stat`` is the recorded state (the fast path: then the content is the recorded one)."""
        return _stat_key(stat) == (self.size, self.mtime_ns, self.ctime_ns, self.inode, self.device)


def changed(path: str | os.PathLike, record: ContentRecord) -> str | None:
    """How ``path`` differs from ``record``, or None when it holds the recorded content.

    One phrase that completes "``path`` ...": "is gone", "is 3 bytes, was 4,000 when recorded on ...", or
    "holds other bytes (sha256 ..., recorded sha256 ... on ...)" with both digests in full.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "is gone"
    if record.same_state(stat):
        return None
    modified = _when(stat.st_mtime_ns)
    if stat.st_size != record.size:
        return f"is {stat.st_size:,} bytes (modified {modified}), was {record.size:,} when recorded on {record.recorded}"
    found = digest(path)
    if found == record.sha256:
        return None
    return (f"holds other bytes of the same size (modified {modified}): sha256 {found}, recorded "
            f"{record.sha256} on {record.recorded}")


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat(timespec="seconds")
