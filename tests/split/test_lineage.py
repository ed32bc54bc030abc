"""Lineage: a classifier is judged only on the test set of the split it was trained on (evaluate, compare, suite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.split.test_make import HOST_SOURCES, VIRAL_SOURCES, merged
from virnucpro_core.evaluate.predictions import Predictions
from virnucpro_core.layouts.checkpoints import load_checkpoint
from virnucpro_core.split.lineage import Lineage, LineageCheck
from virnucpro_core.split.make import apply_split, make_split
from virnucpro_core.train.results import TrainingConfig
from virnucpro_core.train.training import train_classifier

ROOT = Path(__file__).resolve().parents[2]
CONFIG = TrainingConfig(max_epochs=2, patience=1, seed=42)


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, Path]:
    """Two splits (seeds 42 and 7) of the same FastESM2 and ESM2 3B features, and a classifier of each model on
    each split's training side."""
    root = tmp_path_factory.mktemp("lineage")
    files = {}
    for model, seeds in (("fastesm2_650", (1, 2)), ("esm2_3b", (1, 2))):  # the same samples: the same lengths
        for label, sources, seed in (("viral", VIRAL_SOURCES, seeds[0]), ("host", HOST_SOURCES, seeds[1])):
            files[model, label] = root / f"{label}_{model}.pt"
            torch.save(merged(sources, int(label == "viral"), seed=seed, protein_model=model), files[model, label])
    out = {}
    for seed in (42, 7):
        fast = make_split(files["fastesm2_650", "viral"], files["fastesm2_650", "host"], seed=seed,
                          out_dir=root / f"fast{seed}")
        apply_split(fast.manifest, files["esm2_3b", "viral"], files["esm2_3b", "host"], out_dir=root / f"base{seed}")
        for embedder in ("fast", "base"):
            out[f"{embedder}{seed}"] = root / f"{embedder}{seed}"
            train_classifier(root / f"{embedder}{seed}" / "train.pt", CONFIG).save(root / f"{embedder}{seed}.pt")
    return out


