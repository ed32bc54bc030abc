"""The reports' speed section: peak GPU memory (measured without a GPU through a stand-in ``torch.cuda``) and what the
switch saves at the measured rates, checked against hand-computed values and the JSON schema."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from bs4 import BeautifulSoup

from tests.html_checks import SCHEMA, minus_sign_problems, visible_text
from virnucpro_core.gate.benchmark import PeakMemory, TimingResult, weight_bytes
from virnucpro_core.gate.html_report import render_sections
from virnucpro_core.gate.session import AcceptanceSession
from virnucpro_core.gate.speed_report import (
    VIRNUCPRO_TRAINING_SAMPLES,
    peak_memory_dict,
    peak_memory_text,
    savings_table,
    savings_text,
    switch_savings,
)
from virnucpro_core.gate.validation import RunResults
from virnucpro_core.gate.verdict import decide_verdict


class FakeCuda:
    """``torch.cuda``'s memory counters, driven by the test: each run allocates ``extra`` bytes at its peak."""

    def __init__(self, resident: int) -> None:
        self.allocated = resident
        self.peak = resident
        self.resets = 0

    def reset_peak_memory_stats(self, device) -> None:
        self.resets += 1
        self.peak = self.allocated

    def memory_allocated(self, device) -> int:
        return self.allocated

    def max_memory_allocated(self, device) -> int:
        return self.peak

    def run(self, extra: int) -> None:
        self.peak = max(self.peak, self.allocated + extra)


def test_peak_memory_is_the_models_weights_plus_the_most_one_of_its_runs_added():
    """Both models resident (1,000 bytes): each model's figure is its own weights plus its worst run's extra."""
    cuda = FakeCuda(resident=1_000)
    model = torch.nn.Linear(4, 2)  # 10 float32 values: 40 bytes
    peaks = PeakMemory("cuda:0", cuda=cuda)
    for extra in (300, 700, 500):
        with peaks.around("fast", model):
            cuda.run(extra)
    with peaks.around("baseline", model):
        cuda.run(100)
    assert weight_bytes(model) == 40 and cuda.resets == 4, "reset before every run"
    assert (peaks.peak_bytes("fast"), peaks.peak_bytes("baseline")) == (40 + 700, 40 + 100)


def test_peak_memory_off_cuda_touches_nothing_and_is_none():
    cuda = FakeCuda(resident=0)
    peaks = PeakMemory("cpu", cuda=cuda)
    with peaks.around("fast", torch.nn.Linear(4, 2)):
        cuda.run(500)
    assert peaks.peak_bytes("fast") is None and cuda.resets == 0 and not peaks.measured


def timing(embedder: str, mean_s: float, device: str, peak: int | None = None, pairing: str = "as-deployed",
           sequences: int = 300) -> TimingResult:
    model = {"fast": "fastesm2_650", "baseline": "esm2_3b"}[embedder]
    return TimingResult(f"{pairing}/{embedder}", model, {"dtype": "float32", "toks_per_batch": 2048}, sequences,
                        30_000, [mean_s] * 3, 1, device, peak_memory_bytes=peak)


def session(device: str = "cpu", fast_s: float = 0.3, baseline_s: float = 1.5, proteins: int = 3_600,
            peaks: tuple[int | None, int | None] = (None, None)) -> AcceptanceSession:
    settings = SimpleNamespace(profile="full", weights="pretrained", size="full", seed=42, viral=(), host=(),
                               max_accuracy_drop=0.05, max_time_ratio=0.5)
    results = RunResults()
    results.proteins = {f"p{i}": "MK" for i in range(proteins)} if proteins else None
    run = SimpleNamespace(results=results, random_weights_reason=lambda: None, other_model_reason=lambda: None,
                          device=lambda: device, loaded_models=lambda: [], stages=[], has_merged_inputs=lambda: False)
    ctx = AcceptanceSession(settings=settings, run=run, run_id="20261205T000000Z-abc123",
                            started="2026-12-05T00:00:00+00:00")
    ctx.timings = {("as-deployed", "fast"): timing("fast", fast_s, device, peaks[0]),
                   ("as-deployed", "baseline"): timing("baseline", baseline_s, device, peaks[1])}
    return ctx


def subschema(name: str):
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8"))["properties"][name])


def test_a_cpu_run_says_peak_gpu_memory_was_not_measured_and_the_json_holds_null():
    ctx = session("cpu")
    assert peak_memory_text(ctx) == "Peak GPU memory per model: not measured (CPU run)."
    data = peak_memory_dict(ctx)
    assert (data["measured"], data["note"]) == (False, "not measured (CPU run)")
    assert [(m["model"], m["bytes"], m["gib"]) for m in data["models"]] == [("esm2_3b", None, None),
                                                                             ("fastesm2_650", None, None)]
    assert list(subschema("peak_gpu_memory").iter_errors(data)) == []


