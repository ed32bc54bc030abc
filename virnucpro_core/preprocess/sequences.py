"""Chunks and frames: VirNucPro's preprocessing, reproduced base for base.

VirNucPro's classifier was trained on exact nucleotide strings, so this module
copies the original pipeline's behaviour, quirks included:

* records are cut into ``chunk_size`` chunks that overlap just enough to cover
  the record (:func:`chunk_starts`);
* each chunk is upper-cased and translated in six frames; a codon that is not
  one of the 64 ``ACGT`` codons contributes no residue (:func:`six_frames`);
* every stop-free, non-empty frame becomes one sample: its protein and the
  nucleotide stretch it came from, one base longer than its codons
  (:func:`select_frames`).

Training mode (``reference`` given) keeps only frames whose protein is part of
an annotated CDS of the record and drops chunks with ambiguous bases, as the
original ``make_train_dataset_*.py`` scripts did.

The translation itself is vectorised in :mod:`virnucpro_core.preprocess.translation`;
:func:`preprocess` streams blocks of records through worker processes. The
original code is kept in :mod:`virnucpro_core.preprocess.reference`, and the
outputs are tested byte for byte against it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from Bio import SeqIO

from virnucpro_core.defaults import BLOCK_BASES
from virnucpro_core.errors import InputError
from virnucpro_core.preprocess.fasta import (  # re-exported: the FASTA reader and writer, and the alphabet of genomes
    NUCLEOTIDE_ALPHABET,
    FastaFile,
    FastaRecord,
    _open_text,
    formula_warning,
    iter_fasta,
    read_fasta,
    reads_as_formula,
    write_fasta,
)
from virnucpro_core.files import atomic_write_text, files_together
from virnucpro_core.input_files import path_problem
from virnucpro_core.paths import PreprocessPaths
from virnucpro_core.preprocess.translation import (  # re-exported: callers import the sequence API from here
    AMBIGUOUS_BASES,
    CODON_TABLE,
    BlockSamples,
    ChunkBlock,
    Frame,
    RecordPiece,
    chunk_frames,
    reverse_complement,
    samples_of_block,
    six_frames,
    translate,
)
from virnucpro_core.preprocess.workers import available_cpus, ordered_map

__all__ = [
    "AMBIGUOUS_BASES",
    "CODON_TABLE",
    "DEFAULT_BLOCK_BASES",
    "NUCLEOTIDE_ALPHABET",
    "FastaFile",
    "FastaRecord",
    "Frame",
    "PreprocessResult",
    "SampleWriter",
    "chunk_record",
    "chunk_starts",
    "iter_fasta",
    "preprocess",
    "read_fasta",
    "read_reference_proteins",
    "reverse_complement",
    "select_frames",
    "six_frames",
    "source_id",
    "translate",
    "write_fasta",
]

log = logging.getLogger(__name__)

# Bases per unit of parallel work (about 3 MB of input and output text per block, 1,700 chunks of 300).
DEFAULT_BLOCK_BASES = BLOCK_BASES


@dataclass
class PreprocessResult:
    """What ``preprocess`` produced and where it is on disk."""

    paths: PreprocessPaths
    chunk_size: int
    records: int
    chunks: int
    frames: int
    training_mode: bool
    dropped_ambiguous_chunks: int = 0
    records_without_reference: list[str] = field(default_factory=list)
    rna_records: int = 0
    records_shorter_than_a_codon: int = 0
    chunks_without_frames: int = 0
    formula_ids: int = 0  # records whose id a spreadsheet reads as a formula (= + - @), kept exactly
    samples: PreprocessSamples | None = None  # the outputs in memory, with ``preprocess(..., keep=True)``

    def to_dict(self) -> dict:
        return {
            "chunk_size": self.chunk_size,
            "records": self.records,
            "chunks": self.chunks,
            "frames": self.frames,
            "training_mode": self.training_mode,
            "dropped_ambiguous_chunks": self.dropped_ambiguous_chunks,
            "records_without_reference": self.records_without_reference,
            "rna_records": self.rna_records,
            "records_shorter_than_a_codon": self.records_shorter_than_a_codon,
            "chunks_without_frames": self.chunks_without_frames,
        }

    def notices(self) -> list[str]:
        """What the run changed or could not use, one line each (empty when nothing happened)."""
        lines = []
        if self.rna_records:
            lines.append(f"{self.rna_records} record(s) written with U (RNA): read as T, the DNA they stand for")
        if self.records_shorter_than_a_codon:
            lines.append(f"{self.records_shorter_than_a_codon} record(s) shorter than one codon (3 bases): "
                         "no frame, so no sample")
        if self.chunks_without_frames:
            lines.append(f"{self.chunks_without_frames} of {self.chunks} chunk(s) have no stop-free frame, so no "
                         "sample (as in the original)")
        if self.formula_ids:
            lines.append(formula_warning(self.formula_ids))
        if self.training_mode and self.dropped_ambiguous_chunks:
            lines.append(f"dropped {self.dropped_ambiguous_chunks} chunk(s) with ambiguous bases (training mode, "
                         "as the original's training scripts)")
        return lines


@dataclass
class PreprocessSamples:
    """The three FASTA outputs of :func:`preprocess` held in memory: every chunk id, and each frame's
    nucleotide and protein ``(id, seq)`` pairs, in the files' order."""

    chunk_ids: list[str] = field(default_factory=list)
    nucleotide: list[tuple[str, str]] = field(default_factory=list)
    protein: list[tuple[str, str]] = field(default_factory=list)

    def add(self, samples: BlockSamples) -> None:
        """Append one block's samples, from the single-line FASTA text its worker returned."""
        # Lines alternate ">id" and the sequence; the text ends in "\n", so the last split is empty.
        self.chunk_ids += [header[1:] for header in samples.chunks.decode("utf-8").split("\n")[0:-1:2]]
        for pairs, text in ((self.nucleotide, samples.nucleotide), (self.protein, samples.protein)):
            lines = text.decode("utf-8").split("\n")
            pairs += zip((header[1:] for header in lines[0:-1:2]), lines[1::2], strict=True)


