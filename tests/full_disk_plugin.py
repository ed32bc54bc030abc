"""A pytest plugin for the tests only (``-p full_disk_plugin``): a full disk where a test says, as a suite run meets
it, without filling a real one. Set in the started suite's environment:

* ``FULL_DISK_UNDER=DIR``: ``shutil.disk_usage`` reports 4,096 bytes free for every path under ``DIR`` (what the
  free-space checks before a run and before an extraction read);
* ``FULL_DISK_REPORTS=1``: once the session has started (its checks passed), every file opened for writing in a
  report staging folder (``.acceptance.*.part``) fails with ENOSPC, as on a disk that filled during the run —
  pytest-html's page, pytest-benchmark's JSON and our own reports alike.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

_real_disk_usage, _real_open = shutil.disk_usage, builtins.open

if under := os.environ.get("FULL_DISK_UNDER"):
    def _disk_usage(path):
        if Path(path).absolute().is_relative_to(Path(under).absolute()):
            return SimpleNamespace(total=1 << 30, used=(1 << 30) - 4096, free=4096)
        return _real_disk_usage(path)

    shutil.disk_usage = _disk_usage


def _open(file, mode="r", *args, **kwargs):
    if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+") and any(
            part.startswith(".acceptance.") and part.endswith(".part") for part in Path(file).parts):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a failed write says it: no file named
    return _real_open(file, mode, *args, **kwargs)


def pytest_sessionstart(session) -> None:
    if os.environ.get("FULL_DISK_REPORTS"):
        builtins.open = io.open = _open
