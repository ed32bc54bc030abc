"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from virnucpro_core.cli import main


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
    from checkpoint_files import build_original  # torch, only for the tests that use it

    return build_original(tmp_path_factory.mktemp("original-checkpoints"))
