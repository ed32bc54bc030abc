"""Every command that loads a checkpoint (`virnucpro evaluate`, `virnucpro predict` with INPUT or --features)
reads all three layouts through the one loader, and refuses hostile pickles with one message, no traceback,
exit 2 and nothing run.

Original-layout files come from the session fixture ``original_checkpoints``
(the original's own class run as ``__main__``, see ``checkpoint_files``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.checkpoint_files import PAYLOADS, TINY, WHERE, appears, fork_checkpoint, hostile_file, run_original
from virnucpro_core.models.classifier import CheckpointMeta, MLPClassifier
from virnucpro_core.layouts.features import MergedFeatures
from virnucpro_core.errors import DimensionError
from virnucpro_core.files import sha256_file
from virnucpro_core.layouts.checkpoints import fit_checkpoint, load_checkpoint, save_checkpoint
from virnucpro_core.layouts.foreign_checkpoints import FORK, LAYOUTS, ORIGINAL, OURS
from virnucpro_core.evaluate.predictions import Predictions
from virnucpro_core.models.specs import merged_widths
from virnucpro_core.predict.scoring import merge_unlabeled

# One record whose frame 1 (M K F G P ...) has no stop: every 300 bp chunk gets a frame to score.
FASTA = ">x\n" + "ATGAAATTTGGGCCC" * 50 + "\n"


def one_clear_error(code: int, err: str, *words: str) -> None:
    assert code == 2, f"expected a clear error (exit 2), got {code}\n{err}"
    assert "Traceback" not in err and err.count("error:") == 1, err
    for word in words:
        assert word in err, f"{word!r} not in the message:\n{err}"


def labelled(path: Path, width: int, protein_model: str = "fastesm2_650", n: int = 8) -> Path:
    """A labelled merged feature file of both classes (what `virnucpro split` writes as test.pt)."""
    data = torch.randn(n, width, generator=torch.Generator().manual_seed(n)) * 2 + 0.5
    features = MergedFeatures([f"r{i}_chunk_1F1" for i in range(n)], data, torch.tensor([i % 2 for i in range(n)]),
                              torch.full((n,), 99, dtype=torch.long), {"protein_model": protein_model})  # fmt: skip
    return features.save(path)


def original_way(tmp: Path, checkpoint: Path, data: torch.Tensor) -> np.ndarray:
    """Viral scores of the original's own code (its class, torch.load(weights_only=False)) on ``data``."""
    torch.save(data, tmp / "x.pt")
    run_original(tmp, [{"kind": "predict", "path": str(checkpoint), "features": str(tmp / "x.pt"),
                        "out": str(tmp / "p.pt")}])  # fmt: skip
    return torch.load(tmp / "p.pt", weights_only=True)[:, 1].double().numpy()


def checkpoint_of(layout: str, tmp: Path, original: Path) -> tuple[Path, MLPClassifier | None]:
    """A stand-in-width (112) checkpoint of ``layout``, and the model it holds where the test made it here."""
    if layout == ORIGINAL:
        return original / "tiny.pth", None
    torch.manual_seed(0)
    if layout == FORK:
        return tmp / "model_fastesm650.pth", fork_checkpoint(tmp / "model_fastesm650.pth")
    model = MLPClassifier(TINY, protein_model="fastesm2_650", dna_model="dnabert_s").eval()
    return save_checkpoint(model, tmp / "ours.pt", CheckpointMeta("fastesm2_650", "dnabert_s", TINY)), model


# --------------------------------------------------------------------------- all three layouts are read


@pytest.mark.parametrize("layout", [OURS, ORIGINAL, FORK])
def test_evaluate_scores_with_every_layout(tmp_path, run_cli, original_checkpoints, layout):
    path, model = checkpoint_of(layout, tmp_path, original_checkpoints)
    features = labelled(tmp_path / "test.pt", TINY)
    argv = ["evaluate", "--model", str(path), "--features", str(features), "--out", str(tmp_path / "p.json"),
            "--n-bootstrap", "0"]
    code, out, err = run_cli(argv)
    assert code == 2 and "records no training split" in err and "--allow-other-split" in err, (
        "no layout's checkpoint is judged on features that are no split's test side without saying so")
    code, out, err = run_cli([*argv, "--allow-other-split"])
    assert code == 0, err
    assert "WARNING: evaluated with --allow-other-split" in out, out
    data = torch.load(features, weights_only=True)["data"]
    if model is None:  # the original's file: its own code is the reference
        expected = original_way(tmp_path, path, data)
    else:
        with torch.no_grad():
            expected = torch.softmax(model(data).double(), dim=1)[:, 1].numpy()
    np.testing.assert_allclose(Predictions.load(tmp_path / "p.json").p_viral, expected, atol=1e-6)
    if layout != OURS:
        assert f"({'FastESM2_650'}, {TINY}-d, {LAYOUTS[layout]})" in out, out


@pytest.mark.parametrize("layout", [ORIGINAL, FORK])
def test_predict_runs_end_to_end_with_the_original_and_fork_layouts(tmp_path, run_cli, original_checkpoints,
                                                                    layout):
    path, model = checkpoint_of(layout, tmp_path, original_checkpoints)
    (tmp_path / "x.fa").write_text(FASTA)
    out = tmp_path / "calls"
    code, stdout, err = run_cli(["predict", str(tmp_path / "x.fa"), "--model", str(path), "--weights", "random",
                                 "--device", "cpu", "--no-progress", "--out", str(out)])  # fmt: skip
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checkpoint"]["trained_on"]["origin"] == LAYOUTS[layout]
    assert summary["models"]["protein"]["model"] == "fastesm2_650" and summary["models"]["protein"]["size"] == "tiny"
    assert summary["parameters"]["chunk_size"] == 300, "the file records no chunk size: the default, announced"
    features = merge_unlabeled(out / "features" / "dna.pt", out / "features" / "protein.pt")
    if model is None:
        expected = original_way(tmp_path, path, features.data)
    else:
        with torch.no_grad():
            expected = torch.softmax(model(features.data).double(), dim=1)[:, 1].numpy()
    rows = (out / "frames.tsv").read_text().splitlines()[1:]
    assert len(rows) == len(features) > 0
    np.testing.assert_allclose([float(row.split("\t")[3]) for row in rows], expected, atol=1e-6)