def test_a_cuda_run_gives_each_models_peak_in_bytes_and_gib():
    ctx = session("cuda:0", peaks=(3 * 2**30, 12 * 2**30))
    data = peak_memory_dict(ctx)
    assert data["measured"] and [(m["model"], m["bytes"], m["gib"]) for m in data["models"]] == [
        ("esm2_3b", 12 * 2**30, 12.0), ("fastesm2_650", 3 * 2**30, 3.0)]
    assert list(subschema("peak_gpu_memory").iter_errors(data)) == []
    assert "max_memory_allocated" in peak_memory_text(ctx)


def test_what_the_switch_saves_at_the_measured_rates_on_this_runs_input_and_the_reference():
    """1.5 s and 0.3 s per 300 proteins: 5 ms and 1 ms each; 3,600 proteins take 0.005 h and 0.001 h."""
    savings = switch_savings(session("cpu"))
    assert savings.unit == "CPU-hours" and savings.seconds_per_sequence == pytest.approx(
        {"ESM2 3B": 0.005, "FastESM2_650": 0.001})
    data = savings.to_dict()
    this_run, reference = data["inputs"]
    assert (this_run["sequences"], reference["sequences"]) == (3_600, VIRNUCPRO_TRAINING_SAMPLES)
    assert (this_run["baseline_hours"], this_run["fast_hours"], this_run["saved_hours"]) == pytest.approx(
        (0.005, 0.001, 0.004))
    assert reference["saved_hours"] == pytest.approx(2_100_000 * 0.004 / 3600)
    assert "reference" in reference["label"] and "not this run's input" in reference["source"]
    assert list(subschema("switch_savings").iter_errors(data)) == []
    text = savings_text(savings)
    assert ("embedding 3,600 proteins (this run's input) takes 0.005 CPU-hours with ESM2 3B and 0.001 with "
            "FastESM2_650 (saves 0.004 CPU-hours). An estimate: rates measured on cpu (ESM2 3B 5.00 ms, FastESM2_650 "
            "1.00 ms per protein; as-deployed pair, mean of 3 timed runs of 300 test proteins") in text, text
    assert "CPU-hours, not an estimate of GPU time" in text
    assert savings_table(savings)[1] == [
        ["this run's input", "3,600", "0.005", "0.001", "0.004"],
        [reference["label"], "2,100,000", "2.92", "0.583", "2.33"]]


def test_on_a_gpu_the_savings_are_gpu_hours_and_a_slower_fastesm2_costs_time():
    savings = switch_savings(session("cuda:0", fast_s=3.0, baseline_s=1.5))
    text = savings_text(savings)
    assert savings.unit == "GPU-hours" and "costs 0.005 GPU-hours more" in text and "CPU" not in text, text
    assert savings_table(savings)[1][0][-1] == "−0.005" and minus_sign_problems(text, "savings") == []


def test_without_both_timings_nothing_is_estimated_and_without_an_input_only_the_reference():
    ctx = session("cpu")
    del ctx.timings[("as-deployed", "baseline")]
    assert switch_savings(ctx) is None
    alone = switch_savings(session("cpu", proteins=0))
    assert [size.sequences for size in alone.inputs] == [VIRNUCPRO_TRAINING_SAMPLES]


def test_the_html_speed_section_shows_the_savings_and_the_memory_line():
    ctx = session("cpu")
    soup = BeautifulSoup(render_sections(ctx, decide_verdict(ctx), exit_code=11), "html.parser")
    speed = soup.find(id="vnp-speed")
    text = visible_text(speed)
    assert "Peak GPU memory per model: not measured (CPU run)." in text
    savings = soup.find(id="vnp-savings")
    assert savings is not None and savings.get_text() == "What the switch saves"
    heads = [th.get_text() for th in savings.find_next_sibling("table").find_all("th")]
    assert heads == ["input", "proteins", "ESM2 3B (CPU-hours)", "FastESM2_650 (CPU-hours)", "saved (CPU-hours)"]
    assert "saves 0.004 CPU-hours" in text and minus_sign_problems(text, "speed") == []


# ---------------------------------------------------------------------------- a whole run, projected


def measured_run(device: str = "cpu", **settings) -> AcceptanceSession:
    """A session whose run timed DNABERT-S (2 ms per sample), trained both MLPs (10 epochs of 1,000 samples in 0.2 s
    each: 0.2 ms per sample and epoch) and predicted 500 test samples in 0.5 s (1 ms each)."""
    from virnucpro_core.train.results import EpochRecord, TrainingHistory

    ctx = session(device)
    ctx.settings.__dict__.update(settings)
    ctx.timings[("projection", "dna")] = TimingResult("projection/dna", "dnabert_s", {"dtype": "float32"}, 300,
                                                      30_000, [0.6] * 3, 1, device)
    history = TrainingHistory(epochs=[EpochRecord(e, 0.1, 0.1, 0.9, 1e-4, 0.2, False) for e in range(1, 11)],
                              stop_reason="early_stopping", train_samples=1_000)
    ctx.run.results.trained = {e: SimpleNamespace(history=history) for e in ("fast", "baseline")}
    ctx.run.results.seconds = {"predictions[fast]": (0.5, 500), "predictions[baseline]": (0.5, 500)}
    return ctx