# --------------------------------------------------------------------------- reading


def read_reference_proteins(paths: Sequence[str | Path]) -> dict[str, list[str]]:
    """Map each GenBank record id to the ``translation`` qualifiers of its CDS features."""
    proteins: dict[str, list[str]] = {}
    for path in paths:
        path = Path(path)
        kind = path_problem(path)
        if kind is not None:
            raise kind.error(path, expected="a GenBank (.gbff) reference file")
        try:
            with _open_text(path) as handle:
                for record in SeqIO.parse(handle, "genbank"):
                    proteins[record.id] = [
                        feature.qualifiers.get("translation", [""])[0]
                        for feature in record.features
                        if feature.type == "CDS"
                    ]
        except ValueError as error:
            raise InputError(
                f"{path}: not a readable GenBank file ({error})",
                expected="RefSeq GenBank flat file with CDS features carrying /translation",
                fix="pass the *.gbff(.gz) file that matches the FASTA input",
            ) from error
    if not proteins:
        raise InputError(f"no GenBank records in {', '.join(map(str, paths))}", expected="at least one LOCUS record")
    return proteins


# --------------------------------------------------------------------------- chunks


def chunk_starts(length: int, size: int) -> list[int]:
    """Start offsets of the chunks VirNucPro cuts from a record of ``length`` bases.

    n = ceil(L/S) chunks of S bases; the n·S − L surplus bases become overlaps
    spread as evenly as possible, the larger overlaps first. The original
    computes the overlaps this way (and, when they add up to more than the
    surplus, the last chunk simply ends early at the record end).
    """
    if size <= 0:
        raise InputError(f"chunk size {size} is not a positive integer", expected="e.g. 300 or 500")
    n = math.ceil(length / size)
    if n <= 1:
        return [0] if length else []
    surplus = n * size - length
    lower = surplus // n
    need = surplus - lower * (n - 1)
    overlaps = [lower + 1] * need + [lower] * max(0, n - 1 - need) + [0]
    starts, shift = [], 0
    for k in range(n):
        starts.append(k * size - shift)
        shift += overlaps[k]
    return starts


def chunk_record(record: FastaRecord, size: int) -> list[FastaRecord]:
    """Cut one record into VirNucPro chunks (ids ``{id}_chunk_{k}``, case kept)."""
    return [
        FastaRecord(f"{record.id}_chunk_{k}", record.seq[start : start + size])
        for k, start in enumerate(chunk_starts(len(record.seq), size), start=1)
    ]


