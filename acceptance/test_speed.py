"""The speed gate: FastESM2 embedding time at most 50 % of ESM2 3B's on the same proteins.

Protocol (locked): model loading outside the timed region; a compiled execution
path (``--extraction-path``) compiles every shape the rounds use before them,
reported beside the rounds and checked to compile nothing during them; ``--bench-warmup``
untimed rounds, then ``--bench-runs`` timed rounds averaged, the two models'
rounds interleaved (A B A B A B) so that noise on a shared machine hits both; each round embeds
the whole benchmark sample from scratch (tokenisation to pooled float32
vectors on the host); the clock synchronises CUDA before it is read.
"""

from __future__ import annotations

import pytest
import torch

from virnucpro_core.gate.benchmark import (PAIRINGS, InterleavedRounds, PeakMemory, TimingResult,
                                           compile_before_timing, compiled_since, extraction_settings,
                                           synchronized_timer)
from virnucpro_core.extract.embeddings import DEFAULT_TOKS_PER_BATCH, extract_embeddings
from virnucpro_core.gate.gates import SPEED
from virnucpro_core.defaults import DNA_MODEL
from virnucpro_core.gate.speed_report import DNA_TIMING
from virnucpro_core.gate.validation import EMBEDDERS
from virnucpro_core.models.precision import extraction_dtype

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
@pytest.mark.parametrize("pairing", PAIRINGS)
def test_embedding_time(benchmark, pairing, run, settings, bench_proteins, acceptance, timing_device):
    """Both models of one pairing, their rounds interleaved (A B A B A B after the warm-up): drift hits both.

    pytest-benchmark times each whole round (both models); every model's own rounds go to the session.
    """
    embedders = list(EMBEDDERS)
    options = {e: extraction_settings(pairing, e, timing_device.type, settings.extraction_path) for e in embedders}
    loaded = {e: run.model(EMBEDDERS[e], dtype=options[e]["dtype"], path=options[e]["path"])
              for e in embedders}  # loading is not timed
    compiles = {}
    for e in embedders:  # nor is compiling: every shape the rounds use, before them
        loaded[e], compiles[e] = compile_before_timing(loaded[e], bench_proteins, options[e]["toks_per_batch"])
        options[e] = {**options[e], "path": compiles[e].path}  # the path that runs (eager where compiling failed)
    benchmark.group = pairing
    benchmark.extra_info.update(pairing=pairing, models={e: EMBEDDERS[e] for e in embedders}, order="interleaved",
                                settings=options, proteins=len(bench_proteins), weights=settings.weights,
                                size=settings.size)
    peaks = PeakMemory(timing_device)  # on CUDA: each model's weights plus the most one of its runs adds

    def embed(embedder):
        with peaks.around(embedder, loaded[embedder].model):
            return extract_embeddings(loaded[embedder], bench_proteins,
                                      toks_per_batch=options[embedder]["toks_per_batch"], progress=False)

    rounds = InterleavedRounds(embedders, warmup=settings.bench_warmup)
    outputs = benchmark.pedantic(rounds.round, args=(embed,), rounds=settings.bench_runs,
                                 warmup_rounds=settings.bench_warmup, iterations=1)
    for embedder, embeddings in outputs.items():
        name = loaded[embedder].spec.display_name
        assert embeddings.data.shape == (len(bench_proteins), loaded[embedder].dim), (
            f"{name} returned {tuple(embeddings.data.shape)}, expected ({len(bench_proteins)}, {loaded[embedder].dim})"
        )
        assert torch.isfinite(embeddings.data).all(), f"{name} produced NaN/Inf embeddings"
    if benchmark.stats is None:  # --benchmark-disable: ran once, untimed
        return
    benchmark.extra_info["rounds_s"] = {e: rounds.runs_s(e) for e in embedders}
    benchmark.extra_info["warmup_s"] = {e: rounds.warmup_s(e) for e in embedders}
    benchmark.extra_info["compile"] = {e: compiled_since(loaded[e], compiles[e]).to_dict() for e in embedders}
    for embedder in embedders:
        acceptance.record_timing(pairing, embedder, TimingResult(
            name=f"{pairing}/{embedder}",
            model=EMBEDDERS[embedder],
            settings=options[embedder],
            sequences=len(bench_proteins),
            residues=sum(len(s) for _, s in bench_proteins),
            runs_s=rounds.runs_s(embedder),
            warmup_runs=settings.bench_warmup,
            device=str(timing_device),
            peak_memory_bytes=peaks.peak_bytes(embedder),
            compile=compiles[embedder].to_dict(),
        ))
    late = {e: c.graphs_in_rounds for e, c in compiles.items() if c.graphs_in_rounds}
    assert not late, (f"graphs compiled during the warmup or timed rounds ({late}): the compilation before them did "
                      "not cover every shape they use, so the timing includes compilation")


@pytest.mark.evidence
def test_dna_embedding_time(run, settings, bench_proteins, acceptance, timing_device, pytestconfig):
    """DNABERT-S on the benchmark samples' DNA, timed as the gated pair is (not gated): the projection of a whole
    run needs its rate too."""
    if pytestconfig.getoption("benchmark_disable") or pytestconfig.getoption("benchmark_skip"):
        pytest.skip("benchmarking is disabled (--benchmark-disable / --benchmark-skip)")
    dna = run.benchmark_dna()
    dtype = extraction_dtype(DNA_MODEL, timing_device.type)
    loaded = run.model(DNA_MODEL, dtype=dtype)  # loading is not timed
    rounds = InterleavedRounds(["dna"], warmup=settings.bench_warmup)
    for _ in range(settings.bench_warmup + settings.bench_runs):
        rounds.round(lambda _: extract_embeddings(loaded, dna, progress=False))
    acceptance.record_timing(*DNA_TIMING, TimingResult(
        name="/".join(DNA_TIMING), model=DNA_MODEL,
        settings={"dtype": dtype, "toks_per_batch": DEFAULT_TOKS_PER_BATCH["dnabert"], "path": "eager"},
        sequences=len(dna), residues=sum(len(s) for _, s in dna), runs_s=rounds.runs_s("dna"),
        warmup_runs=settings.bench_warmup, device=str(timing_device),
        compile={"path": "eager", "graphs": 0, "seconds": 0.0, "shapes": [], "bound": 0, "graphs_in_rounds": 0}))


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
