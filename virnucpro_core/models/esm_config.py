"""ESM-2 and FastESM2 config.json: the checks, the defaults that fill absent keys, and the architecture in effect.

Both models run on transformers' :class:`~transformers.EsmConfig`, and a key
absent from config.json takes whichever default the class reading it has —
and the two classes that read these files disagree:

=========================  =====================  ============================
key                        transformers EsmConfig  FastPLMs FastEsmConfig
=========================  =====================  ============================
position_embedding_type    ``absolute``           ``rotary``
token_dropout              ``False``              ``True`` (embeddings × 0.88)
layer_norm_eps             ``1e-12``              ``1e-12``
hidden_size / layers /     768 / 12 / 12 / 3072   768 / 12 / 12 / 3072
heads / intermediate
vocab_size, pad/mask ids   ``None``               ``None`` (no default)
=========================  =====================  ============================

(FastEsmConfig as in FastPLMs' ``esm2/modeling_fastesm.py``; its older
top-level ``modeling_fastesm.py`` defaulted ``position_embedding_type`` to
``absolute`` and had no token-dropout rescaling at all.) Each of these keys
changes every vector, so nothing is left to ``EsmConfig``:

* ``model_type: esm`` (facebook/esm2_*): every key the encoder depends on
  must be in config.json; a missing one is an :class:`InputError` naming the
  key and the value ESM-2 publishes.
* ``model_type: fast_esm`` (Synthyra/FastESM2_*): absent keys get
  :data:`FASTESM_CONFIG_DEFAULTS` — what the model's own code would use — and
  each filled key is logged. Keys FastEsmConfig has no default for
  (``vocab_size``, ``pad_token_id``, ``mask_token_id``) stay required.

:meth:`EsmConfigFile.architecture` records the keys that change numbers, and
which of them were filled, in the model's provenance and so in every feature
file's meta. Checks against the weights live in :mod:`virnucpro_core.models.esm`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virnucpro_core.errors import InputError, WeightsNotFoundError

log = logging.getLogger(__name__)

# Architecture fields of the published ESM-2 config.json files.
_ESM_COMMON: dict[str, Any] = {
    "attention_probs_dropout_prob": 0.0,
    "classifier_dropout": None,
    "emb_layer_norm_before": False,
    "esmfold_config": None,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "initializer_range": 0.02,
    "is_folding_model": False,
    "layer_norm_eps": 1e-05,
    "mask_token_id": 32,
    "max_position_embeddings": 1026,
    "pad_token_id": 1,
    "position_embedding_type": "rotary",
    "token_dropout": True,
    "use_cache": True,
    "vocab_list": None,
    "vocab_size": 33,
}


def _shape(layers: int, hidden: int, heads: int, intermediate: int) -> dict[str, int]:
    return {
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
    }


_ESM_SHAPES: dict[tuple[str, str], dict[str, int]] = {
    ("esm2_3b", "full"): _shape(36, 2560, 40, 10240),
    ("fastesm2_650", "full"): _shape(33, 1280, 20, 5120),
    # Tiny pair mirrors the real one: ESM2 3B is deeper and wider. Its ~12x the
    # matmul work per token (real pair: ~4.4x) keeps the CPU smoke timings
    # dominated by the models rather than by per-sequence Python overhead.
    ("esm2_3b", "tiny"): _shape(6, 128, 8, 512),
    ("fastesm2_650", "tiny"): _shape(2, 64, 4, 256),
}
# What each hub repository's config.json says besides the architecture.
_ESM_HUB_FIELDS: dict[str, dict[str, Any]] = {
    "esm2_3b": {"architectures": ["EsmForMaskedLM"], "model_type": "esm", "torch_dtype": "float32"},
    "fastesm2_650": {
        "_name_or_path": "Synthyra/FastESM2_650",
        "architectures": ["FastEsmForMaskedLM"],
        "auto_map": {
            "AutoConfig": "modeling_fastesm.FastEsmConfig",
            "AutoModel": "modeling_fastesm.FastEsmModel",
            "AutoModelForMaskedLM": "modeling_fastesm.FastEsmForMaskedLM",
        },
        "model_type": "fast_esm",
        "torch_dtype": "float32",
    },
}
# config.json keys that are hub bookkeeping, not EsmConfig fields.
_CONFIG_BOOKKEEPING = {
    "architectures",
    "auto_map",
    "model_type",
    "torch_dtype",
    "dtype",
    "transformers_version",
    "_name_or_path",
    "attn_backend",  # FastPLMs' choice of attention kernel; we run SDPA
}
MODEL_TYPES = ("esm", "fast_esm")

# config.json keys the encoder depends on, and what ESM-2's published configs set them to. For
# model_type esm a missing one is an error, not a default (EsmConfig would fill token_dropout False,
# position_embedding_type absolute, layer_norm_eps 1e-12, and each changes every vector).
_ESM_REQUIRED_CONFIG: dict[str, Any] = {
    "hidden_size": None,  # None: the architecture itself, nothing to assume
    "num_hidden_layers": None,
    "num_attention_heads": None,
    "intermediate_size": None,
    "vocab_size": 33,
    "pad_token_id": 1,
    "mask_token_id": 32,
    "position_embedding_type": "rotary",
    "token_dropout": True,
    "layer_norm_eps": 1e-05,
}

# FastPLMs' FastEsmConfig.__init__ defaults (esm2/modeling_fastesm.py, the code FastESM2's hub
# repository runs with trust_remote_code) for the keys that reach the vectors. A fast_esm config.json
# without one of these keys means this value to the model's own code, so it means the same here.
# Its other defaults cannot change an extracted vector: dropout 0.1 (extraction runs without dropout),
# initializer_range 0.02 (the weights overwrite the initialisation), max_position_embeddings 1026
# (EsmConfig's too; rotary positions do not read it).
FASTESM_CONFIG_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "position_embedding_type": "rotary",
    "emb_layer_norm_before": None,  # falsy: no LayerNorm on the embeddings
    "token_dropout": True,
}
# FastEsmConfig defaults these to None: the model cannot be built without them.
FASTESM_REQUIRED = {"vocab_size": 33, "pad_token_id": 1, "mask_token_id": 32}
FASTESM_DEFAULTS_SOURCE = "FastPLMs FastEsmConfig (esm2/modeling_fastesm.py)"
# The key that reaches the vectors and that transformers' EsmConfig fills when ESM-2's config.json lacks it.
_ESMCONFIG_DEFAULTS: dict[str, Any] = {"emb_layer_norm_before": None}

# The keys that change the numbers, recorded with every feature file.
ARCHITECTURE_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "position_embedding_type",
    "token_dropout",
    "layer_norm_eps",
    "emb_layer_norm_before",
    "vocab_size",
    "pad_token_id",
    "mask_token_id",
)
POSITION_TYPES = ("rotary", "absolute")  # absolute is refused against the weights (esm.check_config_fits_weights)


# --------------------------------------------------------------------------- published configs


def esm_config_dict(name: str, size: str) -> dict[str, Any]:
    """config.json of an ESM model as its hub repository publishes it (``size``: ``tiny`` or ``full``)."""
    if (name, size) not in _ESM_SHAPES:
        raise InputError(
            f"no ESM configuration for {name!r} of size {size!r}",
            expected="esm2_3b or fastesm2_650, size tiny or full",
            found=f"{name!r}, {size!r}",
        )
    return {**_ESM_HUB_FIELDS[name], **_ESM_COMMON, **_ESM_SHAPES[(name, size)]}


def model_type_of(name: str) -> str:
    """``esm`` or ``fast_esm``: the model type of a registry model's hub repository."""
    return _ESM_HUB_FIELDS[name]["model_type"]