# --------------------------------------------------------------------------- frames


def select_frames(chunk: FastaRecord, reference_proteins: Sequence[str] | None = None) -> list[Frame]:
    """The samples of one chunk: its stop-free, non-empty frames.

    The chunk is upper-cased first, as the original's ``process_record`` does.
    With ``reference_proteins`` (training mode) a chunk with an ambiguous base
    yields nothing, and a frame is kept only if its protein is a substring of
    one of the reference proteins.
    """
    return chunk_frames(chunk.id, chunk.seq, reference_proteins)


def source_id(sample_id: str) -> str:
    """The record a chunk or frame id came from (the part before the last ``_chunk_``)."""
    return sample_id.rsplit("_chunk_", 1)[0]


# --------------------------------------------------------------------------- stage


class SampleWriter:
    """The three FASTA outputs of :func:`preprocess`, open for blocks of samples appended in input order."""

    def __init__(self, paths: PreprocessPaths):
        self.paths = paths
        self._handles: list = []

    def __enter__(self) -> SampleWriter:
        try:
            for path in (self.paths.chunks, self.paths.nucleotide, self.paths.protein):
                self._handles.append(open(path, "wb"))  # noqa: SIM115 -- closed in __exit__
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.close()
        self._handles = []

    def write(self, samples: BlockSamples) -> None:
        """Append one block's chunks, nucleotide and protein records (UTF-8 text, as ``write_fasta`` writes)."""
        for handle, data in zip(self._handles, (samples.chunks, samples.nucleotide, samples.protein)):
            handle.write(data)


@dataclass
class _Tally:
    """Counts of the records read so far (the blocks' own counts are added as they come back)."""

    records: int = 0
    rna: int = 0
    formula_ids: int = 0
    shorter_than_a_codon: int = 0
    missing: list[str] = field(default_factory=list)
    chunks: int = 0
    frames: int = 0
    dropped: int = 0
    without_frames: int = 0

    def add(self, samples: BlockSamples) -> None:
        self.chunks += samples.chunk_count
        self.frames += samples.frame_count
        self.dropped += samples.dropped_ambiguous_chunks
        self.without_frames += samples.chunks_without_frames