def _evaluate(run_cli, model: Path, test: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(["evaluate", "--model", str(model), "--features", str(test), "--out", str(out),
                    "--n-bootstrap", "0", *extra])


def test_a_checkpoint_records_the_split_and_views_it_was_trained_on(splits):
    lineage = Lineage.from_dict(load_checkpoint(splits["fast42"].with_suffix(".pt")).meta.lineage)
    train = torch.load(splits["fast42"] / "train.pt", weights_only=True)
    assert lineage.split_id == train["meta"]["split"]["split_id"]
    assert lineage.train_view == str((splits["fast42"] / "train.pt").resolve())
    assert lineage.test_view_sha256 is not None and lineage.train_samples == len(train["ids"])


def test_a_checkpoint_of_another_split_is_refused_with_the_overlap_counted(splits, run_cli, tmp_path):
    other, test = splits["fast7"].with_suffix(".pt"), splits["fast42"] / "test.pt"
    code, out, err = _evaluate(run_cli, other, test, tmp_path / "p.json")
    assert code == 2 and "Traceback" not in err, err
    seven = json.loads((splits["fast7"] / "manifest.json").read_text())
    fortytwo = json.loads((splits["fast42"] / "manifest.json").read_text())
    shared = sorted(set(seven["train"]["ids"]) & set(fortytwo["test"]["ids"]))
    assert shared, "seed 7's training side holds most of seed 42's test set"
    for words in (seven["split_id"][:12], fortytwo["split_id"][:12], f"{len(shared)} test sample(s) were in its "
                  f"training set (e.g. {shared[0]}", "--allow-other-split"):
        assert words in err, err
    assert not (tmp_path / "p.json").exists()

    code, out, err = _evaluate(run_cli, other, test, tmp_path / "p.json", "--allow-other-split")
    assert code == 0, err
    assert "WARNING: evaluated with --allow-other-split" in out and f"{len(shared)} test sample(s)" in out
    check = LineageCheck.from_dict(Predictions.load(tmp_path / "p.json").meta["lineage"])
    assert not check.matched and check.allowed and check.overlap == len(shared)


def test_compare_passes_only_classifiers_of_the_test_sets_split(splits, run_cli, tmp_path):
    for name in ("fast42", "base42", "fast7", "base7"):
        test = splits[name.replace("7", "42")] / "test.pt" if name.endswith("7") else splits[name] / "test.pt"
        extra = ["--allow-other-split"] if name.endswith("7") else []
        assert _evaluate(run_cli, splits[name].with_suffix(".pt"), test, tmp_path / f"{name}.json", *extra)[0] == 0
    same = ["compare", "--fast", str(tmp_path / "fast42.json"), "--baseline", str(tmp_path / "base42.json"),
            "--n-bootstrap", "0", "--out", str(tmp_path / "ok")]
    code, out, err = run_cli(same)
    assert code in (0, 1), f"one split: the gate decides\n{err}"
    code, out, err = run_cli(["compare", "--fast", str(tmp_path / "fast7.json"), "--baseline",
                              str(tmp_path / "base42.json"), "--n-bootstrap", "0", "--out", str(tmp_path / "no")])
    assert code == 2 and "PASS" not in out and "the two classifiers cannot be compared" in err, out + err
    assert "--allow-other-split" in err and not (tmp_path / "no").exists()


def test_baseline_metrics_of_a_classifier_of_another_split_are_refused(splits, run_cli, tmp_path):
    fast, test = splits["fast42"], splits["base42"] / "test.pt"
    assert _evaluate(run_cli, fast.with_suffix(".pt"), fast / "test.pt", tmp_path / "fast.json")[0] == 0
    assert _evaluate(run_cli, splits["base7"].with_suffix(".pt"), test, tmp_path / "b.json", "--allow-other-split",
                     "--metrics-out", str(tmp_path / "base_metrics.json"))[0] == 0
    code, out, err = run_cli(["compare", "--fast", str(tmp_path / "fast.json"), "--baseline-metrics",
                              str(tmp_path / "base_metrics.json"), "--n-bootstrap", "0", "--out", str(tmp_path / "c")])
    assert code == 2 and "the baseline metrics" in err and "--allow-other-split" in err, err


OTHER_SPLIT_METRICS = """
import sys
from pathlib import Path
from virnucpro_core.cli import main
from virnucpro_core.split.make import apply_split, make_split
from virnucpro_core.train.results import TrainingConfig
from virnucpro_core.train.training import train_classifier

artifacts, work = Path(sys.argv[1]), Path(sys.argv[2])
viral, host = sorted(artifacts.glob("merged/baseline-viral-*/merged.pt"))[0], sorted(artifacts.glob("merged/baseline-host-*/merged.pt"))[0]
test = sorted(artifacts.glob("split/baseline-*/test.pt"))[0]
seven = make_split(viral, host, seed=7, out_dir=work / "seven")
train_classifier(seven.paths.train, TrainingConfig(max_epochs=2, patience=1)).save(work / "base7.pt")
sys.exit(main(["evaluate", "--model", str(work / "base7.pt"), "--features", str(test), "--out", str(work / "p.json"),
               "--metrics-out", str(work / "metrics.json"), "--allow-other-split", "--n-bootstrap", "0"]))
"""


@pytest.mark.slow
def test_the_suite_is_an_error_never_a_pass_with_baseline_metrics_of_another_split(smoke_copy, tmp_path):
    artifacts = smoke_copy(tmp_path / "artifacts")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not list(artifacts.glob("split/baseline-*/test.pt")):  # tests/ alone, without make test's smoke run first
        subprocess.run([sys.executable, "-m", "pytest", "acceptance/", "-q", "-p", "no:cacheprovider", "--artifacts",
                        str(artifacts), "--html", str(tmp_path / "first" / "acceptance.html"), "-k", "accuracy"],
                       cwd=ROOT, env=env, capture_output=True, check=False, timeout=900)
    made = subprocess.run([sys.executable, "-c", OTHER_SPLIT_METRICS, str(artifacts), str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stdout + made.stderr
    run = subprocess.run([sys.executable, "-m", "pytest", "acceptance/", "-q", "-p", "no:cacheprovider",
                          "--artifacts", str(artifacts), "--html", str(tmp_path / "reports" / "acceptance.html"),
                          "--baseline-metrics", str(tmp_path / "metrics.json"), "-k", "accuracy"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    verdict = json.loads((tmp_path / "reports" / "acceptance.json").read_text())["verdict"]
    assert run.returncode == 12 and verdict["status"] == "ERROR", run.stdout[-3000:] + run.stderr[-2000:]
    assert "the two classifiers cannot be compared" in run.stdout and "--allow-other-split" in run.stdout
