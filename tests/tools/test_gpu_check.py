"""tools/gpu_check.sh: its CPU rehearsal end to end (what keeps the GPU run from rotting) and its parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts import REPO, imported_script

SCRIPT = REPO / "tools" / "gpu_check.sh"


@pytest.fixture(scope="module")
def gc():
    with imported_script("tools/gpu_check.py") as module:
        yield module


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory, smoke_copy):
    """``tools/gpu_check.sh --cpu`` as a user runs it after ``make smoke`` (its suite step reuses a copy of the
    session's smoke stages, as ``--artifacts artifacts/acceptance/smoke`` would: about 40 s on 2 cores)."""
    out = tmp_path_factory.mktemp("gpu_check")
    artifacts = smoke_copy(tmp_path_factory.mktemp("gpu_check_artifacts") / "smoke")
    done = subprocess.run(
        [str(SCRIPT), "--cpu", "--out", str(out), "--artifacts", str(artifacts)], cwd=REPO, capture_output=True,
        text=True, timeout=600, env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    return done, out, json.loads((out / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_cpu_rehearsal_runs_every_step_and_exits_0(cpu_run):
    done, out, summary = cpu_run
    steps = {step["name"]: step for step in summary["steps"]}
    assert list(steps) == ["environment", "dependencies", "extract-fastesm2", "suite", "extract-esm2-3b"]
    failed = {name: step.get("detail") for name, step in steps.items() if step["status"] != "passed"}
    assert not failed, f"steps that did not pass: {failed}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 0 and summary["status"] == "passed" and summary["mode"] == "cpu"
    for name, step in steps.items():
        assert (out / step["log"]).is_file(), f"{name}: no log"
        assert all((out / f).is_file() for f in step["outputs"]), f"{name}: missing {step['outputs']}"
    assert "gpu_check (cpu): PASSED" in done.stdout and "speed gate: ratio" in done.stdout


@pytest.mark.slow
def test_cpu_rehearsal_summary_holds_the_numbers(cpu_run):
    _, out, summary = cpu_run
    extraction = summary["extraction"]
    assert set(extraction) == {"fastesm2_650", "esm2_3b"}
    for model, lengths in extraction.items():
        assert set(lengths) == {"100", "166"}, f"{model}: lengths {sorted(lengths)}"
        for length, entry in lengths.items():
            assert entry["naive"]["sequences_per_s"] > 0 and entry["deployed"]["sequences_per_s"] > 0
            assert entry["deployed"]["min_cosine"] >= 0.999, f"{model} ~{length}: deployed vs fp32 naive"
    fast = [row["variant"] for row in extraction["fastesm2_650"]["100"]["rows"]]
    assert fast == ["naive fp32 b16", "ours fp32 t8192*", "ours fp32 t8192 packed"], (
        "naive, deployed (eager on the CPU), then the packed path a GPU deploys")
    packed = {length: entry["rows"][2] for length, entry in extraction["fastesm2_650"].items()}
    for length, row in packed.items():
        assert row["path"] == "packed" and row["min_cosine"] >= 0.999, f"~{length}: {row}"
        assert row["graphs_in_runs"] == 0, f"~{length}: compiled inside the timed runs"
        assert extraction["fastesm2_650"][length]["eager"]["variant"] == "ours fp32 t8192*", "eager as deployed"
    # One row shape serves both lengths: compiled for the first, loaded for the second.
    assert (packed["100"]["graphs"], packed["166"]["graphs"]) == (1, 0), packed
    baseline = [row["variant"] for row in extraction["esm2_3b"]["166"]["rows"]]
    assert baseline == ["naive fp32 b16", "ours fp32 t2048*", "ours fp16 t2048"], "as VirNucPro ran it, and fp16"
    profile = summary["profile"]["fastesm2_650 ~100"]
    assert set(profile) == {"eager", "packed"}, profile
    for name, entry in profile.items():
        assert entry["batch_ms"] > 0 and (out / entry["trace"]).is_file(), name
        assert set(entry["percent"]) == {"matmul", "attention", "elementwise", "idle"}, entry
    projection = summary["speed_gate"]["projection"]
    assert projection["gpus"] == [1] and projection["unit"] == "CPU-hours"
    labels = [size["label"] for size in projection["inputs"]]
    assert labels[0] == "this run's input" and labels[-1].startswith("VirNucPro's training set"), labels
    assert {(st["stage"], st["model"]) for st in projection["stages"]} >= {
        ("extraction", "FastESM2_650"), ("extraction", "ESM2 3B"), ("extraction", "DNABERT-S")}
    # The goals are for FastESM2 on an H100-class GPU: recorded, never judged on a CPU.
    assert [(g["length"], g["goal_per_s"], g["applies"], g["met"]) for g in summary["goals"]] == [
        ("100", 3000.0, False, None), ("166", 1800.0, False, None)]
    gate = summary["speed_gate"]
    assert gate["speed_gate"] in ("passed", "failed") and gate["device"] == "cpu" and gate["limit"] == 0.5
    assert gate["ratio"] == pytest.approx(gate["fast_mean_s"] / gate["baseline_mean_s"], abs=1e-3)
    assert gate["verdict"] == "INCOMPLETE" and gate["exit_code"] == 11, "the smoke profile is never PASS"
    report = json.loads((out / "suite" / "acceptance.json").read_text(encoding="utf-8"))
    assert report["verdict"]["status"] == gate["verdict"]
    assert summary["environment"]["torch"] and summary["environment"]["device"] == "cpu"
    assert (out / "nvidia-smi.txt").is_file()


def test_without_artifacts_the_suite_gets_a_temporary_folder_removed_at_the_end(gc, tmp_path, monkeypatch, capsys):
    """What the rehearsal above does not use (it passes --artifacts): the default, a folder of its own."""
    seen = []

    def fake_run_step(step, out, env):
        folder = Path(step.command[step.command.index("--artifacts") + 1])
        seen.append((folder, folder.is_dir()))
        return gc.StepResult(step.name, gc.PASSED, 0, 0.1, step.limit_s, "", f"{step.name}.log", [])

    monkeypatch.setattr(gc, "run_step", fake_run_step)
    gc.main(["--cpu", "--out", str(tmp_path / "out"), "--steps", "suite"])
    [(folder, existed)] = seen
    assert existed and folder.name.startswith("gpu_check_artifacts_"), folder
    assert not folder.exists(), "the temporary artifacts folder is removed at the end"
    assert "suite" in capsys.readouterr().out


def test_a_step_past_its_limit_is_stopped_and_says_so(gc, tmp_path):
    step = gc.Step("sleeper", [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"], 1)
    result = gc.run_step(step, tmp_path, {})
    assert result.status == gc.TIMED_OUT and result.seconds < 30, result
    assert result.detail == "stopped at its limit of 1 s"
    assert "started" in (tmp_path / "sleeper.log").read_text()


def test_a_step_that_exits_0_without_measuring_does_not_pass(gc, tmp_path):
    (tmp_path / "suite").mkdir()
    (tmp_path / "extract-esm2-3b.json").write_text(json.dumps({"rows": []}))
    report = {"verdict": {"status": "INCOMPLETE", "gates": {"speed": {"state": "not run", "detail": "no CUDA GPU"}}},
              "timings": {}, "settings": {"max_time_ratio": 0.5}}  # fmt: skip
    (tmp_path / "suite" / "acceptance.json").write_text(json.dumps(report))
    results = [
        gc.StepResult("extract-esm2-3b", gc.PASSED, 0, 1.0, 10, "x", "x.log", ["extract-esm2-3b.json"]),
        gc.StepResult("suite", gc.FAILED, 11, 1.0, 10, "x", "suite.log", []),
    ]
    gc.judge(results, tmp_path)
    assert [(r.status, r.detail) for r in results] == [
        (gc.FAILED, "exited 0 but extract-esm2-3b.json holds no rows"),
        (gc.FAILED, "the speed gate did not measure: no CUDA GPU"),
    ]


def test_missing_or_old_packages_name_the_fix(gc, tmp_path, monkeypatch):
    monkeypatch.setattr(gc, "WHEELS", tmp_path / "no-wheels")
    (tmp_path / "dependencies.log").write_text('$ python -c ...\n["pytest-benchmark 5.2.3 (needs >=5.3.1)"]\n')
    result = gc.StepResult("dependencies", gc.PASSED, 0, 0.1, 10, "x", "dependencies.log", [])
    result = gc.install_missing(sys.executable, tmp_path, {}, result)
    assert result.status == gc.FAILED
    assert result.detail == ("missing or too old: pytest-benchmark 5.2.3 (needs >=5.3.1); on a machine with network "
                             "run tools/device_wheels.sh and bring .whl/ along (or `make install`)")


def test_the_dependency_check_reads_versions_from_pyproject(gc, tmp_path):
    """The GPU image's pytest-benchmark 5.2.3 crashed the suite at its end: a version below ours is a problem."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["numpy>=1", "not-a-package-xyz>=1"]\n'
                         '[project.optional-dependencies]\ntest = ["pytest>=999", "fair-esm>=999"]\n')
    done = subprocess.run([sys.executable, "-c", gc.MISSING_SCRIPT, str(pyproject), *gc.SUITE_EXTRAS],
                          capture_output=True, text=True, check=True)  # fmt: skip
    import pytest as installed

    assert json.loads(done.stdout) == [
        "not-a-package-xyz (not installed; needs >=1)",
        f"pytest {installed.__version__} (needs >=999)",
    ], "fair-esm is a unit-test extra, not needed by the GPU run"
    real = subprocess.run([sys.executable, "-c", gc.MISSING_SCRIPT, *gc.DEPENDENCY_ARGS], capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert json.loads(real.stdout) == [], "this environment (make install) satisfies pyproject.toml"


def test_goals_are_judged_on_the_deployed_variant_on_cuda_only(gc):
    def row(variant, kind, default, rate, cosine=0.9999):
        return {"model": "fastesm2_650", "length": "100", "variant": variant, "kind": kind, "default": default,
                "sequences_per_s": rate, "tokens_per_s": rate * 100, "tflops": 1.0, "percent_of_peak": 1.0,
                "peak_memory_bytes": 2**30, "min_cosine": cosine, "nonfinite": 0}  # fmt: skip

    extraction = gc.summarise_extraction({"rows": [
        row("naive fp32 b16", "naive", False, 700.0),
        row("ours fp16 t8192*", "ours", True, 2500.0),
        row("ours fp16 t32768", "ours", False, 3400.0),
        row("ours bf16 t8192", "ours", False, 9000.0, cosine=0.99),  # fast but not exact: never the best
    ]})  # fmt: skip
    entry = extraction["fastesm2_650"]["100"]
    assert (entry["naive"]["sequences_per_s"], entry["deployed"]["sequences_per_s"], entry["best"]["variant"]) == (
        700.0, 2500.0, "ours fp16 t32768")
    cuda = gc.goals(extraction, "cuda")
    assert (cuda[0]["deployed_per_s"], cuda[0]["best_per_s"], cuda[0]["met"]) == (2500.0, 3400.0, False)
    assert cuda[1]["deployed_per_s"] is None and cuda[1]["met"] is None, "a length not measured is not judged"
    assert [g["met"] for g in gc.goals(extraction, "cpu")] == [None, None]
