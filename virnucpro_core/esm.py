"""ESM-2 and FastESM2 on disk: config.json, vocabulary and checkpoint, in the hub repositories' layout.

The DNABERT-S counterpart is :mod:`virnucpro_core.dnabert`. Both ESM models run
on transformers' own :class:`~transformers.EsmModel` with SDPA attention:
FastESM2's hub code (``model_type: fast_esm``, ``trust_remote_code``) no longer
imports on current transformers, and with the same weights ``EsmModel`` gives
the same outputs (``tests/test_reference_esm.py`` pins both paths to fair-esm).

* config.json: every key the encoder depends on must be there and agree with
  ESM-2 (:func:`esm_config`); nothing is guessed.
* vocabulary: a directory's ``vocab.txt`` decides token ids; the built-in
  :data:`ESM2_VOCAB` (fair-esm's order) serves stand-ins and directories without one.
* checkpoint: ``esm.``-prefixed masked-LM keys, per-layer rotary tables, heads skipped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.errors import InputError, WeightsNotFoundError

log = logging.getLogger(__name__)

# The ESM-2 alphabet in token-id order: fair-esm's esm.data.Alphabet.from_architecture("ESM-1b")
# (esm/constants.py), the order of facebook/esm2_*'s vocab.txt. tests/test_reference_esm.py pins it
# to fair-esm itself: an earlier version had D and I swapped, and every self-written test passed.
ESM2_VOCAB: tuple[str, ...] = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C",
    "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
)  # fmt: skip

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
}


# --------------------------------------------------------------------------- config.json


def esm_config_dict(name: str, size: str) -> dict[str, Any]:
    """config.json of an ESM model as its hub repository publishes it (``size``: ``tiny`` or ``full``)."""
    if (name, size) not in _ESM_SHAPES:
        raise InputError(
            f"no ESM configuration for {name!r} of size {size!r}",
            expected="esm2_3b or fastesm2_650, size tiny or full",
            found=f"{name!r}, {size!r}",
        )
    return {**_ESM_HUB_FIELDS[name], **_ESM_COMMON, **_ESM_SHAPES[(name, size)]}


# config.json keys the encoder depends on, and what ESM-2's published configs set them to. A missing
# one is an error, not a default: transformers' EsmConfig and FastPLMs' FastEsmConfig would each fill
# in another value (EsmConfig: token_dropout False, layer_norm_eps 1e-12), and each changes every vector.
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


def _config_problems(config_dict: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Missing keys (with the value ESM-2 publishes) and contradictory values of an ESM config.json."""
    missing = [
        f"{key!r} (ESM-2 publishes {json.dumps(value)})" if value is not None else f"{key!r} (no default: the architecture)"
        for key, value in _ESM_REQUIRED_CONFIG.items()
        if key not in config_dict
    ]
    contradictory = []
    kind = config_dict.get("position_embedding_type", "rotary")
    if kind != "rotary":
        contradictory.append(
            f"position_embedding_type {kind!r}: ESM-2 and FastESM2 use rotary embeddings (ESM-1b's learned "
            "absolute positions are not loaded)"
        )
    if not isinstance(config_dict.get("token_dropout", True), bool):
        contradictory.append(f"token_dropout {config_dict['token_dropout']!r} is not true or false")
    act = config_dict.get("hidden_act", "gelu")
    if act != "gelu":
        contradictory.append(f"hidden_act {act!r}: ESM-2 uses the exact (erf) gelu")
    hidden, heads = config_dict.get("hidden_size"), config_dict.get("num_attention_heads")
    if isinstance(hidden, int) and isinstance(heads, int) and (heads <= 0 or hidden % heads):
        contradictory.append(f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    return missing, contradictory


def esm_config(config_dict: dict[str, Any], source: Path | None = None):
    """transformers' ``EsmConfig`` of a config.json; ``source`` (a file read from disk) is checked first.

    Raises:
        InputError: a key the encoder needs is missing, or values contradict ESM-2
            (all problems of the file at once, each missing key with the value we would assume).
    """
    from transformers import EsmConfig

    if source is not None:
        missing, contradictory = _config_problems(config_dict)
        if missing or contradictory:
            raise InputError(
                f"{source} cannot be read as an ESM-2 configuration",
                expected="the model's published config.json: "
                + ", ".join(f"{k} {json.dumps(v)}" for k, v in _ESM_REQUIRED_CONFIG.items() if v is not None)
                + ", and its hidden_size, num_hidden_layers, num_attention_heads, intermediate_size",
                found="; ".join(
                    ([f"missing {', '.join(missing)}"] if missing else []) + contradictory
                ),
                fix="re-download the repository's config.json; if the model really was trained with the value "
                "shown, add that key to config.json",
            )
    fields = {k: v for k, v in config_dict.items() if k not in _CONFIG_BOOKKEEPING}
    # Dropout is a training device; extraction must be deterministic.
    fields.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, is_decoder=False)
    return EsmConfig(**fields, attn_implementation="sdpa")


