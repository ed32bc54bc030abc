"""Bad input to `virnucpro compare` and `evaluate` exits 2 with one message, never 1 (compare's "gate FAIL")."""

from __future__ import annotations

import json

import pytest

from virnucpro_core.evaluate.predictions import Predictions
from tests.lineage import with_lineage

# Eight hand-labelled frames of two viral and two host records (as in test_metrics).
IDS = [
    "v1_chunk_1F1", "v1_chunk_1R1", "v1_chunk_2F1", "v2_chunk_1F2",
    "h1_chunk_1F1", "h1_chunk_1R3", "h1_chunk_2F1", "h2_chunk_1F1",
]  # fmt: skip
Y_TRUE = [1, 1, 1, 1, 0, 0, 0, 0]
P_VIRAL = [0.9, 0.4, 0.8, 0.7, 0.6, 0.2, 0.3, 0.1]
LENGTHS = [10, 30, 30, 60, 10, 120, 400, 60]



@pytest.fixture
def fast(tmp_path):
    """A valid predictions file (accuracy 6/8)."""
    predictions = Predictions(IDS, Y_TRUE, P_VIRAL, [int(p > 0.5) for p in P_VIRAL], LENGTHS,
                              meta=with_lineage({"model": "fastesm2_650"}))
    return predictions.save(tmp_path / "fast.json")


def _compare(fast, tmp_path, *extra: str) -> list[str]:
    return ["compare", "--fast", str(fast), "--baseline-metrics", str(tmp_path / "baseline.json"),
            "--n-bootstrap", "0", "--out", str(tmp_path / "out"), *extra]  # fmt: skip


def test_compare_with_good_input_decides_the_gate(fast, tmp_path, run_cli):
    (tmp_path / "baseline.json").write_text(json.dumps({"accuracy": 0.76, "meta": with_lineage()}))
    code, out, err = run_cli(_compare(fast, tmp_path))
    assert code == 0, err
    assert (tmp_path / "out" / "report.json").is_file()


@pytest.mark.parametrize(
    "baseline, extra, files, words",
    [
        ({"accuracy": 0.76}, ["--fast-history", "nope.json"], {},
         ["--fast-history", "nope.json", "no such file", "virnucpro train"]),
        ({"accuracy": 0.76}, ["--baseline-history", "history.json"], {"history.json": "[1, 2"},
         ["--baseline-history", "not valid JSON"]),
        ({"accuracy": 0.76}, ["--split-summary", "distribution.json"], {"distribution.json": '{"seed": 1}'},
         ["--split-summary", "not in the expected format", "split_id", "virnucpro split"]),
        ({"accuracy": "abc"}, [], {}, ["baseline.json", "accuracy = 'abc'", "JSON number"]),
        ({"accuracy": 0.76, "n": "eight"}, [], {}, ["n = 'eight'", "non-negative integers"]),
        ({"accuracy": 0.76, "confusion_matrix": [[1]]}, [], {}, ["confusion_matrix", "malformed"]),
    ],
    ids=["missing-history", "bad-json-history", "malformed-split-summary", "text-accuracy", "text-count",
         "short-confusion-matrix"],
)  # fmt: skip
def test_compare_bad_input_exits_2(fast, tmp_path, monkeypatch, run_cli, baseline, extra, files, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    code, out, err = run_cli(_compare(fast, tmp_path, *extra))
    assert code == 2, f"bad input must exit 2, not {code} (1 means gate FAIL)\n{err}"
    assert "Traceback" not in err
    assert all(word in err for word in words), err
    assert not (tmp_path / "out").exists(), "inputs are checked before any output is written"


OTHER_COMMANDS = {
    "evaluate": ["evaluate", "--model", "m.pt", "--features", "t.pt", "--out", "p.json"],
    "extract": ["extract", "--model", "fastesm2_650", "p.faa", "--out", "f.pt"],
    "predict": ["predict", "x.fa", "--model", "m.pt", "--out", "calls"],
}


@pytest.mark.parametrize("command", ["compare", *OTHER_COMMANDS])
def test_negative_seed_is_refused_by_the_parser(fast, tmp_path, run_cli, command):
    if command == "compare":
        argv = _compare(fast, tmp_path, "--seed", "-1")
    else:
        argv = [*OTHER_COMMANDS[command], "--seed", "-1"]
    code, out, err = run_cli(argv)
    assert code == 2
    assert "--seed" in err and "non-negative integer" in err, err


def test_compare_refuses_one_file_given_twice(fast, tmp_path, run_cli):
    code, _, err = run_cli(["compare", "--fast", str(fast), "--baseline", str(fast), "--n-bootstrap", "0",
                            "--out", str(tmp_path / "out")])
    assert code == 2 and "--fast and --baseline are the same file" in err, err
    assert not (tmp_path / "out").exists()
