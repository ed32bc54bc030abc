"""DNABERT-S (``zhihan1996/DNABERT-S``): the MosaicBERT / DNABERT-2 encoder, written for plain PyTorch.

VirNucPro embeds every DNA fragment with DNABERT-S. The published model ships
remote code (``bert_layers.py``) that transformers' ``BertModel`` cannot load
and that breaks on transformers 5 (triton import, ALiBi tensor built on the
meta device). This module is our own implementation whose ``state_dict`` is
the published checkpoint's, key for key, so real weights load with
``load_state_dict`` and random stand-ins are saved in the published layout.

What we verified against the published code, and where
-------------------------------------------------------
Sources: ``evaluate/model_codes/bert_layers.py`` and ``config.json`` of
github.com/MAGICS-LAB/DNABERT_S (the DNABERT-S copy of MosaicBERT's
``bert_layers.py``; the same classes as on the hub in zhihan1996/DNABERT-2-117M),
``train/pretrain/training.py`` and ``models/dnabert_s.py`` of the same repository,
and the hub files of zhihan1996/DNABERT-S (``config.json``, 1,025 bytes;
``tokenizer_config.json``, 268 bytes; ``special_tokens_map.json``, 125 bytes;
``pytorch_model.bin``, 468 MB).

* Key names (``BertModel``, the class DNABERT-S is saved from):
  ``embeddings.{word_embeddings,token_type_embeddings}.weight``,
  ``embeddings.LayerNorm.{weight,bias}``; per layer ``encoder.layer.N.``
  ``attention.self.Wqkv.{weight,bias}``, ``attention.output.dense.{weight,bias}``,
  ``attention.output.LayerNorm.{weight,bias}``, ``mlp.gated_layers.weight`` (no
  bias), ``mlp.wo.{weight,bias}``, ``mlp.layernorm.{weight,bias}`` (lower case);
  ``pooler.dense.{weight,bias}``. The ALiBi matrix is a plain attribute and the
  ``token_type_ids`` buffer is non-persistent, so neither is in the file.
* Prefix: DNABERT-S was written by ``model.dnabert2.save_pretrained(dir)`` (a
  ``BertModel``) and is read back in its own training code with a strict
  ``dnabert2.load_state_dict(torch.load(dir + 'pytorch_model.bin'))``: its keys
  have no prefix and include the pooler. DNABERT-2-117M is a ``BertForMaskedLM``
  checkpoint: ``bert.``-prefixed keys, a ``cls.predictions.*`` head, no pooler
  (``BertModel(config, add_pooling_layer=False)``). :func:`load_dnabert` reads both.
* Size: 116,477,952 encoder parameters + 590,592 pooler = 117,068,544 fp32
  values = 468.3 MB, the size of the hub's ``pytorch_model.bin``.
* Embeddings: word + token-type (always type 0) embeddings, no position
  embeddings, then LayerNorm and dropout.
* Attention: one fused ``Wqkv`` Linear(hidden, 3*hidden), split as
  ``(three, heads, head_dim)`` — q, k, v in that order, heads contiguous; scores
  scaled by ``1/sqrt(head_dim)``; bias = ALiBi + padding mask added to the
  scores before the softmax; then ``dense`` → dropout → ``LayerNorm(x + input)``.
* ALiBi: ``bias[h, i, j] = -slope[h] * |i - j|`` (bidirectional, symmetric).
  Slopes for n heads a power of two: ``start * start**i`` with
  ``start = 2 ** (-2 ** -(log2(n) - 3))``; otherwise the slopes of the closest
  lower power of two ``p``, followed by every second slope of ``2p`` heads,
  first ``n - p`` of them. Built in float32.
* Padding: ``(1 - attention_mask) * -10000.0`` on the key axis, added to the
  ALiBi bias; padded tokens are dropped before every layer and the output is
  zero at padded positions. Here every position is computed and padded rows
  are zeroed at the end; with -10000 the padded keys get a softmax weight of
  exactly 0 in float32, so real tokens never see them.
* Feed-forward (GEGLU): ``gated_layers`` Linear(hidden, 2*intermediate,
  bias=False); the FIRST half goes through exact GELU (``nn.GELU(approximate=
  'none')``, erf, not tanh) and multiplies the SECOND half; dropout; ``wo``
  back to hidden; ``layernorm(x + residual)`` (post-LN).
* LayerNorm eps = ``config.layer_norm_eps`` = 1e-12 everywhere in the encoder.
  ``hidden_act`` in the config is only read by the masked-LM head, which we do
  not build; the encoder's GELU is hard-coded as above.
* ``pad_token_id`` in the published config is 0 (BertConfig's default; it only
  makes row 0 of ``word_embeddings`` the ``padding_idx``). The tokenizer's
  ``[PAD]`` is id 3 — pad input ids with ``tokenizer.pad_token_id``.
* Tokenizer: ``tokenizer_config.json`` (``PreTrainedTokenizerFast``, special
  tokens ``[UNK] [CLS] [SEP] [PAD] [MASK]``, ``model_max_length`` 1e30) and
  ``special_tokens_map.json`` as on the hub (our writer reproduces their 268 and
  125 bytes); every sequence is wrapped as ``[CLS] ... [SEP]`` (maintainer's
  answer in MAGICS-LAB/DNABERT_2 issue #81); BPE shared with DNABERT-2
  (MAGICS-LAB/DNABERT_S issue #18); 4096 tokens (``vocab_size``). The hub's
  ``tokenizer.json`` itself was not in the searchable copies, so the special
  tokens at ids 0-4 are taken from the project brief and, from memory of the
  file, unverified: no normalizer, a ``Whitespace``
  pre-tokenizer, pair template ``[CLS] $A [SEP] $B:1 [SEP]:1``. The committed
  stand-in (``data/dnabert_s_standin_tokenizer/``, made by
  ``tools/make_dnabert_standin_tokenizer.py``) has that layout; its merges are
  not the real ones.

Our attention runs through ``torch.nn.functional.scaled_dot_product_attention``
with the ALiBi + padding bias as an additive float mask: no triton, no
flash-attn package; CPU and CUDA; float32, float16, bfloat16.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from virnucpro_core.errors import DimensionError, InputError, VirNucProError
from virnucpro_core.files import atomic_torch_save, atomic_write_text
from virnucpro_core.models.dnabert_config import BIN_NAME, CONFIG_NAME, SAFETENSORS_NAME, DnaBertConfig, read_dnabert_config
from virnucpro_core.models.dnabert_tokenizer import HUB_ID, write_tokenizer_files
from virnucpro_core.models.hub_weights import find_weights

log = logging.getLogger(__name__)

PADDING_BIAS = -10000.0  # the published additive mask value for padded keys

# Checkpoint entries we read past: heads of other published classes
# (BertForMaskedLM's ``cls.predictions``, BertForSequenceClassification's
# ``classifier``) and buffers some savers write although they are not weights.
_IGNORED_PREFIXES = ("cls.", "classifier.")
_IGNORED_KEYS = ("embeddings.token_type_ids", "embeddings.position_ids")
# Present in DNABERT-S (a BertModel), absent from masked-LM checkpoints such as
# DNABERT-2-117M; forward() never reads it, so its absence is not an error.
_OPTIONAL_PREFIXES = ("pooler.",)
_PREFIX = "bert."


# --------------------------------------------------------------------------- ALiBi


def alibi_slopes(n_heads: int) -> list[float]:
    """Per-head ALiBi slopes as MosaicBERT computes them (see the module docstring)."""
    if n_heads < 1:
        raise InputError("ALiBi needs at least one attention head", found=str(n_heads))

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return power_of_two(n_heads)
    closest = 2 ** math.floor(math.log2(n_heads))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: n_heads - closest]


def alibi_bias(n_heads: int, length: int, device: torch.device | str | None = None) -> Tensor:
    """``[1, heads, length, length]`` float32 bias ``-slope[h] * |i - j|``."""
    positions = torch.arange(length, device=device)
    distance = (positions[None, :] - positions[:, None]).abs()
    slopes = torch.tensor(alibi_slopes(n_heads), dtype=torch.float32, device=device)
    return (slopes[:, None, None] * -distance).unsqueeze(0)


def attention_bias(
    n_heads: int, length: int, attention_mask: Tensor | None, *, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """ALiBi plus the padding mask, as one additive mask for scaled_dot_product_attention.

    Built in float32 (as published) and cast once to the activations' dtype,
    because SDPA wants the mask in the query's dtype.
    """
    bias = alibi_bias(n_heads, length, device)
    if attention_mask is not None:
        keep = attention_mask.to(device=device, dtype=torch.float32)
        bias = bias + ((1.0 - keep) * PADDING_BIAS)[:, None, None, :]
    return bias.to(dtype)


# --------------------------------------------------------------------------- the network
# Module and attribute names are the published ones: they are the state_dict keys.


class _Embeddings(nn.Module):
    def __init__(self, config: DnaBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor) -> Tensor:
        # VirNucPro feeds single segments: token type 0 everywhere, as the published default.
        token_type = self.token_type_embeddings.weight[0]
        return self.dropout(self.LayerNorm(self.word_embeddings(input_ids) + token_type))


class _SelfAttention(nn.Module):
    def __init__(self, config: DnaBertConfig) -> None:
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.head_dim
        self.p_dropout = config.attention_probs_dropout_prob
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)

    def forward(self, hidden: Tensor, bias: Tensor) -> Tensor:
        batch, length, width = hidden.shape
        qkv = self.Wqkv(hidden).view(batch, length, 3, self.num_attention_heads, self.attention_head_size)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [batch, heads, length, head_dim]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.p_dropout if self.training else 0.0)
        return out.transpose(1, 2).reshape(batch, length, width)


class _SelfOutput(nn.Module):
    def __init__(self, config: DnaBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class _Attention(nn.Module):
    def __init__(self, config: DnaBertConfig) -> None:
        super().__init__()
        self.self = _SelfAttention(config)  # the published attribute name (key "attention.self.Wqkv")
        self.output = _SelfOutput(config)

    def forward(self, hidden: Tensor, bias: Tensor) -> Tensor:
        return self.output(self.self(hidden, bias), hidden)


class _GatedMLP(nn.Module):
    """GEGLU feed-forward with post-LayerNorm."""

    def __init__(self, config: DnaBertConfig) -> None:
        super().__init__()
        self.intermediate_size = config.intermediate_size
        self.gated_layers = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.act = nn.GELU(approximate="none")
        self.wo = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden: Tensor) -> Tensor:
        projected = self.gated_layers(hidden)
        gated, linear = projected[..., : self.intermediate_size], projected[..., self.intermediate_size :]
        return self.layernorm(self.wo(self.dropout(self.act(gated) * linear)) + hidden)


class _Layer(nn.Module):
    def __init__(self, config: DnaBertConfig) -> None:
        super().__init__()
        self.attention = _Attention(config)
        self.mlp = _GatedMLP(config)

    def forward(self, hidden: Tensor, bias: Tensor) -> Tensor:
        return self.mlp(self.attention(hidden, bias))


class _Encoder(nn.Module):
    def __init__(self, config: DnaBertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(config) for _ in range(config.num_hidden_layers))


class _Pooler(nn.Module):
    """``tanh(dense(h[:, 0]))``: in the published checkpoint, never used by VirNucPro (it mean-pools)."""

    def __init__(self, config: DnaBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class DnaBertModel(nn.Module):
    """DNABERT-S's encoder: ``forward`` returns the last hidden state ``[batch, seq, hidden]``.

    The pooler is kept so that ``state_dict()`` is the published checkpoint's
    key set; ``forward`` does not use it.
    """

    def __init__(self, config: DnaBertConfig) -> None:
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise DimensionError(
                "DNABERT config: hidden size is not a multiple of the number of attention heads",
                expected="hidden_size % num_attention_heads == 0",
                found=f"hidden_size={config.hidden_size}, num_attention_heads={config.num_attention_heads}",
                fix="fix config.json, or use dnabert_config.FULL_CONFIG / TINY_CONFIG",
            )
        self.config = config
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)
        self.pooler = _Pooler(config)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Last hidden state; zero at padded positions (``attention_mask == 0``), as published.

        Args:
            input_ids: ``[batch, seq]`` token ids (pad with the tokenizer's ``[PAD]``, id 3).
            attention_mask: ``[batch, seq]``, 1 for tokens, 0 for padding; ``None``: no padding.
        """
        if input_ids.dim() != 2:
            raise InputError("DNABERT input ids must be a [batch, seq] tensor", found=f"shape {tuple(input_ids.shape)}")
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise InputError(
                "DNABERT attention mask and input ids differ in shape",
                expected=f"{tuple(input_ids.shape)}",
                found=f"{tuple(attention_mask.shape)}",
            )
        hidden = self.embeddings(input_ids)
        bias = attention_bias(
            self.config.num_attention_heads, input_ids.shape[1], attention_mask, dtype=hidden.dtype, device=hidden.device
        )
        for layer in self.encoder.layer:
            hidden = layer(hidden, bias)
        if attention_mask is not None:
            hidden = hidden * attention_mask.to(dtype=hidden.dtype)[..., None]
        return hidden


