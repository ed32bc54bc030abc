"""A FastEsm-style protein encoder in plain torch, written from the public description — not from our loader.

FastESM2 (Synthyra/FastESM2_650) is ESM-2's architecture: token embeddings
(optionally "token dropout": ``<mask>`` rows zeroed and every row rescaled by
``(1 - 0.15 * 0.8) / (1 - observed mask ratio)``), padding rows zeroed, then
pre-LayerNorm transformer layers — ``x + Wo·attn(LN(x))`` with rotary position
embeddings on the (scaled) queries and keys, then ``x + W2·gelu(W1·LN(x))`` —
and a final LayerNorm. Module names follow the hub checkpoint's keys
(``esm.encoder.layer.<i>.attention.self.query.weight`` ...), so the state
dict of :class:`FastEsmReference` *is* the checkpoint.

Two uses:

* ``tests/models/test_esm_fastesm2_reference.py`` builds :class:`FastEsmReference` with
  seeded weights and compares our ``load_model`` against it.
* ``tests/extract/test_parity.py`` copies this file into a fake hub snapshot as
  ``modeling_fastesm.py`` with ``auto_map`` in config.json, so that
  ``AutoModel.from_pretrained(dir, trust_remote_code=True)`` runs it as the
  model's own code (:class:`FastEsmConfig`, :class:`FastEsmModel`). Hence it
  imports at module level what FastPLMs' ``modeling_fastesm.py`` imports
  (:data:`virnucpro_core.extract.parity.REMOTE_CODE_IMPORTS`: torch, transformers,
  einops, tqdm, networkx, numpy; einops' ``rearrange`` splits and merges the
  heads, as there), so that the fake snapshot needs what the real one needs
  and transformers checks the same imports before running it.

:data:`RESCALE_TOKEN_DROPOUT` set to False gives the older FastPLMs revision,
whose embedding layer applied no token-dropout rescaling.
"""

from __future__ import annotations

import math
import sqlite3  # noqa: F401 - the real file imports it (its embedding database); kept for the same imports

import networkx as nx  # noqa: F401 - unused here; imported because the real file imports it at module level
import numpy as np  # noqa: F401 - likewise
import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm  # noqa: F401 - likewise

RESCALE_TOKEN_DROPOUT = True
MASK_RATIO_TRAIN = 0.15 * 0.8  # the masking ESM-2 was trained with: 15 % of tokens, 80 % of those <mask>


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


