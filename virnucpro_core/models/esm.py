"""ESM-2 and FastESM2 on disk: vocabulary and checkpoint, in the hub repositories' layout.

The DNABERT-S counterpart is :mod:`virnucpro_core.models.dnabert`; config.json is read
by :mod:`virnucpro_core.models.esm_config`. Both ESM models run on transformers' own
:class:`~transformers.EsmModel` with SDPA attention, not on FastESM2's hub code
(``model_type: fast_esm``, ``trust_remote_code``): with the same weights and
configuration ``EsmModel`` gives the same outputs. ``tests/models/test_esm_reference.py``
pins both paths to fair-esm, ``tests/models/test_esm_fastesm2_reference.py`` to a FastEsm-style
reference, and :func:`virnucpro_core.extract.parity.fastesm_parity` compares a real
snapshot with its own code wherever that code imports.

* vocabulary: a directory's ``vocab.txt`` decides token ids; the built-in
  :data:`ESM2_VOCAB` (fair-esm's order) serves stand-ins and directories without one.
* checkpoint: ``esm.``-prefixed masked-LM keys, per-layer rotary tables, heads
  skipped; the configuration is checked against the tensors' shapes before
  anything is built (:func:`check_config_fits_weights`). Any of the hub's weight
  layouts, sharded ones included (:mod:`virnucpro_core.models.hub_weights`).
  What transformers 5's ``save_pretrained`` writes is read too: the one rotary
  table under the literal key ``encoder.layer.*.attention.self.rotary_embeddings.inv_freq``
  and LayerNorms under their legacy names ``gamma`` / ``beta``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.errors import InputError
from virnucpro_core.models.esm_config import EsmConfigFile, read_esm_config
from virnucpro_core.models.hub_weights import find_weights

log = logging.getLogger(__name__)

# The ESM-2 alphabet in token-id order: fair-esm's esm.data.Alphabet.from_architecture("ESM-1b")
# (esm/constants.py), the order of facebook/esm2_*'s vocab.txt. tests/models/test_esm_reference.py pins it
# to fair-esm itself: an earlier version had D and I swapped, and every self-written test passed.
ESM2_VOCAB: tuple[str, ...] = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C",
    "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
)  # fmt: skip

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


def esm_tokenizer(directory: str | os.PathLike | None = None, config: Any = None):
    """The ESM tokenizer: from ``directory/vocab.txt`` when there is one, else the built-in ESM-2 alphabet.

    A model directory's own ``vocab.txt`` is the source of truth for its token
    ids; the built-in :data:`ESM2_VOCAB` serves stand-ins and directories
    without one (FastPLMs' code, for one, tokenises with facebook/esm2's
    tokenizer rather than a file of its own). A file in another order than
    ESM-2's is used as it is, with a warning. With the model's ``config``, the
    file is checked against it (:func:`check_vocab_fits`) before a tokenizer is
    built from it: every check is linear in the file's lines.

    Raises:
        InputError: ``vocab.txt`` lacks tokens every ESM vocabulary has, repeats one, or does not fit ``config``.
    """
    # transformers takes seconds to import; loaded only when a model is built
    from transformers import EsmTokenizer

    vocab_file = Path(directory) / "vocab.txt" if directory is not None else None
    if vocab_file is not None and vocab_file.is_file():
        tokens = _read_vocab_file(vocab_file)
        counts = Counter(tokens)  # one pass: a vocab.txt of 10^6 lines is checked in a second, not hours
        missing = [t for t in _ESM_REQUIRED_TOKENS if t not in counts]
        repeated = sorted(t for t, n in counts.items() if n > 1)
        if missing or repeated:
            raise InputError(
                f"{vocab_file} is not an ESM protein vocabulary",
                expected=f"one token per line, each once, including {' '.join(_ESM_REQUIRED_TOKENS)} "
                f"(ESM-2: {len(ESM2_VOCAB)} tokens: {' '.join(ESM2_VOCAB)})",
                found=f"{len(tokens)} tokens: {' '.join(tokens[:40])}"
                + (f"; missing {' '.join(missing)}" if missing else "")
                + (f"; repeated ({len(repeated)}) {' '.join(repeated[:20])}{' ...' if len(repeated) > 20 else ''}"
                   if repeated else ""),
                fix="point the model-path option at a copy of the model's hub repository",
            )
        if config is not None:
            check_vocab_fits(config, tokens, vocab_file.parent, str(vocab_file))
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


_LAYER_INV_FREQ = re.compile(r"encoder\.layer\.(\d+)\.attention\.self\.rotary_embeddings\.inv_freq")
# transformers 5's save_pretrained stores the rotary table all layers share once, under this literal key.
SHARED_LAYER_INV_FREQ = "encoder.layer.*.attention.self.rotary_embeddings.inv_freq"
# transformers 5's save_pretrained of an ESM model also writes every LayerNorm's weight and bias under their
# legacy names (it reverses the "legacy" renaming its ESM loader applies); its loader maps them back, as we do.
_LEGACY_LAYER_NORM = re.compile(r"(?<=LayerNorm\.)(gamma|beta)$")
_LEGACY_NAMES = {"gamma": "weight", "beta": "bias"}
# Checkpoint entries that are not part of the base encoder we run.
_IGNORED_PREFIXES = ("lm_head.", "pooler.")
_IGNORED_KEYS = {"embeddings.position_ids", "embeddings.position_embeddings.weight"}  # rotary models never read them


def checkpoint_shapes(directory: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape, ``esm.`` prefix removed, without reading the weights (safetensors headers only).

    Any of the hub's weight layouts, sharded ones included (:mod:`virnucpro_core.models.hub_weights`).
    """
    shapes = find_weights(directory, model="ESM-2 or FastESM2").shapes()
    return {key.removeprefix("esm."): shape for key, shape in shapes.items()}


