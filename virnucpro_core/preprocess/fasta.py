"""FASTA files: the one reader (nucleotide and protein files alike) and the writer.

:func:`iter_fasta` reads a file, plain or compressed (gzip, bzip2, xz), once: it validates every
record against an alphabet (:data:`NUCLEOTIDE` for genomes and frames,
:data:`PROTEIN` for the frames' translations), collects every problem of the
file and raises them in one :class:`~virnucpro_core.errors.InputError`, and can
hash the file's bytes as it reads them, so that a caller needing the records
and the file's sha256 (``virnucpro predict``) reads the file once
(:meth:`FastaFile.read`).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import lzma
import os
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_path
from virnucpro_core.input_files import DENIED, content_problem, path_problem, printable, undecodable_bytes

# IUPAC nucleotide codes (U included); anything else in a nucleotide FASTA is rejected.
NUCLEOTIDE_ALPHABET = frozenset("ACGTUNRYKMSWBDHVacgtunrykmswbdhv")
# Single-character tokens of the ESM-2 vocabulary: what a protein FASTA may contain.
PROTEIN_ALPHABET = frozenset("LAGVSERTDIPKQNFYMHWCXBUZO.-")
# What str.split() splits on, within ASCII; a line's other characters are its sequence.
_ASCII_WHITESPACE = "".join(chr(i) for i in range(128) if chr(i).isspace()).encode("ascii")
# Characters per read of a FASTA file.
_READ_SIZE = 1 << 20
# Unicode categories an id may not hold: control characters (NUL, C0/C1) and format characters (bidi controls such
# as U+202E, zero-width characters such as U+200B), which hide or reorder what a reader sees of an id.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf"})
# First characters a spreadsheet reads as the start of a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@")
# Compressed formats read as they are, by their first bytes; zstd has no reader here (input_files names it).
_DECOMPRESSORS = ((b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw)), (b"BZh", bz2.BZ2File),
                  (b"\xfd7zXZ\x00", lzma.LZMAFile))
# What a damaged compressed file raises while it is read.
READ_ERRORS = (OSError, EOFError, gzip.BadGzipFile, lzma.LZMAError)
# How many of a file's first bytes (decompressed) tell another format from FASTA.
_HEAD = 512


def not_utf8(record_id: str) -> str | None:
    """The problem of an id holding bytes that are not UTF-8 (read as surrogates), naming them; ``None`` if none."""
    bad = " ".join(undecodable_bytes(record_id))
    if not bad:
        return None
    raw = record_id.encode("utf-8", "surrogateescape")
    return (f"id '{printable(record_id)}' is not valid UTF-8 (byte(s) {bad}; as Latin-1 it would read "
            f"'{raw.decode('latin-1')}'): ids are kept exactly and never rewritten, so convert the file to UTF-8 "
            "(e.g. `iconv -f LATIN1 -t UTF-8 FILE > NEW`)")


def invisible_characters(text: str) -> list[str]:
    """The control, bidi and zero-width characters of ``text``, each as ``U+XXXX NAME`` (empty when none)."""
    found = dict.fromkeys(c for c in text if unicodedata.category(c) in _INVISIBLE_CATEGORIES)
    return [f"U+{ord(c):04X} {unicodedata.name(c, 'control character')}" for c in found]


def reads_as_formula(record_id: str) -> bool:
    """Whether a spreadsheet opening a table with ``record_id`` in a cell would read it as a formula."""
    return record_id.startswith(FORMULA_PREFIXES)


def formula_warning(count: int, what: str = "record id(s)") -> str:
    """The one-line warning for ``count`` ids a spreadsheet would read as formulas (they are kept exactly)."""
    return (f"{count} {what} begin with = + - or @: kept exactly, so that the outputs join with your files, but a "
            "spreadsheet opening the tables reads them as formulas (import them as text)")


@dataclass(frozen=True)
class FastaAlphabet:
    """What the sequences of one kind of FASTA file may hold, and how its errors name that kind."""

    name: str  # "nucleotide" or "protein"
    letters: frozenset[str]
    file: str  # what such a file is, for a missing path
    expected: str  # what a valid file holds
    fix: str  # what to do about an invalid one

    @property
    def allowed_bytes(self) -> bytes:
        """The alphabet's and ASCII whitespace's bytes: what a valid line holds, in one ``bytes.translate``."""
        return "".join(sorted(self.letters)).encode("ascii") + _ASCII_WHITESPACE


NUCLEOTIDE = FastaAlphabet(
    "nucleotide",
    NUCLEOTIDE_ALPHABET,
    file="a nucleotide FASTA file (.fa, .fasta, .fna; optionally .gz, .bz2 or .xz)",
    expected="'>id' headers, unique ids, non-empty sequences of IUPAC nucleotide codes (ACGTUNRYKMSWBDHV, any case)",
    fix="fix or remove the records named above",
)
PROTEIN = FastaAlphabet(
    "protein",
    PROTEIN_ALPHABET,
    file="a protein FASTA file (.faa)",
    expected="'>id' headers, unique ids, non-empty upper-case sequences of " + "".join(sorted(PROTEIN_ALPHABET)),
    fix="pass protein.faa from `virnucpro preprocess` (stop-free frames)",
)


@dataclass(frozen=True)
class FastaRecord:
    """One FASTA record: ``id`` is the header's first word, as Biopython reads it."""

    id: str
    seq: str


