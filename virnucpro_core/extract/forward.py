"""How a batch of proteins runs through an ESM network: eager, compiled over length buckets, or packed.

Three execution paths give the same pooled vectors (``tests/extract/test_forward.py``
checks each against eager on the CPU):

* ``eager`` — transformers' ``EsmModel`` as it is: right-padded batches under
  a token budget (:func:`~virnucpro_core.extract.embeddings.plan_batches`),
  SDPA with a padding mask. What VirNucPro ran, and what runs where nothing
  else is supported.
* ``compiled`` — :func:`torch.compile` over a bounded set of static shapes.
  Each batch is padded to a width on a ladder (:func:`bucket_width`: multiples
  of 16 tokens up to 255, then 8 widths per doubling of length) and to a fixed
  number of rows per width (the token budget over the width), so an input
  compiles one graph per width it uses: one or two for VirNucPro's 300 bp
  chunks (proteins of 99–100 residues), whatever the input's size.
* ``packed`` — proteins laid end to end in rows of exactly the token budget,
  no padding between them; FlexAttention with a document mask keeps each
  protein attending to itself and rotary positions restart at each protein.
  Compiled: one shape, so one graph (plus one per ladder width for a protein
  longer than a row), and no padding but the last row's tail.

:func:`prepare_path` picks the path for a loaded model (``auto``: ``packed``
for FastESM2 on a CUDA GPU that compiles, ``eager`` elsewhere: the CPU, ESM2 3B
as VirNucPro ran it, DNABERT-S) and says why in one line. A compiled path
compiles each shape once, on first use or in :meth:`ExecutionPath.warm`,
counting graphs and seconds (:class:`CompileStats`); where compilation fails,
the path turns eager and one line says why (:meth:`ExecutionPath.ready`).
Compiled kernels are cached by inductor; :func:`use_compile_cache` keeps that
cache in a folder of the caller's (the acceptance suite: ``<artifacts>/inductor``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.defaults import EXTRACTION_PATH, EXTRACTION_PATHS
from virnucpro_core.errors import InputError
from virnucpro_core.extract.embeddings import (
    DEFAULT_TOKS_PER_BATCH, collate, embed_batch, pad_id, plan_batches, pool, pooling_weights,
)
from virnucpro_core.models.registry import LoadedModel
from virnucpro_core.models.specs import ESM_POOL_MAX_RESIDUES, get_spec
from virnucpro_core.threads import extraction_stage, stage_threads

log = logging.getLogger(__name__)

# FlexAttention's sparse block: the document mask is described a block of 128 x 128 positions at a time.
FLEX_BLOCK = 128
# Where packed rows hold fewer tokens than this, they are padded up to it (FlexAttention's block).
MIN_ROW_TOKENS = FLEX_BLOCK
# The smallest GPU compute capability each compiled path is offered on (auto); an explicit request tries anyway.
MIN_CAPABILITY = {"compiled": (7, 0), "packed": (8, 0)}
# What auto runs for each model on a GPU; everything else (the CPU, other models) runs eager.
AUTO_ON_CUDA = {"fastesm2_650": "packed"}
# Each compiled path's fallback when it is not supported here, in order.
FALLBACK = {"packed": "compiled", "compiled": "eager"}


# --------------------------------------------------------------------------- shapes


def bucket_width(tokens: int) -> int:
    """The padded width a batch whose longest member has ``tokens`` tokens runs at (the compiled path).

    Multiples of 16 up to 255 tokens, then steps of an eighth of the power of two
    below (32 from 256, 64 from 512, 128 from 1,024...): at most 8 widths per
    doubling of length, padding at most ~12.5 % past 128 tokens.
    """
    if tokens < 1:
        raise ValueError(f"a batch needs at least one token, got {tokens}")
    step = max(16, 1 << max(0, tokens.bit_length() - 4))
    return -(-tokens // step) * step


@dataclass(frozen=True)
class Batch:
    """One forward pass: which sequences (input indices), and the ``(rows, width)`` shape it runs at."""

    indices: list[int]
    shape: tuple[int, int]


@dataclass
class CompileStats:
    """What compiling cost a path: graphs compiled, seconds of the calls that compiled them, and their shapes.

    ``graphs`` counts every graph handed to inductor (a backend hook), so a
    recompilation counts as one more.
    """

    graphs: int = 0
    seconds: float = 0.0
    shapes: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"graphs": self.graphs, "seconds": round(self.seconds, 3), "shapes": [list(s) for s in self.shapes]}


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` (on the host) on ``device`` without waiting for the GPU: from pinned memory, non-blocking.

    A copy from pageable host memory synchronises the stream first, so the
    host would wait for the previous batch before preparing the next one.
    """
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


