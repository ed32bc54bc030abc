"""Features a run need not extract: the DNABERT-S block of merged features the user already has.

VirNucPro's merged files are DNABERT-S's vector and the protein model's, side
by side, DNABERT-S first: the original's ``units.merge_data`` builds each row
as ``torch.cat((nucleotide_data, protein_data))`` (and our ``merge_features``
keeps that order). So a user's ESM2 3B merged files (3328-d) hold, in their
first 768 columns, the DNABERT-S features of their samples. When those files
hold every sample of the FASTA inputs (same ids: the same genomes, preprocessed
the original's way), the FastESM2 features need no DNABERT-S extraction of
their own: :func:`dna_columns` takes the block, and the two feature sets then
differ only in the protein model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from virnucpro_core.errors import InputError
from virnucpro_core.files import sha256_text
from virnucpro_core.layouts.features import MergedRows
from virnucpro_core.layouts.rows import Embeddings, data_sha256

log = logging.getLogger(__name__)

DNA_MODEL = "dnabert_s"
# Rows read at a time: a 3328-d float32 block of this many rows is ~0.9 GB at most.
BLOCK_ROWS = 65_536
# Where the rule comes from, for the meta and the report.
COLUMN_ORDER = ("VirNucPro's merged layout: DNABERT-S's columns first, then the protein model's "
                "(units.merge_data: torch.cat((nucleotide_data, protein_data)))")


def missing_ids(rows: MergedRows, ids: Sequence[str]) -> list[str]:
    """The ``ids`` that ``rows`` does not hold, in order."""
    held = set(rows.ids)
    return [sample for sample in ids if sample not in held]


def dna_columns(rows: MergedRows, ids: Sequence[str], lengths: Sequence[int], *, source: str) -> Embeddings:
    """The DNABERT-S block of merged ``rows`` for ``ids`` (in that order), as a DNABERT-S feature set.

    Args:
        rows: merged features (ours, or VirNucPro's imported under a declaration), DNABERT-S first.
        ids: the samples wanted, all held by ``rows``.
        lengths: their DNA lengths, recorded as an extraction would.
        source: what the rows are (file names), for the meta.

    The meta is the DNABERT-S provenance ``rows`` carries (``meta["dna"]``:
    recorded by ``virnucpro merge``, or declared for VirNucPro's files), with
    ``reused_from`` saying which columns of which files, and why they are DNABERT-S's.

    Raises:
        InputError: an id ``rows`` does not hold.
    """
    absent = missing_ids(rows, ids)
    if absent:
        raise InputError(
            f"the merged features ({source}) lack {len(absent):,} of the {len(ids):,} samples",
            expected="every sample of the FASTA inputs, by id", found=", ".join(absent[:5]) + (
                " ..." if len(absent) > 5 else ""),
            fix="give the merged files made from the same genomes, or drop them to extract every model here")
    dna_dim = int(rows.meta["dna_dim"])
    positions = rows.positions(list(ids))
    data = torch.empty((len(ids), dna_dim), dtype=torch.float32)
    for start in range(0, len(ids), BLOCK_ROWS):
        data[start:start + BLOCK_ROWS] = rows.gather(positions[start:start + BLOCK_ROWS])[:, :dna_dim]
    dna: dict[str, Any] = dict(rows.meta.get("dna") or {})
    protein = rows.meta.get("protein") or {}
    meta = {
        "pooling": None, "dtype": None, "weights": None,  # filled from the rows' own provenance where it has them
        **dna,
        "model": DNA_MODEL,
        "display_name": "DNABERT-S",
        "size": rows.meta.get("size", dna.get("size")),
        "dim": dna_dim,
        "n": len(ids),
        "input_sha256": sha256_text("\n".join(ids)),
        "reused_from": {"source": source, "columns": [0, dna_dim], "column_order": COLUMN_ORDER,
                        "protein_model": protein.get("model")},
        "data_sha256": data_sha256(data),
    }
    log.info("DNABERT-S features of %s samples taken from columns 0-%d of %s, not extracted", f"{len(ids):,}",
             dna_dim - 1, source)
    return Embeddings(list(ids), data, torch.as_tensor(list(lengths), dtype=torch.int64), meta)
