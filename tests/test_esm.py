"""ESM-2 and FastESM2 files: the vocabulary as the source of token ids, and config.json checks (CPU, tiny stand-ins)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from virnucpro_core import esm, models
from virnucpro_core.errors import InputError
from virnucpro_core.esm import ESM2_VOCAB
from virnucpro_core.models import load_model, write_standin

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
    with pytest.raises(InputError, match="repeated A"):
        esm.esm_tokenizer(tmp_path)


def test_a_directory_vocab_in_another_order_is_the_source_of_truth(tmp_path, caplog):
    """A model's own vocab.txt decides its token ids, even in another order than ESM-2's (with a warning)."""
    reordered = [*ESM2_VOCAB[:4], *reversed(ESM2_VOCAB[4:29]), *ESM2_VOCAB[29:]]
    (tmp_path / "vocab.txt").write_text("\n".join(reordered))
    with caplog.at_level("WARNING", logger="virnucpro_core.models"):
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
def test_missing_config_key_names_file_key_and_assumed_value(tmp_path, key, assumed):
    write_standin("fastesm2_650", "tiny", tmp_path)
    _edit_config(tmp_path, **{key: _DROP})
    with pytest.raises(InputError) as info:
        load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    message = str(info.value)
    assert str(tmp_path / "config.json") in message and f"missing '{key}' (ESM-2 publishes {assumed})" in message, message


def test_contradictory_config_values_are_listed_together(tmp_path):
    write_standin("esm2_3b", "tiny", tmp_path)
    _edit_config(tmp_path, position_embedding_type="absolute", num_attention_heads=7, hidden_size=_DROP)
    with pytest.raises(InputError) as info:
        load_model("esm2_3b", model_path=tmp_path, device="cpu")
    message = str(info.value)
    assert "missing 'hidden_size' (no default: the architecture)" in message, message
    assert "position_embedding_type 'absolute'" in message, message


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
