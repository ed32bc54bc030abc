"""Acceptance settings: the documented defaults and one clear error per bad option."""

from __future__ import annotations

import pytest
import torch

from virnucpro_core.errors import InputError
from virnucpro_core.models.specs import get_spec
from virnucpro_core.gate.options import SUITE_OPTIONS
from virnucpro_core.gate.settings import SMOKE_DATA, Settings
from virnucpro_core.gate.validation import ValidationRun


def test_no_data_means_smoke_profile_with_tiny_random_stand_ins():
    settings = Settings.resolve()
    assert (settings.profile, settings.weights, settings.size, settings.bench_sample) == ("smoke", "random", "tiny", 150)
    assert settings.viral == (SMOKE_DATA["viral"],) and settings.host == (SMOKE_DATA["host"],)


def test_data_means_full_profile_with_pretrained_weights(tmp_path):
    viral, host = tmp_path / "viral.fa", tmp_path / "host.fa"
    viral.write_text(">v\nACGT\n")
    host.write_text(">h\nACGT\n")
    settings = Settings.resolve(viral=[viral], host=[host])
    assert (settings.profile, settings.weights, settings.size, settings.bench_sample) == ("full", "pretrained", "full", 1000)
    assert ValidationRun(settings).random_weights_reason() is None


def test_data_dir_picks_viral_and_host_files(tmp_path):
    for name in ("viral_a.fasta", "viral_b.fna.gz", "notes.txt"):
        (tmp_path / name).write_text("")
    # .pt inputs are opened before anything runs (to see whether VirNucPro-layout files need a declaration).
    torch.save({"ids": [], "data": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
                "lengths": torch.zeros(0, dtype=torch.long), "meta": {}}, tmp_path / "host.pt")
    settings = Settings.resolve(data_dir=tmp_path)
    assert [p.name for p in settings.viral] == ["viral_a.fasta", "viral_b.fna.gz"]
    assert [p.name for p in settings.host] == ["host.pt"]


def test_one_class_only_is_refused(tmp_path):
    (tmp_path / "viral.fa").write_text(">v\nACGT\n")
    with pytest.raises(InputError, match="both classes are needed"):
        Settings.resolve(viral=[tmp_path / "viral.fa"])


def test_bad_limits_are_reported_together():
    bad = {"max_accuracy_drop": 1.5, "max_time_ratio": 0, "bench_runs": 0, "seed": -3}
    with pytest.raises(InputError) as error:
        Settings.resolve(**bad, name=SUITE_OPTIONS.flag)  # as the suite resolves its options
    message = str(error.value)
    assert "--max-accuracy-drop 1.5" in message and "--max-time-ratio 0" in message and "--bench-runs 0" in message
    assert "--seed -3" in message
    with pytest.raises(InputError) as error:
        Settings.resolve(**bad)  # the library names the settings' fields
    message = str(error.value)
    assert "max_accuracy_drop 1.5" in message and "max_time_ratio 0" in message and "bench_runs 0" in message
    assert "seed -3" in message and "--" not in message.splitlines()[0], message


def test_data_dir_without_both_classes_is_refused(tmp_path):
    (tmp_path / "virus.fa").write_text(">v\nACGT\n")
    (tmp_path / "host.fa").write_text(">h\nACGT\n")
    with pytest.raises(InputError, match="0 viral and 1 host") as error:
        Settings.resolve(data_dir=tmp_path)
    assert "virus.fa" in str(error.value), "the message lists what the directory holds"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="an empty directory"):
        Settings.resolve(profile="full", data_dir=empty)


def test_full_profile_never_validates_pretrained_weights_on_the_bundled_data():
    with pytest.raises(InputError, match="validates your data, and none was given"):
        Settings.resolve(profile="full")
    speed_only = Settings.resolve(profile="full", weights="random")
    assert speed_only.viral == (SMOKE_DATA["viral"],) and speed_only.size == "full"


def _merged_file(path, protein_model: str, weights: str, size: str = "tiny") -> None:
    dims = {name: get_spec(name).dim_for(size) for name in ("dnabert_s", "fastesm2_650", "esm2_3b")}
    provenance = lambda model: {"model": model, "weights": weights, "size": size, "dim": dims[model]}  # noqa: E731
    torch.save(
        {
            "ids": ["a_chunk_1F1", "a_chunk_2F1"],
            "data": torch.zeros(2, dims["dnabert_s"] + dims[protein_model]),
            "labels": torch.ones(2, dtype=torch.long),
            "lengths": torch.tensor([100, 100]),
            "meta": {"dna": provenance("dnabert_s"), "protein": provenance(protein_model), "label": "viral",
                     "protein_model": protein_model, "dna_model": "dnabert_s"},
        },
        path,
    )


