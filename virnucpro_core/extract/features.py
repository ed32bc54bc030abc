"""Feature files: cached, resumable extraction (DNA ‖ protein merging: :mod:`virnucpro_core.extract.merged`).

The files themselves (ours, VirNucPro's and the fork's) are described, read
and written by :mod:`virnucpro_core.layouts.features`.

:func:`extract_to_file` is the cached, resumable extraction used by the
CLI and the acceptance fixtures: it embeds a FASTA in shards written beside the
output and reuses finished shards (or a finished output) when rerun with the
same input, model and settings. Under ``torchrun --nproc_per_node=N`` the
shards are shared out among N processes (shard ``i`` to rank ``i % N``, see
:mod:`virnucpro_core.extract.distributed`) and rank 0 assembles the same file one
process would write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.code_identity import CodeIdentity, code_of
from virnucpro_core.defaults import SHARD_SIZE
from virnucpro_core.errors import InputError
from virnucpro_core.extract.distributed import ProcessGroup, Rank, run_torchrun
from virnucpro_core.extract.embeddings import (
    DEFAULT_TOKS_PER_BATCH,
    as_pairs,
    embedding_meta,
    extract_embeddings,
    records_sha256,
)
from virnucpro_core.extract.forward import ready_for
from virnucpro_core.files import atomic_torch_save, atomic_write_text, check_free_space, sha256_text
from virnucpro_core.layouts.features import save_features
from virnucpro_core.layouts.rows import Embeddings, data_sha256, id_list_sha256
from virnucpro_core.layouts.virnucpro import load_features
from virnucpro_core.models.registry import LoadedModel
from virnucpro_core.paths import PreprocessPaths, ShardPaths
from virnucpro_core.preprocess.fasta import NUCLEOTIDE, PROTEIN, read_fasta

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = SHARD_SIZE
# Bump when shard contents or the cache key change meaning, so old shards are not reused.
# 2: ESM-2 token ids fixed (I = 12, D = 13), vocabulary in the key; 3: chunk size in the meta;
# 4: the ESM architecture in effect (config.json plus filled defaults) in the key and the meta
_CACHE_FORMAT = 4


def extraction_code() -> CodeIdentity:
    """The code that computes a feature file: the modules extraction runs, and the torch and transformers versions.

    Recorded in every feature file (``meta['code']``) and shard: a file or shard that other code made is
    extracted again, with a line naming what changed.
    """
    return code_of("extract")


# The letters of a "protein" file that is nucleotides (see check_records).
_NUCLEOTIDE_LETTERS = frozenset("ACGTUN")


def preprocess_chunk_size(fasta: Path) -> int | None:
    """The chunk size ``fasta`` was cut with, when it is an output of ``virnucpro preprocess`` (else None).

    Recorded in feature files and from there in checkpoints, so that ``predict``
    cuts new sequences the way the classifier's training data was cut.
    """
    paths = PreprocessPaths(fasta.parent)
    if fasta.name not in (paths.nucleotide.name, paths.protein.name) or not paths.summary.is_file():
        return None
    try:
        value = json.loads(paths.summary.read_text(encoding="utf-8")).get("chunk_size")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def read_records(path: str | os.PathLike, family: str) -> list[tuple[str, str]]:
    """``(id, seq)`` pairs of a nucleotide (``dnabert``) or protein (``esm``) FASTA, validated."""
    alphabet = PROTEIN if family == "esm" else NUCLEOTIDE
    return check_records(as_pairs(read_fasta(path, alphabet)), family, path)


def check_records(pairs: list[tuple[str, str]], family: str, where: str | os.PathLike) -> list[tuple[str, str]]:
    """Refuse no records, or nucleotide sequences given to a protein model (``where`` names them); returns ``pairs``.

    The alphabet is the reader's to check (:func:`virnucpro_core.preprocess.fasta.iter_fasta`); records made in memory by
    ``preprocess`` hold valid letters by construction, and are checked here alone.
    """
    if not pairs:
        raise InputError(f"{where}: no records to embed", expected="at least one sequence", fix="check the input")
    # A, C, G and T are amino acids too: a nucleotide file would be embedded silently.
    if family == "esm" and all(set(seq) <= _NUCLEOTIDE_LETTERS for _, seq in pairs):
        raise InputError(
            f"{where} looks like nucleotide sequences, not proteins",
            expected="protein sequences for an ESM model (protein.faa of `virnucpro preprocess`)",
            found=f"{len(pairs)} record(s) made only of A, C, G, T, U and N",
            fix="pass protein.faa to --model esm2_3b / fastesm2_650 and nucleotide.fa to --model dnabert_s",
        )
    return pairs


def cache_key(
    loaded: LoadedModel, input_sha256: str, *, toks_per_batch: int, shard_size: int
) -> tuple[str, dict[str, Any]]:
    """Hash of everything that can change a bit of the result, and the parameters hashed."""
    prov = loaded.provenance
    params = {
        "format": _CACHE_FORMAT,
        "input_sha256": input_sha256,
        "model": loaded.spec.name,
        "weights": prov["weights"],
        "size": prov["size"],
        "source": prov.get("source"),
        "revision": prov.get("revision"),
        "seed": prov.get("seed"),
        "dtype": prov["dtype"],
        "vocab_sha256": prov.get("vocab_sha256"),
        "architecture": prov.get("architecture"),
        "device": loaded.device.type,
        "toks_per_batch": toks_per_batch,
        "shard_size": shard_size,
        "path": prov.get("path", "eager"),  # compiled paths round differently (extract/forward.py)
    }
    return sha256_text(json.dumps(params, sort_keys=True)), params


def _read_shard(path: Path, ids: list[str], code: CodeIdentity | None = None) -> dict[str, Any] | None:
    """A finished shard's tensors, or None when absent, not the expected records, or (``code`` given) made by
    other code."""
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        log.warning("ignoring unreadable shard %s; it will be recomputed", path)
        return None
    if not isinstance(obj, dict) or obj.get("ids") != ids:
        log.warning("ignoring shard %s: it holds other records; it will be recomputed", path)
        return None
    if not isinstance(obj.get("data"), torch.Tensor) or obj.get("data_sha256") != data_sha256(obj["data"]):
        log.warning("ignoring shard %s: its vectors are not the ones written; it will be recomputed", path)
        return None
    if code is not None and obj.get("code_sha256") != code.digest:
        log.warning("ignoring shard %s: other code computed it; it will be recomputed", path)
        return None
    return obj


def extract_to_file(
    loaded: LoadedModel,
    fasta_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    toks_per_batch: int | None = None,
    rebuild: bool = False,
    reuse_other_code: bool = False,
    progress: bool = True,
    on_shard: Callable[[int, int], None] | None = None,
    group: ProcessGroup | None = None,
    space_option: str | None = None,
) -> Path:
    """Embed a FASTA file into a feature file, in resumable shards.

    Shards of ``shard_size`` records are written atomically to
    ``<out>.shards/<key>/`` where the key hashes the records, the model's
    provenance, dtype, device type, token budget and shard size. A rerun with
    the same key reuses a finished output or finished shards (and logs so) when
    the same code made them (:func:`extraction_code`, recorded in the file's
    ``meta['code']`` and in each shard) and the output's ids are the input's,
    in order; otherwise it extracts again, with a line saying why. An
    interrupted run resumes to the identical file. The output is assembled
    atomically and the shards are then removed.

    With a ``group`` of several ranks (torchrun, :meth:`ProcessGroup.join`)
    each rank embeds the shards it owns (shard ``i`` is rank ``i % N``'s) with
    its own ``loaded`` model; once every rank has finished its share, rank 0
    writes the manifest's output: the same file, meta included, as one process
    writes. The shard directory must be one that every rank sees.

    Args:
        loaded: model from :func:`virnucpro_core.models.registry.load_model`.
        fasta_path: input FASTA.
        out_path: feature file to write.
        shard_size: records per shard; smaller loses less work to an interruption.
        toks_per_batch: token budget per batch (default per model family).
        rebuild: ignore and replace any cached output or shards.
        reuse_other_code: reuse an output or shards made by other code (another version or edited modules).
        progress: show progress bars (rank 0 only).
        on_shard: called as ``on_shard(index, total)`` after each of this rank's shards is on disk.
        group: the ranks sharing the work; default: this process alone.
        space_option: when given, the free space for the shards and the file is checked (:func:`check_room`)
            before anything is embedded, and a shortage names this option.

    Returns:
        ``out_path``.

    Raises:
        RanksFailed: under torchrun, when any rank failed or stalled (each rank raises it; one prints it).
    """
    fasta = Path(fasta_path)
    _extract(loaded, lambda: read_records(fasta, loaded.spec.family), fasta, Path(out_path),
             chunk_size=preprocess_chunk_size(fasta), shard_size=shard_size, toks_per_batch=toks_per_batch,
             rebuild=rebuild, reuse_other_code=reuse_other_code, progress=progress, on_shard=on_shard,
             group=group or ProcessGroup.single(), space_option=space_option)
    return Path(out_path)


def check_room(out: str | os.PathLike, records: int, dim: int, option: str) -> None:
    """Refuse an extraction whose shards and file (each record's vector twice) do not fit where ``out`` goes.

    Raises:
        InputError: naming ``option``, the space needed and the space free.
    """
    check_free_space(out, 2 * records * dim * 4 + (1 << 20),
                     what=f"{records:,} vectors of {dim} floats (its shards, then the file)", option=option)


def extract_records(
    loaded: LoadedModel,
    pairs: list[tuple[str, str]],
    out_path: str | os.PathLike,
    *,
    source: str | os.PathLike,
    chunk_size: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    toks_per_batch: int | None = None,
    rebuild: bool = False,
    progress: bool = True,
) -> Embeddings:
    """:func:`extract_to_file` of the FASTA ``source`` from its records, already in memory; returns the contents.

    The file, its cache key, shards and reuse are those :func:`extract_to_file`
    gives ``source`` (``chunk_size`` standing for what it reads from the
    preprocess summary beside it), so a rerun of either reuses the other's
    output; here neither ``source`` nor the output is read back. One process.
    """
    source = Path(source)
    return _extract(loaded, lambda: check_records(pairs, loaded.spec.family, source), source, Path(out_path),
                    chunk_size=chunk_size, shard_size=shard_size, toks_per_batch=toks_per_batch, rebuild=rebuild,
                    reuse_other_code=False, progress=progress, on_shard=None, group=ProcessGroup.single())


def _extract(
    loaded: LoadedModel,
    read: Callable[[], list[tuple[str, str]]],
    fasta_path: Path,
    out: Path,
    *,
    chunk_size: int | None,
    shard_size: int,
    toks_per_batch: int | None,
    rebuild: bool,
    reuse_other_code: bool,
    progress: bool,
    on_shard: Callable[[int, int], None] | None,
    group: ProcessGroup,
    space_option: str | None = None,
) -> Embeddings | None:
    """The extraction behind both entry points: the output's contents on rank 0, None on the other ranks."""
    rank = group.rank
    existing: Embeddings | None = None  # the finished output of this very extraction, when there is one
    with group.step("extraction") as step:
        if shard_size <= 0:
            raise InputError("shard size must be positive", expected=">= 1", found=str(shard_size))
        pairs = read()
        input_sha256 = records_sha256(pairs)
        budget = toks_per_batch or DEFAULT_TOKS_PER_BATCH[loaded.spec.family]
        if toks_per_batch is None:
            log.info(
                "%d records; batches of up to %d padded tokens (default for %s models; change with "
                "--toks-per-batch), shards of %d records",
                len(pairs),
                budget,
                loaded.spec.family,
                shard_size,
            )
        key, params = cache_key(loaded, input_sha256, toks_per_batch=budget, shard_size=shard_size)
        code = extraction_code()
        paths = ShardPaths(out, key)
        starts = list(range(0, len(pairs), shard_size))  # read() gives >= 1 record
        existing = None if rebuild else _finished(out, key, [rid for rid, _ in pairs], code, reuse_other_code)
        if existing is None and (ready := ready_for(loaded, [seq for _, seq in pairs], budget)) is not loaded:
            loaded = ready  # its compiled path did not compile here: eager, under eager's key
            key, params = cache_key(loaded, input_sha256, toks_per_batch=budget, shard_size=shard_size)
            paths = ShardPaths(out, key)
            existing = None if rebuild else _finished(out, key, [rid for rid, _ in pairs], code, reuse_other_code)
        step.value = {"params": {**params, "code": code.digest}, "finished": existing is not None, "reused": 0}
        if existing is not None:
            log.info(
                "reusing %s: same input (sha256 %s), model settings and code; delete it or pass --rebuild to "
                "recompute",
                out,
                input_sha256[:12],
            )
        else:
            if space_option and rank.is_main:
                check_room(out, len(pairs), loaded.dim, space_option)
            paths.root.mkdir(parents=True, exist_ok=True)
            if rank.is_main:
                atomic_write_text(
                    paths.manifest,
                    json.dumps({**params, "key": key, "shards": len(starts), "records": len(pairs),
                                "fasta": str(fasta_path)}, indent=2) + "\n",
                )
            shards, step.value["reused"] = _embed_share(
                loaded, pairs, starts, paths, shard_size=shard_size, budget=budget, rebuild=rebuild,
                code=None if reuse_other_code else code, progress=progress and rank.is_main, on_shard=on_shard,
                group=group,
            )
    _check_agreement(step.values, rank)
    if existing is not None or not rank.is_main:
        return existing

    total = len(starts)
    if rank.distributed and (reused := sum(v["reused"] for v in step.values)):
        log.info("reused %d/%d shards from %s (each process reuses the shards it owns) — delete it or pass "
                 "--rebuild to recompute", reused, total, paths.root)
    for index, start in enumerate(starts):
        if index not in shards:  # another rank's: on disk, since that rank reported its share finished
            shards[index] = _read_shard(paths.shard(index), [rid for rid, _ in pairs[start : start + shard_size]])
            if shards[index] is None:
                raise InputError(
                    f"shard {index + 1}/{total} of {out} is missing after rank {index % rank.world_size} finished it",
                    expected=f"every rank's shards in {paths.root}",
                    found=f"no readable {paths.shard(index).name}",
                    fix="put --out on a file system that every process sees (one machine, or a shared file "
                    "system), then rerun the same command",
                )
    data = torch.cat([shards[i]["data"] for i in range(total)], dim=0)
    lengths = torch.cat([shards[i]["lengths"] for i in range(total)], dim=0)
    meta = embedding_meta(loaded, input_sha256=input_sha256, n=len(pairs), toks_per_batch=budget)
    ids = [rid for rid, _ in pairs]
    meta.update(cache_key=key, input_file=fasta_path.name, shard_size=shard_size, chunk_size=chunk_size,
                data_sha256=data_sha256(data), ids_sha256=id_list_sha256(ids), code=code.to_dict())
    embeddings = Embeddings(ids, data, lengths, meta)
    save_features(embeddings, out)
    shutil.rmtree(paths.root, ignore_errors=True)
    with contextlib.suppress(OSError):
        paths.parent.rmdir()  # only when no other run's shards are left in it
    return embeddings


def extract_with_torchrun(
    processes: int,
    model: str,
    fasta_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    weights: str,
    size: str,
    dtype: str,
    device: str = "auto",
    seed: int,
    model_path: str | None = None,
    allow_other_model: bool = False,
    rebuild: bool = False,
    reuse_other_code: bool = False,
    extraction_path: str = "auto",
    on_line: Callable[[str], None] | None = None,
) -> Path:
    """What :func:`extract_to_file` writes, made by ``virnucpro extract`` as ``processes`` ranks under torchrun.

    One process per GPU (rank r on ``cuda:r``; with ``device="cpu"``, CPU
    processes); default shard size and token budget and the same execution path
    (``extraction_path``, each rank compiling its own), so the file, its cache
    key and its shards are those of an extraction in this process. Each line
    the job prints goes to ``on_line``.

    Raises:
        VirNucProError: the job failed, with the error rank 0 printed.
    """
    out = Path(out_path)
    argv = ["extract", str(Path(fasta_path).resolve()), "--out", str(out.resolve()), "--model", model,
            "--weights", weights, "--size", size, "--dtype", dtype, "--device", device, "--seed", str(seed),
            "--shard-size", str(DEFAULT_SHARD_SIZE), "--no-progress"]
    argv += ["--model-path", str(model_path)] if model_path else []
    argv += ["--allow-other-model"] if allow_other_model else []
    argv += ["--rebuild"] if rebuild else []
    argv += ["--reuse-other-code"] if reuse_other_code else []
    argv += ["--extraction-path", extraction_path]
    # The file is the suite's own (its --artifacts folder, under the suite's lock), written by this process's
    # extraction as often as by a torchrun job: it is replaced whatever wrote it last.
    argv += ["--force"]
    run_torchrun(argv, processes, on_line=on_line)
    return out


def _finished(out: Path, key: str, ids: list[str], code: CodeIdentity, reuse_other_code: bool) -> Embeddings | None:
    """``out``'s contents when it is the finished output of this very extraction, else None (with a line why).

    This very extraction: the same cache key (input, model, settings), the input's ``ids`` in their order, and
    the same code (``code``; a file of other code is reused only with ``reuse_other_code``, with a warning).
    """
    if not out.is_file():
        return None
    try:
        existing = load_features(out)
    except InputError as error:
        log.warning("%s cannot be reused; extracting again: %s", out, error.found or error.problem)
        return None
    if existing.meta.get("cache_key") != key:
        return None
    if "data_sha256" not in existing.meta:
        log.warning("%s records no digest of its vectors (written by an older version): extracting again", out)
        return None
    if existing.ids != ids:
        differ = next(i for i, (a, b) in enumerate(zip(existing.ids, ids, strict=False)) if a != b) \
            if len(existing.ids) == len(ids) else min(len(existing.ids), len(ids))
        log.warning("%s does not hold the input's ids in their order (first difference at record %d): "
                    "extracting again", out, differ + 1)
        return None
    change = code.change_from(existing.meta.get("code"))
    if change and not reuse_other_code:
        log.warning("%s: %s; extracting again (--reuse-other-code keeps it)", out, change)
        return None
    if change:
        log.warning("%s: %s; reused anyway (--reuse-other-code)", out, change)
    return existing


def _embed_share(
    loaded: LoadedModel,
    pairs: list[tuple[str, str]],
    starts: list[int],
    paths: ShardPaths,
    *,
    shard_size: int,
    budget: int,
    rebuild: bool,
    code: CodeIdentity | None,
    progress: bool,
    on_shard: Callable[[int, int], None] | None,
    group: ProcessGroup,
) -> tuple[dict[int, dict[str, Any]], int]:
    """Embed this rank's shards (reusing finished ones); the shards rank 0 keeps for assembly, and how many were reused.

    ``code``: reuse only shards this code computed (None: any code's, --reuse-other-code).

    Other ranks keep nothing in memory: rank 0 reads their shards from disk.
    """
    rank = group.rank
    total = len(starts)
    owned = [index for index in range(total) if rank.owns(index)]
    ids = lambda index: [rid for rid, _ in pairs[starts[index] : starts[index] + shard_size]]  # noqa: E731
    finished = {} if rebuild else {i: s for i in owned if (s := _read_shard(paths.shard(i), ids(i), code)) is not None}
    reused = len(finished)
    if reused:
        log.info("%sreusing %d/%d shards from %s — delete it or pass --rebuild to recompute", rank.prefix, reused,
                 len(owned) if rank.distributed else total, paths.root)
    kept: dict[int, dict[str, Any]] = {}
    for index in owned:
        shard = finished.get(index)
        if shard is None:
            chunk = pairs[starts[index] : starts[index] + shard_size]
            started = time.perf_counter()
            emb = extract_embeddings(
                loaded, chunk, toks_per_batch=budget, progress=progress, desc=f"shard {index + 1}/{total}"
            )
            shard = {"ids": emb.ids, "data": emb.data, "lengths": emb.lengths, "data_sha256": data_sha256(emb.data),
                     "code_sha256": extraction_code().digest}
            atomic_torch_save(shard, paths.shard(index))
            if progress and not sys.stderr.isatty():  # in a pipe: a line per shard instead of the bar
                print(f"{rank.prefix}shard {index + 1}/{total}: {len(chunk):,} sequences in "
                      f"{time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        if rank.is_main:
            kept[index] = shard
        group.progress()
        if on_shard is not None:
            on_shard(index, total)
    return kept, reused


def _check_agreement(values: list[dict[str, Any]], rank: Rank) -> None:
    """Every rank must have computed the same cache key: the same input, model, dtype and device type."""
    reference = values[0]["params"]
    differing = sorted({name for v in values[1:] for name in reference if v["params"].get(name) != reference[name]})
    if not differing:
        return
    found = "; ".join(
        f"{name}: " + ", ".join(f"rank {r} {v['params'].get(name)!r}" for r, v in enumerate(values))
        for name in differing
    )
    error = InputError(
        "the extraction processes do not compute the same thing, so their shards cannot make one file",
        expected="the same input, model, weights, dtype and device type on every rank",
        found=found[:2000],
        fix="give every process the same options and the same kind of device (all GPUs, or all CPUs), then rerun",
    )
    error.silent = not rank.is_main
    raise error
