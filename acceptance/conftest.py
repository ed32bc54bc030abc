"""Session fixtures of the acceptance suite: thin calls into :class:`ValidationRun`.

The run's set-up (settings, the ``--artifacts`` lock, the reports' staging, the
run id) belongs to the report plugin, which this file only registers
(:func:`acceptance.report_plugin.register`).
Every stage is built once per session (and cached on disk across sessions).
A stage that fails is reported once, with its reason, by the first test that
needs it; every later test that needs it fails with a one-line pointer
instead of another traceback. What the fixtures build is handed to the
session's :class:`~virnucpro_core.gate.session.AcceptanceSession` (the ``acceptance``
fixture), which the verdict and the reports read.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from virnucpro_core.errors import VirNucProError, describe_error
from virnucpro_core.gate.session import AcceptanceSession
from virnucpro_core.defaults import EMBEDDERS
from virnucpro_core.gate.settings import Settings
from virnucpro_core.gate.validation import ValidationRun

from acceptance import report_plugin

ACCEPTANCE_DIR = Path(__file__).parent
log = logging.getLogger("virnucpro.acceptance")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """First, before pytest-html and pytest-benchmark read where to write their files."""
    report_plugin.register(config, ACCEPTANCE_DIR)


def _torch_sees() -> str:
    """What torch sees of CUDA, in words: the build and the device count."""
    build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
    return f"torch {torch.__version__} is {build} and sees {torch.cuda.device_count()} CUDA device(s)"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every acceptance test belongs to the GPU gate. Without a GPU, `-m gpu` or --require-gpu runs none of them:
    the verdict says why once (INCOMPLETE, or ERROR with --require-gpu) instead of once per test."""
    ours = [item for item in items if ACCEPTANCE_DIR in Path(str(item.fspath)).parents]
    for item in ours:
        item.add_marker(pytest.mark.gpu)
    if torch.cuda.is_available() or not ours:
        return
    if config.getoption("--require-gpu"):
        config.stash[report_plugin.ENVIRONMENT_ERROR] = (
            f"--require-gpu was given and this runner has no usable CUDA GPU: {_torch_sees()}; nothing was measured"
        )
    elif "gpu" in (config.getoption("markexpr") or ""):
        config.stash[report_plugin.NOT_RUN] = (
            f"`-m gpu` selects the GPU gate and this machine has no CUDA GPU ({_torch_sees()}): nothing was measured"
        )
    else:
        return
    config.hook.pytest_deselected(items=ours)
    items[:] = [item for item in items if item not in ours]


@pytest.fixture(scope="session")
def settings(acceptance) -> Settings:
    """The run's settings, resolved once when it started (a bad option was a usage error then)."""
    return acceptance.settings


class Terminal:
    """Stage lines and progress bars on the terminal while pytest captures test output."""

    def __init__(self, config: pytest.Config) -> None:
        self.capture = config.pluginmanager.get_plugin("capturemanager")
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.start = time.perf_counter()
        self._depth = 0

    @contextlib.contextmanager
    def uncaptured(self):
        """Capture off inside; nested uses keep it off until the outermost ends."""
        if self._depth or self.capture is None:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with self.capture.global_and_fixture_disabled():
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1

    def line(self, text: str) -> None:
        if self.reporter is None:
            return
        with self.uncaptured():
            self.reporter.write_line(f"[{time.perf_counter() - self.start:6.1f} s] {text}")


@pytest.fixture(scope="session")
def terminal(pytestconfig) -> Terminal:
    return Terminal(pytestconfig)


@pytest.fixture(scope="session")
def acceptance(pytestconfig) -> AcceptanceSession:
    """This run's acceptance session: fixtures and tests hand it what they measure; the verdict reads it."""
    return report_plugin.session_of(pytestconfig)


@pytest.fixture(scope="session")
def run(settings, acceptance, terminal) -> ValidationRun:
    # Bars only on an interactive terminal: in CI logs, tqdm's redraws are noise; the stage lines stay.
    value = ValidationRun(settings, progress=sys.stderr.isatty(), announce=terminal.line)
    acceptance.run = value
    return value


