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
  registry's, loaded with ``--allow-other-model``; or stages that other code
  built were kept (``--reuse-stages-from-other-code``).
* ``ERROR`` — the suite, its environment or its inputs broke before a gate
  could measure: a failed stage, a failed precondition test, ``--require-gpu``
  without a GPU.

Only ``PASS`` exits 0. The codes of the others sit above pytest's own (0–5) so
that a CI log never confuses them: see :data:`EXIT_CODES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from virnucpro_core.compare.rules import within_limit
from virnucpro_core.gate.gates import ERROR as GATE_ERROR
from virnucpro_core.gate.gates import FAILED, NOT_RUN, UNSTABLE_STEP, GateResult, first_line
from virnucpro_core.gate.session import GATE, AcceptanceSession

PASS, FAIL, INCOMPLETE, ERROR = "PASS", "FAIL", "INCOMPLETE", "ERROR"
EXIT_CODES = {PASS: 0, FAIL: 10, INCOMPLETE: 11, ERROR: 12}
MEANINGS = {
    PASS: "both gates ran on real weights and data and passed, and FastESM2 matched its own code",
    FAIL: "a gate measured a value beyond its limit",
    INCOMPLETE: "a gate could not run (no GPU, random weights, no sequences, smoke profile), the FastESM2 parity "
    "check did not run and pass in the full profile, another model was validated (--allow-other-model), or stages "
    "of other code were kept (--reuse-stages-from-other-code); exit 0 with --allow-incomplete",
    ERROR: "the suite, its environment or its inputs broke (a failed stage or check, --require-gpu without a GPU)",
}
# FastESM2 parity (the test marked ``parity``): not a gate, but a full-profile PASS on pretrained weights needs it to
# have run and passed; otherwise nothing says the features both gates judged are the model's.
PARITY_FIX = ("give --fast-model DIR with the real Synthyra/FastESM2_650 snapshot including its modeling_fastesm.py "
              "(`hf download Synthyra/FastESM2_650 --local-dir DIR`), and `make install` for the modules its code "
              "imports")
PARITY_STEP = ("Run the parity check alone until it passes: `python tools/fastesm_parity.py DIR --device cuda` (exit "
               "0: passed, 3: not run, with the reason); then rerun the suite with --fast-model DIR: finished stages "
               "are reused.")
OTHER_MODEL_STEP = ("For a verdict on FastESM2_650 against ESM2 3B, rerun without --allow-other-model, with "
                    "--fast-model / --baseline-model / --dna-model at copies of Synthyra/FastESM2_650, "
                    "facebook/esm2_t36_3B_UR50D and zhihan1996/DNABERT-S (or those models in the Hugging Face cache).")
OTHER_CODE_STEP = ("For a verdict by this code, rerun without --reuse-stages-from-other-code: the stages other code "
                   "built are rebuilt, the others reused.")
FULL_RUN = ("pytest acceptance/ -m gpu --require-gpu --profile full --viral VIRAL.fasta --host HOST.fasta "
            "on a GPU runner with the three models in the Hugging Face cache")


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
            "gates": {g.gate: {"state": g.status, "detail": g.reason} for g in self.gates},
        }


# ---------------------------------------------------------------------------- deciding


def decide_verdict(session: AcceptanceSession) -> Verdict:
    """The run's verdict (:func:`_decide`), with a step to rerun on an idle machine when the speed timing was unstable.

    The verdict itself still uses the mean of the timed rounds: an unstable timing only adds the step.
    """
    verdict = _decide(session)
    if any(g.numbers.get("unstable") for g in verdict.gates) and UNSTABLE_STEP not in verdict.next_steps:
        verdict.next_steps.append(UNSTABLE_STEP)
    return verdict


def _decide(session: AcceptanceSession) -> Verdict:
    """The run's verdict: FAIL if a gate measured beyond its limit, else ERROR if anything broke,
    else INCOMPLETE if a gate did not run or ran on stand-ins, or if the FastESM2 parity check did not run
    and pass in the full profile with pretrained weights, else PASS.

    Gates, the parity check and the evidence are found by the role their tests' markers give them
    (:class:`~virnucpro_core.gate.session.Outcome`), never by a test's name.
    """
    smoke = session.smoke
    if session.environment_error:
        return Verdict(ERROR, [session.environment_error], _environment_steps(session.environment_error), smoke)
    if session.not_run:
        return Verdict(INCOMPLETE, [session.not_run], [
            "Run the gate on a GPU runner, with --require-gpu so that a broken CUDA setup is an ERROR there.",
            "For the CPU smoke profile, run `pytest acceptance/` without -m gpu.",
        ], smoke)
    if not session.counted():
        return Verdict(INCOMPLETE, ["no acceptance test ran (deselected with -k or -m?)"],
                       ["Run `pytest acceptance/` without -k; `-m gpu` selects the whole gate."], smoke)

    gates = session.gates()
    broken = [f"{o.name}: {first_line(o.message).removeprefix('Failed: ')}" for o in session.counted()
              if o.outcome in ("failed", "error") and o.role != GATE]
    measured_fail = [g for g in gates if g.status == FAILED]
    gate_errors = [g for g in gates if g.status == GATE_ERROR]
    not_run = [g for g in gates if g.status == NOT_RUN]
    # Only a PASS run says PASS: on any other verdict a passed gate is "measured: within limit".
    gate_lines = [f"{g.gate} gate{'' if g.was_measured else ' ' + g.status}: {within_limit(g.reason)}" for g in gates]
    parity = _parity_not_run(session)

    if measured_fail:
        steps = [step for g in measured_fail for step in g.next_steps]
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
    # Another model than the registry's (--allow-other-model), or stages of other code kept
    # (--reuse-stages-from-other-code), are never a verdict on FastESM2_650 by this code.
    other = [session.other_model] if session.other_model else []
    other += [session.other_code] if session.other_code else []
    if not_run:
        steps = ["Give each gate that did not run what its line above says it lacks, and rerun: finished stages "
                 "are reused."]
        if smoke:
            steps.append(f"For a verdict on FastESM2_650: {FULL_RUN}.")
        steps += _other_steps(session)
        if parity:
            steps.append(PARITY_STEP)
        return Verdict(INCOMPLETE, other + gate_lines + ([_parity_line(parity)] if parity else []), steps, smoke, gates)
    if smoke:
        return Verdict(INCOMPLETE, [
            "smoke profile: both gates ran and measured within their limits, on random-weight stand-ins and bundled "
            "synthetic genomes — "
            "this checks the suite, not FastESM2_650",
            *other,
            *gate_lines,
        ], [f"For a verdict on FastESM2_650: {FULL_RUN}."], smoke, gates)
    if other or parity:
        steps = _other_steps(session) + ([PARITY_STEP] if parity else [])
        return Verdict(INCOMPLETE, other + ([_parity_line(parity)] if parity else []) + gate_lines, steps, smoke, gates)
    return Verdict(PASS, [f"{g.gate} gate: {g.reason}" for g in gates], [], smoke, gates)


def _other_steps(session: AcceptanceSession) -> list[str]:
    """What to do about another model (--allow-other-model) or stages of other code kept."""
    return (([OTHER_MODEL_STEP] if session.other_model else [])
            + ([OTHER_CODE_STEP] if session.other_code else []))


def _parity_not_run(session: AcceptanceSession) -> str | None:
    """Why the FastESM2 parity check did not run, in a full-profile run on pretrained weights; else None.

    None too when it ran and failed (or broke): its test failed, so the run is an ERROR, or a FAIL that lists it
    as "also broken".
    """
    if session.profile != "full" or getattr(session.settings, "weights", None) != "pretrained":
        return None
    outcome, result = session.parity_outcome, session.parity
    if outcome is not None and outcome.outcome in ("failed", "error"):
        return None
    if outcome is not None and outcome.outcome == "passed" and result is not None and result.passed:
        return None
    if result is not None and result.status == "not run":
        return result.reason
    if outcome is None:
        return "its test was not run (deselected?)"
    if outcome.outcome == "skipped":
        return first_line(outcome.message).removeprefix("FastESM2 parity not run: ") or "skipped"
    if outcome.outcome == "passed":
        return "its test passed but left no passed result"
    return "its test started but did not finish"  # pending


def _parity_line(why: str) -> str:
    return (f"FastESM2 parity with its own code not run: {why} — a full-profile PASS requires it to run and pass: "
            f"{PARITY_FIX}")


def _environment_steps(problem: str) -> list[str]:
    if "CPU-only build" in problem:
        return ["Install a CUDA build of torch that matches the driver, e.g. "
                "`make install TORCH=\"torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128\"`."]
    return ["Check `nvidia-smi` (driver loaded, GPU visible) and CUDA_VISIBLE_DEVICES in the job's environment.",
            "Check that torch's CUDA version is supported by the driver (`python -c \"import torch; "
            "print(torch.version.cuda, torch.cuda.device_count())\"`)."]
