"""Predictions: a trained checkpoint applied to merged features or to new DNA sequences.

Two entry points:

* :func:`predict_features` — a checkpoint on a merged feature file (e.g. a
  split's ``test.pt``) → :class:`~virnucpro_core.metrics.Predictions`, the file
  ``virnucpro compare`` reads. Behind ``virnucpro evaluate``.
* :func:`predict_fasta` — what a user runs on new sequences, as VirNucPro's
  ``prediction.py`` did: preprocess → DNABERT-S on the nucleotide frames and
  the checkpoint's protein model on the protein frames → merge by id → MLP →
  ``frames.tsv`` (one row per frame), ``chunks.tsv`` (one verdict per chunk)
  and ``summary.json``. Behind ``virnucpro predict``.

Calls follow VirNucPro (and :mod:`virnucpro_core.metrics`): a frame is viral
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
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from virnucpro_core.classifier import LoadedCheckpoint, display_name, load_checkpoint
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.features import extract_to_file, merge_features
from virnucpro_core.layouts.features import MergedFeatures, load_merged
from virnucpro_core.files import atomic_write_text, sha256_file
from virnucpro_core.metrics import CHUNK_RULE, FRAME_RULE, Predictions
from virnucpro_core.models import SIZES, SPECS, WEIGHTS, get_spec, load_model
from virnucpro_core.sequences import preprocess, read_fasta, source_id
from virnucpro_core.split import chunk_of, feature_info

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 300
DNA_MODEL = "dnabert_s"
# Rows per MLP forward pass: the classifier is small, this only bounds memory.
SCORE_BATCH = 65536
# The original's words for the two classes in prediction_results.txt.
CALL_NAMES = {1: "virus", 0: "others"}
NO_FRAMES = "no_frames"
RANDOM_WEIGHTS_WARNING = (
    "RANDOM-WEIGHT STAND-IN MODELS: these predictions come from randomly initialised language models and say "
    "nothing about the sequences. Use --weights pretrained with the published checkpoints for real predictions."
)
# Provenance fields of an embedding worth carrying into predictions (the rest is bookkeeping).
_PROVENANCE_KEYS = (
    "model", "display_name", "weights", "size", "source", "revision", "seed", "dtype", "dim", "vocab_sha256",
    "provenance", "declared_by",
)  # fmt: skip


# --------------------------------------------------------------------------- where outputs live


@dataclass(frozen=True)
class PredictionPaths:
    """Outputs of ``virnucpro predict``, one property per file."""

    root: Path

    @property
    def frames(self) -> Path:
        """One row per frame: ids, viral and host score, call."""
        return self.root / "frames.tsv"

    @property
    def chunks(self) -> Path:
        """One row per chunk: frame count, highest scores, verdict."""
        return self.root / "chunks.tsv"

    @property
    def summary(self) -> Path:
        """Parameters, model provenance, counts and warnings."""
        return self.root / "summary.json"

    @property
    def preprocess(self) -> Path:
        """Directory of ``virnucpro preprocess``'s outputs for the input."""
        return self.root / "preprocess"

    @property
    def dna_features(self) -> Path:
        return self.root / "features" / "dna.pt"

    @property
    def protein_features(self) -> Path:
        return self.root / "features" / "protein.pt"


# --------------------------------------------------------------------------- label-free features


@dataclass
class UnlabeledFeatures:
    """DNA ‖ protein features of samples whose class is unknown (new sequences).

    Attributes:
        ids: frame ids, in the protein file's order.
        data: float32 ``[n, dna_dim + protein_dim]``.
        lengths: int64 ``[n]`` protein lengths.
        meta: dims and both inputs' provenance, as :func:`features.merge_features` records them.
    """

    ids: list[str]
    data: torch.Tensor
    lengths: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.data.shape[1])