class Rotary(nn.Module):
    """RoFormer rotary embeddings: pairs ``(i, i + d/2)`` of each head rotated by ``position * inv_freq[i]``."""

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)))

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(q.shape[-2], device=q.device, dtype=self.inv_freq.dtype)
        angles = torch.outer(positions, self.inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        cos, sin = angles.cos().to(q.dtype), angles.sin().to(q.dtype)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class Dense(nn.Module):
    """A linear layer under the name ``dense`` (the checkpoint's ``*.output.dense``, ``*.intermediate.dense``)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query, self.key, self.value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.rotary_embeddings = Rotary(self.head_dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        def split(t: torch.Tensor) -> torch.Tensor:
            return rearrange(t, "b s (h d) -> b h s d", h=self.heads)

        q = split(self.query(x)) / math.sqrt(self.head_dim)
        k, v = split(self.key(x)), split(self.value(x))
        q, k = self.rotary_embeddings(q, k)
        scores = (q @ k.transpose(-1, -2)).masked_fill(~keep[:, None, None, :], float("-inf"))
        return rearrange(scores.softmax(dim=-1) @ v, "b h s d -> b s (h d)")


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, eps: float) -> None:
        super().__init__()
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.self = SelfAttention(hidden, heads)
        self.output = Dense(hidden, hidden)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return x + self.output.dense(self.self(self.LayerNorm(x), keep))


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float) -> None:
        super().__init__()
        self.attention = Attention(hidden, heads, eps)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = Dense(hidden, intermediate)
        self.output = Dense(intermediate, hidden)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, keep)
        return x + self.output.dense(F.gelu(self.intermediate.dense(self.LayerNorm(x))))


class Encoder(nn.Module):
    def __init__(self, layers: int, hidden: int, heads: int, intermediate: int, eps: float) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(hidden, heads, intermediate, eps) for _ in range(layers))
        self.emb_layer_norm_after = nn.LayerNorm(hidden, eps=eps)


class Embeddings(nn.Module):
    def __init__(self, vocab: int, hidden: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)


class Body(nn.Module):
    """``esm.*`` of the checkpoint: embeddings, encoder layers, final LayerNorm."""

    def __init__(self, *, vocab_size: int, hidden_size: int, num_hidden_layers: int, num_attention_heads: int,
                 intermediate_size: int, layer_norm_eps: float, token_dropout: bool, mask_token_id: int) -> None:
        super().__init__()
        self.token_dropout, self.mask_token_id = token_dropout, mask_token_id
        self.embeddings = Embeddings(vocab_size, hidden_size)
        self.encoder = Encoder(num_hidden_layers, hidden_size, num_attention_heads, intermediate_size, layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        keep = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        x = self.embeddings.word_embeddings(input_ids)
        if self.token_dropout:
            masked = input_ids == self.mask_token_id
            x = x.masked_fill(masked[..., None], 0.0)
            if RESCALE_TOKEN_DROPOUT:
                observed = masked.sum(-1).float() / keep.sum(-1)
                x = x * ((1 - MASK_RATIO_TRAIN) / (1 - observed))[:, None, None].to(x.dtype)
        x = x * keep[..., None].to(x.dtype)
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return self.encoder.emb_layer_norm_after(x)


class FastEsmReference(nn.Module):
    """The plain-torch reference; its ``state_dict()`` has the hub checkpoint's ``esm.`` keys."""

    def __init__(self, **architecture) -> None:
        super().__init__()
        self.esm = Body(**architecture)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.esm(input_ids, attention_mask)


# --------------------------------------------------------------------------- as the model's own (remote) code

from transformers import PretrainedConfig, PreTrainedModel  # noqa: E402
from transformers.modeling_outputs import BaseModelOutput  # noqa: E402


class FastEsmConfig(PretrainedConfig):
    """FastPLMs' defaults: rotary positions, token dropout on, LayerNorm eps 1e-12."""

    model_type = "fast_esm"

    def __init__(self, vocab_size=None, mask_token_id=None, pad_token_id=None, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, layer_norm_eps=1e-12, position_embedding_type="rotary",
                 token_dropout=True, emb_layer_norm_before=None, **kwargs) -> None:
        super().__init__(pad_token_id=pad_token_id, mask_token_id=mask_token_id, **kwargs)
        self.vocab_size, self.hidden_size, self.num_hidden_layers = vocab_size, hidden_size, num_hidden_layers
        self.num_attention_heads, self.intermediate_size = num_attention_heads, intermediate_size
        self.layer_norm_eps, self.position_embedding_type = layer_norm_eps, position_embedding_type
        self.token_dropout, self.emb_layer_norm_before = token_dropout, emb_layer_norm_before
        self.mask_token_id = mask_token_id


class FastEsmModel(PreTrainedModel):
    config_class = FastEsmConfig
    base_model_prefix = "fastesm"  # as FastPLMs: no attribute of that name, so checkpoint keys load as they are

    def __init__(self, config: FastEsmConfig) -> None:
        super().__init__(config)
        self.esm = Body(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
                        intermediate_size=config.intermediate_size, layer_norm_eps=config.layer_norm_eps,
                        token_dropout=config.token_dropout, mask_token_id=config.mask_token_id)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Weights come from the checkpoint; anything left unloaded shows as a difference, not as a default."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs) -> BaseModelOutput:
        return BaseModelOutput(last_hidden_state=self.esm(input_ids, attention_mask))