@pytest.mark.parametrize("weights", ["random", "pretrained"])
def test_merged_inputs_made_by_stand_ins_cannot_validate_accuracy(tmp_path, weights):
    for label in ("viral", "host"):
        for model in ("fastesm2_650", "esm2_3b"):
            _merged_file(tmp_path / f"{label}_{model}.pt", model, weights)
    run = ValidationRun(Settings.resolve(data_dir=tmp_path, artifacts=tmp_path / "artifacts"))
    assert run.has_merged_inputs() and run.settings.weights == "pretrained"
    reason = run.random_weights_reason()
    if weights == "random":
        assert reason and "merged features made with random-weight stand-ins" in reason and "viral_esm2_3b.pt" in reason
    else:
        assert reason is None
    tiny = {name: get_spec(name).dim_for("tiny") for name in ("dnabert_s", "fastesm2_650", "esm2_3b")}
    assert run.pipeline_dim("fast") == tiny["dnabert_s"] + tiny["fastesm2_650"]
    assert run.pipeline_dim("baseline") == tiny["dnabert_s"] + tiny["esm2_3b"]


def test_random_weights_setting_is_the_reason_for_fasta_inputs():
    assert ValidationRun(Settings.resolve()).random_weights_reason() == "--weights random"


def test_fast_features_are_extracted_as_deployed():
    run = ValidationRun(Settings.resolve(device="cpu"))
    assert [run.extraction_dtype(m) for m in ("fastesm2_650", "esm2_3b", "dnabert_s")] == ["float32"] * 3


def test_a_missing_model_directory_names_the_suite_option(tmp_path, monkeypatch):
    from virnucpro_core.errors import WeightsNotFoundError

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("viral.fa", "host.fa"):
        (tmp_path / name).write_text(">a\nACGT\n")
    missing = tmp_path / "models" / "FastESM2_650"
    run = ValidationRun(Settings.resolve(data_dir=tmp_path, fast_model=str(missing), device="cpu"))
    with pytest.raises(WeightsNotFoundError, match="does not exist") as error:
        run.model("fastesm2_650")
    assert "--fast-model" in str(error.value) and str(missing) in str(error.value)


def test_features_are_extracted_in_this_process_on_a_cpu_machine():
    assert ValidationRun(Settings.resolve(device="cpu")).extraction_processes() == 1
    if torch.cuda.device_count() <= 1:
        assert ValidationRun(Settings.resolve()).extraction_processes() == 1, "no torchrun without several GPUs"
    assert ValidationRun(Settings.resolve(device="cpu", extract_processes=3)).extraction_processes() == 3
    with pytest.raises(InputError, match="--extract-processes 0 is not a positive integer"):
        Settings.resolve(extract_processes=0, name=SUITE_OPTIONS.flag)


def _genomes(path, n: int, seed: int):
    """Genomes of 300 codons without a stop in the first frame, so every chunk gives at least one protein."""
    import itertools
    import random

    rng = random.Random(seed)
    codons = ["".join(c) for c in itertools.product("ACGT", repeat=3) if "".join(c) not in ("TAA", "TAG", "TGA")]
    path.write_text("".join(f">g{i}\n{''.join(rng.choice(codons) for _ in range(300))}\n" for i in range(n)))
    return path


@pytest.mark.slow
def test_torchrun_extraction_makes_the_in_process_file_and_is_reused(tmp_path, monkeypatch):
    """--extract-processes 2 on the CPU stands in for two GPUs: `virnucpro extract` under torchrun."""
    from virnucpro_core import threads
    from virnucpro_core.layouts.virnucpro import load_features
    from virnucpro_core.gate.validation import ExtractedModel

    viral, host = _genomes(tmp_path / "viral.fa", 4, 1), _genomes(tmp_path / "host.fa", 4, 2)
    options = dict(viral=[viral], host=[host], weights="random", size="tiny", device="cpu")
    one = ValidationRun(Settings.resolve(artifacts=tmp_path / "one", **options)).features("fastesm2_650", "viral")
    monkeypatch.setattr(threads, "CHOICES", {})  # what the torchrun ranks ran with, not this process's extraction
    monkeypatch.setattr(threads, "PARALLEL", {})
    run = ValidationRun(Settings.resolve(artifacts=tmp_path / "two", extract_processes=2, **options))
    two = run.features("fastesm2_650", "viral")
    x, y = load_features(one), load_features(two)
    assert x.ids == y.ids and torch.equal(x.data, y.data) and x.meta == y.meta and one.read_bytes() == two.read_bytes()
    (record,) = run.loaded_models()
    assert record.spec.name == "fastesm2_650" and record.provenance["seed"] == 42 and record.dim == x.dim, record
    assert not run.stages[-1].reused and isinstance(record, ExtractedModel), "no model loaded in-process"
    assert threads.CHOICES == {"tiny stand-in extract": threads.torchrun_choice("tiny stand-in extract")}
    assert threads.PARALLEL == {"tiny stand-in extract": 2}, "the report says the ranks' threads and how many ran"

    again = ValidationRun(Settings.resolve(artifacts=tmp_path / "two", extract_processes=2, **options))
    assert again.features("fastesm2_650", "viral") == two and again.stages[-1].reused, again.stages


