"""A prediction run: a trained checkpoint on new DNA sequences, or on features computed before.

* :func:`predict_fasta` — what a user runs on new sequences, as VirNucPro's
  ``prediction.py`` did: preprocess → DNABERT-S on the nucleotide frames and
  the checkpoint's protein model on the protein frames → merge by id → MLP,
  in one pass: the FASTA and the checkpoint are read once, and what each
  stage makes goes on in memory (its files are written, never read back).
* :func:`predict_merged` — the MLP alone on merged features that exist already
  (ours, or VirNucPro's original / FastESM2-fork files), read one file at a time.

Both write ``frames.tsv`` (one row per frame), ``chunks.tsv`` (one verdict per
chunk), the original's ``prediction_results.txt`` and
``prediction_results_highestscore.csv`` (:mod:`virnucpro_core.predict.tables`)
and ``summary.json``. Behind ``virnucpro predict``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from virnucpro_core.evaluate.aggregation import ChunkAggregate, aggregate_chunks
from virnucpro_core.models.classifier import LoadedCheckpoint, display_name
from virnucpro_core.layouts.rows import Embeddings
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.extract.features import extract_records
from virnucpro_core.files import atomic_write_text
from virnucpro_core.layouts.checkpoints import fit_checkpoint, load_checkpoint
from virnucpro_core.predict.tables import NO_FRAMES, write_chunks_tsv, write_frames_tsv, write_original_results
from virnucpro_core.evaluate.metrics import CHUNK_RULE, FRAME_RULE
from virnucpro_core.models.registry import (
    SIZES,
    WEIGHTS,
    describe_identity,
    identity_records,
    load_model,
    resolve_device,
)
from virnucpro_core.models.specs import SPECS, get_spec, merged_widths
from virnucpro_core.models.precision import extraction_dtype
from virnucpro_core.predict.scoring import (
    DEFAULT_CHUNK_SIZE,
    DNA_MODEL,
    RANDOM_WEIGHTS_WARNING,
    FrameScores,
    _provenance,
    checkpoint_info,
    merge_unlabeled,
    score_features,
)
from virnucpro_core.preprocess.fasta import formula_warning, reads_as_formula
from virnucpro_core.preprocess.sequences import FastaFile, preprocess
from virnucpro_core.layouts.features import (
    ORIGINAL_MERGED,
    OURS_MERGED,
    OURS_VIEW,
    detect_layout,
    feature_info,
    open_rows,
)
from virnucpro_core.paths import PredictionPaths
from virnucpro_core.pickles import torch_load
from virnucpro_core.layouts.store import FileRows, RowView
from virnucpro_core.layouts.declarations import protein_model_of_width
from virnucpro_core.layouts.virnucpro import merged_files, read_foreign_merged

log = logging.getLogger(__name__)


@dataclass
class PredictionResult:
    """What ``predict_fasta`` produced: calls, provenance and where the files are.

    ``random_weights`` is true when either language model had random weights;
    ``warnings`` then starts with :data:`RANDOM_WEIGHTS_WARNING`.
    """

    paths: PredictionPaths
    frames: FrameScores
    chunks: ChunkAggregate
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
            "outputs": self.outputs(),
        }

    def outputs(self) -> dict[str, str]:
        """Every file of the run; embedding outputs only when it embedded sequences (not with ``--features``)."""
        out = {"frames": self.paths.frames, "chunks": self.paths.chunks,
               "original_results": self.paths.original_results, "original_highest": self.paths.original_highest}
        if "features" not in self.parameters:
            out.update(preprocess=self.paths.preprocess, dna_features=self.paths.dna_features,
                       protein_features=self.paths.protein_features)
        return {key: str(value) for key, value in out.items()}

    def write(self) -> Path:
        """Write the tables (ours and the original's two files) and ``summary.json``."""
        write_frames_tsv(self.frames, self.paths.frames)
        write_chunks_tsv(self.chunks, self.paths.chunks)
        logits = self.frames.logits if self.frames.logits is not None else torch.zeros((0, 2))
        write_original_results(self.frames.ids, logits, self.paths.root)
        for warning in self.warnings:
            log.warning(warning)
        return self.save()

    def save(self) -> Path:
        atomic_write_text(self.paths.summary, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return self.paths.summary


def _protein_model_of(loaded: LoadedCheckpoint, size: str) -> str:
    """The protein model a checkpoint was trained with: its meta, else the one whose width fits."""
    if loaded.meta.protein_model:
        return get_spec(loaded.meta.protein_model).name
    fits = [model for width, model in merged_widths(size, DNA_MODEL).items() if width == loaded.meta.input_dim]
    if len(fits) == 1:
        log.info("checkpoint %s names no protein model; its %d-d input fits %s", loaded.path,
                 loaded.meta.input_dim, display_name(fits[0]))  # fmt: skip
        return fits[0]
    dna_dim = get_spec(DNA_MODEL).dim_for(size)
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
    allow_other_model: bool = False,
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
        checkpoint: file from ``virnucpro train``, the original VirNucPro or the FastESM2 fork; its meta (or,
            for the original's files, its width) names the protein model.
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
        allow_other_model: load a model directory that states another model than DNABERT-S or the
            checkpoint's protein model (same width) instead of refusing it; a warning names it.
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
    # Files of the original VirNucPro do not name their protein model: their width does, and with stand-ins
    # the stand-ins' widths count too.
    widths = merged_widths(size or "tiny", DNA_MODEL) if weights == "random" and (size or "tiny") in SIZES else None
    loaded = load_checkpoint(checkpoint, protein_widths=widths)
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
    # It is read once: its records stay in memory for preprocessing, and its sha256 is taken in the same pass.
    fasta = FastaFile.read(input_path)
    options = dict(weights=weights, size=size, device=device, seed=seed, allow_other_model=allow_other_model)
    dna = load_model(DNA_MODEL, model_path=dna_model_path, path_option="--dna-model-path", **options)
    # The protein model runs in the precision the training features were extracted in (recorded in the
    # checkpoint); a checkpoint that records none gets the precision policy's choice for this device.
    dtype = trained.get("protein_dtype") or extraction_dtype(protein_model, resolve_device(device).type)
    protein = load_model(protein_model, model_path=protein_model_path, path_option="--protein-model-path",
                         dtype=dtype, **options)
    check_width(loaded, protein_model, dna.dim, protein.dim, size=protein.size, weights=protein.provenance["weights"])
    trained_vocab = trained.get("protein_vocab")
    if trained_vocab and trained_vocab != protein.provenance.get("vocab_sha256"):
        _mismatch(loaded, f"protein vocabulary {str(protein.provenance.get('vocab_sha256'))[:12]} "
                  f"({protein.provenance.get('vocab')})", f"vocabulary {trained_vocab[:12]}",
                  "--protein-model-path", mismatches)

    paths = PredictionPaths(Path(out_dir))
    # The preprocess files and the feature files are written as `virnucpro preprocess` / `extract` write them
    # (the features are the cache a rerun reuses), but their contents come from memory, never read back.
    prep = preprocess(fasta, chunk_size, paths.preprocess, keep=True)
    input_sha256, fasta = fasta.sha256, None  # the records are in prep.samples now: let them go
    samples = prep.samples
    say(f"{prep.records} records -> {prep.chunks} chunks of {chunk_size} bp -> {prep.frames} stop-free frames")
    models = {
        "dna": _provenance({**dna.provenance, "model": dna.spec.name, "display_name": dna.spec.display_name,
                            "dim": dna.dim, "device": dna.device.type}),
        "protein": _provenance({**protein.provenance, "model": protein.spec.name,
                                "display_name": protein.spec.display_name, "dim": protein.dim}),
    }  # fmt: skip
    models["device"] = protein.device.type
    random_weights = any(m.get("weights") == "random" for m in (models["dna"], models["protein"]))

    if prep.frames:
        dna_rows = extract_records(dna, samples.nucleotide, paths.dna_features, source=prep.paths.nucleotide,
                                   chunk_size=chunk_size, progress=progress, rebuild=rebuild)
        protein_rows = extract_records(protein, samples.protein, paths.protein_features, source=prep.paths.protein,
                                       chunk_size=chunk_size, progress=progress, rebuild=rebuild)
        features = merge_unlabeled(paths.dna_features, paths.protein_features, dna=dna_rows, protein=protein_rows)
        scores = score_features(loaded, features)
    else:
        empty = np.zeros(0)
        scores = FrameScores([], empty.astype(np.float64), empty.astype(np.int64), empty.astype(np.int64))
    calls = aggregate_chunks(scores.ids, scores.p_viral, samples.chunk_ids)

    warnings = [RANDOM_WEIGHTS_WARNING] if random_weights else []
    warnings += mismatches or []
    warnings += _other_models(models)
    if trained.get("protein_weights") == "random" and not random_weights:
        warnings.append("the checkpoint was trained on random-weight stand-in features; its calls on pretrained "
                        "features mean nothing")  # fmt: skip
    elif trained.get("protein_weights") == "pretrained" and random_weights:
        warnings.append("the checkpoint was trained on pretrained features but this run used random stand-ins")
    if prep.formula_ids:
        warnings.append(formula_warning(prep.formula_ids))
    if not prep.frames:
        warnings.append("no chunk has a stop-free frame: nothing was classified")
    frameless = calls.count(-1)
    if frameless and prep.frames:
        warnings.append(f"{frameless} of {len(calls)} chunks have no stop-free frame and get no verdict ({NO_FRAMES})")

    result = PredictionResult(
        paths=paths,
        frames=scores,
        chunks=calls,
        parameters={
            "input": str(input_path),
            "input_sha256": input_sha256,
            "chunk_size": chunk_size,
            "weights": weights,
            "size": size,
            "seed": seed,
            "device": device,
            "dna_model_path": str(dna_model_path) if dna_model_path else None,
            "protein_model_path": str(protein_model_path) if protein_model_path else None,
            "allow_other_model": allow_other_model,
        },
        models=json.loads(json.dumps(models)),
        checkpoint=checkpoint_info(loaded),
        counts={
            "records": prep.records,
            "chunks": prep.chunks,
            "frames": len(scores),
            "viral_frames": int((scores.y_pred == 1).sum()),
            "viral_chunks": calls.count(1),
            "other_chunks": calls.count(0),
            "chunks_without_frames": frameless,
        },
        random_weights=random_weights,
        warnings=warnings,
    )
    result.write()
    return result


def _other_models(models: dict[str, Any]) -> list[str]:
    """A warning for each language model that is another model than the registry's (``--allow-other-model``)."""

    return [f"another model than {record['expected']['display_name']} embedded these sequences "
            f"(--allow-other-model): {describe_identity(record)}" for record in identity_records(models)]


def _feature_files(features: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    items = [features] if isinstance(features, (str, os.PathLike)) else list(features)
    paths: list[Path] = []
    for item in map(Path, items):
        found = merged_files(item) if item.is_dir() else [item]
        if item.is_dir() and not found:
            raise InputError(f"--features {item}: a directory without *.pt files",
                             expected="merged feature files (.pt)", fix="check the path")
        paths += found
    return paths


def predict_merged(
    features: str | os.PathLike | Sequence[str | os.PathLike],
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    allow_mismatch: bool = False,
    on_log: Callable[[str], None] | None = None,
) -> PredictionResult:
    """Score merged features computed before, without embedding anything.

    ``features`` is a merged file, a directory of them, or a list: ours (from
    ``virnucpro merge``) or VirNucPro's (original or FastESM2 fork, with or
    without ``labels`` — labels are ignored). Files are read one at a time, so
    the peak is one file plus the scores. The checkpoint must take their width
    and protein model; ours also record the protein model's dtype, which must
    match the checkpoint's training features unless ``allow_mismatch``.

    Raises:
        DimensionError: features of another width or protein model than the checkpoint's.
        InputError: unreadable files or checkpoint, duplicate ids, non-finite values, or another precision.
    """

    say = on_log or log.info
    paths = _feature_files(features)
    # An original VirNucPro checkpoint names its protein model by its width: the real models' or the stand-ins'.
    loaded = load_checkpoint(checkpoint, protein_widths=merged_widths("tiny", DNA_MODEL))
    trained = loaded.meta.features or {}
    mismatches: list[str] | None = [] if allow_mismatch else None
    pieces: list[FrameScores] = []
    inputs: list[dict[str, Any]] = []
    models: dict[str, Any] = {}
    seen: set[str] = set()
    for path in paths:
        obj = torch_load(path, "merged feature", mmap=True)
        layout = detect_layout(obj)
        if layout in (OURS_MERGED, OURS_VIEW):
            merged = open_rows(path, obj=obj)  # rows stay on disk, checked finite a block at a time
            ids, rows, lengths, info = merged.ids, merged.rows, merged.lengths, feature_info(merged.meta)
            models = {"dna": _provenance(merged.meta.get("dna")), "protein": _provenance(merged.meta.get("protein"))}
        elif layout == ORIGINAL_MERGED:
            foreign = read_foreign_merged(path, obj=obj)
            ids, rows = foreign.ids, RowView.whole([FileRows.open(path, obj)])
            lengths = torch.zeros(len(ids), dtype=torch.int64)
            size = (trained.get("size") or "full") if trained.get("size") in SIZES else "full"
            info = {"protein_model": protein_model_of_width(foreign.width, size), "protein_dtype": None}
        else:
            raise InputError(f"{path} is not a merged feature file ({layout} layout found)",
                             expected="merged features: ours (`virnucpro merge`) or VirNucPro's *_merged.pt",
                             fix="pass merged files; per-model files are merged with `virnucpro merge` first")
        repeated = seen.intersection(ids)
        if repeated:
            raise InputError(f"{path} repeats {len(repeated)} id(s) of an earlier file, e.g. "
                             f"{', '.join(sorted(repeated)[:5])}", fix="pass each sample once")
        seen.update(ids)
        loaded = fit_checkpoint(loaded, expected_input_dim=int(rows.width),
                                expected_protein_model=info["protein_model"]) if not pieces else loaded
        dtype, trained_dtype = info.get("protein_dtype"), trained.get("protein_dtype")
        if dtype and trained_dtype and dtype != trained_dtype:
            _mismatch(loaded, f"{path.name}: protein features in {dtype}", f"{trained_dtype} protein features",
                      "--features", mismatches)
        for start, block in rows.blocks():
            finite = torch.isfinite(block).all(dim=1)
            if not bool(finite.all()):
                raise InputError(f"{path}: row(s) {start + int(torch.flatnonzero(~finite)[0])}... hold NaN or "
                                 "infinite values", expected="finite features", fix="re-extract that file")
            stop = start + len(block)
            pieces.append(score_features(loaded, Embeddings(ids[start:stop], block, lengths[start:stop])))
        inputs.append({"file": str(path), "layout": layout, "rows": len(ids), "protein_dtype": dtype})
        say(f"{path.name}: {len(ids):,} frames scored ({layout})")
    scores = FrameScores(
        ids=[i for piece in pieces for i in piece.ids],
        p_viral=np.concatenate([p.p_viral for p in pieces]) if pieces else np.zeros(0),
        y_pred=np.concatenate([p.y_pred for p in pieces]) if pieces else np.zeros(0, dtype=np.int64),
        lengths=np.concatenate([p.lengths for p in pieces]) if pieces else np.zeros(0, dtype=np.int64),
        logits=torch.cat([p.logits for p in pieces]) if pieces else torch.zeros((0, 2)),
    )
    calls = aggregate_chunks(scores.ids, scores.p_viral)
    random_weights = any(m.get("weights") == "random" for m in models.values() if isinstance(m, dict))
    warnings = ([RANDOM_WEIGHTS_WARNING] if random_weights else []) + list(mismatches or []) + _other_models(models)
    if any(i["layout"] != OURS_MERGED for i in inputs):
        warnings.append("VirNucPro-layout features record no provenance: their embedder is read off the width, "
                        "their precision is unknown")
    formulas = sum(map(reads_as_formula, scores.ids))
    if formulas:
        warnings.append(formula_warning(formulas, "frame id(s)"))
    result = PredictionResult(
        paths=PredictionPaths(Path(out_dir)),
        frames=scores,
        chunks=calls,
        parameters={"features": inputs, "allow_mismatch": allow_mismatch},
        models=json.loads(json.dumps(models)),
        checkpoint=checkpoint_info(loaded),
        counts={
            "files": len(inputs),
            "chunks": len(calls),
            "frames": len(scores),
            "viral_frames": int((scores.y_pred == 1).sum()),
            "viral_chunks": calls.count(1),
            "other_chunks": calls.count(0),
            "chunks_without_frames": 0,
        },
        random_weights=random_weights,
        warnings=warnings,
    )
    result.write()
    return result
