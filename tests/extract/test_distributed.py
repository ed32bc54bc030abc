"""Ranks, shard ownership and how the processes of a torchrun job agree, in one process.

Each "rank" here is a thread with its own client of a real ``TCPStore`` (the
store torchrun runs), so the exchange, the failure reports and the stall
detection run as they do across processes, in well under a second. The
extraction shared out among ranks, and the end-to-end runs under torchrun,
are in ``test_features_distributed.py``.
"""

from __future__ import annotations

import threading
import time

import pytest
import torch
import torch.distributed as dist

from virnucpro_core.extract.distributed import ProcessGroup, Rank, RanksFailed
from virnucpro_core.errors import InputError

from tests.ranks import run_ranks, store_groups

TORCHRUN_ENV = {"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"}


# --------------------------------------------------------------------------- the environment


def test_a_plain_run_is_one_process_and_touches_no_process_group(monkeypatch):
    def no_rendezvous(*args, **kwargs):
        raise AssertionError("a plain run must not start a torch.distributed rendezvous")

    monkeypatch.setattr(dist, "rendezvous", no_rendezvous)
    assert Rank.from_env({}) == Rank(0, 1, 0) == Rank.single()
    group = ProcessGroup.join(environ={})
    group.progress()  # nothing to tell
    assert not group.rank.distributed and group.rank.is_main and group.rank.prefix == ""
    assert not dist.is_initialized(), "a plain run must not initialise torch.distributed"
    with pytest.raises(ValueError, match="plain"), group.step("extraction"):
        raise ValueError("plain")  # passes through unchanged: a plain run's errors are what they were


def test_torchrun_environment_is_read():
    rank = Rank.from_env(TORCHRUN_ENV)
    assert (rank.rank, rank.world_size, rank.local_rank) == (2, 4, 0)
    assert rank.distributed and not rank.is_main and str(rank) == "rank 2 of 4" and rank.prefix == "[rank 2/4] "


@pytest.mark.parametrize(
    ("environ", "problems"),
    [
        ({"WORLD_SIZE": "2"}, ["RANK is not set", "LOCAL_RANK is not set"]),
        ({"WORLD_SIZE": "two", "RANK": "0", "LOCAL_RANK": "0"}, ["WORLD_SIZE='two' is not a whole number"]),
        ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, ["RANK=2 is not in 0..1"]),
        ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "-1"}, ["LOCAL_RANK=-1 is negative"]),
    ],
    ids=["partial", "not-a-number", "rank-out-of-range", "negative-local-rank"],
)
def test_an_inconsistent_environment_is_one_error_listing_every_problem(environ, problems):
    with pytest.raises(InputError, match="cannot tell its place") as error:
        Rank.from_env(environ)
    for problem in problems:
        assert problem in str(error.value), str(error.value)
    assert "torchrun --nproc_per_node=N" in str(error.value)


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_every_shard_has_exactly_one_owner_and_the_same_one_on_a_rerun(world):
    ranks = [Rank(r, world, r) for r in range(world)]
    owners = [[r.rank for r in ranks if r.owns(index)] for index in range(17)]
    assert owners == [[index % world] for index in range(17)]


def test_devices_under_torchrun():
    rank = Rank(1, 2, 1)
    assert rank.device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="names one device") as error:
        rank.device("cuda:0")
    assert "CUDA_VISIBLE_DEVICES" in str(error.value)
    if not torch.cuda.is_available():
        assert rank.device("auto") == torch.device("cpu")
        with pytest.raises(InputError, match="CUDA is not available"):
            rank.device("cuda")
    elif torch.cuda.device_count() > 1:
        assert rank.device("auto") == torch.device("cuda", 1)


# --------------------------------------------------------------------------- agreeing through the store


@pytest.fixture
def groups():
    """``groups(n, timeout)``: n ranks of one job (threads), each with its own client of one in-process store."""
    with store_groups() as make:
        yield make


def test_every_rank_learns_every_ranks_value_in_rank_order(groups):
    def body(group):
        with group.step("counting") as step:
            step.value = {"rank": group.rank.rank, "square": group.rank.rank ** 2}
        with group.step("again") as again:  # a second step of the same job keeps its own keys
            again.value = -group.rank.rank
        return step.values, again.values

    results = run_ranks(groups(3), body)
    expected = ([{"rank": r, "square": r * r} for r in range(3)], [0, -1, -2])
    assert results == [expected] * 3


def test_a_failure_on_one_rank_stops_every_rank_and_one_of_them_reports_it(groups):
    def body(group):
        with group.step("extraction"):
            if group.rank.rank == 1:
                raise InputError("shard 2 is broken", fix="rebuild it")
        return "finished"

    errors = run_ranks(groups(3), body)
    assert all(isinstance(e, RanksFailed) for e in errors), errors
    message = str(errors[0])
    assert message.startswith("rank 1 of 3: shard 2 is broken") and "to fix: rebuild it" in message, message
    assert "the other processes stopped" in message and "rerunning the same command reuses them" in message, message
    assert [e.silent for e in errors] == [False, True, True], "rank 0 prints, the others stay quiet"
    assert isinstance(errors[1].__cause__, InputError), "the failing rank keeps its own error as the cause"


