"""What may be compared with what: both predictions files come from the models they claim, from two classifiers
trained on one split, each evaluated on that split's test set, on the identical samples.

Every check reads what a predictions (or metrics) file records of itself (its ``meta``): the protein model, the
checkpoint, the split of its test features, and the lineage check made at evaluation
(:mod:`virnucpro_core.split.lineage`). Each refusal is one :class:`~virnucpro_core.errors.InputError` naming both
files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from virnucpro_core.errors import InputError
from virnucpro_core.evaluate.predictions import Predictions
from virnucpro_core.split.lineage import LineageCheck

_SHOW = 5  # ids named in an error message

FAST_MODEL, BASELINE_MODEL = "fastesm2_650", "esm2_3b"


def _entry(meta: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested provenance entry (``checkpoint``, ``split``), or ``{}`` when the file has none."""
    value = meta.get(key)
    return value if isinstance(value, Mapping) else {}


def describe_origin(meta: Mapping[str, Any]) -> str:
    """What a predictions file says it is: protein model, checkpoint, features file, split."""
    checkpoint, split = _entry(meta, "checkpoint"), _entry(meta, "split")
    parts = [f"protein model {meta.get('model') or 'not recorded'}"]
    if checkpoint.get("path"):
        parts.append(f"checkpoint {Path(str(checkpoint['path'])).name} (sha256 {str(checkpoint.get('sha256'))[:12]})")
    if meta.get("features_file"):
        parts.append(f"features {meta['features_file']}")
    if split.get("split_id"):
        parts.append(f"split {str(split['split_id'])[:12]} ({split.get('side')} side)")
    return ", ".join(parts)


def check_roles(meta: Mapping[str, Any], role: str, expected: str) -> None:
    """Predictions given as ``role`` must come from that model, when the file says which (older files may not)."""
    model = meta.get("model")
    if model is not None and model != expected:
        other = "--baseline" if role == "fast" else "--fast"
        raise InputError(
            f"the {role} predictions come from {model}, not {expected}",
            expected=f"--{role} predictions of {expected} (FastESM2_650 as --fast, ESM2 3B as --baseline)",
            found=describe_origin(meta),
            fix=f"swap the files if they were given the wrong way round (this file belongs to {other}), "
            f"or predict with the {expected} checkpoint",
        )


def check_pair(fast: Mapping[str, Any], baseline: Mapping[str, Any]) -> None:
    """Two different models' predictions on the test side of one split: not one file twice, not two test sets."""
    problems = []
    fast_sha = _entry(fast, "checkpoint").get("sha256")
    if fast_sha and fast_sha == _entry(baseline, "checkpoint").get("sha256"):
        problems.append("both were made by the same checkpoint (the same predictions given twice?)")
    splits = [_entry(m, "split") for m in (fast, baseline)]
    ids = [s.get("split_id") for s in splits]
    if all(ids) and ids[0] != ids[1]:
        problems.append(f"they come from different splits ({ids[0][:12]} and {ids[1][:12]})")
    sides = {s.get("side") for s in splits if s.get("side")}
    if sides - {"test"}:
        problems.append(f"predictions on the {' and '.join(sorted(sides - {'test'}))} side, not the test set")
    if problems:
        raise InputError(
            "the two predictions files cannot be compared: " + "; ".join(problems),
            expected="FastESM2_650 and ESM2 3B checkpoints, each predicted on the test.pt of one shared split",
            found=f"fast: {describe_origin(fast)}; baseline: {describe_origin(baseline)}",
            fix="run `virnucpro evaluate` with each model's checkpoint on its own split's test.pt "
            "(`virnucpro split --manifest` applies one split to both embedders)",
        )


def check_lineage(metas: Mapping[str, Mapping[str, Any]], what: Mapping[str, str]) -> None:
    """Both classifiers were trained on the split whose test set they were evaluated on, and on one split.

    ``metas``: each role's predictions or metrics meta; ``what``: how to name each role's file. The lineage check
    :func:`~virnucpro_core.split.lineage.check_lineage` recorded there at evaluation decides: a file without one
    (written by hand, or before lineage was checked) or evaluated with ``--allow-other-split`` is refused.
    """
    problems, splits = [], {}
    for role, meta in metas.items():
        check = LineageCheck.from_dict(meta.get("lineage"))
        if check is None:
            problems.append(f"{what[role]} records no lineage check, so which split its classifier was trained on "
                            "is unknown (written by hand, or by a version before lineage was recorded)")
        elif not check.matched:
            problems.append(f"{what[role]}: {check.warning()}")
        else:
            splits[role] = check.checkpoint_split
    if len(set(splits.values())) > 1:
        problems.append("the two classifiers were trained on different splits: "
                        + " and ".join(f"{what[role]} on split {str(split)[:12]}" for role, split in splits.items()))
    if problems:
        raise InputError(
            "the two classifiers cannot be compared: " + "; ".join(problems),
            expected="FastESM2_650 and ESM2 3B classifiers trained on the training side of one split and each "
            "evaluated on its test set by `virnucpro evaluate` (which checks and records that lineage)",
            found="; ".join(f"{role}: {describe_origin(meta)}" for role, meta in metas.items()),
            fix="train each model on one split's train.pt (`virnucpro split --manifest` applies a split to both "
            "embedders), evaluate each on that split's test.pt, then compare",
        )


def align(fast: Predictions, baseline: Predictions) -> Predictions:
    """The baseline in the fast predictions' order; one error listing every mismatch."""
    fast_ids, base_ids = set(fast.ids), set(baseline.ids)
    problems = []
    only_fast, only_base = sorted(fast_ids - base_ids), sorted(base_ids - fast_ids)
    if only_fast:
        problems.append(f"{len(only_fast)} id(s) only in the FastESM2 predictions, e.g. {', '.join(only_fast[:_SHOW])}")
    if only_base:
        problems.append(f"{len(only_base)} id(s) only in the baseline predictions, e.g. {', '.join(only_base[:_SHOW])}")
    if not problems:
        baseline = baseline.take(fast.ids)
        ids = np.asarray(fast.ids)
        for name in ("y_true", "lengths"):
            differ = ids[getattr(fast, name) != getattr(baseline, name)].tolist()
            if differ:
                problems.append(f"{len(differ)} id(s) with a different {name}, e.g. {', '.join(differ[:_SHOW])}")
    if problems:
        raise InputError(
            "FastESM2 and baseline predictions are not on the identical test samples",
            expected=f"the same {len(fast)} ids with the same labels and protein lengths in both files",
            found="; ".join(problems),
            fix="predict both models on the test split of one `virnucpro split` (the split is shared by id), "
            "or pass the baseline as --baseline-metrics if its predictions are unavailable",
        )
    return baseline
