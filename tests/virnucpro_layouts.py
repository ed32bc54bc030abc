"""Files in the original VirNucPro's (and the FastESM2 fork's) layouts, built from tiny random tensors.

The layouts follow the original code's documented behaviour (units.py,
train.py, prediction.py): merged files ``{'ids', 'data', 'labels': [0] or [1]}``
(``labels`` absent for prediction), DNABERT-S files ``{'nucleotide': [ids],
'data': [{'label': id, 'mean_representation': [floats]}]}`` and ESM files
``{'proteins': [ids], 'data': [tensor]}``, all written with ``torch.save``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from virnucpro_core.models.specs import get_spec

HOST_FOLDERS = ("bacteria.1.1_merged", "fungi.1.1_merged")


def widths(size: str = "tiny") -> dict[str, int]:
    """Merged width per protein model: DNABERT-S + the protein model, at ``size``."""
    dna = get_spec("dnabert_s").dim_for(size)
    return {name: dna + get_spec(name).dim_for(size) for name in ("esm2_3b", "fastesm2_650")}


def sample_ids(label: str, shard: int, n: int) -> list[str]:
    """Frame ids as VirNucPro writes them: ``{record}_chunk_{k}{F|R}{frame}``."""
    return [f"{label}{shard}_rec{i // 6}_chunk_{i % 3 + 1}{'FR'[(i // 3) % 2]}{i % 3 + 1}" for i in range(n)]


def separable_rows(ids: list[str], label: int, width: int, seed: int) -> torch.Tensor:
    """Rows a small MLP can tell apart by class: the first features shifted by the label; seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    data = torch.randn(len(ids), width, generator=generator)
    data[:, :8] += 2.0 if label == 1 else -2.0
    return data


def write_merged(path: Path, ids: list[str], data: torch.Tensor, label: int | None) -> Path:
    obj = {"ids": list(ids), "data": data}
    if label is not None:
        obj["labels"] = [label]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def write_data_merge(root: Path, model: str, *, rows: int = 120, size: str = "tiny", seed: int = 0) -> Path:
    """A ``data/data_merge`` tree: two viral shards, one shard in each of two host folders.

    The same ids (and, per id, the same class signal) for every ``model``, so
    two trees of the two embedders describe the same samples.
    """
    width = widths(size)[model]
    shards = [("viral.1.1_merged", 1, 0), ("viral.1.1_merged", 1, 1), (HOST_FOLDERS[0], 0, 2), (HOST_FOLDERS[1], 0, 3)]
    for folder, label, shard in shards:
        ids = sample_ids("viral" if label else "host", shard, rows)
        data = separable_rows(ids, label, width, seed + shard)
        write_merged(root / folder / f"output_{shard}_merged.pt", ids, data, label)
    return root


def write_original_dnabert(path: Path, ids: list[str], data: torch.Tensor) -> Path:
    rows = [{"label": i, "mean_representation": row.tolist()} for i, row in zip(ids, data, strict=True)]
    torch.save({"nucleotide": list(ids), "data": rows}, path)
    return path


def write_original_esm(path: Path, ids: list[str], data: torch.Tensor) -> Path:
    torch.save({"proteins": list(ids), "data": [row.clone() for row in data]}, path)
    return path
