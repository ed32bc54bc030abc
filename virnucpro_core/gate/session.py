"""One acceptance session: what the suite's fixtures and tests hand over, and what the verdict and reports read.

As in pytest-benchmark (plugin → session → results), the pytest plugin
(``acceptance/report_plugin.py``) makes one :class:`AcceptanceSession` from its
config (:func:`virnucpro_core.gate.start.start_session`: the settings, the
``--artifacts`` lock, the reports' claim and staging, the run id); the
fixtures hand it the validation run and the timings, the tests hand it the
parity result, and the plugin records each test's :class:`Outcome` with the
role its markers give it (``gate("accuracy")``, ``parity``, ``evidence``). The
gates are measured here once, through :mod:`virnucpro_core.gate.gates`, and settled
against the outcome of the test that carries their marker: nothing reads a
test's name to find a gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from virnucpro_core.errors import VirNucProError
from virnucpro_core.gate.gates import ACCURACY, GATES, SPEED, GateResult, accuracy_gate, settle, speed_gate, time_ratio
from virnucpro_core.threads import load_average

if TYPE_CHECKING:  # annotations only: the set-up's pieces (virnucpro_core.gate.start makes them)
    from virnucpro_core.gate.lock import ArtifactsLock
    from virnucpro_core.outputs import OutputClaim

# What a test is to the verdict, from its markers: it decides a gate, it is the FastESM2 parity check a full-profile
# PASS needs, it is evidence beside the gate (never counted), or it is one of the checks that must not break.
GATE, PARITY, EVIDENCE, CHECK = "gate", "parity", "evidence", "check"


@dataclass
class Outcome:
    """One test's result as the report shows it, with the role its markers give it.

    Attributes:
        name: ``file.py::test[params]``, as the reports list it.
        outcome: passed, failed, error, skipped, pending (started, not finished).
        message: the skip reason or the failure's first lines.
        role: :data:`GATE`, :data:`PARITY`, :data:`EVIDENCE` or :data:`CHECK`.
        gate: the gate it decides (``accuracy`` / ``speed``) when ``role`` is :data:`GATE`.
    """

    name: str
    outcome: str
    message: str = ""
    role: str = CHECK
    gate: str | None = None

    @classmethod
    def deciding(cls, gate: str, outcome: str, message: str = "", name: str = "") -> Outcome:
        """The outcome of the test that decides ``gate``."""
        return cls(name or f"{gate} gate", outcome, message, GATE, gate)


def unless_unreadable(call, default):
    """``call()``, or ``default`` when the run's inputs cannot be read (the tests that read them report it)."""
    try:
        return call()
    except VirNucProError:
        return default


