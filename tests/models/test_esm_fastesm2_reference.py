"""FastESM2 pinned to a FastEsm-style reference in plain torch (CPU, tiny random weights, seconds).

``tests/fastesm_reference.py`` implements the architecture from its public
description — not from our loader, which runs transformers' ``EsmModel``.
Its seeded weights are written in the hub's FastESM2 layout (``esm.``-prefixed
masked-LM keys with per-layer rotary tables, ``lm_head`` and ``contact_head``
beside them, config.json with ``model_type: fast_esm``, vocab.txt), loaded
through :func:`load_model` with a model path and run through
:func:`extract_embeddings`. Pooled vectors (VirNucPro's mean over residues
``1..min(L, 1024)``, computed here on the reference's output) must agree
within 1e-5 for a padded batch and for one protein at a time, with
``token_dropout`` true and false, and with ``token_dropout`` absent from
config.json (FastEsmConfig's default fills it). The last test shows the
comparison fails when that default is wrong.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from virnucpro_core.models import esm_config
from virnucpro_core.extract.embeddings import extract_embeddings, plan_batches
from virnucpro_core.models.esm import ESM2_VOCAB
from virnucpro_core.models.registry import load_model

from tests.fastesm_reference import FastEsmReference

TOLERANCE = 1e-5  # fp32 on the CPU; the bound for pooled vectors
POOL_MAX = 1024  # VirNucPro averaged residues 1..min(L, 1024)
# The tiny FastESM2 stand-in's shape (width 64 is what load_model accepts as "tiny").
ARCHITECTURE = {"vocab_size": 33, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                "intermediate_size": 256, "layer_norm_eps": 1e-05, "mask_token_id": 32}
LETTERS = "LAGVSERTIDPKQNFYMHWCXBUZO"


def proteins(seed: int = 3) -> list[tuple[str, str]]:
    """Mixed lengths so the batch pads, one past the 1,024-residue pooling limit."""
    rng = random.Random(seed)
    records = [("all_letters", LETTERS), ("one", "M")]
    for i, length in enumerate((7, 33, 120, 1030)):
        records.append((f"p{i}", "".join(rng.choice(LETTERS) for _ in range(length))))
    return records


def reference_model(token_dropout: bool, seed: int = 5) -> FastEsmReference:
    """Every parameter drawn from a seeded generator, large enough that small departures show."""
    model = FastEsmReference(**ARCHITECTURE, token_dropout=token_dropout)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            z = torch.randn(parameter.shape, generator=generator)
            if "LayerNorm" in name or "layer_norm" in name:
                parameter.copy_(1 + 0.1 * z if name.endswith("weight") else 0.05 * z)
            elif name.endswith("bias"):
                parameter.copy_(0.05 * z)
            else:
                parameter.copy_(0.1 * z)
    return model.eval()


def hub_config(token_dropout: bool | None, **extra) -> dict:
    """config.json as Synthyra/FastESM2_650 publishes it, at the tiny size (``None``: token_dropout absent)."""
    config = {
        "architectures": ["FastEsmForMaskedLM"],
        "auto_map": {"AutoConfig": "modeling_fastesm.FastEsmConfig", "AutoModel": "modeling_fastesm.FastEsmModel"},
        "model_type": "fast_esm",
        "attention_probs_dropout_prob": 0.0,
        "emb_layer_norm_before": False,
        "hidden_dropout_prob": 0.0,
        "max_position_embeddings": 1026,
        "pad_token_id": 1,
        "position_embedding_type": "rotary",
        "torch_dtype": "float32",
        **ARCHITECTURE,
        **extra,
    }
    if token_dropout is not None:
        config["token_dropout"] = token_dropout
    return config


def write_snapshot(reference: FastEsmReference, directory: Path, config: dict, seed: int = 9) -> Path:
    """The reference's weights, config.json and vocab.txt in the hub's FastESM2 layout."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().clone().contiguous() for key, value in reference.state_dict().items()}
    hidden, vocab = ARCHITECTURE["hidden_size"], ARCHITECTURE["vocab_size"]
    heads = ARCHITECTURE["num_hidden_layers"] * ARCHITECTURE["num_attention_heads"]
    generator = torch.Generator().manual_seed(seed)
    state.update({  # the masked-LM head and contact head the published checkpoint carries beside the encoder
        "lm_head.dense.weight": torch.randn(hidden, hidden, generator=generator),
        "lm_head.dense.bias": torch.zeros(hidden),
        "lm_head.layer_norm.weight": torch.ones(hidden),
        "lm_head.layer_norm.bias": torch.zeros(hidden),
        "lm_head.decoder.weight": torch.randn(vocab, hidden, generator=generator),
        "lm_head.bias": torch.zeros(vocab),
        "esm.contact_head.regression.weight": torch.randn(1, heads, generator=generator),
        "esm.contact_head.regression.bias": torch.zeros(1),
    })
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    (directory / "vocab.txt").write_text("\n".join(ESM2_VOCAB) + "\n")
    return directory