def test_a_whole_run_is_projected_from_every_rate_this_run_measured():
    """3,600 samples: extraction 3.6 + 18 + 7.2 s, training 2 x 3,600 x 0.81 x 10 x 0.2 ms, evaluation
    2 x 360 x 1 ms: 41.184 s."""
    from virnucpro_core.gate.speed_report import TRAIN_SHARE, projection_table, projection_text

    savings = switch_savings(measured_run())
    stages = {(s.stage, s.model): s for s in savings.stages}
    assert stages[("extraction", "DNABERT-S")].seconds == pytest.approx(0.002)
    assert stages[("training", "MLP on FastESM2_650 features")].seconds == pytest.approx(0.0002)
    assert stages[("training", "MLP on FastESM2_650 features")].epochs == 10 and TRAIN_SHARE == pytest.approx(0.81)
    this_run = savings.inputs[0]
    assert savings.projected(this_run, 1) * 3600 == pytest.approx(41.184)
    assert savings.unmeasured() == [] and savings.gpus == (1,)
    data = savings.to_dict()
    assert list(subschema("switch_savings").iter_errors(data)) == []
    assert data["inputs"][0]["projection"]["total_hours"] == {"1": pytest.approx(41.184 / 3600)}
    header, rows = projection_table(savings)
    assert header == ["input", "stage", "model", "rate", "this CPU (h)"]
    assert rows[0] == ["this run's input (3,600)", "extraction", "FastESM2_650", "1.00 ms per protein", "0.001"]
    assert rows[7][:4] == ["this run's input (3,600)", "total", "", ""]
    assert "CPU rates, not a GPU estimate" in projection_text(savings) and "10 epochs" in projection_text(savings)


def test_on_gpus_extraction_is_shared_out_and_training_is_not():
    savings = switch_savings(measured_run("cuda:0"))
    assert savings.gpus == (1, 4, 8)
    size = savings.inputs[0]
    # extraction (3.6 + 18 + 7.2 s) / 8; training 11.664 s and evaluation 0.72 s in one process
    assert savings.projected(size, 8) * 3600 == pytest.approx(28.8 / 8 + 11.664 + 0.72)
    from virnucpro_core.gate.speed_report import projection_table

    assert projection_table(savings)[0][-3:] == ["1 GPU (h)", "4 GPUs (h)", "8 GPUs (h)"]


def test_the_users_run_size_is_projected_and_features_given_are_not_extracted():
    ctx = measured_run(project_samples=2_000_000)
    ctx.run.not_extracted = lambda: {"esm2_3b": "not needed: ESM2 3B's merged features were given",
                                     "dnabert_s": "not needed: the DNABERT-S columns of --baseline-features"}
    savings = switch_savings(ctx)
    assert [s.label for s in savings.inputs][1] == "your full run (--project-samples)"
    assert savings.inputs[1].sequences == 2_000_000
    # extraction: FastESM2 alone (3.6 s per 3,600), then training and evaluation as before
    assert savings.projected(savings.inputs[0], 1) * 3600 == pytest.approx(3.6 + 11.664 + 0.72)
    from virnucpro_core.gate.speed_report import projection_table

    rows = [r for r in projection_table(savings)[1] if r[0].startswith("this run") and r[2] == "ESM2 3B"]
    assert rows == [["this run's input (3,600)", "extraction", "ESM2 3B",
                     "not needed: ESM2 3B's merged features were given", "not needed"]]


def test_a_stage_not_measured_is_left_out_of_the_total_and_named():
    ctx = session("cpu")  # no training, no DNABERT-S timing: a speed-only run
    savings = switch_savings(ctx)
    assert savings.unmeasured() == ["extraction (DNABERT-S)", "training (MLP on FastESM2_650 features)",
                                    "training (MLP on ESM2 3B features)", "evaluation (MLP on FastESM2_650 features)",
                                    "evaluation (MLP on ESM2 3B features)"]
    assert savings.projected(savings.inputs[0], 1) * 3600 == pytest.approx(3.6 + 18)
    data = savings.to_dict()
    assert data["inputs"][0]["projection"]["unmeasured"] == savings.unmeasured()
    assert list(subschema("switch_savings").iter_errors(data)) == []
    soup = BeautifulSoup(render_sections(ctx, decide_verdict(ctx), exit_code=11), "html.parser")
    heading = soup.find(id="vnp-projection")
    assert heading is not None and "without extraction (DNABERT-S)" in visible_text(
        heading.find_next_sibling("table"))
