"""Feature rows read from disk as they are needed, so memory does not grow with the data set.

A merged feature file (ours, or VirNucPro's: both are ``torch.save`` zips
whose ``data`` tensor is one uncompressed record) is opened with
``torch.load(mmap=True, weights_only=True)`` for its small parts (ids,
labels, lengths, meta) and the shape of ``data``; the rows themselves are
read with ``os.preadv`` from the record's byte range. Reading instead of
mapping keeps the resident set to the rows in hand: pages of a memory-mapped
file count toward a process's RSS once touched, and the kernel maps whole
neighbourhoods on every fault (benchmarks/NOTES.md, "Scale").

:class:`FileRows` is one file; :class:`RowView` is a selection of rows over
several files (a split's side, or VirNucPro's shards of one class), the
storage the split, training and evaluation stream from.
"""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from virnucpro_core.custody import remember
from virnucpro_core.errors import InputError
from virnucpro_core.pickles import torch_load

_NUMPY = {torch.float32: np.float32, torch.float16: np.float16, torch.bfloat16: None, torch.float64: np.float64}
BLOCK_BYTES = 64 << 20  # contiguous reads: 64 MiB at a time


def _record_offset(path: Path, nbytes: int) -> int | None:
    """Byte offset of the one uncompressed zip record of ``nbytes`` bytes (None when there is not exactly one)."""
    try:
        with zipfile.ZipFile(path) as archive:
            found = [i for i in archive.infolist() if "/data/" in i.filename and i.file_size == nbytes
                     and i.compress_type == zipfile.ZIP_STORED]
    except (zipfile.BadZipFile, OSError):
        return None
    if len(found) != 1:
        return None
    with open(path, "rb") as handle:
        handle.seek(found[0].header_offset)
        header = handle.read(30)
    name_length = int.from_bytes(header[26:28], "little")
    extra_length = int.from_bytes(header[28:30], "little")
    return found[0].header_offset + 30 + name_length + extra_length