def test_another_model_allowed_is_named_in_the_verdict_banner_and_environment(tmp_path):
    """--allow-other-model: the run loads it, and every reader of the report learns what stood in for what."""
    import json
    from bs4 import BeautifulSoup

    from virnucpro_core.gate import acceptance_report
    from virnucpro_core.gate.html_report import render_sections
    from virnucpro_core.models.registry import write_standin
    from virnucpro_core.gate.gates import ACCURACY, SPEED
    from virnucpro_core.gate.session import AcceptanceSession, Outcome
    from virnucpro_core.gate.verdict import decide_verdict

    directory = write_standin("fastesm2_650", "tiny", tmp_path / "esm", seed=42)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "model_type": "esm"}))
    options = dict(weights="pretrained", fast_model=str(directory), device="cpu", artifacts=tmp_path / "a")
    with pytest.raises(InputError, match="add --allow-other-model"):
        ValidationRun(Settings.resolve(**options)).model("fastesm2_650")

    settings = Settings.resolve(**options, allow_other_model=True)
    assert settings.allow_other_model is True and Settings.resolve().allow_other_model is False
    run = ValidationRun(settings)
    assert run.other_model_reason() is None, "nothing loaded yet"
    run.model("fastesm2_650")
    run.model("fastesm2_650", dtype="bfloat16")  # the same model twice is named once
    reason = ('another model than FastESM2_650 was validated (--allow-other-model): model_type esm, 2 layers × 64, '
              '4 heads, vocabulary 33; differs in model_type "esm" (expected "fast_esm")')
    assert run.other_model_reason() == reason

    outcomes = [Outcome.deciding(ACCURACY, "skipped", "no GPU"), Outcome.deciding(SPEED, "skipped", "no GPU")]
    ctx = AcceptanceSession(settings=settings, run=run, timings={}, outcomes=outcomes, run_id="r", started="s")
    assert ctx.other_model == reason
    assert acceptance_report.notice(ctx).endswith(
        "Another model was validated (--allow-other-model): the figures below describe it, not the model it stood in "
        f"for; the verdict cannot be PASS. A{reason[1:]}.")
    rows = dict(acceptance_report.environment_rows(ctx))
    assert rows["OTHER MODEL"] == reason
    assert rows["model FastESM2_650 (float32)"].endswith(
        '; OTHER MODEL (--allow-other-model): model_type esm, 2 layers × 64, 4 heads, vocabulary 33; differs in '
        'model_type "esm" (expected "fast_esm")')
    verdict = decide_verdict(ctx)
    assert verdict.status == "INCOMPLETE" and reason in verdict.reasons
    page = BeautifulSoup(render_sections(ctx, verdict, exit_code=11), "html.parser")
    assert reason in page.find(id="vnp-verdict").get_text()
    assert "Another model was validated" in page.find(class_="vnp-notice").get_text()


def test_torchrun_extraction_passes_allow_other_model_on_and_the_report_reads_it_back(tmp_path, monkeypatch):
    """Under torchrun the model loads in `virnucpro extract` processes: the flag goes with them, the record comes
    back in the feature file's meta."""
    from virnucpro_core.extract import features
    from virnucpro_core.extract.features import extract_with_torchrun
    from virnucpro_core.gate.validation import ExtractedModel

    seen = []
    monkeypatch.setattr(features, "run_torchrun", lambda argv, processes, on_line=None: seen.append(argv))
    common = dict(weights="pretrained", size="tiny", dtype="float32", seed=1, model_path="m")
    extract_with_torchrun(2, "fastesm2_650", tmp_path / "p.faa", tmp_path / "f.pt", allow_other_model=True, **common)
    extract_with_torchrun(2, "fastesm2_650", tmp_path / "p.faa", tmp_path / "f.pt", **common)
    assert "--allow-other-model" in seen[0] and "--allow-other-model" not in seen[1]
    record = {"expected": {"display_name": "FastESM2_650"}, "found": {}, "differences": []}
    meta = {"model": "fastesm2_650", "weights": "pretrained", "size": "tiny", "identity": record}
    assert ExtractedModel.from_meta(meta).provenance["identity"] == record
    assert "identity" not in ExtractedModel.from_meta({**meta, "identity": None}).provenance
