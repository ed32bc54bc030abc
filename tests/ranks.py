"""Ranks of one job as threads in this process, agreeing through a real in-process ``TCPStore``.

The store is the one torchrun runs for its processes; each thread gets its own
client, so exchanges, failure reports and stall detection behave as they do
across processes, in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import torch.distributed as dist

from virnucpro_core.extract.distributed import ProcessGroup, Rank


@contextlib.contextmanager
def store_groups() -> Iterator[Callable[..., list[ProcessGroup]]]:
    """Yield ``make(world, timeout=30.0)``: the ``world`` ranks of one job, each with its own store client."""
    server = dist.TCPStore("127.0.0.1", 0, None, True, timedelta(seconds=30), wait_for_workers=False)
    jobs = 0

    def make(world: int, timeout: float = 30.0) -> list[ProcessGroup]:
        nonlocal jobs
        jobs += 1  # each job its own key space, as torchrun gives each run its own store

        def client() -> dist.Store:
            store = dist.TCPStore("127.0.0.1", server.port, None, False, timedelta(seconds=30))
            return dist.PrefixStore(f"job{jobs}/virnucpro", store)

        return [ProcessGroup(Rank(r, world, r), client(), timeout=timeout) for r in range(world)]

    yield make
    del server


def run_ranks(groups: list[ProcessGroup], body: Callable[[ProcessGroup], Any]) -> list[Any]:
    """Run ``body(group)`` on one thread per rank; each rank's return value or exception, in rank order."""
    results: list[Any] = [None] * len(groups)

    def target(group: ProcessGroup) -> None:
        try:
            results[group.rank.rank] = body(group)
        except Exception as error:  # noqa: BLE001 - the caller inspects it
            results[group.rank.rank] = error

    threads = [threading.Thread(target=target, args=(group,), daemon=True) for group in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a rank hangs"
    return results
