"""ESM-2 and FastESM2 files: the vocabulary as the source of token ids, config.json checks and defaults, and
config.json against the weights (CPU, tiny stand-ins)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from virnucpro_core.models import esm

from virnucpro_core.models import registry as models
from virnucpro_core.models import specs
from virnucpro_core.errors import InputError
from virnucpro_core.models.esm import ESM2_VOCAB
from virnucpro_core.models.registry import load_model, write_standin

IDS = torch.tensor([[0, 20, 15, 11, 5, 19, 4, 7, 2]])  # <cls> M K T A Y L V <eos>


# --------------------------------------------------------------------------- tokenizer


def test_esm_tokenizer_vocabulary_order():
    tokenizer = esm.esm_tokenizer()
    vocab = tokenizer.get_vocab()
    assert [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])][:33] == list(ESM2_VOCAB)
    assert tokenizer("MKTAYLV")["input_ids"] == IDS[0].tolist()


def test_crlf_vocab_file_is_read(tmp_path):
    # FastESM2_650's vocab.txt is 125 bytes: the 33 tokens with CRLF line ends, no final newline.
    (tmp_path / "vocab.txt").write_bytes("\r\n".join(ESM2_VOCAB).encode())
    assert (tmp_path / "vocab.txt").stat().st_size == 125
    assert esm.esm_tokenizer(tmp_path)("MKTAYLV")["input_ids"] == IDS[0].tolist()


def test_foreign_vocab_is_rejected(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "A", "C", "G", "T"]))
    with pytest.raises(InputError, match="not an ESM protein vocabulary") as info:
        esm.esm_tokenizer(tmp_path)
    assert "missing <cls> <pad> <eos> <unk> <mask> D E F" in str(info.value), str(info.value)


def test_vocab_with_a_repeated_token_is_rejected(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join([*ESM2_VOCAB, "A"]))
    with pytest.raises(InputError, match=r"repeated \(1\) A"):
        esm.esm_tokenizer(tmp_path)


@pytest.mark.parametrize("extra", [lambda i: f"t{i}", lambda i: f"t{i % 1000}"], ids=["unique", "repeated"])
def test_a_vocab_of_a_million_lines_is_refused_at_once(tmp_path, run_cli, extra):
    """Issue 38: each token was counted with list.count (quadratic: 60,000 lines took 84 s, 10^6 would take hours);
    now one pass, and vocab.txt is checked against config.json before a tokenizer is built from it."""
    model = write_standin("fastesm2_650", "tiny", tmp_path / "fm")
    (model / "vocab.txt").write_text("\n".join([*ESM2_VOCAB, *map(extra, range(10**6))]))
    (tmp_path / "p.faa").write_text(">a\nMKVLA\n")
    code, _, err = run_cli(["extract", "--model", "fastesm2_650", "--model-path", str(model), str(tmp_path / "p.faa"),
                            "--out", str(tmp_path / "f.pt")])
    assert code == 2 and "Traceback" not in err, err
    words = (["1000033 tokens in the vocabulary, vocab_size 33 in config.json"] if extra(1000) != extra(0)
             else ["not an ESM protein vocabulary", "repeated (1000) t0 t1 t10", " ..."])
    for word in words:
        assert word in err, err
    assert len(err) < 2000, "the message names a few tokens, not a million"


def test_a_directory_vocab_in_another_order_is_the_source_of_truth(tmp_path, caplog):
    """A model's own vocab.txt decides its token ids, even in another order than ESM-2's (with a warning)."""
    reordered = [*ESM2_VOCAB[:4], *reversed(ESM2_VOCAB[4:29]), *ESM2_VOCAB[29:]]
    (tmp_path / "vocab.txt").write_text("\n".join(reordered))
    with caplog.at_level("WARNING", logger="virnucpro_core.models.registry"):
        tokenizer = esm.esm_tokenizer(tmp_path)
    assert models.vocab_tokens(tokenizer) == reordered
    assert "not in ESM-2's token order" in caplog.text
    assert models.vocab_sha256(tokenizer) != models.vocab_sha256(esm.esm_tokenizer())


def test_directory_without_vocab_uses_the_builtin_alphabet_and_says_so(tmp_path):
    write_standin("fastesm2_650", "tiny", tmp_path)
    (tmp_path / "vocab.txt").unlink()
    loaded = load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    assert loaded.provenance["vocab"] == esm.BUILTIN_VOCAB_SOURCE
    assert models.vocab_tokens(loaded.tokenizer) == list(ESM2_VOCAB)


# --------------------------------------------------------------------------- config.json checks


def _edit_config(directory: Path, **changes) -> None:
    config = json.loads((directory / "config.json").read_text())
    for key, value in changes.items():
        if value is _DROP:
            config.pop(key)
        else:
            config[key] = value
    (directory / "config.json").write_text(json.dumps(config))


_DROP = object()


@pytest.mark.parametrize(
    ("key", "assumed"),
    [("position_embedding_type", '"rotary"'), ("token_dropout", "true"), ("layer_norm_eps", "1e-05"),
     ("mask_token_id", "32")],
)  # fmt: skip
def test_missing_key_of_a_plain_esm2_config_names_file_key_and_published_value(tmp_path, key, assumed):
    """model_type esm: nothing is filled in (EsmConfig's defaults would change every vector)."""
    write_standin("esm2_3b", "tiny", tmp_path)
    _edit_config(tmp_path, **{key: _DROP})
    with pytest.raises(InputError) as info:
        load_model("esm2_3b", model_path=tmp_path, device="cpu")
    message = str(info.value)
    assert str(tmp_path / "config.json") in message and f"missing '{key}' (ESM-2 publishes {assumed})" in message, message


# FastPLMs' FastEsmConfig defaults, and transformers' EsmConfig defaults that would differ from them.
FASTESM_DEFAULTS = [
    ("token_dropout", True, False),
    ("position_embedding_type", "rotary", "absolute"),
    ("layer_norm_eps", 1e-12, 1e-12),
    ("emb_layer_norm_before", None, None),
]


@pytest.mark.parametrize(("key", "fastesm_default", "esmconfig_default"), FASTESM_DEFAULTS,
                         ids=[k for k, *_ in FASTESM_DEFAULTS])
def test_fastesm_config_without_a_key_gets_fastesmconfigs_default_and_says_so(
    tmp_path, caplog, key, fastesm_default, esmconfig_default
):
    write_standin("fastesm2_650", "tiny", tmp_path)
    _edit_config(tmp_path, **{key: _DROP})
    with caplog.at_level("WARNING", logger="virnucpro_core.models.esm_config"):
        loaded = load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    assert getattr(loaded.model.config, key) == fastesm_default
    assert key in caplog.text and "FastEsmConfig" in caplog.text, caplog.text
    architecture = loaded.provenance["architecture"]
    assert architecture["filled_by_default"] == {key: fastesm_default}
    assert "FastEsmConfig" in architecture["defaults_from"]
    if esmconfig_default != fastesm_default:  # the point of filling them ourselves
        from transformers import EsmConfig

        assert getattr(EsmConfig(), key) == esmconfig_default


def test_fastesm_filled_default_changes_the_vectors_like_the_models_own_code_would(tmp_path):
    """Dropping layer_norm_eps (published 1e-05) gives FastEsmConfig's 1e-12: other vectors, and the meta says why."""
    write_standin("fastesm2_650", "tiny", tmp_path / "published")
    write_standin("fastesm2_650", "tiny", tmp_path / "dropped")
    _edit_config(tmp_path / "dropped", layer_norm_eps=_DROP)
    published = load_model("fastesm2_650", model_path=tmp_path / "published", device="cpu")
    dropped = load_model("fastesm2_650", model_path=tmp_path / "dropped", device="cpu")
    with torch.inference_mode():
        a = published.model(input_ids=IDS).last_hidden_state
        b = dropped.model(input_ids=IDS).last_hidden_state
    assert not torch.equal(a, b)
    assert published.provenance["architecture"]["layer_norm_eps"] == 1e-05
    assert dropped.provenance["architecture"]["layer_norm_eps"] == 1e-12
    assert published.provenance["architecture"]["filled_by_default"] == {}


@pytest.mark.parametrize("key", ["vocab_size", "pad_token_id", "mask_token_id"])
def test_fastesm_keys_without_a_default_stay_required(tmp_path, key):
    write_standin("fastesm2_650", "tiny", tmp_path)
    _edit_config(tmp_path, **{key: _DROP})
    with pytest.raises(InputError) as info:
        load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    assert f"missing '{key}' (FastEsmConfig has no default" in str(info.value), str(info.value)


def test_architecture_is_recorded_in_provenance_feature_meta_and_merged_meta(tmp_path):
    from virnucpro_core.extract.embeddings import extract_embeddings
    from virnucpro_core.extract.features import save_features
    from virnucpro_core.extract.merged import merge_features

    expected = {
        "model_type": "fast_esm", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 256, "position_embedding_type": "rotary", "token_dropout": True,
        "layer_norm_eps": 1e-05, "emb_layer_norm_before": False, "vocab_size": 33, "pad_token_id": 1,
        "mask_token_id": 32, "filled_by_default": {}, "defaults_from": None,
    }  # fmt: skip
    standin = load_model("fastesm2_650", weights="random", device="cpu")
    assert standin.provenance["architecture"] == expected
    write_standin("fastesm2_650", "tiny", tmp_path / "model")
    _edit_config(tmp_path / "model", token_dropout=_DROP)
    loaded = load_model("fastesm2_650", model_path=tmp_path / "model", device="cpu")
    filled = {**expected, "filled_by_default": {"token_dropout": True},
              "defaults_from": "FastPLMs FastEsmConfig (esm2/modeling_fastesm.py)"}
    assert loaded.provenance["architecture"] == filled

    proteins = extract_embeddings(loaded, [("a", "MKTAYLV"), ("b", "MDI")], progress=False)
    assert proteins.meta["architecture"] == filled
    dna = extract_embeddings(load_model("dnabert_s", weights="random", device="cpu"), [("a", "ACGTAC"), ("b", "GGCA")],
                             progress=False)
    assert dna.meta["architecture"] is None
    save_features(proteins, tmp_path / "protein.pt")
    save_features(dna, tmp_path / "dna.pt")
    merged = merge_features(tmp_path / "dna.pt", tmp_path / "protein.pt", "viral")
    assert merged.meta["protein"]["architecture"] == filled


def test_contradictory_config_values_are_listed_together(tmp_path):
    write_standin("esm2_3b", "tiny", tmp_path)
    _edit_config(tmp_path, position_embedding_type="relative_key", num_attention_heads=7, hidden_size=_DROP)
    with pytest.raises(InputError) as info:
        load_model("esm2_3b", model_path=tmp_path, device="cpu")
    message = str(info.value)
    assert "missing 'hidden_size' (no default: the architecture)" in message, message
    assert "position_embedding_type 'relative_key'" in message, message


def test_config_heads_must_divide_the_width(tmp_path):
    write_standin("esm2_3b", "tiny", tmp_path)
    _edit_config(tmp_path, num_attention_heads=7)
    with pytest.raises(InputError, match="hidden_size 128 is not a multiple of num_attention_heads 7"):
        load_model("esm2_3b", model_path=tmp_path, device="cpu")


def test_vocab_that_does_not_fit_the_config_is_rejected(tmp_path):
    write_standin("fastesm2_650", "tiny", tmp_path)
    _edit_config(tmp_path, pad_token_id=0)
    with pytest.raises(InputError) as info:
        load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    assert "pad_token_id 0 in config.json, but <pad> is id 1" in str(info.value), str(info.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"], ids=["broken", "a list"])
def test_unreadable_config_is_an_input_error(tmp_path, text):
    write_standin("fastesm2_650", "tiny", tmp_path)
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(InputError, match="is not a JSON object"):
        load_model("fastesm2_650", model_path=tmp_path, device="cpu")


# --------------------------------------------------------------------------- config.json against the weights


def _edit_weights(directory: Path, drop: tuple[str, ...] = (), **add: torch.Tensor) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(directory / "model.safetensors")
    for key in list(state):
        if key.endswith(drop):
            del state[key]
    state.update({key.replace("__", "."): value for key, value in add.items()})
    save_file(state, str(directory / "model.safetensors"))


def _refusal(directory: Path) -> str:
    with pytest.raises(InputError) as info:
        load_model("fastesm2_650", model_path=directory, device="cpu")
    return str(info.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"hidden_size": _DROP},
         "hidden_size 768 (absent from config.json; FastPLMs FastEsmConfig (esm2/modeling_fastesm.py)'s default), "
         "but the weights have 64"),
        ({"num_hidden_layers": 3}, "num_hidden_layers 3 (config.json), but the weights have 2"),
        ({"num_attention_heads": 8}, "num_attention_heads 8 (config.json), but the weights have 4"),
        ({"intermediate_size": 128}, "intermediate_size 128 (config.json), but the weights have 256"),
        ({"vocab_size": 34}, "vocab_size 34 (config.json), but the weights have 33"),
        ({"emb_layer_norm_before": True},
         "emb_layer_norm_before true (config.json), but the weights have no embeddings.layer_norm tensors"),
    ],
    ids=["hidden-default", "layers", "heads", "intermediate", "vocab", "emb-layer-norm"],
)  # fmt: skip
def test_config_that_contradicts_the_weight_shapes_is_refused(tmp_path, change, expected):
    write_standin("fastesm2_650", "tiny", tmp_path)
    _edit_config(tmp_path, **change)
    message = _refusal(tmp_path)
    assert "contradicts the weights" in message and expected in message, message
    assert "re-download the repository" in message, message


