"""Timings: the benchmark sample, a GPU-synchronised clock, interleaved rounds, peak GPU memory, typed timing results
and machine info.

The speed gate's protocol (locked): model loading outside the timed region,
warmup rounds first, then 3 timed runs averaged, each run embedding the whole
benchmark sample from scratch (no caching between rounds), with a clock that
waits for queued CUDA work before it is read. The two models' rounds alternate
(A B A B A B after the warm-up, :class:`InterleavedRounds`), so that a busy
moment on a shared machine hits both rather than one; a model whose rounds
spread by more than ``gates.UNSTABLE_SPREAD`` (max/min) marks the timing unstable.
"""

from __future__ import annotations

import contextlib
import platform
import random
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import torch

from virnucpro_core.extract.embeddings import DEFAULT_TOKS_PER_BATCH
from virnucpro_core.extract.forward import auto_path, ready_for
from virnucpro_core.models.precision import extraction_dtype
from virnucpro_core.models.specs import get_spec
from virnucpro_core.timing import TimedRuns


def synchronized_timer() -> float:
    """``time.perf_counter()`` read only after all queued CUDA work has finished.

    CUDA kernels run asynchronously: without the synchronisation a timed
    region can end before the GPU has done the work it timed.
    """
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


class InterleavedRounds:
    """Times several embedders round by round, in turn (A B A B ...), every round kept.

    Each call of :meth:`round` runs every name once, in order, each between two
    reads of :func:`synchronized_timer`; the first ``warmup`` rounds are kept
    apart from the timed ones (:meth:`warmup_s`, :meth:`runs_s`).
    """

    def __init__(self, names: Sequence[str], warmup: int) -> None:
        self.names = list(names)
        self.warmup = warmup
        self.times: dict[str, list[float]] = {name: [] for name in self.names}

    def round(self, run_one: Callable[[str], object]) -> dict[str, object]:
        """One round: ``run_one(name)`` for each name in turn; returns each one's output."""
        outputs = {}
        for name in self.names:
            start = synchronized_timer()
            outputs[name] = run_one(name)
            self.times[name].append(synchronized_timer() - start)
        return outputs

    def warmup_s(self, name: str) -> list[float]:
        return self.times[name][: self.warmup]

    def runs_s(self, name: str) -> list[float]:
        return self.times[name][self.warmup :]


class PeakMemory:
    """Each model's peak GPU memory while it embeds: its weights plus the most one of its runs added.

    Both models stay loaded during the interleaved rounds, so the peak statistics
    are reset before each run of a model (``reset_peak_memory_stats``) and what was
    resident then is subtracted from the peak read after it (``max_memory_allocated``):
    the other model's weights are not counted, this model's are added back. A
    model's figure is the highest over its runs. Off CUDA nothing is measured:
    :meth:`peak_bytes` is None. ``cuda`` stands in for ``torch.cuda`` in tests.
    """

    def __init__(self, device: str | torch.device, cuda=None) -> None:
        self.device = torch.device(device)
        self.cuda = torch.cuda if cuda is None else cuda
        self.peaks: dict[str, int] = {}

    @property
    def measured(self) -> bool:
        return self.device.type == "cuda"

    @contextlib.contextmanager
    def around(self, name: str, model: torch.nn.Module) -> Iterator[None]:
        """Measure one run of ``name`` (its weights: ``model``'s parameters and buffers)."""
        if not self.measured:
            yield
            return
        self.cuda.reset_peak_memory_stats(self.device)
        resident = self.cuda.memory_allocated(self.device)
        yield
        peak = weight_bytes(model) + self.cuda.max_memory_allocated(self.device) - resident
        self.peaks[name] = max(self.peaks.get(name, 0), peak)

    def peak_bytes(self, name: str) -> int | None:
        """``name``'s peak over its runs in bytes; None off CUDA."""
        return self.peaks.get(name) if self.measured else None


