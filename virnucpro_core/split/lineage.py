"""Lineage: which split a classifier was trained on, recorded in its checkpoint and checked wherever it is judged.

A checkpoint trained by ``virnucpro train`` records its :class:`Lineage`: the
split id of its training view, the SHA-256 of that view and of the test view
beside it, and a digest of every training id (the validation carve-out
included: those samples shaped the weights too). :func:`check_lineage` is what
``evaluate`` (and the acceptance suite) run before a checkpoint is judged on a
test set: the checkpoint must come from the test view's split. When it does
not, the test ids that were in its training set are counted (from its training
view, when that is still where it was recorded) and the evaluation is refused,
naming both splits, the count and a few ids; ``--allow-other-split`` evaluates
anyway, and every report then says so (the :class:`LineageCheck` travels in the
predictions' meta). ``compare`` refuses predictions that were not checked this
way, or whose classifiers come from different splits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from virnucpro_core.custody import digest
from virnucpro_core.errors import InputError
from virnucpro_core.paths import SplitPaths
from virnucpro_core.pickles import torch_load
from virnucpro_core.layouts.rows import id_set_sha256

#: The option that evaluates a checkpoint on a test set of another split anyway.
ALLOW_OPTION = "--allow-other-split"
_SHOW = 5


@dataclass(frozen=True)
class Lineage:
    """What a classifier was trained on.

    Attributes:
        split_id: the split of its training view (None: features that are no split's training side).
        manifest_sha256: that split's manifest, as the view records it.
        train_view: the training file's absolute path when it was trained (to count overlaps later).
        train_view_sha256: that file's SHA-256 (None when trained from features in memory).
        test_view_sha256: the SHA-256 of the same split's ``test.pt`` beside it, when there is one.
        train_ids_sha256: SHA-256 of every training id, sorted (:func:`~virnucpro_core.layouts.rows.id_set_sha256`).
        train_samples: how many ids that is.
    """

    split_id: str | None
    manifest_sha256: str | None
    train_view: str | None
    train_view_sha256: str | None
    test_view_sha256: str | None
    train_ids_sha256: str
    train_samples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Lineage | None:
        """The lineage :meth:`to_dict` wrote, or None (a checkpoint that records none: another layout, an older
        version)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("train_ids_sha256"), str):
            return None
        try:
            return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})
        except TypeError:
            return None

    def describe(self) -> str:
        where = f" ({self.train_view})" if self.train_view else ""
        split = f"split {self.split_id[:12]}" if self.split_id else "features that are no split's training side"
        return f"trained on {split}{where}, {self.train_samples:,} samples"


def training_lineage(ids: Sequence[str], meta: Mapping[str, Any], path: str | Path | None) -> Lineage:
    """The lineage of a classifier trained on ``ids`` with ``meta``, read from the file ``path`` (None: in memory)."""
    split = meta.get("split") if isinstance(meta.get("split"), Mapping) else {}
    test_sha = None
    if path is not None:
        path = Path(path).resolve()
        test = SplitPaths(path.parent).test
        if split.get("split_id") and test.is_file() and test != path and _split_of(test) == split.get("split_id"):
            test_sha = digest(test)
    return Lineage(
        split_id=split.get("split_id"),
        manifest_sha256=split.get("manifest_sha256"),
        train_view=str(path) if path is not None else None,
        train_view_sha256=digest(path) if path is not None else None,
        test_view_sha256=test_sha,
        train_ids_sha256=id_set_sha256(ids),
        train_samples=len(ids),
    )


def _split_of(view: Path) -> str | None:
    obj = torch_load(view, "split view", mmap=True)
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    split = meta.get("split") if isinstance(meta, Mapping) else None
    return split.get("split_id") if isinstance(split, Mapping) else None


