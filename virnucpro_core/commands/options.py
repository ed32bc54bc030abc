"""argparse value types shared by the subcommands: each rejects bad values with what it expected."""

from __future__ import annotations

import argparse

from virnucpro_core.defaults import MAX_SEED


def _number(text: str, kind: type, expected: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int, "a non-negative integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def open_fraction(text: str) -> float:
    """A share strictly between 0 and 1 (a test or validation fraction)."""
    value = _number(text, float, "a fraction between 0 and 1 (exclusive), e.g. 0.1")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (exclusive), e.g. 0.1, got {value}")
    return value


def closed_fraction(text: str) -> float:
    """A value in [0, 1] (an accuracy limit)."""
    value = _number(text, float, "a fraction between 0 and 1, e.g. 0.05")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, e.g. 0.05, got {value}")
    return value




def seed_value(text: str) -> int:
    """A seed: an integer from 0 to 2**63 − 1."""
    value = non_negative_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {MAX_SEED} (2**63 - 1), got {value}")
    return value


def positive_float(text: str) -> float:
    """A positive number of seconds (a timeout)."""
    value = _number(text, float, "a positive number, e.g. 600")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, e.g. 600, got {text}")
    return value


def add_force(parser: argparse.ArgumentParser, also: str = "") -> None:
    """``--force``: replace files of the names a command writes that virnucpro did not write (or that changed)."""
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace files of the names this command writes that virnucpro did not write, or that changed since "
        f"it wrote them{also} (default: refuse, naming them; another command's outputs and files that views read "
        "their rows from are never replaced)",
    )