def reference_pooled(reference: FastEsmReference, records: list[tuple[str, str]]) -> torch.Tensor:
    """The reference on one right-padded batch, tokens read from the written vocab.txt, VirNucPro's pooling."""
    vocab = list(ESM2_VOCAB)
    rows = [[vocab.index("<cls>"), *(vocab.index(ch) for ch in seq), vocab.index("<eos>")] for _, seq in records]
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), vocab.index("<pad>"))
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
    with torch.inference_mode():
        hidden = reference(ids, mask)
    return torch.stack([hidden[i, 1 : min(len(seq), POOL_MAX) + 1].mean(0) for i, (_, seq) in enumerate(records)])


def largest_gap(directory: Path, expected: torch.Tensor, records: list[tuple[str, str]]) -> dict[str, float]:
    """Our pooled vectors against ``expected``, as one padded batch and one protein per batch."""
    loaded = load_model("fastesm2_650", model_path=directory, device="cpu")
    gaps = {}
    for budget, batching in ((10**6, "one padded batch"), (1, "one protein per batch")):
        ours = extract_embeddings(loaded, records, toks_per_batch=budget, progress=False)
        gaps[batching] = (ours.data - expected).abs().max().item()
    return gaps


# --------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("token_dropout", [True, False], ids=["token_dropout", "no_token_dropout"])
def test_pooled_vectors_equal_the_reference(tmp_path, token_dropout):
    reference = reference_model(token_dropout)
    directory = write_snapshot(reference, tmp_path, hub_config(token_dropout))
    records = proteins()
    assert len(plan_batches([len(s) + 2 for _, s in records], 10**6)) == 1, "one padded batch of mixed lengths"
    for batching, gap in largest_gap(directory, reference_pooled(reference, records), records).items():
        assert gap < TOLERANCE, f"token_dropout {token_dropout}, {batching}: pooled vectors differ by {gap:.2e}"


def test_residue_states_with_mask_tokens_and_padding_equal_the_reference(tmp_path):
    """Token dropout's observed mask ratio counts real tokens only: <mask> ids in a padded batch."""
    reference = reference_model(True)
    loaded = load_model("fastesm2_650", model_path=write_snapshot(reference, tmp_path, hub_config(True)), device="cpu")
    ids = torch.tensor([[0, 20, 32, 11, 32, 19, 4, 2], [0, 5, 32, 2, 1, 1, 1, 1]])  # <mask> = 32, <pad> = 1
    mask = (ids != 1).long()
    with torch.inference_mode():
        ours = loaded.model(input_ids=ids, attention_mask=mask).last_hidden_state
        theirs = reference(ids, mask)
    gap = (ours - theirs)[mask.bool()].abs().max().item()
    assert gap < TOLERANCE, f"residue states differ by {gap:.2e}"


def test_absent_token_dropout_is_filled_as_fastesmconfig_does(tmp_path):
    reference = reference_model(True)
    directory = write_snapshot(reference, tmp_path, hub_config(None))
    records = proteins()
    for batching, gap in largest_gap(directory, reference_pooled(reference, records), records).items():
        assert gap < TOLERANCE, f"token_dropout absent, {batching}: pooled vectors differ by {gap:.2e}"


def test_the_comparison_sees_a_wrong_token_dropout_default(tmp_path, monkeypatch):
    """The test above can fail: with EsmConfig's default (token_dropout false) the vectors move by far more than 1e-3."""
    reference = reference_model(True)
    directory = write_snapshot(reference, tmp_path, hub_config(None))
    monkeypatch.setitem(esm_config.FASTESM_CONFIG_DEFAULTS, "token_dropout", False)
    records = proteins()
    gaps = largest_gap(directory, reference_pooled(reference, records), records)
    assert min(gaps.values()) > 1e-3, f"a wrong token_dropout default moved the vectors by only {gaps}"
