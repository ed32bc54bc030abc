"""The execution paths (virnucpro_core/extract/forward.py): plans, the document mask, each path against eager.

The fast tests check the plans, the FlexAttention block table and the packed
encoder run eagerly (FlexAttention's reference implementation on the CPU).
The slow ones compile with inductor on the CPU, as a GPU run compiles with
Triton: compiled and packed extraction against eager on ragged lengths, a
one-residue protein, one past the 1,024-residue pooling limit and a batch of
one, and the graphs compiled counted against each path's announced bound.
"""

from __future__ import annotations

import logging
import random

import pytest
import torch

from virnucpro_core.errors import InputError
from virnucpro_core.extract.embeddings import extract_embeddings, tokenize
from virnucpro_core.extract.features import extract_records
from virnucpro_core.extract.forward import (
    CompiledPath,
    PackedPath,
    _packed_encoder,
    auto_path,
    bucket_width,
    document_blocks,
    pack,
    prepare_path,
)
from virnucpro_core.gate.benchmark import compile_before_timing, compiled_since, deployed_settings
from virnucpro_core.layouts.virnucpro import load_features
from virnucpro_core.models.registry import load_model

AMINO = "ACDEFGHIKLMNPQRSTVWY"
# Ragged, a one-residue protein, one past ESM's 1,024-residue pooling limit.
LENGTHS = [1, 5, 37, 60, 61, 99, 100, 1100]
# Small rows and batches keep CPU compilation short: the compiled path runs two shapes here, (1, 1152) for the
# 1,100-residue protein and (9, 112) for the rest; the packed path (1, 1152) and a row of (1, 1024).
BUDGET = 1024


def proteins(lengths, seed=0):
    rng = random.Random(seed)
    return [(f"p{i}_{n}", "".join(rng.choice(AMINO) for _ in range(n))) for i, n in enumerate(lengths)]


@pytest.fixture(scope="module")
def fast():
    torch.set_num_threads(1)
    return load_model("fastesm2_650", weights="random", size="tiny", device="cpu")


@pytest.fixture(scope="module")
def eager_vectors(fast):
    return extract_embeddings(fast, proteins(LENGTHS), toks_per_batch=BUDGET, progress=False).data


# --------------------------------------------------------------------------- plans


def test_bucket_widths_are_a_short_ladder():
    widths = {t: bucket_width(t) for t in (1, 16, 17, 92, 97, 102, 112, 113, 168, 185, 255, 256, 257, 1026)}
    assert widths == {1: 16, 16: 16, 17: 32, 92: 96, 97: 112, 102: 112, 112: 112, 113: 128, 168: 176, 185: 192,
                      255: 256, 256: 256, 257: 288, 1026: 1152}
    for low in (128, 256, 512, 1024, 4096):  # at most 8 widths per doubling, at most 1/8 padding past 128 tokens
        assert len({bucket_width(t) for t in range(low + 1, 2 * low + 1)}) == 8
        assert all(bucket_width(t) - t < t / 8 for t in range(low, 2 * low))