_LAYER_KEY = re.compile(r"encoder\.layer\.(\d+)\.")
_POSITION_TABLE = "embeddings.position_embeddings.weight"


def weights_architecture(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """What the tensors' shapes say about the architecture (a key is absent where they say nothing)."""
    found: dict[str, Any] = {}
    words = shapes.get("embeddings.word_embeddings.weight")
    if words is not None and len(words) == 2:
        found["vocab_size"], found["hidden_size"] = words
    layers = {int(m.group(1)) for key in shapes if (m := _LAYER_KEY.match(key))}
    if layers:
        found["num_hidden_layers"] = max(layers) + 1
    intermediate = shapes.get("encoder.layer.0.intermediate.dense.weight")
    if intermediate is not None and len(intermediate) == 2:
        found["intermediate_size"] = intermediate[0]
    inv_freq = [shape for key, shape in shapes.items() if key.endswith("rotary_embeddings.inv_freq")]
    if inv_freq and "hidden_size" in found and len(inv_freq[0]) == 1 and inv_freq[0][0]:
        head_dim = 2 * inv_freq[0][0]  # one frequency per pair of a head's dimensions
        if found["hidden_size"] % head_dim == 0:
            found["num_attention_heads"] = found["hidden_size"] // head_dim
    found["rotary"] = bool(inv_freq)
    found["position_table"] = _POSITION_TABLE in shapes
    found["emb_layer_norm_before"] = "embeddings.layer_norm.weight" in shapes
    return found


def check_config_fits_weights(config_file: EsmConfigFile, shapes: dict[str, tuple[int, ...]], source: str) -> None:
    """The configuration and the checkpoint describe the same encoder; one error lists every disagreement.

    Compares hidden size, layers, heads (from the rotary table's length),
    intermediate size and vocabulary size with the tensors' shapes, and the
    position embedding type and ``emb_layer_norm_before`` with the tensors
    present. A rotary checkpoint may carry an unused learned position table
    (transformers' conversion of the published ESM-2 checkpoints kept one); a
    position table without rotary frequencies is an absolute-position model.

    Raises:
        InputError: config.json (or a default filled in for an absent key) contradicts the weights.
    """
    config, found = config_file.config, weights_architecture(shapes)
    problems: list[str] = []
    fixes: list[str] = []
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"):
        value = getattr(config, key)
        if key in found and found[key] != value:
            problems.append(f"{key} {value} ({config_file.origin(key)}), but the weights have {found[key]}")
            fixes.append(f"{key} {found[key]}")
    kind = config.position_embedding_type
    origin = config_file.origin("position_embedding_type")
    if kind == "absolute" and found["rotary"]:
        table = (" and an unused learned position table, as ESM-2's published checkpoints do"
                 if found["position_table"] else " and no learned position table")
        problems.append(f"position_embedding_type 'absolute' ({origin}), but the weights hold rotary "
                        f"frequencies per layer{table}")
        fixes.append("position_embedding_type \"rotary\"")
    elif kind == "absolute":
        problems.append(f"position_embedding_type 'absolute' ({origin}): an absolute-position model "
                        f"({'with' if found['position_table'] else 'without even'} a learned position table), "
                        "neither ESM-2 nor FastESM2, which are rotary")
    elif kind == "rotary" and not found["rotary"] and found["position_table"]:
        problems.append(f"position_embedding_type 'rotary' ({origin}), but the weights hold a learned position "
                        "table and no rotary frequencies: an absolute-position model (ESM-1b style), not ESM-2")
    before = bool(config.emb_layer_norm_before)
    if before != found["emb_layer_norm_before"]:
        has = "hold" if found["emb_layer_norm_before"] else "have no"
        problems.append(f"emb_layer_norm_before {json.dumps(config.emb_layer_norm_before)} "
                        f"({config_file.origin('emb_layer_norm_before')}), but the weights {has} "
                        "embeddings.layer_norm tensors")
        fixes.append(f"emb_layer_norm_before {json.dumps(found['emb_layer_norm_before'])}")
    if problems:
        raise InputError(
            f"config.json in {source} contradicts the weights beside it",
            expected="one model's config.json and weights: every architecture key as the tensors show it",
            found="; ".join(problems),
            fix="re-download the repository so that config.json and the weights belong together"
            + (f"; if the weights are right, set {', '.join(fixes)} in config.json" if fixes else ""),
        )


def load_esm_checkpoint(
    directory: str | os.PathLike, *, config_file: EsmConfigFile | None = None, device: torch.device | str = "cpu"
):
    """Build transformers' ``EsmModel`` (SDPA, no pooler) from an ESM-2 or FastESM checkpoint directory.

    Uses ``config_file`` (default: :func:`~virnucpro_core.models.esm_config.read_esm_config`
    of the directory), checks it against the tensors' shapes, and loads the
    state dict itself: keys may carry the ``esm.`` prefix of the masked-LM
    checkpoints, language-model heads are skipped, and the rotary ``inv_freq``
    stored per layer (or once, as transformers 5 saves it) is loaded into the
    model's shared table — transformers' ``from_pretrained`` recomputes it for
    non-``esm`` model types. Every missing, unexpected or misshapen key is
    collected and reported in one error.

    Raises:
        InputError: the checkpoint does not fit the configuration.
    """
    # transformers takes seconds to import; loaded only when a model is built
    from transformers import EsmModel

    directory = Path(directory)
    config_file = config_file if config_file is not None else read_esm_config(directory)
    check_config_fits_weights(config_file, checkpoint_shapes(directory), str(directory))
    state = find_weights(directory, model="ESM-2 or FastESM2").state_dict(device)
    with torch.device(device):
        model = EsmModel(config_file.config, add_pooling_layer=False)
    load_esm_state(model, state, source=str(directory))
    return model


def load_esm_state(model, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load ``state`` into an ``EsmModel`` strictly, stored rotary frequencies included."""
    stripped: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for key, value in state.items():
        key = _LEGACY_LAYER_NORM.sub(lambda m: _LEGACY_NAMES[m.group(1)], key.removeprefix("esm."))
        if key in _IGNORED_KEYS or key.startswith(_IGNORED_PREFIXES):
            continue
        if key in stripped:
            problems.append(f"{key} stored twice (as .weight/.bias and as .gamma/.beta)")
        stripped[key] = value

    layers = model.config.num_hidden_layers
    per_layer = {int(m.group(1)): stripped.pop(k) for k in list(stripped) if (m := _LAYER_INV_FREQ.fullmatch(k))}
    # One table for all layers: under the model's own name, or under the literal key transformers 5's
    # save_pretrained writes for the buffer every layer shares (encoder.layer.*.attention...).
    shared = [stripped.pop(k) for k in ("rotary_embeddings.inv_freq", SHARED_LAYER_INV_FREQ) if k in stripped]
    if per_layer:
        missing_layers = sorted(set(range(layers)) - set(per_layer))
        if missing_layers:
            problems.append(f"rotary inv_freq missing for layers {missing_layers}")
    tables = shared + [per_layer[i] for i in sorted(per_layer)]
    if any(not torch.equal(t.float(), tables[0].float()) for t in tables):
        problems.append("rotary inv_freq differs between layers; EsmModel shares one table across layers")
    inv_freq = tables[0] if tables else None
    if inv_freq is None:
        problems.append("no rotary inv_freq (expected encoder.layer.<i>.attention.self.rotary_embeddings.inv_freq, "
                        f"or {SHARED_LAYER_INV_FREQ} as transformers 5 saves it)")

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
    # safetensors is only needed when weights are read or written
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"format": "pt"})