# --------------------------------------------------------------------------- eager


class ExecutionPath:
    """The eager path (the base of the others): plan, warm and embed one batch.

    Attributes:
        name: ``eager``, ``compiled`` or ``packed``.
        reason: why this path runs (the line :func:`prepare_path` logs).
        stats: what compiling has cost so far (nothing, eager).
    """

    name = "eager"
    compiles = False

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        self.stats = CompileStats()
        self._compiled: set[tuple[int, int]] = set()

    def plan(self, token_lengths: Sequence[int], budget: int) -> list[Batch]:
        """Length-sorted batches under ``budget`` padded tokens, each at its own longest length."""
        return [Batch(b, (len(b), max(token_lengths[i] for i in b))) for b in plan_batches(token_lengths, budget)]

    def shapes(self, token_lengths: Sequence[int], budget: int) -> list[tuple[int, int]]:
        """The distinct shapes the plan of these lengths runs at, in order of first use."""
        return list(dict.fromkeys(batch.shape for batch in self.plan(token_lengths, budget)))

    def pending(self, token_lengths: Sequence[int], budget: int) -> list[tuple[int, int]]:
        """The shapes of this plan not compiled yet (none, eager)."""
        if not self.compiles:
            return []
        return [shape for shape in self.shapes(token_lengths, budget) if shape not in self._compiled]

    def embed(self, loaded: LoadedModel, token_ids: Sequence[Sequence[int]], seq_lengths: Sequence[int],
              batch: Batch) -> torch.Tensor:
        """Pooled float32 vectors ``[len(batch.indices), dim]`` of one planned batch (CPU, eager)."""
        return embed_batch(loaded, [token_ids[i] for i in batch.indices], [seq_lengths[i] for i in batch.indices])

    def warm(self, loaded: LoadedModel, token_lengths: Sequence[int], budget: int) -> CompileStats:
        """Compile every shape the plan of these lengths uses that is not compiled yet; the stats of this call.

        Runs one throw-away batch of each such shape, so that timed or long runs
        after it compile nothing (eager: nothing to do).
        """
        before = replace(self.stats, shapes=list(self.stats.shapes))
        todo = self.pending(token_lengths, budget)
        if todo:
            log.info("%s: compiling %d shape(s) %s for %s (%s) ...", self.name, len(todo),
                     ", ".join(f"{r}x{w}" for r, w in todo), loaded.spec.display_name, self.describe(budget))
            with stage_threads(extraction_stage(loaded.size)):
                for shape in todo:
                    self._run_shape(loaded, shape)
            log.info("%s: %d graph(s) compiled in %.1f s", self.name, self.stats.graphs - before.graphs,
                     self.stats.seconds - before.seconds)
        return CompileStats(self.stats.graphs - before.graphs, self.stats.seconds - before.seconds,
                            self.stats.shapes[len(before.shapes):])

    def bound(self, token_lengths: Sequence[int], budget: int) -> int:
        """The most graphs embedding these lengths can compile, whatever the shards: 0 eager.

        The compiled path: one per ladder width among the lengths; packed: the
        row, plus one per width of a protein longer than a row.
        """
        return 0

    def ready(self, loaded: LoadedModel, token_lengths: Sequence[int], budget: int) -> LoadedModel:
        """``loaded`` ready to embed these lengths: a compiled path compiles its first shape now, and announces
        how many graphs the input can need; where compiling fails, eager instead.

        Returns ``loaded`` itself, or a copy whose path is eager and whose
        provenance says so (one warning line names the failure).
        """
        return loaded

    def describe(self, budget: int) -> str:
        """The path in a few words, for logs and reports."""
        return "transformers' EsmModel, padded batches, SDPA with a padding mask"

    def _run_shape(self, loaded: LoadedModel, shape: tuple[int, int]) -> None:  # pragma: no cover - eager
        raise NotImplementedError


# --------------------------------------------------------------------------- compiled, shared


