"""ESM-2 pinned to fair-esm, a reference we did not write (CPU, tiny random weights, seconds).

fair-esm's ``ESM2`` is built with a tiny config and seeded random weights; its
state dict is renamed to the Hugging Face layout the hub checkpoints use and
written as a model directory with fair-esm's own alphabet as ``vocab.txt``.
That directory goes through our real loader (:func:`load_model` with a model
path) and our real extractor (:func:`extract_embeddings`, one padded batch of
mixed lengths); the pooled vectors must equal fair-esm's
``representations[last][i, 1:L+1].mean(0)``.

Only the key renaming below is ours, and a mistake in it can only make the
outputs differ: the loader reads the Hugging Face names as they are.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from virnucpro_core.models import registry as models
from virnucpro_core.extract.embeddings import extract_embeddings, plan_batches, tokenize
from virnucpro_core.models.esm import ESM2_VOCAB, esm_tokenizer
from virnucpro_core.models.registry import load_model

esm = pytest.importorskip("esm", reason="fair-esm (a test dependency: pip install -e '.[test]') is not installed")
from esm.model.esm2 import ESM2  # noqa: E402

ALPHABET = esm.data.Alphabet.from_architecture("ESM-1b")  # the ESM-2 alphabet
# All 25 letters fair-esm knows, standard and ambiguous (X B U Z O).
LETTERS = "LAGVSERTIDPKQNFYMHWCXBUZO"
TOLERANCE = 1e-5  # fp32 on the CPU; the bound for pooled vectors

# The tiny stand-ins' shapes: load_model takes a directory as ESM2 3B or FastESM2_650 only when its config states
# the model's identity or its tiny stand-in's (models.ModelSpec.identity_for): 6 x 128, 8 heads; 2 x 64, 4 heads.
SHAPES = {"esm2_3b": (6, 128, 8), "fastesm2_650": (2, 64, 4)}  # layers, width, heads


def proteins(seed: int = 11) -> list[tuple[str, str]]:
    """Mixed lengths (1 to 150) so the batch pads; every protein holds D and I, the pair once swapped."""
    rng = random.Random(seed)
    records = [("all_letters", LETTERS), ("one", "M"), ("di", "DIDI")]
    for i, length in enumerate((5, 17, 40, 99, 150)):
        body = "".join(rng.choice(LETTERS) for _ in range(length - 2))
        records.append((f"p{i}", "D" + body + "I"))
    return records


def reference_model(layers: int, width: int, heads: int, seed: int) -> ESM2:
    """fair-esm's ESM2 with every parameter drawn from a seeded generator (large enough to show small departures)."""
    model = ESM2(num_layers=layers, embed_dim=width, attention_heads=heads, alphabet=ALPHABET, token_dropout=True)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            z = torch.randn(parameter.shape, generator=generator)
            if "layer_norm" in name and name.endswith("weight"):
                parameter.copy_(1 + 0.1 * z)
            elif name.endswith("bias"):
                parameter.copy_(0.05 * z)
            else:
                parameter.copy_(0.1 * z)
    return model.eval()


_LAYER_NAMES = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "final_layer_norm": "LayerNorm",
    "self_attn.rot_emb": "attention.self.rotary_embeddings",
}


def to_hub_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fair-esm key names → the hub's ``EsmForMaskedLM`` names (``esm.`` prefix, masked-LM head beside it)."""
    renamed = {}
    for key, value in state.items():
        if key.startswith("layers."):
            _, index, rest = key.split(".", 2)
            module, leaf = rest.rsplit(".", 1)
            new = f"esm.encoder.layer.{index}.{_LAYER_NAMES[module]}.{leaf}"
        elif key == "embed_tokens.weight":
            new = "esm.embeddings.word_embeddings.weight"
        elif key.startswith("emb_layer_norm_after."):
            new = "esm.encoder." + key
        elif key.startswith("contact_head."):
            new = "esm." + key
        elif key == "lm_head.weight":
            new = "lm_head.decoder.weight"
        else:  # lm_head.bias, lm_head.dense.*, lm_head.layer_norm.*
            new = key
        renamed[new] = value.detach().clone().contiguous()
    return renamed


def hub_config(name: str, layers: int, width: int, heads: int) -> dict:
    """config.json as facebook/esm2_* and Synthyra/FastESM2_650 publish it, at a tiny size."""
    config = {
        "attention_probs_dropout_prob": 0.0,
        "emb_layer_norm_before": False,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "hidden_size": width,
        "initializer_range": 0.02,
        "intermediate_size": 4 * width,
        "layer_norm_eps": 1e-05,
        "mask_token_id": 32,
        "max_position_embeddings": 1026,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": 1,
        "position_embedding_type": "rotary",
        # FastESM2: we follow the current FastPLMs code (esm2/modeling_fastesm.py), which builds
        # its embeddings with transformers' EsmEmbeddings and defaults token_dropout to true: the
        # embeddings are scaled by 1 - 0.15 * 0.8 at inference, as in fair-esm's ESM2. Its older
        # top-level modeling_fastesm.py had an embedding layer without that scaling; the current
        # code is what `trust_remote_code` users run and it agrees with the ESM-2 pre-training.
        "token_dropout": True,
        "vocab_size": 33,
        "torch_dtype": "float32",
    }
    if name == "fastesm2_650":
        return {
            **config,
            "architectures": ["FastEsmForMaskedLM"],
            "auto_map": {"AutoModel": "modeling_fastesm.FastEsmModel"},
            "model_type": "fast_esm",
        }
    return {**config, "architectures": ["EsmForMaskedLM"], "model_type": "esm"}