# --------------------------------------------------------------------------- vocabulary

# Tokens an ESM vocabulary must hold for the pipeline: the specials it uses and the
# twenty standard amino acids every translated frame is made of.
_ESM_REQUIRED_TOKENS = ("<cls>", "<pad>", "<eos>", "<unk>", "<mask>", *"ACDEFGHIKLMNPQRSTVWY")
BUILTIN_VOCAB_SOURCE = "built-in ESM-2 alphabet (fair-esm's Alphabet 'ESM-1b' order)"


def _read_vocab_file(vocab_file: Path) -> list[str]:
    tokens = [line.strip() for line in vocab_file.read_text(encoding="utf-8").splitlines()]
    while tokens and not tokens[-1]:
        tokens.pop()
    return tokens


def esm_tokenizer(directory: str | os.PathLike | None = None):
    """The ESM tokenizer: from ``directory/vocab.txt`` when there is one, else the built-in ESM-2 alphabet.

    A model directory's own ``vocab.txt`` is the source of truth for its token
    ids; the built-in :data:`ESM2_VOCAB` serves stand-ins and directories
    without one (FastPLMs' code, for one, tokenises with facebook/esm2's
    tokenizer rather than a file of its own). A file in another order than
    ESM-2's is used as it is, with a warning.

    Raises:
        InputError: ``vocab.txt`` lacks tokens every ESM vocabulary has, or repeats one.
    """
    from transformers import EsmTokenizer

    vocab_file = Path(directory) / "vocab.txt" if directory is not None else None
    if vocab_file is not None and vocab_file.is_file():
        tokens = _read_vocab_file(vocab_file)
        missing = [t for t in _ESM_REQUIRED_TOKENS if t not in tokens]
        repeated = sorted({t for t in tokens if tokens.count(t) > 1})
        if missing or repeated:
            raise InputError(
                f"{vocab_file} is not an ESM protein vocabulary",
                expected=f"one token per line, each once, including {' '.join(_ESM_REQUIRED_TOKENS)} "
                f"(ESM-2: {len(ESM2_VOCAB)} tokens: {' '.join(ESM2_VOCAB)})",
                found=f"{len(tokens)} tokens: {' '.join(tokens[:40])}"
                + (f"; missing {' '.join(missing)}" if missing else "")
                + (f"; repeated {' '.join(repeated)}" if repeated else ""),
                fix="point the model-path option at a copy of the model's hub repository",
            )
        if tuple(tokens) != ESM2_VOCAB:
            log.warning(
                "%s is not in ESM-2's token order; its own ids are used (the model must have been trained with them)",
                vocab_file,
            )
        return EsmTokenizer(vocab_file=str(vocab_file))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.txt"
        path.write_text("\n".join(ESM2_VOCAB), encoding="utf-8")
        return EsmTokenizer(vocab_file=str(path))


