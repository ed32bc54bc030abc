"""How many intra-op CPU threads each stage uses, why, and the machine's load while it ran (issue 23).

OpenMP waits actively for work: with as many threads as cores, one other busy
process on the machine slows small matrix products 12-45x (benchmarks/NOTES.md,
"Threads under contention"). VirNucPro's MLP trains on batches of 32 rows, far
too small to gain from a second thread, so training and the MLP's evaluation run
on one thread. Extraction with a real model (large transformer matrices) keeps
torch's default. The smoke profile's tiny stand-ins run on one thread
(:func:`extraction_stage`): beside a busy process two threads extract 1.6x
slower than one and spread the speed gate's rounds past its instability limit;
on an idle machine they are 2x faster. Steady beats fast on a shared runner, and
the features are bit-identical either way (benchmarks/NOTES.md).
The other cores train the other, independent MLPs at the same time, in worker
processes (:func:`parallel_processes`, ``gate/stages.StageCache.prebuild``).
The bootstrap and the preprocessing are numpy / pure Python: torch's thread
count does not reach them (preprocessing spreads over worker processes instead,
``preprocess/workers.py``).

An explicit choice from the user wins over every stage's default:
``OMP_NUM_THREADS`` in the environment, or :func:`set_user_threads` (``--threads``).
Either is capped at the cores this process may run on, with one line saying so
(:func:`cap_environment`, :func:`set_user_threads`): more threads than cores only
wait for each other (2,000 on 2 cores trained 30x slower), and tens of thousands
crash OpenMP ("Thread creation failed", a segmentation fault; issue 38). The
environment is capped before torch is loaded (the ``virnucpro`` command and the
suite's pytest plugin do it first), so OpenMP, torchrun and worker processes
all start from the capped value.
Every choice made is kept in :data:`CHOICES` for the report's environment table.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: Each stage's intra-op threads when the user chose none; ``None`` keeps torch's default (one per core).
STAGE_THREADS: dict[str, int | None] = {"train": 1, "evaluate": 1, "extract": None, "tiny stand-in extract": 1}

_user_threads: int | None = None  # --threads as given (capped where it is used)
# OMP_NUM_THREADS as the user set it, and the value cap_environment wrote over it (None: not capped).
_omp_capped: tuple[int, str] | None = None


@dataclass(frozen=True)
class ThreadChoice:
    """The threads one stage ran with and who chose them."""

    stage: str
    threads: int
    source: str  # "OMP_NUM_THREADS", "--threads", "chosen for this stage" or "torch default"

    def describe(self) -> str:
        return f"{self.stage} {self.threads} ({self.source})"


#: Stage → the last choice made for it in this process.
CHOICES: dict[str, ThreadChoice] = {}

#: Stage → the most of its jobs that ran at once in worker processes (absent: one after another).
PARALLEL: dict[str, int] = {}


def set_user_threads(threads: int | None) -> str | None:
    """The user's ``--threads``: every stage runs with it (``None`` goes back to the per-stage choice), at most
    one per core.

    Returns:
        The one line to show when ``threads`` is above the cores (capped at their count), else ``None``.
    """
    global _user_threads
    _user_threads = threads
    return capped_line("--threads", threads) if threads is not None and threads > cpu_count() else None


def capped_line(source: str, asked: int) -> str:
    """The one line that says the ``asked`` threads of ``source`` (an option or a variable) were capped at the
    cores."""
    cores, given = cpu_count(), f"{source} {asked}" if source.startswith("-") else f"{source}={asked}"
    return (f"note: {given} is more threads than the {cores} core(s) this process may use: "
            f"{cores} are used (more only wait for each other, and thousands crash OpenMP)")


def cap_environment() -> str | None:
    """Lower ``OMP_NUM_THREADS`` above the cores to their count, in this process's environment (which torch,
    OpenMP and every process started later read) and in torch if it is loaded already.

    Returns:
        The one line to show when it was capped, else ``None``.
    """
    global _omp_capped
    omp = _omp_value()
    if omp is None or omp <= cpu_count():
        return None
    _omp_capped = (omp, str(cpu_count()))
    os.environ["OMP_NUM_THREADS"] = _omp_capped[1]
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() > cpu_count():
        torch.set_num_threads(cpu_count())
    return capped_line("OMP_NUM_THREADS", omp)


def _capped(source: str, asked: int) -> tuple[int, str]:
    """``asked`` threads of ``source`` at most one per core, and who chose them (saying so where capped)."""
    cores = cpu_count()
    return (asked, source) if asked <= cores else (cores, f"{source} {asked}, capped at the {cores} cores")


def user_threads() -> int | None:
    """The user's ``--threads`` in this process (``None`` when not given)."""
    return _user_threads


