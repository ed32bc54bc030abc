"""ordered_map: input order kept, work really spread over processes, memory bounded, errors in order."""

from __future__ import annotations

import os

import pytest

from virnucpro_core.preprocess.workers import IN_FLIGHT_PER_WORKER, available_cpus, ordered_map


def square_and_pid(value: int) -> tuple[int, int]:
    return value * value, os.getpid()


def fail_on_five(value: int) -> int:
    if value == 5:
        raise ValueError("item 5 is bad")
    return value


def test_results_come_back_in_input_order_from_worker_processes():
    results = list(ordered_map(square_and_pid, range(40), workers=2))
    assert [value for value, _ in results] == [i * i for i in range(40)]
    pids = {pid for _, pid in results}
    assert os.getpid() not in pids, "with 2 workers and 40 items the work must run in worker processes"


@pytest.mark.parametrize(("workers", "items"), [(1, 10), (2, 1), (2, 0)], ids=["one-worker", "one-item", "no-item"])
def test_one_worker_or_fewer_than_two_items_run_here(workers, items):
    results = list(ordered_map(square_and_pid, range(items), workers=workers))
    assert [value for value, _ in results] == [i * i for i in range(items)]
    assert {pid for _, pid in results} <= {os.getpid()}, "no pool may be started for this"


def test_input_is_read_only_as_fast_as_results_are_taken():
    pulled = []

    def items():
        for i in range(1000):
            pulled.append(i)
            yield i

    results = ordered_map(square_and_pid, items(), workers=2)
    taken = [next(results)[0] for _ in range(3)]
    results.close()
    assert taken == [0, 1, 4]
    limit = len(taken) + IN_FLIGHT_PER_WORKER * 2
    assert len(pulled) <= limit, f"{len(pulled)} of 1000 items read after 3 results; at most {limit} may be out"


def test_an_error_in_a_worker_is_raised_after_the_results_before_it():
    results = ordered_map(fail_on_five, range(20), workers=2)
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="item 5 is bad"):
        next(results)


def test_available_cpus_is_what_this_process_may_use():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cpus() == expected >= 1
