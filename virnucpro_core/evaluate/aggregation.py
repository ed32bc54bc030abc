"""Verdicts above the frame: the one chunk aggregation (VirNucPro's rule) and the per-record rule.

VirNucPro scores frames (``{record}_chunk_{k}F1`` .. ``R3``) and reports
chunks: frames are grouped by their id minus its two-character frame suffix,
and a chunk is viral iff the highest viral score among its frames is ≥ the
highest host score (a tie is viral; ``prediction.py`` of the original,
``max(score2) >= max(score1)``). :func:`aggregate_chunks` is the only
implementation of that rule here, and its one entry point: the evaluation
(:func:`metrics.evaluate_chunks`, with the frames' true labels) and ``virnucpro
predict`` (every chunk of the input, in order) both call it.

The original has no per-record call. :func:`aggregate_records` states one, as
an option: ``mean`` (default) — a record is viral iff the mean viral score of
its frames is ≥ ``threshold`` (0.5); ``majority`` — iff at least a
``threshold`` share of its chunks is called viral by the chunk rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from virnucpro_core.defaults import RECORD_RULE
from virnucpro_core.errors import InputError
from virnucpro_core.split.ids import chunk_of, source_of

CHUNK_RULE = (
    "chunk: viral iff max over its frames of p_viral >= max over its frames of p_host "
    "(VirNucPro's per-chunk call; a tie is viral)"
)
RECORD_RULES = {
    "mean": "record: viral iff the mean p_viral of its frames >= {threshold:g}",
    "majority": "record: viral iff at least {threshold:g} of its chunks are viral by the chunk rule",
}
DEFAULT_RECORD_RULE = RECORD_RULE


def _index(keys: Sequence[str], order: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    """Distinct keys (first-seen order, or ``order``) and each key's position in them."""
    names = list(dict.fromkeys(keys)) if order is None else list(order)
    position = {name: i for i, name in enumerate(names)}
    return names, np.fromiter((position[k] for k in keys), dtype=np.int64, count=len(keys))


@dataclass
class ChunkAggregate:
    """One row per chunk: frame count, best viral and host scores, the call (NaN scores and call -1 without frames).

    ``y_true`` is each chunk's true label when the frames had labels (evaluation), else None (prediction).
    """

    ids: list[str]
    n_frames: np.ndarray
    max_p_viral: np.ndarray
    max_p_host: np.ndarray
    y_pred: np.ndarray  # 1 viral, 0 host, -1 no scored frame
    y_true: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def margin(self) -> np.ndarray:
        """``max p_viral − max p_host``: the chunk's ranking score (≥ 0 means viral)."""
        return self.max_p_viral - self.max_p_host

    @property
    def record_ids(self) -> list[str]:
        return [source_of(i) for i in self.ids]

    def count(self, call: int) -> int:
        """Chunks called ``call``: 1 viral, 0 host, -1 without a scored frame."""
        return int((self.y_pred == call).sum())


