"""The original VirNucPro's two result files, and ``virnucpro predict --features`` that writes them."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch

from tests import virnucpro_layouts as V
from virnucpro_core.models.classifier import CheckpointMeta, MLPClassifier
from virnucpro_core.predict import tables as P
from virnucpro_core.layouts.checkpoints import load_checkpoint, save_checkpoint
from virnucpro_core.layouts.features import load_merged
from virnucpro_core.predict.scoring import predict_features

# Two chunks with their frames out of order, and a chunk id that sorts before them.
IDS = ["g1_chunk_2F1", "g1_chunk_10R3", "g1_chunk_2R1", "g1_chunk_10F2", "a_chunk_1F1"]
PROBABILITIES = np.array([[0.25, 0.75], [0.5, 0.5], [0.875, 0.125], [0.625, 0.375], [0.5, 0.5]], dtype=np.float32)


def test_prediction_results_txt_is_the_originals_format():
    text = P.original_results_text(IDS, PROBABILITIES)
    assert text.splitlines() == [
        "Sequence_ID\tPrediction\tscore1\tscore2",
        "g1_chunk_2F1\tvirus\t0.25\t0.75",
        "g1_chunk_10R3\tothers\t0.5\t0.5",  # a tie is the first class, as torch.max picks it
        "g1_chunk_2R1\tothers\t0.875\t0.125",
        "g1_chunk_10F2\tothers\t0.625\t0.375",
        "a_chunk_1F1\tothers\t0.5\t0.5",
    ]


def test_scores_print_as_numpy_prints_a_float32():
    probabilities = torch.softmax(torch.tensor([[0.3, -1.2]]), dim=1).numpy()
    line = P.original_results_text(["x_chunk_1F1"], probabilities).splitlines()[1]
    assert line.split("\t")[2:] == [str(probabilities[0, 0]), str(probabilities[0, 1])]
    assert line.split("\t")[2] == "0.81757444"  # the shortest text that reads back as that float32


def test_highest_score_csv_calls_each_chunk_by_its_best_frames_and_sorts_like_pandas():
    text = P.highest_score_text(IDS, PROBABILITIES)
    assert text.splitlines() == [
        "Modified_ID\tIs_Virus",
        "a_chunk_1\tTrue",  # max score2 0.5 >= max score1 0.5
        "g1_chunk_10\tFalse",  # 0.5 < 0.625
        "g1_chunk_2\tFalse",  # 0.75 < 0.875: the best host frame wins
    ]


def test_highest_score_csv_equals_the_originals_pandas_rule_on_random_scores():
    """The rule as the original's prediction.py states it, run with pandas on our prediction_results.txt."""
    rng = np.random.default_rng(7)
    ids = [f"rec{r}_chunk_{c}{s}{f}" for r in range(4) for c in range(1, 13) for s in "FR" for f in (1, 2, 3)
           if rng.random() < 0.6]
    probabilities = torch.softmax(torch.tensor(rng.normal(size=(len(ids), 2)), dtype=torch.float32), dim=1).numpy()
    frame = pd.read_csv(io.StringIO(P.original_results_text(ids, probabilities)), sep="\t")
    frame["Modified_ID"] = frame["Sequence_ID"].str[:-2]
    grouped = frame.groupby("Modified_ID")[["score1", "score2"]].max()
    expected = pd.DataFrame({"Is_Virus": grouped["score2"] >= grouped["score1"]}).reset_index()
    assert P.highest_score_text(ids, probabilities) == expected.to_csv(sep="\t", index=False)


def _checkpoint(tmp_path, width: int, protein_model: str):
    torch.manual_seed(0)
    model = MLPClassifier(width, protein_model=protein_model, dna_model="dnabert_s")
    model.bn1.running_mean.normal_()
    model.bn1.running_var.uniform_(0.5, 2.0)
    meta = CheckpointMeta(protein_model, "dnabert_s", width, features={"size": "tiny"})
    return save_checkpoint(model, tmp_path / "mlp.pt", meta)


