"""VirNucPro's MLP: architecture, width checks, and checkpoints that refuse the wrong pipeline."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from virnucpro_core.models.classifier import CheckpointMeta, MLPClassifier, describe_features
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.layouts.checkpoints import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint


def _meta(model: MLPClassifier, protein_model: str | None = "fastesm2_650", **extra) -> CheckpointMeta:
    return CheckpointMeta(
        protein_model=protein_model, dna_model="dnabert_s", input_dim=model.input_dim, which="best", epoch=3, seed=42,
        split_manifest_sha256="ab" * 32, hyperparameters={"learning_rate": 2e-4}, **extra,
    )


def test_architecture_is_virnucpros():
    torch.manual_seed(0)
    model = MLPClassifier(24)
    assert isinstance(model.hidden_layer, nn.Linear) and tuple(model.hidden_layer.weight.shape) == (512, 24)
    assert isinstance(model.bn1, nn.BatchNorm1d) and model.bn1.num_features == 512
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.5
    assert tuple(model.output_layer.weight.shape) == (2, 512)
    assert sorted(model.state_dict()) == [
        "bn1.bias", "bn1.num_batches_tracked", "bn1.running_mean", "bn1.running_var", "bn1.weight",
        "hidden_layer.bias", "hidden_layer.weight", "output_layer.bias", "output_layer.weight",
    ]
    for layer in (model.hidden_layer, model.output_layer):
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))  # Xavier-uniform
        largest = float(layer.weight.detach().abs().max())
        assert 0.9 * bound < largest <= bound, (largest, bound)
        assert torch.count_nonzero(layer.bias) == 0
    model.eval()
    assert model(torch.randn(3, 24)).shape == (3, 2)


@pytest.mark.parametrize(
    ("dim", "protein", "expected"),
    [
        (2048, None, "2048 features (DNABERT-S 768 + FastESM2_650 1280)"),
        (3328, None, "3328 features (DNABERT-S 768 + ESM2 3B 2560)"),
        (3328, "esm2_3b", "3328 features (DNABERT-S 768 + ESM2 3B 2560)"),
        (24, "fastesm2_650", "24 features (FastESM2_650)"),
        (24, None, "24 features"),
    ],
    ids=["fastesm", "esm2-3b", "esm2-3b-named", "tiny-named", "unknown"],
)
def test_describe_features(dim, protein, expected):
    assert describe_features(dim, protein) == expected


def test_forward_rejects_wrong_width():
    model = MLPClassifier(2048, protein_model="fastesm2_650", dna_model="dnabert_s")
    with pytest.raises(DimensionError) as info:
        model(torch.zeros(2, 3328))
    assert str(info.value).startswith(
        "MLP expects 2048 features (DNABERT-S 768 + FastESM2_650 1280), got 3328 features (DNABERT-S 768 + ESM2 3B 2560)"
    )
    with pytest.raises(DimensionError, match=r"a \[batch, 2048\] tensor"):
        model(torch.zeros(2048))


def test_checkpoint_loads_with_weights_only(tmp_path):
    torch.manual_seed(1)
    model = MLPClassifier(24, protein_model="fastesm2_650", dna_model="dnabert_s")
    model.train()
    model(torch.randn(8, 24))  # move the BatchNorm running statistics off their defaults
    path = save_checkpoint(model, tmp_path / "m.pt", _meta(model))
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["version"] == 1
    assert set(raw["state_dict"]) == set(model.state_dict())
    assert raw["meta"]["input_dim"] == 24 and raw["meta"]["which"] == "best" and raw["meta"]["epoch"] == 3
    assert set(raw["meta"]["versions"]) >= {"torch", "numpy", "sklearn", "python"}
    assert "T" in raw["meta"]["created"]

    loaded = load_checkpoint(path, expected_input_dim=24, expected_protein_model="fastesm2_650")
    assert not loaded.model.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    model.eval()
    x = torch.randn(5, 24)
    assert torch.equal(loaded.model(x), model(x))
    assert loaded.meta.to_dict() == _meta(model, created=loaded.meta.created, versions=loaded.meta.versions).to_dict()
    assert loaded.meta.split_manifest_sha256 == "ab" * 32


def test_wrong_pipeline_checkpoint_error(tmp_path):
    model = MLPClassifier(3328, protein_model="esm2_3b", dna_model="dnabert_s")
    path = save_checkpoint(model, tmp_path / "esm2_3b.pt", _meta(model, protein_model="esm2_3b"))
    with pytest.raises(DimensionError) as info:
        load_checkpoint(path, expected_input_dim=2048, expected_protein_model="fastesm2_650")
    message = str(info.value)
    assert f"checkpoint {path} was trained on 3328-d ESM2 3B features; this pipeline feeds 2048-d FastESM2_650 " \
        "features — retrain or pick the matching checkpoint" in message
    with pytest.raises(DimensionError, match="this pipeline feeds 2048-d FastESM2_650 features"):
        load_checkpoint(path, expected_input_dim=2048)  # the protein model is inferred from the width


def test_same_width_other_protein_model_is_refused(tmp_path):
    model = MLPClassifier(24)
    path = save_checkpoint(model, tmp_path / "m.pt", _meta(model, protein_model="esm2_3b"))
    with pytest.raises(DimensionError, match="trained on ESM2 3B features; this pipeline feeds FastESM2_650"):
        load_checkpoint(path, expected_input_dim=24, expected_protein_model="fastesm2_650")


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(InputError, match=r"(?s)no checkpoint at .*virnucpro train"):
        load_checkpoint(tmp_path / "none.pt")
    torch.save(MLPClassifier(24), tmp_path / "pickled.pt")  # how the original VirNucPro saved its model
    with pytest.raises(InputError, match="cannot be loaded safely"):
        load_checkpoint(tmp_path / "pickled.pt")
    torch.save({"ids": [], "data": torch.zeros(0, 24)}, tmp_path / "features.pt")
    with pytest.raises(InputError, match="is not a VirNucPro MLP checkpoint"):
        load_checkpoint(tmp_path / "features.pt")


def test_damaged_weights_listed_at_once(tmp_path):
    model = MLPClassifier(24)
    path = save_checkpoint(model, tmp_path / "m.pt", _meta(model))
    raw = torch.load(path, weights_only=True)
    del raw["state_dict"]["bn1.running_var"]
    raw["state_dict"]["extra.weight"] = torch.zeros(1)
    raw["state_dict"]["output_layer.weight"] = torch.zeros(3, 512)
    torch.save(raw, path)
    with pytest.raises(InputError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "missing bn1.running_var" in message and "unexpected extra.weight" in message
    assert "output_layer.weight (3, 512) (expected (2, 512))" in message


def test_meta_must_match_model(tmp_path):
    model = MLPClassifier(24)
    with pytest.raises(DimensionError, match="disagree on the input width"):
        save_checkpoint(model, tmp_path / "m.pt", CheckpointMeta(protein_model=None, dna_model=None, input_dim=48))
    assert not (tmp_path / "m.pt").exists()


def test_bad_sizes_rejected():
    with pytest.raises(DimensionError, match="input_dim must be a positive integer"):
        MLPClassifier(0)


def test_non_finite_weights_are_refused_on_load_and_never_saved(tmp_path):
    model = MLPClassifier(24)
    path = save_checkpoint(model, tmp_path / "m.pt", _meta(model))
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["hidden_layer.weight"][0, :3] = float("nan")
    raw["state_dict"]["bn1.running_var"][:2] = float("inf")
    torch.save(raw, path)
    with pytest.raises(InputError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "5 NaN or infinite weight value(s)" in message and str(path) in message, message
    assert "bn1.running_var: 2" in message and "hidden_layer.weight: 3" in message, message

    with torch.no_grad():
        model.bn1.running_var.fill_(float("inf"))
    with pytest.raises(InputError, match="training produced 512 NaN or infinite"):
        save_checkpoint(model, tmp_path / "diverged.pt", _meta(model))
    assert not (tmp_path / "diverged.pt").exists()


@pytest.mark.parametrize("meta", [None, {}, {"input_dim": 24}], ids=["no-meta", "empty-meta", "partial-meta"])
def test_checkpoint_without_meta_is_an_input_error(tmp_path, meta):
    model = MLPClassifier(24)
    path = save_checkpoint(model, tmp_path / "m.pt", _meta(model))
    raw = torch.load(path, weights_only=True)
    raw["meta"] = meta
    torch.save(raw, path)
    with pytest.raises(InputError, match="has no usable 'meta'") as info:
        load_checkpoint(path)
    assert "protein_model" in str(info.value)