class Stages:
    """Calls stages of the run, turning a failure into one clear report."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.failed: dict[str, str] = {}

    def __call__(self, name: str, build: Callable[..., Any], *args: Any) -> Any:
        """``build(*args)``, a stage method of the run; ``name`` says which stage in a failure."""
        if name in self.failed:
            pytest.fail(f"stage '{name}' failed earlier ({self.failed[name]}); see the first failure", pytrace=False)
        try:
            with self.terminal.uncaptured():  # progress bars reach the terminal
                return build(*args)
        except (VirNucProError, OSError) as error:  # ours, or the machine's (a full disk, a permission)
            failure = describe_error(error)  # fail outside the except block: no chained traceback
        except Exception as error:
            # A bug: its traceback once, here; the tests that need this stage later do not run it again.
            self.failed[name] = f"{type(error).__name__}: {error}".splitlines()[0]
            raise
        self.failed[name] = failure.splitlines()[0]
        self.terminal.line(f"{name}: FAILED — {self.failed[name]}")
        pytest.fail(f"stage '{name}' failed: {failure}", pytrace=False)  # the reason stays on the verdict's line


@pytest.fixture(scope="session")
def stage(terminal) -> Stages:
    return Stages(terminal)


@pytest.fixture(scope="session")
def test_split(stage, run):
    """The FastESM2 split (train/test, manifest, distribution summary)."""
    return stage("split", run.split)


def _skip_if_baseline_from_metrics(settings: Settings, what: str) -> None:
    if settings.baseline_from_metrics:
        pytest.skip(f"the ESM2 3B baseline comes from --baseline-metrics {settings.baseline_metrics}: no baseline "
                    f"{what} to check (pass FASTA inputs or both embedders' merged features to build it)")


@pytest.fixture(scope="session")
def baseline_split(stage, run, settings):
    _skip_if_baseline_from_metrics(settings, "split")
    return stage("split[baseline]", run.split_for, "baseline")


@pytest.fixture(scope="session", params=list(EMBEDDERS), ids=[f"{k}={v}" for k, v in EMBEDDERS.items()])
def embedder(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def trained(stage, run, settings):
    """The trained MLPs, keyed ``fast`` / ``baseline`` (no baseline MLP with --baseline-metrics)."""
    names = ["fast"] if settings.baseline_from_metrics else list(EMBEDDERS)
    return {name: stage(f"train[{name}]", run.trained, name) for name in names}


@pytest.fixture
def trained_model(trained, embedder, settings):
    """The trained MLP of the parametrised ``embedder``."""
    if embedder not in trained:
        _skip_if_baseline_from_metrics(settings, "MLP")
    return trained[embedder]


@pytest.fixture(scope="session")
def meaningful_accuracy(settings, run) -> None:
    """The full profile's accuracy gate needs pretrained weights; the smoke profile runs it on stand-ins by design.

    Session-scoped and required by ``evaluations``, so with random weights no
    test-set metrics are computed at all and none reach the report.
    """
    reason = run.random_weights_reason() if settings.profile == "full" else None
    if reason:
        pytest.skip(f"random weights cannot validate accuracy ({reason}): pass --weights pretrained with real "
                    "weights (or merged features made from them) to run the accuracy gate")


@pytest.fixture(scope="session")
def evaluations(meaningful_accuracy, stage, run, trained):
    """Test-set metrics of both MLPs (the baseline's from --baseline-metrics when given)."""
    return {name: stage(f"evaluate[{name}]", run.evaluation, name) for name in EMBEDDERS}


@pytest.fixture(scope="session")
def comparison(stage, run, evaluations):
    """FastESM2 against ESM2 3B on the identical test samples: what the accuracy gate is measured from."""
    return stage("compare", run.comparison)


MERGED_INPUTS_NO_SPEED = ("merged feature inputs carry no protein sequences to time: pass the FASTA genomes "
                          "(--viral/--host) to run the speed gate")


@pytest.fixture(scope="session")
def bench_proteins(stage, run):
    if run.has_merged_inputs():
        pytest.skip(MERGED_INPUTS_NO_SPEED)
    return stage("benchmark sample", run.benchmark_proteins)


@pytest.fixture(scope="session")
def evidence(stage, run, comparison):
    """Extra splits, per-group accuracy, calibration, verdict levels: evidence beside the gate, never gated
    (their tests are marked ``evidence``, which the verdict ignores)."""
    return stage("evidence", run.evidence)
