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
"""

from __future__ import annotations

import gzip
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from Bio import SeqIO
from Bio.Data.CodonTable import standard_dna_table

from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_path, atomic_write_text, files_together, sha256_file
from virnucpro_core.paths import PreprocessPaths

log = logging.getLogger(__name__)

# The 64 unambiguous codons of the standard table, stops as "*".
CODON_TABLE: dict[str, str] = {
    **standard_dna_table.forward_table,
    **{codon: "*" for codon in standard_dna_table.stop_codons},
}
_COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")
# IUPAC nucleotide codes (U included); anything else in a FASTA is rejected.
NUCLEOTIDE_ALPHABET = frozenset("ACGTUNRYKMSWBDHVacgtunrykmswbdhv")
# A training chunk with any of these (after upper-casing) is dropped, as in the original.
AMBIGUOUS_BASES = frozenset("NRYMKSWHBVD")


@dataclass(frozen=True)
class FastaRecord:
    """One FASTA record: ``id`` is the header's first word, as Biopython reads it."""

    id: str
    seq: str


@dataclass(frozen=True)
class Frame:
    """One VirNucPro sample: a stop-free reading frame of one chunk."""

    id: str
    chunk_id: str
    frame: int  # 1-3 forward, 4-6 reverse complement
    nucleotide: str
    protein: str


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


