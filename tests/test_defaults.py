"""The parsers offer and show what the library does: both read ``virnucpro_core.defaults``, and every command
defaults to the same seed."""

from __future__ import annotations

import argparse
import importlib
import inspect

import pytest

from virnucpro_core import defaults
from virnucpro_core.cli import create_parser


def _library(module: str, name: str):
    return getattr(importlib.import_module(f"virnucpro_core.{module}"), name)


def _training(name: str):
    return lambda: getattr(_library("train.results", "TrainingConfig")(), name)


# (name in virnucpro_core.defaults, what the library uses); the library is imported only when a test runs.
LIBRARY = {
    "MODELS": lambda: tuple((s.name, s.display_name, s.hub_id, s.family, tuple(s.identity.to_dict().values()))
                            for s in _library("models.specs", "SPECS").values()),
    "WEIGHTS": lambda: _library("models.registry", "WEIGHTS"),
    "SIZES": lambda: _library("models.registry", "SIZES"),
    "DTYPES": lambda: tuple(_library("models.specs", "DTYPES")),
    "TOKS_PER_BATCH": lambda: _library("extract.embeddings", "DEFAULT_TOKS_PER_BATCH"),
    "LABELS": lambda: _library("extract.merged", "LABELS"),
    "SHARD_SIZE": lambda: _library("extract.features", "DEFAULT_SHARD_SIZE"),
    "RANK_TIMEOUT_S": lambda: _library("extract.distributed", "DEFAULT_TIMEOUT_S"),
    "CHUNK_SIZE": lambda: _library("predict.scoring", "DEFAULT_CHUNK_SIZE"),
    "BLOCK_BASES": lambda: _library("preprocess.sequences", "DEFAULT_BLOCK_BASES"),
    "GROUP_BY_CHOICES": lambda: _library("split.make", "GROUP_BY_CHOICES"),
    "SAVE_CHOICES": lambda: _library("train.results", "SAVE_CHOICES"),
    "SEED": _training("seed"),
    "PATIENCE": _training("patience"),
    "SAVE": _training("save"),
    "MAX_EPOCHS": _training("max_epochs"),
    "VAL_FRACTION": _training("val_fraction"),
    "DEVICE": _training("device"),
    "COMPARE_NAMES": lambda: _library("compare.comparison", "DEFAULT_NAMES"),
    "MAX_ACCURACY_DROP": lambda: inspect.signature(_library("compare.comparison", "compare")).parameters[
        "max_accuracy_drop"].default,
}


@pytest.mark.parametrize("name", list(LIBRARY))
def test_the_library_uses_the_one_definition(name):
    library, value = LIBRARY[name](), getattr(defaults, name)
    assert library == value, (
        f"virnucpro_core.defaults has {name} = {value!r}, but the library uses {library!r}; the library must read "
        "the value from virnucpro_core.defaults (the parsers do), not define its own"
    )


def _commands() -> dict[str, argparse.ArgumentParser]:
    (subparsers,) = (a for a in create_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices


def _action(command: str, flag: str) -> argparse.Action:
    (action,) = (a for a in _commands()[command]._actions if flag in a.option_strings)
    return action


# (command, flag, "default" or "choices", the library's value): what each parser offers, read from the library.
PARSERS = [
    ("extract", "--model", "choices", lambda: list(_library("models.specs", "SPECS"))),
    ("extract", "--weights", "choices", lambda: list(_library("models.registry", "WEIGHTS"))),
    ("extract", "--size", "choices", lambda: list(_library("models.registry", "SIZES"))),
    ("extract", "--dtype", "choices", lambda: list(_library("models.specs", "DTYPES"))),
    ("extract", "--device", "default", _training("device")),
    ("extract", "--shard-size", "default", lambda: _library("extract.features", "DEFAULT_SHARD_SIZE")),
    ("extract", "--rank-timeout", "default", lambda: _library("extract.distributed", "DEFAULT_TIMEOUT_S")),
    ("merge", "--label", "choices", lambda: list(_library("extract.merged", "LABELS"))),
    ("import", "--size", "choices", lambda: list(_library("models.registry", "SIZES"))),
    ("split", "--group-by", "choices", lambda: _library("split.make", "GROUP_BY_CHOICES")),
    ("train", "--save", "choices", lambda: _library("train.results", "SAVE_CHOICES")),
    *(("train", f"--{name.replace('_', '-')}", "default", _training(name))
      for name in ("patience", "save", "max_epochs", "val_fraction", "device")),
    ("predict", "--weights", "choices", lambda: list(_library("models.registry", "WEIGHTS"))),
    ("predict", "--size", "choices", lambda: list(_library("models.registry", "SIZES"))),
    ("compare", "--max-accuracy-drop", "default", LIBRARY["MAX_ACCURACY_DROP"]),
    ("compare", "--fast-name", "default", lambda: _library("compare.comparison", "DEFAULT_NAMES")[0]),
    ("compare", "--baseline-name", "default", lambda: _library("compare.comparison", "DEFAULT_NAMES")[1]),
]


@pytest.mark.parametrize(("command", "flag", "what", "library"), PARSERS,
                         ids=[f"{c} {f} {w}" for c, f, w, _ in PARSERS])  # fmt: skip
def test_parsers_offer_what_the_library_does(command, flag, what, library):
    parsed, expected = getattr(_action(command, flag), what), library()
    assert parsed == expected, f"virnucpro {command} {flag} has {what} {parsed!r}, but the library has {expected!r}"


# (command, flag, the library value its help must state): defaults the parser leaves to the library.
HELP = [
    ("preprocess", "--workers", lambda: f"{_library('preprocess.sequences', 'DEFAULT_BLOCK_BASES'):,} bases"),
    *(("extract", "--toks-per-batch",
       lambda family=family: f"{_library('extract.embeddings', 'DEFAULT_TOKS_PER_BATCH')[family]} for {family} models")
      for family in defaults.TOKS_PER_BATCH),
    ("extract", "--dtype", lambda: f"{_library('models.precision', 'DEFAULT_DTYPE')} otherwise"),
    ("predict", "--chunk-size", lambda: f"else {_library('predict.scoring', 'DEFAULT_CHUNK_SIZE')})"),
]


@pytest.mark.parametrize(("command", "flag", "library"), HELP, ids=[f"{c} {f}" for c, f, _ in HELP])
def test_help_states_the_librarys_default(command, flag, library):
    text = _action(command, flag).help
    assert library() in text, f"virnucpro {command} {flag}'s help should say {library()!r}: {text!r}"


SEEDED = ["extract", "split", "train", "evaluate", "predict", "compare"]


def _seed_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if "--seed" in a.option_strings]


def test_seeded_commands_are_all_listed():
    seeded = [name for name, parser in _commands().items() if _seed_options(parser)]
    assert sorted(seeded) == sorted(SEEDED), f"commands with --seed: {seeded}; update SEEDED"


@pytest.mark.parametrize("command", SEEDED)
def test_every_command_defaults_to_seed_42(command):
    (action,) = _seed_options(_commands()[command])
    effective = action.default
    if effective is None:  # split leaves --seed unset to refuse it with --manifest, then uses DEFAULT_SEED
        effective = importlib.import_module(f"virnucpro_core.commands.{command}").DEFAULT_SEED
    assert effective == defaults.SEED == 42, f"virnucpro {command} --seed defaults to {effective}, not 42"
    assert "(default: 42)" in action.help, f"virnucpro {command} --seed help must state the default: {action.help!r}"