def test_predict_features_on_virnucpro_files_scores_each_frame_like_the_mlp(tmp_path, run_cli):
    width = V.widths("tiny")["fastesm2_650"]
    tree = V.write_data_merge(tmp_path / "dm", "fastesm2_650", rows=12)
    checkpoint = _checkpoint(tmp_path, width, "fastesm2_650")
    out = tmp_path / "calls"
    code, stdout, err = run_cli(["predict", "--features", str(tree / "viral.1.1_merged"), "--features",
                                 str(tree / "fungi.1.1_merged"), "--model", str(checkpoint), "--out", str(out)])
    assert code == 0, err
    assert "prediction_results_highestscore.csv" in stdout
    results = pd.read_csv(out / "prediction_results.txt", sep="\t")
    assert len(results) == 36 and list(results.columns) == ["Sequence_ID", "Prediction", "score1", "score2"]
    # The same numbers as the classifier's eval-mode forward pass on the same rows.
    loaded = load_checkpoint(checkpoint)
    rows = torch.cat([torch.load(p, weights_only=True)["data"] for p in
                      sorted((tree / "viral.1.1_merged").glob("*.pt")) + sorted((tree / "fungi.1.1_merged").glob("*.pt"))])
    with torch.no_grad():
        expected = torch.softmax(loaded.model.eval()(rows), dim=1).numpy()
    assert np.abs(results[["score1", "score2"]].to_numpy() - expected).max() < 1e-6
    assert (results["Prediction"] == np.where(expected[:, 1] > expected[:, 0], "virus", "others")).all()
    assert (out / "frames.tsv").is_file() and (out / "chunks.tsv").is_file() and (out / "summary.json").is_file()


def test_predict_features_agrees_with_evaluate_on_our_files(tmp_path, run_cli):
    """--features on one of our merged files gives the scores predict_features gives (the evaluate path)."""
    tree = V.write_data_merge(tmp_path / "dm", "fastesm2_650", rows=6)
    imported = tmp_path / "imported"
    assert run_cli(["import", str(tree), "--declare", "fastesm2_650:float16", "--size", "tiny", "--out",
                    str(imported)])[0] == 0
    checkpoint = _checkpoint(tmp_path, V.widths("tiny")["fastesm2_650"], "fastesm2_650")
    code, _, err = run_cli(["predict", "--features", str(imported / "viral_fastesm2_650.pt"), "--model",
                            str(checkpoint), "--out", str(tmp_path / "calls")])
    assert code == 0, err
    ours = predict_features(checkpoint, imported / "viral_fastesm2_650.pt", allow_other_split=True)
    frames = pd.read_csv(tmp_path / "calls" / "frames.tsv", sep="\t")
    assert list(frames["frame_id"]) == load_merged(imported / "viral_fastesm2_650.pt").ids
    assert np.abs(frames["viral_score"].to_numpy() - ours.p_viral).max() < 1e-6


def test_predict_features_refuses_a_checkpoint_of_the_other_embedder(tmp_path, run_cli):
    tree = V.write_data_merge(tmp_path / "dm", "esm2_3b", rows=6)
    checkpoint = _checkpoint(tmp_path, V.widths("tiny")["fastesm2_650"], "fastesm2_650")
    code, _, err = run_cli(["predict", "--features", str(tree / "viral.1.1_merged"), "--model", str(checkpoint),
                            "--out", str(tmp_path / "calls")])
    assert code == 2 and "Traceback" not in err
    assert "trained on 112-d FastESM2_650 features" in err and "176-d ESM2 3B" in err, err
    assert not (tmp_path / "calls").exists()


@pytest.mark.parametrize("argv", [[], ["x.fa", "--features", "y.pt"]], ids=["neither", "both"])
def test_predict_needs_exactly_one_of_input_and_features(tmp_path, run_cli, argv):
    code, _, err = run_cli(["predict", *argv, "--model", "m.pt", "--out", str(tmp_path / "o")])
    assert code == 2 and "either INPUT" in err
