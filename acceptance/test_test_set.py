"""The test set: stratified 10 % per class, made once from the seed, shared by both embedders."""

from __future__ import annotations

import pytest

from virnucpro_core.preprocess.sequences import source_id
from virnucpro_core.split.ids import round_half_up
from virnucpro_core.split.make import make_split

# Train/test length distributions must not differ detectably (two-sample KS test). A seeded random
# split gives p roughly uniform, so this limit is also the false-alarm rate of a sound split: 0.1 %.
# A biased split (e.g. one class or one length range drawn from the file's start) with thousands of
# test samples gives p far below it.
MIN_KS_PVALUE = 0.001


def test_each_class_is_ten_percent(test_split):
    summary = test_split.summary
    for cls in summary.classes:
        expected = round_half_up(cls.full, summary.test_fraction)
        assert cls.test == expected, (
            f"{cls.name}: {cls.test} of {cls.full} samples in the test set, expected {expected} "
            f"({summary.rounding_rule})"
        )


def test_no_sample_in_both_train_and_test(test_split):
    manifest = test_split.manifest
    both = set(manifest.train.ids) & set(manifest.test.ids)
    assert not both, f"{len(both)} ids are in train and test, e.g. {sorted(both)[:5]}"


def test_split_reproduces_from_seed(test_split, run, tmp_path_factory):
    viral, host = run.merged("fast", "viral"), run.merged("fast", "host")
    again = make_split(viral, host, test_fraction=test_split.manifest.test_fraction, seed=test_split.manifest.seed,
                       out_dir=tmp_path_factory.mktemp("resplit"))
    assert again.paths.manifest.read_bytes() == test_split.paths.manifest.read_bytes(), (
        f"re-splitting with seed {test_split.manifest.seed} gave another manifest than {test_split.paths.manifest}"
    )


def test_length_distribution_matches_between_train_and_test(test_split):
    lengths = test_split.summary.lengths["all"]
    if lengths.full.n == 0:
        pytest.skip("protein lengths are not recorded in VirNucPro-layout feature files: no length comparison")
    assert lengths.ks_pvalue is not None and lengths.ks_pvalue >= MIN_KS_PVALUE, (
        f"protein lengths differ between train and test: KS statistic {lengths.ks_statistic}, "
        f"p = {lengths.ks_pvalue} < {MIN_KS_PVALUE} (train median {lengths.train.median}, "
        f"test median {lengths.test.median})"
    )


def test_leakage_is_measured_and_consistent(test_split):
    manifest, leakage = test_split.manifest, test_split.summary.leakage
    train_sources = {source_id(i) for i in manifest.train.ids}
    leaked = sum(source_id(i) in train_sources for i in manifest.test.ids)
    assert leakage.test_samples == len(manifest.test.ids)
    assert leakage.leaked_samples == leaked, (
        f"distribution.json reports {leakage.leaked_samples} leaked test samples, recount gives {leaked}"
    )


def test_both_embedders_share_the_test_set(test_split, baseline_split):
    fast, baseline = test_split.manifest, baseline_split.manifest
    assert fast.test.ids == baseline.test.ids and fast.train.ids == baseline.train.ids, (
        f"FastESM2 and ESM2 3B splits differ: {len(set(fast.test.ids) ^ set(baseline.test.ids))} test ids differ"
    )