def test_every_contradiction_is_listed_in_one_error_with_the_values_to_set(tmp_path):
    write_standin("fastesm2_650", "tiny", tmp_path)
    _edit_config(tmp_path, num_hidden_layers=5, position_embedding_type="absolute", hidden_size=_DROP)
    message = _refusal(tmp_path)
    for part in ("hidden_size 768", "num_hidden_layers 5", "position_embedding_type 'absolute' (config.json), but the "
                 "weights hold rotary frequencies per layer and no learned position table",
                 'set hidden_size 64, num_hidden_layers 2, position_embedding_type "rotary" in config.json'):
        assert part in message, message


def test_a_filled_width_that_the_heads_do_not_divide_is_compared_with_the_weights(tmp_path):
    """FastEsmConfig's 768 with 5 heads: the weights' widths are named, not a bare divisibility error."""
    write_standin("fastesm2_650", "tiny", tmp_path)
    _edit_config(tmp_path, hidden_size=_DROP, num_attention_heads=5)
    message = _refusal(tmp_path)
    assert "hidden_size 768 (absent from config.json" in message and "but the weights have 64" in message, message
    assert "num_attention_heads 5 (config.json), but the weights have 4" in message, message


def test_absolute_positions_without_a_position_table_are_refused(tmp_path):
    """EsmConfig's default (absolute) on rotary weights: the error says what the weights are and what to set."""
    write_standin("fastesm2_650", "tiny", tmp_path)
    _edit_config(tmp_path, position_embedding_type="absolute")
    message = _refusal(tmp_path)
    assert "weights hold rotary frequencies per layer and no learned position table" in message, message
    assert 'position_embedding_type "rotary"' in message, message


