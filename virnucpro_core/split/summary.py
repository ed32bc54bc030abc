"""A split's summary: per-class sample lists and the statistics of its test and training sets."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from virnucpro_core.split.ids import CLASS_LABELS, chunk_of, round_half_up, source_of
from virnucpro_core.split.records import (
    ClassSplit,
    Duplicates,
    LengthComparison,
    LengthHistogram,
    Leakage,
    SampleList,
    SourceCount,
    SplitManifest,
    SplitSummary,
)


def _sample_list(ids: Sequence[str], labels_by_id: Mapping[str, int]) -> SampleList:
    ordered = sorted(ids)
    return SampleList(ordered, [labels_by_id[i] for i in ordered], [source_of(i) for i in ordered])


def summarize(manifest: SplitManifest, lengths_by_id: Mapping[str, int]) -> SplitSummary:
    """Class counts, length distributions, per-source counts and leakage of a split."""
    train, test = manifest.train, manifest.test
    n_all, n_train, n_test = len(train) + len(test), len(train), len(test)
    classes = []
    for name in ("viral", "host"):
        label = CLASS_LABELS[name]
        tr = train.labels.count(label)
        te = test.labels.count(label)
        full = tr + te
        classes.append(
            ClassSplit(
                name=name,
                label=label,
                full=full,
                train=tr,
                test=te,
                ratio_full=round(full / n_all, 10) if n_all else 0.0,
                ratio_train=round(tr / n_train, 10) if n_train else 0.0,
                ratio_test=round(te / n_test, 10) if n_test else 0.0,
                target_test=round_half_up(full, manifest.test_fraction),
                test_fraction_achieved=round(te / full, 10) if full else 0.0,
            )
        )

    def lengths(side: SampleList, label: int | None) -> np.ndarray:
        # 0 is "not recorded" (features imported from VirNucPro's files): left out of the distributions.
        return np.array(
            [lengths_by_id[i] for i, lab in zip(side.ids, side.labels, strict=True)
             if (label is None or lab == label) and lengths_by_id[i] > 0],
            dtype=np.int64,
        )

    histogram = LengthHistogram.of(lengths(train, None), lengths(test, None))
    comparisons = {}
    for key, label in (("all", None), ("viral", 1), ("host", 0)):
        tr, te = lengths(train, label), lengths(test, label)
        comparisons[key] = LengthComparison.of(np.concatenate([tr, te]), tr, te)

    train_sources = Counter(train.sources)
    test_sources = Counter(test.sources)
    label_of_source = dict(zip(train.sources + test.sources, train.labels + test.labels, strict=True))
    sources = [
        SourceCount(s, label_of_source[s], train_sources[s] + test_sources[s], train_sources[s], test_sources[s])
        for s in sorted(label_of_source, key=lambda s: (-label_of_source[s], s))
    ]
    leaked = [s for s in test.sources if s in train_sources]
    train_chunks = {chunk_of(i) for i in train.ids}
    chunk_leaked = sum(1 for i in test.ids if chunk_of(i) in train_chunks)
    leakage = Leakage(
        test_samples=n_test,
        leaked_samples=len(leaked),
        fraction=round(len(leaked) / n_test, 10) if n_test else 0.0,
        leaked_sources=len(set(leaked)),
        chunk_leaked_samples=chunk_leaked,
        chunk_fraction=round(chunk_leaked / n_test, 10) if n_test else 0.0,
    )
    return SplitSummary(
        split_id=manifest.split_id,
        seed=manifest.seed,
        group_by=manifest.group_by,
        test_fraction=manifest.test_fraction,
        rounding_rule=manifest.rounding_rule,
        features=manifest.features,
        classes=classes,
        lengths=comparisons,
        leakage=leakage,
        sources=sources,
        length_histogram=histogram,
    )


def duplicate_rows(features, manifest: SplitManifest, max_examples: int = 5) -> Duplicates:
    """Count identical feature rows of ``features`` (a :class:`~virnucpro_core.layouts.features.MergedRows`):
    within each class, across the classes (label conflicts) and across the split's sides (test rows equal to
    training rows). Rows are read a block at a time and kept as 16-byte digests, so memory grows with the
    sample count, not the width."""
    ids, labels = list(features["ids"]), features["labels"].tolist()
    digests: list[bytes] = []
    for _, block in features.rows.blocks():
        array = np.ascontiguousarray(block.numpy(), dtype=np.float32)
        digests += [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in array]
    train = set(manifest.train.ids)
    by_class: dict[int, Counter] = {label: Counter() for label in CLASS_LABELS.values()}
    first_of: dict[tuple[bytes, int], str] = {}
    in_training: set[bytes] = set()
    for sample, label, digest in zip(ids, labels, digests, strict=True):
        by_class[label][digest] += 1
        first_of.setdefault((digest, label), sample)
        if sample in train:
            in_training.add(digest)
    viral, host = by_class[CLASS_LABELS["viral"]], by_class[CLASS_LABELS["host"]]
    conflicts = [d for d in viral if d in host]
    return Duplicates(
        within_class={name: sum(by_class[label].values()) - len(by_class[label])
                      for name, label in CLASS_LABELS.items()},
        conflicting_vectors=len(conflicts),
        conflicting_samples=sum(viral[d] + host[d] for d in conflicts),
        conflict_examples=[[first_of[(d, CLASS_LABELS["viral"])], first_of[(d, CLASS_LABELS["host"])]]
                           for d in conflicts[:max_examples]],
        test_identical_to_training=sum(1 for sample, digest in zip(ids, digests, strict=True)
                                       if sample not in train and digest in in_training),
        test_samples=len(manifest.test.ids),
    )
