"""Several processes, one extraction: the torchrun environment, each rank's share, and how ranks agree.

``torchrun --nproc_per_node=N -m virnucpro_core.cli extract ...`` starts N
copies of the command. Each reads who it is from the environment torchrun
sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``: :meth:`Rank.from_env`), embeds
the shards it owns (shard ``i`` goes to rank ``i % N``, so a rerun with the
same N finds its finished shards where it left them, and a rerun with another
N reuses them too) on its own device (``cuda:LOCAL_RANK``, or the CPU), and
writes them as a single process would. Rank 0 then assembles the output.

A plain run is :meth:`Rank.single`: world size 1, and ``torch.distributed``
is never touched.

How ranks agree (:class:`ProcessGroup`): through the key-value store that
torchrun already runs for its rendezvous (``env://``), not through collectives
of a backend such as gloo. Each rank posts its outcome of a step (a value, or
the error that stopped it) under its own key and waits for the others' keys.
That is robust in the ways that matter here:

* a failed rank still posts its error, so every rank stops at once and rank 0
  prints one message naming the rank and its problem;
* the wait has no fixed deadline, which would have to exceed the slowest
  rank's whole share: each rank bumps a progress counter per finished shard,
  and a rank that shows no progress for ``timeout`` seconds is named as
  stalled, so a hung rank cannot keep the others waiting forever while an
  unevenly resumed run (one rank with most of the remaining shards) is fine;
* a rank that failed before reaching a step can never leave the others inside
  a mismatched collective call, and no network backend is needed.

A rank killed outright (out of memory, ``kill -9``) posts nothing; torchrun
notices the dead process and stops the others, with its own report.

:func:`run_torchrun` starts such a job from Python (the acceptance suite does,
when several GPUs are visible) and stops all of it if the caller is stopped.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from virnucpro_core.defaults import RANK_TIMEOUT_S
from virnucpro_core.errors import InputError, VirNucProError, describe_error
from virnucpro_core.models.registry import resolve_device

log = logging.getLogger(__name__)

# What torchrun sets for each process; a plain run sets none of them.
ENVIRONMENT = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
# Seconds a rank waits for a silent peer (no finished shard, no answer) before it names it as stalled.
DEFAULT_TIMEOUT_S = RANK_TIMEOUT_S
# Key prefix in torchrun's store, which torchrun's own rendezvous shares.
_PREFIX = "virnucpro"


@dataclass(frozen=True)
class Rank:
    """Who this process is among the processes of one job.

    Attributes:
        rank: this process's number, ``0 .. world_size - 1``; rank 0 assembles and reports.
        world_size: how many processes share the work.
        local_rank: its number on this machine: the GPU it uses.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def single(cls) -> "Rank":
        """The one process of a plain run."""
        return cls()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Rank":
        """The rank torchrun describes in ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``; none set: :meth:`single`.

        Raises:
            InputError: some of them set, or values that do not fit together
                (every problem listed).
        """
        environ = os.environ if environ is None else environ
        given = {name: environ[name] for name in ENVIRONMENT if environ.get(name, "") != ""}
        if not given:
            return cls.single()
        problems = [f"{name} is not set" for name in ENVIRONMENT if name not in given]
        values: dict[str, int] = {}
        for name, text in given.items():
            try:
                values[name] = int(text)
            except ValueError:
                problems.append(f"{name}={text!r} is not a whole number")
        if not problems:
            world, rank, local = values["WORLD_SIZE"], values["RANK"], values["LOCAL_RANK"]
            if world < 1:
                problems.append(f"WORLD_SIZE={world} is below 1")
            elif not 0 <= rank < world:
                problems.append(f"RANK={rank} is not in 0..{world - 1}")
            if local < 0:
                problems.append(f"LOCAL_RANK={local} is negative")
        if problems:
            raise InputError(
                "this process cannot tell its place among the extraction processes",
                expected="WORLD_SIZE, RANK and LOCAL_RANK all set, as torchrun sets them, or none of them",
                found="; ".join(problems),
                fix="start it with `torchrun --nproc_per_node=N -m virnucpro_core.cli ...`, which sets all three, "
                "or unset them for a single process",
            )
        return cls(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: writes the manifest and the output, and is the one that prints."""
        return self.rank == 0

    @property
    def prefix(self) -> str:
        """``"[rank 1/2] "`` for log lines of a distributed run; empty for a plain run."""
        return f"[rank {self.rank}/{self.world_size}] " if self.distributed else ""

    def owns(self, index: int) -> bool:
        """Whether shard ``index`` is this rank's: ``index % world_size == rank``."""
        return index % self.world_size == self.rank

    def device(self, requested: str | None = "auto") -> torch.device:
        """The device this rank computes on.

        A plain run: :func:`~virnucpro_core.models.registry.resolve_device` of ``requested``.
        Under torchrun, ``auto`` and ``cuda`` mean ``cuda:LOCAL_RANK`` (``auto``
        falls back to the CPU without CUDA) and ``cpu`` means the CPU; a single
        GPU such as ``cuda:1`` is refused, since every rank would share it.

        Raises:
            InputError: a single GPU named, no CUDA for ``cuda``, or fewer
                visible GPUs than processes on this machine.
        """
        if not self.distributed:
            return resolve_device(requested)
        text = "auto" if requested is None else str(requested)
        if text == "cpu":
            return torch.device("cpu")
        if text not in ("auto", "cuda"):
            raise InputError(
                f"--device {text} names one device, and torchrun runs {self.world_size} processes",
                expected="auto, cuda or cpu: under torchrun rank r computes on cuda:LOCAL_RANK",
                found=text,
                fix="pass --device auto (or cuda); choose the GPUs with CUDA_VISIBLE_DEVICES",
            )
        if not torch.cuda.is_available():
            if text == "auto":
                return torch.device("cpu")
            return resolve_device("cuda")  # its error says that CUDA is not available here
        count = torch.cuda.device_count()
        if self.local_rank >= count:
            raise InputError(
                f"{self} has LOCAL_RANK {self.local_rank}, and this machine shows {count} GPU(s)",
                expected="one GPU per process on each machine",
                found=f"{count} visible GPU(s) (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})",
                fix=f"pass --nproc_per_node={count} or fewer to torchrun",
            )
        device = torch.device("cuda", self.local_rank)
        torch.cuda.set_device(device)  # so nothing of this rank lands on cuda:0 by default
        return device

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.world_size}"