@dataclass
class FileRows:
    """The rows of one merged file, read on demand; everything else of the file in memory.

    Attributes:
        path: the file.
        obj: the file's dict with ``data`` memory-mapped (never read through here; its pages stay untouched).
        n, width: shape of ``data``.
    """

    path: Path
    obj: dict
    n: int
    width: int
    _offset: int | None = None
    _dtype: Any = None
    _fd: int | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike, obj: dict | None = None) -> FileRows:
        path = Path(path)
        if obj is None:
            obj = torch_load(path, "merged feature", mmap=True)
        data = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(data, torch.Tensor) or data.ndim != 2 or not data.is_floating_point():
            raise InputError(f"{path} has no 2-d float 'data' tensor", fix="pass a merged feature file")
        rows = cls(path, obj, int(data.shape[0]), int(data.shape[1]))
        rows._locate(data)
        return rows

    def _locate(self, data: torch.Tensor) -> None:
        """Find ``data``'s bytes in the file; without them (a view, an old format), rows come from the mapping."""
        dtype = _NUMPY.get(data.dtype)
        whole = data.untyped_storage().nbytes() == data.numel() * data.element_size()
        if dtype is None or not data.is_contiguous() or data.storage_offset() != 0 or not whole or self.n == 0:
            return
        offset = _record_offset(self.path, data.numel() * data.element_size())
        if offset is None:
            return
        self._offset, self._dtype = offset, dtype
        # The bytes found must be the tensor's: check the first and the last row.
        for row in {0, self.n - 1}:
            if not torch.equal(self._pread(np.array([row])), data[row : row + 1].to(torch.float32)):
                self._offset = self._dtype = None
                return

    @property
    def streamed(self) -> bool:
        """Whether rows are read from the file (True) or through the memory mapping (old formats, views)."""
        return self._offset is not None

    def _descriptor(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()

    def _pread(self, rows: np.ndarray) -> torch.Tensor:
        stride = self.width * np.dtype(self._dtype).itemsize
        out = np.empty((len(rows), self.width), dtype=self._dtype)
        whole = memoryview(out).cast("B")
        fd, base, read = self._descriptor(), self._offset, os.preadv
        order = rows.tolist()
        if len(order) > 1 and order[-1] - order[0] == len(order) - 1 and bool((np.diff(rows) == 1).all()):
            order = order[:1]  # one contiguous run: one read
            stride_out = whole.nbytes
        else:
            stride_out = stride
        for j, row in enumerate(order):
            if read(fd, [whole[j * stride_out : (j + 1) * stride_out]], base + row * stride) != stride_out:
                raise InputError(f"{self.path} ended early: the file is shorter than its header says",
                                 fix="re-create the file; it was cut short")
        tensor = torch.from_numpy(out)
        return tensor if tensor.dtype == torch.float32 else tensor.to(torch.float32)

    def rows(self, rows: Sequence[int] | np.ndarray) -> torch.Tensor:
        """float32 ``[len(rows), width]``, in the order given."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.n):
            raise IndexError(f"rows outside 0..{self.n - 1} of {self.path}")
        if self.streamed:
            return self._pread(rows)
        return self.obj["data"][torch.from_numpy(rows)].to(torch.float32)

    def blocks(self, rows_per_block: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """``(start, float32 rows)`` over the whole file, in order, a bounded block at a time."""
        step = rows_per_block or max(1, BLOCK_BYTES // max(1, self.width * 4))
        for start in range(0, self.n, step):
            yield start, self.rows(np.arange(start, min(start + step, self.n)))

    def hashed_blocks(self, rows_per_block: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """:meth:`blocks`, reading every byte of the file once, in order, and hashing it as it goes.

        Once the last block is taken, the file's SHA-256 is remembered for the state it was read in
        (:func:`virnucpro_core.custody.remember`), so checking the rows and hashing the file (a split's
        inputs, an import) is one read of it, not two.
        """
        if not self.streamed:
            yield from self.blocks(rows_per_block)
            return
        before = os.stat(self.path)
        digest = hashlib.sha256()
        fd, stride = self._descriptor(), self.width * np.dtype(self._dtype).itemsize
        end = self._offset + self.n * stride
        self._hash_range(digest, 0, self._offset)
        step = rows_per_block or max(1, BLOCK_BYTES // max(1, stride))
        for start in range(0, self.n, step):
            count = min(step, self.n - start)
            buffer = np.empty((count, self.width), dtype=self._dtype)
            if os.preadv(fd, [memoryview(buffer).cast("B")], self._offset + start * stride) != count * stride:
                raise InputError(f"{self.path} ended early: the file is shorter than its header says",
                                 fix="re-create the file; it was cut short")
            digest.update(memoryview(buffer).cast("B"))
            block = torch.from_numpy(buffer)
            yield start, block if block.dtype == torch.float32 else block.to(torch.float32)
        self._hash_range(digest, end, before.st_size)
        remember(self.path, digest.hexdigest(), before)

    def _hash_range(self, digest: Any, start: int, stop: int) -> None:
        fd = self._descriptor()
        while start < stop:
            data = os.pread(fd, min(BLOCK_BYTES, stop - start), start)
            if not data:
                raise InputError(f"{self.path} ended early: the file is shorter than its header says",
                                 fix="re-create the file; it was cut short")
            digest.update(data)
            start += len(data)


@dataclass
class TensorRows:
    """Rows already in memory, behind the same interface as :class:`FileRows`."""

    data: torch.Tensor
    path: None = None

    @property
    def n(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    def rows(self, rows: Sequence[int] | np.ndarray) -> torch.Tensor:
        return self.data[torch.from_numpy(np.asarray(rows, dtype=np.int64))].to(torch.float32)


@dataclass
class RowView:
    """Rows selected from several files: ``(file, row)`` pairs, in the view's order."""

    files: list  # FileRows or TensorRows
    file_index: np.ndarray  # int32 [n]
    row_index: np.ndarray  # int64 [n]

    def __len__(self) -> int:
        return len(self.row_index)

    @property
    def width(self) -> int:
        return self.files[0].width if self.files else 0

    @classmethod
    def whole(cls, files: Sequence[FileRows]) -> RowView:
        """Every row of every file, file after file."""
        files = list(files)
        file_index = np.concatenate([np.full(f.n, i, dtype=np.int32) for i, f in enumerate(files)] or [np.zeros(0, np.int32)])
        row_index = np.concatenate([np.arange(f.n, dtype=np.int64) for f in files] or [np.zeros(0, np.int64)])
        return cls(files, file_index, row_index)

    @classmethod
    def concat(cls, views: Sequence[RowView]) -> RowView:
        """The rows of each view after the last."""
        files, file_index = [], []
        for view in views:
            file_index.append(view.file_index + len(files))
            files += view.files
        row_index = [v.row_index for v in views]
        return cls(files, np.concatenate(file_index or [np.zeros(0, np.int32)]).astype(np.int32),
                   np.concatenate(row_index or [np.zeros(0, np.int64)]))

    def take(self, positions: Sequence[int] | np.ndarray) -> RowView:
        """The view of these positions of this view."""
        positions = np.asarray(positions, dtype=np.int64)
        return RowView(self.files, self.file_index[positions], self.row_index[positions])

    def _direct(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Descriptor and data offset of every file, when all are float32 files read with pread (else None)."""
        if not hasattr(self, "_direct_cache"):
            direct = all(isinstance(f, FileRows) and f.streamed and f._dtype == np.float32 for f in self.files)
            self._direct_cache = (np.array([f._descriptor() for f in self.files], dtype=np.int64),
                                  np.array([f._offset for f in self.files], dtype=np.int64)) if direct else None
        return self._direct_cache

    def gather(self, positions: Sequence[int] | np.ndarray) -> torch.Tensor:
        """float32 rows at these positions of the view, in the order given."""
        positions = np.asarray(positions, dtype=np.int64)
        direct = self._direct()
        if direct is not None:
            # Rows of a shuffled batch (or of a split's side) lie anywhere in any file: one pread per row,
            # straight into the result, with no per-file bookkeeping; a run of consecutive rows is still one
            # read per row, which the page cache serves at memory speed.
            stride = self.width * 4
            out_array = np.empty((len(positions), self.width), dtype=np.float32)
            whole = memoryview(out_array).cast("B")
            which = self.file_index[positions]
            descriptors = direct[0][which].tolist()
            offsets = (direct[1][which] + self.row_index[positions] * stride).tolist()
            read = os.preadv
            for j, (fd, offset) in enumerate(zip(descriptors, offsets)):
                if read(fd, [whole[j * stride : (j + 1) * stride]], offset) != stride:
                    raise InputError("a feature file ended early: it is shorter than its header says",
                                     fix="re-create the file; it was cut short")
            return self._finite(torch.from_numpy(out_array), positions)
        out = torch.empty((len(positions), self.width), dtype=torch.float32)
        which = self.file_index[positions]
        for number in np.unique(which).tolist():
            mask = which == number
            out[torch.from_numpy(np.flatnonzero(mask))] = self.files[number].rows(self.row_index[positions[mask]])
        return self._finite(out, positions)

    def _finite(self, rows: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
        """``rows``, unless one holds NaN or an infinity: then one error naming the file and row it came from."""
        # One sum is finite exactly when every value is, unless finite values overflow it: then look closer.
        # (A sum costs ~4 µs for a batch of 32 × 2048; torch.isfinite(...).all() ~130 µs.)
        if math.isfinite(float(rows.sum())):
            return rows
        bad = torch.nonzero(~torch.isfinite(rows).all(dim=1)).flatten().tolist()
        if not bad:
            return rows
        where = []
        for j in bad[:3]:
            source = getattr(self.files[self.file_index[positions[j]]], "path", None) or "rows in memory"
            where.append(f"row {int(self.row_index[positions[j]])} of {source}")
        raise InputError(f"{len(bad)} feature row(s) read hold NaN or infinite values: {'; '.join(where)}",
                         expected="finite features (NaN or infinite rows cannot be trained on or scored)",
                         found=f"{len(bad)} non-finite row(s) among {len(rows)} read",
                         fix="re-extract the features of those samples (or drop them) and make the merged file and "
                         "its views again")

    def blocks(self, rows_per_block: int | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """``(start, float32 rows)`` over the view in order, a bounded block at a time."""
        step = rows_per_block or max(1, BLOCK_BYTES // max(1, self.width * 4))
        for start in range(0, len(self), step):
            yield start, self.gather(np.arange(start, min(start + step, len(self))))

    def materialize(self) -> torch.Tensor:
        """All rows in one tensor (for small sets; the streaming paths never call this)."""
        return self.gather(np.arange(len(self)))
