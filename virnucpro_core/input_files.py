"""What a path given as an input is, said in words: a file, or a directory, a pipe, a device, a link loop...

The readers of FASTA, feature, checkpoint and weight files ask
:func:`path_problem` before they open a file, so a user reads "is a named
pipe" or "is a symlink loop", never "no such file" for a path that exists, and
"permission denied", never "re-download" (issue 38). :func:`content_problem`
names what a file's first bytes say it holds when that is not what a FASTA
reader can read (zstd, zip, a UTF-8 byte-order mark, UTF-16, FASTQ, GenBank,
EMBL). :func:`resolved` is ``Path.resolve`` with a symlink loop as one message
instead of Python's ``RuntimeError``; :func:`folder_files` lists a folder's
files with every entry that cannot be read, which :func:`refuse_unreadable`
names; :func:`check_utf8_name` refuses a path that is not UTF-8. Free of heavy
imports: the CLI checks its paths before it loads torch.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from virnucpro_core.errors import InputError


@dataclass(frozen=True)
class PathProblem:
    """Why a path cannot be read as a file: what it is (after the path, e.g. "is a directory") and what to do."""

    what: str
    fix: str

    def error(self, path: str | os.PathLike, *, expected: str, option: str = "") -> InputError:
        """The one message for ``path`` (named with ``option`` when given)."""
        return InputError(f"{f'{option} ' if option else ''}{path}: {self.what}", expected=expected, fix=self.fix)


NOT_FOUND = PathProblem("no such file", "check the path")
LOOP = PathProblem("is a symlink loop (a link that leads back to itself; `ls -l` shows where it points)",
                   "point it at the real file, or remove the link")
DENIED = PathProblem("cannot be read: permission denied (the file itself may be fine)",
                     "ask its owner for read access (or `chmod u+r` it, folders above it `u+x`), or copy it where "
                     "you can read it; nothing needs downloading again")


def path_problem(path: str | os.PathLike) -> PathProblem | None:
    """``None`` when ``path`` is (or links to) a regular file this process may read; else what it is instead."""
    try:
        info = os.stat(path)
    except OSError as error:
        return _stat_problem(Path(path), error)
    if stat.S_ISDIR(info.st_mode):
        return PathProblem("is a directory, and a file goes here", "pass a file inside it")
    if stat.S_ISFIFO(info.st_mode):
        return PathProblem("is a named pipe (FIFO, or a process substitution such as <(zcat ...)), which can be "
                           "read only once, and every input is read more than once (counted, checked, hashed)",
                           "write it to a file first (e.g. `zcat genomes.fa.gz > genomes.fa`), or pass a .gz file "
                           "as it is: gzip is read directly")
    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
        return PathProblem("is a device, not a file", "pass a file")
    if not stat.S_ISREG(info.st_mode):
        return PathProblem("is not a regular file (a socket?)", "pass a file")
    if not os.access(path, os.R_OK):
        return DENIED
    return None


def _stat_problem(path: Path, error: OSError) -> PathProblem:
    if error.errno == errno.ELOOP:
        return LOOP
    if error.errno in (errno.EACCES, errno.EPERM):
        return PathProblem("cannot be reached: permission denied on a folder above it",
                           "ask the folder's owner for access, or copy the file where you can read it")
    if error.errno == errno.ENOENT and path.is_symlink():
        return PathProblem(f"is a dangling symlink to {os.readlink(path)} (its target does not exist: a drive that "
                           "is not mounted, or a file moved away?)",
                           "mount the drive or put the file back where the link points, or remove the link")
    return NOT_FOUND


def printable(text: str) -> str:
    """``text`` with every byte that was not UTF-8 (kept as a surrogate when read) shown as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def undecodable_bytes(text: str) -> list[str]:
    """The bytes of ``text`` that were not UTF-8 (read as surrogates), each as ``\\xNN``, in order, once each."""
    return [f"\\x{ord(c) - 0xDC00:02x}" for c in dict.fromkeys(text) if "\udc80" <= c <= "\udcff"]


def check_utf8_name(path: str | os.PathLike, option: str) -> None:
    """Refuse a path whose name is not valid UTF-8: every report, record and message names its inputs in UTF-8.

    Raises:
        InputError: naming the option, the name (its bad bytes as ``\\xNN``) and a way round it.
    """
    bad = undecodable_bytes(os.fspath(path))
    if bad:
        shown = printable(os.fspath(path))
        raise InputError(
            f"{option} {shown}: the path is not valid UTF-8 (byte(s) {' '.join(bad)})",
            expected="a path in UTF-8, which the reports, stage records and messages can name",
            found=f"{shown} (as Latin-1: {os.fsencode(path).decode('latin-1')})",
            fix=f"rename it to a UTF-8 name, or make a link with one and pass that (`ln -s $'{shown}' NEW_NAME`)",
        )


