"""pytest glue for the validation report: collects outcomes, then hands everything to the library.

The HTML sections are rendered by :mod:`virnucpro_core.html_report` and put
at the top of pytest-html's report; the markdown and JSON reports and the
timings are written beside the HTML file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from virnucpro_core.html_report import Outcome, ReportContext, decide_verdict, render_sections, write_side_reports

SETTINGS = pytest.StashKey["object"]()
RUN = pytest.StashKey["object"]()
TIMINGS = pytest.StashKey[dict]()
GPU_PROBLEM = pytest.StashKey[str]()


class AcceptanceReport:
    """Registered by ``acceptance/conftest.py``; one per session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.outcomes: dict[str, Outcome] = {}
        self._context: ReportContext | None = None

    # ------------------------------------------------------------------ collecting

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path, _, domain = report.location
        name = f"{Path(path).name}::{domain}"
        previous = self.outcomes.get(name)
        if report.when == "call" or report.outcome != "passed":
            outcome = "error" if report.when != "call" and report.outcome == "failed" else report.outcome
            message = _message(report)
            self.outcomes[name] = Outcome(name, outcome, message)
        elif previous is None:
            self.outcomes[name] = Outcome(name, "pending", "")

    def context(self) -> ReportContext:
        if self._context is None:
            stash = self.config.stash
            self._context = ReportContext(
                settings=stash.get(SETTINGS, None),
                run=stash.get(RUN, None),
                timings=stash.get(TIMINGS, {}),
                outcomes=list(self.outcomes.values()),
                gpu_problem=stash.get(GPU_PROBLEM, None),
            )
        return self._context

    # ------------------------------------------------------------------ writing

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._context = None  # every outcome is in now
        html_path = self.config.getoption("htmlpath", default=None)
        out_dir = Path(html_path).parent if html_path else Path("reports")
        context = self.context()
        written = write_side_reports(context, out_dir)
        if context.run is not None:
            context.run.write_stage_log()
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            verdict = decide_verdict(context)
            terminal.write_sep("=", f"acceptance verdict: {verdict.status}", bold=True,
                               red=verdict.status == "FAIL", green=verdict.status == "PASS",
                               yellow=verdict.status == "INCOMPLETE")
            for line in verdict.lines():
                terminal.write_line(line)
            if context.run is not None and context.run.stages:
                reused = sum(s.reused for s in context.run.stages)
                terminal.write_line(f"stages: {reused} reused, {len(context.run.stages) - reused} built, cached in "
                                    f"{context.run.paths.root} (--rebuild recomputes them)")
            for path in written:
                terminal.write_line(f"wrote {path}")

    def pytest_html_report_title(self, report) -> None:
        settings = self.config.stash.get(SETTINGS, None)
        profile = getattr(settings, "profile", "unknown")
        if profile == "smoke":
            report.title = "SMOKE PROFILE — checks the suite's machinery, does not validate FastESM2_650"
        else:
            report.title = f"VirNucPro FastESM2_650 acceptance — {profile} profile"

    def pytest_html_results_summary(self, prefix, summary, postfix, session) -> None:
        prefix.extend(render_sections(self.context()))


def _message(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        return crash.message if crash is not None else str(report.longrepr).strip().splitlines()[-1]
    return ""
