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

The translation itself is vectorised in :mod:`virnucpro_core.translation`;
:func:`preprocess` streams blocks of records through worker processes. The
original code is kept in :mod:`virnucpro_core.sequences_reference`, and the
outputs are tested byte for byte against it.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from Bio import SeqIO

from virnucpro_core.defaults import BLOCK_BASES
from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_path, atomic_write_text, files_together, sha256_file
from virnucpro_core.paths import PreprocessPaths
from virnucpro_core.translation import (  # re-exported: callers import the sequence API from here
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
from virnucpro_core.workers import available_cpus, ordered_map

__all__ = [
    "AMBIGUOUS_BASES",
    "CODON_TABLE",
    "DEFAULT_BLOCK_BASES",
    "NUCLEOTIDE_ALPHABET",
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

# IUPAC nucleotide codes (U included); anything else in a FASTA is rejected.
NUCLEOTIDE_ALPHABET = frozenset("ACGTUNRYKMSWBDHVacgtunrykmswbdhv")
# What str.split() splits on, within ASCII; a line's other characters are its sequence.
_ASCII_WHITESPACE = "".join(chr(i) for i in range(128) if chr(i).isspace()).encode("ascii")
_ALPHABET_AND_WHITESPACE = "".join(sorted(NUCLEOTIDE_ALPHABET)).encode("ascii") + _ASCII_WHITESPACE
# Characters per read of a FASTA file.
_READ_SIZE = 1 << 20
# Bases per unit of parallel work (about 3 MB of input and output text per block, 1,700 chunks of 300).
DEFAULT_BLOCK_BASES = BLOCK_BASES


@dataclass(frozen=True)
class FastaRecord:
    """One FASTA record: ``id`` is the header's first word, as Biopython reads it."""

    id: str
    seq: str


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
        if self.training_mode and self.dropped_ambiguous_chunks:
            lines.append(f"dropped {self.dropped_ambiguous_chunks} chunk(s) with ambiguous bases (training mode, "
                         "as the original's training scripts)")
        return lines


# --------------------------------------------------------------------------- reading


def _open_text(path: Path, newline: str | None = ""):
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline=newline)
    return open(path, encoding="utf-8", errors="replace", newline=newline)


def _fasta_runs(handle) -> Iterator[tuple[bool, int, str]]:
    """``(is a header, line number, text)``: each header line without its ``>``, and runs of other lines.

    The handle reads with universal newlines, so every line ends in "\n" alone
    ("\r\n" and "\r" become "\n": the same lines as the line-by-line
    reader's). Text is read ``_READ_SIZE`` characters at a time and cut at
    header lines with ``str.find``: a few Python steps per record, not per line.
    A run keeps its "\n"s; a record's sequence may come in several runs.
    """
    line = 1
    unfinished: list[str] = []  # a line longer than one read (one-line genomes) is joined once
    while True:
        data = handle.read(_READ_SIZE)
        cut = data.rfind("\n") + 1 if data else len(data)
        if data and not cut:
            unfinished.append(data)
            continue
        text = "".join([*unfinished, data[:cut]]) if data else "".join(unfinished)
        unfinished = [data[cut:]] if data and cut < len(data) else []
        if not text:
            return
        position = 0
        while position < len(text):
            if text.startswith(">", position):
                end = text.find("\n", position)
                end = len(text) if end < 0 else end
                yield True, line, text[position + 1 : end]
                line += 1
                position = end + 1
            else:
                end = text.find("\n>", position)
                end = len(text) if end < 0 else end + 1
                run = text[position:end]
                yield False, line, run
                line += run.count("\n")
                position = end


def iter_fasta(path: str | Path) -> Iterator[FastaRecord]:
    """Read and validate a (optionally gzipped) nucleotide FASTA file, one record at a time.

    Every problem of the file is collected and reported in one
    :class:`InputError`, raised after the last line: no records, text before
    the first header, empty headers or sequences, duplicate ids, characters
    that are not IUPAC nucleotide codes. Records are yielded only while the
    file has no problem, so a consumer that streams them into outputs sees the
    error before it can finish (and must write its outputs whole or not at all).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: no such file",
            expected="a nucleotide FASTA file (.fa, .fasta, .fna, optionally .gz)",
            fix="check the path",
        )
    problems: list[str] = []
    seen: dict[str, int] = {}
    records = 0
    header: str | None = None
    header_line = 0
    runs: list[str] = []

    def sequence_of(record_name: str) -> str:
        """The record's lines without whitespace; bad characters are added to ``problems`` by line and column."""
        raw = "".join(runs)
        # Fast path, one C call per step for the whole record: ASCII, and nothing but IUPAC codes and whitespace.
        if raw.isascii():
            data = raw.encode("ascii")
            if not data.translate(None, _ALPHABET_AND_WHITESPACE):
                return data.translate(None, _ASCII_WHITESPACE).decode("ascii")
        parts = []
        for number, line in enumerate(raw.split("\n"), start=header_line + 1):
            stripped = "".join(line.split())
            if not stripped:
                continue
            bad = sorted(set(stripped) - NUCLEOTIDE_ALPHABET)
            if bad:
                column = next(i for i, c in enumerate(line, start=1) if c in bad)
                problems.append(
                    f"line {number}, column {column}: character(s) {''.join(bad)!r} in record '{record_name}'"
                )
            parts.append(stripped)
        return "".join(parts)

    def finish() -> FastaRecord | None:
        nonlocal records
        if header is None:
            return None
        name = header.split(maxsplit=1)[0] if header.strip() else ""
        seq = sequence_of(name or "?")
        if not name:
            problems.append(f"line {header_line}: header without an id")
            return None
        if not seq:
            problems.append(f"line {header_line}: record '{name}' has no sequence")
        if name in seen:
            problems.append(f"line {header_line}: duplicate id '{name}' (first at line {seen[name]})")
        else:
            seen[name] = header_line
        records += 1
        return FastaRecord(name, seq)

    try:
        with _open_text(path, newline=None) as handle:
            for is_header, number, text in _fasta_runs(handle):
                if is_header:
                    record = finish()
                    if record is not None and not problems:
                        yield record
                    header, header_line, runs = text, number, []
                elif header is not None:
                    runs.append(text)
                elif text.split():
                    blank = next(i for i, line in enumerate(text.split("\n")) if line.split())
                    problems.append(f"line {number + blank}: sequence text before the first '>' header")
                    break
            record = finish()
            if record is not None and not problems:
                yield record
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(
            f"{path}: cannot be read ({error})",
            expected="a readable FASTA file, plain or gzip-compressed",
            fix="check that the file is complete (a truncated download?) and not another format",
        ) from error

    if not records and not problems:
        raise InputError(
            f"{path}: no FASTA records",
            expected="at least one record starting with a '>' header line",
            found="an empty file" if path.stat().st_size == 0 else "no line starting with '>'",
            fix="pass a nucleotide FASTA file",
        )
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise InputError(
            f"{path}: not a valid nucleotide FASTA file ({len(problems)} problem(s))",
            expected="'>id' headers, unique ids, non-empty sequences of IUPAC nucleotide codes "
            "(ACGTUNRYKMSWBDHV, any case)",
            found="\n    " + "\n    ".join(shown),
            fix="fix or remove the records named above",
        )


def read_fasta(path: str | Path) -> list[FastaRecord]:
    """Every record of a nucleotide FASTA file, validated (see :func:`iter_fasta`)."""
    return list(iter_fasta(path))


def write_fasta(records: Iterable[tuple[str, str]], path: str | Path) -> int:
    """Write ``(id, sequence)`` pairs as single-line FASTA, atomically; return the count."""
    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        for name, seq in records:
            handle.write(f">{name}\n{seq}\n")
            count += 1
    return count


def read_reference_proteins(paths: Sequence[str | Path]) -> dict[str, list[str]]:
    """Map each GenBank record id to the ``translation`` qualifiers of its CDS features."""
    proteins: dict[str, list[str]] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such reference file", expected="a GenBank (.gbff) file", fix="check the path")
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
    input_path: str | Path,
    chunk_size: int,
    out_dir: str | Path,
    *,
    reference: Sequence[str | Path] | None = None,
    workers: int | None = None,
    block_bases: int = DEFAULT_BLOCK_BASES,
) -> PreprocessResult:
    """Run VirNucPro preprocessing on a FASTA file and write its four outputs.

    Records are read, translated and written block by block, so memory does
    not grow with the input; the files appear together when the last block is
    written (an error, a kill or a full disk leaves an earlier set as it was).

    Args:
        input_path: nucleotide FASTA, optionally gzipped.
        chunk_size: chunk length in bases (VirNucPro models exist for 300 and 500).
        out_dir: directory for ``chunks.fa``, ``nucleotide.fa``, ``protein.faa``
            and ``preprocess.json``.
        reference: GenBank files with CDS translations; switches to training mode.
        workers: processes translating blocks (default: every core this process
            may use). The output does not depend on it; an input of one block
            runs in this process.
        block_bases: bases per unit of work (default :data:`DEFAULT_BLOCK_BASES`);
            smaller blocks balance the workers better and cost more overhead.

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
    input_path = Path(input_path)
    references = read_reference_proteins(reference) if reference else None

    paths = PreprocessPaths(Path(out_dir))
    tally = _Tally()
    # The four files are one result: a full disk or a kill leaves an earlier complete set as it was,
    # never new chunks beside old proteins. preprocess.json, moved in last, marks a complete set.
    with files_together(paths.root, paths.summary.name) as staging:
        staged = PreprocessPaths(staging)
        blocks = _blocks(iter_fasta(input_path), chunk_size, references, block_bases, tally)
        with SampleWriter(staged) as writer:
            for samples in ordered_map(samples_of_block, blocks, workers):
                writer.write(samples)
                tally.add(samples)
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
        )
        summary = {
            "input": str(input_path),
            "input_sha256": sha256_file(input_path),
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
