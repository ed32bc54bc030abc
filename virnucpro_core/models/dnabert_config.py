"""DNABERT-S's ``config.json``: the architecture's fields, their checks, and the published and tiny configs.

:class:`DnaBertConfig` holds the fields of zhihan1996/DNABERT-S's ``config.json``
under their published names (the defaults are DNABERT-S's values) and writes the
file back in the hub's layout; :func:`read_dnabert_config` reads a model
directory's file before any weight. The network and its checkpoints live in
:mod:`virnucpro_core.models.dnabert`; this module imports no torch, so the model
registry (:mod:`virnucpro_core.models.specs`) names a stand-in's architecture
without the network's code, as :mod:`virnucpro_core.models.esm_config` does for ESM.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virnucpro_core.errors import InputError, WeightsNotFoundError
from virnucpro_core.models.dnabert_tokenizer import HUB_ID

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
BIN_NAME = "pytorch_model.bin"

# config.json entries that describe the hub repository, not the architecture;
# the values are those of zhihan1996/DNABERT-S.
_PUBLISHED_BOOKKEEPING: dict[str, Any] = {
    "_name_or_path": "zhihan1996/DNABERT-2-117M",
    "architectures": ["BertModel"],
    "auto_map": {
        "AutoConfig": "configuration_bert.BertConfig",
        "AutoModel": "bert_layers.BertModel",
        "AutoModelForMaskedLM": "bert_layers.BertForMaskedLM",
        "AutoModelForSequenceClassification": "bert_layers.BertForSequenceClassification",
    },
    "model_type": "bert",
}

# config.json keys that shape the network. A missing one is an error rather than our default: the
# reference code's BertConfig would fill in BERT's values (vocab_size 30522), not DNABERT-S's.
_ARCHITECTURE_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")


def _check_architecture(values: Mapping[str, Any], path: Path) -> None:
    """Every architecture key present as a positive integer, and ``layer_norm_eps`` a positive number."""
    defaults = DnaBertConfig()
    problems = [
        f"missing {key!r} (DNABERT-S publishes {getattr(defaults, key)})"
        for key in _ARCHITECTURE_KEYS
        if key not in values
    ]
    problems += [
        f"{key} {values[key]!r} is not a positive integer"
        for key in _ARCHITECTURE_KEYS
        if key in values and (not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] <= 0)
    ]
    eps = values.get("layer_norm_eps", defaults.layer_norm_eps)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or eps <= 0:
        problems.append(f"layer_norm_eps {eps!r} is not a positive number")
    if problems:
        raise InputError(
            f"{path} cannot be read as a DNABERT-S configuration",
            expected="zhihan1996/DNABERT-S's config.json: "
            + ", ".join(f"{k} {getattr(defaults, k)}" for k in _ARCHITECTURE_KEYS),
            found="; ".join(problems),
            fix="re-download the repository's config.json; if the model really has the value shown, add that key",
        )


@dataclass(frozen=True)
class DnaBertConfig:
    """The architecture, with the field names of the published ``config.json``.

    Defaults are DNABERT-S's values. Entries of a config file that are not
    fields here (``architectures``, ``auto_map``, ``problem_type``, ...) are kept
    in ``extra`` and written back by :meth:`to_dict`.
    """

    vocab_size: int = 4096
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    alibi_starting_size: int = 512
    classifier_dropout: float | None = None
    position_embedding_type: str = "absolute"
    use_cache: bool = True
    gradient_checkpointing: bool = False
    torch_dtype: str = "float32"
    transformers_version: str = "4.28.0"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DnaBertConfig:
        """A config from ``config.json``'s entries; unknown entries go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in values.items() if k in names}
        extra = {k: v for k, v in values.items() if k not in names}
        return cls(**known, extra=extra)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> DnaBertConfig:
        """Read a published (or :func:`save_dnabert`-written) ``config.json``."""
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(
                f"cannot read the DNABERT-S config {path}",
                expected="a JSON object as in zhihan1996/DNABERT-S's config.json",
                found=f"{type(error).__name__}: {error}",
                fix="re-download the model repository, or point at the directory that holds config.json",
            ) from error
        if not isinstance(values, dict):
            raise InputError(f"the DNABERT-S config {path} is not a JSON object", found=type(values).__name__)
        _check_architecture(values, path)
        config = cls.from_dict(values)
        if config.extra:
            log.debug("%s: entries kept as bookkeeping, not architecture: %s", path, ", ".join(sorted(config.extra)))
        return config

    def to_dict(self) -> dict[str, Any]:
        """The published ``config.json`` layout: hub bookkeeping and fields, keys sorted."""
        values: dict[str, Any] = dict(_PUBLISHED_BOOKKEEPING)
        values.update(self.extra)
        values.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"})
        return dict(sorted(values.items()))

    def to_json_string(self) -> str:
        """``config.json`` text, formatted as the hub's file (4-space indent, no final newline)."""
        return json.dumps(self.to_dict(), indent=4)


FULL_CONFIG = DnaBertConfig()
# Same code path, CPU-sized. Six heads is not a power of two, so every tiny
# forward exercises ALiBi's interleaved-slope branch that 12-head DNABERT-S uses.
TINY_CONFIG = DnaBertConfig(hidden_size=48, num_hidden_layers=2, num_attention_heads=6, intermediate_size=96)


def read_dnabert_config(directory: str | os.PathLike) -> DnaBertConfig:
    """The checked ``config.json`` of a DNABERT-S directory (read before any weight).

    Raises:
        WeightsNotFoundError: no such directory, or no config.json in it.
        InputError: config.json is not a DNABERT-S configuration.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise WeightsNotFoundError(
            f"no DNABERT-S model at {directory}",
            expected=f"a copy of {HUB_ID}: {CONFIG_NAME} and {SAFETENSORS_NAME} or {BIN_NAME}",
            found="no such directory" if not directory.is_dir() else f"no {CONFIG_NAME} there",
            fix=f"`hf download {HUB_ID} --local-dir {directory}` on a machine with network",
        )
    return DnaBertConfig.from_json_file(config_path)
