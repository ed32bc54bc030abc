"""The speed gate: FastESM2 embedding time at most 50 % of ESM2 3B's on the same proteins.

Protocol (locked): model loading outside the timed region; ``--bench-warmup``
untimed rounds, then ``--bench-runs`` timed rounds averaged; each round embeds
the whole benchmark sample from scratch (tokenisation to pooled float32
vectors on the host); the clock synchronises CUDA before it is read.
"""

from __future__ import annotations

import pytest
import torch

from virnucpro_core.gate.benchmark import PAIRINGS, TimingResult, extraction_settings, synchronized_timer
from virnucpro_core.extract.embeddings import extract_embeddings
from virnucpro_core.gate.gates import SPEED
from virnucpro_core.gate.validation import EMBEDDERS

from acceptance.conftest import MERGED_INPUTS_NO_SPEED


@pytest.fixture
def timing_device(run, settings):
    if run.has_merged_inputs():
        pytest.skip(MERGED_INPUTS_NO_SPEED)
    device = run.device()
    if device.type != "cuda" and settings.profile == "full":
        pytest.skip(f"the full-profile speed gate times GPU extraction: no CUDA GPU (torch {torch.__version__}, "
                    f"CUDA build: {torch.version.cuda or 'none'}); run on a GPU runner")
    return device


@pytest.mark.benchmark(timer=synchronized_timer, disable_gc=True)
@pytest.mark.parametrize("embedder", list(EMBEDDERS), ids=[f"{k}={v}" for k, v in EMBEDDERS.items()])
@pytest.mark.parametrize("pairing", PAIRINGS)
def test_embedding_time(benchmark, pairing, embedder, run, settings, bench_proteins, acceptance, timing_device):
    options = extraction_settings(pairing, embedder, timing_device.type)
    loaded = run.model(EMBEDDERS[embedder], dtype=options["dtype"])  # loading is not timed
    benchmark.group = pairing
    benchmark.extra_info.update(model=EMBEDDERS[embedder], pairing=pairing, **options,
                                proteins=len(bench_proteins), weights=settings.weights, size=settings.size)
    if timing_device.type == "cuda":
        # Other models stay resident between tests: count this model's weights plus what the runs add.
        torch.cuda.reset_peak_memory_stats(timing_device)
        resident_before = torch.cuda.memory_allocated(timing_device)
    embeddings = benchmark.pedantic(
        extract_embeddings,
        args=(loaded, bench_proteins),
        kwargs={"toks_per_batch": options["toks_per_batch"], "progress": False},
        rounds=settings.bench_runs,
        warmup_rounds=settings.bench_warmup,
        iterations=1,
    )
    assert embeddings.data.shape == (len(bench_proteins), loaded.dim), (
        f"{loaded.spec.display_name} returned {tuple(embeddings.data.shape)}, "
        f"expected ({len(bench_proteins)}, {loaded.dim})"
    )
    assert torch.isfinite(embeddings.data).all(), f"{loaded.spec.display_name} produced NaN/Inf embeddings"
    if benchmark.stats is None:  # --benchmark-disable: ran once, untimed
        return
    acceptance.record_timing(pairing, embedder, TimingResult(
        name=f"{pairing}/{embedder}",
        model=EMBEDDERS[embedder],
        settings=options,
        sequences=len(bench_proteins),
        residues=sum(len(s) for _, s in bench_proteins),
        runs_s=list(benchmark.stats.stats.data),
        warmup_runs=settings.bench_warmup,
        device=str(timing_device),
        peak_memory_bytes=(
            _weight_bytes(loaded.model) + torch.cuda.max_memory_allocated(timing_device) - resident_before
            if timing_device.type == "cuda" else None
        ),
    ))


def _weight_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


@pytest.mark.gate(SPEED)
def test_speed_gate(acceptance, pytestconfig, timing_device):
    """Decides the speed gate: the as-deployed pair only; the like-for-like pair is shown in the report beside it.

    The library measures the gate from the timings handed to the session; this asserts on that result.
    """
    if pytestconfig.getoption("benchmark_disable") or pytestconfig.getoption("benchmark_skip"):
        pytest.skip("benchmarking is disabled (--benchmark-disable / --benchmark-skip): no timings to judge")
    gate = acceptance.measure(SPEED)
    if not gate.passed:
        pytest.fail(gate.failure, pytrace=False)