def random_dnabert(config: DnaBertConfig, seed: int, *, device: torch.device | str | None = None) -> DnaBertModel:
    """A seeded random DNABERT in eval mode: BERT initialisation (normal(0, 0.02), LayerNorm 1/0).

    As transformers' ``BertPreTrainedModel`` initialises: Linear and Embedding
    weights ~ N(0, ``initializer_range``), biases 0, the ``padding_idx`` row 0,
    LayerNorm weight 1 and bias 0. The global RNG is not touched; the same seed
    on the same device type gives the same weights.

    Args:
        device: where to build it; default: the current default device (so it
            honours ``with torch.device(...)``). On ``meta`` nothing is initialised.
    """
    target = torch.device(device) if device is not None else torch.get_default_device()
    with torch.device("meta"):
        model = DnaBertModel(config)  # no memory and no default init; everything is set below
    model.to_empty(device=target)
    if target.type != "meta":
        _initialise(model, config, torch.Generator(device=target).manual_seed(seed))
    return model.eval()


def _initialise(module: nn.Module, config: DnaBertConfig, generator: torch.Generator) -> None:
    """BERT initialisation of every submodule of ``module``, in registration order."""
    std = config.initializer_range
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.Linear):
                sub.weight.normal_(0.0, std, generator=generator)
                if sub.bias is not None:
                    sub.bias.zero_()
            elif isinstance(sub, nn.Embedding):
                sub.weight.normal_(0.0, std, generator=generator)
                if sub.padding_idx is not None:
                    sub.weight[sub.padding_idx].zero_()
            elif isinstance(sub, nn.LayerNorm):
                sub.weight.fill_(1.0)
                sub.bias.zero_()