def check_vocab_fits(config, tokens: list[str], directory: Path, vocab: str) -> None:
    """The vocabulary (``tokens`` in id order) and config.json agree on its size and the padding and mask ids."""
    problems = []
    if len(tokens) != config.vocab_size:
        problems.append(f"{len(tokens)} tokens in the vocabulary, vocab_size {config.vocab_size} in config.json")
    for key, token in (("pad_token_id", "<pad>"), ("mask_token_id", "<mask>")):
        if getattr(config, key) != tokens.index(token):
            problems.append(f"{key} {getattr(config, key)} in config.json, but {token} is id {tokens.index(token)}")
    if problems:
        raise InputError(
            f"the vocabulary and config.json in {directory} do not belong together",
            expected=f"config.json's vocab_size, pad_token_id and mask_token_id as in the vocabulary ({vocab})",
            found="; ".join(problems),
            fix="re-download the whole repository; do not mix files of two models",
        )


# --------------------------------------------------------------------------- checkpoint


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


def read_state_dict(directory: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Tensors of ``model.safetensors`` (preferred) or ``pytorch_model.bin`` in ``directory``."""
    safetensors_file = directory / "model.safetensors"
    if safetensors_file.is_file():
        from safetensors.torch import load_file

        return load_file(str(safetensors_file), device=str(device))
    bin_file = directory / "pytorch_model.bin"
    if bin_file.is_file():
        return torch.load(bin_file, map_location=device, weights_only=True)
    raise WeightsNotFoundError(
        f"{directory} has no weights file",
        expected="model.safetensors or pytorch_model.bin",
        found=", ".join(sorted(p.name for p in directory.iterdir())),
        fix="download the whole repository (`hf download <hub id> --local-dir DIR`); "
        "sharded checkpoints are not supported",
    )


_LAYER_INV_FREQ = re.compile(r"encoder\.layer\.(\d+)\.attention\.self\.rotary_embeddings\.inv_freq")
# Checkpoint entries that are not part of the base encoder we run.
_IGNORED_PREFIXES = ("lm_head.", "pooler.")
_IGNORED_KEYS = {"embeddings.position_ids", "embeddings.position_embeddings.weight"}  # rotary models never read them


def read_esm_config(directory: str | os.PathLike):
    """The checked ``EsmConfig`` of an ESM-2 or FastESM directory (``model_type`` ``esm`` or ``fast_esm``).

    Raises:
        InputError: another model type, a key the encoder needs missing, or values that contradict ESM-2.
    """
    directory = Path(directory)
    config_dict = read_config(directory)
    if config_dict.get("model_type") not in ("esm", "fast_esm"):
        raise InputError(
            f"{directory / 'config.json'} is not an ESM-2 configuration",
            expected="model_type 'esm' (facebook/esm2_*) or 'fast_esm' (Synthyra/FastESM2_*)",
            found=f"model_type {config_dict.get('model_type')!r}",
            fix="point the model-path option at the protein model's directory",
        )
    return esm_config(config_dict, directory / "config.json")


def load_esm_checkpoint(directory: str | os.PathLike, *, config=None, device: torch.device | str = "cpu"):
    """Build transformers' ``EsmModel`` (SDPA, no pooler) from an ESM-2 or FastESM checkpoint directory.

    Uses ``config`` (default: :func:`read_esm_config` of the directory) and
    loads the state dict itself: keys may carry the ``esm.``
    prefix of the masked-LM checkpoints, language-model heads are skipped, and
    the rotary ``inv_freq`` stored per layer is loaded into the model's shared
    table — transformers' ``from_pretrained`` recomputes it for non-``esm``
    model types. Every missing, unexpected or misshapen key is collected and
    reported in one error.

    Raises:
        InputError: the checkpoint does not fit the configuration.
    """
    from transformers import EsmModel

    directory = Path(directory)
    config = config if config is not None else read_esm_config(directory)
    state = read_state_dict(directory, device)
    with torch.device(device):
        model = EsmModel(config, add_pooling_layer=False)
    load_esm_state(model, state, source=str(directory))
    return model


def load_esm_state(model, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load ``state`` into an ``EsmModel`` strictly, stored rotary frequencies included."""
    stripped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("esm.")
        if key in _IGNORED_KEYS or key.startswith(_IGNORED_PREFIXES):
            continue
        stripped[key] = value

    problems: list[str] = []
    layers = model.config.num_hidden_layers
    per_layer = {int(m.group(1)): stripped.pop(k) for k in list(stripped) if (m := _LAYER_INV_FREQ.fullmatch(k))}
    inv_freq = stripped.pop("rotary_embeddings.inv_freq", None)
    if per_layer:
        missing_layers = sorted(set(range(layers)) - set(per_layer))
        if missing_layers:
            problems.append(f"rotary inv_freq missing for layers {missing_layers}")
        tables = [per_layer[i] for i in sorted(per_layer)]
        if any(not torch.equal(t.float(), tables[0].float()) for t in tables):
            problems.append("rotary inv_freq differs between layers; EsmModel shares one table across layers")
        inv_freq = tables[0] if inv_freq is None else inv_freq
    if inv_freq is None:
        problems.append("no rotary inv_freq (expected encoder.layer.<i>.attention.self.rotary_embeddings.inv_freq)")

    own = model.state_dict()
    optional = {k for k in own if k.startswith("contact_head.")}  # unused for embeddings
    own.pop("rotary_embeddings.inv_freq", None)
    missing = sorted(k for k in own if k not in stripped and k not in optional)
    unexpected = sorted(k for k in stripped if k not in own)
    mismatched = [
        f"{k}: checkpoint {tuple(stripped[k].shape)}, model {tuple(own[k].shape)}"
        for k in sorted(own)
        if k in stripped and stripped[k].shape != own[k].shape
    ]
    expected_freq_shape = tuple(model.rotary_embeddings.inv_freq.shape)
    if inv_freq is not None and tuple(inv_freq.shape) != expected_freq_shape:
        mismatched.append(f"rotary inv_freq: checkpoint {tuple(inv_freq.shape)}, model {expected_freq_shape}")
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if items:
            shown = ", ".join(items[:12]) + (f", ... ({len(items) - 12} more)" if len(items) > 12 else "")
            problems.append(f"{len(items)} {label}: {shown}")
    if problems:
        raise InputError(
            f"the checkpoint in {source} does not fit its config.json",
            expected=f"an ESM-2 encoder with {layers} layers of width {model.config.hidden_size}",
            found="; ".join(problems),
            fix="re-download the repository; a partial or foreign checkpoint cannot be used",
        )
    model.load_state_dict({k: v for k, v in stripped.items() if k in own}, strict=False)
    with torch.no_grad():
        model.rotary_embeddings.inv_freq = inv_freq.detach().to(
            device=model.rotary_embeddings.inv_freq.device, dtype=torch.float32
        )


def esm_checkpoint_state(model, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """An ``EsmModel``'s weights under the hub checkpoints' key names.

    ``esm.``-prefixed encoder keys, the rotary table repeated per layer (as the
    published checkpoints store it) and a seeded masked-LM head, which the
    loader must skip.
    """
    state: dict[str, torch.Tensor] = {}
    inv_freq = model.rotary_embeddings.inv_freq.detach().float()
    for key, value in model.state_dict().items():
        if key == "rotary_embeddings.inv_freq":
            continue
        state["esm." + key] = value.detach().float()
    for layer in range(model.config.num_hidden_layers):
        state[f"esm.encoder.layer.{layer}.attention.self.rotary_embeddings.inv_freq"] = inv_freq.clone()
    hidden, vocab = model.config.hidden_size, model.config.vocab_size
    generator = torch.Generator().manual_seed(seed + 1)
    state["lm_head.dense.weight"] = torch.randn(hidden, hidden, generator=generator) * 0.02
    state["lm_head.dense.bias"] = torch.zeros(hidden)
    state["lm_head.layer_norm.weight"] = torch.ones(hidden)
    state["lm_head.layer_norm.bias"] = torch.zeros(hidden)
    state["lm_head.decoder.weight"] = torch.randn(vocab, hidden, generator=generator) * 0.02
    state["lm_head.bias"] = torch.zeros(vocab)
    return state


def save_safetensors(state: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"format": "pt"})