@dataclass(frozen=True)
class LineageCheck:
    """How a checkpoint's lineage compared with the test set it was evaluated on.

    Attributes:
        matched: the checkpoint was trained on the test view's split.
        checkpoint_split: its training split id (None: not recorded, or no split).
        test_split: the test view's split id (None: the features are no split's test side).
        overlap: test ids that were in the checkpoint's training set (0 when the splits match; None: not countable).
        examples: a few of them.
        allowed: evaluated anyway (``--allow-other-split``) although not ``matched``.
        reason: why it did not match ("" when it did).
    """

    matched: bool
    checkpoint_split: str | None
    test_split: str | None
    overlap: int | None = 0
    examples: list[str] = field(default_factory=list)
    allowed: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> LineageCheck | None:
        """The check :meth:`to_dict` wrote, or None (predictions written before lineage was checked)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("matched"), bool):
            return None
        try:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})
        except TypeError:
            return None

    def warning(self) -> str:
        """What every report says of an evaluation that was allowed despite its lineage."""
        return (f"evaluated with {ALLOW_OPTION}: {self.reason}; {_overlap_text(self)} — these figures do not "
                "measure the classifier on unseen samples")


def _overlap_text(check: LineageCheck) -> str:
    if check.overlap is None:
        return "how many test samples it was trained on could not be counted"
    if not check.overlap:
        return "none of the test samples is in its training set"
    shown = ", ".join(check.examples)
    return f"{check.overlap:,} test sample(s) were in its training set (e.g. {shown})"


def _training_ids(lineage: Lineage) -> tuple[set[str] | None, str]:
    """The checkpoint's training ids from its training view, when that is still the recorded file; else why not."""
    if not lineage.train_view:
        return None, "it was trained from features in memory"
    view = Path(lineage.train_view)
    if not view.is_file():
        return None, f"its training file {view} is no longer there"
    if lineage.train_view_sha256 and digest(view) != lineage.train_view_sha256:
        return None, f"its training file {view} changed since"
    obj = torch_load(view, "training view", mmap=True)
    return set(obj["ids"]) if isinstance(obj, Mapping) and isinstance(obj.get("ids"), list) else None, ""


def check_lineage(lineage: Lineage | None, origin: str, test_meta: Mapping[str, Any], test_ids: Sequence[str],
                  *, test_name: str, allow: bool = False) -> LineageCheck:
    """Whether a checkpoint (``lineage``; ``origin`` names it) may be judged on the test set ``test_ids``.

    Raises:
        InputError: the checkpoint's training split is not the test view's split (or either is unknown), naming
            both, with how many test ids were in its training set; unless ``allow``, which returns the check
            with ``allowed`` set for the reports.
    """
    split = test_meta.get("split") if isinstance(test_meta.get("split"), Mapping) else {}
    test_split = split.get("split_id") if split.get("side") == "test" else None
    checkpoint_split = lineage.split_id if lineage is not None else None
    if lineage is not None and test_split and checkpoint_split == test_split:
        return LineageCheck(True, checkpoint_split, test_split)
    if lineage is None:
        reason = ("the checkpoint records no training split (another layout, such as the original VirNucPro's, "
                  "or written before virnucpro train recorded it)")
    elif not test_split:
        reason = f"{test_name} is not the test side of a split, so it cannot be shown to hold unseen samples"
    else:
        reason = f"the checkpoint was {lineage.describe()}, but {test_name} is the test set of split {test_split[:12]}"
    overlap, examples = None, []
    trained, why_not = _training_ids(lineage) if lineage is not None else (None, "")
    if trained is not None:
        shared = sorted(i for i in test_ids if i in trained)
        overlap, examples = len(shared), shared[:_SHOW]
    check = LineageCheck(False, checkpoint_split, test_split, overlap, examples, allow, reason)
    if allow:
        return check
    counted = _overlap_text(check) + (f" ({why_not})" if why_not else "")
    raise InputError(
        f"{origin} cannot be judged on {test_name}: {reason}",
        expected="a checkpoint trained on the training side of the test set's split (`virnucpro train` on its "
        "train.pt), so that no test sample was seen in training",
        found=counted,
        fix=f"evaluate the checkpoint on the test.pt of the split it was trained on, or train on this split's "
        f"train.pt; {ALLOW_OPTION} evaluates it anyway, and every report then says so",
    )
