"""One model's calls on a test set (:class:`Predictions`): one row per frame, saved as JSON or ``.npz``.

The positive class is viral (label 1); host is 0. A frame's call is the arg-max
of the MLP's two logits (:func:`frame_calls`, the one softmax of the library);
a tie goes to host, as ``torch.max`` does in VirNucPro's ``prediction.py``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.files import atomic_path, atomic_write_text
from virnucpro_core.layouts.rows import id_set_sha256

VIRAL, HOST = 1, 0
PREDICTIONS_FORMAT = "virnucpro-predictions"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- small helpers


def _nan_to_none(value: Any) -> Any:
    """JSON has no NaN: write None, read it back as NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _to_numpy(values: Any) -> np.ndarray:
    """Arrays, lists or torch tensors (on any device) as a numpy array."""
    if hasattr(values, "detach"):  # torch.Tensor, without importing torch here
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def frame_calls(logits: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(p_viral, y_pred)`` of the MLP's ``[n, 2]`` logits: the softmax probability of class 1 in float64, and the
    arg-max (a tie is host, :data:`FRAME_RULE`). The one softmax of evaluation and prediction alike."""
    logits = _to_numpy(logits).astype(np.float64)
    return special.softmax(logits, axis=1)[:, VIRAL], np.argmax(logits, axis=1).astype(np.int64)


def ids_digest(ids: Sequence[str]) -> str:
    """SHA-256 of the sorted ids: identifies a test set regardless of sample order."""
    return id_set_sha256(ids)


# --------------------------------------------------------------------------- predictions


@dataclass
class Predictions:
    """One model's calls on a test set, one row per sample (frame).

    Attributes:
        ids: sample ids, unique.
        y_true: true class, int64 0 (host) / 1 (viral).
        p_viral: viral score, the softmax probability of class 1 (float64).
        y_pred: predicted class, int64 0 / 1 (see :data:`FRAME_RULE`).
        lengths: protein length of each sample in residues (int64).
        meta: free-form provenance: model, weights (``pretrained`` / ``random``),
            checkpoint, split id... Written to the file as is.

    File formats (chosen by suffix):

    * ``.json``: ``{"format": "virnucpro-predictions", "version": 1, "ids": [...],
      "y_true": [...], "p_viral": [...], "y_pred": [...], "lengths": [...],
      "meta": {...}}``; floats are written with full precision.
    * ``.npz`` (``numpy.savez_compressed``, loads without pickle): arrays
      ``ids`` (unicode), ``y_true``, ``p_viral``, ``y_pred``, ``lengths``, and
      0-d strings ``format``, ``version`` and ``meta`` (JSON text).
    """

    ids: list[str]
    y_true: np.ndarray
    p_viral: np.ndarray
    y_pred: np.ndarray
    lengths: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        self.y_true = _to_numpy(self.y_true).astype(np.int64, copy=False).reshape(-1)
        self.p_viral = _to_numpy(self.p_viral).astype(np.float64, copy=False).reshape(-1)
        self.y_pred = _to_numpy(self.y_pred).astype(np.int64, copy=False).reshape(-1)
        self.lengths = _to_numpy(self.lengths).astype(np.int64, copy=False).reshape(-1)
        self.meta = dict(self.meta or {})
        problems = []
        n = len(self.ids)
        for name in ("y_true", "p_viral", "y_pred", "lengths"):
            if len(getattr(self, name)) != n:
                problems.append(f"{name} has {len(getattr(self, name))} entries for {n} ids")
        if not problems:
            for name in ("y_true", "y_pred"):
                bad = sorted(set(np.unique(getattr(self, name)).tolist()) - {HOST, VIRAL})
                if bad:
                    problems.append(f"{name} holds values other than 0 (host) and 1 (viral): {bad[:5]}")
            non_finite = int((~np.isfinite(self.p_viral)).sum())
            outside = int(((self.p_viral < 0) | (self.p_viral > 1)).sum())
            if non_finite or outside:
                problems.append(f"p_viral holds {non_finite} NaN or infinite value(s) and {outside} outside [0, 1]; "
                                "it must be a probability per sample")
            if np.any(self.lengths < 0):
                problems.append("lengths holds negative values")
        duplicates = [i for i, count in pd.Series(self.ids).value_counts().items() if count > 1]
        if duplicates:
            problems.append(f"{len(duplicates)} duplicated ids, e.g. {', '.join(sorted(duplicates)[:5])}")
        if problems:
            raise InputError(
                "predictions are not consistent",
                expected="unique ids and, per id, a 0/1 y_true, a probability p_viral, a 0/1 y_pred and a length",
                found="; ".join(problems),
                fix="recreate the predictions with `virnucpro evaluate` from the checkpoint and the features",
            )

    @classmethod
    def from_logits(
        cls,
        ids: Sequence[str],
        logits: Any,
        y_true: Any,
        lengths: Any,
        meta: Mapping[str, Any] | None = None,
    ) -> Predictions:
        """Predictions from the MLP's ``[n, 2]`` logits (class 0 host, class 1 viral).

        ``p_viral`` is ``softmax(logits)[:, 1]``; ``y_pred`` the arg-max (a tie is
        host). Accepts numpy arrays, lists or torch tensors.

        Raises:
            DimensionError: logits are not ``[len(ids), 2]``.
        """
        logits = _to_numpy(logits).astype(np.float64)
        if logits.ndim != 2 or logits.shape[1] != 2 or logits.shape[0] != len(ids):
            raise DimensionError(
                "logits have the wrong shape",
                expected=f"[{len(ids)}, 2]: one row per id, columns host (0) and viral (1)",
                found=f"{list(logits.shape)}",
                fix="pass the MLP's raw outputs for the same samples, in the order of ids",
            )
        p_viral, y_pred = frame_calls(logits)
        return cls(
            ids=list(ids),
            y_true=y_true,
            p_viral=p_viral,
            y_pred=y_pred,
            lengths=lengths,
            meta=dict(meta or {}),
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def correct(self) -> np.ndarray:
        """Boolean per sample: the frame-level call is right."""
        return self.y_pred == self.y_true

    @property
    def ids_sha256(self) -> str:
        return ids_digest(self.ids)

    def take(self, ids: Sequence[str]) -> Predictions:
        """These predictions in the order of ``ids`` (which must all be present)."""
        index = {sample_id: row for row, sample_id in enumerate(self.ids)}
        rows = np.fromiter((index[i] for i in ids), dtype=np.int64, count=len(ids))
        return Predictions(list(ids), self.y_true[rows], self.p_viral[rows], self.y_pred[rows],
                           self.lengths[rows], dict(self.meta))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PREDICTIONS_FORMAT,
            "version": FORMAT_VERSION,
            "ids": list(self.ids),
            "y_true": self.y_true.tolist(),
            "p_viral": self.p_viral.tolist(),
            "y_pred": self.y_pred.tolist(),
            "lengths": self.lengths.tolist(),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "predictions") -> Predictions:
        if data.get("format") != PREDICTIONS_FORMAT:
            raise InputError(
                f"{where} is not a predictions file",
                expected=f"format {PREDICTIONS_FORMAT!r} (written by Predictions.save)",
                found=f"format {data.get('format')!r}",
                fix="pass the predictions file of the evaluate/predict step",
            )
        missing = [k for k in ("ids", "y_true", "p_viral", "y_pred", "lengths") if k not in data]
        if missing:
            raise InputError(f"{where} lacks {', '.join(missing)}",
                             expected="ids, y_true, p_viral, y_pred, lengths (and meta)",
                             found=", ".join(sorted(data)), fix="rewrite it with Predictions.save")
        try:
            return cls(list(data["ids"]), data["y_true"], data["p_viral"], data["y_pred"], data["lengths"],
                       dict(data.get("meta") or {}))
        except InputError as error:
            raise InputError(
                f"{where}: {error.problem}",
                expected=error.expected,
                found=error.found,
                fix="recreate the file with `virnucpro evaluate` (or `virnucpro predict`) from the checkpoint and "
                "features; a hand-edited or truncated file cannot be compared",
            ) from None
        except (TypeError, ValueError) as error:
            raise InputError(f"{where} holds values of the wrong type", expected="ids as strings; y_true, p_viral, "
                             "y_pred and lengths as lists of numbers", found=f"{type(error).__name__}: {error}",
                             fix="recreate the file with `virnucpro evaluate`") from None

    def save(self, path: str | Path) -> Path:
        """Write ``.json`` or ``.npz`` (by suffix) atomically."""
        path = Path(path)
        if path.suffix == ".json":
            atomic_write_text(path, json.dumps(self.to_dict(), separators=(",", ":")) + "\n")
        elif path.suffix == ".npz":
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as handle:  # a file object: savez would append ".npz" to a name
                    np.savez_compressed(
                        handle,
                        format=np.array(PREDICTIONS_FORMAT),
                        version=np.array(str(FORMAT_VERSION)),
                        ids=np.array(self.ids, dtype=str),
                        y_true=self.y_true,
                        p_viral=self.p_viral,
                        y_pred=self.y_pred,
                        lengths=self.lengths,
                        meta=np.array(json.dumps(self.meta, sort_keys=True)),
                    )
        else:
            raise InputError(f"cannot write predictions to {path}", expected="a .json or .npz file name",
                             found=repr(path.suffix), fix="name the file predictions.json or predictions.npz")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Predictions:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no predictions file at {path}", expected="a .json or .npz file from Predictions.save",
                             fix="check the path, or run the evaluate/predict step first")
        if path.suffix == ".json":
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as error:
                raise InputError(f"{path} is not valid JSON", found=str(error),
                                 fix="rewrite it with Predictions.save") from error
            return cls.from_dict(data, str(path))
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                data = {key: npz[key] for key in npz.files}
            data["format"] = str(data["format"]) if "format" in data else None
            data["meta"] = json.loads(str(data["meta"])) if "meta" in data else {}
            if "ids" in data:
                data["ids"] = data["ids"].tolist()
            return cls.from_dict(data, str(path))
        raise InputError(f"cannot read predictions from {path}", expected="a .json or .npz file",
                         found=repr(path.suffix))
