"""DNABERT-S tokenizers: reading the published tokenizer files, writing them, and training the stand-in tokenizer."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from virnucpro_core.errors import InputError, VirNucProError, WeightsNotFoundError
from virnucpro_core.files import atomic_write_text

HUB_ID = "zhihan1996/DNABERT-S"
SPECIAL_TOKENS = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")  # ids 0-4, in this order
STANDIN_TOKENIZER_DIR = "data/dnabert_s_standin_tokenizer"  # inside the virnucpro_core package
STANDIN_TOKENIZER_SEED = 0
TOKENIZER_NAME = "tokenizer.json"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_NAME = "special_tokens_map.json"

_SPECIAL_TOKENS_MAP = {
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
    "pad_token": "[PAD]",
    "sep_token": "[SEP]",
    "unk_token": "[UNK]",
}

_TOKENIZER_CONFIG = {
    "clean_up_tokenization_spaces": True,
    **_SPECIAL_TOKENS_MAP,
    "model_max_length": 1000000000000000019884624838656,  # transformers' "no limit" (VERY_LARGE_INTEGER)
    "tokenizer_class": "PreTrainedTokenizerFast",
}


def write_tokenizer_files(tokenizer: Any, directory: str | os.PathLike) -> None:
    """Write a DNABERT tokenizer as the hub repository holds it (three files, each atomically).

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` or a transformers fast tokenizer
            whose vocabulary starts with ``[UNK] [CLS] [SEP] [PAD] [MASK]``.
    """
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    found = [backend.id_to_token(i) for i in range(len(SPECIAL_TOKENS))]
    if tuple(found) != SPECIAL_TOKENS:
        raise InputError(
            "not a DNABERT tokenizer: ids 0-4 are not its special tokens",
            expected=" ".join(SPECIAL_TOKENS),
            found=" ".join(str(t) for t in found),
            fix="pass the tokenizer from load_dnabert_tokenizer() or standin_tokenizer()",
        )
    directory = Path(directory)
    atomic_write_text(directory / TOKENIZER_NAME, backend.to_str(pretty=True))
    # The hub's two small files, byte for byte (transformers 4 wrote indent=2 plus a newline).
    atomic_write_text(directory / TOKENIZER_CONFIG_NAME, json.dumps(_TOKENIZER_CONFIG, indent=2, sort_keys=True) + "\n")
    atomic_write_text(directory / SPECIAL_TOKENS_MAP_NAME, json.dumps(_SPECIAL_TOKENS_MAP, indent=2, sort_keys=True) + "\n")


def _token_content(value: Any) -> Any:
    """``"[CLS]"`` from either ``"[CLS]"`` or the ``{"content": "[CLS]", ...}`` form."""
    return value.get("content") if isinstance(value, dict) else value


def load_dnabert_tokenizer(directory: str | os.PathLike):
    """The DNABERT tokenizer of a directory in the hub layout, as a ``PreTrainedTokenizerFast``.

    Reads ``tokenizer.json``; special tokens and ``model_max_length`` come from
    ``special_tokens_map.json`` / ``tokenizer_config.json`` when present (the
    real repository's files and the stand-in's load the same way).
    """
    # transformers takes seconds to import; loaded only when a model is built
    from transformers import PreTrainedTokenizerFast

    directory = Path(directory)
    path = directory / TOKENIZER_NAME
    if not path.is_file():
        raise WeightsNotFoundError(
            f"no DNABERT tokenizer in {directory}",
            expected=f"{TOKENIZER_NAME} (with {TOKENIZER_CONFIG_NAME} and {SPECIAL_TOKENS_MAP_NAME}) as in {HUB_ID}",
            found="no such directory" if not directory.is_dir() else f"no {TOKENIZER_NAME} there",
            fix=f"`hf download {HUB_ID} --local-dir {directory}`, or use dnabert.standin_tokenizer() for random weights",
        )
    options: dict[str, Any] = dict(_TOKENIZER_CONFIG)
    for name in (TOKENIZER_CONFIG_NAME, SPECIAL_TOKENS_MAP_NAME):
        extra = directory / name
        if extra.is_file():
            options.update(json.loads(extra.read_text(encoding="utf-8")))
    kwargs = {key: _token_content(options[key]) for key in _SPECIAL_TOKENS_MAP}
    return PreTrainedTokenizerFast(
        tokenizer_file=str(path),
        model_max_length=int(options["model_max_length"]),
        clean_up_tokenization_spaces=bool(options.get("clean_up_tokenization_spaces", True)),
        **kwargs,
    )


def standin_tokenizer_dir() -> Path:
    """Where the committed stand-in tokenizer files live (package data)."""
    return Path(str(resources.files("virnucpro_core").joinpath(STANDIN_TOKENIZER_DIR)))


def standin_tokenizer():
    """The committed deterministic stand-in for DNABERT-S's tokenizer (same layout and special ids).

    A BPE tokenizer trained on seeded synthetic DNA by
    ``tools/make_dnabert_standin_tokenizer.py``: 4096 tokens, ``[UNK] [CLS]
    [SEP] [PAD] [MASK]`` = 0-4, ``[CLS] $A [SEP]``. Its merges are not the real
    ones, so token ids differ from DNABERT-S's for the same DNA.
    """
    return load_dnabert_tokenizer(standin_tokenizer_dir())


def standin_corpus(seed: int = STANDIN_TOKENIZER_SEED, n_sequences: int = 1000, length: int = 400) -> Iterator[str]:
    """Deterministic synthetic DNA: an order-3 Markov chain with seeded random transitions.

    Skewed transitions give BPE frequent, genome-like repeats to merge, so the
    vocabulary fills to 4096 from 0.4 Mbp. Only ``random.Random`` and float
    comparisons are used, so the text is the same on every platform.
    """
    rng = random.Random(seed)
    thresholds = []
    for _ in range(64):  # one distribution over A, C, G, T per 3-base context
        weights = [rng.random() ** 2 + 0.05 for _ in range(4)]
        total, running, cumulative = sum(weights), 0.0, []
        for weight in weights:
            running += weight / total
            cumulative.append(running)
        thresholds.append(cumulative)
    for _ in range(n_sequences):
        context, bases = rng.randrange(64), []
        for _ in range(length):
            draw, cumulative, base = rng.random(), thresholds[context], 0
            while base < 3 and draw >= cumulative[base]:
                base += 1
            bases.append("ACGT"[base])
            context = ((context << 2) | base) & 63
        yield "".join(bases)


def train_standin_tokenizer(seed: int = STANDIN_TOKENIZER_SEED, vocab_size: int = 4096):
    """Train the stand-in BPE tokenizer (a ``tokenizers.Tokenizer``); deterministic for a seed."""
    # tokenizers is only needed to train the stand-in tokenizer
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=list("ACGT"),
        show_progress=False,
    )
    tokenizer.train_from_iterator(standin_corpus(seed), trainer=trainer)
    cls, sep = SPECIAL_TOKENS.index("[CLS]"), SPECIAL_TOKENS.index("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    if tokenizer.get_vocab_size() != vocab_size:
        raise VirNucProError(
            "the stand-in DNABERT tokenizer did not reach its vocabulary size",
            expected=str(vocab_size),
            found=str(tokenizer.get_vocab_size()),
            fix="enlarge standin_corpus()",
        )
    return tokenizer