def write_reference_directory(name: str, directory: Path, seed: int = 5) -> ESM2:
    layers, width, heads = SHAPES[name]
    reference = reference_model(layers, width, heads, seed)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(hub_config(name, layers, width, heads), indent=2))
    (directory / "vocab.txt").write_text("\n".join(ALPHABET.all_toks) + "\n")
    save_file(to_hub_layout(reference.state_dict()), str(directory / "model.safetensors"), metadata={"format": "pt"})
    return reference


def reference_pooled(reference: ESM2, records: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """fair-esm's padded batch: per-residue last-layer states and VirNucPro's mean over residues 1..L."""
    _, _, tokens = ALPHABET.get_batch_converter()(records)
    with torch.inference_mode():
        hidden = reference(tokens, repr_layers=[reference.num_layers])["representations"][reference.num_layers]
    pooled = torch.stack([hidden[i, 1 : len(seq) + 1].mean(0) for i, (_, seq) in enumerate(records)])
    return hidden, pooled


# --------------------------------------------------------------------------- alphabet and token ids


def test_builtin_alphabet_is_fair_esms():
    assert list(ESM2_VOCAB) == ALPHABET.all_toks
    assert ESM2_VOCAB.index("I") == 12 and ESM2_VOCAB.index("D") == 13


@pytest.mark.parametrize("source", ["built-in", "directory"])
def test_token_ids_equal_fair_esms_batch_converter(source, tmp_path):
    if source == "built-in":
        loaded = load_model("fastesm2_650", weights="random", device="cpu")
    else:
        write_reference_directory("fastesm2_650", tmp_path)
        loaded = load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    records = proteins()
    _, _, tokens = ALPHABET.get_batch_converter()(records)
    ours = tokenize(loaded, [seq for _, seq in records])
    for row, ids in enumerate(ours):
        assert ids == tokens[row, : len(ids)].tolist(), f"token ids of {records[row][0]} differ from fair-esm's"
    assert ours[0] == [0, *(ALPHABET.get_idx(ch) for ch in LETTERS), 2]


# --------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("name", ["esm2_3b", "fastesm2_650"])
def test_pooled_vectors_equal_fair_esm(name, tmp_path):
    reference = write_reference_directory(name, tmp_path)
    loaded = load_model(name, model_path=tmp_path, device="cpu")
    assert loaded.provenance["weights"] == "pretrained" and loaded.provenance["vocab"] == str(tmp_path / "vocab.txt")
    records = proteins()
    token_lengths = [len(seq) + 2 for _, seq in records]
    assert len(plan_batches(token_lengths, 10**6)) == 1 and len(set(token_lengths)) > 1, "one padded batch"

    hidden, expected = reference_pooled(reference, records)
    for budget, batching in ((10**6, "one padded batch"), (1, "one protein per batch")):
        ours = extract_embeddings(loaded, records, toks_per_batch=budget, progress=False)
        difference = (ours.data - expected).abs().max().item()
        assert difference < TOLERANCE, f"{name}, {batching}: pooled vectors differ from fair-esm's by {difference:.2e}"
    assert ours.meta["vocab_sha256"] == models.vocab_sha256(esm_tokenizer())

    # Per residue too, so that a pooling error cannot hide a model error or the reverse.
    _, _, tokens = ALPHABET.get_batch_converter()(records)
    with torch.inference_mode():
        states = loaded.model(input_ids=tokens, attention_mask=(tokens != ALPHABET.padding_idx).long())
    for row, (_, seq) in enumerate(records):
        residues = slice(1, len(seq) + 1)
        gap = (states.last_hidden_state[row, residues] - hidden[row, residues]).abs().max().item()
        assert gap < TOLERANCE, f"{name}: residue states of {records[row][0]} differ by {gap:.2e}"


def test_the_differential_check_sees_a_swapped_alphabet(tmp_path):
    """The test above can fail: with I and D swapped in vocab.txt (the old bug) the vectors move far off."""
    reference = write_reference_directory("fastesm2_650", tmp_path)
    swapped = list(ALPHABET.all_toks)
    swapped[12], swapped[13] = swapped[13], swapped[12]
    (tmp_path / "vocab.txt").write_text("\n".join(swapped))
    loaded = load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    records = proteins()
    ours = extract_embeddings(loaded, records, toks_per_batch=10**6, progress=False)
    _, expected = reference_pooled(reference, records)
    assert (ours.data - expected).abs().max().item() > 100 * TOLERANCE
    assert ours.meta["vocab_sha256"] != models.vocab_sha256(esm_tokenizer()), "the fingerprint shows it"
