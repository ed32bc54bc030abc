"""The ``virnucpro`` command: parses options and hands each subcommand to the library.

Each subcommand lives in ``virnucpro_core.commands.<name>`` with ``register``
(adds its parser) and ``run`` (calls the library). Only ``run`` imports the
library: it loads torch and transformers (seconds), and ``virnucpro --help``
or a mistyped option should answer at once. Errors meant for people
(:class:`~virnucpro_core.errors.VirNucProError`) are printed without a
traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from virnucpro_core import __version__
from virnucpro_core.errors import VirNucProError, os_error_message
from virnucpro_core.threads import cap_environment

# Subcommands in pipeline order; each name is a module in virnucpro_core.commands.
COMMANDS = ("preprocess", "extract", "merge", "import", "split", "train", "evaluate", "predict", "compare")
# Where a command's module is not named after it (``import`` is a Python keyword).
MODULES = {"import": "import_features"}


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="virnucpro",
        description="VirNucPro FastESM2 acceptance tools: " + ", ".join(COMMANDS) + ".",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"virnucpro_core.commands.{MODULES.get(name, name)}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = create_parser()
    args = parser.parse_args(argv)
    capped = cap_environment()  # before torch reads OMP_NUM_THREADS: tens of thousands of threads crash OpenMP
    if capped:
        print(capped, file=sys.stderr)
    try:
        return int(args.run(args) or 0)
    except VirNucProError as error:
        if not error.silent:  # silent: another process of the same torchrun job prints it
            print(f"virnucpro {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the environment, not the input: full disk, permissions, a path of the wrong kind
        print(f"virnucpro {args.command}: error: {os_error_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"virnucpro {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