# --------------------------------------------------------------------------- checks and defaults


def _missing_keys(config_dict: dict[str, Any], model_type: str) -> tuple[list[str], dict[str, Any], str | None]:
    """Required keys that are missing (as messages), the defaults filled in for the others, and their source."""
    if model_type == "fast_esm":
        missing = [f"{key!r} (FastEsmConfig has no default; FastESM2_650 publishes {json.dumps(value)})"
                   for key, value in FASTESM_REQUIRED.items() if key not in config_dict]
        filled = {k: v for k, v in FASTESM_CONFIG_DEFAULTS.items() if k not in config_dict}
        return missing, filled, FASTESM_DEFAULTS_SOURCE
    missing = [
        f"{key!r} (ESM-2 publishes {json.dumps(value)})" if value is not None else f"{key!r} (no default: the architecture)"
        for key, value in _ESM_REQUIRED_CONFIG.items()
        if key not in config_dict
    ]
    filled = {k: v for k, v in _ESMCONFIG_DEFAULTS.items() if k not in config_dict}
    return missing, filled, "transformers EsmConfig"


def _contradictions(config: dict[str, Any], filled: dict[str, Any]) -> list[str]:
    """Values no ESM-2 or FastESM2 encoder has (checked after defaults are filled)."""
    problems = []
    kind = config.get("position_embedding_type")
    if kind not in POSITION_TYPES:
        problems.append(f"position_embedding_type {kind!r}: ESM-2 and FastESM2 use 'rotary'")
    if not isinstance(config.get("token_dropout"), bool):
        problems.append(f"token_dropout {config.get('token_dropout')!r} is not true or false")
    before = config.get("emb_layer_norm_before")
    if before is not None and not isinstance(before, bool):
        problems.append(f"emb_layer_norm_before {before!r} is not true, false or null")
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        problems.append(f"hidden_act {act!r}: ESM-2 uses the exact (erf) gelu")
    hidden, heads = config.get("hidden_size"), config.get("num_attention_heads")
    # A filled-in width or head count is compared with the weights instead, where the error can say so.
    stated = not {"hidden_size", "num_attention_heads"} & set(filled)
    if stated and isinstance(hidden, int) and isinstance(heads, int) and (heads <= 0 or hidden % heads):
        problems.append(f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    return problems


def esm_config(config_dict: dict[str, Any]):
    """transformers' ``EsmConfig`` of a complete config dict (no checks: stand-ins and checked files)."""
    # transformers takes seconds to import; loaded only when a model is built
    from transformers import EsmConfig

    fields = {k: v for k, v in config_dict.items() if k not in _CONFIG_BOOKKEEPING}
    # Dropout is a training device; extraction must be deterministic.
    fields.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, is_decoder=False)
    return EsmConfig(**fields, attn_implementation="sdpa")


