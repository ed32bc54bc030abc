"""The third reliability attack as a test (issue 24): each case through the CLI or the suite, as a user runs it.

Outcome classes as in ``test_hostile_inputs.py``: one clear message with the
documented exit status (2 for the CLI, 4 for a bad suite option), nothing of
the user's lost, no traceback; or a correct output. Suite cases stop before
any stage runs (a bad option, a held lock) or once training starts on a copy of
the session's smoke stages (Ctrl-C), so the module stays within seconds per case,
but for kill -9 at each stage, which builds every stage anew.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.earlier_runs import earlier_reports
from tests.test_hostile_inputs import _tiny_checkpoint, clear_error, merged_file
from virnucpro_core import files
from virnucpro_core.tables import markdown_table
from virnucpro_core.errors import InputError
from virnucpro_core.gate.report_files import write_side_reports
from virnucpro_core.gate.lock import ArtifactsLock
from virnucpro_core.gate.session import AcceptanceSession
from virnucpro_core.gate.settings import Settings
from virnucpro_core.gate.verdict import decide_verdict
from virnucpro_core.layouts import checkpoints
from virnucpro_core.layouts.features import MergedFeatures
from virnucpro_core.paths import ReportPaths
from virnucpro_core.split import make as split_make

ROOT = Path(__file__).resolve().parents[1]
GENOME = "ATGAAATTTGGGCCCAAATTTAGCTAGCTAGGATCCATGCATTTGACCA" * 3


# --------------------------------------------------------------------------- FASTA ids


@pytest.mark.parametrize("ending", ["\r\n", "\r"], ids=["crlf", "lone-cr"])
def test_a_cr_ends_a_line_as_in_an_editor(tmp_path, run_cli, ending):
    (tmp_path / "lf.fa").write_bytes(f">rec1\n{GENOME}\n".encode())
    (tmp_path / "cr.fa").write_bytes(f">rec1{ending}{GENOME}{ending}".encode())
    for name in ("lf", "cr"):
        code, _, err = run_cli(["preprocess", str(tmp_path / f"{name}.fa"), "--out", str(tmp_path / name)])
        assert code == 0, err
    assert (tmp_path / "cr" / "chunks.fa").read_text() == (tmp_path / "lf" / "chunks.fa").read_text(), (
        "the header ends at the CR: its id is rec1 and the letters after it are the sequence")
    (tmp_path / "bad.fa").write_bytes(b">rec1\rACGTXXACGT")  # one line for `wc -l`, two in an editor
    code, _, err = run_cli(["preprocess", str(tmp_path / "bad.fa"), "--out", str(tmp_path / "bad")])
    clear_error(code, err, "line 2, column 5", "'X'")


@pytest.mark.parametrize(
    ("header", "named"),
    [("a\x00b", "U+0000"), ("a\x07b", "U+0007"), ("vir\u202eus", "U+202E RIGHT-TO-LEFT OVERRIDE"),
     ("vir\u200bus", "U+200B ZERO WIDTH SPACE")],
    ids=["nul", "bell", "rtl-override", "zero-width-space"],
)  # fmt: skip
def test_ids_with_hidden_characters_are_refused_naming_the_line(tmp_path, run_cli, header, named):
    (tmp_path / "x.fa").write_text(f">ok\n{GENOME}\n>{header}\n{GENOME}\n", encoding="utf-8")
    code, _, err = run_cli(["preprocess", str(tmp_path / "x.fa"), "--out", str(tmp_path / "out")])
    clear_error(code, err, "line 3: id", named)
    assert not (tmp_path / "out").exists()


def test_ids_equal_after_nfc_normalisation_are_duplicates(tmp_path, run_cli):
    (tmp_path / "x.fa").write_text(f">caf\u00e9\n{GENOME}\n>cafe\u0301\n{GENOME}\n", encoding="utf-8")
    code, _, err = run_cli(["preprocess", str(tmp_path / "x.fa"), "--out", str(tmp_path / "out")])
    clear_error(code, err, "line 3: duplicate id", "NFC", "first at line 1")


def test_formula_ids_are_kept_exactly_with_one_warning(tmp_path, run_cli):
    ids = ["=SUM(A1)", "+1", "-x", "@cmd", "plain"]
    (tmp_path / "x.fa").write_text("".join(f">{i}\n{'ATGAAATTTGGGCCC' * 20}\n" for i in ids))
    code, out, err = run_cli(["preprocess", str(tmp_path / "x.fa"), "--out", str(tmp_path / "pp")])
    assert code == 0, err
    assert out.count("4 record id(s) begin with = + - or @") == 1, out
    ckpt = _tiny_checkpoint(tmp_path / "m.pt", 300)
    code, out, err = run_cli(["predict", str(tmp_path / "x.fa"), "--model", str(ckpt), "--weights", "random",
                              "--device", "cpu", "--no-progress", "--out", str(tmp_path / "calls")])
    assert code == 0, err
    calls = tmp_path / "calls"
    summary = json.loads(next(calls.glob("*.json")).read_text())
    assert sum("begin with = + - or @" in w for w in summary["warnings"]) == 1, summary["warnings"]
    for table in ("frames.tsv", "chunks.tsv", "prediction_results.txt", "prediction_results_highestscore.csv"):
        text = (calls / table).read_text()
        for record in ids:
            assert f"\n{record}_chunk_1" in text, f"{record} not kept exactly in {table}"


# --------------------------------------------------------------------------- markdown escapes like HTML


HOSTILE = "<script>alert(1)</script>|<img src=x onerror=alert(2)>.fasta"


def test_markdown_cells_escape_html_and_pipes():
    (line,) = markdown_table((["file"], [[HOSTILE]]))[2:]
    assert "<script>" not in line and "<img" not in line and "&lt;script>" in line and "&lt;/script>" in line
    assert line.count("|") - line.count("\\|") == 2, "a | in a name must not open a new cell"


def test_the_acceptance_markdown_escapes_a_hostile_input_name(tmp_path):
    viral = tmp_path / HOSTILE
    settings = Settings(profile="full", viral=(viral,), host=(tmp_path / "h.fasta",), weights="random",
                        size="tiny", artifacts=tmp_path / "a")
    ctx = AcceptanceSession(settings=settings, run=None, timings={}, outcomes=[], run_id="r1", started="t0")
    paths = ReportPaths(tmp_path / "reports")
    write_side_reports(ctx, decide_verdict(ctx), paths)
    text = paths.markdown.read_text(encoding="utf-8")
    assert "&lt;script>" in text and "<script>" not in text and "<img" not in text, text


# --------------------------------------------------------------------------- no lost work


def test_truncated_safetensors_is_one_message(tmp_path, run_cli):
    from virnucpro_core.models.registry import write_standin

    model = write_standin("fastesm2_650", "tiny", tmp_path / "fm")
    weights = model / "model.safetensors"
    (tmp_path / "p.faa").write_text(">a\nMKVLA\n")
    for size in (weights.stat().st_size // 2, 5):
        os.truncate(weights, size)
        code, _, err = run_cli(["extract", "--model", "fastesm2_650", "--model-path", str(model),
                                str(tmp_path / "p.faa"), "--out", str(tmp_path / "f.pt")])
        clear_error(code, err, "model.safetensors", "truncated or corrupt")
        assert not (tmp_path / "f.pt").exists()


def test_train_refuses_a_full_disk_before_the_first_epoch(tmp_path, run_cli, monkeypatch):
    split = tmp_path / "split"
    split.mkdir()
    merged_file(split / "train.pt", n=40)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: SimpleNamespace(total=1 << 20, used=0, free=4096))
    code, out, err = run_cli(["train", "--features", str(split), "--out", str(tmp_path / "m.pt"), "--no-progress"])
    clear_error(code, err, "not enough free space", "4,096 bytes free")
    assert "epoch" not in out.replace("epochs", ""), out


def test_extract_and_merge_refuse_a_full_disk_before_they_start(tmp_path, run_cli, monkeypatch):
    from virnucpro_core.extract import features as F

    (tmp_path / "p.faa").write_text(">a\nMKVLA\n>b\nMSTNPK\n")
    (tmp_path / "n.fa").write_text(">a\nACGTACGTACGTACG\n>b\nACGTACGTACGTACGTAC\n")
    made = {}
    for model, fasta in (("fastesm2_650", "p.faa"), ("dnabert_s", "n.fa")):
        out = tmp_path / f"{model}.pt"
        assert run_cli(["extract", "--model", model, "--weights", "random", "--size", "tiny", str(tmp_path / fasta),
                        "--out", str(out), "--no-progress"])[0] == 0
        made[model] = out
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: SimpleNamespace(total=1 << 20, used=0, free=4096))
    monkeypatch.setattr(F, "extract_to_file", lambda *a, **k: pytest.fail("extraction started"))
    code, _, err = run_cli(["extract", "--model", "fastesm2_650", "--weights", "random", "--size", "tiny",
                            str(tmp_path / "p.faa"), "--out", str(tmp_path / "again.pt"), "--no-progress"])
    clear_error(code, err, "not enough free space", "4,096 bytes free", "2 vectors of 64 floats")
    code, _, err = run_cli(["merge", str(made["dnabert_s"]), str(made["fastesm2_650"]),
                            "--label", "viral", "--out", str(tmp_path / "m.pt")])
    clear_error(code, err, "not enough free space", "4,096 bytes free")
    assert not (tmp_path / "again.pt").exists() and not (tmp_path / "m.pt").exists()


def test_train_keeps_the_weights_when_the_save_fails(tmp_path, run_cli, monkeypatch):
    split, full, spare = tmp_path / "split", tmp_path / "full", tmp_path / "spare"
    for folder in (split, full, spare):
        folder.mkdir()
    merged_file(split / "train.pt", n=40)
    real_save = checkpoints.atomic_torch_save

    def full_disk(obj, path):
        if Path(path).parent == full:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(obj, path)

    monkeypatch.setattr(checkpoints, "atomic_torch_save", full_disk)
    monkeypatch.setattr("tempfile.tempdir", str(spare))
    code, out, err = run_cli(["train", "--features", str(split), "--out", str(full / "m.pt"), "--max-epochs", "2",
                              "--no-progress"])
    clear_error(code, err, "No space left on device", "the trained weights are kept at", str(spare))
    (kept,) = spare.glob("m.kept-*.pt")
    assert checkpoints.load_checkpoint(kept).model.input_dim == 12
    assert not list(full.iterdir()), "nothing partial is left at --out, no lock"


def test_split_on_a_full_disk_leaves_nothing_behind(tmp_path, run_cli, monkeypatch):
    viral, host = one_class(tmp_path / "v.pt", 1), one_class(tmp_path / "h.pt", 0)
    calls = []

    def full_after_one(view, target):
        calls.append(target)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        real_view(view, target)

    real_view = split_make.save_view
    monkeypatch.setattr(split_make, "save_view", full_after_one)
    code, _, err = run_cli(["split", "--viral", str(viral), "--host", str(host), "--out", str(tmp_path / "split")])
    clear_error(code, err, "No space left on device", "free space")
    assert not (tmp_path / "split").exists() and not list(tmp_path.glob(".split*")), "no split/ half-written"


def one_class(path: Path, label: int, n: int = 20) -> Path:
    """A merged feature file of one class, ids unique to it (what `virnucpro merge --label` writes)."""
    generator = torch.Generator().manual_seed(label)
    ids = [f"{'v' if label else 'h'}{i}_chunk_1F1" for i in range(n)]
    return MergedFeatures(ids, torch.randn(n, 12, generator=generator), torch.full((n,), label),
                          torch.full((n,), 99, dtype=torch.long), {"protein_model": "fastesm2_650"}).save(path)


# --------------------------------------------------------------------------- the suite: options, places, faults


def suite(*options: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pytest", "acceptance/", "-q", "-p", "no:cacheprovider", *options],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, **kwargs)


def _earlier_reports(reports: Path) -> dict[str, str]:
    earlier_reports(reports)
    return {p.name: p.read_text() for p in reports.iterdir()}  # the record too: a refused run leaves it as it was


@pytest.mark.parametrize(
    ("options", "words"),
    [(["--max-time-ratio", "0"], ["--max-time-ratio 0.0 is not positive"]),
     (["--max-time-ratio", "inf"], ["--max-time-ratio inf is not a finite number"]),
     (["--viral-prevalence=-1:-19"], ["viral prevalence '-1:-19' is not usable"]),
     (["--artifacts", "AFILE"], ["--artifacts", "is a file, and a directory goes here"]),
     (["--html", "AFILE/acceptance.html"], ["--html", "AFILE is a file"])],
    ids=["zero-ratio", "infinite-ratio", "negative-prevalence", "artifacts-a-file", "html-under-a-file"],
)  # fmt: skip
def test_bad_suite_options_are_one_usage_error_and_keep_earlier_reports(tmp_path, options, words):
    (tmp_path / "AFILE").write_text("mine\n")
    reports = tmp_path / "reports"
    earlier = _earlier_reports(reports)
    options = [o.replace("AFILE", str(tmp_path / "AFILE")) for o in options]
    html = [] if "--html" in options else ["--html", str(reports / "acceptance.html")]
    run = suite(*html, "--artifacts", str(tmp_path / "art"), *options)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 4, f"a bad option exits 4, got {run.returncode}\n{out[-2000:]}{err[-2000:]}"
    assert "Traceback" not in out + err and "INTERNALERROR" not in out + err, out + err
    for word in words:
        assert word.replace("AFILE", str(tmp_path / "AFILE")) in err, err
    assert {p.name: p.read_text() for p in reports.iterdir()} == earlier, "the earlier reports were touched"
    assert (tmp_path / "AFILE").read_text() == "mine\n"


def test_a_read_only_artifacts_folder_is_one_message(tmp_path, monkeypatch):
    locked = tmp_path / "art"
    locked.mkdir()
    real_access = files.os.access
    monkeypatch.setattr(files.os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    with pytest.raises(InputError, match="is not writable") as raised:
        Settings.resolve(artifacts=str(locked))
    assert "choose another artifacts" in str(raised.value)


def test_a_second_run_on_the_same_artifacts_waits_for_the_first(tmp_path):
    first = ArtifactsLock(tmp_path / "art").acquire(announce=lambda _text: None)  # the first run, here
    try:
        with pytest.raises(InputError, match="in use by another acceptance run") as refused:
            ArtifactsLock(tmp_path / "art").acquire(announce=lambda _text: None, timeout=0)
        assert f"pid {os.getpid()}" in str(refused.value)
        second = suite("--artifacts", str(tmp_path / "art"), "--html", str(tmp_path / "r" / "acceptance.html"))
        waited = ""
        deadline = time.monotonic() + 120
        while "waiting for it to finish" not in waited and time.monotonic() < deadline:
            line = second.stderr.readline()
            if not line:
                break
            waited += line
        assert "another acceptance run is using" in waited and f"pid {os.getpid()}" in waited, waited
        assert second.poll() is None, "the second run waits; it neither runs nor gives up"
        assert not (tmp_path / "r").exists(), "a waiting run touches no report"
    finally:
        first.release()
        if "second" in locals() and second.poll() is None:
            second.kill()
            second.communicate()


def test_ctrl_c_exits_2_writes_no_verdict_and_keeps_the_earlier_reports(tmp_path, smoke_copy):
    reports = tmp_path / "reports"
    earlier = _earlier_reports(reports)
    # The session's smoke stages, copied: the run reuses the extractions and starts training within seconds.
    art = smoke_copy(tmp_path / "art")
    # A job started in the background (`cmd &`, as some CI runners start it) inherits SIGINT ignored, and Python
    # then never turns it into KeyboardInterrupt: give the suite the terminal's default, as a user's shell does.
    run = suite("--artifacts", str(art), "--html", str(reports / "acceptance.html"), "-s",
                "--max-epochs", "1", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen, deadline = "", time.monotonic() + 240
    # Interrupted while it trains (the gate's two MLPs, in worker processes): the stage Ctrl-C most often meets.
    while "train[fast]: building" not in seen and time.monotonic() < deadline:
        line = run.stdout.readline()
        if not line:
            break
        seen += line
    assert "train[fast]: building" in seen, seen
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=240)
    assert run.returncode == 2, f"Ctrl-C is pytest's 'interrupted' (2), got {run.returncode}\n{out[-2000:]}{err}"
    assert "no verdict" in out and "rerun the same command" in out, out[-2000:]
    # This run wrote no verdict; the earlier run's reports (which name their own run) stay whole, nothing half
    # written beside them: reports are moved in only when all of a run's are finished.
    assert {p.name: p.read_text() for p in reports.iterdir()} == earlier, "the earlier reports were touched"
    assert ArtifactsLock(art).acquire(announce=lambda _t: None, timeout=0), "the lock was released"


# --------------------------------------------------------------------------- identical feature rows


def test_identical_rows_are_counted_and_label_conflicts_warned(tmp_path, run_cli):
    data = torch.randn(20, 12, generator=torch.Generator().manual_seed(3))
    data[1] = data[0]  # one copy within the viral class
    lengths = torch.full((20,), 99, dtype=torch.long)
    viral = MergedFeatures([f"v{i}_chunk_1F1" for i in range(20)], data, torch.ones(20, dtype=torch.long), lengths,
                           {"protein_model": "fastesm2_650"}).save(tmp_path / "v.pt")
    # every viral row again, under new ids and the host label: what a host file built from viral records holds
    host = MergedFeatures([f"h{i}_chunk_1F1" for i in range(20)], data.clone(), torch.zeros(20, dtype=torch.long),
                          lengths, {"protein_model": "fastesm2_650"}).save(tmp_path / "h.pt")
    code, out, err = run_cli(["split", "--viral", str(viral), "--host", str(host), "--out", str(tmp_path / "s")])
    assert code == 0, err
    assert out.count("warning: 40 samples share 19 identical feature vector(s) with opposite labels") == 1, out
    assert "v0_chunk_1F1 = h0_chunk_1F1" in out, "the warning gives examples"
    duplicates = json.loads((tmp_path / "s" / "distribution.json").read_text())["duplicates"]
    assert duplicates["within_class"] == {"host": 1, "viral": 1}
    assert (duplicates["conflicting_vectors"], duplicates["conflicting_samples"]) == (19, 40)
    test = json.loads((tmp_path / "s" / "manifest.json").read_text())["test"]["ids"]
    vector = {f"{c}{i}_chunk_1F1": 0 if i == 1 else i for c in "vh" for i in range(20)}  # rows 0 and 1: one vector
    in_training = {vector[i] for i in vector if i not in test}
    expected = sum(vector[i] in in_training for i in test)
    assert duplicates["test_identical_to_training"] == expected > 0


def test_the_reports_show_identical_rows_in_the_test_set_section(tmp_path):
    from virnucpro_core.gate.acceptance_report import split_report
    from virnucpro_core.split.records import Duplicates

    summary = SimpleNamespace(
        leakage=SimpleNamespace(leaked_samples=0, test_samples=10, fraction=0.0, chunk_leaked_samples=0,
                                chunk_fraction=0.0, leaked_sources=0),
        split_id="s" * 64, rounding_rule="r", seed=1, group_by="sample",
        duplicates=Duplicates({"host": 0, "viral": 2}, 1, 2, [["<b>v</b>", "h|1"]], 3, 10))
    from unittest import mock

    with mock.patch("virnucpro_core.gate.acceptance_report.split_table", return_value=(["a"], [])), \
            mock.patch("virnucpro_core.gate.acceptance_report.length_table", return_value=(["a"], [])):
        report = split_report(SimpleNamespace(results=SimpleNamespace(split=SimpleNamespace(summary=summary))))
    assert "3 of 10 test samples have a feature vector identical to a training sample's" in report.leakage_warning
    assert "2 samples share 1 identical feature vector(s) with opposite labels" in report.leakage_warning
    assert ["test samples identical to a training sample", "3 of 10"] in report.duplicates[1]
    assert report.leakage["test_identical_to_training"] == 3


# --------------------------------------------------------------------------- kill -9, then a rerun

# Stages in the order the suite builds them (its "NAME: ... ..." line as each starts): extraction, split,
# training, the baseline's extraction and an evidence training; the run is killed (SIGKILL, its whole process
# group) as each starts, so every later run finds the earlier ones finished and this one cut short.
KILL_AT = ["extract[fastesm2_650,viral]", "split[fast]", "train[fast]", "extract[esm2_3b,host]", "train[source,fast]"]
# What a rerun must reproduce: every number, not the run's id, times or which stages were reused.
NUMBERS = ("verdict", "test_set", "training", "comparison", "generalisation")


def _numbers(reports: Path, artifacts: Path) -> dict:
    """acceptance.json's numbers, without what differs between any two runs: clocks (the speed gate's timings,
    checkpoints' creation times and so their digests) and the artifacts folder's paths and cache keys."""
    report = json.loads((reports / "acceptance.json").read_text(encoding="utf-8"))

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("checkpoint", "seconds")}
        if isinstance(value, list):
            return [strip(v) for v in value if not (isinstance(v, str) and v.startswith("speed gate:"))]
        return value

    numbers = strip({key: report[key] for key in NUMBERS})
    numbers["verdict"]["gates"]["speed"].pop("detail")
    return json.loads(json.dumps(numbers).replace(str(artifacts), "ARTIFACTS"))


@pytest.mark.slow
def test_kill_9_at_each_stage_then_a_rerun_gives_the_numbers_of_a_clean_run(tmp_path, smoke_artifacts):
    options = ["-s", "--max-epochs", "3", "--bench-runs", "1", "--bench-warmup", "0", "--allow-incomplete"]
    killed = tmp_path / "killed"  # empty: every stage is built here, by runs killed one after another
    for stage in KILL_AT:
        run = suite(*options, "--artifacts", str(killed), "--html", str(tmp_path / "b" / "acceptance.html"),
                    start_new_session=True)
        seen = ""
        for line in run.stdout:
            seen += line
            if f"{stage}:" in line and line.rstrip().endswith("..."):
                os.killpg(run.pid, signal.SIGKILL)  # the suite and anything it started: nothing cleans up
                break
        run.communicate(timeout=120)
        assert run.returncode == -signal.SIGKILL, f"{stage} never started:\n{seen[-3000:]}"
    rerun = suite(*options, "--artifacts", str(killed), "--html", str(tmp_path / "b" / "acceptance.html"))
    out, err = rerun.communicate(timeout=1200)
    assert rerun.returncode == 0, out[-3000:] + err[-2000:]
    assert "reused" in out, "finished stages are reused after a kill"
    # The clean run: on the session's smoke folder, whose stages were built by uninterrupted runs (what it lacks,
    # this run builds; its lock makes it wait for another test's run there).
    clean = suite(*options, "--artifacts", str(smoke_artifacts), "--html", str(tmp_path / "a" / "acceptance.html"))
    out, err = clean.communicate(timeout=1200)
    assert clean.returncode == 0, out[-3000:] + err[-2000:]
    assert _numbers(tmp_path / "b", killed) == _numbers(tmp_path / "a", smoke_artifacts)


def test_a_view_made_with_relative_paths_is_used_from_another_directory(tmp_path, run_cli, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    one_class(tmp_path / "data" / "v.pt", 1)
    one_class(tmp_path / "data" / "h.pt", 0)
    monkeypatch.chdir(tmp_path / "data")
    code, _, err = run_cli(["split", "--viral", "v.pt", "--host", "h.pt", "--out", "split"])
    assert code == 0, err
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, out, err = run_cli(["train", "--features", "../data/split", "--out", "m.pt", "--max-epochs", "1",
                              "--no-progress"])
    assert code == 0, err
    assert (tmp_path / "elsewhere" / "m.pt").is_file()