@dataclass
class AcceptanceSession:
    """Everything the verdict and the reports read, handed over while the suite runs.

    Attributes:
        settings: the run's :class:`~virnucpro_core.gate.settings.Settings` (None if the options were bad).
        run: the :class:`~virnucpro_core.gate.validation.ValidationRun` (None if no stage was asked for); its
            finished stages are ``run.results``.
        timings: ``(pairing, embedder) → TimingResult`` of the speed tests.
        outcomes: every test's outcome, in the order they finished.
        environment_error: why the run could not start on this machine (an ERROR), e.g. --require-gpu without CUDA.
        not_run: why no acceptance test was run at all (an INCOMPLETE), e.g. ``-m gpu`` without CUDA.
        parity: the FastESM2 parity check's :class:`~virnucpro_core.extract.parity.ParityResult`, when it ran.
        run_id: this run's id, written into every report file.
        started: when the run started (ISO 8601, UTC).
        load_at_start: the machine's load averages when the session began (:func:`virnucpro_core.threads.load_average`).
        lock: the run's :class:`~virnucpro_core.gate.lock.ArtifactsLock` of its ``--artifacts`` folder, held.
        reports_claim: the run's :class:`~virnucpro_core.outputs.OutputClaim` of its report files, held.
        staging: the run's :class:`~virnucpro_core.gate.acceptance_report.ReportStaging`, where its reports are
            written before they are moved into place.
    """

    settings: Any = None
    run: Any = None
    timings: dict = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    environment_error: str | None = None
    not_run: str | None = None
    parity: Any = None
    run_id: str = ""
    started: str = ""
    load_at_start: str = field(default_factory=load_average)
    lock: ArtifactsLock | None = field(default=None, repr=False)
    reports_claim: OutputClaim | None = field(default=None, repr=False)
    staging: Any = field(default=None, repr=False)  # a ReportStaging (acceptance_report imports this module)
    _measured: dict[str, GateResult] = field(default_factory=dict, init=False, repr=False)

    # ------------------------------------------------------------------ handing over

    def record_timing(self, pairing: str, embedder: str, timing: Any) -> None:
        """A speed test's timing; the speed gate is measured again from the timings it now has."""
        self.timings[(pairing, embedder)] = timing
        self._measured.pop(SPEED, None)

    def record_outcome(self, outcome: Outcome) -> None:
        """A test's outcome, replacing an earlier one of the same test (setup, then call, then teardown)."""
        for i, known in enumerate(self.outcomes):
            if known.name == outcome.name:
                self.outcomes[i] = outcome
                return
        self.outcomes.append(outcome)

    def release(self) -> None:
        """Let go of the ``--artifacts`` lock and the reports' claim (recorded earlier if the reports were
        published); safe to call twice."""
        if self.lock is not None:
            self.lock.release()
        if self.reports_claim is not None:
            self.reports_claim.finish(succeeded=False)

    # ------------------------------------------------------------------ the gates

    def measure(self, gate: str) -> GateResult | None:
        """``gate`` measured from what this session holds (once; None when it has nothing to measure it from).

        Accuracy from the run's comparison, speed from the timings against the settings' limit.
        """
        if gate not in self._measured:
            result = None
            if gate == ACCURACY and self.results is not None and self.results.comparison is not None:
                result = accuracy_gate(self.results.comparison)
            elif gate == SPEED and self.settings is not None:  # without both timings: an error, and why
                result = speed_gate(self.timings, self.settings.max_time_ratio)
            if result is None:
                return None
            self._measured[gate] = result
        return self._measured[gate]

    def decided_by(self, gate: str) -> Outcome | None:
        """The outcome of the test that decides ``gate`` (None: no such test ran)."""
        return next((o for o in self.outcomes if o.role == GATE and o.gate == gate), None)

    def gate(self, gate: str) -> GateResult:
        """What ``gate`` came to: its measurement if the test deciding it agrees, else not run / error and why."""
        return settle(gate, self.measure(gate), self.decided_by(gate))

    def gates(self) -> list[GateResult]:
        return [self.gate(name) for name in GATES]

    def time_ratio(self, pairing: str) -> float | None:
        return time_ratio(self.timings, pairing)

    # ------------------------------------------------------------------ outcomes by role

    @property
    def parity_outcome(self) -> Outcome | None:
        return next((o for o in self.outcomes if o.role == PARITY), None)

    def counted(self) -> list[Outcome]:
        """Every outcome but the evidence's, which never changes the verdict."""
        return [o for o in self.outcomes if o.role != EVIDENCE]

    # ------------------------------------------------------------------ the run, as the reports see it

    @property
    def results(self) -> Any:
        """The run's finished stages (:class:`~virnucpro_core.gate.validation.RunResults`), or None without a run."""
        return getattr(self.run, "results", None)

    @property
    def profile(self) -> str:
        return getattr(self.settings, "profile", "unknown")

    @property
    def smoke(self) -> bool:
        return self.profile == "smoke"

    @property
    def random_weights(self) -> str | None:
        """Why this run's accuracy cannot validate FastESM2 (random weights in the options or the inputs), or None."""
        if self.run is not None:
            return unless_unreadable(self.run.random_weights_reason, None)
        return "--weights random" if getattr(self.settings, "weights", None) == "random" else None

    @property
    def other_code(self) -> str | None:
        """Which stages other code built and this run kept (``--reuse-stages-from-other-code``), or None."""
        kept = getattr(getattr(self.run, "cache", None), "other_code", None)
        if not kept:
            return None
        return (f"{len(kept)} stage(s) built by other code were reused (--reuse-stages-from-other-code), so "
                "this code did not compute everything the gates judged: "
                + "; ".join(f"{stage}: {change}" for stage, change in kept))

    @property
    def other_model(self) -> str | None:
        """Why this run validated another model than the registry's (``--allow-other-model``), or None."""
        return unless_unreadable(self.run.other_model_reason, None) if self.run is not None else None
