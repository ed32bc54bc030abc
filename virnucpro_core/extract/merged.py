"""Merged features: a DNABERT-S and a protein-model feature file joined by id, DNA first, checked.

:func:`merge_features` is what ``virnucpro merge``, the acceptance suite's merge stages and ``virnucpro predict``
run; the merged file's layout is :mod:`virnucpro_core.layouts.features`'.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from virnucpro_core.code_identity import CodeIdentity, code_of
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.layouts.features import LABELS, MergedFeatures
from virnucpro_core.layouts.rows import Embeddings
from virnucpro_core.layouts.virnucpro import load_features
from virnucpro_core.models.specs import get_spec


def merge_code() -> CodeIdentity:
    """The code that computes a merged feature file (recorded in its ``meta['code']``)."""
    return code_of("merge")


def _label_value(label: str | int) -> tuple[str, int]:
    if isinstance(label, str) and label in LABELS:
        return label, LABELS[label]
    if label in (0, 1) and not isinstance(label, bool):
        return ("viral" if label == 1 else "host"), int(label)
    raise InputError(f"unknown label {label!r}", expected="viral (1) or host (0)", found=repr(label))


def _expected_dims(dna: Embeddings, protein: Embeddings) -> tuple[int, int, str]:
    """Widths the two files should have, from the models and sizes they claim."""
    size = protein.meta["size"]
    return get_spec(dna.meta["model"]).dim_for(size), get_spec(protein.meta["model"]).dim_for(size), size


def merge_features(
    dna_path: str | os.PathLike,
    protein_path: str | os.PathLike,
    label: str | int,
    *,
    dna: Embeddings | None = None,
    protein: Embeddings | None = None,
) -> MergedFeatures:
    """Concatenate DNABERT-S and ESM features by id (DNA first), in the protein file's order.

    ``dna`` / ``protein`` are the two files' contents when the caller holds them
    already (e.g. from :func:`extract_records`): they are not read again.

    Raises:
        InputError: wrong model in either file, or ids present in one file only.
        DimensionError: widths other than DNABERT-S + the protein model's
            (768 + 1280 = 2048 for FastESM2_650, 768 + 2560 = 3328 for ESM2 3B,
            the stand-ins' widths for tiny stand-ins).
    """
    dna_path, protein_path = Path(dna_path), Path(protein_path)
    label_name, label_value = _label_value(label)
    dna = load_features(dna_path) if dna is None else dna
    protein = load_features(protein_path) if protein is None else protein

    if dna.meta["model"] != "dnabert_s":
        raise InputError(
            f"{dna_path} is not DNABERT-S features",
            expected="the DNA file first, extracted with --model dnabert_s",
            found=f"features of {dna.meta['model']} ({dna.meta['display_name']})",
            fix="pass DNA.pt (dnabert_s) then PROTEIN.pt (esm2_3b or fastesm2_650)",
        )
    protein_spec = get_spec(protein.meta["model"])
    if protein_spec.family != "esm":
        raise InputError(
            f"{protein_path} is not protein-model features",
            expected="the protein file second, extracted with --model esm2_3b or --model fastesm2_650",
            found=f"features of {protein.meta['model']} ({protein.meta['display_name']})",
            fix="pass DNA.pt (dnabert_s) then PROTEIN.pt (esm2_3b or fastesm2_650)",
        )

    dna_dim, protein_dim, size = _expected_dims(dna, protein)
    stand_in = " tiny stand-in" if size == "tiny" else ""
    if dna.dim != dna_dim or protein.dim != protein_dim or dna.meta["size"] != protein.meta["size"]:
        raise DimensionError(
            f"cannot merge {dna_path} ({dna.meta['size']}) with {protein_path} ({protein.meta['size']}): "
            "widths do not fit",
            expected=f"{dna_dim} (DNABERT-S{stand_in}) + {protein_dim} ({protein_spec.display_name}{stand_in}) "
            f"= {dna_dim + protein_dim}",
            found=f"{dna.dim} ({dna_path.name}) + {protein.dim} ({protein_path.name}) = {dna.dim + protein.dim}",
            fix="extract both files with the same --size (and --weights) settings",
        )

    non_finite = [(path, emb) for path, emb in ((dna_path, dna), (protein_path, protein))
                  if not bool(torch.isfinite(emb.data).all())]
    if non_finite:
        found = []
        for path, emb in non_finite:
            rows = (~torch.isfinite(emb.data)).any(dim=1)
            shown = ", ".join(rid for rid, bad in zip(emb.ids, rows.tolist(), strict=True) if bad)
            found.append(f"{path}: {int(rows.sum())} of {len(emb)} rows hold NaN or infinite values "
                         f"({shown[:200]}{'...' if len(shown) > 200 else ''})")
        raise InputError(
            "features with NaN or infinite values cannot be merged",
            expected="finite embeddings in both files",
            found="; ".join(found),
            fix="re-extract the file with `virnucpro extract --rebuild` (a GPU fault or float16 overflow writes "
            "non-finite vectors); try --dtype float32",
        )

    dna_index = {rid: i for i, rid in enumerate(dna.ids)}
    protein_set = set(protein.ids)
    only_protein = [rid for rid in protein.ids if rid not in dna_index]
    only_dna = [rid for rid in dna.ids if rid not in protein_set]
    if only_protein or only_dna:
        parts = []
        for name, items, total in (
            (protein_path.name, only_protein, len(protein)),
            (dna_path.name, only_dna, len(dna)),
        ):
            if items:
                shown = ", ".join(items[:5]) + (", ..." if len(items) > 5 else "")
                parts.append(f"{len(items)} of {total} ids only in {name}: {shown}")
        raise InputError(
            f"{dna_path} and {protein_path} do not hold the same samples",
            expected="the same ids in both files (nucleotide.fa and protein.faa of one preprocess run)",
            found="; ".join(parts),
            fix="extract both files from the same `virnucpro preprocess` output",
        )

    order = torch.tensor([dna_index[rid] for rid in protein.ids], dtype=torch.long)
    data = torch.cat([dna.data[order], protein.data], dim=1).contiguous()
    meta = {
        "label": label_name,
        "dim": data.shape[1],
        "dna_dim": dna.dim,
        "protein_dim": protein.dim,
        "n": len(protein),
        "size": size,
        # Names, not paths: the same features merged in another directory are byte-identical.
        "dna_file": Path(dna_path).name,
        "protein_file": Path(protein_path).name,
        # Provenance without the digest of each input's vectors (checked on reading them), so a merged file's
        # bytes depend on what the vectors are and where they came from, not on how they were checked.
        "dna": {k: v for k, v in dna.meta.items() if k != "data_sha256"},
        "protein": {k: v for k, v in protein.meta.items() if k != "data_sha256"},
        "code": merge_code().to_dict(),
    }
    labels = torch.full((len(protein),), label_value, dtype=torch.long)
    return MergedFeatures(list(protein.ids), data, labels, protein.lengths.clone(), meta)
