"""Six-frame translation and stop-free frame selection, vectorised with numpy.

The rules are VirNucPro's (see :mod:`virnucpro_core.preprocess.sequences`), unchanged:
a chunk is upper-cased and read in six frames; a codon with a base other than
``A``, ``C``, ``G`` or ``T`` gives no residue (it is skipped, not an ``X``); a
frame is a sample when its protein is non-empty and has no stop; its
nucleotide string is the chunk from the frame's offset, three bases per
residue *plus one*, cut at the chunk's end.

What changed is how: instead of one dict lookup per codon, a text holding
many chunks (a block of records) is coded once as bytes 0-3 (``ACGT``) and 4
(anything else), the codon starting at *every* position is looked up at once
in a 125-entry table, and per-phase prefix sums say for every chunk and frame
how many residues and stops it has. Python then touches only the frames that
are kept. ``tests/preprocess/test_translation.py`` checks every function here against
the original code (:mod:`virnucpro_core.preprocess.reference`).

This module imports numpy and the codon table only, so worker processes start
quickly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from Bio.Data.CodonTable import standard_dna_table

# The 64 unambiguous codons of the standard table, stops as "*".
CODON_TABLE: dict[str, str] = {
    **standard_dna_table.forward_table,
    **{codon: "*" for codon in standard_dna_table.stop_codons},
}
_COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")
# A training chunk with any of these (after upper-casing) is dropped, as in the original.
AMBIGUOUS_BASES = frozenset("NRYMKSWHBVD")

_OTHER = 4  # the code of every character that is not an upper-case A, C, G or T
_CODE = np.full(256, _OTHER, np.uint8)
_CODE[np.frombuffer(b"ACGT", np.uint8)] = np.arange(4, dtype=np.uint8)
_COMPLEMENT_CODE = np.array([3, 2, 1, 0, _OTHER], np.uint8)
_IS_AMBIGUOUS = np.zeros(256, bool)
_IS_AMBIGUOUS[np.frombuffer("".join(sorted(AMBIGUOUS_BASES)).encode(), np.uint8)] = True
# The residue of the codon coded (a, b, c), at 25a + 5b + c; 0 ("no residue") when a base is not ACGT.
_RESIDUE = np.zeros(125, np.uint8)
for _codon, _amino_acid in CODON_TABLE.items():
    _a, _b, _c = ("ACGT".index(base) for base in _codon)
    _RESIDUE[25 * _a + 5 * _b + _c] = ord(_amino_acid)
_STOP = ord("*")
# Frame ids end in F1-F3 (forward, offsets 0-2) or R1-R3 (reverse complement), by frame number 1-6.
_FRAME_SUFFIX = ("", "F1", "F2", "F3", "R1", "R2", "R3")


def _bytes_of(text: str) -> np.ndarray:
    """One uint8 per character of ``text``: its code point, or 255 for any character beyond Latin-1.

    Positions must stay those of the ``str`` (the nucleotide strings are cut
    from it), so a non-ASCII text is read as UTF-32 rather than UTF-8.
    """
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), np.uint8)
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), "<u4")
    return np.minimum(points, 255).astype(np.uint8)


def _codon_residues(codes: np.ndarray) -> np.ndarray:
    """The residue (ASCII) of the codon starting at each position but the last two; 0 where a base is not ACGT."""
    if len(codes) < 3:
        return np.zeros(0, np.uint8)
    return _RESIDUE[codes[:-2] * 25 + codes[1:-1] * 5 + codes[2:]]  # at most 124: uint8 holds it


class _PhasedPositions:
    """Flagged positions of a strand, grouped by phase (position mod 3), to count them along a frame.

    A frame reads positions ``begin, begin + 3, ...``: all in one phase. Keyed
    as ``phase * span + position``, each phase's positions form one sorted run,
    so two binary searches count a frame's flags, for every frame at once.
    Flags (stops, codons with an ambiguous base) are a few percent of the
    positions, so this is much cheaper than a prefix sum over all of them.
    """

    def __init__(self, flags: np.ndarray):
        positions = np.flatnonzero(flags)
        phases = positions % 3
        self.span = len(flags) + 3  # above every position a frame may start or end at
        self.keys = np.concatenate([positions[phases == phase] + phase * self.span for phase in range(3)])

    def count(self, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Flags at ``begin, begin + 3, ...`` before ``end`` (``end - begin`` a multiple of 3), per frame."""
        base = (begin % 3) * self.span
        return np.searchsorted(self.keys, base + end) - np.searchsorted(self.keys, base + begin)


def reverse_complement(seq: str) -> str:
    """A↔T, C↔G in either case; every other character stays as it is."""
    return seq.translate(_COMPLEMENT)[::-1]


