"""Sample ids and the seeded, stratified choice of test and validation samples."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np

from virnucpro_core.errors import InputError
from virnucpro_core.preprocess.sequences import source_id

CLASS_LABELS: dict[str, int] = {"host": 0, "viral": 1}
CLASS_NAMES: dict[int, str] = {label: name for name, label in CLASS_LABELS.items()}
ROUNDING_RULE = "test samples per class = floor(n * test_fraction + 1/2) (round half up, exact rational arithmetic)"

# Streams of the seeded generator, so test and validation draws never share one.
_PURPOSE_TEST = 0
_PURPOSE_VALIDATION = 1
_FRAME_TAG = re.compile(r"[FR][1-3]$")


def chunk_of(sample_id: str) -> str:
    """The chunk a frame id came from: the id without its trailing ``F1..F3`` / ``R1..R3``."""
    if "_chunk_" in sample_id and _FRAME_TAG.search(sample_id):
        return sample_id[:-2]
    return sample_id


def source_of(sample_id: str) -> str:
    """The source record of a sample id (the part before the last ``_chunk_``)."""
    return source_id(sample_id)


def round_half_up(n: int, fraction: float) -> int:
    """``floor(n * fraction + 1/2)`` computed exactly (``fraction`` read as its decimal text)."""
    return math.floor(n * Fraction(str(fraction)) + Fraction(1, 2))


def min_class_size(fraction: float) -> int:
    """Smallest class that gives at least one test and one training sample at ``fraction``."""
    n = 1
    while not (1 <= round_half_up(n, fraction) < n):
        n += 1
        if n > 10_000_000:  # fraction too close to 0 or 1 to ever split
            break
    return n


def _rng(seed: int, label: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(label), int(purpose)])


def _sample_level(ids: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    ordered = sorted(ids)
    order = rng.permutation(len(ordered))
    return [ordered[i] for i in order[:count]]


def _group_level(ids: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    """Whole source records, in seeded random order, until ``count`` samples are reached as closely as possible.

    First pass: take each group that does not overshoot. If still short, add the
    one remaining group that brings the total closest to ``count`` (only if that
    is closer, or the test side is still empty). At least one group stays in
    training.
    """
    sizes = Counter(source_of(i) for i in ids)
    groups = sorted(sizes)
    order = [groups[i] for i in rng.permutation(len(groups))]
    chosen: list[str] = []
    total = 0
    for group in order:
        if total == count:
            break
        if total + sizes[group] <= count:
            chosen.append(group)
            total += sizes[group]
    taken = set(chosen)
    remaining = [g for g in order if g not in taken]
    if total < count and len(remaining) > 1:
        best = min(remaining, key=lambda g: abs(total + sizes[g] - count))  # ties: first in seeded order
        if total == 0 or abs(total + sizes[best] - count) < count - total:
            chosen.append(best)
    keep = set(chosen)
    return sorted(i for i in ids if source_of(i) in keep)


def stratified_ids(
    ids: Sequence[str],
    labels: Sequence[int],
    fraction: float,
    seed: int,
    *,
    group_by: str = "sample",
    purpose: str = "test",
    groups: Mapping[str, str] | None = None,
) -> list[str]:
    """Ids drawn from each class separately: ``round_half_up(n_class * fraction)`` per class.

    Args:
        ids: sample ids (unique).
        labels: class of each id.
        fraction: share of each class to draw.
        seed: the draw depends only on the seed and the set of ids, not their order.
        group_by: ``"sample"`` draws ids; ``"source"`` draws whole source records.
        purpose: ``"test"`` or ``"validation"``; each uses its own random stream.
        groups: id → group, required by ``group_by="cluster"`` (whole groups per side).

    Returns:
        The drawn ids, sorted.
    """
    purpose_code = {"test": _PURPOSE_TEST, "validation": _PURPOSE_VALIDATION}[purpose]
    if group_by == "cluster":
        return _joint_group_level(ids, labels, groups or {}, fraction, _rng(seed, 2, purpose_code))
    by_class: dict[int, list[str]] = {}
    for sample, label in zip(ids, labels, strict=True):
        by_class.setdefault(int(label), []).append(sample)
    drawn: list[str] = []
    for label in sorted(by_class):
        members = by_class[label]
        rng = _rng(seed, label, purpose_code)
        count = round_half_up(len(members), fraction)
        pick = _group_level if group_by == "source" else _sample_level
        drawn.extend(pick(members, count, rng))
    return sorted(drawn)


def _joint_group_level(ids: Sequence[str], labels: Sequence[int], groups: Mapping[str, str], fraction: float,
                       rng: np.random.Generator) -> list[str]:
    """Whole groups (which may hold both classes) in seeded random order, each taken when it overshoots no class's
    target ``round_half_up(n_class * fraction)``; stops once every target is met. A group larger than a class's
    target never goes to the test side, so at least one group stays in training."""
    members: dict[str, Counter] = {}
    for sample, label in zip(ids, labels, strict=True):
        members.setdefault(groups[sample], Counter())[int(label)] += 1
    totals = Counter(int(label) for label in labels)
    target = {label: round_half_up(n, fraction) for label, n in totals.items()}
    names = sorted(members)
    taken: Counter = Counter()
    chosen: set[str] = set()
    for name in (names[i] for i in rng.permutation(len(names))):
        if all(taken[label] >= target[label] for label in target):
            break
        counts = members[name]
        if all(taken[label] + n <= target[label] for label, n in counts.items()):
            chosen.add(name)
            taken.update(counts)
    empty = [CLASS_NAMES.get(label, str(label)) for label in sorted(target) if taken[label] == 0]
    if empty:
        largest = sorted(((sum(c.values()), n) for n, c in members.items()), reverse=True)[:3]
        raise InputError(
            f"no {' or '.join(empty)} group fits the test side: every group is larger than the class's test target",
            expected=f"groups no larger than {fraction:g} of each class: "
            + ", ".join(f"{CLASS_NAMES.get(k, k)} {v} samples" for k, v in sorted(target.items())),
            found=f"{len(members)} groups; the largest: " + ", ".join(f"{n} ({size} samples)" for size, n in largest),
            fix="cluster at a higher identity or coverage (smaller clusters), or use group_by source",
        )
    return sorted(s for s in ids if groups[s] in chosen)
