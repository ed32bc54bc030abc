"""CPU stages on every core: an ordered, memory-bounded map over worker processes.

Imports nothing heavy at load time (the process pool is imported when one is
started), so command parsers can show :func:`available_cpus` in their help.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")
R = TypeVar("R")

# Work units submitted and not yet handed back, per worker: enough to keep every worker busy while the
# main process reads input and writes output, few enough that memory does not grow with the input.
IN_FLIGHT_PER_WORKER = 2


def available_cpus() -> int:
    """The cores this process may run on (``os.cpu_count()`` where affinity cannot be read)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group; the parent alone handles it (and cancels what is queued),
    # instead of one traceback per worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``function(item)`` for every item, yielded in input order, computed on up to ``workers`` processes.

    ``Executor.map`` would submit every item before yielding the first result,
    holding the whole input in memory; here at most
    ``IN_FLIGHT_PER_WORKER * workers`` items are out at a time, and the input
    is read only as fast as results are consumed. With ``workers`` 1, or fewer
    than two items, everything runs in this process: small inputs never pay
    for starting a pool. ``function`` must be importable by name (a module-level
    function).

    Raises:
        Whatever ``function`` raised for the first failing item, in order; the
        items queued behind it are cancelled.
    """
    iterator = iter(items)
    if workers <= 1:
        yield from map(function, iterator)
        return
    head = []
    for item in iterator:
        head.append(item)
        if len(head) == 2:
            break
    if len(head) < 2:
        yield from map(function, head)
        return
    from concurrent.futures import ProcessPoolExecutor  # the CLI's parser imports this module: keep its start-up light

    # The platform's default start method: fork on Linux (before Python 3.14), so workers start in
    # milliseconds with nothing re-imported; the workers run numpy and string code only, none of the
    # threaded libraries (torch's OpenMP) a fork could find mid-lock. Where the default is spawn or
    # forkserver (macOS, Windows, Python 3.14+), a script calling this needs the `if __name__ == "__main__":` guard.
    pool = ProcessPoolExecutor(workers, initializer=_ignore_interrupts)
    pending: deque[Future[R]] = deque()
    try:
        for item in chain(head, iterator):
            pending.append(pool.submit(function, item))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