def translate(seq: str) -> str:
    """Translate from offset 0; codons outside the 64 upper-case ``ACGT`` codons give no residue."""
    residues = _codon_residues(_CODE[_bytes_of(seq)])[::3]
    return residues[residues != 0].tobytes().decode("ascii")


def six_frames(seq: str) -> list[str]:
    """Proteins of frames 1-3 (forward, offsets 0-2) and 4-6 (reverse complement)."""
    upper = seq.upper()
    reverse = reverse_complement(upper)
    return [translate(upper[i:]) for i in range(3)] + [translate(reverse[i:]) for i in range(3)]


@dataclass(frozen=True)
class Frame:
    """One VirNucPro sample: a stop-free reading frame of one chunk."""

    id: str
    chunk_id: str
    frame: int  # 1-3 forward, 4-6 reverse complement
    nucleotide: str
    protein: str


class _Strand(NamedTuple):
    """One strand of a text: the text, the residue of the codon at each position, and where codons fail."""

    text: str
    residues: str  # "\0" where a codon has a base other than ACGT; two shorter than text
    without_residue: _PhasedPositions
    with_stop: _PhasedPositions

    @classmethod
    def of(cls, text: str, codes: np.ndarray) -> _Strand:
        residues = _codon_residues(codes)
        return cls(text, residues.tobytes().decode("ascii"), _PhasedPositions(residues == 0),
                   _PhasedPositions(residues == _STOP))  # fmt: skip