def test_rotary_config_on_an_absolute_position_checkpoint_is_refused(tmp_path):
    write_standin("fastesm2_650", "tiny", tmp_path)
    _edit_weights(tmp_path, drop=("rotary_embeddings.inv_freq",),
                  esm__embeddings__position_embeddings__weight=torch.zeros(1026, 64))
    message = _refusal(tmp_path)
    assert "learned position table and no rotary frequencies: an absolute-position model" in message, message


def test_an_unused_position_table_beside_rotary_frequencies_is_the_published_esm2_layout(tmp_path):
    """transformers' conversion of the ESM-2 checkpoints kept a learned table rotary models never read."""
    write_standin("fastesm2_650", "tiny", tmp_path)
    plain = load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    _edit_weights(tmp_path, esm__embeddings__position_embeddings__weight=torch.randn(1026, 64))
    with_table = load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    with torch.inference_mode():
        assert torch.equal(plain.model(input_ids=IDS).last_hidden_state,
                           with_table.model(input_ids=IDS).last_hidden_state)


def test_absolute_config_with_both_tables_is_refused_as_esm2_with_a_leftover_table(tmp_path):
    write_standin("esm2_3b", "tiny", tmp_path)
    _edit_config(tmp_path, position_embedding_type="absolute")
    _edit_weights(tmp_path, esm__embeddings__position_embeddings__weight=torch.zeros(1026, 128))
    with pytest.raises(InputError) as info:
        load_model("esm2_3b", model_path=tmp_path, device="cpu")
    assert "an unused learned position table, as ESM-2's published checkpoints do" in str(info.value), str(info.value)