def test_compiled_plan_has_one_static_shape_per_width():
    rng = random.Random(1)
    lengths = [rng.randint(92, 112) for _ in range(500)] + [3, 1102]
    path = CompiledPath()
    batches = path.plan(lengths, 8192)
    assert sorted(i for b in batches for i in b.indices) == list(range(len(lengths))), "every sequence exactly once"
    for batch in batches:
        rows, width = batch.shape
        assert rows == max(1, 8192 // width) and len(batch.indices) <= rows
        assert max(lengths[i] for i in batch.indices) <= width
    assert {b.shape[1] for b in batches} <= {bucket_width(t) for t in lengths}
    assert path.bound(lengths, 8192) == len({bucket_width(t) for t in lengths}) == 4  # 96, 112, 16, 1152


def test_pack_fills_rows_without_splitting_a_protein():
    rng = random.Random(2)
    lengths = [rng.randint(3, 200) for _ in range(1000)] + [9000]
    rows = pack(lengths, 8192)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    over = [row for row in rows if sum(lengths[i] for i in row) > 8192]
    assert over == [[len(lengths) - 1]], "only the protein longer than a row exceeds it, alone"
    used = sum(lengths) - 9000
    assert len(rows) - 1 <= used // 8192 + 2, f"{len(rows) - 1} rows for {used} tokens: packing leaves rows half-empty"
    shapes = PackedPath().shapes(lengths, 8192)
    assert shapes == [(1, 9216), (1, 8192)], "rows of the budget, and one of a ladder width for the long protein"
    assert PackedPath().bound(lengths, 8192) == 2


def test_document_blocks_cover_exactly_the_blocks_a_document_mask_touches():
    """A row of 20 proteins and a long padding tail: the block table lists exactly the key blocks the document mask
    reaches, and padding reaches only its own block (one document of all of it would be quadratic in its length)."""
    rng = random.Random(3)
    sizes = [rng.randint(1, 300) for _ in range(20)]
    ids, positions, doc = PackedPath()._row([[5] * n for n in sizes], 8192, 1, torch.device("cpu"))
    assert positions[: sizes[0]].tolist() == list(range(sizes[0])), "positions restart at each protein"
    counts, indices = document_blocks(doc)
    dense = doc[:, None] == doc[None, :]
    n = len(doc) // 128
    touched = dense.view(n, 128, n, 128).any(dim=3).any(dim=1)  # [q block, kv block]
    for q in range(n):
        listed = set(indices[0, 0, q, : counts[0, 0, q]].tolist())
        assert listed == set(torch.nonzero(touched[q]).flatten().tolist()), f"query block {q}"
    padding_only = (sum(sizes) + 127) // 128
    assert counts[0, 0, padding_only:].tolist() == [1] * (n - padding_only)


# --------------------------------------------------------------------------- packed semantics, eager


def test_packed_encoder_equals_padded_batches_eagerly(fast, eager_vectors):
    """FlexAttention's reference implementation (no compilation): the packed row's vectors are the padded batch's."""
    records = proteins(LENGTHS)
    path = PackedPath()
    token_ids = tokenize(fast, [s for _, s in records])
    lengths = [len(s) for _, s in records]
    out = torch.empty_like(eager_vectors)
    path._compiled_fn = lambda: _packed_encoder  # the same function, run eagerly
    with pytest.warns(UserWarning, match="flex_attention called without torch.compile"):
        for batch in path.plan([len(t) for t in token_ids], BUDGET):
            out[batch.indices] = path.embed(fast, token_ids, lengths, batch)
    assert (out - eager_vectors).abs().max() < 1e-5


# --------------------------------------------------------------------------- choosing a path


def test_auto_runs_eager_on_the_cpu_and_for_the_baseline(fast, caplog):
    caplog.set_level(logging.INFO, logger="virnucpro_core.extract.forward")
    ready = prepare_path(fast, "auto")
    assert ready.provenance["path"] == "eager" and ready.execution.name == "eager"
    lines = [r.getMessage() for r in caplog.records if "extraction path" in r.getMessage()]
    assert len(lines) == 1 and "the CPU" in lines[0] and "--extraction-path" in lines[0], lines
    assert auto_path("esm2_3b", torch.device("cuda"))[0] == "eager"
    assert auto_path("dnabert_s", torch.device("cuda"))[0] == "eager"
    assert deployed_settings("esm2_3b", "cuda")["path"] == "eager", "the gated baseline stays as VirNucPro ran it"


def test_auto_on_a_gpu_falls_back_with_each_reason(monkeypatch):
    import virnucpro_core.extract.forward as forward

    monkeypatch.setattr(forward, "support", lambda path, device: {"packed": "GPU compute capability 7.5 is below 8.0",
                                                                  "compiled": None}.get(path))
    path, reason = auto_path("fastesm2_650", torch.device("cuda"))
    assert path == "compiled" and "packed: GPU compute capability 7.5 is below 8.0" in reason
    monkeypatch.setattr(forward, "support", lambda path, device: None if path == "eager" else "no Triton")
    assert auto_path("fastesm2_650", torch.device("cuda")) == (
        "eager", "the default on a GPU, where supported; here packed: no Triton; compiled: no Triton")
    monkeypatch.setattr(forward, "support", lambda path, device: None)
    assert auto_path("fastesm2_650", torch.device("cuda")) == ("packed", "the default on a GPU")


def test_a_compiled_path_is_for_esm_models_only():
    dna = load_model("dnabert_s", weights="random", size="tiny", device="cpu")
    with pytest.raises(InputError, match="for the ESM protein models"):
        prepare_path(dna, "packed")
    with pytest.raises(InputError, match="unknown extraction path"):
        prepare_path(dna, "fast")
    assert prepare_path(dna, "auto").provenance["path"] == "eager"


def test_a_path_that_fails_to_compile_runs_eager_and_says_so_once(fast, tmp_path, monkeypatch, caplog):
    def broken(self, loaded, shape):
        raise RuntimeError("inductor: no working C++ compiler\nmore detail")

    monkeypatch.setattr(PackedPath, "_run_shape", broken)
    caplog.set_level(logging.WARNING, logger="virnucpro_core.extract.forward")
    packed = prepare_path(fast, "packed", budget=BUDGET)
    records = proteins([40, 7])
    first = extract_records(packed, records, tmp_path / "a.pt", source=tmp_path / "a.faa", progress=False)
    second = extract_records(packed, records, tmp_path / "b.pt", source=tmp_path / "b.faa", progress=False)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "packed did not compile here (RuntimeError: inductor: no working C++ compiler)" \
        in warnings[0] and "more detail" not in warnings[0], warnings
    eager = extract_embeddings(fast, records, progress=False).data
    for done in (first, second):
        assert done.meta["path"] == "eager" and torch.equal(done.data, eager)
    assert load_features(tmp_path / "a.pt").meta["path"] == "eager"


# --------------------------------------------------------------------------- compiled, on the CPU (inductor)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["compiled", "packed"])
def test_compiled_paths_equal_eager_and_compile_within_their_bound(fast, eager_vectors, name):
    """Ragged lengths, one residue, 1,100 residues (pooled over the first 1,024), a batch of one; cold on a fresh
    machine, ~1.5 min per path on 2 cores (inductor's cache makes a rerun ~10 s)."""
    ready = prepare_path(fast, name, budget=BUDGET)
    path = ready.execution
    lengths = [n + 2 for n in LENGTHS]
    out = extract_embeddings(ready, proteins(LENGTHS), toks_per_batch=BUDGET, progress=False)
    assert out.meta["path"] == name
    assert (out.data - eager_vectors).abs().max() < 1e-5, f"{name} against eager"
    shapes = path.shapes(lengths, BUDGET)
    assert path.stats.graphs == len(shapes) <= path.bound(lengths, BUDGET), (
        f"{path.stats.graphs} graphs for {len(shapes)} shapes, bound {path.bound(lengths, BUDGET)}")
    assert path.stats.seconds > 0 and sorted(path.stats.shapes) == sorted(shapes)

    one = extract_embeddings(ready, proteins(LENGTHS)[6:7], toks_per_batch=BUDGET, progress=False).data
    assert (one - eager_vectors[6:7]).abs().max() < 1e-5, "a batch of one"
    again = extract_embeddings(ready, proteins(LENGTHS), toks_per_batch=BUDGET, progress=False).data
    assert path.stats.graphs == len(shapes), "shapes compiled once are not compiled again"
    assert torch.equal(again, out.data)


@pytest.mark.slow
def test_the_warmup_before_timing_covers_every_shape_of_the_rounds(fast):
    """What the speed gate does: compile before the rounds, then time them; nothing compiles in a round. The
    widths are those of the test above, so inductor's cache serves them."""
    bench = proteins([95, 101, 99, 100, 102, 40, 37, 30], seed=4)
    # The suite compiles outside extraction's threads (here 2; the stand-ins extract on 1): inductor's CPU graphs are
    # guarded on the thread count, so compiling with other threads than the rounds would compile again in them.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ready, record = compile_before_timing(prepare_path(fast, "compiled", budget=BUDGET), bench, BUDGET)
    finally:
        torch.set_num_threads(threads)
    assert record.path == "compiled" and record.graphs == len(record.shapes) <= record.bound
    for _ in range(2):  # warmup and timed rounds
        extract_embeddings(ready, bench, toks_per_batch=BUDGET, progress=False)
    assert compiled_since(ready, record).graphs_in_rounds == 0
    extract_embeddings(ready, proteins([1100]), toks_per_batch=BUDGET, progress=False)  # a shape it never ran
    assert compiled_since(ready, record).graphs_in_rounds == 1, "the check sees a compilation inside the rounds"
