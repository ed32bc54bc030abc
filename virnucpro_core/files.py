"""Small file helpers shared by every stage: atomic writes and content hashes (files saved with torch are
hashed as they are written: :mod:`virnucpro_core.custody`)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from virnucpro_core.custody import remember
from virnucpro_core.errors import InputError
from virnucpro_core.input_files import resolved


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Readers never see a half-written file: an exception (or a kill) leaves the
    old file, or nothing, in place.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes owner-only files; give the result the mode a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    except OSError as error:
        if error.filename is None and error.errno is not None:  # a failed write names no file: name the target
            raise OSError(error.errno, error.strerror or str(error), str(target)) from error
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a string (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def atomic_torch_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically, byte-identical for identical objects.

    Saving through a file handle keeps the zip's inner folder name fixed
    ("archive"); ``torch.save(obj, tmp_path)`` would name it after the random
    temporary file, so equal content would give different bytes and hashes.
    """
    # files.py stays torch-free so the CLI starts fast; torch only to save tensors
    import torch

    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            writer = _HashingWriter(handle)
            torch.save(obj, writer)
    except RuntimeError as error:
        # torch's zip writer reports a failed write (a full disk, a quota) as a RuntimeError from its C++
        # inline_container: an OSError here, so that every caller says it as one message with the path.
        if "PytorchStreamWriter" not in str(error) and "inline_container" not in str(error):
            raise
        full = shutil.disk_usage(Path(path).absolute().parent).free < (64 << 20)
        raise OSError(errno.ENOSPC if full else errno.EIO,
                      "No space left on device" if full else "the file could not be written", str(path)) from None
    # Hashed as it was written (torch.save writes its zip in order): a content record of it reads nothing.
    remember(path, writer.digest.hexdigest())
    return Path(path)


class _HashingWriter:
    """A binary file that hashes what is written through it."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, data) -> int:
        self.digest.update(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


@contextlib.contextmanager
def files_together(directory: str | os.PathLike, marker: str) -> Iterator[Path]:
    """Yield a staging folder beside ``directory``; on success move everything in it into ``directory``.

    A result made of several files is written whole or not at all: an error,
    a kill or a full disk while writing leaves ``directory`` as it was (an
    earlier complete set stays complete). Moving in is renames only; ``marker``
    (the file that says a set is complete) is removed first and moved in last.
    Files of ``directory`` that the new set does not hold are left alone, and
    ``directory`` is created only once the set is complete (a stage that finds
    its input invalid half-way leaves no empty folder behind).
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
    try:
        yield staging
        target.mkdir(exist_ok=True)
        (target / marker).unlink(missing_ok=True)
        for item in sorted(staging.iterdir(), key=lambda p: p.name == marker):
            destination = target / item.name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~_UMASK)
            os.replace(item, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def earlier_outputs(path: str | os.PathLike, writes: Iterable[str] = ()) -> list[Path]:
    """The files of an earlier run that writing ``path`` (a file, or a directory's ``writes``) will replace."""
    path = Path(path)
    targets = [path / name for name in writes] if writes else [path]
    return [target for target in targets if target.exists()]


def check_output(
    path: str | os.PathLike,
    *,
    kind: str = "file",
    inputs: Iterable[str | os.PathLike | None] = (),
    writes: Iterable[str] = (),
    option: str = "--out",
) -> Path:
    """Check an output location before any work starts; return it.

    Refuses an output that would overwrite one of ``inputs`` (for a directory:
    one of the files it ``writes``), a path that exists as the other kind, and a
    place the user cannot write to — so that hours of work never end in a
    traceback with the result lost.

    Raises:
        InputError: with the path, what is wrong and what to do.
    """
    out = Path(path).expanduser()
    resolved(out, option=option)  # a symlink loop: one message naming the option
    targets = [out] if kind == "file" else [out / name for name in writes]
    sources = {resolved(p) for p in inputs if p is not None}
    problem = None
    clobbered = [t for t in targets if resolved(t, option=option) in sources]
    if clobbered:
        problem = f"would overwrite the input {clobbered[0]}"
    elif kind == "file" and out.is_dir():
        problem = "is a directory, and a file goes here"
    elif kind == "directory" and out.exists() and not out.is_dir():
        problem = "is a file, and a directory goes here"
    else:
        existing = out.absolute() if kind == "directory" else out.absolute().parent
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            problem = f"cannot be created: {existing} is a file"
        elif not os.access(existing, os.W_OK | os.X_OK):
            problem = f"cannot be written: {existing} is not writable"
    if problem:
        raise InputError(
            f"{option} {path} {problem}",
            expected=f"a new or replaceable {kind} in a writable place, not one of the inputs",
            found=str(out.absolute()),
            fix=f"choose another {option}",
        )
    return out


def check_free_space(path: str | os.PathLike, needed: int, *, what: str, option: str = "--out") -> None:
    """Refuse to start work whose ``needed`` bytes of output cannot fit where ``path`` goes.

    Raises:
        InputError: the file system holding ``path`` has less than ``needed`` bytes free.
    """
    existing = Path(path).absolute()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing if existing.is_dir() else existing.parent).free
    if free < needed:
        raise InputError(
            f"{option} {path}: not enough free space for {what}",
            expected=f"at least {needed:,} bytes free on the file system of {existing}",
            found=f"{free:,} bytes free",
            fix=f"free space there, or choose another {option}; nothing was started",
        )
