"""Per-sequence embeddings: one pooled vector per record, computed in length-sorted batches.

The work is split in three replaceable steps so that performance work can tune
one without touching the others:

1. :func:`tokenize` — token ids per sequence (ESM: ``<cls>`` residues ``<eos>``;
   DNABERT-S: its BPE tokenizer with ``[CLS]``/``[SEP]``).
2. :func:`plan_batches` — sort by token length and fill each batch up to a
   token budget (padded tokens counted), like esm's
   ``FastaBatchedDataset.get_batch_indices``.
3. :func:`embed_batch` — pad, run the model under ``torch.inference_mode`` and
   pool the last hidden state in float32 with padding masked out.

:func:`extract_embeddings` strings them together and restores input order; a
compiled execution path (:mod:`virnucpro_core.extract.forward`) replaces steps
2 and 3 with its own plan and forward pass.
Pooling follows what VirNucPro was trained on (see ``ModelSpec.pooling``):
ESM models average residues ``1..min(L, 1024)`` of a full-length forward pass;
DNABERT-S averages every token, ``[CLS]`` and ``[SEP]`` included.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from virnucpro_core.defaults import TOKS_PER_BATCH
from virnucpro_core.errors import InputError
from virnucpro_core.files import sha256_text
from virnucpro_core.layouts.rows import Embeddings
from virnucpro_core.models.registry import LoadedModel
from virnucpro_core.models.specs import ESM_POOL_MAX_RESIDUES
from virnucpro_core.threads import extraction_stage, stage_threads

log = logging.getLogger(__name__)

# Default token budget per batch (padded tokens, specials included), by model family; why: see defaults.py.
DEFAULT_TOKS_PER_BATCH: dict[str, int] = TOKS_PER_BATCH


def records_sha256(records: Sequence[tuple[str, str]]) -> str:
    """SHA-256 of the records as unwrapped FASTA (``>id\\nseq\\n``): line wrapping does not change it."""
    return sha256_text("".join(f">{rid}\n{seq}\n" for rid, seq in records))


def as_pairs(records: Iterable[Any]) -> list[tuple[str, str]]:
    """``(id, seq)`` pairs from pairs or ``FastaRecord``-like objects (``.id``, ``.seq``)."""
    pairs = []
    for record in records:
        if hasattr(record, "id") and hasattr(record, "seq"):
            pairs.append((str(record.id), str(record.seq)))
        else:
            rid, seq = record
            pairs.append((str(rid), str(seq)))
    return pairs


# --------------------------------------------------------------------------- 1. tokens


def tokenize(loaded: LoadedModel, seqs: Sequence[str]) -> list[list[int]]:
    """Token ids of each sequence, special tokens included, no padding."""
    if loaded.spec.family == "esm":
        vocab = loaded.tokenizer.get_vocab()
        cls, eos, unk = vocab["<cls>"], vocab["<eos>"], vocab["<unk>"]
        # One token per character, as esm's BatchConverter encodes plain sequences;
        # a direct lookup is ~100x faster than the Python tokenizer's trie.
        return [[cls, *(vocab.get(ch, unk) for ch in seq), eos] for seq in seqs]
    return [list(ids) for ids in loaded.tokenizer(list(seqs), add_special_tokens=True)["input_ids"]]


def pad_id(loaded: LoadedModel) -> int:
    pad = loaded.tokenizer.pad_token_id
    if pad is None:
        raise InputError(
            f"the {loaded.spec.display_name} tokenizer has no padding token", fix="use the model's own tokenizer files"
        )
    return int(pad)


# --------------------------------------------------------------------------- 2. batches


def plan_batches(token_lengths: Sequence[int], toks_per_batch: int, *, exact_lengths: bool = False) -> list[list[int]]:
    """Indices per batch: longest first, each batch's ``max_len * size <= toks_per_batch``.

    A sequence longer than the budget gets a batch of its own. Longest first so
    that a budget too large for the device fails on the first batch, not the last.
    With ``exact_lengths`` a batch only holds sequences of one token length: no
    padding, so the model runs without an attention mask (SDPA may then pick its
    flash kernel), at the price of smaller batches where lengths vary.
    """
    if toks_per_batch <= 0:
        raise InputError("the token budget must be positive", expected="toks_per_batch >= 1", found=str(toks_per_batch))
    order = sorted(range(len(token_lengths)), key=lambda i: (-token_lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for index in order:
        size = token_lengths[index]
        over_budget = max(width, size) * (len(current) + 1) > toks_per_batch
        if current and (over_budget or (exact_lengths and size != width)):
            batches.append(current)
            current, width = [], 0
        current.append(index)
        width = max(width, size)
    if current:
        batches.append(current)
    return batches


# --------------------------------------------------------------------------- 3. forward and pooling


def collate(
    token_ids: Sequence[Sequence[int]], pad: int, device: torch.device, *, width: int | None = None,
    to_device=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` (1 = real token), ``width`` wide (default: the longest),
    moved to ``device`` with ``to_device(tensor, device)`` (default ``tensor.to(device)``)."""
    width = width or max(len(ids) for ids in token_ids)
    input_ids = torch.full((len(token_ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(token_ids), width), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = 1
    move = to_device or (lambda tensor, where: tensor.to(where))
    return move(input_ids, device), move(mask, device)


def last_hidden_state(
    loaded: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """The model's last hidden state ``[B, T, H]`` (mask ``None``: no padding in the batch)."""
    if loaded.spec.family == "esm":
        return loaded.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return loaded.model(input_ids, attention_mask=attention_mask)


def pooling_weights(family: str, attention_mask: torch.Tensor, seq_lengths: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` 0/1 weights of the positions that enter each sequence's mean.

    ESM: residues ``1..min(L, 1024)`` (``<cls>`` at 0, ``<eos>`` and padding excluded).
    DNABERT-S: every non-padding token.
    """
    if family == "esm":
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = seq_lengths.to(attention_mask.device).clamp(max=ESM_POOL_MAX_RESIDUES)
        return ((positions[None, :] >= 1) & (positions[None, :] <= last[:, None])).float()
    return attention_mask.float()


def pool(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean over positions, computed in float32."""
    weights = weights.to(device=hidden.device, dtype=torch.float32)
    summed = torch.einsum("bth,bt->bh", hidden.float(), weights)
    return summed / weights.sum(dim=1, keepdim=True)


def embed_batch(loaded: LoadedModel, token_ids: Sequence[Sequence[int]], seq_lengths: Sequence[int]) -> torch.Tensor:
    """Pooled float32 CPU vectors ``[B, dim]`` of one batch."""
    input_ids, mask = collate(token_ids, pad_id(loaded), loaded.device)
    with torch.inference_mode():
        # Without padding the mask is all ones; passing None lets SDPA skip it.
        hidden = last_hidden_state(loaded, input_ids, None if bool(mask.all()) else mask)
        pooled = pool(hidden, pooling_weights(loaded.spec.family, mask, torch.as_tensor(seq_lengths)))
    return pooled.cpu()


# --------------------------------------------------------------------------- all together


def embedding_meta(loaded: LoadedModel, *, input_sha256: str, n: int, toks_per_batch: int) -> dict[str, Any]:
    """Provenance recorded with every feature file."""
    prov = loaded.provenance
    return {
        "model": loaded.spec.name,
        "display_name": loaded.spec.display_name,
        "hub_id": loaded.spec.hub_id,
        "family": loaded.spec.family,
        "weights": prov["weights"],
        "size": prov["size"],
        "source": prov.get("source"),
        "revision": prov.get("revision"),
        "seed": prov.get("seed"),
        "dtype": prov["dtype"],
        "pooling": loaded.spec.pooling,
        "vocab": prov.get("vocab"),
        "vocab_sha256": prov.get("vocab_sha256"),
        "architecture": prov.get("architecture"),
        **({"identity": prov["identity"]} if prov.get("identity") else {}),  # another model (--allow-other-model)
        "input_sha256": input_sha256,
        "dim": loaded.dim,
        "n": n,
        "device": loaded.device.type,
        "toks_per_batch": toks_per_batch,
        "path": prov.get("path", "eager"),  # how the network ran (extract/forward.py): eager, compiled or packed
    }


def extract_embeddings(
    loaded: LoadedModel,
    records: Iterable[Any],
    *,
    toks_per_batch: int | None = None,
    exact_lengths: bool = False,
    progress: bool = True,
    desc: str | None = None,
) -> Embeddings:
    """Embed ``records`` (``(id, seq)`` pairs or ``FastaRecord``) with ``loaded``.

    Args:
        loaded: model from :func:`virnucpro_core.models.registry.load_model`.
        records: sequences to embed; order is kept in the result.
        toks_per_batch: padded-token budget per batch; default
            ``DEFAULT_TOKS_PER_BATCH[family]``.
        exact_lengths: batch only sequences of equal token length (see
            :func:`plan_batches`); the pooled vectors are the same either way.
            A lever for GPU throughput, measured by ``benchmarks/extract_throughput.py``.
        progress: show a tqdm bar (on a terminal only).
        desc: label of the progress bar.

    The model runs with the intra-op threads :mod:`virnucpro_core.threads`
    chooses for its size: torch's default for real models, one for tiny stand-ins.
    Batches run on ``loaded``'s execution path (``loaded.execution``,
    :func:`virnucpro_core.extract.forward.prepare_path`): eager as planned here
    (also when none was chosen), or a compiled path's own plan, every shape
    compiled before the first batch (``meta["path"]`` records which).

    Returns:
        :class:`Embeddings` with float32 CPU data ``[n, dim]``.

    Raises:
        InputError: an empty sequence (its mean would be undefined).
    """
    pairs = as_pairs(records)
    budget = toks_per_batch or DEFAULT_TOKS_PER_BATCH[loaded.spec.family]
    empty = [rid for rid, seq in pairs if not seq]
    if empty:
        raise InputError(
            f"{len(empty)} empty sequence(s) cannot be embedded",
            expected="at least one residue or base per record",
            found="empty: " + ", ".join(empty[:5]) + (" ..." if len(empty) > 5 else ""),
            fix="drop empty records before extraction",
        )
    seqs = [seq for _, seq in pairs]
    token_ids = tokenize(loaded, seqs)
    lengths = [len(seq) for seq in seqs]
    data = torch.empty((len(pairs), loaded.dim), dtype=torch.float32)
    token_lengths = [len(ids) for ids in token_ids]
    bar = tqdm(total=len(pairs), desc=desc or f"{loaded.spec.display_name} embeddings", unit="seq",
               disable=not progress or not sys.stderr.isatty())  # in a pipe (a CI log) no redrawn bar
    path = loaded.execution
    with bar, stage_threads(extraction_stage(loaded.size)):
        if path is None or not path.compiles:  # eager, as it always ran: a copy to the host per batch
            for batch in plan_batches(token_lengths, budget, exact_lengths=exact_lengths):
                data[batch] = embed_batch(loaded, [token_ids[i] for i in batch], [lengths[i] for i in batch])
                bar.update(len(batch))
        else:
            # A compiled path (extract/forward.py): every shape compiled before the first batch; vectors stay on
            # the device until the end, so the host never waits for the GPU between batches.
            path.warm(loaded, token_lengths, budget)
            pooled = []
            for batch in path.plan(token_lengths, budget):
                pooled.append((batch.indices, path.embed(loaded, token_ids, lengths, batch)))
                bar.update(len(batch.indices))
            for indices, vectors in pooled:
                data[indices] = vectors.to("cpu", torch.float32)
    meta = embedding_meta(loaded, input_sha256=records_sha256(pairs), n=len(pairs), toks_per_batch=budget)
    return Embeddings([rid for rid, _ in pairs], data, torch.tensor(lengths, dtype=torch.long), meta)
