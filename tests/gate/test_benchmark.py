"""The speed benchmark's sample and settings."""

from __future__ import annotations

import pytest

from virnucpro_core.gate.benchmark import InterleavedRounds, benchmark_sample, extraction_settings


def test_sample_follows_the_length_distribution_and_is_seeded():
    lengths = [50] * 500 + [100] * 400 + [160] * 100
    picked = benchmark_sample(lengths, 100, seed=1)
    assert len(picked) == len(set(picked)) == 100
    counts = {value: sum(lengths[i] == value for i in picked) for value in (50, 100, 160)}
    assert counts == {50: 50, 100: 40, 160: 10}  # one pick per stratum of 10 sorted lengths
    assert picked == benchmark_sample(lengths, 100, seed=1)
    assert picked != benchmark_sample(lengths, 100, seed=2)


def test_sample_larger_than_the_set_takes_everything():
    assert benchmark_sample([3, 1, 2], 10, seed=0) == [0, 1, 2]


def test_sample_size_must_be_positive():
    with pytest.raises(ValueError, match="must be positive"):
        benchmark_sample([1, 2], 0, seed=0)


@pytest.mark.parametrize(
    ("pairing", "embedder", "device", "expected"),
    [
        # ESM2 3B as VirNucPro ran it; FastESM2 on its deployed path: packed on a GPU that compiles, eager on the CPU.
        ("as-deployed", "baseline", "cuda", {"dtype": "float32", "toks_per_batch": 2048, "path": "eager"}),
        ("as-deployed", "fast", "cuda", {"dtype": "float16", "toks_per_batch": 8192, "path": "packed"}),
        ("like-for-like", "baseline", "cuda", {"dtype": "float16", "toks_per_batch": 8192, "path": "packed"}),
        ("as-deployed", "fast", "cpu", {"dtype": "float32", "toks_per_batch": 8192, "path": "eager"}),
    ],
)
def test_pairings(pairing, embedder, device, expected, monkeypatch):
    import virnucpro_core.extract.forward as forward

    monkeypatch.setattr(forward, "support", lambda path, device: None)  # a GPU where torch.compile works
    assert extraction_settings(pairing, embedder, device) == expected
    if embedder == "fast":
        assert extraction_settings(pairing, embedder, device, "compiled")["path"] == "compiled", "--extraction-path"


def test_interleaved_rounds_alternate_the_models_and_keep_the_warmup_apart():
    order = []
    rounds = InterleavedRounds(["fast", "baseline"], warmup=1)
    for _ in range(4):  # one warm-up, three timed
        outputs = rounds.round(lambda name: order.append(name) or name.upper())
    assert order == ["fast", "baseline"] * 4
    assert outputs == {"fast": "FAST", "baseline": "BASELINE"}
    for name in ("fast", "baseline"):
        assert len(rounds.warmup_s(name)) == 1 and len(rounds.runs_s(name)) == 3
        assert all(t >= 0 for t in rounds.times[name])
