"""Predictions: a trained checkpoint applied to merged features or to new DNA sequences.

Two entry points:

* :func:`predict_features` — a checkpoint on a merged feature file (e.g. a
  split's ``test.pt``) → :class:`~virnucpro_core.evaluate.predictions.Predictions`, the file
  ``virnucpro compare`` reads. Behind ``virnucpro evaluate``.
* :func:`score_features` — the calls on frames of unknown class;
  :mod:`virnucpro_core.predict.run` strings it and the chunk rule
  (:func:`~virnucpro_core.evaluate.aggregation.aggregate_chunks`) into ``virnucpro
  predict`` (new sequences, or features made before).

Calls follow VirNucPro (and :mod:`virnucpro_core.evaluate.metrics`): a frame is viral
iff its viral score beats its host score (arg-max of the logits, a tie is
host); a chunk is viral iff the highest viral score among its frames is ≥ the
highest host score among its frames (a tie is viral). ``frames.tsv`` labels
calls ``virus`` / ``others`` as the original's ``prediction_results.txt`` did.

New sequences have no labels, so :func:`merge_unlabeled` joins the two
feature files without one, and :class:`FrameScores` carries the calls;
``Predictions`` (which needs a true label per sample) is only built for
labelled data.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from virnucpro_core.models.classifier import LoadedCheckpoint, display_name
from virnucpro_core.defaults import CHUNK_SIZE
from virnucpro_core.layouts.rows import Embeddings
from virnucpro_core.errors import InputError
from virnucpro_core.threads import stage_threads
from virnucpro_core.extract.merged import merge_features
from virnucpro_core.files import sha256_file
from virnucpro_core.layouts.checkpoints import load_checkpoint
from virnucpro_core.layouts.features import MergedFeatures, MergedRows, open_rows
from virnucpro_core.evaluate.predictions import Predictions, frame_calls
from virnucpro_core.preprocess.sequences import source_id
from virnucpro_core.layouts.features import feature_info
from virnucpro_core.split.ids import chunk_of
from virnucpro_core.split.lineage import Lineage, check_lineage

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = CHUNK_SIZE
DNA_MODEL = "dnabert_s"
# Rows per MLP forward pass: the classifier is small, this only bounds memory.
SCORE_BATCH = 65536
RANDOM_WEIGHTS_WARNING = (
    "RANDOM-WEIGHT STAND-IN MODELS: these predictions come from randomly initialised language models and say "
    "nothing about the sequences. Use --weights pretrained with the published checkpoints for real predictions."
)
# Provenance fields of an embedding worth carrying into predictions (the rest is bookkeeping).
_PROVENANCE_KEYS = (
    "model", "display_name", "weights", "size", "source", "revision", "seed", "dtype", "dim", "vocab_sha256",
    "provenance", "declared_by", "architecture", "identity",
)  # fmt: skip


# --------------------------------------------------------------------------- where outputs live


# --------------------------------------------------------------------------- label-free features


def merge_unlabeled(dna_path: str | os.PathLike, protein_path: str | os.PathLike, *, dna: Embeddings | None = None,
                    protein: Embeddings | None = None) -> Embeddings:
    """Join DNABERT-S and protein-model features by id (DNA first) without a class label.

    Runs :func:`virnucpro_core.extract.merged.merge_features`, so every check of
    ``virnucpro merge`` applies (model families, widths, same ids in both
    files; ``dna`` / ``protein``, the files' contents when in memory, are not
    read again); its label only fills the ``labels`` column, which is dropped
    here: the rows, their lengths and the meta (dims, both inputs' provenance) remain.

    Raises:
        InputError: wrong model in either file, or ids present in one file only.
        DimensionError: widths other than DNABERT-S + the protein model's.
    """
    merged = merge_features(dna_path, protein_path, "host", dna=dna, protein=protein)
    meta = {key: value for key, value in merged.meta.items() if key != "label"}
    return Embeddings(merged.ids, merged.data, merged.lengths, meta)


# --------------------------------------------------------------------------- scoring


@dataclass
class FrameScores:
    """The classifier's calls on frames of unknown class.

    Attributes:
        ids: frame ids.
        p_viral: viral score, the softmax probability of class 1 (float64).
        y_pred: 1 (viral) / 0 (host), the arg-max of the logits (a tie is host).
        lengths: protein length of each frame (int64).
    """

    ids: list[str]
    p_viral: np.ndarray
    y_pred: np.ndarray
    lengths: np.ndarray
    logits: torch.Tensor | None = None  # float32 [n, 2], for the original's float32 scores

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def chunk_ids(self) -> list[str]:
        return [chunk_of(i) for i in self.ids]

    @property
    def record_ids(self) -> list[str]:
        return [source_id(i) for i in self.ids]


def _as_checkpoint(checkpoint: str | os.PathLike | LoadedCheckpoint, **expect: Any) -> LoadedCheckpoint:
    """Load (or, for a loaded one, re-load from its file) with the loader's width and model checks."""
    path = checkpoint.path if isinstance(checkpoint, LoadedCheckpoint) else checkpoint
    return load_checkpoint(path, **expect)


def logits_of(checkpoint: LoadedCheckpoint, data: torch.Tensor, *, batch_size: int = SCORE_BATCH) -> torch.Tensor:
    """The MLP's ``[n, 2]`` logits for ``data`` ``[n, input_dim]``, in float32 on the CPU.

    Raises:
        DimensionError: ``data`` is not as wide as the checkpoint's input.
    """
    model = checkpoint.model.eval()
    device = next(model.parameters()).device
    if data.ndim != 2 or data.shape[1] != model.input_dim:
        model(data[:1] if data.ndim == 2 else data)  # raises the classifier's DimensionError
    out = torch.empty((data.shape[0], model.num_classes), dtype=torch.float32)
    with torch.inference_mode(), stage_threads("evaluate"):
        for start in range(0, data.shape[0], batch_size):
            block = data[start : start + batch_size].to(device=device, dtype=torch.float32)
            out[start : start + batch_size] = model(block).float().cpu()
    return out


def score_features(checkpoint: LoadedCheckpoint, features: Embeddings) -> FrameScores:
    """The checkpoint's calls on feature rows of unknown (or ignored) class."""
    logits = logits_of(checkpoint, features.data)
    p_viral, y_pred = frame_calls(logits)
    return FrameScores(
        ids=list(features.ids),
        p_viral=p_viral,
        y_pred=y_pred,
        lengths=features.lengths.numpy().astype(np.int64),
        logits=logits,
    )


def _provenance(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        return {}
    return {key: entry[key] for key in _PROVENANCE_KEYS if key in entry}


def checkpoint_info(checkpoint: LoadedCheckpoint) -> dict[str, Any]:
    """What a checkpoint is, for predictions' meta and summaries (JSON types only)."""
    meta = checkpoint.meta
    path = Path(checkpoint.path)
    return {
        "path": str(path),
        "sha256": checkpoint.sha256 or (sha256_file(path) if path.is_file() else None),
        "protein_model": meta.protein_model,
        "dna_model": meta.dna_model,
        "input_dim": meta.input_dim,
        "which": meta.which,
        "epoch": meta.epoch,
        "split_id": meta.split_id,
        "lineage": meta.lineage,
        "trained_on": dict(meta.features),
        "created": meta.created,
    }


def predict_features(
    checkpoint: str | os.PathLike | LoadedCheckpoint,
    features: str | os.PathLike | MergedFeatures,
    *,
    labels: Any = None,
    allow_other_split: bool = False,
) -> Predictions:
    """Run a checkpoint on a merged feature file and return its predictions.

    The checkpoint must have been trained on the split whose test side ``features`` is
    (:func:`~virnucpro_core.split.lineage.check_lineage`): a checkpoint of another split, of no split, or of
    another layout that records none, is refused before anything is scored, naming both and how many test samples
    it was trained on; ``allow_other_split`` scores it anyway, and the predictions' ``meta["lineage"]`` says so.

    Args:
        checkpoint: a checkpoint file of any layout :func:`~virnucpro_core.layouts.checkpoints.load_checkpoint`
            reads (``virnucpro train``'s, the original VirNucPro's, the FastESM2 fork's), or an already loaded one.
        features: a merged feature file (e.g. a split's ``test.pt``) or its
            :class:`~virnucpro_core.layouts.features.MergedFeatures`.
        labels: true classes (0 host / 1 viral) overriding the file's labels.
        allow_other_split: score a checkpoint whose lineage does not match (``--allow-other-split``).
            Features without labels (:class:`~virnucpro_core.layouts.rows.Embeddings`) need them; for
            new sequences of unknown class use :func:`score_features` or
            :func:`virnucpro_core.predict.run.predict_fasta` instead.

    Returns:
        :class:`~virnucpro_core.evaluate.predictions.Predictions` whose ``meta`` records the
        checkpoint and both embedders' provenance (a ``weights: random`` there
        makes ``virnucpro compare`` flag the run).

    Raises:
        DimensionError: the checkpoint was trained on features of another width
            or protein model (e.g. a 3328-d ESM2 3B checkpoint on 2048-d FastESM2 features).
        InputError: unreadable files, or no labels.
    """
    features_path = None
    if not isinstance(features, Embeddings):
        features_path = Path(features)
        features = open_rows(features_path)  # rows stay on disk; scored a block at a time
    info = feature_info(features.meta)
    width = features.width if isinstance(features, MergedRows) else features.dim
    loaded = _as_checkpoint(
        checkpoint, expected_input_dim=width, expected_protein_model=info["protein_model"] or None
    )
    if labels is None:
        labels = getattr(features, "labels", None)
    if labels is None:
        raise InputError(
            "these features carry no true labels, so no Predictions (which compare against labels) can be made",
            expected="a merged feature file with labels (from `virnucpro merge --label` / `virnucpro split`)",
            found=f"{len(features)} unlabeled samples",
            fix="pass labels=..., or use score_features / `virnucpro predict` for sequences of unknown class",
        )
    lineage = check_lineage(Lineage.from_dict(loaded.meta.lineage), f"checkpoint {loaded.path}", features.meta,
                            features.ids, test_name=str(features_path or "the features"), allow=allow_other_split)
    if isinstance(features, MergedRows):
        logits = torch.cat([logits_of(loaded, block) for _, block in features.rows.blocks()] or
                           [torch.empty((0, loaded.model.num_classes))])
    else:
        logits = logits_of(loaded, features.data)
    protein_meta = _provenance(features.meta.get("protein"))
    dna_meta = _provenance(features.meta.get("dna"))
    protein_model = info["protein_model"] or loaded.meta.protein_model
    meta = {
        "model": protein_model,
        "display_name": display_name(protein_model),
        "size": info["size"],
        "protein": protein_meta or {"model": protein_model, "weights": info["protein_weights"]},
        "dna": dna_meta or {"model": info["dna_model"], "weights": info["dna_weights"]},
        "checkpoint": checkpoint_info(loaded),
        "features_file": str(features_path) if features_path else None,
        "split": features.meta.get("split"),
        "lineage": lineage.to_dict(),
    }
    return Predictions.from_logits(features.ids, logits, labels, features.lengths, json.loads(json.dumps(meta)))
