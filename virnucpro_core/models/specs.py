"""The model registry: each supported embedder's spec (family, widths, pooling, hub id) and published identity."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from virnucpro_core.defaults import DTYPES as DTYPE_NAMES, MODELS, SIZES
from virnucpro_core.errors import InputError
from virnucpro_core.models import dnabert_config, esm_config

DTYPES: dict[str, torch.dtype] = {name: getattr(torch, name) for name in DTYPE_NAMES}

# VirNucPro averaged ESM residues 1..min(L, 1024) of the full-length output.
ESM_POOL_MAX_RESIDUES = 1024


@dataclass(frozen=True)
class ModelIdentity:
    """What a model is, as its config.json states it: the fields that tell one model from another.

    Width alone does not: ESM-2 650M (``facebook/esm2_t33_650M_UR50D``) and
    FastESM2_650 are both 33 layers of 1280 and differ in ``model_type``
    (``esm`` vs ``fast_esm``); another 2560-d model is not ESM2 3B unless its
    depth, heads and vocabulary are too.
    """

    model_type: str | None
    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    vocab_size: int

    def describe(self) -> str:
        """``model_type fast_esm, 33 layers × 1280, 20 heads, vocabulary 33``."""
        return (f"model_type {self.model_type}, {self.num_hidden_layers} layers × {self.hidden_size}, "
                f"{self.num_attention_heads} heads, vocabulary {self.vocab_size}")

    def differences(self, expected: ModelIdentity) -> list[str]:
        """Every field where this identity is not ``expected``: ``model_type "esm" (expected "fast_esm")``."""
        return [f"{name} {json.dumps(getattr(self, name))} (expected {json.dumps(getattr(expected, name))})"
                for name in IDENTITY_FIELDS if getattr(self, name) != getattr(expected, name)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


IDENTITY_FIELDS = tuple(f.name for f in fields(ModelIdentity))


@dataclass(frozen=True)
class ModelSpec:
    """What the pipeline knows about one language model.

    Attributes:
        name: registry name (``esm2_3b``, ``fastesm2_650``, ``dnabert_s``).
        hub_id: Hugging Face repository of the pretrained weights.
        identity: what the real model is (model type, layers, width, heads, vocabulary);
            a directory loaded as this model must state it, or its tiny stand-in's.
        family: ``esm`` (protein) or ``dnabert`` (DNA); decides tokenizer and pooling.
        pooling: how a sequence's vector is made from the last hidden state.
        display_name: name for reports and messages.
    """

    name: str
    hub_id: str
    identity: ModelIdentity
    family: str
    pooling: str
    display_name: str

    @property
    def dim(self) -> int:
        """Embedding width of the real model."""
        return self.identity.hidden_size

    def dim_for(self, size: str | None) -> int:
        """Embedding width of a model of ``size`` (``None`` or ``full``: the real width)."""
        if size in (None, "full", "pretrained"):
            return self.dim
        if size == "tiny":
            return int(standin_config(self.name, "tiny").hidden_size)
        raise InputError(f"unknown model size {size!r}", expected=" or ".join(SIZES), found=repr(size))

    def identity_for(self, size: str | None) -> ModelIdentity:
        """The identity a directory of ``size`` states: the real model's (``full``), or its tiny stand-in's."""
        if size in (None, "full", "pretrained"):
            return self.identity
        self.dim_for(size)  # an unknown size is refused with the allowed ones
        config = standin_config(self.name, size)
        return ModelIdentity(self.identity.model_type, int(config.num_hidden_layers), int(config.hidden_size),
                             int(config.num_attention_heads), int(config.vocab_size))


_ESM_POOLING = (
    f"mean of the last hidden state over residue positions 1..min(L, {ESM_POOL_MAX_RESIDUES}) "
    "(no <cls>, no <eos>, no padding; the whole sequence goes through the model)"
)


_DNABERT_POOLING = "mean of the last hidden state over every non-padding token ([CLS] and [SEP] included)"


_POOLING = {"esm": _ESM_POOLING, "dnabert": _DNABERT_POOLING}


# The registry: each model of virnucpro_core.defaults.MODELS (names, hub ids and identities, which the CLI reads
# without importing torch) with what the library adds.
SPECS: dict[str, ModelSpec] = {
    model.name: ModelSpec(model.name, model.hub_id, ModelIdentity(*model.identity), model.family,
                          _POOLING[model.family], model.display_name)
    for model in MODELS
}


# Identities a directory offered as a registry model may have that have a name, for messages.
KNOWN_IDENTITIES: dict[ModelIdentity, str] = {
    **{spec.identity: f"{spec.display_name} ({spec.hub_id})" for spec in SPECS.values()},
    ModelIdentity("esm", 33, 1280, 20, 33): "ESM-2 650M (facebook/esm2_t33_650M_UR50D)",
}


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; the error lists the allowed names."""
    try:
        return SPECS[name]
    except KeyError:
        raise InputError(
            f"unknown model {name!r}",
            expected="one of " + ", ".join(SPECS),
            found=repr(name),
            fix="pass --model " + " | ".join(SPECS),
        ) from None


def merged_widths(size: str | None, dna_model: str = "dnabert_s") -> dict[int, str]:
    """Merged width (the DNA model's plus a protein model's, at ``size``) → that protein model.

    The one place a merged feature width is read as an embedder; a width two
    protein models would share is left out, so it never names either.
    """
    dna = get_spec(dna_model).dim_for(size)
    widths = [(dna + spec.dim_for(size), name) for name, spec in SPECS.items() if spec.family == "esm"]
    counts = Counter(width for width, _ in widths)
    return {width: name for width, name in widths if counts[width] == 1}


def _check_choice(value: str, allowed, what: str) -> str:
    if value not in allowed:
        raise InputError(f"unknown {what} {value!r}", expected="one of " + ", ".join(allowed), found=repr(value))
    return value


def standin_config(name: str, size: str):
    """The architecture config of a stand-in: ``EsmConfig`` or ``DnaBertConfig``."""
    spec = get_spec(name)
    _check_choice(size, SIZES, "model size")
    if spec.family == "esm":
        return esm_config.standin_config_file(name, size).config
    return dnabert_config.TINY_CONFIG if size == "tiny" else dnabert_config.FULL_CONFIG