def _open_text(path: Path):
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def read_fasta(path: str | Path) -> list[FastaRecord]:
    """Read and validate a (optionally gzipped) nucleotide FASTA file.

    Every problem of the file is collected and reported in one
    :class:`InputError`: no records, text before the first header, empty
    headers or sequences, duplicate ids, characters that are not IUPAC
    nucleotide codes.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: no such file",
            expected="a nucleotide FASTA file (.fa, .fasta, .fna, optionally .gz)",
            fix="check the path",
        )
    problems: list[str] = []
    records: list[FastaRecord] = []
    seen: dict[str, int] = {}
    header: str | None = None
    header_line = 0
    parts: list[str] = []

    def finish() -> None:
        if header is None:
            return
        name = header.split(maxsplit=1)[0] if header.strip() else ""
        seq = "".join(parts)
        if not name:
            problems.append(f"line {header_line}: header without an id")
            return
        if not seq:
            problems.append(f"line {header_line}: record '{name}' has no sequence")
        if name in seen:
            problems.append(f"line {header_line}: duplicate id '{name}' (first at line {seen[name]})")
        else:
            seen[name] = header_line
        records.append(FastaRecord(name, seq))

    try:
        with _open_text(path) as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.rstrip("\r\n")
                if line.startswith(">"):
                    finish()
                    header, header_line, parts = line[1:], number, []
                    continue
                stripped = "".join(line.split())
                if not stripped:
                    continue
                if header is None:
                    problems.append(f"line {number}: sequence text before the first '>' header")
                    break
                bad = sorted(set(stripped) - NUCLEOTIDE_ALPHABET)
                if bad:
                    column = next(i for i, c in enumerate(line, start=1) if c in bad)
                    problems.append(
                        f"line {number}, column {column}: character(s) {''.join(bad)!r} "
                        f"in record '{header.split(maxsplit=1)[0] if header.strip() else '?'}'"
                    )
                parts.append(stripped)
            finish()
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
    return records


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


def reverse_complement(seq: str) -> str:
    """A↔T, C↔G in either case; every other character stays as it is."""
    return seq.translate(_COMPLEMENT)[::-1]


def translate(seq: str) -> str:
    """Translate from offset 0; codons outside the 64 ``ACGT`` codons give no residue."""
    return "".join(CODON_TABLE.get(seq[i : i + 3], "") for i in range(0, len(seq) - 2, 3))


def six_frames(seq: str) -> list[str]:
    """Proteins of frames 1-3 (forward, offsets 0-2) and 4-6 (reverse complement)."""
    upper = seq.upper()
    reverse = reverse_complement(upper)
    return [translate(upper[i:]) for i in range(3)] + [translate(reverse[i:]) for i in range(3)]


def select_frames(chunk: FastaRecord, reference_proteins: Sequence[str] | None = None) -> list[Frame]:
    """The samples of one chunk: its stop-free, non-empty frames.

    The chunk is upper-cased first, as the original's ``process_record`` does.
    With ``reference_proteins`` (training mode) a chunk with an ambiguous base
    yields nothing, and a frame is kept only if its protein is a substring of
    one of the reference proteins.
    """
    seq = chunk.seq.upper()
    if reference_proteins is not None and not AMBIGUOUS_BASES.isdisjoint(seq):
        return []
    reverse = reverse_complement(seq)
    frames = []
    for number, protein in enumerate(six_frames(seq), start=1):
        if not protein or "*" in protein:
            continue
        if reference_proteins is not None and not any(protein in ref for ref in reference_proteins):
            continue
        # The original slices one base more than the codons it translated
        # (seq[f-1 : f + 3n]); the trained models saw these strings, so keep it.
        if number <= 3:
            frame_id = f"{chunk.id}F{number}"
            nucleotide = seq[number - 1 : number + 3 * len(protein)]
        else:
            frame_id = f"{chunk.id}R{number - 3}"
            nucleotide = reverse[number - 4 : number - 3 + 3 * len(protein)]
        frames.append(Frame(frame_id, chunk.id, number, nucleotide, protein))
    return frames


def source_id(sample_id: str) -> str:
    """The record a chunk or frame id came from (the part before the last ``_chunk_``)."""
    return sample_id.rsplit("_chunk_", 1)[0]


# --------------------------------------------------------------------------- stage


def preprocess(
    input_path: str | Path,
    chunk_size: int,
    out_dir: str | Path,
    *,
    reference: Sequence[str | Path] | None = None,
) -> PreprocessResult:
    """Run VirNucPro preprocessing on a FASTA file and write its three outputs.

    Args:
        input_path: nucleotide FASTA, optionally gzipped.
        chunk_size: chunk length in bases (VirNucPro models exist for 300 and 500).
        out_dir: directory for ``chunks.fa``, ``nucleotide.fa``, ``protein.faa``
            and ``preprocess.json``.
        reference: GenBank files with CDS translations; switches to training mode.

    Returns:
        Counts and the output paths. Outputs keep the input's record order;
        the nucleotide and protein files share ids.
    """
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0:
        raise InputError(
            f"chunk size {chunk_size!r} is not a positive integer",
            expected="a positive number of bases; VirNucPro's models were trained on 300 and 500",
            fix="pass --chunk-size 300 or --chunk-size 500",
        )
    input_path = Path(input_path)
    records = read_fasta(input_path)
    # RNA genomes spell thymine as U; VirNucPro's codon table and complement are DNA's. Read U as T, and say so.
    rna = sum(1 for r in records if "U" in r.seq or "u" in r.seq)
    if rna:
        records = [FastaRecord(r.id, r.seq.replace("U", "T").replace("u", "t")) for r in records]
        log.warning("%d record(s) of %s are written with U (RNA); read as T", rna, input_path)
    references = read_reference_proteins(reference) if reference else None

    chunks: list[FastaRecord] = []
    frames: list[Frame] = []
    dropped = 0
    without_frames = 0
    missing: list[str] = []
    for record in records:
        ref = None
        if references is not None:
            ref = references.get(record.id)
            if ref is None:
                missing.append(record.id)
                ref = []
        for chunk in chunk_record(record, chunk_size):
            chunks.append(chunk)
            selected = select_frames(chunk, ref)
            if ref is not None and not AMBIGUOUS_BASES.isdisjoint(chunk.seq.upper()):
                dropped += 1
            elif not selected:
                without_frames += 1
            frames.extend(selected)
    if missing:
        log.warning(
            "%d of %d records have no GenBank entry in the reference, so none of their frames are kept: %s",
            len(missing),
            len(records),
            ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""),
        )

    paths = PreprocessPaths(Path(out_dir))
    result = PreprocessResult(
        paths=paths,
        chunk_size=chunk_size,
        records=len(records),
        chunks=len(chunks),
        frames=len(frames),
        training_mode=references is not None,
        dropped_ambiguous_chunks=dropped,
        records_without_reference=missing,
        rna_records=rna,
        records_shorter_than_a_codon=sum(1 for r in records if len(r.seq) < 3),
        chunks_without_frames=without_frames,
    )
    summary = {
        "input": str(input_path),
        "input_sha256": sha256_file(input_path),
        "reference": [str(p) for p in reference or []],
        **result.to_dict(),
    }
    # The four files are one result: a full disk or a kill leaves an earlier complete set as it was,
    # never new chunks beside old proteins. preprocess.json, moved in last, marks a complete set.
    with files_together(paths.root, paths.summary.name) as staging:
        staged = PreprocessPaths(staging)
        write_fasta(((c.id, c.seq) for c in chunks), staged.chunks)
        write_fasta(((f.id, f.nucleotide) for f in frames), staged.nucleotide)
        write_fasta(((f.id, f.protein) for f in frames), staged.protein)
        atomic_write_text(staged.summary, json.dumps(summary, indent=2) + "\n")
    return result

