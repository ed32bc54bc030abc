"""The acceptance verdict and the exit status a CI job sees.

Four verdicts, each with one meaning:

* ``PASS`` — both gates ran on real weights and real data, both measured
  values are within their limits, and the FastESM2 parity check passed.
* ``FAIL`` — a gate measured a value beyond its limit (FastESM2 lost too much
  accuracy, or was not fast enough).
* ``INCOMPLETE`` — a gate could not run: no GPU, random weights, merged inputs
  without sequences, a gate deselected, or the smoke profile (stand-ins and
  synthetic data check the suite, not FastESM2); or, in the full profile with
  pretrained weights, the FastESM2 parity check (our vectors against the
  snapshot's own code) did not run and pass, so the features both gates judged
  are not known to be FastESM2's; or both passed on another model than the
  registry's, loaded with ``--allow-other-model``.
* ``ERROR`` — the suite, its environment or its inputs broke before a gate
  could measure: a failed stage, a failed precondition test, ``--require-gpu``
  without a GPU.

Only ``PASS`` exits 0. The codes of the others sit above pytest's own (0–5) so
that a CI log never confuses them: see :data:`EXIT_CODES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from virnucpro_core.defaults import MAX_TIME_RATIO

PASS, FAIL, INCOMPLETE, ERROR = "PASS", "FAIL", "INCOMPLETE", "ERROR"
EXIT_CODES = {PASS: 0, FAIL: 10, INCOMPLETE: 11, ERROR: 12}
MEANINGS = {
    PASS: "both gates ran on real weights and data and passed, and FastESM2 matched its own code",
    FAIL: "a gate measured a value beyond its limit",
    INCOMPLETE: "a gate could not run (no GPU, random weights, no sequences, smoke profile), the FastESM2 parity "
    "check did not run and pass in the full profile, or another model was validated (--allow-other-model); exit 0 "
    "with --allow-incomplete",
    ERROR: "the suite, its environment or its inputs broke (a failed stage or check, --require-gpu without a GPU)",
}
# The tests that decide each gate.
GATES = {"accuracy": "test_accuracy.py::test_accuracy_gate", "speed": "test_speed.py::test_speed_gate"}
# FastESM2 parity (acceptance/test_parity.py): not a gate, but a full-profile PASS on pretrained weights needs it to
# have run and passed; otherwise nothing says the features both gates judged are the model's.
PARITY_TEST = "test_parity.py::test_fastesm_matches_its_own_code"
PARITY_FIX = ("give --fast-model DIR with the real Synthyra/FastESM2_650 snapshot including its modeling_fastesm.py "
              "(`hf download Synthyra/FastESM2_650 --local-dir DIR`), and `make install` for the modules its code "
              "imports")
PARITY_STEP = ("Run the parity check alone until it passes: `python tools/fastesm_parity.py DIR --device cuda` (exit "
               "0: passed, 3: not run, with the reason); then rerun the suite with --fast-model DIR: finished stages "
               "are reused.")
# Evidence beside the gate (extra splits, groups, calibration): its tests never change the verdict or exit status.
EVIDENCE_TESTS = "test_generalisation.py::"
SPEED_NEXT_STEPS = [
    "Check that the GPU was idle and the same for both models (see Environment).",
    "Compare the like-for-like pair: if it passes, the difference comes from dtype or batching, not the model.",
    "Raise --bench-sample for steadier timings, or profile the extractor with benchmarks/extract_throughput.py.",
]
OTHER_MODEL_STEP = ("For a verdict on FastESM2_650 against ESM2 3B, rerun without --allow-other-model, with "
                    "--fast-model / --baseline-model / --dna-model at copies of Synthyra/FastESM2_650, "
                    "facebook/esm2_t36_3B_UR50D and zhihan1996/DNABERT-S (or those models in the Hugging Face cache).")
FULL_RUN = ("pytest acceptance/ -m gpu --require-gpu --profile full --viral VIRAL.fasta --host HOST.fasta "
            "on a GPU runner with the three models in the Hugging Face cache")


@dataclass
class Outcome:
    """One test's result as the report shows it."""

    name: str
    outcome: str  # passed, failed, error, skipped, pending
    message: str = ""