class _CompilingPath(ExecutionPath):
    """What the two compiled paths share: a counting inductor backend, a compiled function, the fallback."""

    compiles = True

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self._fn: Callable[..., torch.Tensor] | None = None
        self._failed: str | None = None  # why compiling failed, once it has: eager from then on

    def _backend(self, graph_module, example_inputs):
        # Counting here sees every graph dynamo hands over: the first of a shape and any recompilation.
        from torch._inductor.compile_fx import compile_fx  # imported when something compiles

        self.stats.graphs += 1
        return compile_fx(graph_module, example_inputs)

    def _compiled_fn(self) -> Callable[..., torch.Tensor]:
        if self._fn is None:
            import torch._dynamo  # a second or so to import; only a compiled path needs it

            # Every width is a static shape of its own: allow them all (dynamo's default stops at 8 and then runs
            # the rest eager, silently).
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            self._fn = torch.compile(self._forward, dynamic=False, fullgraph=True, backend=self._backend)
        return self._fn

    def _forward(self, *args):  # pragma: no cover - defined by each compiled path
        raise NotImplementedError

    def _timed(self, shape: tuple[int, int], call: Callable[[], Any]) -> Any:
        """``call()``, its seconds and shape counted as compilation when it compiled a graph."""
        graphs, start = self.stats.graphs, time.perf_counter()
        out = call()
        if self.stats.graphs > graphs:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                torch.cuda.synchronize()
            self.stats.seconds += time.perf_counter() - start
            self.stats.shapes.append(shape)
        self._compiled.add(shape)
        return out

    def ready(self, loaded: LoadedModel, token_lengths: Sequence[int], budget: int) -> LoadedModel:
        if self._failed is not None:  # said once already
            return with_path(loaded, ExecutionPath(self._failed))
        shapes = self.shapes(token_lengths, budget)
        if not shapes or shapes[0] in self._compiled:
            return loaded
        log.info("%s for %s: at most %d graph(s) for these %s sequences (%s)", self.name, loaded.spec.display_name,
                 self.bound(token_lengths, budget), f"{len(token_lengths):,}", self.describe(budget))
        try:
            # With the threads extraction runs with: inductor's CPU kernels are compiled for a thread count, and
            # one compiled with another would be compiled again in the first batch (a timed round, say).
            with stage_threads(extraction_stage(loaded.size)):
                self._run_shape(loaded, shapes[0])
        except Exception as error:  # noqa: BLE001 - any failure to compile means: run eager, and say why
            first = (str(error).strip().splitlines() or [""])[0][:300]
            reason = (f"{self.name} did not compile here ({type(error).__name__}: {first}); the vectors are the "
                      "same, the speed is eager's; --extraction-path eager skips the attempt")
            log.warning("extraction path for %s: eager — %s", loaded.spec.display_name, reason)
            self._failed = reason
            return with_path(loaded, ExecutionPath(reason))
        return loaded


# --------------------------------------------------------------------------- compiled over length buckets