@dataclass(frozen=True)
class FastaFile:
    """A FASTA file read whole, once: its validated records and the sha256 of its bytes (as stored, compressed
    or not)."""

    path: Path
    records: list[FastaRecord]
    sha256: str

    @classmethod
    def read(cls, path: str | Path, alphabet: FastaAlphabet | None = None) -> FastaFile:
        """Read, validate (see :func:`iter_fasta`) and hash ``path`` in one pass."""
        digest = hashlib.sha256()
        records = list(iter_fasta(path, alphabet, digest=digest))
        return cls(Path(path), records, digest.hexdigest())


class _Digesting(io.RawIOBase):
    """A binary file whose bytes also go into ``digest`` as they are read."""

    def __init__(self, raw: io.BufferedIOBase, digest: Any):
        super().__init__()
        self._raw, self._digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._raw.readinto(buffer)
        if count:
            self._digest.update(memoryview(buffer)[:count])
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


def count_records(path: str | os.PathLike) -> int | None:
    """How many records a FASTA file (plain or compressed) holds, counting header lines without validating them;
    None when it cannot be read (the reader then says why)."""
    if path_problem(path) is not None:  # a pipe must not be read here: the reader then says what it is
        return None
    try:
        with _open_text(Path(path), newline=None) as text:
            return sum(1 for line in text if line.startswith(">"))
    except (*READ_ERRORS, InputError):
        return None


@contextlib.contextmanager
def _open_text(path: Path, newline: str | None = "", digest: Any = None, fasta: bool = False
               ) -> Iterator[io.TextIOBase]:
    """``path`` as UTF-8 text (decompressed when it starts with gzip's, bzip2's or xz's magic), opened once; every
    byte read from the file, and on leaving the rest of it, goes into ``digest`` when one is given.

    Bytes that are not UTF-8 are kept as surrogates (``surrogateescape``), never replaced, so that the reader can
    name them. With ``fasta``, a file whose first bytes say it is another format (zstd, FASTQ, GenBank, UTF-16,
    a byte-order mark: :func:`~virnucpro_core.input_files.content_problem`) is refused, naming it.
    """
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(open(path, "rb"))
        if digest is not None:
            raw = stack.enter_context(io.BufferedReader(_Digesting(raw, digest), buffer_size=_READ_SIZE))
        binary = raw
        for magic, reader in _DECOMPRESSORS:
            if raw.peek(len(magic))[: len(magic)] == magic:
                binary = stack.enter_context(reader(raw))
                break
        problem = content_problem(binary.peek(_HEAD)[:_HEAD]) if fasta else None
        if problem is not None:
            raise problem.error(path, expected="a FASTA file: '>id' header lines, each followed by its sequence "
                                "(plain, gzip, bzip2 or xz)")
        text = io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline=newline)
        try:
            yield text
            if digest is not None:
                while raw.read(_READ_SIZE):  # what the reader left (gzip padding) is part of the file's hash
                    pass
        finally:
            text.detach()  # the stack closes the binary layers, in order