@dataclass
class ReportContext:
    """Everything the verdict and the reports read, gathered once at the end of the session.

    Attributes:
        settings: the run's :class:`~virnucpro_core.settings.Settings` (None if the options were bad).
        run: the :class:`~virnucpro_core.validation.ValidationRun` (None if no stage was asked for).
        timings: ``(pairing, embedder) → TimingResult`` of the speed tests.
        outcomes: every test's outcome.
        environment_error: why the run could not start on this machine (an ERROR), e.g. --require-gpu without CUDA.
        not_run: why no acceptance test was run at all (an INCOMPLETE), e.g. ``-m gpu`` without CUDA.
        parity: the FastESM2 parity check's :class:`~virnucpro_core.parity.ParityResult`, when it ran.
        run_id: this run's id, written into every report file.
        started: when the run started (ISO 8601, UTC).
    """

    settings: Any
    run: Any
    timings: dict
    outcomes: list[Outcome]
    environment_error: str | None = None
    not_run: str | None = None
    parity: Any = None
    run_id: str = ""
    started: str = ""

    def peek(self, stage: str) -> Any:
        return self.run.peek(stage) if self.run is not None else None

    def outcome(self, suffix: str) -> Outcome | None:
        matches = [o for o in self.outcomes if o.name.endswith(suffix) or o.name.split("[")[0].endswith(suffix)]
        return matches[0] if matches else None

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
    def other_model(self) -> str | None:
        """Why this run validated another model than the registry's (``--allow-other-model``), or None."""
        return unless_unreadable(self.run.other_model_reason, None) if self.run is not None else None

    def speed_ratio(self) -> tuple[float, Any, Any] | None:
        """``(ratio, fast timing, baseline timing)`` of the gated as-deployed pair, when both were timed."""
        fast, baseline = self.timings.get(("as-deployed", "fast")), self.timings.get(("as-deployed", "baseline"))
        if fast is None or baseline is None:
            return None
        return fast.mean_s / baseline.mean_s, fast, baseline


def unless_unreadable(call, default):
    """``call()``, or ``default`` when the run's inputs cannot be read (the tests that read them report it)."""
    from virnucpro_core.errors import VirNucProError

    try:
        return call()
    except VirNucProError:
        return default


@dataclass
class GateResult:
    """What one gate came to: ``passed`` / ``failed`` (measured) or ``error`` / ``not run`` (not measured)."""

    gate: str
    state: str
    sentence: str


@dataclass
class Verdict:
    status: str  # PASS, FAIL, INCOMPLETE, ERROR
    reasons: list[str]
    next_steps: list[str] = field(default_factory=list)
    smoke: bool = False
    gates: list[GateResult] = field(default_factory=list)

    def exit_code(self, allow_incomplete: bool = False) -> int:
        """0 for PASS (and INCOMPLETE with ``allow_incomplete``), else the verdict's own code."""
        if self.status == INCOMPLETE and allow_incomplete:
            return 0
        return EXIT_CODES[self.status]

    @property
    def title(self) -> str:
        """``PASS``, or ``INCOMPLETE (smoke profile)`` and the like."""
        return f"{self.status} (smoke profile)" if self.smoke else self.status

    def lines(self) -> list[str]:
        lines = [f"  - {reason}" for reason in self.reasons]
        if self.next_steps:
            lines.append("  next steps:")
            lines += [f"    {i}. {step}" for i, step in enumerate(self.next_steps, start=1)]
        return lines

    def to_dict(self, allow_incomplete: bool = False) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code(allow_incomplete),
            "smoke": self.smoke,
            "meaning": MEANINGS[self.status],
            "reasons": list(self.reasons),
            "next_steps": list(self.next_steps),
            "gates": {g.gate: {"state": g.state, "detail": g.sentence} for g in self.gates},
        }


# ---------------------------------------------------------------------------- deciding