class CompiledPath(_CompilingPath):
    """``torch.compile`` of transformers' ``EsmModel`` over static shapes: one per width of the ladder."""

    name = "compiled"

    def plan(self, token_lengths: Sequence[int], budget: int) -> list[Batch]:
        """Longest first: each batch takes the width of its longest member and ``budget // width`` rows."""
        order = sorted(range(len(token_lengths)), key=lambda i: (-token_lengths[i], i))
        batches, start = [], 0
        while start < len(order):
            width = bucket_width(token_lengths[order[start]])
            rows = max(1, budget // width)
            batches.append(Batch(order[start:start + rows], (rows, width)))
            start += rows
        return batches

    def bound(self, token_lengths: Sequence[int], budget: int) -> int:
        return len({bucket_width(t) for t in token_lengths})

    def describe(self, budget: int) -> str:
        return (f"torch.compile of EsmModel, batches padded to widths of 16-token steps (8 per doubling past 255) "
                f"and {budget:,} // width rows: one graph per width")

    def _forward(self, model, input_ids, attention_mask):
        return model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def _run_shape(self, loaded: LoadedModel, shape: tuple[int, int]) -> None:
        rows, width = shape
        ids = torch.full(shape, pad_id(loaded), dtype=torch.long, device=loaded.device)
        mask = torch.ones(shape, dtype=torch.long, device=loaded.device)
        with torch.inference_mode():
            self._timed(shape, lambda: self._compiled_fn()(loaded.model, ids, mask))

    def embed(self, loaded, token_ids, seq_lengths, batch) -> torch.Tensor:
        rows, width = batch.shape
        real = [token_ids[i] for i in batch.indices]
        # Rows beyond the sequences: <cls> <eos>, their output thrown away; padding to the width: the pad token.
        dummy = real[-1][:1] + real[-1][-1:]
        input_ids, mask = collate(real + [dummy] * (rows - len(real)), pad_id(loaded), loaded.device, width=width,
                                  to_device=to_device)
        with torch.inference_mode():
            hidden = self._timed(batch.shape, lambda: self._compiled_fn()(loaded.model, input_ids, mask))
            lengths = to_device(torch.as_tensor([seq_lengths[i] for i in batch.indices]), loaded.device)
            n = len(real)
            return pool(hidden[:n], pooling_weights("esm", mask[:n], lengths))


# --------------------------------------------------------------------------- packed, FlexAttention


def pack(token_lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices per row: longest first, each row filled up to ``capacity`` tokens (first fit, in that order).

    A sequence longer than ``capacity`` gets a row of its own.
    """
    order = sorted(range(len(token_lengths)), key=lambda i: (-token_lengths[i], i))
    rows: list[list[int]] = []
    room: list[int] = []
    for index in order:
        size = token_lengths[index]
        # Rows fill in order of creation; checking the most recent few keeps this linear and still tight,
        # since lengths only shrink.
        for row in range(max(0, len(rows) - 8), len(rows)):
            if room[row] >= size:
                rows[row].append(index)
                room[row] -= size
                break
        else:
            rows.append([index])
            room.append(max(capacity, size) - size)
    return rows


def document_blocks(doc: torch.Tensor, block: int = FLEX_BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """FlexAttention's block table for a packed row: ``(kv_num_blocks, kv_indices)``, shaped ``[1, 1, n, n]``.

    ``doc`` gives each position's document (non-decreasing; padding is one more
    document at the end). Query block ``i`` sees the key blocks from the first
    position of its first document to the last of its last, a contiguous
    range; the mask itself (``doc[q] == doc[kv]``) is applied inside them.
    """
    n = doc.numel() // block
    first = torch.searchsorted(doc, doc, right=False).view(n, block)[:, 0] // block
    last = (torch.searchsorted(doc, doc, right=True) - 1).view(n, block)[:, -1] // block
    counts = (last - first + 1).to(torch.int32)
    indices = (first[:, None] + torch.arange(n, device=doc.device)[None, :]).clamp(max=n - 1).to(torch.int32)
    return counts[None, None], indices[None, None]


def _packed_encoder(model, input_ids, positions, doc, kv_num_blocks, kv_indices):
    """The encoder on one packed row ``[T]``: transformers' own modules, FlexAttention with a document mask."""
    # Only the packed path needs them (transformers takes seconds to import); traced once per compilation.
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
    from transformers.models.esm.modeling_esm import apply_rotary_pos_emb

    tokens = input_ids.shape[0]

    def same_document(batch, head, q, kv):
        return doc[q] == doc[kv]

    mask = BlockMask.from_kv_blocks(kv_num_blocks, kv_indices, BLOCK_SIZE=FLEX_BLOCK, mask_mod=same_document,
                                    seq_lengths=(tokens, tokens))
    # No <mask> token in the input: token dropout's rescaling is the constant 0.88, as in a padded batch.
    hidden = model.embeddings(input_ids=input_ids[None], attention_mask=None)
    cos, sin = model.rotary_embeddings(hidden, positions[None])
    for layer in model.encoder.layer:
        attention = layer.attention
        heads = attention.self
        normed = attention.LayerNorm(hidden)
        split = (1, tokens, -1, heads.attention_head_size)
        # As EsmSelfAttention: the query scaled before the rotary embedding, attention itself unscaled.
        query = heads.query(normed).view(split).transpose(1, 2) * heads.attention_head_size**-0.5
        key = heads.key(normed).view(split).transpose(1, 2)
        value = heads.value(normed).view(split).transpose(1, 2)
        query, key = apply_rotary_pos_emb(query, key, cos, sin, unsqueeze_dim=1)
        context = flex_attention(query, key, value, block_mask=mask, scale=1.0)
        hidden = attention.output(context.transpose(1, 2).reshape(1, tokens, -1), hidden)
        hidden = layer.feed_forward_chunk(hidden)
    return model.encoder.emb_layer_norm_after(hidden)[0]


class PackedPath(_CompilingPath):
    """Rows of exactly the token budget, proteins end to end, FlexAttention with a document mask, compiled."""

    name = "packed"

    def plan(self, token_lengths: Sequence[int], budget: int) -> list[Batch]:
        capacity = max(MIN_ROW_TOKENS, budget // FLEX_BLOCK * FLEX_BLOCK)
        out = []
        for row in pack(token_lengths, capacity):
            used = sum(token_lengths[i] for i in row)
            width = capacity if used <= capacity else -(-bucket_width(used) // FLEX_BLOCK) * FLEX_BLOCK
            out.append(Batch(row, (1, width)))
        return out

    def bound(self, token_lengths: Sequence[int], budget: int) -> int:
        return len({shape for shape in self.shapes(token_lengths, budget)} | {(1, self._capacity(budget))}) \
            if token_lengths else 0

    @staticmethod
    def _capacity(budget: int) -> int:
        return max(MIN_ROW_TOKENS, budget // FLEX_BLOCK * FLEX_BLOCK)

    def describe(self, budget: int) -> str:
        capacity = max(MIN_ROW_TOKENS, budget // FLEX_BLOCK * FLEX_BLOCK)
        return (f"proteins packed end to end in rows of {capacity:,} tokens, FlexAttention with a document mask, "
                "torch.compile: one graph per row width")

    def _forward(self, model, input_ids, positions, doc, kv_num_blocks, kv_indices):
        return _packed_encoder(model, input_ids, positions, doc, kv_num_blocks, kv_indices)

    def _row(self, token_ids: Sequence[Sequence[int]], width: int, pad: int, device: torch.device):
        """Token ids, positions and documents of one packed row, padded to ``width``.

        Padding is a document per FlexAttention block (``n + block``): one
        document of all of it would attend across the whole tail, quadratic in
        its length (a last row half empty cost 5x a full one on the CPU).
        """
        ids = torch.full((width,), pad, dtype=torch.long)
        positions = torch.zeros(width, dtype=torch.long)
        doc = len(token_ids) + torch.arange(width) // FLEX_BLOCK
        start = 0
        for number, seq in enumerate(token_ids):
            end = start + len(seq)
            ids[start:end] = torch.as_tensor(seq, dtype=torch.long)
            positions[start:end] = torch.arange(len(seq))
            doc[start:end] = number
            start = end
        return to_device(ids, device), to_device(positions, device), to_device(doc, device)

    def _call(self, loaded: LoadedModel, shape, ids, positions, doc) -> torch.Tensor:
        counts, indices = document_blocks(doc)
        with torch.inference_mode():
            return self._timed(shape, lambda: self._compiled_fn()(loaded.model, ids, positions, doc, counts, indices))

    def _run_shape(self, loaded: LoadedModel, shape: tuple[int, int]) -> None:
        self._call(loaded, shape, *self._row([[pad_id(loaded)]], shape[1], pad_id(loaded), loaded.device))

    def embed(self, loaded, token_ids, seq_lengths, batch) -> torch.Tensor:
        real = [token_ids[i] for i in batch.indices]
        ids, positions, doc = self._row(real, batch.shape[1], pad_id(loaded), loaded.device)
        hidden = self._call(loaded, batch.shape, ids, positions, doc)
        with torch.inference_mode():
            # VirNucPro's pooling: residues 1..min(L, 1024) of each protein, <cls> at position 0.
            lengths = to_device(torch.as_tensor([seq_lengths[i] for i in batch.indices]), loaded.device)
            slot = doc.clamp(max=len(real))  # every padding position to one slot, thrown away
            limit = torch.cat([lengths.clamp(max=ESM_POOL_MAX_RESIDUES),
                               torch.zeros(1, dtype=lengths.dtype, device=loaded.device)])[slot]
            weights = ((positions >= 1) & (positions <= limit)).float()
            sums = torch.zeros(len(real) + 1, hidden.shape[1], dtype=torch.float32, device=loaded.device)
            sums.index_add_(0, slot, hidden.float() * weights[:, None])
            counts = torch.zeros(len(real) + 1, dtype=torch.float32, device=loaded.device).index_add_(0, slot, weights)
            return (sums / counts[:, None])[: len(real)]


# --------------------------------------------------------------------------- choosing a path

PATH_CLASSES: dict[str, type[ExecutionPath]] = {"eager": ExecutionPath, "compiled": CompiledPath, "packed": PackedPath}


def support(path: str, device: torch.device) -> str | None:
    """Why ``path`` cannot run on ``device`` here, or None when it can (eager always can)."""
    if path == "eager":
        return None
    if device.type == "cuda":
        from torch.utils._triton import has_triton  # what inductor generates GPU kernels with

        if not torch.cuda.is_available():
            return "no CUDA GPU is usable here"

        if not has_triton():
            return "torch.compile needs Triton on a GPU and this torch has none"
        capability = torch.cuda.get_device_capability(device)
        if capability < MIN_CAPABILITY[path]:
            need = ".".join(map(str, MIN_CAPABILITY[path]))
            return f"GPU compute capability {capability[0]}.{capability[1]} is below {need}"
        return None
    if device.type != "cpu":
        return f"torch.compile is not set up for {device.type} here"
    return None


def auto_path(model: str, device: torch.device) -> tuple[str, str]:
    """What ``auto`` runs for ``model`` (a registry name) on ``device``, and why (the reason line's text)."""
    spec = get_spec(model)
    if spec.family != "esm":
        return "eager", f"{spec.display_name} runs eager: the compiled paths are for the ESM protein models"
    wanted = AUTO_ON_CUDA.get(spec.name)
    if wanted is None:
        return "eager", f"{spec.display_name} runs eager, as VirNucPro ran it (the gated baseline)"
    if device.type != "cuda":
        return "eager", ("the CPU: compiling costs far more than it saves on the CPU (benchmarks/NOTES.md, section "
                         "10); --extraction-path compiled or packed compiles anyway")
    path, problems = wanted, []
    while (problem := support(path, device)) is not None:
        problems.append(f"{path}: {problem}")
        path = FALLBACK[path]
    if problems:
        return path, "the default on a GPU, where supported; here " + "; ".join(problems)
    return path, "the default on a GPU"


def ready_for(loaded: LoadedModel, seqs: Sequence[str], budget: int) -> LoadedModel:
    """``loaded`` ready to embed the ESM sequences ``seqs`` (:meth:`ExecutionPath.ready`); as it is when eager."""
    if loaded.execution is None or not loaded.execution.compiles:
        return loaded
    return loaded.execution.ready(loaded, [len(seq) + 2 for seq in seqs], budget)  # <cls> residues <eos>


def with_path(loaded: LoadedModel, path: ExecutionPath) -> LoadedModel:
    """``loaded`` with ``path`` as its execution path, recorded in its provenance (``path``)."""
    return replace(loaded, execution=path, provenance={**loaded.provenance, "path": path.name})


def prepare_path(loaded: LoadedModel, requested: str = EXTRACTION_PATH, *, budget: int | None = None) -> LoadedModel:
    """``loaded`` with the execution path ``requested`` resolves to here, announced in one line.

    ``auto`` picks per model and device (:func:`auto_path`); an explicit
    ``compiled`` or ``packed`` runs where torch.compile does (the CPU included),
    falling back to eager with the reason where it is not supported. Nothing
    compiles yet: the first extraction does (:meth:`ExecutionPath.ready`).

    Raises:
        InputError: an unknown path, or a compiled path asked of a model that is not an ESM model.
    """
    if requested not in EXTRACTION_PATHS:
        raise InputError(f"unknown extraction path {requested!r}", expected=", ".join(EXTRACTION_PATHS),
                         found=repr(requested))
    if requested == "auto":
        name, reason = auto_path(loaded.spec.name, loaded.device)
    elif requested != "eager" and loaded.spec.family != "esm":
        raise InputError(
            f"--extraction-path {requested} is for the ESM protein models, not {loaded.spec.display_name}",
            expected="eager or auto for dnabert_s", found=requested, fix="drop --extraction-path, or pass auto")
    else:
        name, reason = requested, "asked for (--extraction-path)"
        problem = support(name, loaded.device)
        if problem is not None:
            name, reason = "eager", f"{requested} asked for, but {problem}"
    path = PATH_CLASSES[name](reason)
    budget_text = path.describe(budget or DEFAULT_TOKS_PER_BATCH[loaded.spec.family])
    log.info("extraction path for %s on %s: %s (%s) — %s; change with --extraction-path", loaded.spec.display_name,
             loaded.device.type, name, budget_text, reason)
    return with_path(loaded, path)


def use_compile_cache(directory: str | os.PathLike) -> Path | None:
    """Keep inductor's compiled kernels in ``directory`` (unless ``TORCHINDUCTOR_CACHE_DIR`` is set already).

    Set before the first compilation of the process; later runs with the same
    folder reuse the kernels instead of compiling them again. Returns the folder
    in use, or None when the user's own setting wins.
    """
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return None
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    return folder