def test_the_same_failure_on_every_rank_reads_as_a_plain_runs_error(groups):
    def body(group):
        with group.step("loading the model"):
            raise InputError("p.faa: not a valid protein FASTA file")

    errors = run_ranks(groups(2), body)
    assert [str(e) for e in errors] == ["p.faa: not a valid protein FASTA file"] * 2
    assert [e.silent for e in errors] == [False, True]


def test_different_failures_are_listed_per_rank(groups):
    def body(group):
        with group.step("extraction"):
            if group.rank.rank:
                raise OSError(28, "No space left on device", f"/data/shard_{group.rank.rank}.pt")

    message = str(run_ranks(groups(3), body)[0])
    assert "rank 1 of 3: cannot use /data/shard_1.pt: No space left on device" in message, message
    assert "rank 2 of 3: cannot use /data/shard_2.pt" in message and "free space" in message, message


def test_an_unexpected_error_keeps_its_traceback_on_its_rank(groups, caplog):
    def body(group):
        with group.step("extraction"):
            if group.rank.rank == 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore details")

    with caplog.at_level("ERROR", logger="virnucpro_core.extract.distributed"):
        errors = run_ranks(groups(2), body)
    message = str(errors[0])
    assert message.startswith("rank 1 of 2: OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"), message
    assert "lower --toks-per-batch" in message and "more details" not in message, message
    (record,) = caplog.records
    assert record.message == "[rank 1/2] extraction: unexpected error" and record.exc_info[0] is torch.OutOfMemoryError


def test_a_silent_rank_is_named_after_the_timeout_instead_of_a_hang(groups):
    ranks = groups(2, timeout=0.5)
    release = threading.Event()

    def body(group):
        if group.rank.rank == 1:
            release.wait(10)  # hangs without a word, like a stuck GPU
            return "late"
        with group.step("extraction"):
            pass

    start = time.monotonic()
    results = run_ranks([ranks[0]], body)
    release.set()
    waited = time.monotonic() - start
    error = results[0]
    assert isinstance(error, RanksFailed) and not error.silent, error
    assert "rank 1 of 2 showed no progress for 0.5 s" in str(error) and "--rank-timeout" in str(error), str(error)
    assert 0.5 <= waited < 5, f"rank 0 gave up after {waited:.1f} s"


def test_progress_keeps_the_others_waiting_past_the_timeout(groups):
    """The timeout measures silence, not the wait: a rank that keeps finishing shards is waited for."""

    def body(group):
        with group.step("extraction") as step:
            if group.rank.rank == 1:
                for _ in range(12):  # 1.2 s of work, more than twice the timeout, a shard every 0.1 s
                    time.sleep(0.1)
                    group.progress()
            step.value = group.rank.rank
        return step.values

    assert run_ranks(groups(2, timeout=0.5), body) == [[0, 1], [0, 1]]


def test_after_a_failure_the_quiet_ranks_leave_only_after_the_reporter(groups):
    """torchrun stops every process once one exits with an error: the reporter must have printed by then."""
    ranks = groups(2, timeout=5.0)

    def body(group):
        with group.step("extraction"):
            if group.rank.rank == 1:
                raise InputError("broken")

    run_ranks(ranks, body)
    left = threading.Event()
    quiet = threading.Thread(target=lambda: (ranks[1].farewell(), left.set()), daemon=True)
    quiet.start()
    assert not left.wait(0.5), "rank 1 left before rank 0 reported"
    ranks[0].farewell()
    assert left.wait(5), "rank 1 still waits after rank 0 said goodbye"


def test_a_timeout_must_be_positive():
    with pytest.raises(InputError, match="must be positive"):
        ProcessGroup(Rank.single(), timeout=0)


def test_the_error_of_a_torchrun_job_is_rank_0s_message():
    from virnucpro_core.extract.distributed import _reported_error

    lines = ["[rank 0/2] loaded FastESM2_650", "virnucpro extract: error: rank 1 of 2: cannot use /x/shard.pt: full",
             "  to fix: free space", "  extraction stopped: the other processes stopped", "W1202 torchrun: closing",
             "ChildFailedError: ..."]
    assert _reported_error(lines) == ("rank 1 of 2: cannot use /x/shard.pt: full\n  to fix: free space\n"
                                      "  extraction stopped: the other processes stopped")
    assert _reported_error(["Traceback", "Signal 9 (SIGKILL) received"]).endswith("Signal 9 (SIGKILL) received")