def _fasta_runs(handle) -> Iterator[tuple[bool, int, str]]:
    """``(is a header, line number, text)``: each header line without its ``>``, and runs of other lines.

    The handle reads with universal newlines, so every line ends in "\n" alone
    ("\r\n" and a lone "\r" become "\n": the same lines as the line-by-line
    reader's, and the line numbers an editor shows). Text is read ``_READ_SIZE`` characters at a time and cut at
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


def iter_fasta(path: str | Path, alphabet: FastaAlphabet | None = None, *, digest: Any = None
               ) -> Iterator[FastaRecord]:
    """Read and validate a FASTA file (plain, gzip, bzip2 or xz), one record at a time.

    Every problem of the file is collected and reported in one
    :class:`InputError`, raised after the last line: no records, text before
    the first header, empty headers or sequences, duplicate ids (ids equal
    after Unicode NFC normalisation are duplicates: ``café`` composed and
    decomposed), ids holding control, bidi or zero-width characters or bytes
    that are not UTF-8 (named, never replaced), characters outside ``alphabet``
    (default :data:`NUCLEOTIDE`: IUPAC nucleotide codes). A path that is no
    readable file, and a file that is another format (zstd, FASTQ, GenBank,
    UTF-16, a byte-order mark...), are refused first, naming what they are
    (:mod:`virnucpro_core.input_files`). Records are yielded only while the
    file has no problem, so a consumer that streams them into outputs sees
    the error before it can finish (and must write its outputs whole or not
    at all).

    Args:
        path: the file.
        alphabet: :data:`NUCLEOTIDE` (default) or :data:`PROTEIN`.
        digest: a ``hashlib`` object updated with the file's bytes as they are read (the whole file once the
            last record is yielded), so that reading and hashing take one pass.
    """
    alphabet = alphabet or NUCLEOTIDE
    allowed = alphabet.allowed_bytes
    path = Path(path)
    kind = path_problem(path)
    if kind is not None:
        raise kind.error(path, expected=alphabet.file)
    problems: list[str] = []
    seen: dict[str, int] = {}  # NFC-normalised id -> its header's line
    seen_raw: set[str] = set()
    records = 0
    header: str | None = None
    header_line = 0
    runs: list[str] = []

    def sequence_of(record_name: str) -> str:
        """The record's lines without whitespace; bad characters are added to ``problems`` by line and column."""
        raw = "".join(runs)
        # Fast path, one C call per step for the whole record: ASCII, and nothing but the alphabet and whitespace.
        if raw.isascii():
            data = raw.encode("ascii")
            if not data.translate(None, allowed):
                return data.translate(None, _ASCII_WHITESPACE).decode("ascii")
        parts = []
        for number, line in enumerate(raw.split("\n"), start=header_line + 1):
            stripped = "".join(line.split())
            if not stripped:
                continue
            bad = sorted(set(stripped) - alphabet.letters)
            if bad:
                column = next(i for i, c in enumerate(line, start=1) if c in bad)
                problems.append(f"line {number}, column {column}: character(s) {printable(''.join(bad))!r} in record "
                                f"'{record_name}'")
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
        hidden = invisible_characters(name)
        undecodable = not_utf8(name)
        if undecodable:
            problems.append(f"line {header_line}: {undecodable}")
            name = printable(name)
        elif hidden:
            shown = name.encode("unicode_escape").decode("ascii")
            problems.append(f"line {header_line}: id '{shown}' holds {', '.join(hidden)} (a control, bidi or "
                            "zero-width character, which hides or reorders what a reader sees)")
            name = shown
        if not seq:
            problems.append(f"line {header_line}: record '{name}' has no sequence")
        key = unicodedata.normalize("NFC", name)
        if key in seen:
            same = "" if name in seen_raw else " (the same after Unicode NFC normalisation)"
            problems.append(f"line {header_line}: duplicate id '{name}'{same} (first at line {seen[key]})")
        else:
            seen[key] = header_line
            seen_raw.add(name)
        records += 1
        return FastaRecord(name, seq)

    try:
        with _open_text(path, newline=None, digest=digest, fasta=True) as handle:
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
    except READ_ERRORS as error:
        raise read_error(path, error) from error

    if not records and not problems:
        raise InputError(
            f"{path}: no FASTA records",
            expected="at least one record starting with a '>' header line",
            found="an empty file" if path.stat().st_size == 0 else "no line starting with '>'",
            fix=f"pass a {alphabet.name} FASTA file",
        )
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise InputError(
            f"{path}: not a valid {alphabet.name} FASTA file ({len(problems)} problem(s))",
            expected=alphabet.expected,
            found="\n    " + "\n    ".join(shown),
            fix=alphabet.fix,
        )


def read_error(path: Path, error: BaseException) -> InputError:
    """The message for a FASTA file that failed while it was read: permission, else a damaged file."""
    if isinstance(error, PermissionError):
        return DENIED.error(path, expected="a readable FASTA file")
    return InputError(
        f"{path}: cannot be read ({error})",
        expected="a readable FASTA file, plain or compressed (gzip, bzip2, xz)",
        fix="check that the file is complete (a truncated download?) and not another format",
    )


def read_fasta(path: str | Path, alphabet: FastaAlphabet | None = None) -> list[FastaRecord]:
    """Every record of a FASTA file, validated (see :func:`iter_fasta`)."""
    return list(iter_fasta(path, alphabet))


def write_fasta(records: Iterable[tuple[str, str]], path: str | Path) -> int:
    """Write ``(id, sequence)`` pairs as single-line FASTA, atomically; return the count."""
    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        for name, seq in records:
            handle.write(f">{name}\n{seq}\n")
            count += 1
    return count