class RanksFailed(VirNucProError):
    """A step failed on some ranks, or some ranks went silent; every rank raises it, one prints it.

    ``silent`` is true on every rank but the one that reports (rank 0, or the
    lowest rank still answering), so the command prints the message once.
    """

    def __init__(self, message: str, *, reporter: int, rank: Rank, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.reporter = reporter
        self.silent = rank.rank != reporter

    @classmethod
    def from_outcomes(cls, step: str, failures: list[tuple[int, str]], rank: Rank) -> "RanksFailed":
        """The failures of ``step``: one message as a plain run would print it when every rank says the same."""
        by_message: dict[str, list[int]] = {}
        for number, message in failures:
            by_message.setdefault(message, []).append(number)
        if len(by_message) == 1 and len(failures) == rank.world_size:
            return cls(failures[0][1], reporter=0, rank=rank)
        blocks = []
        for message, numbers in by_message.items():
            who = f"rank {numbers[0]}" if len(numbers) == 1 else "ranks " + ", ".join(map(str, numbers))
            blocks.append(f"{who} of {rank.world_size}: {message}")
        others = "the other processes stopped" if len(failures) < rank.world_size else "every process stopped"
        return cls(
            "\n".join(blocks) + f"\n  {step} stopped: {others}; finished shards are kept, and rerunning the same "
            "command reuses them",
            reporter=0, rank=rank,
        )


class Step:
    """One step every rank takes; on leaving it, every rank knows every rank's outcome.

    Use as ``with group.step("extraction") as step: ...; step.value = v``;
    afterwards ``step.values`` holds each rank's value (JSON types), in rank
    order. An exception inside the block is posted as that rank's failure, and
    every rank then raises :class:`RanksFailed`. In a plain run the block's
    exception passes through unchanged and ``step.values`` is ``[step.value]``.
    """

    def __init__(self, group: "ProcessGroup", name: str) -> None:
        self.group = group
        self.name = name
        self.value: Any = None
        self.values: list[Any] = []

    def __enter__(self) -> "Step":
        return self

    def __exit__(self, exc_type, error, traceback) -> bool:
        if error is not None and not isinstance(error, Exception):
            return False  # KeyboardInterrupt, SystemExit: torchrun stops the others
        group = self.group
        if not group.rank.distributed:
            self.values = [self.value]
            return False
        if error is None:
            outcome = {"ok": True, "value": self.value}
        else:
            if not isinstance(error, (VirNucProError, OSError)):  # a bug or a device fault: keep its traceback
                log.error("%s%s: unexpected error", group.rank.prefix, self.name, exc_info=error)
            outcome = {"ok": False, "message": describe_error(error)}
        outcomes = group.exchange(self.name, outcome)
        failures = [(number, o["message"]) for number, o in enumerate(outcomes) if not o["ok"]]
        if failures:
            failed = RanksFailed.from_outcomes(self.name, failures, group.rank)
            group.failed(failed)
            raise failed from error
        self.values = [o["value"] for o in outcomes]
        return False


class ProcessGroup:
    """The ranks of one job and the store they agree through (none in a plain run).

    Args:
        rank: who this process is.
        store: a ``torch.distributed.Store`` shared by every rank (``None``
            for a plain run); :meth:`join` connects to torchrun's.
        timeout: seconds without any sign of a rank (a finished shard, or its
            outcome) after which the others name it as stalled and stop.
    """

    def __init__(self, rank: Rank, store: Any = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        if rank.distributed and store is None:
            raise ValueError("a distributed group needs a store")
        if timeout <= 0:
            raise InputError("the rank timeout must be positive", expected="seconds > 0", found=str(timeout))
        self.rank = rank
        self.timeout = float(timeout)
        self._store = store
        self._steps = 0
        self._reporter: int | None = None  # set when a step failed: the rank whose message is printed
        self._broken = False  # the store or a rank stopped answering: no farewell

    @classmethod
    def single(cls) -> "ProcessGroup":
        return cls(Rank.single())

    @classmethod
    def join(cls, *, timeout: float = DEFAULT_TIMEOUT_S, environ: Mapping[str, str] | None = None) -> "ProcessGroup":
        """The group this process belongs to: torchrun's (from the environment), or a plain run's.

        Under torchrun it connects to the store torchrun's rendezvous runs
        (``MASTER_ADDR``/``MASTER_PORT``); a plain run connects to nothing.
        """
        rank = Rank.from_env(environ)
        if not rank.distributed:
            return cls(rank, timeout=timeout)
        # torch.distributed only when several ranks run
        import torch.distributed as dist

        try:
            store, _, _ = next(dist.rendezvous("env://", timeout=timedelta(seconds=timeout)))
        except (RuntimeError, ValueError) as error:
            raise InputError(
                f"{rank} could not reach the other processes",
                expected="MASTER_ADDR and MASTER_PORT of a running torchrun job",
                found=describe_error(error),
                fix="start the command with torchrun (e.g. `torchrun --standalone --nproc_per_node=N -m "
                "virnucpro_core.cli extract ...`)",
            ) from None
        group = cls(rank, dist.PrefixStore(_PREFIX, store), timeout=timeout)
        atexit.register(group.farewell)
        return group

    def device(self, requested: str | None = "auto") -> torch.device:
        return self.rank.device(requested)

    def step(self, name: str) -> Step:
        """A step every rank takes together (see :class:`Step`); ``name`` appears in its errors."""
        return Step(self, name)

    def progress(self) -> None:
        """Tell the others this rank is alive and working (call after each shard)."""
        if self._store is not None:
            self._store.add(f"progress/{self.rank.rank}", 1)

    def exchange(self, name: str, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        """Post this rank's ``outcome`` of step ``name``; every rank's, in rank order, once all are posted.

        Raises:
            RanksFailed: a rank showed no progress for ``timeout`` seconds, or the store stopped answering.
        """
        number, self._steps = self._steps, self._steps + 1
        store, world = self._store, self.rank.world_size
        key = lambda r: f"step/{number}/{r}"  # noqa: E731
        # Sleeping between non-blocking checks (a timed-out store.wait() logs a C++ warning per try), from 10 ms
        # up to half a second: short steps end at once, long waits cost the store little.
        poll, longest = 0.01, min(0.5, self.timeout / 10)
        try:
            store.set(key(self.rank.rank), json.dumps(outcome))
            seen = {r: (None, time.monotonic()) for r in range(world)}
            pending = [r for r in range(world) if r != self.rank.rank]
            while True:
                pending = [r for r in pending if not store.check([key(r)])]
                if not pending:
                    return [json.loads(store.get(key(r))) for r in range(world)]
                now = time.monotonic()
                for r in pending:
                    count = store.add(f"progress/{r}", 0)
                    if count != seen[r][0]:
                        seen[r] = (count, now)
                stalled = [r for r in pending if now - seen[r][1] >= self.timeout]
                if stalled:
                    raise self._stalled(name, stalled)
                time.sleep(poll)
                poll = min(poll * 2, longest)
        except RanksFailed:
            raise
        except RuntimeError as error:  # the store's server (torchrun's agent, or rank 0) is gone
            self._broken = True
            raise RanksFailed(
                f"{self.rank} lost contact with the other processes during {name}: {describe_error(error)}",
                reporter=self.rank.rank, rank=self.rank,
                fix="see torchrun's report for the process that stopped; rerun the same command to resume",
            ) from None

    def _stalled(self, name: str, stalled: list[int]) -> RanksFailed:
        self._broken = True
        answering = [r for r in range(self.rank.world_size) if r not in stalled]
        who = ", ".join(map(str, stalled))
        return RanksFailed(
            f"{name} stopped: rank{'s' if len(stalled) > 1 else ''} {who} of {self.rank.world_size} showed no "
            f"progress for {self.timeout:g} s while the others waited for {'them' if len(stalled) > 1 else 'it'} "
            "(hung, or stopped without a word)",
            reporter=answering[0], rank=self.rank,
            fix="look for the stalled process's own output above; rerun the same command to resume (finished "
            "shards are reused); if one shard takes longer than that on your hardware, raise --rank-timeout",
        )

    def failed(self, error: RanksFailed) -> None:
        """Remember that a step failed, so :meth:`farewell` lets the reporter speak first."""
        self._reporter = error.reporter

    def farewell(self) -> None:
        """At exit after a failed step: the reporter says goodbye; the others leave only after it.

        torchrun stops every process as soon as one exits with an error; without
        this, a silent rank could exit first and cut the reporter's message short.
        Runs at interpreter exit, after the command has printed its error.
        """
        if self._reporter is None or self._broken or self._store is None:
            return
        try:
            if self.rank.rank == self._reporter:
                self._store.set("farewell", "1")
            else:
                self._store.wait(["farewell"], timedelta(seconds=min(self.timeout, 30.0)))
        except RuntimeError:
            pass  # the reporter is gone already: nothing left to wait for


# --------------------------------------------------------------------------- launching a job from Python


def torchrun_command(argv: Sequence[str], processes: int) -> list[str]:
    """``torchrun --standalone --nproc_per_node=N -m virnucpro_core.cli ARGV`` with this interpreter.

    ``python -m torch.distributed.run`` is the ``torchrun`` script of the
    torch this interpreter imports; ``--standalone`` picks a free port, so
    several jobs on one machine do not collide.
    """
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "virnucpro_core.cli", *argv]


def run_torchrun(argv: Sequence[str], processes: int, *, on_line: Callable[[str], None] | None = None) -> None:
    """Run ``virnucpro ARGV`` as ``processes`` local processes under torchrun, and wait for it.

    Each line the job prints goes to ``on_line`` as it comes. Stopping the
    caller (Ctrl-C, an exception) stops the whole job, torchrun and every rank.

    Raises:
        VirNucProError: the job failed; ``found`` holds the error rank 0 printed
            (or the job's last lines), ``fix`` the command to rerun by hand.
    """
    command = torchrun_command(argv, processes)
    tail: deque[str] = deque(maxlen=40)
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)  # its own process group, so that it is stopped whole
    try:
        assert job.stdout is not None
        for line in job.stdout:
            tail.append(line.rstrip("\n"))
            if on_line is not None:
                on_line(tail[-1])
        job.wait()
    except BaseException:
        _stop(job)
        raise
    if job.returncode != 0:
        raise VirNucProError(
            f"`virnucpro {argv[0]}` as {processes} processes under torchrun failed (exit status {job.returncode})",
            found=_reported_error(list(tail)),
            fix=f"read the error above; to see the whole output, run `{shlex.join(command)}`",
        )


def _reported_error(lines: list[str]) -> str:
    """The ``virnucpro ...: error:`` block rank 0 printed (with its indented lines), else the last lines."""
    for start, line in enumerate(lines):
        if line.startswith("virnucpro ") and ": error: " in line:
            block = [line.split(": error: ", 1)[1]]
            block += [text for text in itertools.takewhile(lambda t: t.startswith("  "), lines[start + 1 :])]
            return "\n".join(block)
    return "no error message from the job; its last lines:\n" + "\n".join(lines[-12:])


def _stop(job: subprocess.Popen) -> None:
    """Stop torchrun and every rank: SIGTERM to the job's process group, SIGKILL after 30 s."""
    if job.poll() is not None:
        return
    kill = getattr(os, "killpg", None)
    try:
        if kill is None:
            job.terminate()
        else:
            kill(job.pid, signal.SIGTERM)
        job.wait(timeout=30)
    except subprocess.TimeoutExpired:
        if kill is None:
            job.kill()
        else:
            kill(job.pid, signal.SIGKILL)
        job.wait()
    except ProcessLookupError:
        pass