def weight_bytes(model: torch.nn.Module) -> int:
    """The bytes of a model's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def benchmark_sample(lengths: Sequence[int], n: int, seed: int) -> list[int]:
    """Pick ``n`` indices whose length distribution follows ``lengths``.

    The indices are sorted by length and cut into ``n`` equal strata; one
    index is drawn from each (seeded), so every length quantile is
    represented. Returns indices in ascending order; all of them when
    ``n >= len(lengths)``.
    """
    total = len(lengths)
    if n <= 0:
        raise ValueError(f"benchmark sample size must be positive, got {n}")
    if n >= total:
        return list(range(total))
    rng = random.Random(seed)
    by_length = sorted(range(total), key=lambda i: (lengths[i], i))
    picked = []
    for stratum in range(n):
        lo = stratum * total // n
        hi = (stratum + 1) * total // n
        picked.append(by_length[rng.randrange(lo, hi)])
    return sorted(picked)


@dataclass
class TimingResult(TimedRuns):
    """Raw timed runs of one embedder over one benchmark sample; rates use the mean of ``runs_s``."""

    name: str
    model: str
    settings: dict
    sequences: int
    residues: int
    runs_s: list[float]
    warmup_runs: int
    device: str
    peak_memory_bytes: int | None = None
    notes: list[str] = field(default_factory=list)
    compile: dict | None = None  # CompileRecord.to_dict(): the path that ran and what compiling it cost

    @property
    def sequences_per_s(self) -> float:
        return self.sequences / self.mean_s

    @property
    def residues_per_s(self) -> float:
        return self.residues / self.mean_s

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(mean_s=self.mean_s, sequences_per_s=self.sequences_per_s, residues_per_s=self.residues_per_s)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TimingResult":
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)


def machine_info(device: str | torch.device | None = None) -> dict:
    """Versions and hardware that timings and accuracies depend on."""
    import transformers  # seconds to import; only the machine description needs its version

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda_available": torch.cuda.is_available(),
        "device": str(device) if device is not None else None,
    }
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            driver=_nvidia_driver(),
        )
    return info


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


# The original ran ESM2 3B in fp32 with esm's 2,048-token batches (the precision policy keeps fp32 for it).
ORIGINAL_ESM2_3B = {"dtype": "float32", "toks_per_batch": 2048}
PAIRINGS = ("as-deployed", "like-for-like")


def deployed_settings(model_name: str, device_type: str, path: str = "auto") -> dict:
    """dtype, token budget and execution path ``model_name`` is timed with as deployed: ESM2 3B as VirNucPro ran
    it (:data:`ORIGINAL_ESM2_3B`, eager), the others with the precision policy's dtype, the default token budget
    and ``path`` (``auto``: :func:`virnucpro_core.extract.forward.auto_path` on ``device_type``)."""
    if model_name == "esm2_3b":
        return {**ORIGINAL_ESM2_3B, "path": "eager"}

    family = get_spec(model_name).family
    if path == "auto":
        path = auto_path(model_name, torch.device(device_type))[0]
    return {"dtype": extraction_dtype(model_name, device_type), "toks_per_batch": DEFAULT_TOKS_PER_BATCH[family],
            "path": path}


def deployed_fast_settings(device_type: str, path: str = "auto") -> dict:
    """The settings FastESM2 ships with: the precision policy's dtype, the default token budget, the deployed path.

    The dtype is :func:`virnucpro_core.models.precision.extraction_dtype` (fp16 on
    CUDA, fp32 on the CPU) and the path :func:`~virnucpro_core.extract.forward.auto_path`'s
    (packed on a GPU, eager on the CPU) unless ``path`` names one: those ``virnucpro
    extract`` defaults to and the acceptance run extracts FastESM2's accuracy
    features with, so the speed gate times what the accuracy gate validated.
    """
    return deployed_settings("fastesm2_650", device_type, path)


def extraction_settings(pairing: str, embedder: str, device_type: str, fast_path: str = "auto") -> dict:
    """dtype, token budget and execution path of one side of a timing pair.

    ``as-deployed``: ESM2 3B as VirNucPro ran it, FastESM2 as we ship it (the gate;
    ``fast_path``: ``--extraction-path``). ``like-for-like``: both with FastESM2's
    settings, path included, so the ratio isolates the model.
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"unknown pairing {pairing!r}; expected one of {', '.join(PAIRINGS)}")
    if embedder == "baseline" and pairing == "as-deployed":
        return deployed_settings("esm2_3b", device_type)
    return deployed_fast_settings(device_type, fast_path)


@dataclass
class CompileRecord:
    """What the timed path cost to compile, kept out of the timed rounds and reported beside them.

    Attributes:
        path: the execution path that ran (``eager``, ``compiled``, ``packed``).
        graphs: graphs compiled before the rounds, one per shape the rounds use.
        seconds: the time those compilations took.
        shapes: their ``[rows, width]`` shapes.
        bound: the most graphs the benchmark's proteins can need (:meth:`ExecutionPath.bound`).
        graphs_in_rounds: graphs compiled during the warmup and timed rounds (0: the warmup covered every shape).
    """

    path: str
    graphs: int = 0
    seconds: float = 0.0
    shapes: list = field(default_factory=list)
    bound: int = 0
    graphs_in_rounds: int | None = None
    _graphs_after_warmup: int = field(default=0, repr=False)  # the path's total once warm

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if not key.startswith("_")}


def compile_before_timing(loaded, proteins: Sequence[tuple[str, str]], budget: int):
    """``(loaded ready to time, its CompileRecord)``: every shape the proteins' batches use compiled now.

    A compiled path compiles each shape on first use; done here, before the
    rounds, compilation never lands in a timed (or warmup) round, and
    :func:`compiled_since` checks that it did not. Where compiling fails the
    model comes back eager (one warning line), as extraction does.
    """
    stats = loaded.execution.stats if loaded.execution is not None else None
    before = (stats.graphs, stats.seconds, len(stats.shapes)) if stats is not None else (0, 0.0, 0)
    loaded = ready_for(loaded, [seq for _, seq in proteins], budget)  # compiles the first shape, or turns eager
    path = loaded.execution
    if path is None or not path.compiles:
        return loaded, CompileRecord(path=loaded.provenance.get("path", "eager"))
    lengths = [len(seq) + 2 for _, seq in proteins]  # <cls> residues <eos>
    path.warm(loaded, lengths, budget)
    record = CompileRecord(path=path.name, graphs=path.stats.graphs - before[0],
                           seconds=path.stats.seconds - before[1],
                           shapes=[list(shape) for shape in path.stats.shapes[before[2]:]],
                           bound=path.bound(lengths, budget), _graphs_after_warmup=path.stats.graphs)
    return loaded, record


def compiled_since(loaded, record: CompileRecord) -> CompileRecord:
    """``record`` with the graphs compiled since :func:`compile_before_timing` filled in (``graphs_in_rounds``)."""
    path = loaded.execution
    compiling = path is not None and path.compiles
    record.graphs_in_rounds = path.stats.graphs - record._graphs_after_warmup if compiling else 0
    return record