def resolved(path: str | os.PathLike, *, option: str = "") -> Path:
    """``Path(path).resolve()``; a symlink loop is one :class:`InputError` naming the path (and ``option``)."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError) as error:  # Python 3.11 raises RuntimeError for a loop, 3.13 OSError(ELOOP)
        if isinstance(error, OSError) and error.errno != errno.ELOOP:
            raise
        raise LOOP.error(path, expected="a file or a directory", option=option) from None


def is_broken_link(path: Path) -> bool:
    """A symlink whose target cannot be reached: dangling, or a loop."""
    if not path.is_symlink():
        return False
    try:
        os.stat(path)
    except OSError:
        return True
    return False


def folder_files(directory: Path, suffix: str) -> tuple[list[Path], list[str]]:
    """A folder's readable files named ``*suffix``, sorted, and a line for each entry that should be read and
    cannot: a ``*suffix`` that is no readable file, and any link that leads nowhere (dangling or a loop), whatever
    its name (data on a drive that is not mounted)."""
    found, problems = [], []
    for entry in sorted(directory.iterdir()):
        if entry.name.endswith(suffix) or is_broken_link(entry):
            problem = path_problem(entry)
            if problem is None:
                found.append(entry)
            else:
                problems.append(f"{entry}: {problem.what}")
    return found, problems


def refuse_unreadable(directory: Path, problems: list[str]) -> None:
    """One error naming every entry of ``directory`` (or below it) that :func:`folder_files` could not read.

    Raises:
        InputError: when there is any.
    """
    if not problems:
        return
    shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
    raise InputError(
        f"{directory}: {len(problems)} entr{'y' if len(problems) == 1 else 'ies'} cannot be read, and a folder's "
        "files are read all or not at all",
        expected="every file a readable file, every link leading to one",
        found="\n    " + "\n    ".join(shown),
        fix="mount the drive a link points to, put its file back, or remove the link; give read access to each "
        "file named; then rerun (nothing was read)",
    )


# First bytes of formats people hand a FASTA reader by mistake, and what to do about each. gzip, bzip2 and xz
# are read (the standard library decompresses them); zstd has no reader among our dependencies.
_SIGNATURES = (
    (b"\x28\xb5\x2f\xfd", "zstd-compressed, which is not read here (the standard library has no zstd reader)",
     "decompress it (`zstd -d FILE`), or recompress it with gzip (`zstdcat FILE | gzip > FILE.gz`), which is read "
     "directly"),
    (b"PK\x03\x04", "a zip archive (a .pt file, or a .zip)", "unzip it and pass the FASTA file inside"),
    (b"\xef\xbb\xbf", "UTF-8 text starting with a byte-order mark (BOM, as some Windows editors save it), before "
     "the first '>'", "remove the mark (`sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`) or save the file as UTF-8 without BOM"),
    (b"\xff\xfe", "UTF-16 text (little-endian byte-order mark)", "convert it: `iconv -f UTF-16 -t UTF-8 FILE > NEW`"),
    (b"\xfe\xff", "UTF-16 text (big-endian byte-order mark)", "convert it: `iconv -f UTF-16 -t UTF-8 FILE > NEW`"),
    (b"LOCUS ", "a GenBank flat file (it starts with LOCUS)",
     "convert it to FASTA, e.g. with Biopython: `SeqIO.convert(FILE, 'genbank', 'out.fa', 'fasta')`"),
    (b"ID   ", "an EMBL flat file (it starts with ID)",
     "convert it to FASTA, e.g. with Biopython: `SeqIO.convert(FILE, 'embl', 'out.fa', 'fasta')`"),
)


def content_problem(head: bytes) -> PathProblem | None:
    """What a FASTA file's first bytes (decompressed) say it is, when that is something else; ``None`` otherwise.

    Recognised: zstd, zip, a UTF-8 byte-order mark, UTF-16 (by its mark, or NUL bytes between ASCII letters),
    FASTQ (``@`` first), GenBank and EMBL flat files.
    """
    for signature, what, fix in _SIGNATURES:
        if head.startswith(signature):
            return PathProblem(f"is {what}", fix)
    if b"\x00" in head[:64]:
        utf16 = len(head) > 1 and (head[1:2] == b"\x00" or head[:1] == b"\x00")
        return PathProblem("is UTF-16 text (NUL bytes between its letters)" if utf16 else "is a binary file "
                           "(it holds NUL bytes)", "convert it: `iconv -f UTF-16 -t UTF-8 FILE > NEW`" if utf16
                           else "pass a FASTA text file")
    if head.startswith(b"@"):
        lines = head.split(b"\n", 3)
        third = ", its third with '+'" if len(lines) > 2 and lines[2].startswith(b"+") else ""
        return PathProblem(f"is FASTQ (its first line starts with '@'{third}): reads with qualities, not FASTA",
                           "convert it to FASTA (e.g. `seqtk seq -a FILE > out.fa`, or Biopython's "
                           "`SeqIO.convert(FILE, 'fastq', 'out.fa', 'fasta')`)")
    return None
