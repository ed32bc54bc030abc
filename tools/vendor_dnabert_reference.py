"""Copy the DNABERT-S golden outputs from ``../shared/reference/dnabert_s`` into ``tests/data``.

The golden data were made by running the public DNABERT-S modeling code on
tiny random weights (see the source's README.txt, copied beside). Everything is
copied as it is except the weights: they follow a seeded recipe that the
source documents, so instead of 5 MB of ``model.safetensors`` we keep their
key list, shapes and a fingerprint of their bytes (``weights.json``). The test
regenerates the weights from the recipe and checks the fingerprint before it
compares any output, so a wrong regeneration cannot pass.

Usage::

    .venv/bin/python tools/vendor_dnabert_reference.py [SOURCE_DIR] [DEST_DIR]
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "reference" / "dnabert_s"
DEFAULT_DEST = REPO / "tests" / "data" / "reference" / "dnabert_s"
CONFIGS = ("A", "B")
COPIED = ("config.json", "inputs.json", "expected.safetensors")


def tensors_sha256(state) -> str:
    """SHA-256 over the tensors in sorted key order: key, shape, then the float32 bytes."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].contiguous()
        digest.update(key.encode())
        digest.update(json.dumps(list(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def vendor(source: Path, dest: Path) -> None:
    manifest = json.loads((source / "manifest.json").read_text())
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "README.txt", dest / "README.txt")
    shutil.copyfile(source / "manifest.json", dest / "manifest.json")
    for name in CONFIGS:
        entry = manifest["configs"][name]
        (dest / name).mkdir(exist_ok=True)
        for file in COPIED:
            shutil.copyfile(source / name / file, dest / name / file)
        state = load_file(str(source / name / "model.safetensors"))
        weights = {
            "recipe": entry["weight_init"],
            "seed": entry["weight_seed"],
            "tensors": {key: list(state[key].shape) for key in sorted(state)},
            "tensors_sha256": tensors_sha256(state),
            "source_file_sha256": hashlib.sha256((source / name / "model.safetensors").read_bytes()).hexdigest(),
        }
        (dest / name / "weights.json").write_text(json.dumps(weights, indent=1) + "\n")
        print(f"{name}: {len(state)} tensors, fingerprint {weights['tensors_sha256'][:16]}")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    vendor(Path(arguments[0]) if arguments else DEFAULT_SOURCE, Path(arguments[1]) if len(arguments) > 1 else DEFAULT_DEST)