def decide_verdict(ctx: ReportContext) -> Verdict:
    """The run's verdict: FAIL if a gate measured beyond its limit, else ERROR if anything broke,
    else INCOMPLETE if a gate did not run or ran on stand-ins, or if the FastESM2 parity check did not run
    and pass in the full profile with pretrained weights, else PASS."""
    smoke = ctx.smoke
    if ctx.environment_error:
        return Verdict(ERROR, [ctx.environment_error], _environment_steps(ctx.environment_error), smoke)
    if ctx.not_run:
        return Verdict(INCOMPLETE, [ctx.not_run], [
            "Run the gate on a GPU runner, with --require-gpu so that a broken CUDA setup is an ERROR there.",
            "For the CPU smoke profile, run `pytest acceptance/` without -m gpu.",
        ], smoke)
    if not [o for o in ctx.outcomes if not is_evidence(o)]:
        return Verdict(INCOMPLETE, ["no acceptance test ran (deselected with -k or -m?)"],
                       ["Run `pytest acceptance/` without -k; `-m gpu` selects the whole gate."], smoke)

    gates = [_accuracy_gate(ctx), _speed_gate(ctx)]
    gate_tests = set(GATES.values())
    broken = [f"{o.name}: {_first_line(o.message).removeprefix('Failed: ')}" for o in ctx.outcomes
              if o.outcome in ("failed", "error") and o.name.split("[")[0] not in gate_tests
              and not is_evidence(o)]
    measured_fail = [g for g in gates if g.state == "failed"]
    gate_errors = [g for g in gates if g.state == "error"]
    not_run = [g for g in gates if g.state == "not run"]
    gate_lines = [f"{g.gate} gate{'' if g.state in ('passed', 'failed') else ' ' + g.state}: {g.sentence}"
                  for g in gates]
    parity = _parity_not_run(ctx)

    if measured_fail:
        steps: list[str] = []
        comparison = ctx.peek("comparison")
        if any(g.gate == "accuracy" for g in measured_fail) and comparison is not None:
            steps += list(comparison.next_steps)
        if any(g.gate == "speed" for g in measured_fail):
            steps += SPEED_NEXT_STEPS
        also = [f"also broken: {line}" for line in broken]
        if parity:
            also.append(f"also: FastESM2 parity with its own code not run ({parity}), so these features were not "
                        "checked against the model's own code")
        return Verdict(FAIL, gate_lines + also, steps, smoke, gates)
    if broken or gate_errors:
        return Verdict(ERROR, broken + gate_lines, [
            "Read the first error: it names the stage or check, the input and what to do. Once it is fixed, rerun; "
            "finished stages are reused.",
        ], smoke, gates)
    # Another model than the registry's (--allow-other-model) is never a verdict on FastESM2_650.
    other = [ctx.other_model] if ctx.other_model else []
    if not_run:
        steps = ["Give each gate that did not run what its line above says it lacks, and rerun: finished stages "
                 "are reused."]
        if smoke:
            steps.append(f"For a verdict on FastESM2_650: {FULL_RUN}.")
        if other:
            steps.append(OTHER_MODEL_STEP)
        if parity:
            steps.append(PARITY_STEP)
        return Verdict(INCOMPLETE, other + gate_lines + ([_parity_line(parity)] if parity else []), steps, smoke, gates)
    if smoke:
        return Verdict(INCOMPLETE, [
            "smoke profile: both gates ran and passed, on random-weight stand-ins and bundled synthetic genomes — "
            "this checks the suite, not FastESM2_650",
            *other,
            *gate_lines,
        ], [f"For a verdict on FastESM2_650: {FULL_RUN}."], smoke, gates)
    if other or parity:
        steps = ([OTHER_MODEL_STEP] if other else []) + ([PARITY_STEP] if parity else [])
        return Verdict(INCOMPLETE, other + ([_parity_line(parity)] if parity else []) + gate_lines, steps, smoke, gates)
    return Verdict(PASS, gate_lines, [], smoke, gates)