def merge_unlabeled(dna_path: str | os.PathLike, protein_path: str | os.PathLike) -> UnlabeledFeatures:
    """Join DNABERT-S and protein-model features by id (DNA first) without a class label.

    Runs :func:`virnucpro_core.features.merge_features`, so every check of
    ``virnucpro merge`` applies (model families, widths, same ids in both
    files); its label only fills the ``labels`` column, which is dropped here.

    Raises:
        InputError: wrong model in either file, or ids present in one file only.
        DimensionError: widths other than DNABERT-S + the protein model's.
    """
    merged = merge_features(dna_path, protein_path, "host")
    meta = {key: value for key, value in merged.meta.items() if key != "label"}
    return UnlabeledFeatures(merged.ids, merged.data, merged.lengths, meta)


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

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def p_host(self) -> np.ndarray:
        return 1.0 - self.p_viral

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
    with torch.inference_mode():
        for start in range(0, data.shape[0], batch_size):
            block = data[start : start + batch_size].to(device=device, dtype=torch.float32)
            out[start : start + batch_size] = model(block).float().cpu()
    return out


def score_features(checkpoint: LoadedCheckpoint, features: UnlabeledFeatures | MergedFeatures) -> FrameScores:
    """The checkpoint's calls on features of unknown (or ignored) class."""
    logits = logits_of(checkpoint, features.data).double()
    return FrameScores(
        ids=list(features.ids),
        p_viral=torch.softmax(logits, dim=1)[:, 1].numpy(),
        y_pred=torch.argmax(logits, dim=1).numpy().astype(np.int64),
        lengths=features.lengths.numpy().astype(np.int64),
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
        "sha256": sha256_file(path) if path.is_file() else None,
        "protein_model": meta.protein_model,
        "dna_model": meta.dna_model,
        "input_dim": meta.input_dim,
        "which": meta.which,
        "epoch": meta.epoch,
        "split_id": meta.split_id,
        "trained_on": dict(meta.features),
        "created": meta.created,
    }


def predict_features(
    checkpoint: str | os.PathLike | LoadedCheckpoint,
    features: str | os.PathLike | MergedFeatures,
    *,
    labels: Any = None,
) -> Predictions:
    """Run a checkpoint on a merged feature file and return its predictions.

    Args:
        checkpoint: a file from ``virnucpro train`` (or an already loaded one).
        features: a merged feature file (e.g. a split's ``test.pt``) or its
            :class:`~virnucpro_core.layouts.features.MergedFeatures`.
        labels: true classes (0 host / 1 viral) overriding the file's labels.
            Features without labels (:class:`UnlabeledFeatures`) need them; for
            new sequences of unknown class use :func:`score_features` or
            :func:`predict_fasta` instead.

    Returns:
        :class:`~virnucpro_core.metrics.Predictions` whose ``meta`` records the
        checkpoint and both embedders' provenance (a ``weights: random`` there
        makes ``virnucpro compare`` flag the run).

    Raises:
        DimensionError: the checkpoint was trained on features of another width
            or protein model (e.g. a 3328-d ESM2 3B checkpoint on 2048-d FastESM2 features).
        InputError: unreadable files, or no labels.
    """
    features_path = None
    if not isinstance(features, (MergedFeatures, UnlabeledFeatures)):
        features_path = Path(features)
        features = load_merged(features_path)
    info = feature_info(features.meta)
    loaded = _as_checkpoint(
        checkpoint, expected_input_dim=features.dim, expected_protein_model=info["protein_model"] or None
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
    }
    return Predictions.from_logits(features.ids, logits, labels, features.lengths, json.loads(json.dumps(meta)))


# --------------------------------------------------------------------------- chunk verdicts


@dataclass
class ChunkCalls:
    """One verdict per chunk, in input order; chunks without a stop-free frame get :data:`NO_FRAMES`.

    Attributes:
        ids: chunk ids (``{record}_chunk_{k}``).
        n_frames: frames of the chunk that were scored.
        max_p_viral: highest viral score among its frames (NaN without frames).
        max_p_host: highest host score among its frames (NaN without frames).
        verdicts: ``virus``, ``others`` or ``no_frames`` (see :data:`~virnucpro_core.metrics.CHUNK_RULE`).
    """

    ids: list[str]
    n_frames: np.ndarray
    max_p_viral: np.ndarray
    max_p_host: np.ndarray
    verdicts: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def record_ids(self) -> list[str]:
        return [source_id(i) for i in self.ids]

    @property
    def n_viral(self) -> int:
        return sum(v == CALL_NAMES[1] for v in self.verdicts)


