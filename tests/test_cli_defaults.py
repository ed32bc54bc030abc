"""The parsers' copies of library defaults stay true, and every command defaults to the same seed."""

from __future__ import annotations

import argparse
import importlib

import pytest

from virnucpro_core.cli import create_parser
from virnucpro_core.commands import defaults


def _library(module: str, name: str):
    return getattr(importlib.import_module(f"virnucpro_core.{module}"), name)


def _training_defaults() -> dict:
    config = _library("training", "TrainingConfig")()
    return {name: getattr(config, name) for name in defaults.TRAINING}


# (name in commands/defaults.py, the library value it copies); the library is imported only when a test runs.
COPIES = {
    "MODELS": lambda: tuple((s.name, s.display_name, s.dim) for s in _library("models", "SPECS").values()),
    "WEIGHTS": lambda: tuple(_library("models", "WEIGHTS")),
    "SIZES": lambda: tuple(_library("models", "SIZES")),
    "DTYPES": lambda: tuple(_library("models", "DTYPES")),
    "DTYPE_POLICY": lambda: _library("precision", "POLICY"),
    "DEFAULT_DTYPE": lambda: _library("precision", "DEFAULT_DTYPE"),
    "TOKS_PER_BATCH": lambda: _library("embeddings", "DEFAULT_TOKS_PER_BATCH"),
    "LABELS": lambda: tuple(_library("features", "LABELS")),
    "SHARD_SIZE": lambda: _library("features", "DEFAULT_SHARD_SIZE"),
    "RANK_TIMEOUT": lambda: _library("distributed", "DEFAULT_TIMEOUT_S"),
    "CHUNK_SIZE": lambda: _library("prediction", "DEFAULT_CHUNK_SIZE"),
    "BLOCK_BASES": lambda: _library("sequences", "DEFAULT_BLOCK_BASES"),
    "GROUP_BY_CHOICES": lambda: tuple(_library("split", "GROUP_BY_CHOICES")),
    "SAVE_CHOICES": lambda: tuple(_library("training", "SAVE_CHOICES")),
    "TRAINING": _training_defaults,
    "SEED": lambda: _library("training", "TrainingConfig")().seed,
    "COMPARE_NAMES": lambda: tuple(_library("comparison", "DEFAULT_NAMES")),
}


@pytest.mark.parametrize("name", list(COPIES))
def test_parser_copies_match_the_library(name):
    copy, library = getattr(defaults, name), COPIES[name]()
    assert copy == library, (
        f"virnucpro_core/commands/defaults.py has {name} = {copy!r}, but the library has {library!r}; "
        "update the copy so that the parsers offer and show what the library does"
    )


def _commands() -> dict[str, argparse.ArgumentParser]:
    (subparsers,) = (a for a in create_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices


def _seed_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if "--seed" in a.option_strings]


SEEDED = ["extract", "split", "train", "evaluate", "predict", "compare"]


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
