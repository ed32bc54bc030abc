"""Checkpoint files of every layout, made as their authors made them, and hostile ones; for the checkpoint tests.

* :func:`build_original` runs :data:`ORIGINAL_SCRIPT` as ``__main__``: the
  original VirNucPro's ``MLPClassifier`` as its train.py defines it, saved with
  ``torch.save(model, path)``; the same script loads such files the original
  way (``torch.load(weights_only=False)``) and scores features with them.
* :func:`fork_checkpoint` writes the dict of the FastESM2 fork's
  ``save_checkpoint_with_metadata``.
* :func:`hostile_file` hides a payload that would ``touch`` a marker file in a
  file of each layout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from virnucpro_core.models.classifier import CheckpointMeta, MLPClassifier
from virnucpro_core.layouts.checkpoints import save_checkpoint
from virnucpro_core.models.specs import get_spec

TINY = get_spec("dnabert_s").dim_for("tiny") + get_spec("fastesm2_650").dim_for("tiny")  # 112, the stand-ins' width

ORIGINAL_SCRIPT = '''
"""The original VirNucPro's MLP as its train.py defines it, saved and loaded as its train.py / prediction.py do."""
import json
import os
import subprocess
import sys

import torch
import torch.nn.functional as F
from torch import nn


class MLPClassifier(nn.Module):
    def __init__(self, input_dim, hidden_dim, num_class):
        super(MLPClassifier, self).__init__()
        self.hidden_layer = nn.Linear(input_dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.output_layer = nn.Linear(hidden_dim, num_class)
        self.dropout = nn.Dropout(0.5)
        nn.init.xavier_uniform_(self.hidden_layer.weight)
        nn.init.xavier_uniform_(self.output_layer.weight)

    def forward(self, x):
        x = self.hidden_layer(x)
        x = self.bn1(x)
        x = F.relu(x)
        x = self.dropout(x)
        x = self.output_layer(x)
        return x


class TouchBySystem:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class TouchByPopen(TouchBySystem):
    def __reduce__(self):
        return (subprocess.Popen, (["touch", self.marker],))


def save(job):
    torch.manual_seed(job["seed"])
    model = MLPClassifier(job["input_dim"], job.get("hidden", 512), 2)
    if job.get("eps"):
        model.bn1.eps = job["eps"]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(job.get("steps", 0)):  # training moves the weights and the BatchNorm statistics
        model.train()
        x, y = torch.randn(64, job["input_dim"]) * 2 + 0.5, torch.randint(0, 2, (64,))
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()  # the original saves right after test_model(), in eval mode
    if job.get("payload"):
        model.payload = {"system": TouchBySystem, "popen": TouchByPopen}[job["payload"]](job["marker"])
    if job.get("extra_module"):
        model.extra = nn.Linear(2, 2)
    if job.get("drop_bn"):
        del model.bn1
    location_tag = torch.serialization.location_tag
    if job.get("as_cuda"):  # storages tagged as a CUDA training run leaves them
        torch.serialization.location_tag = lambda storage: "cuda:0"
    try:
        torch.save(model, job["path"], _use_new_zipfile_serialization=not job.get("legacy"))
    finally:
        torch.serialization.location_tag = location_tag
    if job.get("state_out"):
        torch.save(dict(model.state_dict()), job["state_out"])


def predict(job):
    # The original prediction.py's torch.load (it runs the pickle), mapped to the CPU for files saved on CUDA.
    model = torch.load(job["path"], weights_only=False, map_location="cpu")
    model.eval()
    with torch.no_grad():
        torch.save(F.softmax(model(torch.load(job["features"])), dim=1), job["out"])


for job in json.loads(sys.argv[1]):
    {"save": save, "predict": predict}[job["kind"]](job)
'''


def run_original(tmp: Path, jobs: list[dict]) -> None:
    """Run the original's script as ``__main__`` (a fresh interpreter) on ``jobs``."""
    script = tmp / "virnucpro_train.py"
    script.write_text(ORIGINAL_SCRIPT)
    done = subprocess.run([sys.executable, str(script), json.dumps(jobs)], capture_output=True, text=True,
                          cwd=tmp, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr


# Original-layout files build_original writes: real size (3328×512, trained and untrained), 2048-d, stand-in
# width, CUDA-tagged, a non-default BatchNorm eps, 12-d, hostile, of another shape, and in the legacy format.
ORIGINAL_FILES = {
    "esm2_3b": dict(input_dim=3328, steps=3, seed=1),
    "fastesm": dict(input_dim=2048, steps=2, seed=2),
    "fresh": dict(input_dim=3328, steps=0, seed=3),
    "tiny": dict(input_dim=TINY, hidden=16, steps=3, seed=4),
    "cuda": dict(input_dim=TINY, hidden=16, steps=1, seed=5, as_cuda=True),
    "eps": dict(input_dim=TINY, hidden=16, steps=3, seed=6, eps=1e-3),
    "twelve": dict(input_dim=12, hidden=16, steps=3, seed=7),
    "system": dict(input_dim=TINY, hidden=16, seed=8, payload="system"),
    "popen": dict(input_dim=TINY, hidden=16, seed=9, payload="popen"),
    "extra": dict(input_dim=TINY, hidden=16, seed=10, extra_module=True),
    "no_bn": dict(input_dim=TINY, hidden=16, seed=11, drop_bn=True),
    "legacy": dict(input_dim=12, hidden=4, seed=12, legacy=True),
}


def build_original(root: Path) -> Path:
    """Write every file of :data:`ORIGINAL_FILES` as ``root/NAME.pth`` (+ its state dict as ``NAME.state.pt``)."""
    jobs = [{"kind": "save", "path": str(root / f"{name}.pth"), "state_out": str(root / f"{name}.state.pt"),
             "marker": str(root / f"MARKER-{name}"), **spec} for name, spec in ORIGINAL_FILES.items()]  # fmt: skip
    run_original(root, jobs)
    return root


def features_for(path: Path, width: int, n: int = 32) -> torch.Tensor:
    """Fixed features ``[n, width]`` (seeded by the width), also saved to ``path``."""
    x = torch.randn(n, width, generator=torch.Generator().manual_seed(width)) * 2 + 0.5
    torch.save(x, path)
    return x


def fork_checkpoint(path: Path, width: int = TINY, *, dims: tuple[int, int] = (48, 64), **changes) -> MLPClassifier:
    """A dict as the fork's save_checkpoint_with_metadata writes it, from a trained MLP and a real SGD step."""
    torch.manual_seed(width)
    model = MLPClassifier(width)
    optimizer = torch.optim.SGD(model.parameters(), lr=2e-4, momentum=0.9)
    model.train()
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(torch.randn(16, width)), torch.randint(0, 2, (16,))).backward()
    optimizer.step()
    model.eval()
    metadata = {
        "checkpoint_version": "2.0.0", "model_type": "fastesm650", "huggingface_model_id": "Synthyra/FastESM2_650",
        "dna_dim": dims[0], "protein_dim": dims[1], "merged_dim": width, "input_dim": width, "hidden_dim": 512,
        "num_class": 2, "training_date": "2025-02-03T04:05:06.789", "pytorch_version": "2.5.1+cu124",
    }  # fmt: skip
    metadata.update(changes.pop("metadata", {}))
    payload = {"epoch": 11, "model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
               "best_loss": 0.3125, "metadata": metadata, **changes}  # fmt: skip
    torch.save(payload, path)
    return model


class TouchBySystem:
    """Unpickling this runs ``touch MARKER`` through ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class TouchByPopen(TouchBySystem):
    """Unpickling this runs ``touch MARKER`` through ``subprocess.Popen``."""

    def __reduce__(self):
        return (subprocess.Popen, (["touch", self.marker],))


# Payload → its class and the global its pickle names.
PAYLOADS = {"system": (TouchBySystem, "posix.system"), "popen": (TouchByPopen, "subprocess.Popen")}
WHERE = ["bare", "protocol-4", "ours", "original", "fork"]


def hostile_file(root: Path, where: str, payload: str, original_dir: Path) -> tuple[Path, Path]:
    """A file carrying a live payload: alone, or inside an otherwise valid checkpoint of each layout."""
    if where == "original":  # the payload as an attribute of the pickled module, saved by the original's script
        return original_dir / f"{payload}.pth", original_dir / f"MARKER-{payload}"
    marker = root / f"MARKER-{where}-{payload}"
    evil = PAYLOADS[payload][0](marker)
    path = root / f"{where}-{payload}.pt"
    if where == "bare":
        torch.save(evil, path)
    elif where == "protocol-4":  # names the global with STACK_GLOBAL instead of GLOBAL
        torch.save({"state_dict": {}, "note": evil}, path, pickle_protocol=4)
    elif where == "ours":
        save_checkpoint(MLPClassifier(TINY), path, CheckpointMeta("fastesm2_650", "dnabert_s", TINY))
        raw = torch.load(path, weights_only=True)
        raw["meta"]["hyperparameters"] = {"learning_rate": evil}
        torch.save(raw, path)
    else:
        fork_checkpoint(path, metadata={"pytorch_version": evil})
    return path, marker


def appears(path: Path, seconds: float) -> bool:
    """Whether ``path`` exists within ``seconds`` (Popen returns before its ``touch`` has run)."""
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.exists()


