"""Prediction tables on disk: ours, and the original VirNucPro's two result files.

Ours (written by ``virnucpro predict``):

* ``frames.tsv`` — ``frame_id, chunk_id, record_id, viral_score, host_score, prediction``
  (scores with 6 decimals, prediction ``virus`` / ``others``);
* ``chunks.tsv`` — ``chunk_id, record_id, n_frames, max_viral_score, max_host_score, verdict``.

The original's (its ``prediction.py``), written beside ours so that tools built
on VirNucPro's outputs keep working:

* ``prediction_results.txt`` — tab-separated, header ``Sequence_ID  Prediction  score1  score2``;
  one row per frame; ``Prediction`` is ``virus`` or ``others`` (the arg-max of the
  softmax); ``score1`` / ``score2`` are the float32 softmax probabilities of host
  and viral, printed as numpy prints a float32 (``str(np.float32(p))``);
* ``prediction_results_highestscore.csv`` — tab-separated despite its name, header
  ``Modified_ID  Is_Virus``: one row per chunk (the frame id without its last two
  characters), sorted by that id as pandas' ``groupby`` sorts it, ``True`` when the
  chunk's highest ``score2`` is ≥ its highest ``score1``, else ``False``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from virnucpro_core.evaluate.aggregation import ChunkAggregate
from virnucpro_core.files import atomic_write_text
from virnucpro_core.paths import ORIGINAL_HIGHEST, ORIGINAL_RESULTS
from virnucpro_core.predict.scoring import FrameScores

FRAME_COLUMNS = ("frame_id", "chunk_id", "record_id", "viral_score", "host_score", "prediction")
CHUNK_COLUMNS = ("chunk_id", "record_id", "n_frames", "max_viral_score", "max_host_score", "verdict")
CALL_NAMES = {1: "virus", 0: "others"}
NO_FRAMES = "no_frames"  # the verdict of a chunk without a stop-free frame

ORIGINAL_RESULTS_HEADER = ("Sequence_ID", "Prediction", "score1", "score2")
ORIGINAL_HIGHEST_HEADER = ("Modified_ID", "Is_Virus")


def _score(value: float) -> str:
    return "NA" if math.isnan(value) else f"{value:.6f}"


def write_frames_tsv(scores: FrameScores, path: str | os.PathLike) -> Path:
    """``frames.tsv``: one row per frame (scores with 6 decimals; prediction ``virus``/``others``)."""
    lines = ["\t".join(FRAME_COLUMNS)]
    for frame, chunk, record, p_viral, call in zip(
        scores.ids, scores.chunk_ids, scores.record_ids, scores.p_viral.tolist(), scores.y_pred.tolist()
    ):
        lines.append(f"{frame}\t{chunk}\t{record}\t{_score(p_viral)}\t{_score(1.0 - p_viral)}\t{CALL_NAMES[call]}")
    atomic_write_text(path, "\n".join(lines) + "\n")
    return Path(path)


def verdicts(chunks: ChunkAggregate) -> list[str]:
    """Each chunk's verdict as ``chunks.tsv`` words it: ``virus``, ``others`` or :data:`NO_FRAMES`."""
    return [NO_FRAMES if call < 0 else CALL_NAMES[call] for call in chunks.y_pred.tolist()]


def write_chunks_tsv(chunks: ChunkAggregate, path: str | os.PathLike) -> Path:
    """``chunks.tsv``: one row per chunk (``NA`` scores and ``no_frames`` for chunks without frames)."""
    lines = ["\t".join(CHUNK_COLUMNS)]
    for chunk, record, n, v, h, verdict in zip(
        chunks.ids, chunks.record_ids, chunks.n_frames.tolist(), chunks.max_p_viral.tolist(),
        chunks.max_p_host.tolist(), verdicts(chunks),
    ):  # fmt: skip
        lines.append(f"{chunk}\t{record}\t{n}\t{_score(v)}\t{_score(h)}\t{verdict}")
    atomic_write_text(path, "\n".join(lines) + "\n")
    return Path(path)


def original_probabilities(logits: torch.Tensor) -> np.ndarray:
    """The original's scores: ``softmax(logits, dim=1)`` in float32, as a ``[n, 2]`` float32 array."""
    return torch.softmax(logits.to(torch.float32), dim=1).numpy()


def original_results_text(ids: Sequence[str], probabilities: np.ndarray) -> str:
    """``prediction_results.txt`` for ``ids`` and their float32 ``[host, viral]`` probabilities."""
    lines = ["\t".join(ORIGINAL_RESULTS_HEADER)]
    calls = np.argmax(probabilities, axis=1)  # torch.max's index: the first of equal scores, i.e. others
    for sample, row, call in zip(ids, probabilities, calls.tolist(), strict=True):
        lines.append(f"{sample}\t{CALL_NAMES[call]}\t" + "\t".join(str(np.float32(p)) for p in row))
    return "\n".join(lines) + "\n"


def highest_score_text(ids: Sequence[str], probabilities: np.ndarray) -> str:
    """``prediction_results_highestscore.csv`` for the frames ``ids`` and their probabilities.

    Scores are compared as the printed float32 values read back (what the
    original's pandas compares).
    """
    best: dict[str, list[float]] = {}
    for sample, row in zip(ids, probabilities, strict=True):
        host, viral = (float(str(np.float32(p))) for p in row)
        chunk = sample[:-2]
        if chunk in best:
            best[chunk][0] = max(best[chunk][0], host)
            best[chunk][1] = max(best[chunk][1], viral)
        else:
            best[chunk] = [host, viral]
    lines = ["\t".join(ORIGINAL_HIGHEST_HEADER)]
    lines += [f"{chunk}\t{best[chunk][1] >= best[chunk][0]}" for chunk in sorted(best)]
    return "\n".join(lines) + "\n"


def write_original_results(ids: Sequence[str], logits: torch.Tensor, directory: str | os.PathLike) -> list[Path]:
    """Write ``prediction_results.txt`` and ``prediction_results_highestscore.csv`` into ``directory``."""
    directory = Path(directory)
    probabilities = original_probabilities(logits)
    atomic_write_text(directory / ORIGINAL_RESULTS, original_results_text(ids, probabilities))
    atomic_write_text(directory / ORIGINAL_HIGHEST, highest_score_text(ids, probabilities))
    return [directory / ORIGINAL_RESULTS, directory / ORIGINAL_HIGHEST]