@pytest.mark.parametrize("layout", [OURS, ORIGINAL, FORK])
def test_predict_features_scores_with_every_layout(tmp_path, run_cli, original_checkpoints, layout):
    path, model = checkpoint_of(layout, tmp_path, original_checkpoints)
    features = labelled(tmp_path / "merged.pt", TINY)
    code, _, err = run_cli(["predict", "--features", str(features), "--model", str(path),
                            "--out", str(tmp_path / "calls")])  # fmt: skip
    assert code == 0, err
    data = torch.load(features, weights_only=True)["data"]
    if model is None:
        expected = original_way(tmp_path, path, data)
    else:
        with torch.no_grad():
            expected = torch.softmax(model(data).double(), dim=1)[:, 1].numpy()
    rows = (tmp_path / "calls" / "frames.tsv").read_text().splitlines()[1:]
    np.testing.assert_allclose([float(row.split("\t")[3]) for row in rows], expected, atol=1e-6)


def _outcome(load, **expected):
    """What loading gives: the meta, the model's protein model and the digest, or the error's message."""
    try:
        loaded = load(**expected)
    except DimensionError as error:
        return str(error)
    return loaded.meta, loaded.model.protein_model, loaded.sha256


@pytest.mark.parametrize("layout", [OURS, ORIGINAL, FORK])
def test_fit_checkpoint_is_loading_again_with_the_features_expectations(tmp_path, original_checkpoints, layout):
    """`predict --features` checks the checkpoint it loaded against the first file's width and protein model
    without reading it again: the checkpoint, or the error, that loading it with those expectations gives."""
    path, _ = checkpoint_of(layout, tmp_path, original_checkpoints)
    first = load_checkpoint(path, protein_widths=merged_widths("tiny"))
    assert first.sha256 == sha256_file(path) and first.layout == layout
    outcomes = []
    for expected in ({"expected_input_dim": TINY, "expected_protein_model": "fastesm2_650"},
                     {"expected_input_dim": TINY}, {"expected_input_dim": 2048}, {"expected_protein_model": "esm2_3b"}):
        fitted = _outcome(lambda **e: fit_checkpoint(first, **e), **expected)
        assert fitted == _outcome(lambda **e: load_checkpoint(path, **e), **expected), expected
        outcomes.append(fitted)
    assert not isinstance(outcomes[0], str) and isinstance(outcomes[2], str), "the features' own fit, then a refusal"


def test_a_3328_original_is_refused_where_2048_is_fed(tmp_path, run_cli, original_checkpoints):
    path = original_checkpoints / "esm2_3b.pth"
    code, _, err = run_cli(["evaluate", "--model", str(path), "--features", str(labelled(tmp_path / "t.pt", 2048)),
                            "--out", str(tmp_path / "p.json")])  # fmt: skip
    one_clear_error(code, err, "3328-d ESM2 3B features", "2048-d FastESM2_650 features")
    assert not (tmp_path / "p.json").exists()
    (tmp_path / "x.fa").write_text(FASTA)
    code, _, err = run_cli(["predict", str(tmp_path / "x.fa"), "--model", str(path), "--weights", "random",
                            "--device", "cpu", "--no-progress", "--out", str(tmp_path / "calls")])  # fmt: skip
    # Read as ESM2 3B (from its width), the file meets that model's tiny stand-in: 48 + 128.
    one_clear_error(code, err, "takes 3328-d features", "176-d ESM2 3B features")
    assert not (tmp_path / "calls" / "frames.tsv").exists()


# --------------------------------------------------------------------------- hostile pickles


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("where", WHERE)
def test_evaluate_and_predict_refuse_hostile_checkpoints(tmp_path, run_cli, original_checkpoints, where, payload):
    path, marker = hostile_file(tmp_path, where, payload, original_checkpoints)
    name = PAYLOADS[payload][1]
    code, _, err = run_cli(["evaluate", "--model", str(path), "--features", str(labelled(tmp_path / "t.pt", TINY)),
                            "--out", str(tmp_path / "p.json")])  # fmt: skip
    one_clear_error(code, err, f"{path} cannot be loaded safely", f"found: pickled globals {name}")
    (tmp_path / "x.fa").write_text(FASTA)
    code, _, err = run_cli(["predict", str(tmp_path / "x.fa"), "--model", str(path), "--weights", "random",
                            "--device", "cpu", "--no-progress", "--out", str(tmp_path / "calls")])  # fmt: skip
    one_clear_error(code, err, f"{path} cannot be loaded safely", f"found: pickled globals {name}")
    code, _, err = run_cli(["predict", "--features", str(tmp_path / "t.pt"), "--model", str(path),
                            "--out", str(tmp_path / "calls")])  # fmt: skip
    one_clear_error(code, err, f"{path} cannot be loaded safely", f"found: pickled globals {name}")
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "calls").exists()
    assert not appears(marker, 0.3), "the payload ran"
