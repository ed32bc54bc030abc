"""Batched extraction and pooling conventions (CPU, tiny stand-ins)."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from virnucpro_core import threads
from virnucpro_core.extract import embeddings as E
from virnucpro_core.errors import InputError
from virnucpro_core.models.registry import load_model

AMINO = "ACDEFGHIKLMNPQRSTVWY"


@pytest.fixture(scope="module")
def fastesm():
    return load_model("fastesm2_650", weights="random", size="tiny", device="cpu", seed=0)


@pytest.fixture(scope="module")
def esm3b():
    return load_model("esm2_3b", weights="random", size="tiny", device="cpu", seed=0)


@pytest.fixture(scope="module")
def dnabert_s():
    return load_model("dnabert_s", weights="random", size="tiny", device="cpu", seed=0)


def proteins(n: int, seed: int = 0, lo: int = 5, hi: int = 60) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(f"p{i}", "".join(rng.choice(AMINO) for _ in range(rng.randint(lo, hi)))) for i in range(n)]


def dnas(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(f"d{i}", "".join(rng.choice("ACGT") for _ in range(rng.randint(20, 150)))) for i in range(n)]


def full_hidden(loaded, seq: str) -> torch.Tensor:
    ids = torch.tensor([E.tokenize(loaded, [seq])[0]])
    with torch.inference_mode():
        return E.last_hidden_state(loaded, ids, None)[0]


# --------------------------------------------------------------------------- batching


def test_plan_batches_literal():
    # lengths by index:      0   1   2   3  4   5
    batches = E.plan_batches([10, 30, 10, 5, 40, 30], toks_per_batch=60)
    assert batches == [[4], [1, 5], [0, 2, 3]]


def test_sequence_longer_than_budget_gets_its_own_batch():
    assert E.plan_batches([500, 3, 3], toks_per_batch=10) == [[0], [1, 2]]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=80), st.integers(min_value=1, max_value=2000)
)
def test_plan_batches_properties(lengths, budget):
    batches = E.plan_batches(lengths, budget)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths))), "every sequence exactly once"
    for batch in batches:
        padded = max(lengths[i] for i in batch) * len(batch)
        assert padded <= budget or len(batch) == 1, f"batch {batch} uses {padded} > {budget} tokens"


def test_exact_length_batches_literal():
    # lengths by index:      0   1   2   3  4   5   6
    batches = E.plan_batches([10, 30, 10, 5, 40, 30, 30], toks_per_batch=60, exact_lengths=True)
    assert batches == [[4], [1, 5], [6], [0, 2], [3]]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=80), st.integers(min_value=1, max_value=400)
)
def test_exact_length_batches_hold_one_length_within_budget(lengths, budget):
    batches = E.plan_batches(lengths, budget, exact_lengths=True)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths))), "every sequence exactly once"
    for batch in batches:
        assert len({lengths[i] for i in batch}) == 1, f"batch {batch} mixes lengths {[lengths[i] for i in batch]}"
        assert lengths[batch[0]] * len(batch) <= budget or len(batch) == 1
    # As few batches as the budget allows: one length never spills into more batches than needed.
    for length in set(lengths):
        count, per_batch = lengths.count(length), max(1, budget // length)
        assert sum(lengths[b[0]] == length for b in batches) == -(-count // per_batch)


def test_zero_budget_is_rejected():
    with pytest.raises(InputError, match="token budget"):
        E.plan_batches([3], 0)


# --------------------------------------------------------------------------- tokens and pooling


def test_esm_tokenize_matches_the_esm_tokenizer(fastesm):
    seqs = ["MKTAYIAKQR", "LAGVSERTDIPKQNFYMHWCXBUZO", "M"]
    assert E.tokenize(fastesm, seqs) == [fastesm.tokenizer(s)["input_ids"] for s in seqs]


def test_pool_on_known_hidden_states():
    hidden = torch.arange(2 * 5 * 2, dtype=torch.float32).reshape(2, 5, 2)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    # ESM: residues 1..L (L = 3 and 1); <cls> at 0, <eos> at L + 1.
    esm = E.pool(hidden, E.pooling_weights("esm", mask, torch.tensor([3, 1])))
    assert esm.tolist() == [[4.0, 5.0], [12.0, 13.0]]
    # DNABERT-S: every non-padding token, [CLS] and [SEP] included.
    dna = E.pool(hidden, E.pooling_weights("dnabert", mask, torch.tensor([3, 1])))
    assert dna.tolist() == [[4.0, 5.0], [12.0, 13.0]]
    dna_full = E.pool(hidden[:1], E.pooling_weights("dnabert", torch.ones(1, 5), torch.tensor([9])))
    assert dna_full.tolist() == [[4.0, 5.0]]


def test_esm_pooling_is_mean_over_residues_of_last_hidden_state(fastesm):
    seq = "MKTAYIAKQRQISFVKSHFSRQ"
    emb = E.extract_embeddings(fastesm, [("a", seq)], progress=False)
    h = full_hidden(fastesm, seq)
    assert torch.allclose(emb.data[0], h[1 : len(seq) + 1].mean(0), atol=1e-6)
    assert not torch.allclose(emb.data[0], h.mean(0), atol=1e-4), "<cls>/<eos> must not be averaged"


def test_esm_pooling_truncates_at_1024_residues_after_a_full_length_pass(fastesm):
    # Residues past 1024 are all W (absent before), so including them would shift the mean.
    seq = "".join(random.Random(1).choice(AMINO.replace("W", "")) for _ in range(1024)) + "W" * 76
    emb = E.extract_embeddings(fastesm, [("long", seq)], progress=False)
    h = full_hidden(fastesm, seq)
    assert h.shape[0] == 1102, "the whole sequence goes through the model"
    assert torch.allclose(emb.data[0], h[1:1025].mean(0), atol=1e-6)
    assert not torch.allclose(emb.data[0], h[1:1101].mean(0), atol=1e-3)
    assert emb.lengths.tolist() == [1100]


def test_dnabert_pooling_includes_cls_and_sep(dnabert_s):
    seq = "ACGTTGCAAGGCTTACGATCGATCGGATCCA"
    emb = E.extract_embeddings(dnabert_s, [("d", seq)], progress=False)
    h = full_hidden(dnabert_s, seq)
    ids = E.tokenize(dnabert_s, [seq])[0]
    assert ids[0] == dnabert_s.tokenizer.cls_token_id and ids[-1] == dnabert_s.tokenizer.sep_token_id
    assert torch.allclose(emb.data[0], h.mean(0), atol=1e-6)


# --------------------------------------------------------------------------- batched == unbatched


@pytest.mark.parametrize("model", ["fastesm", "esm3b", "dnabert_s"])
def test_batched_equals_one_at_a_time(model, request):
    loaded = request.getfixturevalue(model)
    records = proteins(24, seed=2) if loaded.spec.family == "esm" else dnas(24, seed=2)
    batched = E.extract_embeddings(loaded, records, toks_per_batch=600, progress=False)
    single = E.extract_embeddings(loaded, records, toks_per_batch=1, progress=False)
    assert len(E.plan_batches([len(t) for t in E.tokenize(loaded, [s for _, s in records])], 600)) < 12
    assert batched.ids == [rid for rid, _ in records], "input order must be restored"
    diff = (batched.data - single.data).abs().max().item()
    assert diff < 1e-5, f"padding leaked into pooled vectors: max |batched - single| = {diff:.2e}"


@pytest.mark.parametrize("model", ["fastesm", "dnabert_s"])
def test_exact_length_batches_give_the_padded_vectors(model, request):
    loaded = request.getfixturevalue(model)
    records = proteins(24, seed=4) if loaded.spec.family == "esm" else dnas(24, seed=4)
    padded = E.extract_embeddings(loaded, records, toks_per_batch=600, progress=False)
    exact = E.extract_embeddings(loaded, records, toks_per_batch=600, exact_lengths=True, progress=False)
    assert exact.ids == padded.ids
    diff = (exact.data - padded.data).abs().max().item()
    assert diff < 1e-5, f"equal-length batches changed the pooled vectors: max |exact - padded| = {diff:.2e}"


def test_result_layout_and_meta(fastesm):
    from virnucpro_core.preprocess.sequences import FastaRecord

    records = [FastaRecord("x", "MKV"), FastaRecord("y", "MKVLLA")]
    emb = E.extract_embeddings(fastesm, records, progress=False)
    assert emb.data.dtype == torch.float32 and emb.data.shape == (2, 64) and emb.data.device.type == "cpu"
    assert emb.lengths.dtype == torch.int64 and emb.lengths.tolist() == [3, 6]
    assert emb["ids"] == ["x", "y"] and len(emb) == 2
    meta = emb.meta
    assert meta["model"] == "fastesm2_650" and meta["weights"] == "random" and meta["size"] == "tiny"
    assert meta["seed"] == 0 and meta["dtype"] == "float32" and meta["dim"] == 64 and meta["n"] == 2
    assert meta["toks_per_batch"] == E.DEFAULT_TOKS_PER_BATCH["esm"]
    assert meta["input_sha256"] == E.records_sha256([("x", "MKV"), ("y", "MKVLLA")])


def test_half_precision_returns_float32_close_to_fp32(fastesm):
    records = proteins(6, seed=3)
    bf16 = load_model("fastesm2_650", weights="random", size="tiny", device="cpu", dtype="bfloat16", seed=0)
    low = E.extract_embeddings(bf16, records, progress=False)
    ref = E.extract_embeddings(fastesm, records, progress=False)
    assert low.data.dtype == torch.float32 and low.meta["dtype"] == "bfloat16"
    cosine = torch.nn.functional.cosine_similarity(low.data, ref.data, dim=1)
    assert bool((cosine > 0.99).all()), f"bf16 vs fp32 cosine {cosine.min():.4f}"


def test_empty_sequence_is_an_input_error(fastesm):
    with pytest.raises(InputError, match="empty sequence"):
        E.extract_embeddings(fastesm, [("a", "MKV"), ("b", "")], progress=False)


@pytest.fixture
def threads_seen(monkeypatch):
    """The intra-op threads each batch was embedded with (``embed_batch`` wrapped), from a count of 2 before."""
    seen: list[int] = []
    embed_batch = E.embed_batch

    def recording(loaded, *args):
        seen.append(torch.get_num_threads())
        if loaded.size == "tiny":
            return embed_batch(loaded, *args)
        return torch.zeros(len(args[0]), loaded.dim)  # a "full" stand-in of the tiny network: only threads matter

    monkeypatch.setattr(E, "embed_batch", recording)
    monkeypatch.setattr(threads, "CHOICES", {})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield seen
    torch.set_num_threads(before)


def test_tiny_standins_embed_on_one_thread_and_restore_the_count(fastesm, threads_seen):
    E.extract_embeddings(fastesm, proteins(8), toks_per_batch=100, progress=False)
    assert len(threads_seen) > 1 and set(threads_seen) == {1}, threads_seen
    assert torch.get_num_threads() == 2
    assert threads.CHOICES["tiny stand-in extract"] == threads.ThreadChoice("tiny stand-in extract", 1,
                                                                                "chosen for this stage")


def test_real_size_models_embed_with_torch_default_threads(fastesm, threads_seen):
    full = dataclasses.replace(fastesm, provenance={**fastesm.provenance, "size": "full"})
    E.extract_embeddings(full, proteins(4), progress=False)
    assert set(threads_seen) == {2}, threads_seen
    assert threads.CHOICES["extract"] == threads.ThreadChoice("extract", 2, "torch default")


def test_omp_num_threads_wins_over_the_standins_one_thread(fastesm, threads_seen, monkeypatch):
    monkeypatch.setattr(threads, "cpu_count", lambda: 4)  # 3 is within the cores (more would be capped at them)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    E.extract_embeddings(fastesm, proteins(4), progress=False)
    assert set(threads_seen) == {3}, threads_seen
    assert threads.CHOICES["tiny stand-in extract"].source == "OMP_NUM_THREADS"


def test_the_thread_count_is_restored_when_embedding_fails(fastesm, threads_seen, monkeypatch):
    def failing(loaded, *args):
        threads_seen.append(torch.get_num_threads())
        raise RuntimeError("out of memory")

    monkeypatch.setattr(E, "embed_batch", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        E.extract_embeddings(fastesm, proteins(4), progress=False)
    assert threads_seen == [1] and torch.get_num_threads() == 2
