"""Fixtures shared by the unit tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from virnucpro_core.cli import main

from tests.heartbeat import Heartbeat


def pytest_configure(config: pytest.Config) -> None:
    """A line on the terminal every 30 s while one test runs long (tests/heartbeat.py); with pytest-xdist, from the
    controller only (its workers' output is not the terminal)."""
    if hasattr(config, "workerinput"):
        # What the tests start (the acceptance suite, the CLI) is a user's run, not a pytest-xdist worker: with
        # PYTEST_XDIST_WORKER set, pytest-benchmark in a started suite would switch its benchmarks off.
        for name in [name for name in os.environ if name.startswith("PYTEST_XDIST_")]:
            del os.environ[name]
        return
    config.pluginmanager.register(Heartbeat.to_terminal(config), "test-heartbeat")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow end-to-end tests first, each file's tests kept together and in order. With two workers (make test,
    ``--dist loadfile``) xdist hands out the files with the most tests first; within a file the slow tests still
    come first, so kill -9 at each stage (about 2.5 min) starts with its file instead of ending it."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the order within each part stays


@pytest.fixture
def run_cli(capsys):
    """Run ``virnucpro ARGS`` in-process; returns ``(exit status, stdout, stderr)``."""

    def run(args: list[str]) -> tuple[int, str, str]:
        try:
            code = main(args)
        except SystemExit as exit_:  # argparse errors
            code = exit_.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def original_checkpoints(tmp_path_factory):
    """Directory of original-VirNucPro-layout files (``checkpoint_files.ORIGINAL_FILES``), made once per session."""
    from tests.checkpoint_files import build_original  # torch, only for the tests that use it

    return build_original(tmp_path_factory.mktemp("original-checkpoints"))


@pytest.fixture(scope="session")
def smoke_artifacts(tmp_path_factory, pytestconfig):
    """One artifacts folder for every end-to-end run of the default smoke profile in this session.

    The first run builds the stages (about 1 min 15 s on 2 quiet cores); later runs reuse them, as a user's rerun
    does, each checked against its content record (chain of custody), so reusing them tests nothing less. With
    pytest-xdist every worker gets the same folder: the suite's lock on it makes a second run wait for the first
    and then reuse what it built, as two users' runs on one folder do. ``make test`` names the folder
    (``VIRNUCPRO_TEST_SMOKE_ARTIFACTS``): the one its smoke suite has just built, cold, before tests/ start.
    """
    if named := os.environ.get("VIRNUCPRO_TEST_SMOKE_ARTIFACTS"):  # make test's, built by its smoke suite just before
        folder = Path(named)
    else:
        base = tmp_path_factory.getbasetemp()
        if hasattr(pytestconfig, "workerinput"):  # each worker's folder is one below the run's
            base = base.parent
        folder = base / "smoke-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def smoke_copy(smoke_artifacts) -> Callable[[Path], Path]:
    """``smoke_copy(dest)``: a copy of ``smoke_artifacts`` as it stands, for a run that must not touch the shared
    folder (one it interrupts, one whose lock it checks). Taken under the folder's lock, so never in the middle
    of a run: the copy holds the stages finished so far, each checked against its content record when reused;
    a run on it builds the rest, so what it tests does not depend on what the session built before it."""
    from virnucpro_core.gate.lock import LOCK_NAME, ArtifactsLock

    def copy(dest: Path) -> Path:
        lock = ArtifactsLock(smoke_artifacts).acquire(announce=lambda _text: None)
        try:
            shutil.copytree(smoke_artifacts, dest, ignore=shutil.ignore_patterns(LOCK_NAME))
        finally:
            lock.release()
        return dest

    return copy