# --------------------------------------------------------------------------- checkpoints re-saved by transformers 5

PROTEINS = [("p1", "MKTAYIAKQRQISFVKSHFSRQ"), ("p2", "DIDI"), ("p3", "MLSDEDFKAVFGMTRSAFANLPLWKQQNLKKEKGLF")]


def resave_with_transformers(name: str, directory: Path, seed: int = 6, *, as_fastesm: bool = True,
                             max_shard_size: str | None = None):
    """A stand-in's weights copied into transformers' ``EsmForMaskedLM`` and written by its ``save_pretrained``.

    Returns the stand-in loaded from its own directory (``directory / "original"``); the re-saved copy is
    ``directory / "resaved"``, with the tokenizer saved beside it as a user would. A FastESM2 re-save keeps
    ``model_type: fast_esm`` (FastPLMs' own class saves it so), which ``EsmForMaskedLM`` does not: its
    config.json is written back as FastESM2's (unless ``as_fastesm`` is false), the rest as transformers wrote it.
    With ``max_shard_size``, transformers writes a sharded checkpoint with its own index.
    """
    from safetensors import safe_open
    from transformers import EsmForMaskedLM

    write_standin(name, "tiny", directory / "original", seed=seed)
    original = load_model(name, model_path=directory / "original", device="cpu")
    masked_lm = EsmForMaskedLM(original.model.config)
    masked_lm.esm.load_state_dict(original.model.state_dict(), strict=True)
    resaved = directory / "resaved"
    masked_lm.save_pretrained(resaved, **({"max_shard_size": max_shard_size} if max_shard_size else {}))
    original.tokenizer.save_pretrained(str(resaved))
    keys = set()
    for path in resaved.glob("model*.safetensors"):
        with safe_open(str(path), framework="pt") as handle:
            keys |= set(handle.keys())
    # What this test is about: transformers 5 writes the shared rotary buffer once, under a literal "*".
    assert "esm." + esm.SHARED_LAYER_INV_FREQ in keys, sorted(k for k in keys if "rotary" in k)
    assert not any(k.startswith("esm.encoder.layer.0.attention.self.rotary") for k in keys)
    config = json.loads((resaved / "config.json").read_text())
    assert config["model_type"] == "esm" and config["architectures"] == ["EsmForMaskedLM"]
    if name == "fastesm2_650" and as_fastesm:
        published = json.loads((directory / "original" / "config.json").read_text())
        config.update({key: published[key] for key in ("model_type", "architectures", "auto_map")})
        (resaved / "config.json").write_text(json.dumps(config, indent=2))
    return original


