"""A line on the terminal while one test runs long, so `make test` is never silent for more than 30 s.

pytest prints a test's outcome only when it ends; the end-to-end tests run for minutes. While a test (its setup,
call and teardown, so a session fixture built on its behalf too) has run for ``first`` seconds, and every
``every`` seconds after, a thread writes one line naming it (with pytest-xdist, the controller does, for every
test its workers run: it hears of each test's start and end)::

    ... still running tests/tools/test_cli_chain.py::test_chain (30 s)

The line goes to a duplicate of the terminal's descriptor taken while pytest's capture was off, so it reaches the
terminal while the test's own output stays captured, and no capfd/capsys assertion sees it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import pytest


class Heartbeat:
    """The pytest plugin: register one per session (see tests/conftest.py)."""

    def __init__(self, fd: int, first: float = 30.0, every: float = 30.0) -> None:
        self.fd = fd
        self.first = first
        self.every = every
        self._running: dict[str, float] = {}  # test id -> when it started
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="test-heartbeat", daemon=True)
        self._thread.start()

    @classmethod
    def to_terminal(cls, config: pytest.Config, **timing: float) -> Heartbeat:
        """A heartbeat writing to the terminal pytest writes to (a duplicate of fd 1 taken with capture off)."""
        capture = config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            return cls(os.dup(1), **timing)

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        with self._lock:
            self._running[nodeid] = time.monotonic()

    def pytest_runtest_logfinish(self, nodeid: str, location) -> None:
        with self._lock:
            self._running.pop(nodeid, None)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self.fd)

    def _beat(self) -> None:
        said: dict[str, int] = {}  # test id -> its last whole interval announced
        while not self._stop.wait(min(1.0, self.every / 4)):
            now = time.monotonic()
            with self._lock:
                running = dict(self._running)
            said = {nodeid: interval for nodeid, interval in said.items() if nodeid in running}
            for nodeid, start in running.items():
                if now - start < self.first:
                    continue
                interval = int((now - start - self.first) // self.every)
                if said.get(nodeid) == interval:
                    continue
                said[nodeid] = interval
                try:
                    os.write(self.fd, f"\n... still running {nodeid} ({self.first + interval * self.every:.0f} s)\n"
                             .encode())
                except OSError:  # the terminal went away; the tests go on
                    return
