"""Check that our FastESM2 loader gives the vectors of the model's own code, on a real snapshot.

Loads MODEL_DIR our way (transformers' EsmModel with the snapshot's weights and
config.json) and through ``AutoModel.from_pretrained(MODEL_DIR,
trust_remote_code=True)`` (the snapshot's ``modeling_fastesm.py``), embeds the
same proteins with VirNucPro's pooling and compares the vectors protein by
protein (:func:`virnucpro_core.extract.parity.fastesm_parity`).

Usage::

    .venv/bin/python tools/fastesm_parity.py MODEL_DIR [--proteins FASTA] [--device cuda] [--out parity.json]

Exit status: 0 passed, 1 failed (the vectors disagree), 3 not run (the model's
own code cannot run here; the reason is printed), 2 a usage or input error.
"""

from __future__ import annotations

import argparse
import logging
import sys

EXIT = {"passed": 0, "failed": 1, "not run": 3}


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", metavar="MODEL_DIR",
                        help="a FastESM2 snapshot: config.json, model.safetensors, vocab.txt and modeling_fastesm.py")
    parser.add_argument("--proteins", metavar="FASTA",
                        help="proteins to embed (default: 48 seeded random proteins of 5 to 1,100 residues)")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA if available), cpu or cuda (default: auto). Both models run there")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                        help="compute dtype of both models (default: float32; lower precision adds its own "
                        "differences, which the 1e-3 relative limit is not meant for)")
    parser.add_argument("--out", metavar="JSON", help="write the result here (default: print only)")
    return parser


def run(args: argparse.Namespace) -> int:
    from virnucpro_core.errors import VirNucProError
    from virnucpro_core.extract.features import read_records
    from virnucpro_core.extract.parity import fastesm_parity

    try:
        proteins = read_records(args.proteins, "esm") if args.proteins else None
        result = fastesm_parity(args.model_dir, proteins, args.device, dtype=args.dtype)
    except VirNucProError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"FastESM2 parity {result.summary()}")
    if args.out:
        print(f"wrote {result.save(args.out)}")
    return EXIT[result.status]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    return run(create_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
