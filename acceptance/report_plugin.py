"""pytest glue for the verdict and the reports: hands outcomes to the session, then everything to the library.

As in pytest-benchmark, this plugin owns one
:class:`~virnucpro_core.gate.session.AcceptanceSession`, made once from the
config by :func:`register` (:func:`~virnucpro_core.gate.start.start_session`:
the settings, the ``--artifacts`` lock, the reports' claim and staging, the run
id), which ``acceptance/conftest.py`` calls. The fixtures hand it the
run and the timings, the tests the parity result, and this plugin every test's
outcome with the role its markers give it (``@pytest.mark.gate("accuracy")``,
``parity``, ``evidence``). At the end of the session the verdict
(:mod:`virnucpro_core.gate.verdict`) reads the session and decides the exit
status, the markdown and JSON reports are written from it, and pytest-html's
page gets its title and our sections through pytest-html's own hooks
(``pytest_html_report_title``, ``pytest_html_results_summary``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from virnucpro_core.errors import describe_error
from virnucpro_core.gate.acceptance_report import new_run_id
from virnucpro_core.gate.html_report import figures, render_html, summary_prefix
from virnucpro_core.gate.report_model import build_report
from virnucpro_core.gate.report_files import write_side_reports
from virnucpro_core.gate.gates import GATES
from virnucpro_core.paths import ReportPaths
from virnucpro_core.gate.session import CHECK, EVIDENCE, GATE, PARITY, AcceptanceSession, Outcome
from virnucpro_core.gate.start import runs_folder, runs_nothing, start_session
from virnucpro_core.gate.verdict import EXIT_CODES, decide_verdict

PLUGIN_NAME = "virnucpro-acceptance-report"
ENVIRONMENT_ERROR = pytest.StashKey[str]()  # the run cannot start here: ERROR
NOT_RUN = pytest.StashKey[str]()  # no acceptance test was run: INCOMPLETE

# pytest's own statuses that say the session itself did not finish: kept as they are.
_PYTEST_ABORTS = (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)


def register(config: pytest.Config, suite: Path) -> None:
    """Start the acceptance run and register this plugin with its session (``acceptance/conftest.py`` calls this,
    first in ``pytest_configure``, so that pytest-html and pytest-benchmark find their files' staged places).

    A run of tests in ``suite`` gets the whole set-up (:func:`~virnucpro_core.gate.start.start_session`); a run of
    other tests that reached the suite's folder, a bare session. ``--help`` and ``--collect-only`` get neither:
    they run nothing, so they write and remove no report (pytest's own exit status).
    """
    if runs_nothing(config):
        config.option.htmlpath = None
        return
    session = start_session(config) if runs_folder(config, suite) else None
    config.pluginmanager.register(AcceptanceReport(config, session), PLUGIN_NAME)


def session_of(config: pytest.Config) -> AcceptanceSession:
    """The acceptance session of this pytest run (fixtures hand it what they build)."""
    return config.pluginmanager.get_plugin(PLUGIN_NAME).session


class AcceptanceReport:
    """Registered by :func:`register` as :data:`PLUGIN_NAME`; one per session, holding its
    :class:`~virnucpro_core.gate.session.AcceptanceSession` (a bare one with a new run id when none is given)."""

    def __init__(self, config: pytest.Config, session: AcceptanceSession | None = None) -> None:
        self.config = config
        if session is None:
            session = AcceptanceSession()
            session.run_id, session.started = new_run_id()
        self.session = session
        self._roles: dict[str, tuple[str, str | None]] = {}  # node id -> (role, gate), from the test's markers
        self._sections: str | None = None
        self._html_report = None  # pytest-html's report data (pytest_html_report_title): its title is set at the end
        self._written: list[Path] = []  # this run's reports, staged: said "wrote" once they are in place
        self._session: pytest.Session | None = None
        self._unwritten: str | None = None  # why the reports could not be written (a full disk), once said
        self._finished = False  # the reports were finished and moved into place (or given up), once

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """The report has one environment section, ours: pytest-metadata's table stays empty (a started run)."""
        if self.session.staging is None:
            return
        try:
            from pytest_metadata.plugin import metadata_key
        except ImportError:  # an optional plugin: without it there is no table to empty
            return
        if metadata_key in session.config.stash:
            session.config.stash[metadata_key].clear()

    # ------------------------------------------------------------------ collecting

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        self._roles[item.nodeid] = _role(item)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path, _, domain = report.location
        name = f"{Path(path).name}::{domain}"
        role, gate = self._roles.get(report.nodeid, (CHECK, None))
        known = any(o.name == name for o in self.session.outcomes)
        if report.when == "call" or report.outcome != "passed":
            outcome = "error" if report.when != "call" and report.outcome == "failed" else report.outcome
            self.session.record_outcome(Outcome(name, outcome, _message(report), role, gate))
        elif not known:
            self.session.record_outcome(Outcome(name, "pending", "", role, gate))

    def context(self) -> AcceptanceSession:
        """The session, with what collection found: why nothing could run here."""
        stash, session = self.config.stash, self.session
        session.environment_error = stash.get(ENVIRONMENT_ERROR, None)
        session.not_run = stash.get(NOT_RUN, None)
        return session

    # ------------------------------------------------------------------ deciding and writing

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_wrapper(self, session: pytest.Session):
        """Around every plugin's end of session (pytest-html and pytest-benchmark write their files then): a
        report that cannot be written (a full disk) is one message and an ERROR, not a traceback."""
        self._session = session
        try:
            return (yield)
        except OSError as error:
            staging = self.session.staging
            if error.filename is None and staging is not None:  # another plugin's write: name where it wrote
                error = OSError(error.errno, error.strerror, str(staging.staging))
            self._unwritten = self._unwritten or describe_error(error)  # the first error is the one to fix

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        context = self.context()
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if session.exitstatus in _PYTEST_ABORTS:
            # Interrupted (Ctrl-C) or broken before the end: no verdict is written, so none can disagree with the
            # exit status, which stays pytest's own (2, 3 or 4). Finished stages stay cached for the rerun.
            self._write_stage_log(context, terminal)
            if terminal is not None:
                terminal.write_sep("=", f"acceptance: no verdict — the session did not finish (exit status "
                                        f"{int(session.exitstatus)}); rerun the same command: finished stages are "
                                        "reused", bold=True, yellow=True)
            return
        verdict = decide_verdict(context)
        allow = bool(self.config.getoption("--allow-incomplete"))
        code = verdict.exit_code(allow)
        session.exitstatus = code
        html_path = self.config.getoption("htmlpath", default=None)
        paths = ReportPaths(Path(html_path).parent if html_path else Path("reports"))
        finished = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        report = build_report(context, verdict, exit_code=code)  # the sections, once: markdown and HTML lay them out
        try:
            written = write_side_reports(context, verdict, paths, allow_incomplete=allow, finished=finished,
                                         report=report)
        except OSError as error:
            # acceptance.json is written last: without it there is no verdict on disk, and the status says ERROR
            # (pytest_unconfigure says so once, after the other plugins' files).
            session.exitstatus = EXIT_CODES["ERROR"]
            self._unwritten = describe_error(error)
            return
        if html_path:
            # pytest-html writes its file after this hook, with these (pytest_html_results_summary)
            self._sections = render_html(report, figures(context))
            if self._html_report is not None:
                self._html_report.title = report.title
            written.insert(0, Path(html_path))
        self._write_stage_log(context, terminal)

        if terminal is None:
            return
        colour = {"PASS": "green", "FAIL": "red", "ERROR": "red", "INCOMPLETE": "yellow"}[verdict.status]
        terminal.write_sep("=", f"acceptance verdict: {verdict.title} — exit status {code}", bold=True,
                           **{colour: True})
        for line in verdict.lines():
            terminal.write_line(line)
        if verdict.status == "INCOMPLETE":
            terminal.write_line(f"  (INCOMPLETE exits {EXIT_CODES['INCOMPLETE']}; "
                                + ("--allow-incomplete made it 0)" if allow else "pass --allow-incomplete to exit 0)"))
        if context.run is not None and context.run.stages:
            reused = sum(s.reused for s in context.run.stages)
            terminal.write_line(f"stages: {reused} reused, {len(context.run.stages) - reused} built, cached in "
                                f"{context.run.paths.root} (--rebuild recomputes them)")
        self._written = written  # "wrote" is said once they are in place (pytest_unconfigure)

    @staticmethod
    def _write_stage_log(context: AcceptanceSession, terminal) -> None:
        """The run's stage log, beside its cached stages; a place that cannot take it is one line, not a traceback."""
        if context.run is None:
            return
        try:
            context.run.write_stage_log()
        except OSError as error:
            if terminal is not None:
                terminal.write_line(f"stage log not written: {describe_error(error)}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter) -> None:
        """The reports are finished and moved into place here, before pytest-html names its page (its line comes
        after this hook), which then names the place it is in, not the staging folder."""
        if self._finish_reports(terminalreporter):
            staging = self.session.staging
            for plugin in self.config.pluginmanager.get_plugins():
                # The one private attribute left: pytest-html prints the path it was given (--html, which the set-up
                # pointed at the staging folder) from _report_path, and no hook changes that line. If the attribute
                # changes, its line names the staging folder and our own "wrote" lines still name the final place.
                if (staging is not None and isinstance(getattr(plugin, "_report_path", None), Path)
                        and plugin._report_path.resolve() == staging.staged_html.resolve()):  # --html may be relative
                    plugin._report_path = staging.html.absolute()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Where no summary was written (an error before it, ``--no-summary``): the reports are finished here.
        Then the session lets go of the ``--artifacts`` lock and the reports' claim."""
        try:
            self._finish_reports(config.pluginmanager.get_plugin("terminalreporter"))
        finally:
            self.session.release()

    def _finish_reports(self, terminal) -> bool:
        """Finish the HTML page and move this run's reports into place (once); ``True`` when they are there.

        A report that cannot be written (a full disk) leaves nothing of this run's behind, says so once and makes
        the exit status ERROR; "wrote" is said of each report only once it is in place.
        """
        if self._finished:
            return False
        self._finished = True
        staging = self.session.staging
        kept = "the earlier reports (if any) are as they were"
        try:
            if staging is not None and self._unwritten is None and staging.staged.json.is_file():
                kept = "some of the earlier reports may have been replaced, but not the earlier acceptance.json"
                staging.publish()  # a verdict was written: this run's reports replace the earlier ones (renames)
                claim = self.session.reports_claim
                if claim is not None:  # the reports folder's record names this run's files
                    claim.finish(succeeded=True)
        except OSError as error:
            self._unwritten = describe_error(error)
        if staging is not None and (self._unwritten is not None or not staging.staged.json.is_file()):
            staging.discard()  # no verdict (Ctrl-C, an internal error) or no room for it: keep the earlier reports
        if self._unwritten is not None:
            # The verdict was decided, but it is on disk nowhere: an ERROR, said once, with the earlier reports kept.
            if self._session is not None:
                self._session.exitstatus = EXIT_CODES["ERROR"]
            if terminal is not None:
                terminal.write_sep("=", f"acceptance: the reports could not be written — exit status "
                                        f"{EXIT_CODES['ERROR']}", bold=True, red=True)
                terminal.write_line(self._unwritten)
                terminal.write_line(f"nothing of this run's reports was left behind; {kept}")
            return False
        if terminal is not None:
            for path in self._written:
                terminal.write_line(f"wrote {staging.final_path(path) if staging is not None else path}")
        return bool(self._written)

    # ------------------------------------------------------------------ pytest-html's page

    def pytest_html_report_title(self, report) -> None:
        """pytest-html asks for the title when the session starts, before there is a verdict: its report data is
        kept, and its title set once the verdict is decided (pytest-html renders the page after that)."""
        self._html_report = report
        report.title = "VirNucPro FastESM2_650 acceptance"

    def pytest_html_results_summary(self, prefix, summary, postfix, session) -> None:
        """Our sections, verdict first, before pytest-html's count and table of the tests."""
        if self._sections is not None:
            prefix.extend(summary_prefix(self._sections))

    def pytest_benchmark_update_json(self, config, benchmarks, output_json) -> None:
        output_json["virnucpro_run"] = {"id": self.session.run_id, "started": self.session.started}


def _role(item: pytest.Item) -> tuple[str, str | None]:
    """What a test is to the verdict, from its markers: ``(role, gate)``."""
    marker = item.get_closest_marker("gate")
    if marker is not None:
        gate = marker.args[0] if marker.args else None
        if gate not in GATES:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.gate({gate!r}) names no gate; the gates are "
                                    f"{', '.join(GATES)}")
        return GATE, gate
    if item.get_closest_marker("parity") is not None:
        return PARITY, None
    if item.get_closest_marker("evidence") is not None:
        return EVIDENCE, None
    return CHECK, None


def _message(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        return crash.message if crash is not None else str(report.longrepr).strip().splitlines()[-1]
    return ""
