"""Regenerate the committed stand-in DNABERT-S tokenizer (virnucpro_core/data/dnabert_s_standin_tokenizer/).

The real DNABERT-S tokenizer cannot be downloaded here, so offline runs use a
BPE tokenizer trained on seeded synthetic DNA with the real one's layout:
4096 tokens, [UNK] [CLS] [SEP] [PAD] [MASK] = ids 0-4, post-processor
"[CLS] $A [SEP]", files tokenizer.json, tokenizer_config.json and
special_tokens_map.json. Training is deterministic: rerunning reproduces the
committed files byte for byte (tests/models/test_dnabert.py checks it).

    python tools/make_dnabert_standin_tokenizer.py            # rewrite the committed files
    python tools/make_dnabert_standin_tokenizer.py --check    # exit 1 if they are out of date
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

# One thread: the result does not depend on it, but this keeps the tool's behaviour independent of the machine.
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from virnucpro_core.models import dnabert_tokenizer  # noqa: E402

FILES = (dnabert_tokenizer.TOKENIZER_NAME, dnabert_tokenizer.TOKENIZER_CONFIG_NAME, dnabert_tokenizer.SPECIAL_TOKENS_MAP_NAME)


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory to write the three files to (default: the committed package data, "
        f"virnucpro_core/{dnabert_tokenizer.STANDIN_TOKENIZER_DIR}).",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=dnabert_tokenizer.STANDIN_TOKENIZER_SEED,
        help=f"seed of the synthetic DNA (default: {dnabert_tokenizer.STANDIN_TOKENIZER_SEED}; another seed gives "
        "other merges and so no longer matches the committed files).",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; regenerate into a temporary directory and exit 1 if the files at --out differ.",
    )
    return parser


def generate(directory: Path, seed: int = dnabert_tokenizer.STANDIN_TOKENIZER_SEED) -> list[Path]:
    """Train the stand-in and write its files to ``directory``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    dnabert_tokenizer.write_tokenizer_files(dnabert_tokenizer.train_standin_tokenizer(seed), directory)
    return [directory / name for name in FILES]


def run(args: argparse.Namespace) -> int:
    out = args.out if args.out is not None else dnabert_tokenizer.standin_tokenizer_dir()
    if not args.check:
        for path in generate(out, args.seed):
            print(f"wrote {path} ({path.stat().st_size:,} bytes)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp), args.seed)
        stale = [f.name for f in fresh if not (out / f.name).is_file() or (out / f.name).read_bytes() != f.read_bytes()]
    if stale:
        print(f"out of date in {out}: {', '.join(stale)}; run `python {Path(__file__).as_posix()}` to regenerate")
        return 1
    print(f"{out}: up to date")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(create_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
