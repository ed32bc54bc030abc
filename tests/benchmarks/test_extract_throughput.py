"""benchmarks/extract_throughput.py end to end on the CPU with tiny stand-ins (no timing assertions)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from virnucpro_core.models import registry as models

from tests.scripts import imported_script


@pytest.fixture(scope="module")
def xt():
    with imported_script("benchmarks/extract_throughput.py") as module:
        yield module


@pytest.fixture(scope="module")
def report(xt, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("xt") / "throughput.json"
    argv = [
        "--size", "tiny", "--device", "cpu", "--models", "fastesm2_650,dnabert_s", "--lengths", "20,33",
        "--n", "6", "--runs", "1", "--warmup", "1", "--naive-batch", "4", "--dtypes", "float32,bfloat16",
        "--toks-per-batch", "64,8192", "--batching", "padded,exact", "--cpu-threads", "1", "--json", str(out),
    ]  # fmt: skip
    assert xt.main(argv) == 0, "the script's main() did not exit 0"
    return json.loads(out.read_text(encoding="utf-8"))


def _rows(report: dict, **match) -> list[dict]:
    return [row for row in report["rows"] if all(row[k] == v for k, v in match.items())]


@pytest.mark.parametrize("model", ["fastesm2_650", "dnabert_s"])
@pytest.mark.parametrize("length", ["20", "33"])
def test_naive_and_ours_rows_are_finite_and_agree_in_fp32(report, model, length):
    rows = _rows(report, model=model, length=length)
    kinds = {row["kind"] for row in rows}
    assert kinds == {"naive", "ours"}, f"{model} len {length}: expected naive and ours rows, found {sorted(kinds)}"
    assert len(_rows(report, model=model, length=length, kind="ours", default=True)) == 1, "one default row"
    for row in rows:
        for key in ("median_s", "mean_s", "sequences_per_s", "tokens_per_s", "tflops", "min_cosine", "max_rel_err"):
            assert row[key] is not None and math.isfinite(row[key]), f"{row['variant']}: {key} = {row[key]}"
        assert row["nonfinite"] == 0, f"{row['variant']}: {row['nonfinite']} vectors hold NaN/Inf"
        assert row["sequences"] == 6 and len(row["runs_s"]) == 1 and row["warmup_runs"] == 1
        limit = 0.999 if row["dtype"] == "float32" else 0.99
        assert row["min_cosine"] >= limit, (
            f"{model} {row['variant']} len {length}: min cosine vs fp32 naive {row['min_cosine']:.6f} < {limit}"
        )


def test_variants_cover_dtypes_budgets_and_batching(report):
    rows = _rows(report, model="fastesm2_650", length="20", kind="ours")
    ours = [(r["dtype"], r["batch"], r["batching"]) for r in rows]
    expected = {(d, b, layout) for d in ("float32", "bfloat16") for b in (64, 8192) for layout in ("padded", "exact")}
    assert sorted(ours) == sorted(expected), "each combination once, the default not repeated"
    assert all(r["compile"] == "none" for r in rows)


def test_axes_grid_varies_one_setting_at_a_time(xt):
    args = xt.create_parser().parse_args([
        "--grid", "axes", "--dtypes", "float16,bfloat16,float32", "--toks-per-batch", "4096,8192,32768",
    ])  # fmt: skip
    variants = xt.variants_for(args, "fastesm2_650", torch.device("cuda"))
    assert [(v.kind, v.dtype, v.batch, v.default) for v in variants] == [
        ("naive", "float32", 16, False),
        ("ours", "float16", 8192, True),  # FastESM2 as deployed on CUDA: the precision policy's fp16
        ("ours", "bfloat16", 8192, False),
        ("ours", "float32", 8192, False),
        ("ours", "float16", 4096, False),
        ("ours", "float16", 32768, False),
    ], "each dtype at the deployed budget, each budget in the deployed dtype, the default once"
    product = xt.variants_for(xt.create_parser().parse_args([
        "--dtypes", "float16,bfloat16,float32", "--toks-per-batch", "4096,8192,32768",
    ]), "fastesm2_650", torch.device("cuda"))  # fmt: skip
    assert len(product) == 1 + 9, "product: the naive loop and all 9 combinations (the default among them)"


def test_each_model_is_timed_as_deployed_by_default(xt):
    args = xt.create_parser().parse_args(["--no-naive"])
    (baseline,) = xt.variants_for(args, "esm2_3b", torch.device("cuda"))
    assert (baseline.dtype, baseline.batch, baseline.default) == ("float32", 2048, True), (
        "ESM2 3B's default variant is what the speed gate times: fp32 with 2,048-token batches, as VirNucPro ran it"
    )
    (dna,) = xt.variants_for(args, "dnabert_s", torch.device("cuda"))
    assert (dna.dtype, dna.batch) == ("float32", 16384)


def test_json_is_rewritten_after_every_row(xt, tmp_path, monkeypatch):
    """A run stopped at a time limit keeps every finished row: the file holds all rows written so far."""
    out = tmp_path / "rows.json"
    seen: list[int] = []
    real = xt.atomic_write_text

    def spy(path, text):
        seen.append(len(json.loads(text)["rows"]))
        return real(path, text)

    monkeypatch.setattr(xt, "atomic_write_text", spy)
    argv = ["--size", "tiny", "--device", "cpu", "--models", "fastesm2_650", "--lengths", "20,33", "--n", "4",
            "--runs", "1", "--warmup", "0", "--cpu-threads", "1", "--json", str(out)]  # fmt: skip
    assert xt.main(argv) == 0
    assert seen == [1, 2, 3, 4], f"one write per row (naive and ours, two lengths), found row counts {seen}"


@pytest.mark.slow
def test_compiled_variant_matches_fp32(xt, tmp_path):
    """torch.compile (inductor, CPU) through the same path a GPU run takes; ~1 min of compilation."""
    out = tmp_path / "compiled.json"
    argv = [
        "--size", "tiny", "--device", "cpu", "--models", "fastesm2_650", "--lengths", "20", "--n", "6",
        "--runs", "1", "--warmup", "1", "--no-naive", "--compile", "default", "--cpu-threads", "1",
        "--json", str(out),
    ]  # fmt: skip
    assert xt.main(argv) == 0
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"]
    compiled = [r for r in rows if r["compile"] == "default"]
    assert len(compiled) == 1 and compiled[0]["variant"] == "ours fp32 t8192 compile:default"
    assert compiled[0]["min_cosine"] >= 0.999, f"compiled vs fp32 naive: min cosine {compiled[0]['min_cosine']}"
    assert compiled[0]["notes"] == []


def test_report_records_machine_settings_and_cpu_peak(report):
    assert report["machine"]["torch"] and report["machine"]["device"] == "cpu"
    assert report["settings"]["n"] == 6
    assert all(row["percent_of_peak"] is None and row["peak_memory_bytes"] is None for row in report["rows"])


@pytest.mark.parametrize("model", ["fastesm2_650", "esm2_3b"])
def test_esm_flops_match_models_matmul_count(xt, model):
    loaded = models.load_model(model, weights="random", size="tiny", device="cpu")
    assert xt.dense_flops_per_token(loaded) == models.matmul_flops_per_token(model, "tiny")


def test_synthetic_sequences_are_seeded_and_jittered(xt):
    proteins = xt.synthetic_proteins(100, 200, seed=3)
    assert proteins == xt.synthetic_proteins(100, 200, seed=3), "same seed, same sequences"
    assert all(90 <= len(seq) <= 110 for _, seq in proteins)
    assert set("".join(seq for _, seq in proteins)) == set(xt.AMINO_ACID_PERCENT)
    dna = xt.synthetic_dna(100, 200, seed=3)
    assert [len(s) for _, s in dna] == [3 * len(p) + 1 for _, p in proteins]
