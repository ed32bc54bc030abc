"""The heartbeat of `make test` (tests/heartbeat.py): a long test is announced on the terminal, and only there."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_a_long_test_is_announced_on_the_terminal_and_not_in_its_captured_output(tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        from heartbeat import Heartbeat

        def pytest_configure(config):
            config.pluginmanager.register(Heartbeat.to_terminal(config, first=1, every=1), "test-heartbeat")
    """))
    (tmp_path / "test_long.py").write_text(textwrap.dedent("""
        import time

        def test_quick():
            pass

        def test_long(capfd):
            print("own output")
            time.sleep(2.6)
            out, err = capfd.readouterr()
            assert out == "own output\\n" and err == ""
    """))
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                          "-c", os.devnull, str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    beats = [line for line in run.stdout.splitlines() if line.startswith("... still running")]
    assert beats[:2] == ["... still running test_long.py::test_long (1 s)",
                      "... still running test_long.py::test_long (2 s)"]
    assert not any("test_quick" in line for line in beats)
    assert "own output" not in run.stdout
