"""The pytest plugin that makes the suite's options known before pytest reads its command line.

pytest reads the command line twice. The first pass ("pre-parse") decides
which ``conftest.py`` files to import, from every argument it takes for a test
path; an option it does not know yet is skipped and its value taken for such
a path. Options added by a ``conftest.py`` are unknown then, so ``--viral
DATA/genomes.fa`` (space-separated, as the README writes it) imported
``DATA/conftest.py`` and ran it before any check — any file a data or model
folder holds (issue 38). ``pytest.ini`` registers this module with ``-p``
(``addopts``), which pytest imports before that first pass: the options are
known, their values are values, and no folder they name is searched for
``conftest.py``. Being first, it also caps ``OMP_NUM_THREADS`` at the cores
before any conftest loads torch (:func:`virnucpro_core.threads.cap_environment`).
Free of heavy imports, as ``pytest --help`` loads it.
"""

from __future__ import annotations

import sys

import pytest

from virnucpro_core.gate.options import SUITE_OPTIONS
from virnucpro_core.threads import cap_environment


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add every option of :data:`~virnucpro_core.gate.options.SUITE_OPTIONS` (one group, with its defaults)."""
    SUITE_OPTIONS.add_to(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:
    """Before the conftest files load torch: more OpenMP threads than cores are capped at the cores, said once."""
    capped = cap_environment()
    if capped:
        print(capped, file=sys.stderr, flush=True)