def _parity_not_run(ctx: ReportContext) -> str | None:
    """Why the FastESM2 parity check did not run, in a full-profile run on pretrained weights; else None.

    None too when it ran and failed (or broke): its test failed, so the run is an ERROR, or a FAIL that lists it
    as "also broken".
    """
    if ctx.profile != "full" or getattr(ctx.settings, "weights", None) != "pretrained":
        return None
    outcome, result = ctx.outcome(PARITY_TEST), ctx.parity
    if outcome is not None and outcome.outcome in ("failed", "error"):
        return None
    if outcome is not None and outcome.outcome == "passed" and result is not None and result.passed:
        return None
    if result is not None and result.status == "not run":
        return result.reason
    if outcome is None:
        return "its test was not run (deselected?)"
    if outcome.outcome == "skipped":
        return _first_line(outcome.message).removeprefix("FastESM2 parity not run: ") or "skipped"
    if outcome.outcome == "passed":
        return "its test passed but left no passed result"
    return "its test started but did not finish"  # pending


def _parity_line(why: str) -> str:
    return (f"FastESM2 parity with its own code not run: {why} — a full-profile PASS requires it to run and pass: "
            f"{PARITY_FIX}")


def is_evidence(outcome: Outcome) -> bool:
    """An outcome of the evidence beside the gate (``acceptance/test_generalisation.py``): never counted."""
    return outcome.name.startswith(EVIDENCE_TESTS)


def _accuracy_gate(ctx: ReportContext) -> GateResult:
    outcome = ctx.outcome(GATES["accuracy"])
    comparison = ctx.peek("comparison")
    if outcome is not None and outcome.outcome == "passed" and comparison is not None:
        return GateResult("accuracy", "passed", comparison.reason)
    if outcome is not None and outcome.outcome == "failed" and comparison is not None and not comparison.passed:
        return GateResult("accuracy", "failed", comparison.reason)
    return _unmeasured("accuracy", outcome)


def _speed_gate(ctx: ReportContext) -> GateResult:
    outcome = ctx.outcome(GATES["speed"])
    measured = ctx.speed_ratio()
    if measured is not None and outcome is not None and outcome.outcome in ("passed", "failed"):
        ratio, fast, baseline = measured
        limit = getattr(ctx.settings, "max_time_ratio", MAX_TIME_RATIO)
        passed = ratio <= limit
        if passed == (outcome.outcome == "passed"):
            sentence = (f"time ratio {ratio:.3f} {'≤' if passed else '>'} limit {limit:g}: "
                        f"{'PASS' if passed else 'FAIL'} — FastESM2 {fast.mean_s:.3f} s / ESM2 3B "
                        f"{baseline.mean_s:.3f} s (as-deployed, {fast.sequences} proteins, on {fast.device})")
            return GateResult("speed", "passed" if passed else "failed", sentence)
    return _unmeasured("speed", outcome)


def _unmeasured(gate: str, outcome: Outcome | None) -> GateResult:
    if outcome is None:
        return GateResult(gate, "not run", "its test was not run (deselected?)")
    if outcome.outcome == "skipped":
        return GateResult(gate, "not run", _first_line(outcome.message) or "skipped")
    if outcome.outcome == "pending":
        return GateResult(gate, "error", "its test started but did not finish")
    if outcome.outcome == "passed":
        return GateResult(gate, "error", "its test passed but left no measurement to judge")
    return GateResult(gate, "error", _first_line(outcome.message).removeprefix("Failed: ") or outcome.outcome)


def _environment_steps(problem: str) -> list[str]:
    if "CPU-only build" in problem:
        return ["Install a CUDA build of torch that matches the driver, e.g. "
                "`make install TORCH=\"torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128\"`."]
    return ["Check `nvidia-smi` (driver loaded, GPU visible) and CUDA_VISIBLE_DEVICES in the job's environment.",
            "Check that torch's CUDA version is supported by the driver (`python -c \"import torch; "
            "print(torch.version.cuda, torch.cuda.device_count())\"`)."]


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""
