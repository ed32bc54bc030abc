"""The preprocessing as it was before vectorisation, kept unchanged as the oracle.

``virnucpro_core.preprocess.sequences`` now reads FASTA faster, translates whole blocks
of chunks with numpy and spreads blocks over processes. Its output must stay
byte-identical to what this module writes: the differential tests
(``tests/preprocess/test_translation.py``) and ``benchmarks/preprocess_throughput.py``
run both on the same input. Do not optimise this module; its value is that it
is the old code, line for line (a per-codon dict lookup, one core, every chunk
and frame held in lists).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_write_text, files_together, sha256_file
from virnucpro_core.paths import PreprocessPaths
from virnucpro_core.input_files import path_problem
from virnucpro_core.preprocess.fasta import (
    NUCLEOTIDE_ALPHABET, READ_ERRORS, FastaRecord, _open_text, printable, read_error, write_fasta,
)  # fmt: skip
from virnucpro_core.preprocess.sequences import (
    AMBIGUOUS_BASES,
    CODON_TABLE,
    Frame,
    PreprocessResult,
    chunk_record,
    read_reference_proteins,
)

log = logging.getLogger(__name__)

_COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")


def read_fasta_reference(path: str | Path) -> list[FastaRecord]:
    """The line-by-line FASTA reader (a set difference per line); same records and messages as ``read_fasta``."""
    path = Path(path)
    kind = path_problem(path)
    if kind is not None:
        raise kind.error(path, expected="a nucleotide FASTA file (.fa, .fasta, .fna, optionally .gz)")
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
        with _open_text(path, fasta=True) as handle:
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
                        f"line {number}, column {column}: character(s) {printable(''.join(bad))!r} "
                        f"in record '{header.split(maxsplit=1)[0] if header.strip() else '?'}'"
                    )
                parts.append(stripped)
            finish()
    except READ_ERRORS as error:
        raise read_error(path, error) from error

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


def reverse_complement_reference(seq: str) -> str:
    """A↔T, C↔G in either case; every other character stays as it is."""
    return seq.translate(_COMPLEMENT)[::-1]


def translate_reference(seq: str) -> str:
    """Translate from offset 0, one dict lookup per codon; codons outside the 64 ``ACGT`` codons give no residue."""
    return "".join(CODON_TABLE.get(seq[i : i + 3], "") for i in range(0, len(seq) - 2, 3))


def six_frames_reference(seq: str) -> list[str]:
    """Proteins of frames 1-3 (forward, offsets 0-2) and 4-6 (reverse complement)."""
    upper = seq.upper()
    reverse = reverse_complement_reference(upper)
    return [translate_reference(upper[i:]) for i in range(3)] + [translate_reference(reverse[i:]) for i in range(3)]


def select_frames_reference(chunk: FastaRecord, reference_proteins: Sequence[str] | None = None) -> list[Frame]:
    """The samples of one chunk: its stop-free, non-empty frames (see ``sequences.select_frames``)."""
    seq = chunk.seq.upper()
    if reference_proteins is not None and not AMBIGUOUS_BASES.isdisjoint(seq):
        return []
    reverse = reverse_complement_reference(seq)
    frames = []
    for number, protein in enumerate(six_frames_reference(seq), start=1):
        if not protein or "*" in protein:
            continue
        if reference_proteins is not None and not any(protein in ref for ref in reference_proteins):
            continue
        if number <= 3:
            frame_id = f"{chunk.id}F{number}"
            nucleotide = seq[number - 1 : number + 3 * len(protein)]
        else:
            frame_id = f"{chunk.id}R{number - 3}"
            nucleotide = reverse[number - 4 : number - 3 + 3 * len(protein)]
        frames.append(Frame(frame_id, chunk.id, number, nucleotide, protein))
    return frames


def preprocess_reference(
    input_path: str | Path,
    chunk_size: int,
    out_dir: str | Path,
    *,
    reference: Sequence[str | Path] | None = None,
) -> PreprocessResult:
    """``preprocess`` as it was: one core, every chunk and frame in memory, the same four files."""
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0:
        raise InputError(
            f"chunk size {chunk_size!r} is not a positive integer",
            expected="a positive number of bases; VirNucPro's models were trained on 300 and 500",
            fix="pass --chunk-size 300 or --chunk-size 500",
        )
    input_path = Path(input_path)
    records = read_fasta_reference(input_path)
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
            selected = select_frames_reference(chunk, ref)
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
    with files_together(paths.root, paths.summary.name) as staging:
        staged = PreprocessPaths(staging)
        write_fasta(((c.id, c.seq) for c in chunks), staged.chunks)
        write_fasta(((f.id, f.nucleotide) for f in frames), staged.nucleotide)
        write_fasta(((f.id, f.protein) for f in frames), staged.protein)
        atomic_write_text(staged.summary, json.dumps(summary, indent=2) + "\n")
    return result
