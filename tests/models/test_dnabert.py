"""DNABERT-S implementation: published key names and layout, ALiBi, padding, loading, stand-in tokenizer (CPU)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from virnucpro_core.models import dnabert as D
from virnucpro_core.models import dnabert_config as C
from virnucpro_core.models import dnabert_tokenizer as T
from virnucpro_core.errors import DimensionError, InputError, VirNucProError, WeightsNotFoundError

from tests.scripts import import_script

REPO = Path(__file__).resolve().parents[2]

# state_dict keys of the published BertModel (bert_layers.py of MAGICS-LAB/DNABERT_S) with one layer.
PUBLISHED_KEYS_ONE_LAYER = [
    "embeddings.word_embeddings.weight",
    "embeddings.token_type_embeddings.weight",
    "embeddings.LayerNorm.weight",
    "embeddings.LayerNorm.bias",
    "encoder.layer.0.attention.self.Wqkv.weight",
    "encoder.layer.0.attention.self.Wqkv.bias",
    "encoder.layer.0.attention.output.dense.weight",
    "encoder.layer.0.attention.output.dense.bias",
    "encoder.layer.0.attention.output.LayerNorm.weight",
    "encoder.layer.0.attention.output.LayerNorm.bias",
    "encoder.layer.0.mlp.gated_layers.weight",
    "encoder.layer.0.mlp.wo.weight",
    "encoder.layer.0.mlp.wo.bias",
    "encoder.layer.0.mlp.layernorm.weight",
    "encoder.layer.0.mlp.layernorm.bias",
    "pooler.dense.weight",
    "pooler.dense.bias",
]

# zhihan1996/DNABERT-S config.json as published (1,025 bytes).
PUBLISHED_CONFIG_JSON = """{
    "_name_or_path": "zhihan1996/DNABERT-2-117M",
    "alibi_starting_size": 512,
    "architectures": [
        "BertModel"
    ],
    "attention_probs_dropout_prob": 0.0,
    "auto_map": {
        "AutoConfig": "configuration_bert.BertConfig",
        "AutoModel": "bert_layers.BertModel",
        "AutoModelForMaskedLM": "bert_layers.BertForMaskedLM",
        "AutoModelForSequenceClassification": "bert_layers.BertForSequenceClassification"
    },
    "classifier_dropout": null,
    "gradient_checkpointing": false,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "torch_dtype": "float32",
    "transformers_version": "4.28.0",
    "type_vocab_size": 2,
    "use_cache": true,
    "vocab_size": 4096
}"""

ONE_LAYER = C.DnaBertConfig(hidden_size=48, num_hidden_layers=1, num_attention_heads=6, intermediate_size=96)


@pytest.fixture(scope="module")
def tiny():
    return D.random_dnabert(C.TINY_CONFIG, seed=0)


@pytest.fixture(scope="module")
def tokenizer():
    return T.standin_tokenizer()


def ids_of(*rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (``[PAD]`` = 3) and the attention mask."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), 3, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


# --------------------------------------------------------------------------- layout


def test_state_dict_keys_are_the_published_ones():
    model = D.random_dnabert(ONE_LAYER, seed=0)
    assert list(model.state_dict()) == PUBLISHED_KEYS_ONE_LAYER, "key names or order differ from the published BertModel"
    assert tuple(model.state_dict()["encoder.layer.0.mlp.gated_layers.weight"].shape) == (2 * 96, 48)
    assert tuple(model.state_dict()["encoder.layer.0.attention.self.Wqkv.weight"].shape) == (3 * 48, 48)


def test_full_config_has_the_published_parameter_count():
    with torch.device("meta"):
        model = D.DnaBertModel(C.FULL_CONFIG)
    total = sum(p.numel() for p in model.parameters())
    pooler = sum(p.numel() for p in model.pooler.parameters())
    # "117M"; 117,068,544 float32 values = 468.3 MB, the size of the hub's pytorch_model.bin (468 MB).
    assert (total, total - pooler) == (117_068_544, 116_477_952), f"{total:,} parameters ({pooler:,} in the pooler)"
    assert round(total * 4 / 1e6) == 468


def test_full_config_is_the_published_config_json(tmp_path):
    assert C.FULL_CONFIG.to_json_string() == PUBLISHED_CONFIG_JSON
    path = tmp_path / "config.json"
    path.write_text(PUBLISHED_CONFIG_JSON)
    config = C.DnaBertConfig.from_json_file(path)
    assert config == C.FULL_CONFIG
    assert config.to_dict() == json.loads(PUBLISHED_CONFIG_JSON)


def test_config_keeps_unknown_entries_and_defaults_missing_ones(tmp_path):
    # DNABERT-2-117M's config has no pad_token_id (BertConfig default 0); fine-tuned ones add problem_type.
    values = json.loads(PUBLISHED_CONFIG_JSON)
    del values["pad_token_id"]
    values.update(architectures=["BertForMaskedLM"], problem_type="single_label_classification", num_hidden_layers=2)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    config = C.DnaBertConfig.from_json_file(path)
    assert (config.num_hidden_layers, config.pad_token_id) == (2, 0)
    assert config.extra["problem_type"] == "single_label_classification"
    assert config.to_dict()["architectures"] == ["BertForMaskedLM"]


def test_missing_or_malformed_architecture_keys_are_one_input_error(tmp_path):
    values = json.loads(PUBLISHED_CONFIG_JSON)
    del values["vocab_size"]
    values.update(hidden_size="768", layer_norm_eps=0)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    with pytest.raises(InputError) as info:
        C.DnaBertConfig.from_json_file(path)
    message = str(info.value)
    assert str(path) in message and "missing 'vocab_size' (DNABERT-S publishes 4096)" in message, message
    assert "hidden_size '768' is not a positive integer" in message and "layer_norm_eps 0" in message, message


def test_heads_must_divide_hidden_size():
    with pytest.raises(DimensionError, match="hidden_size=50, num_attention_heads=6"):
        D.DnaBertModel(C.DnaBertConfig(hidden_size=50, num_attention_heads=6))


# --------------------------------------------------------------------------- ALiBi


@pytest.mark.parametrize(
    "heads, slopes",
    [
        (8, [2**-1, 2**-2, 2**-3, 2**-4, 2**-5, 2**-6, 2**-7, 2**-8]),
        # 12 = 8 + 4: the 8-head slopes, then every second slope of 16 heads (2^-0.5, 2^-1.5, ...).
        (12, [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625,
              0.7071067811865476, 0.35355339059327384, 0.17677669529663692, 0.08838834764831849]),
        (6, [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]),
    ],
    ids=["8-heads", "12-heads", "6-heads-tiny"],
)  # fmt: skip
def test_alibi_slopes(heads, slopes):
    assert D.alibi_slopes(heads) == pytest.approx(slopes, rel=1e-12)


def test_alibi_bias_is_symmetric_minus_slope_times_distance():
    bias = D.alibi_bias(12, 5)
    assert bias.shape == (1, 12, 5, 5) and bias.dtype == torch.float32
    assert torch.equal(bias, bias.transpose(-1, -2))
    assert bias[0, 8, 0, 3].item() == pytest.approx(-3 * 2**-0.5)
    assert bias[0, 0, 4, 1].item() == -1.5
    assert torch.all(bias[0].diagonal(dim1=-2, dim2=-1) == 0)


# --------------------------------------------------------------------------- forward


def reference_forward(model: D.DnaBertModel, ids: torch.Tensor) -> torch.Tensor:
    """One unpadded sequence through the published computation, written out with explicit softmax."""
    config = model.config
    state = model.state_dict()
    heads, head_dim, inner = config.num_attention_heads, config.head_dim, config.intermediate_size

    def norm(x, name):
        return torch.nn.functional.layer_norm(x, (config.hidden_size,), state[f"{name}.weight"], state[f"{name}.bias"], 1e-12)

    x = norm(state["embeddings.word_embeddings.weight"][ids] + state["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    length = ids.shape[0]
    distance = (torch.arange(length)[None, :] - torch.arange(length)[:, None]).abs()
    alibi = -torch.tensor(D.alibi_slopes(heads))[:, None, None] * distance
    for n in range(config.num_hidden_layers):
        p = f"encoder.layer.{n}."
        qkv = x @ state[p + "attention.self.Wqkv.weight"].T + state[p + "attention.self.Wqkv.bias"]
        q, k, v = qkv.view(length, 3, heads, head_dim).permute(1, 2, 0, 3)  # 'b s (t h d)', t = q, k, v
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim) + alibi, dim=-1)
        attended = (probs @ v).transpose(0, 1).reshape(length, -1)
        dense = attended @ state[p + "attention.output.dense.weight"].T + state[p + "attention.output.dense.bias"]
        x = norm(dense + x, p + "attention.output.LayerNorm")
        projected = x @ state[p + "mlp.gated_layers.weight"].T
        gated = torch.nn.functional.gelu(projected[:, :inner]) * projected[:, inner:]  # exact GELU on the first half
        x = norm(gated @ state[p + "mlp.wo.weight"].T + state[p + "mlp.wo.bias"] + x, p + "mlp.layernorm")
    return x


def test_forward_matches_the_published_computation(tiny):
    ids = torch.tensor([1, 14, 1110, 962, 5, 77, 2])
    with torch.inference_mode():
        ours = tiny(ids[None])[0]
        expected = reference_forward(tiny, ids)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_forward_is_deterministic_in_eval_mode(tiny):
    ids, mask = ids_of([1, 9, 10, 11, 2], [1, 12, 2])
    with torch.inference_mode():
        assert torch.equal(tiny(ids, mask), tiny(ids, mask))
    assert not tiny.training


def test_padding_does_not_change_real_tokens(tiny):
    short, long = [1, 14, 1110, 962, 5, 2], [1, 30, 31, 32, 33, 34, 35, 36, 37, 38, 2]
    ids, mask = ids_of(long, short)
    with torch.inference_mode():
        alone = tiny(torch.tensor([short]))[0]
        batched = tiny(ids, mask)
        # Other values at the padded positions must not matter either.
        noisy = tiny(ids.masked_fill(mask == 0, 999), mask)
    torch.testing.assert_close(batched[1, : len(short)], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(noisy[1, : len(short)], alone, atol=1e-5, rtol=0)
    assert torch.all(batched[1, len(short) :] == 0), "published output is zero at padded positions"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_half_precision_runs_and_stays_close(tiny, dtype):
    ids, mask = ids_of([1, 9, 10, 11, 12, 2], [1, 13, 2])
    half = D.random_dnabert(C.TINY_CONFIG, seed=0).to(dtype)
    with torch.inference_mode():
        reference = tiny(ids, mask)
        out = half(ids, mask)
    assert out.dtype == dtype and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), reference, atol=0.1, rtol=0)


def test_random_weights_are_seeded():
    a, b, c = (D.random_dnabert(C.TINY_CONFIG, seed=s) for s in (3, 3, 4))
    wa, wb, wc = (m.state_dict()["encoder.layer.1.mlp.wo.weight"] for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert wa.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.all(a.embeddings.word_embeddings.weight[C.TINY_CONFIG.pad_token_id] == 0)
    assert torch.all(a.state_dict()["embeddings.LayerNorm.weight"] == 1)


# --------------------------------------------------------------------------- loading and saving


def test_save_load_round_trip_in_the_published_layout(tiny, tokenizer, tmp_path):
    D.save_dnabert(tiny, tmp_path, tokenizer=tokenizer)
    names = {"config.json", "pytorch_model.bin", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}
    assert names <= {p.name for p in tmp_path.iterdir()}
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    assert list(state) == list(tiny.state_dict()), "DNABERT-S's file has unprefixed keys, pooler included"
    loaded = D.load_dnabert(tmp_path)
    ids, mask = ids_of([1, 9, 10, 11, 2], [1, 12, 2])
    with torch.inference_mode():
        assert torch.equal(loaded(ids, mask), tiny(ids, mask))
    assert loaded.config == tiny.config and not loaded.training
    again = T.load_dnabert_tokenizer(tmp_path)
    assert again("ACGTTGCAAGT")["input_ids"] == tokenizer("ACGTTGCAAGT")["input_ids"]


@pytest.mark.parametrize("fmt", ["pytorch_model.bin", "model.safetensors"])
def test_masked_lm_checkpoint_with_prefix_and_heads_loads(tiny, tmp_path, fmt, caplog):
    # DNABERT-2-117M's layout: a BertForMaskedLM file: 'bert.' prefix, 'cls.predictions.*', no pooler.
    state = {f"bert.{k}": v.clone() for k, v in tiny.state_dict().items() if not k.startswith("pooler.")}
    hidden = C.TINY_CONFIG.hidden_size
    state.update({
        "cls.predictions.bias": torch.zeros(4096),
        "cls.predictions.transform.dense.weight": torch.zeros(hidden, hidden),
        "cls.predictions.transform.dense.bias": torch.zeros(hidden),
        "cls.predictions.transform.LayerNorm.weight": torch.ones(hidden),
        "cls.predictions.transform.LayerNorm.bias": torch.zeros(hidden),
        "cls.predictions.decoder.weight": torch.zeros(4096, hidden),
    })  # fmt: skip
    (tmp_path / "config.json").write_text(C.TINY_CONFIG.to_json_string())
    if fmt.endswith(".bin"):
        torch.save(state, tmp_path / fmt)
    else:
        save_file(state, str(tmp_path / fmt))
    with caplog.at_level(logging.DEBUG, logger="virnucpro_core.models.dnabert"):
        loaded = D.load_dnabert(tmp_path)
    assert "ignored 6 entries" in caplog.text and "cls.predictions.decoder.weight" in caplog.text, caplog.text
    ids, mask = ids_of([1, 9, 10, 11, 2], [1, 12, 2])
    with torch.inference_mode():
        assert torch.equal(loaded(ids, mask), tiny(ids, mask))


def test_mismatched_checkpoint_raises_once_listing_every_key(tiny, tmp_path):
    state = dict(tiny.state_dict())
    del state["encoder.layer.1.mlp.wo.bias"], state["embeddings.LayerNorm.weight"]
    state["encoder.layer.2.mlp.wo.bias"] = torch.zeros(48)
    (tmp_path / "config.json").write_text(C.TINY_CONFIG.to_json_string())
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(VirNucProError) as info:
        D.load_dnabert(tmp_path)
    message = str(info.value)
    assert "2 missing: embeddings.LayerNorm.weight, encoder.layer.1.mlp.wo.bias" in message, message
    assert "1 unexpected: encoder.layer.2.mlp.wo.bias" in message, message
    assert "pytorch_model.bin" in message and "to fix:" in message, message


def test_wrong_width_is_a_dimension_error(tiny, tmp_path):
    (tmp_path / "config.json").write_text(C.DnaBertConfig(hidden_size=60, num_hidden_layers=2, num_attention_heads=6,
                                                          intermediate_size=96).to_json_string())  # fmt: skip
    torch.save(tiny.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(DimensionError, match=r"embeddings.word_embeddings.weight \(4096, 48\) \(model: \(4096, 60\)\)"):
        D.load_dnabert(tmp_path)


def test_missing_files_say_what_to_download(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="hf download zhihan1996/DNABERT-S"):
        D.load_dnabert(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text(C.TINY_CONFIG.to_json_string())
    with pytest.raises(WeightsNotFoundError, match="model.safetensors or pytorch_model.bin"):
        D.load_dnabert(tmp_path)
    with pytest.raises(WeightsNotFoundError, match="no tokenizer.json there"):
        T.load_dnabert_tokenizer(tmp_path)


def test_load_casts_to_the_requested_dtype(tiny, tmp_path):
    D.save_dnabert(tiny, tmp_path)
    loaded = D.load_dnabert(tmp_path, dtype=torch.bfloat16, device="cpu")
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}


# --------------------------------------------------------------------------- stand-in tokenizer


def test_standin_tokenizer_special_tokens_and_template(tokenizer):
    assert {t: tokenizer.convert_tokens_to_ids(t) for t in T.SPECIAL_TOKENS} == {
        "[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3, "[MASK]": 4,
    }
    assert (tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id) == (3, 1, 2)
    assert len(tokenizer) == 4096
    ids = tokenizer("ACGTACGGTTCAAGTTTGACCA")["input_ids"]
    assert ids[0] == 1 and ids[-1] == 2 and all(i > 4 for i in ids[1:-1]), ids
    assert "".join(tokenizer.convert_ids_to_tokens(ids[1:-1])) == "ACGTACGGTTCAAGTTTGACCA"
    assert tokenizer("ACNGT", add_special_tokens=False)["input_ids"].count(0) == 1, "N is [UNK]"


def test_standin_tokenizer_files_have_the_published_layout():
    directory = T.standin_tokenizer_dir()
    assert json.loads((directory / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    # Hub sizes of zhihan1996/DNABERT-S's two small files.
    assert ((directory / "tokenizer_config.json").stat().st_size, (directory / "special_tokens_map.json").stat().st_size) == (268, 125)
    spec = json.loads((directory / "tokenizer.json").read_text())
    assert spec["model"]["type"] == "BPE"
    assert [t["content"] for t in spec["added_tokens"]] == list(T.SPECIAL_TOKENS)
    assert spec["post_processor"]["special_tokens"]["[CLS]"]["ids"] == [1]


def test_regenerating_the_standin_tokenizer_reproduces_the_committed_files(tmp_path):
    tool = import_script("tools/make_dnabert_standin_tokenizer.py")
    assert tool.main(["--out", str(tmp_path)]) == 0
    for name in tool.FILES:
        committed = (T.standin_tokenizer_dir() / name).read_bytes()
        assert (tmp_path / name).read_bytes() == committed, f"{name} differs; run tools/make_dnabert_standin_tokenizer.py"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-4), (torch.float16, 0.05), (torch.bfloat16, 0.1)], ids=["fp32", "fp16", "bf16"])
def test_cuda_matches_cpu_and_ignores_padding(tiny, dtype, atol):
    model = D.random_dnabert(C.TINY_CONFIG, seed=0, device="cpu").to("cuda", dtype)  # the CPU weights, on the GPU
    short, long = [1, 14, 1110, 962, 5, 2], [1, 30, 31, 32, 33, 34, 35, 36, 37, 38, 2]
    ids, mask = ids_of(long, short)
    with torch.inference_mode():
        on_cpu = tiny(ids, mask)
        batched = model(ids.cuda(), mask.cuda()).float().cpu()
        alone = model(torch.tensor([short], device="cuda")).float().cpu()[0]
    torch.testing.assert_close(batched, on_cpu, atol=atol, rtol=0)
    torch.testing.assert_close(batched[1, : len(short)], alone, atol=atol, rtol=0)
    assert torch.all(batched[1, len(short) :] == 0)
