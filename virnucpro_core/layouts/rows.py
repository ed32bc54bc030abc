"""The one row container: :class:`Embeddings`, feature rows with their ids, lengths and provenance; the digest
of its rows a feature file records."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch


def data_sha256(data: torch.Tensor) -> str:
    """Hex SHA-256 of a tensor's values as stored (C order, its own dtype): what a feature file's
    ``meta['data_sha256']`` records when it is written and its reader checks."""
    array = data.detach().cpu().contiguous()
    return hashlib.sha256(array.reshape(-1).view(torch.uint8).numpy() if array.numel() else b"").hexdigest()


def id_list_sha256(ids: Sequence[str]) -> str:
    """Hex SHA-256 of ids in their order: what a feature file's ``meta['ids_sha256']`` records, so that ids
    swapped or renamed after extraction (the vectors untouched) are caught where the file is read."""
    return hashlib.sha256("\n".join(ids).encode("utf-8", "surrogateescape")).hexdigest()


def id_set_sha256(ids: Iterable[str]) -> str:
    """Hex SHA-256 of the sorted ids: identifies a set of samples (a test set, a training set) in any order."""
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8", "surrogateescape")).hexdigest()


@dataclass
class Embeddings:
    """Feature rows, one per sequence, in input order: the one row container of the package.

    A model's pooled vectors (:mod:`~virnucpro_core.extract.embeddings`), two models' vectors joined for
    samples of unknown class (``virnucpro predict``), or, with a label per row,
    :class:`~virnucpro_core.layouts.features.MergedFeatures`.

    Attributes:
        ids: record ids.
        data: float32 CPU tensor ``[n, dim]``.
        lengths: int64 tensor ``[n]`` of input sequence lengths (residues or bases).
        meta: provenance: model, display_name, weights, size, source, revision,
            seed, dtype, pooling, vocab, vocab_sha256 (the tokenizer's fingerprint),
            architecture (ESM: the configuration in effect and the keys filled by
            default; None for DNABERT-S), input_sha256, dim, n, device, toks_per_batch;
            in a file written by ``virnucpro extract``, ``data_sha256`` (:func:`data_sha256` of ``data``).
    """

    ids: list[str]
    data: torch.Tensor
    lengths: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)
    # The file layout's keys, in the order they are written.
    KEYS: ClassVar[tuple[str, ...]] = ("ids", "data", "lengths", "meta")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.data.shape[1])

    def to_dict(self) -> dict[str, Any]:
        """The feature-file layout: ``{'ids', 'data', 'lengths', 'meta'}`` (and ``labels`` for merged features)."""
        out = {key: getattr(self, key) for key in self.KEYS}
        out.update(ids=list(self.ids), meta=dict(self.meta))
        return out

    def __getitem__(self, key: str) -> Any:
        # Lets code written against the file's dict layout (emb["data"]) read this object.
        if key not in self.KEYS:
            raise KeyError(key)
        return getattr(self, key)
