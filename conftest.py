"""The acceptance run's start: options checked, the HTML report's place, the --artifacts lock.

The options are the table :data:`virnucpro_core.gate.options.SUITE_OPTIONS` (flags,
defaults, help texts that state each default), added to pytest by the plugin
:mod:`virnucpro_core.gate.plugin` (``-p`` in ``pytest.ini``, so that pytest knows
them before it reads the command line); ``acceptance/conftest.py`` parses them
into :class:`virnucpro_core.gate.settings.Settings` by the same table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from virnucpro_core.gate.options import SUITE_OPTIONS

DEFAULT_HTML = Path("reports") / "acceptance.html"
# Free space the reports need before a run starts: a smoke run's five files take 0.55 MB, a full run's more (its
# files table and figures grow with the inputs).
REPORTS_ROOM = 16 << 20
ARTIFACTS_LOCK = pytest.StashKey["object"]()  # this run's lock of its --artifacts folder


def _runs_acceptance(config: pytest.Config) -> bool:
    return any(Path(str(arg).split("::")[0]).resolve().is_relative_to(Path(__file__).parent / "acceptance")
               for arg in config.args)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not _runs_acceptance(config):
        return
    from virnucpro_core.errors import VirNucProError
    from virnucpro_core.files import check_free_space, check_output
    from virnucpro_core.input_files import check_utf8_name
    from virnucpro_core.gate.acceptance_report import ReportStaging, new_run_id
    from virnucpro_core.gate.lock import ArtifactsLock
    from virnucpro_core.gate.settings import Settings
    from virnucpro_core.outputs import ACCEPTANCE, Output, OutputClaim
    from virnucpro_core.paths import ReportPaths

    from acceptance.report_plugin import REPORTS, REPORTS_CLAIM, RUN_ID, SETTINGS

    # `pytest acceptance/` writes its HTML report without being asked; an explicit --html wins. Either way the
    # report is one self-contained file (styles and figures inline, no assets/ beside it).
    if config.getoption("help") or config.getoption("collectonly"):
        config.option.htmlpath = None  # they run nothing, so they write and remove no report either
        return
    if not config.getoption("htmlpath", default=None):
        config.option.htmlpath = str(DEFAULT_HTML)
    config.option.self_contained_html = True
    paths = ReportPaths(Path(config.option.htmlpath).parent)
    # The options and the report's place are checked before an earlier report is touched: a bad option or an
    # unusable --html is one usage error (exit 4) that leaves the earlier reports as they were.
    try:
        config.stash[SETTINGS] = Settings.resolve(**SUITE_OPTIONS.values(config.getoption), name=SUITE_OPTIONS.flag)
        check_utf8_name(config.option.htmlpath, "--html")
        check_output(config.option.htmlpath, kind="file", option="--html")
        check_output(paths.root, kind="directory", writes=[p.name for p in paths.owned()], option="--html's folder")
        check_free_space(paths.root, REPORTS_ROOM, what="the run's reports", option="--html")
        announce = lambda text: print(f"acceptance: {text}", file=sys.stderr, flush=True)  # noqa: E731
        # One run at a time per --artifacts: a second one waits here, before it touches any report or stage.
        config.stash[ARTIFACTS_LOCK] = ArtifactsLock(config.stash[SETTINGS].artifacts).acquire(announce)
        # The report files are ours or refused (--force), and one run writes them at a time; recorded once
        # published (acceptance/report_plugin.py).
        owned = tuple(sorted({p.relative_to(paths.root).as_posix() for p in paths.owned()}
                             | {Path(config.option.htmlpath).name}))
        config.stash[REPORTS_CLAIM] = OutputClaim(
            ACCEPTANCE, [Output(paths.root, owned)], force=config.getoption("force"), option="--html",
            announce=announce, may_reuse=True).__enter__()
    except VirNucProError as error:
        raise pytest.UsageError(f"acceptance options: {error}") from None
    # One run, one set of reports: written beside their place, moved in when all are finished (the earlier
    # run's files are replaced then, and stay as they were if this run gives no verdict).
    staging = ReportStaging.begin(Path(config.option.htmlpath))
    config.stash[REPORTS] = staging
    config.option.htmlpath = str(staging.staged_html)
    if hasattr(config.option, "benchmark_json") and config.option.benchmark_json is None:
        # pytest-benchmark's raw timings (every round, machine info) beside the HTML report.
        config.option.benchmark_json = staging.staged.benchmark_json
    config.stash[RUN_ID] = new_run_id()


def pytest_unconfigure(config: pytest.Config) -> None:
    lock = config.stash.get(ARTIFACTS_LOCK, None)
    if lock is not None:
        lock.release()
    from acceptance.report_plugin import REPORTS_CLAIM

    claim = config.stash.get(REPORTS_CLAIM, None)
    if claim is not None:  # released here too if the plugin never got to record it
        claim.finish(succeeded=False)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The report has one environment section, ours: pytest-metadata's table stays empty."""
    if not _runs_acceptance(session.config):
        return
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return
    if metadata_key in session.config.stash:
        session.config.stash[metadata_key].clear()
