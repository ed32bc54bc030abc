"""A Hugging Face model directory's weights: which files hold them, their tensors' shapes, the state dict.

The hub ships a model's weights in one of four layouts. transformers reads the
first one present in this order, and so does every loader here (ESM-2 and
FastESM2 in :mod:`virnucpro_core.models.esm`, DNABERT-S in :mod:`virnucpro_core.models.dnabert`):

=================================  ==================================================================
``model.safetensors``              one safetensors file
``model.safetensors.index.json``   shards ``model-0000i-of-0000N.safetensors``, named by the index
``pytorch_model.bin``              one ``torch.save`` file
``pytorch_model.bin.index.json``   shards ``pytorch_model-0000i-of-0000N.bin``, named by the index
=================================  ==================================================================

An index is the hub's JSON object ``{"metadata": {...}, "weight_map": {tensor
name: shard file name}}`` (what ``save_pretrained`` writes for a model larger
than its ``max_shard_size``). Shapes come from the safetensors headers without
reading a tensor; a ``.bin`` has to be unpickled for them (memory-mapped, so its
tensors are not read either). Every ``.bin`` is read with ``torch.load(weights_only=True)``:
a pickle that names anything but tensors and containers is refused, and no
code in it runs.

Problems are :class:`~virnucpro_core.errors.InputError`\\ s that name the file:
an index that is not JSON or has no ``weight_map``, a shard it names that is
missing, a tensor in two shards, shards that do not hold what the index says,
a truncated or corrupt safetensors file, a ``.bin`` that is not a state dict.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.errors import InputError, WeightsNotFoundError
from virnucpro_core.input_files import path_problem
from virnucpro_core.pickles import _unsafe_global

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
BIN = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"
LAYOUTS = (SAFETENSORS, SAFETENSORS_INDEX, BIN, BIN_INDEX)  # in the order they are preferred
EXPECTED = (f"one of the hub's weight layouts: {SAFETENSORS} or {BIN}, or sharded: {SAFETENSORS_INDEX} or "
            f"{BIN_INDEX} with the shard files its weight_map names")
_INDEX_FORMAT = '{"metadata": {...}, "weight_map": {"tensor name": "shard file name", ...}}'


@dataclass(frozen=True)
class HubWeights:
    """The weight files of one model directory (:func:`find_weights`).

    Attributes:
        directory: the model directory.
        entry: the file that stands for the weights: one of :data:`LAYOUTS`.
        files: the files that hold tensors: the entry itself, or the shards its index names, sorted.
        weight_map: tensor name → shard file name, from the index (empty for a single file).
    """

    directory: Path
    entry: str
    files: tuple[Path, ...]
    weight_map: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The entry file (the index of a sharded checkpoint), for messages."""
        return self.directory / self.entry

    @property
    def sharded(self) -> bool:
        return self.entry in (SAFETENSORS_INDEX, BIN_INDEX)

    @property
    def is_safetensors(self) -> bool:
        return self.entry in (SAFETENSORS, SAFETENSORS_INDEX)

    def describe(self) -> str:
        """``…/model.safetensors`` or ``…/model.safetensors.index.json (3 shards)``."""
        return str(self.path) + (f" ({len(self.files)} shards)" if self.sharded else "")

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor's shape, as stored (prefixes kept), without reading the tensors."""
        if self.is_safetensors:
            per_file = {path: _safetensors_shapes(path) for path in self.files}
        else:
            per_file = {path: {key: tuple(value.shape) for key, value in _read_bin(path, "cpu", mmap=True).items()}
                        for path in self.files}
        self._check_shards({path: set(shapes) for path, shapes in per_file.items()})
        return {key: shape for shapes in per_file.values() for key, shape in shapes.items()}

    def state_dict(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Every tensor, read onto ``device``; the shards of a sharded checkpoint joined into one dict."""
        read = _read_safetensors if self.is_safetensors else _read_bin
        per_file = {path: read(path, device) for path in self.files}
        self._check_shards({path: set(tensors) for path, tensors in per_file.items()})
        return {key: tensor for tensors in per_file.values() for key, tensor in tensors.items()}

    def _check_shards(self, held: dict[Path, set[str]]) -> None:
        """The shards hold exactly what the index says, each tensor once; one error lists every disagreement."""
        if not self.sharded:
            return
        owners: dict[str, list[str]] = {}
        for path, keys in held.items():
            for key in keys:
                owners.setdefault(key, []).append(path.name)
        problems = [f"{key} in {' and '.join(sorted(files))}" for key, files in sorted(owners.items()) if len(files) > 1]
        twice = len(problems)
        for key, shard in sorted(self.weight_map.items()):
            if shard not in owners.get(key, []):
                where = f" (it is in {', '.join(owners[key])})" if key in owners else ""
                problems.append(f"the index puts {key} in {shard}, which does not hold it{where}")
        problems += [f"{files[0]} holds {key}, which the index does not list"
                     for key, files in sorted(owners.items()) if key not in self.weight_map]
        if problems:
            shown = "; ".join(problems[:12]) + (f"; ... ({len(problems) - 12} more)" if len(problems) > 12 else "")
            raise InputError(
                f"the shards of {self.path} do not hold what the index says"
                + (f": {twice} tensor(s) in two shards" if twice else ""),
                expected="each tensor in exactly one shard, the one the index's weight_map names",
                found=shown,
                fix="re-download the whole repository (index and every shard of one revision): "
                "`hf download <hub id> --local-dir DIR`",
            )


def find_weights(directory: str | os.PathLike, *, model: str = "model", hub_id: str | None = None) -> HubWeights:
    """The weights of a hub model directory, in transformers' order of preference (:data:`LAYOUTS`).

    An index is read and checked here (JSON, ``weight_map``, every shard it
    names present); the shards themselves are opened by :meth:`HubWeights.shapes`
    and :meth:`HubWeights.state_dict`.

    Args:
        directory: the model directory.
        model: the model's name for messages (``DNABERT-S``, ``ESM2 3B``...).
        hub_id: its hub repository, for the download command in a fix.

    Raises:
        WeightsNotFoundError: no weight file of any layout.
        InputError: an index that is not the hub's JSON, or names shards that are not there.
    """
    directory = Path(directory)
    download = f"`hf download {hub_id or '<hub id>'} --local-dir {directory}`"
    for entry in LAYOUTS:
        path = directory / entry
        if not path.is_file():
            continue
        if entry in (SAFETENSORS, BIN):
            return HubWeights(directory, entry, (path,))
        weight_map = _read_index(path, download)
        shards = sorted(set(weight_map.values()))
        missing = [name for name in shards if not (directory / name).is_file()]
        if missing:
            suffix = ".safetensors" if entry == SAFETENSORS_INDEX else ".bin"
            present = sorted(p.name for p in directory.iterdir() if p.name.endswith(suffix))
            raise InputError(
                f"{path} names {len(missing)} shard file(s) that are not in {directory}",
                expected=f"every shard the index names: {', '.join(shards)}",
                found=f"missing {', '.join(missing)}; present: {', '.join(present) or 'none'}",
                fix=f"finish the download (every shard of one revision): {download}",
            )
        return HubWeights(directory, entry, tuple(directory / name for name in shards), weight_map)
    present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    raise WeightsNotFoundError(
        f"no {model} weights in {directory}",
        expected=EXPECTED + ", beside config.json",
        found=", ".join(present) or "an empty directory",
        fix=f"download the whole repository on a machine with network: {download}",
    )


def _read_index(path: Path, download: str) -> dict[str, str]:
    """``weight_map`` of a hub index, checked: a JSON object whose weight_map names each tensor once."""
    twice: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:  # json.loads would keep the last of a repeated key without a word
            if key in seen and seen[key] != value:
                twice.append(f"{key} in {seen[key]} and {value}")
            seen[key] = value
        return seen

    def unusable(found: str) -> InputError:
        return InputError(
            f"{path} is not a usable sharded-checkpoint index",
            expected=f"the hub's index: {_INDEX_FORMAT}, each tensor in one shard",
            found=found,
            fix=f"re-download the repository's index and shards: {download}",
        )

    try:
        index = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=pairs)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise unusable(f"not JSON: {error}") from None
    if not isinstance(index, dict):
        raise unusable(f"a JSON {type(index).__name__}, not an object")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        what = ("no weight_map" if "weight_map" not in index else
                "an empty weight_map" if weight_map == {} else f"weight_map is a {type(weight_map).__name__}")
        raise unusable(f"{what} (keys: {', '.join(index) or 'none'})")
    names = [f"{key}: {value!r}" for key, value in weight_map.items()
             if not isinstance(value, str) or not value or Path(value).name != value]
    if names:
        raise unusable("weight_map values that are not file names in the index's directory: " + ", ".join(names[:5]))
    if twice:
        raise unusable(f"{len(twice)} tensor(s) in two shards: " + "; ".join(twice[:12]))
    return weight_map


# --------------------------------------------------------------------------- reading one file


def _safetensors_error(path: Path, error: Exception) -> InputError:
    kind = path_problem(path)
    if kind is not None:  # no permission, a link loop...: said as what it is, not as a download to redo
        return kind.error(path, expected="a readable safetensors weights file")
    size = path.stat().st_size if path.is_file() else 0
    return InputError(
        f"{path} is not a readable safetensors file (truncated or corrupt)",
        expected="a complete safetensors file: an 8-byte header length, a JSON header, then every tensor's bytes",
        found=f"{size:,} bytes; {type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}",
        fix="re-download this file (an interrupted download leaves it short): "
        "`hf download <hub id> --local-dir DIR`",
    )


def _safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    # safetensors is only needed when weights are read or written
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise _safetensors_error(path, error) from None


def _read_safetensors(path: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    # safetensors is only needed when weights are read or written
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path), device=str(device)))
    except (SafetensorError, OSError, ValueError) as error:
        raise _safetensors_error(path, error) from None


def _read_bin(path: Path, device: torch.device | str = "cpu", *, mmap: bool = False) -> dict[str, torch.Tensor]:
    """A ``torch.save``'d state dict, with ``weights_only=True``; ``mmap`` maps the tensors instead of reading them."""
    try:
        try:
            state = torch.load(path, map_location=device, weights_only=True, mmap=mmap)
        except RuntimeError as error:
            if not (mmap and "mmap" in str(error)):
                raise
            state = torch.load(path, map_location=device, weights_only=True)  # legacy (non-zip) format
    except Exception as error:  # zip, pickle and unpickler errors all mean "not a file we can read safely"
        kind = path_problem(path)
        if kind is not None:  # no permission, a link loop...: said as what it is, not as a download to redo
            raise kind.error(path, expected="a readable weights file") from None
        unsafe = _unsafe_global(str(error))
        raise InputError(
            f"{path} is not a readable weights file" + (" (it asks to run code, which is refused)" if unsafe else ""),
            expected="a torch.save'd state dict (parameter name -> tensor), readable with torch.load(weights_only=True)",
            found=unsafe or f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}",
            fix="re-download this file; never load weights of unknown origin with weights_only=False",
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        kinds = sorted({type(v).__name__ for v in state.values()}) if isinstance(state, dict) else []
        raise InputError(
            f"{path} is not a state dict",
            expected="a mapping of parameter names to tensors (as torch.save(model.state_dict()) writes)",
            found=type(state).__name__ + (f" of {', '.join(kinds)}" if kinds else ""),
            fix="re-download the model repository",
        )
    return dict(state)