def chunk_calls(scores: FrameScores, chunk_ids: list[str] | None = None) -> ChunkCalls:
    """Call each chunk from its frames: viral iff max viral score ≥ max host score.

    Args:
        scores: the frames' scores.
        chunk_ids: every chunk of the input in order (frameless chunks included);
            default: the chunks of ``scores`` in first-seen order.
    """
    viral: dict[str, float] = {}
    host: dict[str, float] = {}
    count: dict[str, int] = {}
    for chunk, p_viral in zip(scores.chunk_ids, scores.p_viral.tolist()):
        viral[chunk] = max(viral.get(chunk, -math.inf), p_viral)
        host[chunk] = max(host.get(chunk, -math.inf), 1.0 - p_viral)
        count[chunk] = count.get(chunk, 0) + 1
    order = list(count) if chunk_ids is None else list(chunk_ids)
    unknown = [c for c in count if c not in set(order)]
    if unknown:
        raise InputError(
            f"{len(unknown)} frame(s) belong to no listed chunk, e.g. {', '.join(unknown[:5])}",
            expected="frame ids '{chunk id}F1'..'R3' of the chunks in chunks.fa",
            fix="score the frames of the same preprocess run",
        )
    max_viral = np.array([viral.get(c, math.nan) for c in order], dtype=np.float64)
    max_host = np.array([host.get(c, math.nan) for c in order], dtype=np.float64)
    verdicts = [
        NO_FRAMES if c not in count else CALL_NAMES[int(v >= h)] for c, v, h in zip(order, max_viral, max_host)
    ]
    return ChunkCalls(order, np.array([count.get(c, 0) for c in order], dtype=np.int64), max_viral, max_host, verdicts)


# --------------------------------------------------------------------------- tables


FRAME_COLUMNS = ("frame_id", "chunk_id", "record_id", "viral_score", "host_score", "prediction")
CHUNK_COLUMNS = ("chunk_id", "record_id", "n_frames", "max_viral_score", "max_host_score", "verdict")


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


def write_chunks_tsv(calls: ChunkCalls, path: str | os.PathLike) -> Path:
    """``chunks.tsv``: one row per chunk (``NA`` scores and ``no_frames`` for chunks without frames)."""
    lines = ["\t".join(CHUNK_COLUMNS)]
    for chunk, record, n, v, h, verdict in zip(
        calls.ids, calls.record_ids, calls.n_frames.tolist(), calls.max_p_viral.tolist(),
        calls.max_p_host.tolist(), calls.verdicts,
    ):  # fmt: skip
        lines.append(f"{chunk}\t{record}\t{n}\t{_score(v)}\t{_score(h)}\t{verdict}")
    atomic_write_text(path, "\n".join(lines) + "\n")
    return Path(path)


# --------------------------------------------------------------------------- end to end


