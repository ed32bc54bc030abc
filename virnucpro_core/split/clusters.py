"""Protein similarity clusters (MMseqs2) for the clustered split, and the train–test identity it leaves.

What is clustered, and why: the proteins of the test samples themselves — each
sample's stop-free frame translation (``protein.faa`` of preprocess, the
sequence the protein language model embeds). Two samples whose proteins are
≥ ``min_seq_id`` identical over ≥ ``coverage`` of their length get near-identical
protein embeddings, so such pairs on both sides of a split let the MLP score
recognition rather than generalisation. Defaults follow Jaeger's clustering of
its evaluation data at ≥ 60 % identity; coverage 0.8 is MMseqs2's default.

A sample's group is its cluster, joined (union-find) with the other frames of
its chunk when ``link_chunks`` is true (default): frames of one chunk are the
same DNA, which DNABERT-S embeds, so they must not straddle the split either.
Groups can hold both classes; :func:`virnucpro_core.split.make.make_split` with
``group_by="cluster"`` draws whole groups.

MMseqs2 is an external program (Debian/Ubuntu: ``apt-get install -y mmseqs2``);
:func:`mmseqs_missing` says when it is absent, and the suite then skips the
clustered split with that reason.
"""

from __future__ import annotations

import csv
import functools
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from virnucpro_core.defaults import CLUSTER_COVERAGE, CLUSTER_IDENTITY
from virnucpro_core.errors import InputError
from virnucpro_core.split.ids import chunk_of

DEFAULT_MIN_SEQ_ID = CLUSTER_IDENTITY
DEFAULT_COVERAGE = CLUSTER_COVERAGE
INSTALL_HINT = "apt-get install -y mmseqs2 (Debian/Ubuntu), or conda install -c bioconda mmseqs2"


def mmseqs_missing() -> str | None:
    """Why MMseqs2 cannot run here, or None."""
    if shutil.which("mmseqs") is None:
        return f"mmseqs (MMseqs2) is not installed: {INSTALL_HINT}"
    return None


@functools.cache
def mmseqs_version() -> str:
    """What ``mmseqs version`` prints (its results depend on it: part of the clusters' code identity)."""
    if mmseqs_missing():
        return "not installed"
    try:
        done = subprocess.run(["mmseqs", "version"], capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def _run(args: list[str], what: str) -> None:
    try:
        done = subprocess.run(["mmseqs", *args], capture_output=True, text=True, check=False)
    except OSError as error:
        raise InputError(f"{what}: mmseqs could not start ({error})", fix=INSTALL_HINT) from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InputError(f"{what}: mmseqs exited with status {done.returncode}", found=" | ".join(tail),
                         fix=f"run the command by hand to see the full log: mmseqs {' '.join(args)}")


def _check_thresholds(min_seq_id: float, coverage: float) -> None:
    if not (0.0 < min_seq_id <= 1.0 and 0.0 < coverage <= 1.0):
        raise InputError(f"cluster identity {min_seq_id!r} / coverage {coverage!r} out of range",
                         expected="fractions in (0, 1], e.g. --cluster-identity 0.6 --cluster-coverage 0.8",
                         fix="pass fractions, not percentages")


def cluster_proteins(fastas: Iterable[str | Path], work_dir: str | Path, *, min_seq_id: float = DEFAULT_MIN_SEQ_ID,
                     coverage: float = DEFAULT_COVERAGE, threads: int = 2) -> dict[str, str]:
    """Cluster every protein of ``fastas`` with ``mmseqs easy-cluster``; return protein id → representative id."""
    _check_thresholds(min_seq_id, coverage)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    combined = work / "proteins.faa"
    with open(combined, "w", encoding="utf-8") as out:
        for fasta in fastas:
            out.write(Path(fasta).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        _run(["easy-cluster", str(combined), str(work / "clu"), tmp, "--min-seq-id", str(min_seq_id),
              "-c", str(coverage), "--cov-mode", "0", "--threads", str(threads), "-v", "1"], "protein clustering")
    with open(work / "clu_cluster.tsv", encoding="utf-8") as handle:
        return {member: rep for rep, member in csv.reader(handle, delimiter="\t")}


def linked_groups(cluster_of: Mapping[str, str], *, link_chunks: bool = True) -> dict[str, str]:
    """Sample id → group id: clusters, merged with the frames of the same chunk when ``link_chunks``.

    The group id is the smallest sample id in the group, so it depends only on the membership.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for sample, rep in cluster_of.items():
        union(f"c:{rep}", f"s:{sample}")
        if link_chunks:
            union(f"k:{chunk_of(sample)}", f"s:{sample}")
    members: dict[str, list[str]] = {}
    for sample in cluster_of:
        members.setdefault(find(f"s:{sample}"), []).append(sample)
    return {sample: min(group) for group in members.values() for sample in group}


@dataclass
class CrossIdentity:
    """The closest train protein of each test protein, as ``mmseqs easy-search`` finds it."""

    test_proteins: int
    with_hit: int
    at_or_above_threshold: int
    threshold: float
    coverage: float
    max_identity: float | None  # highest identity of any test protein to any training protein (0..1)
    median_best_identity: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def cross_identity(test: Mapping[str, str], train: Mapping[str, str], work_dir: str | Path, *,
                   threshold: float = DEFAULT_MIN_SEQ_ID, coverage: float = DEFAULT_COVERAGE,
                   threads: int = 2) -> CrossIdentity:
    """Search the ``test`` proteins (id → sequence) against the ``train`` proteins with ``mmseqs easy-search``.

    Only alignments covering ≥ ``coverage`` of both proteins count (the clustering's
    own rule; a short local match between fragments says little), with E-value ≤ 1e-3
    (MMseqs2's default); test proteins without such a hit count as below the threshold.
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    for name, records in (("test.faa", test), ("train.faa", train)):
        (work / name).write_text("".join(f">{i}\n{s}\n" for i, s in records.items()), encoding="utf-8")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        _run(["easy-search", str(work / "test.faa"), str(work / "train.faa"), str(work / "hits.m8"), tmp,
              "--format-output", "query,target,fident", "-c", str(coverage), "--cov-mode", "0", "--threads", str(threads), "-v", "1"],
             "train-test identity search")
    best: dict[str, float] = {}
    with open(work / "hits.m8", encoding="utf-8") as handle:
        for query, _target, fident in csv.reader(handle, delimiter="\t"):
            best[query] = max(best.get(query, 0.0), float(fident))
    values = sorted(best.values())
    return CrossIdentity(
        test_proteins=len(test), with_hit=len(best), at_or_above_threshold=sum(v >= threshold for v in values),
        threshold=threshold, coverage=coverage, max_identity=values[-1] if values else None,
        median_best_identity=values[len(values) // 2] if values else None,
    )
