"""An acceptance run's start: one :class:`~virnucpro_core.gate.session.AcceptanceSession`, made once from the config.

As pytest-benchmark's plugin makes its ``BenchmarkSession`` from the config,
the suite's report plugin (``acceptance/report_plugin.py``) calls
:func:`start_session` once, in ``pytest_configure``, and holds what it returns:

* the run's :class:`~virnucpro_core.gate.settings.Settings`, resolved once from
  the options table :data:`~virnucpro_core.gate.options.SUITE_OPTIONS`;
* the ``--artifacts`` lock (:class:`~virnucpro_core.gate.lock.ArtifactsLock`): one
  run at a time per folder, a second one waits here;
* the reports' claim (:class:`~virnucpro_core.outputs.OutputClaim`) and their
  staging folder (:class:`~virnucpro_core.gate.acceptance_report.ReportStaging`):
  a run writes its reports beside their place and moves them in once all are
  finished;
* the run id and start time written into every report.

Everything is checked before an earlier report is touched: a bad option or an
unusable ``--html`` is one usage error (exit 4) that leaves the earlier reports
as they were and holds nothing. :meth:`AcceptanceSession.release
<virnucpro_core.gate.session.AcceptanceSession.release>` lets go of the lock
and the claim at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from virnucpro_core.errors import VirNucProError
from virnucpro_core.files import check_free_space, check_output
from virnucpro_core.gate.acceptance_report import ReportStaging, new_run_id
from virnucpro_core.gate.lock import ArtifactsLock
from virnucpro_core.gate.options import SUITE_OPTIONS
from virnucpro_core.gate.session import AcceptanceSession
from virnucpro_core.gate.settings import Settings
from virnucpro_core.input_files import check_utf8_name
from virnucpro_core.outputs import ACCEPTANCE, Output, OutputClaim
from virnucpro_core.paths import ReportPaths

DEFAULT_HTML = Path("reports") / "acceptance.html"
# Free space the reports need before a run starts: a smoke run's five files take 0.55 MB, a full run's more (its
# files table and figures grow with the inputs).
REPORTS_ROOM = 16 << 20


def runs_folder(config: pytest.Config, folder: Path) -> bool:
    """Whether this pytest run was asked for tests in ``folder`` (one of its arguments is in it)."""
    return any(Path(str(arg).split("::")[0]).resolve().is_relative_to(folder.resolve()) for arg in config.args)


def runs_nothing(config: pytest.Config) -> bool:
    """``--help`` and ``--collect-only`` run no test: no verdict, no reports, pytest's own exit status."""
    return bool(config.getoption("help") or config.getoption("collectonly"))


def _announce(text: str) -> None:
    print(f"acceptance: {text}", file=sys.stderr, flush=True)


def start_session(config: pytest.Config) -> AcceptanceSession:
    """This run's session, with its settings, the ``--artifacts`` lock, the reports' claim and staging, its run id.

    Sets pytest-html's ``--html`` (``reports/acceptance.html`` unless given; one self-contained file) to the
    staged page, and pytest-benchmark's ``--benchmark-json`` to the staged timings unless given.

    Raises:
        pytest.UsageError: an option or the reports' place is unusable (exit 4); nothing is held then.
    """
    # `pytest acceptance/` writes its HTML report without being asked; an explicit --html wins. Either way the
    # report is one self-contained file (styles and figures inline, no assets/ beside it).
    if not config.getoption("htmlpath", default=None):
        config.option.htmlpath = str(DEFAULT_HTML)
    config.option.self_contained_html = True
    html = Path(config.option.htmlpath)
    paths = ReportPaths(html.parent)
    session = AcceptanceSession()
    # The options and the report's place are checked before an earlier report is touched: a bad option or an
    # unusable --html is one usage error (exit 4) that leaves the earlier reports as they were.
    try:
        # Errors name the flags a user typed, not the settings' fields.
        session.settings = Settings.resolve(**SUITE_OPTIONS.values(config.getoption), name=SUITE_OPTIONS.flag)
        check_utf8_name(config.option.htmlpath, "--html")
        check_output(config.option.htmlpath, kind="file", option="--html")
        check_output(paths.root, kind="directory", writes=[p.name for p in paths.owned()], option="--html's folder")
        check_free_space(paths.root, REPORTS_ROOM, what="the run's reports", option="--html")
        # One run at a time per --artifacts: a second one waits here, before it touches any report or stage.
        session.lock = ArtifactsLock(session.settings.artifacts).acquire(_announce)
        # The report files are ours or refused (--force), and one run writes them at a time; recorded once
        # published (acceptance/report_plugin.py).
        session.reports_claim = OutputClaim(
            ACCEPTANCE, [Output(paths.root, _owned(paths, html))], force=config.getoption("force"),
            option="--html", announce=_announce, may_reuse=True).__enter__()
    except VirNucProError as error:
        session.release()
        raise pytest.UsageError(f"acceptance options: {error}") from None
    # One run, one set of reports: written beside their place, moved in when all are finished (the earlier
    # run's files are replaced then, and stay as they were if this run gives no verdict).
    try:
        session.staging = ReportStaging.begin(html)
    except BaseException:
        session.release()
        raise
    config.option.htmlpath = str(session.staging.staged_html)
    if hasattr(config.option, "benchmark_json") and config.option.benchmark_json is None:
        # pytest-benchmark's raw timings (every round, machine info) beside the HTML report.
        config.option.benchmark_json = session.staging.staged.benchmark_json
    session.run_id, session.started = new_run_id()
    return session


def _owned(paths: ReportPaths, html: Path) -> tuple[str, ...]:
    """The report files this run writes, relative to their folder (the HTML page under the name --html gives)."""
    names: Iterable[str] = {p.relative_to(paths.root).as_posix() for p in paths.owned()} | {html.name}
    return tuple(sorted(names))
