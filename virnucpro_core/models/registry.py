"""The three language models VirNucPro embeds with, and how to load each one offline.

* ``esm2_3b`` — ESM2 3B (``facebook/esm2_t36_3B_UR50D``), the protein model
  VirNucPro was trained with (2560-d).
* ``fastesm2_650`` — FastESM2_650 (``Synthyra/FastESM2_650``), the candidate
  replacement: the ESM2-650M architecture with further-trained weights (1280-d).
* ``dnabert_s`` — DNABERT-S (``zhihan1996/DNABERT-S``), the DNA model (768-d).

Pretrained weights come from a local directory (``model_path``) or from the
Hugging Face cache — never from the network. What each model's files hold
and how they are read lives beside it: :mod:`virnucpro_core.models.esm` (and
:mod:`virnucpro_core.models.esm_config` for config.json) for the two
ESM models, :mod:`virnucpro_core.models.dnabert` for DNABERT-S, and
:mod:`virnucpro_core.models.hub_weights` for the weight files of both.

Each registry entry states what its model is (:class:`ModelIdentity`: model
type, layers, width, heads, vocabulary). A directory is loaded as that model
only when its config.json states that identity or the tiny stand-in's
(:func:`check_identity`, before any weight is read); ``allow_other_model``
loads another model of the same width and records what it is.

Stand-ins (``weights="random"``) are seeded, randomly initialised models of two
sizes: ``full`` (the real architecture, for GPU timing) and ``tiny`` (a few
small layers through the same code, for CPU tests and the smoke profile).
:func:`write_standin` writes one to disk in the model's published layout so the
real loaders are exercised without the real weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.defaults import SIZES, WEIGHTS
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.files import atomic_write_text, sha256_text
from virnucpro_core.models import dnabert, dnabert_config, dnabert_tokenizer, esm, esm_config
from virnucpro_core.models.hub_cache import model_directory
from virnucpro_core.models.specs import (
    DTYPES,
    IDENTITY_FIELDS,
    KNOWN_IDENTITIES,
    ModelIdentity,
    ModelSpec,
    _check_choice,
    get_spec,
    standin_config,
)

log = logging.getLogger(__name__)

# Marker written beside a stand-in checkpoint so that loading it from disk is
# recorded as random weights, not as the pretrained model it imitates.
STANDIN_MARKER = "virnucpro_standin.json"

# --------------------------------------------------------------------------- stand-in configs


def matmul_flops_per_token(name: str, size: str) -> int:
    """Multiply-add FLOPs per token of the encoder's dense layers (attention scores excluded).

    ``2 * layers * (4 h^2 + k h i)``: Q, K, V and output projections plus the
    feed-forward matrices — two for ESM (k = 2), three for DNABERT-S, whose
    GEGLU feed-forward projects to 2i before ``wo`` (k = 3). Used to check that
    stand-ins keep the real models' cost ordering and for TFLOP/s figures.
    """
    config = standin_config(name, size)
    h, i = int(config.hidden_size), int(config.intermediate_size)
    feed_forward = 3 if get_spec(name).family == "dnabert" else 2
    return 2 * int(config.num_hidden_layers) * (4 * h * h + feed_forward * h * i)


# --------------------------------------------------------------------------- vocabulary fingerprints


def vocab_tokens(tokenizer) -> list[str]:
    """A tokenizer's tokens in id order (ESM's ``EsmTokenizer`` or DNABERT-S's fast tokenizer)."""
    vocab = tokenizer.get_vocab()
    return [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]


def vocab_sha256(tokenizer) -> str:
    """Fingerprint of a vocabulary: SHA-256 of its tokens in id order, one per line.

    Recorded in every feature file: features of one model made with two
    different vocabularies are different features, however alike they look.
    """
    return sha256_text("\n".join(vocab_tokens(tokenizer)))


