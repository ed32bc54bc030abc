"""DNABERT-S pinned to golden outputs of the public DNABERT-S code (CPU, tiny random weights, seconds).

``tests/data/reference/dnabert_s`` (see its README.txt and VENDORED.txt) holds,
for two tiny configurations, the outputs of MAGICS-LAB/DNABERT_S's own
``bert_layers.py`` on seeded random weights: last hidden states of each input
alone and of a right-padded batch, and VirNucPro's pooled vectors. The weights
are regenerated here from their published recipe and checked against the
reference's fingerprint; then they go through our loader
(:func:`dnabert.load_dnabert`) and our pooling (:func:`embed_batch`).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file

from virnucpro_core.models import dnabert
from virnucpro_core.extract.embeddings import embed_batch
from virnucpro_core.models.registry import LoadedModel
from virnucpro_core.models.specs import get_spec

from tests.scripts import import_script

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parents[1] / "data" / "reference" / "dnabert_s"
TOLERANCE = 1e-5  # the reference README's suggestion for an fp32 CPU implementation
CONFIGS = ["A", "B"]  # B: 6 heads (non-power-of-two ALiBi slopes) and inputs past its alibi_starting_size

vendor = import_script("tools/vendor_dnabert_reference.py")


def regenerate_weights(recipe: dict) -> dict[str, torch.Tensor]:
    """The reference's weights from its recipe: one generator, keys in sorted order, z = randn(shape)."""
    generator = torch.Generator().manual_seed(recipe["seed"])
    state = {}
    for key, shape in sorted(recipe["tensors"].items()):
        z = torch.randn(shape, generator=generator)
        if "layernorm" in key.lower():
            state[key] = 1 + 0.1 * z if key.endswith("weight") else 0.05 * z
        else:
            state[key] = 0.02 * z  # other biases and other weights alike
    return state


@pytest.fixture(scope="module", params=CONFIGS)
def golden(request, tmp_path_factory):
    """(model loaded by our loader, inputs, expected outputs) of one reference configuration."""
    folder = DATA / request.param
    recipe = json.loads((folder / "weights.json").read_text())
    state = regenerate_weights(recipe)
    assert vendor.tensors_sha256(state) == recipe["tensors_sha256"], "regenerated weights are not the reference's"
    directory = tmp_path_factory.mktemp(f"dnabert_{request.param}")
    (directory / "config.json").write_bytes((folder / "config.json").read_bytes())
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    model = dnabert.load_dnabert(directory)
    inputs = json.loads((folder / "inputs.json").read_text())
    return request.param, model, inputs, load_file(str(folder / "expected.safetensors"))


def as_loaded(model) -> LoadedModel:
    """Our extraction's view of the model; the golden inputs are token ids, so no tokenizer beyond the pad id."""
    tokenizer = SimpleNamespace(pad_token_id=3)  # [PAD] of DNABERT-S, as inputs.json says
    return LoadedModel(get_spec("dnabert_s"), model, tokenizer, torch.device("cpu"), torch.float32, {"size": "tiny"})


def max_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}"
    return (a - b).abs().max().item()


def test_inputs_are_what_the_readme_describes(golden):
    _, _, inputs, expected = golden
    assert inputs["pad_id"] == 3 and inputs["cls_id"] == 1 and inputs["sep_id"] == 2
    assert [len(ids) for ids in inputs["input_ids"]] == inputs["lengths"] == [5, 7, 12, 19, 26, 33, 47, 64, 65, 81, 100, 120]
    assert expected["batched.input_ids"].shape == (12, 120)


def test_one_at_a_time(golden):
    name, model, inputs, expected = golden
    loaded = as_loaded(model)
    for i, ids in enumerate(inputs["input_ids"]):
        with torch.inference_mode():
            hidden = model(torch.tensor([ids]))[0]
        gap = max_gap(hidden, expected[f"single.{i:02d}.last_hidden_state"])
        assert gap < TOLERANCE, f"{name}[{i}] ({len(ids)} tokens): last hidden state off by {gap:.2e}"
        pooled = embed_batch(loaded, [ids], [len(ids)])[0]
        gap = max_gap(pooled, expected[f"single.{i:02d}.mean"])
        assert gap < TOLERANCE, f"{name}[{i}]: pooled vector off by {gap:.2e}"


def test_padded_batch(golden):
    name, model, inputs, expected = golden
    with torch.inference_mode():
        padded = model(expected["batched.input_ids"], attention_mask=expected["batched.attention_mask"])
    gap = max_gap(padded, expected["batched.last_hidden_state_padded"])
    assert gap < TOLERANCE, f"{name}: padded batch off by {gap:.2e} (zeros at pads included)"

    # Our extraction pads the same batch itself and pools with the padding masked out.
    pooled = embed_batch(as_loaded(model), inputs["input_ids"], inputs["lengths"])
    for i in range(len(inputs["input_ids"])):
        gap = max_gap(pooled[i], expected[f"batched.{i:02d}.masked_mean"])
        assert gap < TOLERANCE, f"{name}[{i}]: batched pooled vector off by {gap:.2e}"
        gap = max_gap(pooled[i], expected[f"single.{i:02d}.mean"])
        assert gap < TOLERANCE, f"{name}[{i}]: batched pooling differs from the reference alone by {gap:.2e}"


def test_the_check_sees_a_small_departure(golden):
    """The comparison can fail: a 1 % change of one LayerNorm weight moves the outputs well past the tolerance."""
    name, model, inputs, expected = golden
    weight = model.encoder.layer[0].attention.output.LayerNorm.weight
    original = weight.detach().clone()
    try:
        with torch.no_grad():
            weight.mul_(1.01)
            hidden = model(torch.tensor([inputs["input_ids"][-1]]))[0]
        assert max_gap(hidden, expected[f"single.{len(inputs['lengths']) - 1:02d}.last_hidden_state"]) > 10 * TOLERANCE
    finally:
        with torch.no_grad():
            weight.copy_(original)
