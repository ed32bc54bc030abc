"""Scripts of benchmarks/, tools/ and fixtures/ imported as modules (those folders are not packages)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def import_script(relative: str) -> ModuleType:
    """``REPO/relative`` as a module, registered in ``sys.modules`` (dataclasses look their module up there)."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@contextmanager
def imported_script(relative: str) -> Iterator[ModuleType]:
    """:func:`import_script`, unregistered afterwards."""
    module = import_script(relative)
    try:
        yield module
    finally:
        sys.modules.pop(module.__name__, None)