# --------------------------------------------------------------------------- devices and dtypes


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``auto``: CUDA when available, else CPU; otherwise the device asked for."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(
            f"unknown device {str(device)!r}", expected="auto, cpu, cuda or cuda:N", found=repr(str(device))
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device {str(device)!r} was asked for but CUDA is not available here",
            expected="a machine with a CUDA GPU and a CUDA build of torch",
            found=f"torch {torch.__version__}, torch.cuda.is_available() = False",
            fix="pass --device cpu (slow for full-size models) or --device auto",
        )
    return resolved


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``float32`` / ``float16`` / ``bfloat16`` (name or torch dtype) as a torch dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype in DTYPES.values():
            return dtype
        dtype = str(dtype).removeprefix("torch.")
    _check_choice(dtype, tuple(DTYPES), "dtype")
    return DTYPES[dtype]


def dtype_name(dtype: torch.dtype) -> str:
    return next(name for name, value in DTYPES.items() if value == dtype)


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's RNG for a stand-in's initialisation without disturbing the caller's RNG."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# --------------------------------------------------------------------------- loaded models


@dataclass
class LoadedModel:
    """A model ready for extraction.

    Attributes:
        spec: registry entry.
        model: the network in eval mode (``EsmModel`` or ``DnaBertModel``).
        tokenizer: its tokenizer.
        device: where the model lives.
        dtype: the model's compute dtype.
        provenance: what was loaded — ``weights`` (``pretrained``/``random``),
            ``size``, ``source`` (path or hub id), ``revision`` (snapshot commit
            when known), ``seed`` (stand-ins), ``dtype``, ``vocab`` (the file or
            built-in alphabet the token ids come from), ``vocab_sha256`` and, for
            ESM models, ``architecture`` (the configuration in effect, defaults
            filled in for absent keys named: :meth:`EsmConfigFile.architecture`);
            ``identity`` only for another model loaded with ``allow_other_model``
            (:func:`check_identity`: what it is, what was expected, every difference);
            ``path`` once an execution path is chosen.
        execution: how batches run through the network, once chosen
            (:func:`virnucpro_core.extract.forward.prepare_path`: eager, compiled or
            packed, with what compiling cost); None: eager.
    """

    spec: ModelSpec
    model: torch.nn.Module
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    provenance: dict[str, Any] = field(default_factory=dict)
    execution: Any = None

    @property
    def size(self) -> str:
        return self.provenance["size"]

    @property
    def dim(self) -> int:
        return self.spec.dim_for(self.size)


def load_model(
    name: str,
    *,
    weights: str = "pretrained",
    size: str = "tiny",
    model_path: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype = "float32",
    seed: int = 0,
    path_option: str | None = None,
    allow_other_model: bool = False,
    other_model_option: str | None = "--allow-other-model",
) -> LoadedModel:
    """Load a model for extraction, never touching the network.

    Args:
        name: ``esm2_3b``, ``fastesm2_650`` or ``dnabert_s``.
        weights: ``pretrained`` (from ``model_path`` or the Hugging Face cache)
            or ``random`` (a seeded stand-in).
        size: stand-in size, ``tiny`` or ``full``; ignored for pretrained weights.
        model_path: directory holding the model in its hub layout, or another hub id
            (``org/name``) to look up in the cache instead of the spec's.
        device: ``auto``/``None`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:1``...
        dtype: ``float32``, ``float16`` or ``bfloat16``.
        seed: stand-in initialisation seed.
        path_option: the caller's option that sets ``model_path`` (``--model-path``,
            ``--protein-model-path``...), named in the fix of a missing-weights error;
            default: a generic hint that lists the options of each entry point.
        allow_other_model: load a directory whose config.json states another model than ``name``
            (:class:`ModelIdentity`: model type, layers, heads, vocabulary; the width must still be
            ``name``'s) instead of refusing it; ``provenance["identity"]`` then records what it is.
        other_model_option: the caller's option that sets ``allow_other_model``, offered in the refusal of another
            model; None for a caller without one (the refusal then offers none).

    Raises:
        WeightsNotFoundError: pretrained weights are neither at ``model_path`` nor in the cache,
            or ``model_path`` is a directory that does not exist.
        InputError: unknown name/option, a checkpoint that does not fit the model, or another model
            than ``name`` (unless ``allow_other_model``).
        DimensionError: a model of another width than ``name`` (or its tiny stand-in).
    """
    spec = get_spec(name)
    _check_choice(weights, WEIGHTS, "weights kind")
    _check_choice(size, SIZES, "model size")
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype)
    if weights == "random":
        model, tokenizer = _build_standin(spec, size, seed, torch_device)
        vocab = esm.BUILTIN_VOCAB_SOURCE if spec.family == "esm" else "stand-in DNABERT-S tokenizer (virnucpro_core/data)"
        provenance = {
            "weights": "random",
            "size": size,
            "source": "seeded random init",
            "revision": None,
            "seed": seed,
            "vocab": vocab,
        }
        if spec.family == "esm":
            provenance["architecture"] = esm_config.standin_config_file(name, size).architecture()
    else:
        directory, revision, source = model_directory(name, model_path, path_option)
        model, tokenizer, found_size, vocab, architecture, identity = _load_directory(
            spec, directory, torch_device, path_option=path_option, allow_other_model=allow_other_model,
            other_model_option=other_model_option,
        )
        provenance = {
            "weights": "pretrained",
            "size": found_size,
            "source": source,
            "path": str(directory),
            "revision": revision,
            "seed": None,
            "vocab": vocab,
            **({"architecture": architecture} if architecture is not None else {}),
            **({"identity": identity} if identity is not None else {}),
        }
        provenance.update(_standin_marker(directory, spec, found_size))
    cast_model(model, torch_dtype)
    model.eval()
    provenance["dtype"] = dtype_name(torch_dtype)
    provenance["vocab_sha256"] = vocab_sha256(tokenizer)
    loaded = LoadedModel(spec, model, tokenizer, torch_device, torch_dtype, provenance)
    log.info(
        "loaded %s (%s weights, %s, %s-d) on %s in %s",
        spec.display_name, provenance["weights"], provenance["source"], loaded.dim, torch_device, provenance["dtype"],
    )  # fmt: skip
    return loaded