@dataclass
class PredictionResult:
    """What ``predict_fasta`` produced: calls, provenance and where the files are.

    ``random_weights`` is true when either language model had random weights;
    ``warnings`` then starts with :data:`RANDOM_WEIGHTS_WARNING`.
    """

    paths: PredictionPaths
    frames: FrameScores
    chunks: ChunkCalls
    parameters: dict[str, Any]
    models: dict[str, Any]
    checkpoint: dict[str, Any]
    counts: dict[str, int]
    random_weights: bool
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``summary.json`` content."""
        return {
            "format": "virnucpro-prediction-summary",
            "version": 1,
            "random_weights": self.random_weights,
            "warnings": list(self.warnings),
            "parameters": self.parameters,
            "models": self.models,
            "checkpoint": self.checkpoint,
            "counts": self.counts,
            "rules": {"frame": FRAME_RULE, "chunk": CHUNK_RULE},
            "outputs": {
                "frames": str(self.paths.frames),
                "chunks": str(self.paths.chunks),
                "preprocess": str(self.paths.preprocess),
                "dna_features": str(self.paths.dna_features),
                "protein_features": str(self.paths.protein_features),
            },
        }

    def save(self) -> Path:
        atomic_write_text(self.paths.summary, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return self.paths.summary


def _protein_model_of(loaded: LoadedCheckpoint, size: str) -> str:
    """The protein model a checkpoint was trained with: its meta, else the one whose width fits."""
    if loaded.meta.protein_model:
        return get_spec(loaded.meta.protein_model).name
    dna_dim = get_spec(DNA_MODEL).dim_for(size)
    fits = [n for n, s in SPECS.items() if s.family == "esm" and dna_dim + s.dim_for(size) == loaded.meta.input_dim]
    if len(fits) == 1:
        log.info("checkpoint %s names no protein model; its %d-d input fits %s", loaded.path,
                 loaded.meta.input_dim, display_name(fits[0]))  # fmt: skip
        return fits[0]
    raise DimensionError(
        f"checkpoint {loaded.path} names no protein model and its {loaded.meta.input_dim}-d input fits none "
        f"at size {size}",
        expected=" or ".join(
            f"{dna_dim + s.dim_for(size)} (DNABERT-S {dna_dim} + {s.display_name} {s.dim_for(size)})"
            for s in SPECS.values() if s.family == "esm"
        ),
        found=f"{loaded.meta.input_dim}",
        fix="pass the checkpoint written by `virnucpro train`, or the --size its features were extracted at",
    )


def check_width(
    loaded: LoadedCheckpoint, protein_model: str, dna_dim: int, protein_dim: int, *, size: str, weights: str
) -> None:
    """Refuse a checkpoint whose input width is not DNABERT-S + protein model of this run.

    Raises:
        DimensionError: naming both widths and the settings the checkpoint was trained with, when known.
    """
    width = dna_dim + protein_dim
    if loaded.meta.input_dim == width:
        return
    trained = loaded.meta.features or {}
    hint = ""
    if trained.get("size") or trained.get("protein_weights"):
        hint = (
            f"; it was trained on features of size {trained.get('size') or '?'}, "
            f"{trained.get('protein_weights') or '?'} weights — pass --size/--weights to match"
        )
    protein = display_name(protein_model)
    raise DimensionError(
        f"checkpoint {loaded.path} takes {loaded.meta.input_dim}-d features; this run makes {width}-d "
        f"{protein} features — pick the checkpoint trained for these models and settings",
        expected=f"{width} features: DNABERT-S {dna_dim} + {protein} {protein_dim} ({weights} weights, size {size})",
        found=f"checkpoint input width {loaded.meta.input_dim} ({loaded.meta.describe()})",
        fix="use a checkpoint trained on features from the same models, size and weights" + hint,
    )


def _mismatch(loaded: LoadedCheckpoint, ours: str, theirs: str, option: str, allowed: list[str] | None) -> None:
    """A setting that differs from the checkpoint's training features: an error, or a warning added to
    ``allowed`` (the run's warnings) when mismatches are allowed."""
    message = f"this run uses {ours}, but {loaded.path} was trained on features made with {theirs}"
    if allowed is not None:
        allowed.append(f"{message}; scored anyway (--allow-mismatch)")
        return
    raise InputError(
        message,
        expected="the settings of the checkpoint's training features",
        found=ours,
        fix=f"drop {option} (predict then follows the checkpoint), or pass --allow-mismatch to score anyway",
    )


def predict_fasta(
    input_path: str | os.PathLike,
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    chunk_size: int | None = None,
    weights: str = "pretrained",
    size: str | None = None,
    dna_model_path: str | os.PathLike | None = None,
    protein_model_path: str | os.PathLike | None = None,
    device: str | None = "auto",
    seed: int = 0,
    progress: bool = True,
    rebuild: bool = False,
    allow_mismatch: bool = False,
    on_log: Callable[[str], None] | None = None,
) -> PredictionResult:
    """Classify the chunks of new DNA sequences with a trained checkpoint.

    Preprocesses ``input_path`` (prediction mode: every stop-free frame),
    embeds the nucleotide frames with DNABERT-S and the protein frames with the
    checkpoint's protein model (cached and resumable under ``out_dir/features``),
    joins them by id and scores them; then writes ``frames.tsv``,
    ``chunks.tsv`` and ``summary.json`` atomically in ``out_dir``.

    Args:
        input_path: nucleotide FASTA, optionally gzipped.
        checkpoint: file from ``virnucpro train``; its meta names the protein model.
        out_dir: output directory (created if missing).
        chunk_size: chunk length in bases; default: the one the checkpoint was trained on (recorded by
            ``virnucpro train``), else 300.
        weights: ``pretrained`` (published weights, from the model paths or the
            Hugging Face cache) or ``random`` (seeded stand-ins, for smoke runs).
        size: stand-in size with random weights, ``tiny`` or ``full``; default:
            the size the checkpoint was trained at, else ``tiny``.
        dna_model_path: DNABERT-S directory (or hub id) for pretrained weights.
        protein_model_path: protein model directory (or hub id) for pretrained weights.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` for the language models.
        seed: stand-in initialisation seed.
        progress: show progress bars.
        rebuild: recompute embeddings even when ``out_dir/features`` holds them for the same input and models.
        allow_mismatch: score even when the chunk size or the protein vocabulary differs from the
            checkpoint's training features (the calls are then not what the classifier was trained for).
        on_log: called with each notable message (default: the module logger).

    Raises:
        DimensionError: the checkpoint's input width is not DNABERT-S + protein model of this run.
        InputError: unreadable input or checkpoint, unknown options, or a chunk size or protein vocabulary
            other than the training features' (unless ``allow_mismatch``).
        WeightsNotFoundError: pretrained weights are not on this machine.
    """
    say = on_log or log.info
    if weights not in WEIGHTS:
        raise InputError(f"unknown weights kind {weights!r}", expected=" or ".join(WEIGHTS), found=repr(weights))
    loaded = load_checkpoint(checkpoint)
    trained = loaded.meta.features or {}
    if size is None:
        size = trained.get("size") if trained.get("size") in SIZES else "tiny"
        if weights == "random":
            say(f"stand-in size {size} (the checkpoint's training size, else tiny; change with --size)")
    if size not in SIZES:
        raise InputError(f"unknown model size {size!r}", expected=" or ".join(SIZES), found=repr(size))
    if loaded.meta.dna_model not in (None, DNA_MODEL):
        raise InputError(
            f"checkpoint {loaded.path} was trained with DNA model {loaded.meta.dna_model!r}",
            expected=f"{DNA_MODEL} (DNABERT-S), the only DNA model of this pipeline",
            found=repr(loaded.meta.dna_model),
            fix="pass a checkpoint written by `virnucpro train` on DNABERT-S features",
        )
    mismatches: list[str] | None = [] if allow_mismatch else None
    trained_chunk = trained.get("chunk_size")
    if chunk_size is None:
        chunk_size = trained_chunk or DEFAULT_CHUNK_SIZE
        origin = "as the checkpoint was trained" if trained_chunk else "the default; the checkpoint records none"
        say(f"chunk size {chunk_size} bp ({origin}; change with --chunk-size)")
    elif trained_chunk and chunk_size != trained_chunk:
        _mismatch(loaded, f"chunk size {chunk_size} bp", f"{trained_chunk} bp chunks", "--chunk-size", mismatches)
    # Pretrained weights are full size whatever --size says.
    protein_model = _protein_model_of(loaded, size if weights == "random" else "full")
    if weights == "random":  # widths are known before any model is built: fail fast
        check_width(loaded, protein_model, get_spec(DNA_MODEL).dim_for(size), get_spec(protein_model).dim_for(size),
                    size=size, weights=weights)  # fmt: skip

    # Nothing is written until every input has been checked: the FASTA is read first (seconds, before
    # minutes of loading full-size models), then both models are loaded and matched to the checkpoint.
    read_fasta(input_path)
    options = dict(weights=weights, size=size, device=device, seed=seed)
    dna = load_model(DNA_MODEL, model_path=dna_model_path, path_option="--dna-model-path", **options)
    # The protein model runs in the precision the training features were extracted in (bf16 for FastESM2 on a GPU).
    protein = load_model(protein_model, model_path=protein_model_path, path_option="--protein-model-path",
                         dtype=trained.get("protein_dtype") or "float32", **options)
    check_width(loaded, protein_model, dna.dim, protein.dim, size=protein.size, weights=protein.provenance["weights"])
    trained_vocab = trained.get("protein_vocab")
    if trained_vocab and trained_vocab != protein.provenance.get("vocab_sha256"):
        _mismatch(loaded, f"protein vocabulary {str(protein.provenance.get('vocab_sha256'))[:12]} "
                  f"({protein.provenance.get('vocab')})", f"vocabulary {trained_vocab[:12]}",
                  "--protein-model-path", mismatches)

    paths = PredictionPaths(Path(out_dir))
    prep = preprocess(input_path, chunk_size, paths.preprocess)
    say(f"{prep.records} records -> {prep.chunks} chunks of {chunk_size} bp -> {prep.frames} stop-free frames")
    chunk_ids = [record.id for record in read_fasta(prep.paths.chunks)] if prep.chunks else []
    models = {
        "dna": _provenance({**dna.provenance, "model": dna.spec.name, "display_name": dna.spec.display_name,
                            "dim": dna.dim, "device": dna.device.type}),
        "protein": _provenance({**protein.provenance, "model": protein.spec.name,
                                "display_name": protein.spec.display_name, "dim": protein.dim}),
    }  # fmt: skip
    models["device"] = protein.device.type
    random_weights = any(m.get("weights") == "random" for m in (models["dna"], models["protein"]))

    if prep.frames:
        extract_to_file(dna, prep.paths.nucleotide, paths.dna_features, progress=progress, rebuild=rebuild)
        extract_to_file(protein, prep.paths.protein, paths.protein_features, progress=progress,
                        rebuild=rebuild)
        features = merge_unlabeled(paths.dna_features, paths.protein_features)
        scores = score_features(loaded, features)
    else:
        empty = np.zeros(0)
        scores = FrameScores([], empty.astype(np.float64), empty.astype(np.int64), empty.astype(np.int64))
    calls = chunk_calls(scores, chunk_ids)

    warnings = [RANDOM_WEIGHTS_WARNING] if random_weights else []
    warnings += mismatches or []
    if trained.get("protein_weights") == "random" and not random_weights:
        warnings.append("the checkpoint was trained on random-weight stand-in features; its calls on pretrained "
                        "features mean nothing")  # fmt: skip
    elif trained.get("protein_weights") == "pretrained" and random_weights:
        warnings.append("the checkpoint was trained on pretrained features but this run used random stand-ins")
    if not prep.frames:
        warnings.append("no chunk has a stop-free frame: nothing was classified")
    frameless = sum(v == NO_FRAMES for v in calls.verdicts)
    if frameless and prep.frames:
        warnings.append(f"{frameless} of {len(calls)} chunks have no stop-free frame and get no verdict ({NO_FRAMES})")

    result = PredictionResult(
        paths=paths,
        frames=scores,
        chunks=calls,
        parameters={
            "input": str(input_path),
            "input_sha256": sha256_file(input_path),
            "chunk_size": chunk_size,
            "weights": weights,
            "size": size,
            "seed": seed,
            "device": device,
            "dna_model_path": str(dna_model_path) if dna_model_path else None,
            "protein_model_path": str(protein_model_path) if protein_model_path else None,
        },
        models=json.loads(json.dumps(models)),
        checkpoint=checkpoint_info(loaded),
        counts={
            "records": prep.records,
            "chunks": prep.chunks,
            "frames": len(scores),
            "viral_frames": int((scores.y_pred == 1).sum()),
            "viral_chunks": calls.n_viral,
            "other_chunks": sum(v == CALL_NAMES[0] for v in calls.verdicts),
            "chunks_without_frames": frameless,
        },
        random_weights=random_weights,
        warnings=warnings,
    )
    write_frames_tsv(scores, paths.frames)
    write_chunks_tsv(calls, paths.chunks)
    result.save()
    for warning in warnings:
        log.warning(warning)
    return result