@pytest.mark.parametrize("name", ["esm2_3b", "fastesm2_650"])
def test_a_checkpoint_resaved_by_transformers_5_gives_the_same_vectors(name, tmp_path):
    from virnucpro_core.extract.embeddings import extract_embeddings

    original = resave_with_transformers(name, tmp_path)
    resaved = load_model(name, model_path=tmp_path / "resaved", device="cpu")
    before = extract_embeddings(original, PROTEINS, progress=False).data
    after = extract_embeddings(resaved, PROTEINS, progress=False).data
    # The same float32 tensors under other names: the vectors are equal, not merely close (measured: 0.0).
    assert torch.equal(after, before), f"{name}: re-saved vectors differ by {(after - before).abs().max().item():.2e}"
    assert torch.equal(resaved.model.rotary_embeddings.inv_freq, original.model.rotary_embeddings.inv_freq)
    assert resaved.provenance["architecture"] == original.provenance["architecture"]
    heads = specs.standin_config(name, "tiny").num_attention_heads
    assert esm.weights_architecture(esm.checkpoint_shapes(tmp_path / "resaved"))["num_attention_heads"] == heads


def test_a_checkpoint_transformers_5_shards_itself_gives_the_same_vectors(tmp_path):
    """save_pretrained(max_shard_size=...) writes model-0000i-of-0000N.safetensors and its own index."""
    from virnucpro_core.extract.embeddings import extract_embeddings

    original = resave_with_transformers("fastesm2_650", tmp_path, max_shard_size="50KB")
    index = json.loads((tmp_path / "resaved" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2 and not (tmp_path / "resaved" / "model.safetensors").exists()
    resaved = load_model("fastesm2_650", model_path=tmp_path / "resaved", device="cpu")
    assert torch.equal(extract_embeddings(resaved, PROTEINS, progress=False).data,
                       extract_embeddings(original, PROTEINS, progress=False).data)


def test_a_fastesm2_resaved_through_esm_formaskedlm_is_refused_as_another_model(tmp_path):
    """EsmForMaskedLM writes model_type esm: by its config, that directory is an ESM-2, not FastESM2."""
    resave_with_transformers("fastesm2_650", tmp_path, as_fastesm=False)
    with pytest.raises(InputError) as info:
        load_model("fastesm2_650", model_path=tmp_path / "resaved", device="cpu")
    assert 'differs from its tiny stand-in in model_type "esm" (expected "fast_esm")' in str(info.value)
    allowed = load_model("fastesm2_650", model_path=tmp_path / "resaved", device="cpu", allow_other_model=True)
    assert allowed.provenance["identity"]["found"]["model_type"] == "esm"


def test_the_shared_rotary_table_of_a_resaved_checkpoint_is_the_one_loaded(tmp_path):
    """Not skipped and recomputed: a changed table under the literal key reaches the model."""
    from safetensors.torch import load_file, save_file

    resave_with_transformers("fastesm2_650", tmp_path)
    path = tmp_path / "resaved" / "model.safetensors"
    state = load_file(path)
    key = "esm." + esm.SHARED_LAYER_INV_FREQ
    state[key] = state[key] * 1.37
    save_file(state, str(path), metadata={"format": "pt"})
    loaded = load_model("fastesm2_650", model_path=tmp_path / "resaved", device="cpu")
    assert torch.equal(loaded.model.rotary_embeddings.inv_freq, state[key])


def test_a_shared_rotary_table_that_disagrees_with_the_per_layer_ones_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    write_standin("fastesm2_650", "tiny", tmp_path)
    path = tmp_path / "model.safetensors"
    state = load_file(path)
    state["esm." + esm.SHARED_LAYER_INV_FREQ] = state["esm.encoder.layer.0.attention.self.rotary_embeddings.inv_freq"] * 2
    save_file(state, str(path))
    with pytest.raises(InputError, match="rotary inv_freq differs between layers"):
        load_model("fastesm2_650", model_path=tmp_path, device="cpu")


def test_layer_norms_under_their_legacy_names_load_as_transformers_maps_them(tmp_path):
    """transformers 5 re-saves write LayerNorm.gamma / .beta; they are LayerNorm.weight / .bias."""
    from safetensors.torch import load_file, save_file

    write_standin("esm2_3b", "tiny", tmp_path)
    plain = load_model("esm2_3b", model_path=tmp_path, device="cpu")
    path = tmp_path / "model.safetensors"
    state = load_file(path)
    renamed = {key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): value
               for key, value in state.items()}
    assert sum(key.endswith("LayerNorm.gamma") for key in renamed) == 12  # 6 layers, 2 LayerNorms each
    save_file(renamed, str(path))
    legacy = load_model("esm2_3b", model_path=tmp_path, device="cpu")
    with torch.inference_mode():
        assert torch.equal(legacy.model(input_ids=IDS).last_hidden_state, plain.model(input_ids=IDS).last_hidden_state)
    renamed["esm.encoder.layer.0.LayerNorm.weight"] = state["esm.encoder.layer.0.LayerNorm.weight"].clone()
    save_file(renamed, str(path))
    with pytest.raises(InputError, match=r"encoder.layer.0.LayerNorm.weight stored twice \(as .weight/.bias and as "
                                         r".gamma/.beta\)"):
        load_model("esm2_3b", model_path=tmp_path, device="cpu")
