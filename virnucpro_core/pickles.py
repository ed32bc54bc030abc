"""``torch.save`` files read without running any code their pickle names.

A pickle is a program: ``torch.load(weights_only=False)`` (what the original
VirNucPro and the FastESM2 fork use) calls whatever it names, ``os.system``
included. This module reads such files in two steps:

1. :func:`pickled_globals` disassembles the pickle (``pickletools``; nothing is
   unpickled) and lists every class or function it names, so that a file
   naming anything unexpected is refused with that name before loading;
2. :func:`load_weights_only` runs ``torch.load(weights_only=True)``, torch's
   restricted unpickler, which only builds tensors and containers, with the
   classes a layout needs (e.g. the original's ``__main__.MLPClassifier``)
   mapped to inert :class:`PickledObject` placeholders that keep the pickled
   attributes and run nothing.

Step 2 is the gate: anything the scan cannot name (a damaged stream, an
opcode it does not follow) still meets torch's refusal.
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickletools
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.errors import InputError
from virnucpro_core.input_files import NOT_FOUND, path_problem

# Globals torch.save writes for tensors, parameters, dtypes and containers; torch.load(weights_only=True)
# allows these by default (see torch/_weights_only_unpickler.py, _get_allowed_globals).
_CONTAINER_GLOBALS = {"collections.OrderedDict", "collections.Counter", "builtins.set", "builtins.bytearray",
                      "builtins.complex", "_codecs.encode"}  # fmt: skip
_TORCH_GLOBALS = {"torch.Size", "torch.Tensor", "torch.device", "torch.nn.parameter.Parameter",
                  "torch.serialization._get_layout", "torch._tensor._rebuild_from_type_v2"}  # fmt: skip
_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
# A legacy (torch < 1.6) file starts with five pickles: magic number, protocol, sys info, the object, storage keys.
_LEGACY_PICKLES = 5
_LEGACY_SCAN_BYTES = 1 << 20


class PickledObject:
    """Inert stand-in for a class a pickle names; subclasses set :attr:`pickled_name`.

    Unpickling creates it with ``object.__new__`` and hands it the pickled
    attribute dict through :meth:`__setstate__`, which only stores it: no
    method of the real class runs, and the dict cannot set attributes.
    """

    pickled_name = ""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise TypeError(f"{self.pickled_name}: pickled state is a {type(state).__name__}, not a dict")
        self.__dict__["state"] = state

    @property
    def attributes(self) -> dict:
        """The pickled ``__dict__`` of the object."""
        return self.__dict__.get("state", {})


def is_tensor_global(name: str) -> bool:
    """Whether ``name`` is one of the globals torch.save writes for tensors, dtypes and containers."""
    if name in _CONTAINER_GLOBALS or name in _TORCH_GLOBALS:
        return True
    module, _, attr = name.rpartition(".")
    if module == "torch._utils":
        return attr.startswith("_rebuild_")
    # torch.__dict__, not getattr: torch's module __getattr__ imports submodules on demand.
    return module == "torch" and (attr.endswith("Storage") or isinstance(vars(torch).get(attr), torch.dtype))


def _python3_name(module: str, name: str) -> str:
    """``module.name`` as Python 3 resolves it (protocol-2 pickles say ``__builtin__``, ``commands``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    else:
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return f"{module}.{name}"


def _globals_in_stream(data: bytes) -> Iterator[str]:
    """Every global one pickle names, read by disassembly: nothing is unpickled or called."""
    pushed: list[Any] = []  # what the last two opcodes pushed: STACK_GLOBAL takes module and name from there
    memo: dict[int, Any] = {}
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("GLOBAL", "INST"):
            yield _python3_name(*arg.split(" ", 1))
        elif opcode.name == "STACK_GLOBAL":
            module, name = pushed[-2:] if len(pushed) == 2 else (None, None)
            named = isinstance(module, str) and isinstance(name, str)
            yield _python3_name(module, name) if named else "an unnamed global (STACK_GLOBAL)"
        elif opcode.name in _STRING_OPS:
            pushed.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
        elif opcode.name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
            memo[len(memo) if arg is None else arg] = pushed[-1] if pushed else None
        elif opcode.name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(arg))
        elif opcode.name not in ("PROTO", "FRAME"):
            pushed.append(None)
        del pushed[:-2]