# --------------------------------------------------------------------------- checkpoints


def _read_state(directory: Path) -> tuple[dict[str, Tensor], Path]:
    """The checkpoint's tensors and the file that stands for them, in any of the hub's weight layouts.

    ``model.safetensors`` first, then a sharded safetensors index, ``pytorch_model.bin`` and a sharded
    ``.bin`` index (:mod:`virnucpro_core.models.hub_weights`; ``.bin`` files with ``weights_only=True``).
    """
    weights = find_weights(directory, model="DNABERT-S", hub_id=HUB_ID)
    return weights.state_dict(), weights.path


def published_to_model_state(state: Mapping[str, Tensor], model: DnaBertModel, source: str = "checkpoint") -> dict[str, Tensor]:
    """Map a published checkpoint's entries onto ``model``'s keys; raise once on any mismatch.

    Strips the ``bert.`` prefix of masked-LM checkpoints, skips heads we do not
    use (logged at debug level), and collects every missing key, unexpected key
    and shape mismatch into a single error. Missing pooler entries are not an
    error (masked-LM checkpoints have none; ``forward`` does not use it), so
    load the result with ``strict=False`` or check ``missing_keys`` yourself.
    """
    expected = model.state_dict()
    strip = any(key.startswith(_PREFIX) for key in state)
    mapped: dict[str, Tensor] = {}
    ignored: list[str] = []
    for key, value in state.items():
        name = key[len(_PREFIX) :] if strip and key.startswith(_PREFIX) else key
        if name.startswith(_IGNORED_PREFIXES) or name in _IGNORED_KEYS:
            ignored.append(key)
        else:
            mapped[name] = value
    if ignored:
        log.debug("%s: ignored %d entries DNABERT-S embedding does not use: %s", source, len(ignored), ", ".join(sorted(ignored)))

    missing = [k for k in expected if k not in mapped and not k.startswith(_OPTIONAL_PREFIXES)]
    unexpected = sorted(k for k in mapped if k not in expected)
    wrong_shape = [
        f"{k} {tuple(mapped[k].shape)} (model: {tuple(expected[k].shape)})"
        for k in expected
        if k in mapped and tuple(mapped[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong_shape:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing: " + ", ".join(missing))
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected: " + ", ".join(unexpected))
        if wrong_shape:
            problems.append(f"{len(wrong_shape)} of another shape: " + ", ".join(wrong_shape))
        error = DimensionError if not (missing or unexpected) else VirNucProError
        raise error(
            f"{source} does not match the DNABERT-S architecture of its config.json",
            expected=f"{len(expected)} entries named as in {HUB_ID}'s pytorch_model.bin (optionally 'bert.'-prefixed, "
            "with 'cls.*' heads)",
            found="; ".join(problems),
            fix="check that config.json belongs to these weights, or re-download the model repository",
        )
    absent_optional = [k for k in expected if k not in mapped]
    if absent_optional:
        log.debug("%s has no %s (a masked-LM checkpoint); forward() does not use it", source, ", ".join(absent_optional))
    return mapped


def load_dnabert(
    directory: str | os.PathLike,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    config: DnaBertConfig | None = None,
) -> DnaBertModel:
    """Load DNABERT-S from a directory in the published layout, in eval mode.

    Reads ``config.json`` and the weights in any of the hub's layouts:
    ``model.safetensors`` (preferred), ``pytorch_model.bin``
    (``torch.load(weights_only=True)``) or either one sharded with an index.
    Accepts the published files as they are: ``bert.`` prefix or none,
    ``cls.*`` heads, with or without the pooler. ``config``: the directory's
    config as :func:`read_dnabert_config` read it (default: read it here).
    """
    directory = Path(directory)
    config = config if config is not None else read_dnabert_config(directory)
    state, path = _read_state(directory)
    with torch.device("meta"):
        model = DnaBertModel(config)  # the checkpoint's tensors become the parameters (assign=True)
    missing = model.load_state_dict(published_to_model_state(state, model, str(path)), strict=False, assign=True).missing_keys
    if missing:  # only the pooler can be absent (checked above): give it BERT initialisation, seed 0
        model.pooler.to_empty(device="cpu")
        _initialise(model.pooler, config, torch.Generator().manual_seed(0))
    model = model.to(device=device if device is not None else "cpu", dtype=dtype).eval()
    log.debug("loaded DNABERT (%d layers, %d-d) from %s", config.num_hidden_layers, config.hidden_size, path)
    return model


def save_dnabert(model: DnaBertModel, directory: str | os.PathLike, *, tokenizer: Any = None) -> None:
    """Write ``model`` in the published layout of zhihan1996/DNABERT-S; each file atomically.

    ``config.json`` (the hub's bookkeeping, 4-space indent), ``pytorch_model.bin``
    (unprefixed keys incl. the pooler, as the hub's file) and, with
    ``tokenizer``, ``tokenizer.json``, ``tokenizer_config.json`` and
    ``special_tokens_map.json``. A ``model.safetensors`` left by an earlier
    save is removed, since loaders prefer it over ``pytorch_model.bin``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = next(model.parameters()).dtype
    config = dataclasses.replace(model.config, torch_dtype=str(dtype).removeprefix("torch."))
    atomic_write_text(directory / CONFIG_NAME, config.to_json_string())
    state = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
    atomic_torch_save(state, directory / BIN_NAME)
    stale = directory / SAFETENSORS_NAME
    if stale.exists():
        log.info("removed %s: it would shadow the %s just written", stale, BIN_NAME)
        stale.unlink()
    if tokenizer is not None:
        write_tokenizer_files(tokenizer, directory)


__all__: Sequence[str] = (
    "DnaBertModel",
    "alibi_slopes",
    "alibi_bias",
    "attention_bias",
    "random_dnabert",
    "load_dnabert",
    "save_dnabert",
    "published_to_model_state",
)