@dataclass(frozen=True)
class EsmConfigFile:
    """A checked ESM config: the ``EsmConfig`` it builds and the defaults that filled absent keys.

    Attributes:
        config: transformers' ``EsmConfig`` the encoder is built from.
        model_type: ``esm`` or ``fast_esm``.
        filled: keys absent from config.json and the default each got.
        defaults_from: the class whose defaults those are.
        path: the config.json read (None for a stand-in's built-in config).
    """

    config: Any
    model_type: str
    filled: dict[str, Any] = field(default_factory=dict)
    defaults_from: str | None = None
    path: Path | None = None

    def architecture(self) -> dict[str, Any]:
        """The keys that change the numbers, in effect, and which were filled by default (JSON-ready)."""
        record: dict[str, Any] = {"model_type": self.model_type}
        record.update({key: getattr(self.config, key) for key in ARCHITECTURE_KEYS})
        record["emb_layer_norm_before"] = bool(record["emb_layer_norm_before"])  # None and False: the same network
        record["filled_by_default"] = dict(sorted(self.filled.items()))
        record["defaults_from"] = self.defaults_from if self.filled else None
        return record

    def origin(self, key: str) -> str:
        """``"config.json"`` or where the value of a filled key came from, for error messages."""
        if key in self.filled:
            return f"absent from config.json; {self.defaults_from}'s default"
        return "config.json"


def standin_config_file(name: str, size: str) -> EsmConfigFile:
    """The built-in (complete, published-style) config of a stand-in."""
    return EsmConfigFile(esm_config(esm_config_dict(name, size)), model_type_of(name))


def parse_esm_config(config_dict: dict[str, Any], source: Path) -> EsmConfigFile:
    """Check a config.json read from ``source`` and fill what its model type lets us fill.

    Raises:
        InputError: another model type, a required key missing, or values no ESM-2 encoder has
            (all problems of the file at once, each missing key with its published value).
    """
    model_type = config_dict.get("model_type")
    if model_type not in MODEL_TYPES:
        raise InputError(
            f"{source} is not an ESM-2 configuration",
            expected="model_type 'esm' (facebook/esm2_*) or 'fast_esm' (Synthyra/FastESM2_*)",
            found=f"model_type {model_type!r}",
            fix="point the model-path option at the protein model's directory",
        )
    missing, filled, defaults_from = _missing_keys(config_dict, model_type)
    complete = {**filled, **config_dict}
    contradictory = _contradictions(complete, filled)
    if missing or contradictory:
        required = FASTESM_REQUIRED if model_type == "fast_esm" else _ESM_REQUIRED_CONFIG
        raise InputError(
            f"{source} cannot be read as an ESM-2 configuration",
            expected="the model's published config.json: "
            + ", ".join(f"{k} {json.dumps(v)}" for k, v in required.items() if v is not None)
            + ("" if model_type == "fast_esm" else
               ", and its hidden_size, num_hidden_layers, num_attention_heads, intermediate_size"),
            found="; ".join(([f"missing {', '.join(missing)}"] if missing else []) + contradictory),
            fix="re-download the repository's config.json; if the model really was trained with the value "
            "shown, add that key to config.json",
        )
    if filled:
        log.warning(
            "%s lacks %s; using %s's defaults, as the model's own code would: %s "
            "(add the keys to config.json to state them; they are recorded in the feature files' meta)",
            source, ", ".join(filled), defaults_from, ", ".join(f"{k}={json.dumps(v)}" for k, v in filled.items()),
        )  # fmt: skip
    return EsmConfigFile(esm_config(complete), model_type, filled, defaults_from if filled else None, source)


# --------------------------------------------------------------------------- reading


def read_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{directory} has no config.json",
            expected="the model's hub repository layout: config.json + model.safetensors (or pytorch_model.bin)",
            found=", ".join(sorted(p.name for p in directory.iterdir())) or "an empty directory",
            fix="download the whole repository (`hf download <hub id> --local-dir DIR`)",
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        config = error
    if not isinstance(config, dict):
        raise InputError(
            f"{path} is not a JSON object",
            expected="the model's config.json (a JSON object of its settings)",
            found=f"{type(config).__name__}: {config}" if isinstance(config, Exception) else type(config).__name__,
            fix="re-download the repository's config.json",
        )
    return config


def read_esm_config(directory: str | os.PathLike) -> EsmConfigFile:
    """The checked config of an ESM-2 or FastESM directory (``model_type`` ``esm`` or ``fast_esm``).

    Raises:
        InputError: another model type, a required key missing, or values that contradict ESM-2.
    """
    directory = Path(directory)
    return parse_esm_config(read_config(directory), directory / "config.json")