class SixFrames:
    """The six-frame translation of one upper-case text, for any chunks cut from it.

    Each strand is translated once at every position; a chunk ``[start, end)``
    of the text is ``[len - end, len - start)`` of the reverse complement, so
    one pass serves every chunk of a block, overlaps included.
    """

    def __init__(self, upper: str):
        self.text = upper
        self._points = _bytes_of(upper)
        codes = _CODE[self._points]
        self._strands = [
            _Strand.of(upper, codes),
            _Strand.of(reverse_complement(upper), _COMPLEMENT_CODE[codes[::-1]]),
        ]

    def select(
        self,
        starts: Sequence[int],
        ends: Sequence[int],
        references: Sequence[str] | None = None,
    ) -> tuple[list[tuple[int, int, str, str]], np.ndarray]:
        """The samples of chunks ``text[starts[i]:ends[i]]``, in chunk order and frames 1-6 within a chunk.

        Args:
            starts, ends: chunk bounds in the text.
            references: training mode: per chunk, its record's reference
                proteins joined by newlines; a frame is kept only if its
                protein occurs there, and chunks with an ambiguous base yield
                nothing. ``None``: prediction mode.

        Returns:
            ``(chunk index, frame number, nucleotide, protein)`` per sample, and
            per chunk whether it was dropped for an ambiguous base (training
            mode; all false otherwise).
        """
        starts_ = np.asarray(starts, np.int64)
        ends_ = np.asarray(ends, np.int64)
        lengths = ends_ - starts_
        size = len(self.text)
        dropped = np.zeros(len(starts_), bool)
        if references is not None:
            dropped = self._ambiguous_bases(starts_, ends_) > 0
        # One row per frame: where its first codon starts in its strand, its codons, and how many of them
        # give no residue or a stop.
        first, codons, missing, stops = [], [], [], []
        for number in range(1, 7):
            offset = (number - 1) % 3
            strand = self._strands[number > 3]
            count = np.maximum((lengths - offset) // 3, 0)
            begin = (starts_ if number <= 3 else size - ends_) + offset
            begin = np.where(count > 0, begin, 0)  # an empty frame reads nothing (and may start past the end)
            first.append(begin)
            codons.append(count)
            missing.append(strand.without_residue.count(begin, begin + 3 * count))
            stops.append(strand.with_stop.count(begin, begin + 3 * count))
        codons_, missing_ = np.stack(codons), np.stack(missing)
        kept = (codons_ > missing_) & (np.stack(stops) == 0) & ~dropped
        chunk_index, frame_index = np.nonzero(kept.T)  # chunk-major: chunk order, then frames 1-6
        begins = np.stack(first)[frame_index, chunk_index].tolist()
        counts = codons_[frame_index, chunk_index].tolist()
        complete = (missing_[frame_index, chunk_index] == 0).tolist()
        limits = np.where(frame_index < 3, ends_[chunk_index], size - starts_[chunk_index]).tolist()

        samples = []
        for chunk, index, begin, count, whole, limit in zip(
            chunk_index.tolist(), frame_index.tolist(), begins, counts, complete, limits
        ):
            strand = self._strands[index >= 3]
            protein = strand.residues[begin : begin + 3 * count : 3]
            if not whole:
                protein = protein.replace("\0", "")
            if references is not None and protein not in references[chunk]:
                continue
            # The original slices one base more than the codons it translated
            # (seq[f-1 : f + 3n]); the trained models saw these strings, so keep it.
            nucleotide = strand.text[begin : min(begin + 3 * len(protein) + 1, limit)]
            samples.append((chunk, index + 1, nucleotide, protein))
        return samples, dropped

    def _ambiguous_bases(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """The number of ambiguous bases (``AMBIGUOUS_BASES``) in each chunk."""
        before = np.concatenate(([0], np.cumsum(_IS_AMBIGUOUS[self._points], dtype=np.int64)))
        return before[ends] - before[starts]


def chunk_frames(chunk_id: str, seq: str, reference_proteins: Sequence[str] | None = None) -> list[Frame]:
    """The samples of one chunk: its stop-free, non-empty frames (ids ``{chunk_id}F1`` to ``{chunk_id}R3``).

    The chunk is upper-cased first, as the original's ``process_record`` does.
    With ``reference_proteins`` (training mode) a chunk with an ambiguous base
    yields nothing, and a frame is kept only if its protein is a substring of
    one of the reference proteins.
    """
    upper = seq.upper()
    # A protein never holds a newline, so "in the joined text" is "in one of them".
    references = None if reference_proteins is None else ["\n".join(reference_proteins)]
    samples, _ = SixFrames(upper).select([0], [len(upper)], references)
    return [
        Frame(chunk_id + _FRAME_SUFFIX[number], chunk_id, number, nucleotide, protein)
        for _, number, nucleotide, protein in samples
    ]


# --------------------------------------------------------------------------- blocks (the unit of parallel work)


@dataclass(frozen=True)
class RecordPiece:
    """Consecutive chunks of one record: ``text`` spans them, ``starts`` are relative to it."""

    record_id: str
    first_chunk: int  # the number of the first chunk (chunk ids count from 1)
    text: str  # case kept, U already read as T
    starts: list[int]
    reference: str | None  # training mode: the record's reference proteins joined by "\n" ("" if none)


@dataclass(frozen=True)
class ChunkBlock:
    """The unit of parallel work: pieces of consecutive records, chunked at ``chunk_size``."""

    chunk_size: int
    pieces: tuple[RecordPiece, ...]

    @property
    def bases(self) -> int:
        return sum(len(piece.text) for piece in self.pieces)


@dataclass(frozen=True)
class BlockSamples:
    """What one block of pieces gives: the three FASTA files' text (UTF-8) for it, and its counts."""

    chunks: bytes
    nucleotide: bytes
    protein: bytes
    chunk_count: int
    frame_count: int
    dropped_ambiguous_chunks: int
    chunks_without_frames: int


def samples_of_block(block: ChunkBlock) -> BlockSamples:
    """Chunk, translate and select one block; runs in a worker process, so it returns text, not objects."""
    pieces, chunk_size = block.pieces, block.chunk_size
    text = "".join(piece.text for piece in pieces)
    if not text.isascii():  # read_fasta admits IUPAC codes only; upper() keeps ASCII positions, not all others
        raise ValueError("a block holds non-ASCII text; pieces must come from read_fasta")
    starts: list[int] = []
    ends: list[int] = []
    chunk_ids: list[str] = []
    references: list[str] | None = [] if pieces and pieces[0].reference is not None else None
    offset = 0
    for piece in pieces:
        length = len(piece.text)
        starts += [offset + start for start in piece.starts]
        ends += [offset + min(start + chunk_size, length) for start in piece.starts]
        chunk_ids += [f"{piece.record_id}_chunk_{number}"
                      for number in range(piece.first_chunk, piece.first_chunk + len(piece.starts))]  # fmt: skip
        if references is not None:
            references += [piece.reference or ""] * len(piece.starts)
        offset += length
    samples, dropped = SixFrames(text.upper()).select(starts, ends, references)

    chunk_text = [f">{chunk_id}\n{text[start:end]}\n" for chunk_id, start, end in zip(chunk_ids, starts, ends)]
    nucleotide_text, protein_text = [], []
    for chunk, number, nucleotide, protein in samples:
        frame_id = chunk_ids[chunk] + _FRAME_SUFFIX[number]
        nucleotide_text.append(f">{frame_id}\n{nucleotide}\n")
        protein_text.append(f">{frame_id}\n{protein}\n")
    with_frames = len({chunk for chunk, _, _, _ in samples})
    dropped_count = int(dropped.sum())
    return BlockSamples(
        chunks="".join(chunk_text).encode("utf-8"),
        nucleotide="".join(nucleotide_text).encode("utf-8"),
        protein="".join(protein_text).encode("utf-8"),
        chunk_count=len(chunk_ids),
        frame_count=len(samples),
        dropped_ambiguous_chunks=dropped_count,
        chunks_without_frames=len(chunk_ids) - with_frames - dropped_count,
    )