def aggregate_chunks(frame_ids: Sequence[str], p_viral: np.ndarray, order: Sequence[str] | None = None, *,
                     y_true: np.ndarray | None = None) -> ChunkAggregate:
    """Call each chunk from its frames by VirNucPro's rule (:data:`CHUNK_RULE`).

    Args:
        frame_ids: frame ids; the chunk is the id without its ``F1``..``R3`` suffix.
        p_viral: viral score of each frame; the host score is ``1 - p_viral``.
        order: every chunk to report, in this order (chunks without frames included);
            default: the frames' chunks in first-seen order.
        y_true: the frames' true labels (0 host / 1 viral), to label each chunk (``ChunkAggregate.y_true``).

    Raises:
        InputError: a frame belongs to no chunk of ``order``, or frames of one chunk carry different labels.
    """
    chunks = [chunk_of(i) for i in frame_ids]
    if order is not None:
        listed = set(order)
        unknown = list(dict.fromkeys(c for c in chunks if c not in listed))
        if unknown:
            raise InputError(
                f"{len(unknown)} frame(s) belong to no listed chunk, e.g. {', '.join(unknown[:5])}",
                expected="frame ids '{chunk id}F1'..'R3' of the chunks in chunks.fa",
                fix="score the frames of the same preprocess run",
            )
    names, where = _index(chunks, order)
    p = np.asarray(p_viral, dtype=np.float64)
    max_viral = np.full(len(names), -np.inf)
    max_host = np.full(len(names), -np.inf)
    np.maximum.at(max_viral, where, p)
    np.maximum.at(max_host, where, 1.0 - p)
    n_frames = np.bincount(where, minlength=len(names)).astype(np.int64)
    empty = n_frames == 0
    max_viral[empty] = np.nan
    max_host[empty] = np.nan
    y_pred = np.where(empty, -1, (max_viral >= max_host).astype(np.int64))
    truth = None if y_true is None else labels_per_group(chunks, y_true, names, "chunk")
    return ChunkAggregate(names, n_frames, max_viral, max_host, y_pred, truth)


@dataclass
class RecordAggregate:
    """One row per input record: frames, chunks, mean viral score, share of viral chunks, the call."""

    ids: list[str]
    n_frames: np.ndarray
    n_chunks: np.ndarray
    mean_p_viral: np.ndarray
    viral_chunk_share: np.ndarray
    y_pred: np.ndarray
    rule: str


def aggregate_records(frame_ids: Sequence[str], p_viral: np.ndarray, *, rule: str = DEFAULT_RECORD_RULE,
                      threshold: float = 0.5) -> RecordAggregate:
    """Call each source record (the id before its last ``_chunk_``) from its frames; see :data:`RECORD_RULES`."""
    if rule not in RECORD_RULES or not 0.0 <= threshold <= 1.0:
        raise InputError(f"record rule {rule!r} with threshold {threshold!r} is not available",
                         expected=f"rule one of {', '.join(RECORD_RULES)}; threshold in [0, 1]",
                         fix="pass --record-rule mean (default) or majority, and a threshold such as 0.5")
    p = np.asarray(p_viral, dtype=np.float64)
    records, where = _index([source_of(i) for i in frame_ids], None)
    n_frames = np.bincount(where, minlength=len(records)).astype(np.int64)
    mean = np.bincount(where, weights=p, minlength=len(records)) / np.maximum(n_frames, 1)
    chunks = aggregate_chunks(frame_ids, p)
    _, chunk_where = _index([source_of(c) for c in chunks.ids], records)
    n_chunks = np.bincount(chunk_where, minlength=len(records)).astype(np.int64)
    viral_chunks = np.bincount(chunk_where, weights=(chunks.y_pred == 1).astype(float), minlength=len(records))
    share = viral_chunks / np.maximum(n_chunks, 1)
    score = mean if rule == "mean" else share
    return RecordAggregate(records, n_frames, n_chunks, mean, share, (score >= threshold).astype(np.int64),
                           RECORD_RULES[rule].format(threshold=threshold))


def labels_per_group(keys: Sequence[str], y_true: np.ndarray, names: Sequence[str], what: str) -> np.ndarray:
    """The one true label of each group ``names`` (keys of its members); an error when members disagree."""
    _, where = _index(list(keys), names)
    y = np.asarray(y_true, dtype=np.int64)
    low = np.full(len(names), 2, dtype=np.int64)
    high = np.full(len(names), -1, dtype=np.int64)
    np.minimum.at(low, where, y)
    np.maximum.at(high, where, y)
    mixed = [names[i] for i in np.flatnonzero(low != high)]
    if mixed:
        raise InputError(
            f"{len(mixed)} {what}(s) have frames with different true labels, e.g. {', '.join(mixed[:5])}",
            expected=f"every frame of a {what} ({{record}}_chunk_{{k}}F1..R3) labelled like its source record",
            fix="check the labels of the merged feature files (viral 1, host 0)",
        )
    return low
