"""FastESM2 parity: our loader against the model's own code, on the real snapshot the suite uses.

Runs :func:`virnucpro_core.extract.parity.fastesm_parity` when the suite's FastESM2
weights (``--fast-model DIR``, or Synthyra/FastESM2_650 in the Hugging Face
cache) are a real pretrained snapshot; skips with the reason otherwise (random
weights, no snapshot here, or the snapshot's own code cannot run here). Not a
gate: a failure means the FastESM2 features this run extracts are not the
model's, so the run ends in ERROR rather than in a verdict on FastESM2; a skip
in the full profile with pretrained weights leaves the verdict INCOMPLETE with
the reason (:func:`virnucpro_core.gate.verdict.decide_verdict`), since a PASS needs
the features checked against the model's own code. The result is in the
report's Environment table and in acceptance.json (``parity``).
"""

from __future__ import annotations

import pytest

from virnucpro_core.errors import VirNucProError
from virnucpro_core.models.hub_cache import model_directory
from virnucpro_core.models.registry import STANDIN_MARKER
from virnucpro_core.extract.parity import FAILED, NOT_RUN, fastesm_parity
from virnucpro_core.gate.validation import EMBEDDERS, MODEL_OPTIONS

FAST = EMBEDDERS["fast"]


@pytest.mark.gpu
@pytest.mark.parity
def test_fastesm_matches_its_own_code(run, settings, acceptance, terminal):
    if settings.weights != "pretrained":
        pytest.skip(f"--weights {settings.weights}: no real FastESM2 snapshot to compare with its own code "
                    "(pass --weights pretrained and --fast-model DIR)")
    try:
        directory, _, source = model_directory(FAST, settings.model_sources.get(FAST) or None, MODEL_OPTIONS[FAST])
    except VirNucProError as error:
        pytest.skip(f"no FastESM2 snapshot on this machine to compare with its own code: {str(error).splitlines()[0]}")
    if (directory / STANDIN_MARKER).is_file():
        pytest.skip(f"{source} is a random-weight stand-in ({STANDIN_MARKER}), not FastESM2_650")
    terminal.line(f"FastESM2 parity: {directory} our way and with its own code on {run.device()} ...")
    try:
        with terminal.uncaptured():
            result = fastesm_parity(directory, device=run.device())
    except VirNucProError as error:  # our own loader refuses the snapshot: the extraction stage would too
        pytest.fail(f"FastESM2 parity: our loader refuses {directory}: {error}", pytrace=False)
    acceptance.parity = result
    terminal.line(f"FastESM2 parity {result.summary()}")
    if result.status == NOT_RUN:
        pytest.skip(f"FastESM2 parity not run: {result.reason}")
    if result.status == FAILED:
        pytest.fail(f"FastESM2 parity FAIL: our FastESM2 vectors differ from its own code's ({result.reason}); the "
                    "features of this run are not the model's. Reproduce with `python tools/fastesm_parity.py "
                    f"{directory}`", pytrace=False)
