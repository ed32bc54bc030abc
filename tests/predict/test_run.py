"""Predictions: ``predict_features`` / ``virnucpro evaluate`` and ``predict_fasta`` / ``virnucpro predict``.

A tiny pipeline is built once per module from the bundled smoke data (the first
viral and the first host record, cut to 900 bp) with seeded tiny stand-ins;
checkpoints are fresh MLPs saved with ``layouts.checkpoints.save_checkpoint``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from virnucpro_core import cli
from virnucpro_core.evaluate.aggregation import aggregate_chunks
from virnucpro_core.models.classifier import CheckpointMeta, MLPClassifier
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.extract.features import extract_to_file
from virnucpro_core.extract.merged import merge_features
from virnucpro_core.layouts.checkpoints import load_checkpoint, save_checkpoint
from virnucpro_core.layouts.features import MergedFeatures, load_merged
from virnucpro_core.evaluate.predictions import Predictions
from virnucpro_core.models.registry import load_model
from virnucpro_core.models.specs import get_spec
from virnucpro_core.predict.tables import NO_FRAMES, verdicts
from virnucpro_core.predict.scoring import FrameScores, merge_unlabeled, predict_features, score_features
from virnucpro_core.outputs import RECORD, read_record
from virnucpro_core.preprocess.sequences import preprocess, read_fasta

SMOKE = Path(__file__).resolve().parents[2] / "fixtures" / "smoke"
PREFIX = 900  # bases kept of each record: 3 chunks of 300, a few frames each


TINY_WIDTH = get_spec("dnabert_s").dim_for("tiny") + get_spec("fastesm2_650").dim_for("tiny")
ESM2_3B_TINY_WIDTH = get_spec("dnabert_s").dim_for("tiny") + get_spec("esm2_3b").dim_for("tiny")


@pytest.fixture(scope="module")
def commands():
    """``cli.main`` with the two commands registered (until cli.COMMANDS lists them itself)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(cli, "COMMANDS", tuple(dict.fromkeys((*cli.COMMANDS, "evaluate", "predict"))))
    yield cli.main
    patch.undo()


def _first_record(path: Path, out: Path) -> Path:
    record = read_fasta(path)[0]
    out.write_text(f">{record.id}\n{record.seq[:PREFIX]}\n")
    return out


