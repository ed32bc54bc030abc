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
