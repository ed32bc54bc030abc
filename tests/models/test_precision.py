"""The precision policy: one function decides each model's extraction dtype, and every caller asks it."""

from __future__ import annotations

import logging

import pytest
import torch

from virnucpro_core.models import precision
from virnucpro_core.gate.benchmark import deployed_fast_settings, extraction_settings
from virnucpro_core.errors import InputError
from virnucpro_core.extract.features import load_features
from virnucpro_core.models.precision import extraction_dtype
from virnucpro_core.gate.settings import Settings
from virnucpro_core.gate.validation import ValidationRun


@pytest.mark.parametrize(
    ("model", "cuda", "cpu"),
    [("fastesm2_650", "float16", "float32"), ("esm2_3b", "float32", "float32"), ("dnabert_s", "float32", "float32")],
)
def test_the_policy_table(model, cuda, cpu):
    assert (extraction_dtype(model, "cuda"), extraction_dtype(model, "cpu")) == (cuda, cpu)
    assert extraction_dtype(model, "mps") == "float32", "devices without a policy entry run the reference dtype"


def test_unknown_model_lists_the_allowed_names():
    with pytest.raises(InputError, match="fastesm2_650"):
        extraction_dtype("fastesm2", "cuda")


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_timing_settings_and_the_suites_features_ask_the_policy(device, monkeypatch):
    """As-deployed timing, the accuracy features and the baseline follow the policy (changed here to see it)."""
    monkeypatch.setattr(precision, "POLICY", {("fastesm2_650", device): "bfloat16", ("esm2_3b", device): "float16"})
    assert deployed_fast_settings(device)["dtype"] == "bfloat16"
    assert extraction_settings("as-deployed", "fast", device)["dtype"] == "bfloat16"
    assert extraction_settings("like-for-like", "baseline", device)["dtype"] == "bfloat16"
    run = ValidationRun(Settings.resolve(device="cpu"))
    monkeypatch.setattr(ValidationRun, "device", lambda self: torch.device(device))
    assert [run.extraction_dtype(m) for m in ("fastesm2_650", "esm2_3b", "dnabert_s")] == [
        "bfloat16", "float16", "float32"]


def test_the_as_deployed_baseline_is_what_the_policy_says_for_esm2_3b():
    """ESM2 3B's as-deployed timing is VirNucPro's fp32, and its features are extracted in the same dtype."""
    for device in ("cuda", "cpu"):
        assert extraction_settings("as-deployed", "baseline", device)["dtype"] == extraction_dtype("esm2_3b", device)


def _proteins(path):
    path.write_text(">a\nMKTAYIAKQR\n>b\nMDIL\n")
    return path


def test_extract_defaults_to_the_policy_and_records_the_dtype(tmp_path, run_cli, monkeypatch, caplog):
    fasta = _proteins(tmp_path / "p.faa")
    common = ["extract", str(fasta), "--model", "fastesm2_650", "--weights", "random", "--device", "cpu",
              "--no-progress"]
    with caplog.at_level(logging.INFO):
        code, out, _ = run_cli([*common, "--out", str(tmp_path / "default.pt")])
    assert code == 0 and "float32" in out
    assert load_features(tmp_path / "default.pt").meta["dtype"] == "float32"
    assert "the precision policy for fastesm2_650 on cpu" in caplog.text, caplog.text

    monkeypatch.setattr(precision, "POLICY", {("fastesm2_650", "cpu"): "bfloat16"})
    assert run_cli([*common, "--out", str(tmp_path / "policy.pt")])[0] == 0
    assert load_features(tmp_path / "policy.pt").meta["dtype"] == "bfloat16"
    assert run_cli([*common, "--dtype", "float32", "--out", str(tmp_path / "asked.pt")])[0] == 0
    assert load_features(tmp_path / "asked.pt").meta["dtype"] == "float32", "--dtype overrides the policy"


# --------------------------------------------------------------------------- the instrument behind the policy


def test_the_precision_benchmark_orders_the_dtypes_by_their_mantissa(tmp_path):
    """benchmarks/precision.py end to end on the tiny stand-in: fp32 ≈ float64, fp16 closer than bf16."""
    import json

    from tests.scripts import imported_script

    out = tmp_path / "precision.json"
    with imported_script("benchmarks/precision.py") as module:
        assert module.main(["--models", "tiny", "--n", "6", "--runs", "1", "--warmup", "0", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {row["dtype"]: row for row in report["rows"]}
    assert set(rows) == {"float32", "bfloat16", "float16"} and report["proteins"]["n"] == 6
    assert rows["float32"]["relative"] < 1e-5, rows["float32"]
    assert 1e-4 < rows["float16"]["relative"] < rows["bfloat16"]["relative"] < 5e-2, rows
    assert all(row["non_finite"] == 0 and len(row["runs_s"]) == 1 for row in rows.values())
    assert report["machine"]["torch"] and report["cpu_threads"] >= 1