def _checkpoint(path: Path, width: int, protein_model: str | None, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = MLPClassifier(width, protein_model=protein_model, dna_model="dnabert_s")
    meta = CheckpointMeta(
        protein_model=protein_model,
        dna_model="dnabert_s",
        input_dim=width,
        seed=seed,
        features={"protein_model": protein_model, "size": "tiny", "protein_weights": "random", "dna_weights": "random"},
    )
    return save_checkpoint(model, path, meta)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Smoke FASTAs, labelled tiny FastESM2 features (test.pt) and checkpoints of both widths."""
    root = tmp_path_factory.mktemp("prediction")
    dna = load_model("dnabert_s", weights="random", size="tiny", device="cpu")
    protein = load_model("fastesm2_650", weights="random", size="tiny", device="cpu")
    parts = []
    for label in ("viral", "host"):
        fasta = _first_record(SMOKE / f"{label}.fasta", root / f"{label}.fa")
        prep = preprocess(fasta, 300, root / f"pre-{label}")
        extract_to_file(dna, prep.paths.nucleotide, root / f"dna-{label}.pt", progress=False)
        extract_to_file(protein, prep.paths.protein, root / f"protein-{label}.pt", progress=False)
        parts.append(merge_features(root / f"dna-{label}.pt", root / f"protein-{label}.pt", label))
    test = MergedFeatures(
        ids=parts[0].ids + parts[1].ids,
        data=torch.cat([p.data for p in parts]),
        labels=torch.cat([p.labels for p in parts]),
        lengths=torch.cat([p.lengths for p in parts]),
        meta={k: v for k, v in parts[0].meta.items() if k not in ("label", "n", "dna_file", "protein_file")},
    )
    test.save(root / "test.pt")
    both = root / "both.fa"
    both.write_text((root / "viral.fa").read_text() + (root / "host.fa").read_text())
    return {
        "root": root,
        "test": root / "test.pt",
        "fasta": both,
        "ckpt": _checkpoint(root / "fast.pt", TINY_WIDTH, "fastesm2_650"),
        "ckpt_3b": _checkpoint(root / "esm2_3b.pt", ESM2_3B_TINY_WIDTH, "esm2_3b"),
        # Width of the ESM2 3B tiny pipeline but labelled FastESM2_650: a mislabelled/wrong file.
        "ckpt_wrong": _checkpoint(root / "wrong.pt", ESM2_3B_TINY_WIDTH, "fastesm2_650"),
    }


@pytest.fixture(scope="module")
def predicted(pipeline, commands):
    """One ``virnucpro predict`` run on both smoke records (its output directory and captured exit status)."""
    out = pipeline["root"] / "predict-out"
    rc = commands([
        "predict", str(pipeline["fasta"]), "--model", str(pipeline["ckpt"]), "--weights", "random",
        "--size", "tiny", "--device", "cpu", "--out", str(out), "--no-progress",
    ])  # fmt: skip
    return out, rc


def _read_tsv(path: Path) -> list[dict[str, str]]:
    header, *rows = path.read_text().splitlines()
    names = header.split("\t")
    return [dict(zip(names, row.split("\t"))) for row in rows]


# --------------------------------------------------------------------------- evaluate


def test_predict_features_is_the_models_softmax(pipeline):
    features = load_merged(pipeline["test"])
    predictions = predict_features(pipeline["ckpt"], pipeline["test"], allow_other_split=True)  # no split: scoring
    model = MLPClassifier(TINY_WIDTH)
    model.load_state_dict(torch.load(pipeline["ckpt"], weights_only=True)["state_dict"])
    with torch.inference_mode():
        expected = torch.softmax(model.eval()(features.data).double(), dim=1)[:, 1].numpy()
    assert predictions.ids == features.ids
    np.testing.assert_allclose(predictions.p_viral, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(predictions.y_true, features.labels.numpy())
    assert predictions.meta["model"] == "fastesm2_650"
    assert predictions.meta["protein"]["weights"] == "random", "random stand-ins must show in the provenance"


def test_evaluate_writes_loadable_predictions(pipeline, commands, tmp_path, capsys):
    out = tmp_path / "fast.json"
    rc = commands(["evaluate", "--model", str(pipeline["ckpt"]), "--features", str(pipeline["test"]),
                   "--out", str(out), "--n-bootstrap", "20", "--metrics-out", str(tmp_path / "eval.json"),
                   "--allow-other-split"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    loaded = Predictions.load(out)
    features = load_merged(pipeline["test"])
    assert loaded.ids == features.ids
    np.testing.assert_array_equal(loaded.y_true, features.labels.numpy())
    assert loaded.meta["checkpoint"]["input_dim"] == TINY_WIDTH
    assert "accuracy" in printed and "MCC" in printed, printed
    assert "WARNING" in printed and "RANDOM-WEIGHT" in printed, "random stand-ins must be flagged loudly"
    assert json.loads((tmp_path / "eval.json").read_text())["n"] == len(features)


def test_evaluate_refuses_checkpoint_of_another_width(pipeline, commands, tmp_path, capsys):
    with pytest.raises(DimensionError) as caught:
        predict_features(pipeline["ckpt_3b"], pipeline["test"])
    message = str(caught.value)
    assert str(ESM2_3B_TINY_WIDTH) in message and str(TINY_WIDTH) in message, message

    rc = commands(["evaluate", "--model", str(pipeline["ckpt_3b"]), "--features", str(pipeline["test"]),
                   "--out", str(tmp_path / "p.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{ESM2_3B_TINY_WIDTH}-d" in err and f"{TINY_WIDTH}-d" in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize(
    "argv_tail, words",
    [
        (["--out", "p.txt"], ["--out", ".json or .npz"]),
        (["--features", "missing.pt", "--out", "p.json"], ["missing.pt"]),
    ],
    ids=["bad-suffix", "missing-features"],
)
def test_evaluate_bad_input_exits_2(pipeline, commands, tmp_path, monkeypatch, capsys, argv_tail, words):
    monkeypatch.chdir(tmp_path)
    argv = ["evaluate", "--model", str(pipeline["ckpt"]), "--features", str(pipeline["test"]), *argv_tail]
    assert commands(argv) == 2
    err = capsys.readouterr().err
    assert all(word in err for word in words), err
    assert "Traceback" not in err


def test_evaluate_metrics_out_on_one_class_exits_2_and_writes_nothing(pipeline, commands, tmp_path, capsys):
    root = pipeline["root"]
    viral_only = merge_features(root / "dna-viral.pt", root / "protein-viral.pt", "viral").save(tmp_path / "v.pt")
    argv = ["evaluate", "--model", str(pipeline["ckpt"]), "--features", str(viral_only),
            "--out", str(tmp_path / "p.json"), "--n-bootstrap", "0", "--allow-other-split"]
    rc = commands([*argv, "--metrics-out", str(tmp_path / "eval.json")])
    err = capsys.readouterr().err
    assert rc == 2, "a metrics file cannot be written for one class; silence (exit 0, no file) hid that"
    assert "--metrics-out" in err and "viral (1)" in err and "both classes" in err, err
    assert not (tmp_path / "eval.json").exists() and not (tmp_path / "p.json").exists()

    assert commands(argv) == 0, "without --metrics-out the predictions of one class are still useful"
    assert (tmp_path / "p.json").is_file()
    assert "every sample is viral" in capsys.readouterr().out


def test_unlabeled_features_need_labels(pipeline):
    root = pipeline["root"]
    unlabeled = merge_unlabeled(root / "dna-viral.pt", root / "protein-viral.pt")
    assert "label" not in unlabeled.meta and unlabeled.dim == TINY_WIDTH
    with pytest.raises(InputError, match="no true labels"):
        predict_features(pipeline["ckpt"], unlabeled)


# --------------------------------------------------------------------------- chunk rule


def test_chunk_rule_hand_checked():
    scores = FrameScores(
        ids=["r_chunk_1F1", "r_chunk_1R2", "r_chunk_2F3", "s_chunk_1F1", "s_chunk_1R1"],
        p_viral=np.array([0.30, 0.60, 0.50, 0.10, 0.45]),
        y_pred=np.array([0, 1, 0, 0, 0]),
        lengths=np.array([10, 10, 10, 10, 10]),
    )
    calls = aggregate_chunks(scores.ids, scores.p_viral, ["r_chunk_1", "r_chunk_2", "r_chunk_3", "s_chunk_1"])
    assert calls.ids == ["r_chunk_1", "r_chunk_2", "r_chunk_3", "s_chunk_1"]
    assert calls.record_ids == ["r", "r", "r", "s"]
    assert calls.n_frames.tolist() == [2, 1, 0, 2]
    # r_chunk_1: max viral 0.60 < max host 0.70 -> others; r_chunk_2: 0.5 vs 0.5, a tie is viral;
    # r_chunk_3 has no frames; s_chunk_1: 0.45 < 0.90 -> others.
    np.testing.assert_allclose(calls.max_p_viral[[0, 1, 3]], [0.60, 0.50, 0.45])
    np.testing.assert_allclose(calls.max_p_host[[0, 1, 3]], [0.70, 0.50, 0.90])
    assert verdicts(calls) == ["others", "virus", NO_FRAMES, "others"]


# --------------------------------------------------------------------------- predict


def test_predict_writes_frames_and_chunks(predicted, pipeline, capsys):
    out, rc = predicted
    assert rc == 0
    frames = _read_tsv(out / "frames.tsv")
    chunks = _read_tsv(out / "chunks.tsv")
    assert list(frames[0]) == ["frame_id", "chunk_id", "record_id", "viral_score", "host_score", "prediction"]
    assert list(chunks[0]) == ["chunk_id", "record_id", "n_frames", "max_viral_score", "max_host_score", "verdict"]
    protein_ids = [r.id for r in read_fasta(out / "preprocess" / "nucleotide.fa")]
    assert [f["frame_id"] for f in frames] == protein_ids
    chunk_ids = [r.id for r in read_fasta(out / "preprocess" / "chunks.fa")]
    assert [c["chunk_id"] for c in chunks] == chunk_ids
    viral_id, host_id = (read_fasta(SMOKE / f"{label}.fasta")[0].id for label in ("viral", "host"))
    assert chunk_ids == [f"{rid}_chunk_{k}" for rid in (viral_id, host_id) for k in (1, 2, 3)]
    assert {c["record_id"] for c in chunks} == {viral_id, host_id}

    for frame in frames:
        assert frame["frame_id"].startswith(frame["chunk_id"]) and frame["frame_id"][-2:] in {
            "F1", "F2", "F3", "R1", "R2", "R3"}  # fmt: skip
        viral, host = float(frame["viral_score"]), float(frame["host_score"])
        assert math.isclose(viral + host, 1.0, abs_tol=2e-6)
        assert frame["prediction"] == ("virus" if viral > host else "others") or math.isclose(viral, host)
    for chunk in chunks:  # the chunk rule, recomputed from the frame table
        mine = [f for f in frames if f["chunk_id"] == chunk["chunk_id"]]
        assert int(chunk["n_frames"]) == len(mine)
        if not mine:
            assert chunk["verdict"] == NO_FRAMES
            continue
        max_viral = max(float(f["viral_score"]) for f in mine)
        max_host = max(float(f["host_score"]) for f in mine)
        assert float(chunk["max_viral_score"]) == pytest.approx(max_viral, abs=1e-6)
        assert float(chunk["max_host_score"]) == pytest.approx(max_host, abs=1e-6)
        if abs(max_viral - max_host) > 1e-5:
            assert chunk["verdict"] == ("virus" if max_viral >= max_host else "others"), chunk


_OPENED: list[tuple[str, str]] | None = None  # (path, mode) of every file opened while a test records them


def _record_opens(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[1], str):  # os.open's mode is None: skipped
        _OPENED.append((str(args[0]), args[1]))


def test_predict_reads_input_and_checkpoint_once_and_no_intermediate_back(pipeline, commands, tmp_path,
                                                                          predicted):
    """One pass: the FASTA and the checkpoint are read once; the preprocess and feature files are written, not
    read back; a rerun reads the feature cache once and writes the same outputs."""
    global _OPENED
    sys.addaudithook(_record_opens)  # audit hooks cannot be removed: it records only while _OPENED is a list
    out = tmp_path / "out"
    runs = []
    for _ in range(2):
        _OPENED = []
        try:
            assert commands(["predict", str(pipeline["fasta"]), "--model", str(pipeline["ckpt"]), "--weights",
                             "random", "--size", "tiny", "--device", "cpu", "--out", str(out), "--no-progress"]) == 0
        finally:
            runs.append(_OPENED)
            _OPENED = None
    for number, opened in enumerate(runs):
        reads = [path for path, mode in opened if "r" in mode and "+" not in mode]
        assert reads.count(str(pipeline["fasta"])) == 1, (number, reads)
        assert reads.count(str(pipeline["ckpt"])) == 1, (number, reads)
        cache = [str(out / "features" / "dna.pt"), str(out / "features" / "protein.pt")]
        # The output record is read, and the text files it records hashed once, after the command's work.
        recorded = {str(out / RECORD), *(str(out / name) for name in read_record(out))} - set(cache)
        assert all(reads.count(path) <= 2 for path in recorded), (number, reads)
        read_back = sorted(path for path in reads if path.startswith(str(out)) and path not in recorded)
        assert read_back == ([] if number == 0 else cache), (number, read_back)
    for name in ("frames.tsv", "chunks.tsv", "prediction_results.txt", "prediction_results_highestscore.csv"):
        assert (out / name).read_bytes() == (predicted[0] / name).read_bytes(), name


def test_predict_summary_flags_random_weights(predicted, pipeline):
    out, _ = predicted
    summary = json.loads((out / "summary.json").read_text())
    assert summary["random_weights"] is True
    assert "RANDOM-WEIGHT" in summary["warnings"][0]
    assert summary["models"]["protein"]["model"] == "fastesm2_650"
    assert summary["models"]["protein"]["weights"] == "random"
    assert summary["models"]["dna"]["model"] == "dnabert_s"
    assert summary["parameters"]["chunk_size"] == 300 and summary["parameters"]["size"] == "tiny"
    assert summary["checkpoint"]["input_dim"] == TINY_WIDTH
    assert summary["counts"]["chunks"] == 6
    assert summary["counts"]["frames"] == len(_read_tsv(out / "frames.tsv"))


def test_predict_scores_match_predict_features(predicted, pipeline):
    """The label-free path gives the labelled path's scores on the same features."""
    out, _ = predicted
    features = merge_unlabeled(out / "features" / "dna.pt", out / "features" / "protein.pt")
    scores = score_features(load_checkpoint(pipeline["ckpt"]), features)
    labelled = predict_features(pipeline["ckpt"], features, labels=np.zeros(len(features), dtype=np.int64),
                                allow_other_split=True)
    np.testing.assert_allclose(scores.p_viral, labelled.p_viral)
    frames = _read_tsv(out / "frames.tsv")
    np.testing.assert_allclose([float(f["viral_score"]) for f in frames], scores.p_viral, atol=1e-6)


@pytest.mark.parametrize(
    "ckpt_key, extra, widths",
    [
        ("ckpt_wrong", [], (ESM2_3B_TINY_WIDTH, TINY_WIDTH)),
        ("ckpt", ["--size", "full"], (TINY_WIDTH, 2048)),
    ],
    ids=["esm2_3b-width-checkpoint", "size-mismatch"],
)
def test_predict_refuses_wrong_width(pipeline, commands, tmp_path, capsys, ckpt_key, extra, widths):
    rc = commands(["predict", str(pipeline["fasta"]), "--model", str(pipeline[ckpt_key]), "--weights", "random",
                   "--device", "cpu", "--out", str(tmp_path / "out"), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert all(str(w) in err for w in widths), err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "frames.tsv").exists()


def test_predict_bad_fasta_exits_2(pipeline, commands, tmp_path, capsys):
    bad = tmp_path / "bad.fa"
    bad.write_text("this is not a FASTA file\n")
    rc = commands(["predict", str(bad), "--model", str(pipeline["ckpt"]), "--weights", "random",
                   "--device", "cpu", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "bad.fa" in err and "Traceback" not in err, err


def test_predict_missing_weights_exits_2_before_writing(pipeline, commands, tmp_path, monkeypatch, capsys):
    """Models are loaded and matched before preprocessing writes OUT/preprocess/*: a failed run leaves no output."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    rc = commands(["predict", str(pipeline["fasta"]), "--model", str(pipeline["ckpt"]), "--device", "cpu",
                   "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "DNABERT-S" in err and "--dna-model-path" in err and "Traceback" not in err, err
    assert not out.exists(), f"nothing may be written when the models cannot be loaded: {list(out.rglob('*'))}"


def test_pretrained_from_standin_directories_is_flagged(pipeline, commands, tmp_path, capsys):
    """Stand-ins written in the hub layout load as 'pretrained' but are recorded, and flagged, as random."""
    from virnucpro_core.models.registry import write_standin

    dna_dir = write_standin("dnabert_s", "tiny", tmp_path / "dnabert")
    protein_dir = write_standin("fastesm2_650", "tiny", tmp_path / "fastesm")
    out = tmp_path / "out"
    rc = commands(["predict", str(pipeline["root"] / "viral.fa"), "--model", str(pipeline["ckpt"]),
                   "--dna-model-path", str(dna_dir), "--protein-model-path", str(protein_dir),
                   "--device", "cpu", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["weights"] == "pretrained"
    assert summary["models"]["protein"]["weights"] == "random" and summary["random_weights"] is True
    assert "RANDOM-WEIGHT" in printed


def test_predict_refuses_another_protein_model_unless_allowed_and_then_says_so(pipeline, commands, tmp_path, capsys):
    """A FastESM2 stand-in whose config says model_type esm (ESM-2 650M's, at full size) is not FastESM2_650."""
    from virnucpro_core.models.registry import write_standin

    dna_dir = write_standin("dnabert_s", "tiny", tmp_path / "dnabert")
    protein_dir = write_standin("fastesm2_650", "tiny", tmp_path / "esm")
    config = json.loads((protein_dir / "config.json").read_text())
    (protein_dir / "config.json").write_text(json.dumps({**config, "model_type": "esm"}))
    argv = ["predict", str(pipeline["root"] / "viral.fa"), "--model", str(pipeline["ckpt"]),
            "--dna-model-path", str(dna_dir), "--protein-model-path", str(protein_dir), "--device", "cpu",
            "--no-progress"]
    rc = commands([*argv, "--out", str(tmp_path / "refused")])
    err = capsys.readouterr().err
    assert rc == 2 and "is not FastESM2_650" in err and "point --protein-model-path at a copy" in err, err
    assert not (tmp_path / "refused").exists()

    rc = commands([*argv, "--out", str(tmp_path / "out"), "--allow-other-model"])
    printed = capsys.readouterr().out
    assert rc == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    note = ('another model than FastESM2_650 embedded these sequences (--allow-other-model): model_type esm, '
            '2 layers × 64, 4 heads, vocabulary 33; differs in model_type "esm" (expected "fast_esm")')
    assert note in summary["warnings"] and f"note: {note}" in printed, (summary["warnings"], printed)
    assert summary["models"]["protein"]["identity"]["found"]["model_type"] == "esm"
    assert "identity" not in summary["models"]["dna"] and summary["parameters"]["allow_other_model"] is True