def _blocks(
    records: Iterable[FastaRecord],
    chunk_size: int,
    references: dict[str, list[str]] | None,
    block_bases: int,
    tally: _Tally,
) -> Iterator[ChunkBlock]:
    """Group records (or, for long ones, runs of their chunks) into blocks of about ``block_bases`` bases."""
    chunks_per_piece = max(1, block_bases // chunk_size)
    pieces: list[RecordPiece] = []
    bases = 0
    for record in records:
        tally.records += 1
        tally.formula_ids += reads_as_formula(record.id)
        seq = record.seq
        # RNA genomes spell thymine as U; VirNucPro's codon table and complement are DNA's. Read U as T, and say so.
        if "U" in seq or "u" in seq:
            tally.rna += 1
            seq = seq.replace("U", "T").replace("u", "t")
        tally.shorter_than_a_codon += len(seq) < 3
        reference = None
        if references is not None:
            proteins = references.get(record.id)
            if proteins is None:
                tally.missing.append(record.id)
                proteins = []
            reference = "\n".join(proteins)  # a protein never holds a newline: "in the joined text" = "in one"
        starts = chunk_starts(len(seq), chunk_size)
        for first in range(0, len(starts), chunks_per_piece):
            group = starts[first : first + chunks_per_piece]
            begin, end = group[0], min(group[-1] + chunk_size, len(seq))
            pieces.append(RecordPiece(record.id, first + 1, seq[begin:end], [s - begin for s in group], reference))
            bases += end - begin
            if bases >= block_bases:
                yield ChunkBlock(chunk_size, tuple(pieces))
                pieces, bases = [], 0
    if pieces:
        yield ChunkBlock(chunk_size, tuple(pieces))


def _positive(name: str, value: object, expected: str, fix: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"{name} {value!r} is not a positive integer", expected=expected, fix=fix)
    return value


def preprocess(
    input_path: str | Path | FastaFile,
    chunk_size: int,
    out_dir: str | Path,
    *,
    reference: Sequence[str | Path] | None = None,
    workers: int | None = None,
    block_bases: int = DEFAULT_BLOCK_BASES,
    keep: bool = False,
) -> PreprocessResult:
    """Run VirNucPro preprocessing on a FASTA file and write its four outputs.

    Records are read (and the file hashed, in the same pass), translated and
    written block by block, so memory does not grow with the input; the files
    appear together when the last block is written (an error, a kill or a full
    disk leaves an earlier set as it was).

    Args:
        input_path: nucleotide FASTA, optionally gzipped; or the :class:`FastaFile` of one read before
            (its records are used, the file is not read again).
        chunk_size: chunk length in bases (VirNucPro models exist for 300 and 500).
        out_dir: directory for ``chunks.fa``, ``nucleotide.fa``, ``protein.faa``
            and ``preprocess.json``.
        reference: GenBank files with CDS translations; switches to training mode.
        workers: processes translating blocks (default: every core this process
            may use). The output does not depend on it; an input of one block
            runs in this process.
        block_bases: bases per unit of work (default :data:`DEFAULT_BLOCK_BASES`);
            smaller blocks balance the workers better and cost more overhead.
        keep: also hold the three FASTA outputs in memory (``PreprocessResult.samples``) for a caller that
            embeds them next, so that it reads none of them back; memory then grows with the input.

    Returns:
        Counts and the output paths. Outputs keep the input's record order;
        the nucleotide and protein files share ids.
    """
    _positive("chunk size", chunk_size, "a positive number of bases; VirNucPro's models were trained on 300 and 500",
              "pass --chunk-size 300 or --chunk-size 500")  # fmt: skip
    workers = available_cpus() if workers is None else workers
    _positive("workers", workers, f"a number of processes, e.g. the {available_cpus()} cores here",
              "pass --workers 1 or more")  # fmt: skip
    _positive("block size", block_bases, "a number of bases per unit of work, e.g. 500000", "omit it for the default")
    if isinstance(input_path, FastaFile):
        records, digest, input_path = input_path.records, input_path.sha256, input_path.path
    else:
        input_path, digest = Path(input_path), hashlib.sha256()
        records = iter_fasta(input_path, digest=digest)
    references = read_reference_proteins(reference) if reference else None
    kept = PreprocessSamples() if keep else None

    paths = PreprocessPaths(Path(out_dir))
    tally = _Tally()
    # The four files are one result: a full disk or a kill leaves an earlier complete set as it was,
    # never new chunks beside old proteins. preprocess.json, moved in last, marks a complete set.
    with files_together(paths.root, paths.summary.name) as staging:
        staged = PreprocessPaths(staging)
        blocks = _blocks(records, chunk_size, references, block_bases, tally)
        with SampleWriter(staged) as writer:
            for samples in ordered_map(samples_of_block, blocks, workers):
                writer.write(samples)
                tally.add(samples)
                if kept is not None:
                    kept.add(samples)
        result = PreprocessResult(
            paths=paths,
            chunk_size=chunk_size,
            records=tally.records,
            chunks=tally.chunks,
            frames=tally.frames,
            training_mode=references is not None,
            dropped_ambiguous_chunks=tally.dropped,
            records_without_reference=tally.missing,
            rna_records=tally.rna,
            records_shorter_than_a_codon=tally.shorter_than_a_codon,
            chunks_without_frames=tally.without_frames,
            formula_ids=tally.formula_ids,
            samples=kept,
        )
        summary = {
            "input": str(input_path),
            "input_sha256": digest if isinstance(digest, str) else digest.hexdigest(),  # read to its end by now
            "reference": [str(p) for p in reference or []],
            **result.to_dict(),
        }
        atomic_write_text(staged.summary, json.dumps(summary, indent=2) + "\n")
    if tally.rna:
        log.warning("%d record(s) of %s are written with U (RNA); read as T", tally.rna, input_path)
    if tally.missing:
        log.warning(
            "%d of %d records have no GenBank entry in the reference, so none of their frames are kept: %s",
            len(tally.missing),
            tally.records,
            ", ".join(tally.missing[:5]) + (" ..." if len(tally.missing) > 5 else ""),
        )
    return result