def compile_model(loaded: LoadedModel, mode: str = "default") -> LoadedModel:
    """``loaded`` with its network wrapped in :func:`torch.compile` (``mode`` as torch names it).

    Compilation happens on the first forward pass of each new input shape, so
    run a warmup pass before timing. The returned model shares its weights with
    ``loaded``; ``provenance["compile"]`` records the mode.
    """
    compiled = torch.compile(loaded.model, mode=None if mode == "default" else mode)
    return replace(loaded, model=compiled, provenance={**loaded.provenance, "compile": mode})


def cast_model(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast ``model`` to ``dtype`` in place, keeping its stored float32 rotary frequencies."""
    rotary = getattr(model, "rotary_embeddings", None)
    inv_freq = rotary.inv_freq.detach().clone() if rotary is not None else None
    model.to(dtype)
    if inv_freq is not None:
        # .to(dtype) would round the rotary frequencies to 8 (bf16) or 11 (fp16)
        # mantissa bits, shifting every position's angle; keep the stored fp32 table.
        rotary.inv_freq = inv_freq.to(rotary.inv_freq.device)


def _build_standin(spec: ModelSpec, size: str, seed: int, device: torch.device):
    """A seeded random stand-in and its tokenizer (same seed, same device type → same weights)."""
    # Tiny models are built on the CPU so that tests everywhere see the same weights;
    # full-size ones are built where they run (3B parameters initialise much faster on a GPU).
    build_device = device if size == "full" else torch.device("cpu")
    if spec.family == "esm":
        # transformers takes seconds to import; loaded only when a model is built
        from transformers import EsmModel

        with _seeded(seed, build_device), build_device:
            model = EsmModel(standin_config(spec.name, size), add_pooling_layer=False)
        return model.to(device), esm.esm_tokenizer()
    model = dnabert.random_dnabert(standin_config(spec.name, size), seed, device=build_device)
    return model.to(device), dnabert_tokenizer.standin_tokenizer()


# --------------------------------------------------------------------------- loading directories


def _load_directory(
    spec: ModelSpec, directory: Path, device: torch.device, *, path_option: str | None, allow_other_model: bool,
    other_model_option: str | None = "--allow-other-model",
):
    """Model, tokenizer, size (``full``/``tiny``), vocabulary source, architecture (ESM, else None), identity record.

    config.json is checked before any weight is read: against the tensors' shapes (ESM: safetensors headers)
    and against the model's identity (:func:`check_identity`).
    """
    # load_model has checked that ``directory`` exists (a given path) or found it in the cache.
    check = dict(path_option=path_option, allow_other_model=allow_other_model, other_model_option=other_model_option)
    if spec.family == "esm":
        config_file = esm_config.read_esm_config(directory)
        esm.check_config_fits_weights(config_file, esm.checkpoint_shapes(directory), str(directory))
        config = config_file.config
        found = ModelIdentity(config_file.model_type, int(config.num_hidden_layers), int(config.hidden_size),
                              int(config.num_attention_heads), int(config.vocab_size))
        size, identity = check_identity(spec, found, directory, **check)
        tokenizer = esm.esm_tokenizer(directory, config)  # vocab.txt checked against config.json first
        model = esm.load_esm_checkpoint(directory, config_file=config_file, device=device)
        vocab = str(directory / "vocab.txt") if (directory / "vocab.txt").is_file() else esm.BUILTIN_VOCAB_SOURCE
        esm.check_vocab_fits(model.config, vocab_tokens(tokenizer), directory, vocab)
        architecture = config_file.architecture()
    else:
        config = dnabert_config.read_dnabert_config(directory)
        found = ModelIdentity(config.extra.get("model_type"), config.num_hidden_layers, config.hidden_size,
                              config.num_attention_heads, config.vocab_size)
        size, identity = check_identity(spec, found, directory, **check)
        model = dnabert.load_dnabert(directory, device=device, config=config)
        tokenizer = dnabert_tokenizer.load_dnabert_tokenizer(directory)
        vocab, architecture = str(directory / "tokenizer.json"), None
    return model, tokenizer, size, vocab, architecture, identity


def check_identity(
    spec: ModelSpec,
    found: ModelIdentity,
    directory: Path,
    *,
    path_option: str | None = None,
    allow_other_model: bool = False,
    other_model_option: str | None = "--allow-other-model",
) -> tuple[str, dict[str, Any] | None]:
    """``(size, None)`` when ``found`` is ``spec``'s model (``full``) or its tiny stand-in (``tiny``).

    Otherwise, with ``allow_other_model`` and the width of one of them, ``(that size, record)``: the
    record (``provenance["identity"]``) says what was expected, what was found and every difference.

    Raises:
        InputError: another model of ``spec``'s width (or its stand-in's), without ``allow_other_model``.
        DimensionError: a model of another width: nothing downstream could use its vectors as ``spec``'s.
    """
    accepted = {size: spec.identity_for(size) for size in ("full", "tiny")}
    for size, identity in accepted.items():
        if found == identity:
            return size, None
    size = next((size for size, identity in accepted.items() if identity.hidden_size == found.hidden_size), None)
    expected = accepted[size or "full"]
    differences = found.differences(expected)
    known = KNOWN_IDENTITIES.get(found)
    if size is not None and allow_other_model:
        record = {
            "expected": {"model": spec.name, "display_name": spec.display_name, "hub_id": spec.hub_id,
                         "size": size, **expected.to_dict()},
            "found": found.to_dict(),
            "known_as": known,
            "differences": differences,
            "allowed_by": "--allow-other-model",
        }
        log.warning("%s: another model than %s: %s; loaded anyway (--allow-other-model)",
                    directory, spec.display_name, describe_identity(record))
        return size, record
    option = path_option or "the model-path option"
    stand_in = "its tiny stand-in" if size == "tiny" else spec.display_name
    fetch = f"point {option} at a copy of {spec.hub_id} (`hf download {spec.hub_id}`)"
    if size is not None:
        error, fix = InputError, fetch + (
            f"; to study this model in {spec.display_name}'s place anyway, add {other_model_option}: it is then "
            "loaded, recorded as another model in the features and the report, and the acceptance verdict cannot be "
            "PASS" if other_model_option else "")
    else:
        error, fix = DimensionError, (
            f"{fetch}; a model of another width cannot take {spec.display_name}'s place in this pipeline (the merged "
            "features' width names the protein model and the classifier's input)"
            + (f", not even with {other_model_option}" if other_model_option else ""))
    raise error(
        f"{directory} is not {spec.display_name} ({spec.hub_id}): its config.json describes "
        + (known or "another model") + ("" if size is not None else f" of hidden size {found.hidden_size}"),
        expected=f"{spec.display_name}: {accepted['full'].describe()}; or its tiny stand-in: "
        f"{accepted['tiny'].describe()}",
        found=f"{found.describe()}; differs from {stand_in} in {'; '.join(differences)}",
        fix=fix,
    )


def describe_identity(record: dict[str, Any]) -> str:
    """What another model loaded with ``allow_other_model`` is (an identity record of :func:`check_identity`)."""
    found = ModelIdentity(**{key: record["found"][key] for key in IDENTITY_FIELDS})
    known = f" ({record['known_as']})" if record.get("known_as") else ""
    return f"{found.describe()}{known}; differs in " + "; ".join(record["differences"])


def identity_records(provenance: Any) -> list[dict[str, Any]]:
    """Every identity record in a provenance or a feature meta (nested dicts searched), each once."""
    if not isinstance(provenance, dict):
        return []
    found = [provenance["identity"]] if isinstance(provenance.get("identity"), dict) else []
    for key, value in provenance.items():
        if key != "identity":
            found += identity_records(value)
    unique = {json.dumps(record, sort_keys=True): record for record in found}
    return list(unique.values())


def _standin_marker(directory: Path, spec: ModelSpec, found_size: str) -> dict[str, Any]:
    """Provenance overrides for a stand-in written by :func:`write_standin`."""
    marker = directory / STANDIN_MARKER
    if not marker.is_file():
        return {}
    info = json.loads(marker.read_text(encoding="utf-8"))
    if info.get("name") != spec.name or info.get("size") != found_size:
        raise InputError(
            f"{directory} holds a stand-in for {info.get('name')!r} ({info.get('size')}), "
            f"not {spec.name} ({found_size})",
            expected=f"{spec.name}, size {found_size}",
            found=f"{info.get('name')}, size {info.get('size')}",
            fix="point the model-path option at the right model's directory",
        )
    return {"weights": "random", "seed": info["seed"]}


# --------------------------------------------------------------------------- writing stand-ins


def write_standin(name: str, size: str, directory: str | os.PathLike, seed: int = 0) -> Path:
    """Write a seeded stand-in to ``directory`` in the model's published hub layout.

    ESM2 3B: ``config.json`` (``model_type: esm``), ``model.safetensors`` with
    the masked-LM checkpoint's keys (``esm.`` prefix, per-layer rotary
    ``inv_freq``, an ``lm_head``) and the tokenizer files. FastESM2_650: the
    same keys under ``model_type: fast_esm`` with its ``auto_map``. DNABERT-S:
    :func:`virnucpro_core.models.dnabert.save_dnabert`. A ``virnucpro_standin.json``
    marker records name, size and seed so a load from disk is labelled as
    random weights; it is written first and atomically, so an interrupted
    write never leaves random weights that would load as pretrained.

    Returns:
        ``directory``.
    """
    spec = get_spec(name)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marker = {
        "name": name,
        "size": size,
        "seed": seed,
        "note": "random stand-in written by virnucpro_core.models.registry.write_standin",
    }
    # Before any weight file: random weights must never sit in a directory without it.
    atomic_write_text(directory / STANDIN_MARKER, json.dumps(marker, indent=2) + "\n")
    cpu = torch.device("cpu")
    model, tokenizer = _build_standin(spec, size, seed, cpu)
    if spec.family == "esm":
        (directory / "config.json").write_text(
            json.dumps(esm_config.esm_config_dict(name, size), indent=2) + "\n", encoding="utf-8"
        )
        esm.save_safetensors(esm.esm_checkpoint_state(model, seed=seed), directory / "model.safetensors")
        tokenizer.save_pretrained(str(directory))
        special = {
            "cls_token": "<cls>",
            "eos_token": "<eos>",
            "mask_token": "<mask>",
            "pad_token": "<pad>",
            "unk_token": "<unk>",
        }
        (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    else:
        dnabert.save_dnabert(model, directory, tokenizer=tokenizer)
    return directory