def _streams(source: Path | bytes) -> tuple[list[bytes], bool]:
    where = io.BytesIO(source) if isinstance(source, bytes) else source
    if zipfile.is_zipfile(where):
        try:
            with zipfile.ZipFile(where) as archive:
                records = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
                return ([archive.read(records[0])] if records else []), True
        except (zipfile.BadZipFile, KeyError, EOFError):
            return [], True  # damaged: torch.load says why
    streams: list[bytes] = []
    if isinstance(source, bytes):
        raw = source[:_LEGACY_SCAN_BYTES]
    else:
        with open(source, "rb") as handle:
            raw = handle.read(_LEGACY_SCAN_BYTES)
    while raw and len(streams) < _LEGACY_PICKLES:
        try:
            end = max(pos for _, _, pos in pickletools.genops(raw)) + 1
        except Exception:  # not (or no longer) a pickle: the rest is storage bytes
            break
        streams.append(raw[:end])
        raw = raw[end:]
    return streams, False


def pickled_globals(path: str | Path | bytes) -> tuple[list[str], bool]:
    """Every class or function a ``torch.save`` file's pickle names, in order, without unpickling it.

    Reads ``data.pkl`` of the zip format (torch ≥ 1.6), else the pickles at the
    start of a legacy file. ``path`` may be the file's bytes, read before.

    Returns:
        The names as Python 3 resolves them (``posix.system``, ``builtins.eval``,
        ``subprocess.Popen``), and whether the file is in the zip format.
    """
    streams, is_zip = _streams(path if isinstance(path, bytes) else Path(path))
    names: list[str] = []
    for stream in streams:
        try:
            for name in _globals_in_stream(stream):
                if name not in names:
                    names.append(name)
        except Exception:  # damaged or truncated: torch.load will say why
            continue
    return names, is_zip


def load_weights_only(path: str | Path | bytes, placeholders: Iterable[type[PickledObject]] = ()) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU, each placeholder standing in for its pickled class.

    ``path`` may be the file's bytes, read before (then the file is not opened again).

    Raises:
        Exception: whatever torch raises for a file it will not read this way (see :func:`load_failure`).
    """
    allowed = [(cls, cls.pickled_name) for cls in placeholders]
    with torch.serialization.safe_globals(allowed):
        return torch.load(io.BytesIO(path) if isinstance(path, bytes) else path, map_location="cpu",
                          weights_only=True)


# Lines of torch's weights_only error that are advice, not the reason (the advice is to trust the file).
_TORCH_ADVICE = ("Weights only load failed", "(1)", "(2)", "Please file an issue", "Check the documentation")
_MARKER = "WeightsUnpickler error:"


def load_failure(error: BaseException) -> str:
    """One line saying why torch refused a file: its restricted unpickler's reason, without the advice text."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    marked = [line.split(_MARKER, 1)[1].strip() for line in lines if _MARKER in line]
    reasons = marked or [line for line in lines if not line.startswith(_TORCH_ADVICE)] or lines
    reason = reasons[0].split(" Please use ", 1)[0] if reasons else ""
    return f"{type(error).__name__}: {reason}" if reason else type(error).__name__


def torch_load(path: str | os.PathLike, what: str, *, mmap: bool = False) -> Any:
    """``torch.load(weights_only=True)`` of a feature file, with one clear error for anything unreadable.

    ``mmap=True`` maps tensors instead of reading them (a file of the old
    non-zip format is then read whole). A file that asks the unpickler for
    anything but tensors and plain values is refused here, before it can run.
    """
    path = Path(path)
    kind = path_problem(path)
    if kind is NOT_FOUND:
        raise InputError(f"{what} file not found: {path}", fix="run `virnucpro extract` / `virnucpro merge` first, "
                         "or fix the path")
    if kind is not None:  # a directory, a pipe, a link loop or dangling link, no permission: said as what it is
        raise kind.error(path, expected=f"a {what} file (.pt)")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as error:
            if mmap and "mmap" in str(error):  # legacy (non-zip) torch.save format
                return torch.load(path, map_location="cpu", weights_only=True)
            raise
    except Exception as error:  # pickle, zip and unpickler errors all mean "not a file we can read safely"
        first = str(error).splitlines()[0] if str(error) else ""
        unsafe = _unsafe_global(str(error))
        raise InputError(
            f"{path} is not a readable {what} file" + (" (it asks to run code, which is refused)" if unsafe else ""),
            expected="a torch.save'd dict of tensors, lists and plain values (virnucpro-accept's or VirNucPro's "
            "layouts), readable with torch.load(weights_only=True)",
            found=unsafe or f"{type(error).__name__}: {first}",
            fix="re-create it with `virnucpro extract` / `virnucpro merge`; never load a file of unknown origin "
            "with weights_only=False",
        ) from None


def _unsafe_global(message: str) -> str | None:
    """The object a refused pickle asked for, from torch's weights-only unpickler message."""
    found = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)", message, re.IGNORECASE)
    return f"the file asks the unpickler for {found.group(1)}, which is not tensors or plain data" if found else None