def parallel_processes(stage: str, jobs: int) -> int:
    """How many independent ``stage`` jobs may run at once: the cores over each job's threads, at most ``jobs``."""
    return max(1, min(jobs, cpu_count() // max(1, choose(stage).threads)))


def _omp_value() -> int | None:
    """``OMP_NUM_THREADS`` in the environment now, when it is a count."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _omp_threads() -> int | None:
    """``OMP_NUM_THREADS`` as the user set it (the value before :func:`cap_environment` lowered it)."""
    if _omp_capped is not None and os.environ.get("OMP_NUM_THREADS", "").strip() == _omp_capped[1]:
        return _omp_capped[0]
    return _omp_value()


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, or "unknown" where the platform has none."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except (AttributeError, OSError):
        return "unknown"


def choose(stage: str) -> ThreadChoice:
    """The threads ``stage`` runs with: the user's ``--threads``, else ``OMP_NUM_THREADS``, else the stage's."""
    if _user_threads is not None:
        return ThreadChoice(stage, *_capped("--threads", _user_threads))
    omp = _omp_threads()
    if omp is not None:
        return ThreadChoice(stage, *_capped("OMP_NUM_THREADS", omp))
    chosen = STAGE_THREADS.get(stage)
    if chosen is None:
        import torch  # lazy: the suite's session imports this module for the load average, torch-free (pytest --help)

        return ThreadChoice(stage, torch.get_num_threads(), "torch default")
    return ThreadChoice(stage, chosen, "chosen for this stage")


@contextmanager
def stage_threads(stage: str) -> Iterator[ThreadChoice]:
    """Run the block with ``stage``'s intra-op threads, then restore the previous count."""
    import torch  # lazy, as in choose()

    choice = choose(stage)
    CHOICES[stage] = choice
    before = torch.get_num_threads()
    if choice.threads != before:
        torch.set_num_threads(choice.threads)
    try:
        yield choice
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def record_workers(stage: str, processes: int, choice: ThreadChoice | None = None) -> None:
    """For the report: ``stage`` ran in ``processes`` worker processes, each with ``choice`` (default: the stage's)."""
    CHOICES.setdefault(stage, choice or choose(stage))
    if processes > 1:
        PARALLEL[stage] = max(processes, PARALLEL.get(stage, 0))


def torchrun_choice(stage: str) -> ThreadChoice:
    """The threads each torchrun process runs ``stage`` with: the user's ``OMP_NUM_THREADS``, else torchrun's 1.

    torchrun sets ``OMP_NUM_THREADS=1`` in every process it starts when it starts several and the variable is unset.
    """
    omp = _omp_threads()
    if omp is not None:
        return ThreadChoice(stage, *_capped("OMP_NUM_THREADS", omp))
    return ThreadChoice(stage, 1, "torchrun's default")


def extraction_stage(size: str) -> str:
    """The stage whose threads extraction with a model of this ``size`` (``tiny`` or ``full``) runs with."""
    return "tiny stand-in extract" if size == "tiny" else "extract"


def describe_choices() -> str:
    """One line for the environment table: every stage's threads so far, or the rule when none ran yet."""
    if not CHOICES:
        return ", ".join(f"{stage} {choose(stage).threads}" for stage in STAGE_THREADS) + " (not run yet)"
    return "; ".join(choice.describe() + (f", {PARALLEL[stage]} at once in worker processes"
                                           if PARALLEL.get(stage, 0) > 1 else "")
                     for stage, choice in CHOICES.items())


__all__ = ["CHOICES", "PARALLEL", "STAGE_THREADS", "ThreadChoice", "cap_environment", "capped_line", "choose",
           "cpu_count", "describe_choices", "extraction_stage", "load_average", "parallel_processes", "record_workers",
           "set_user_threads", "stage_threads", "torchrun_choice", "user_threads"]
