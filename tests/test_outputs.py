"""Outputs are ours or refused: a command replaces only its own unchanged files, one writer per output at a time."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from tests.test_hostile_inputs import clear_error as refused
from tests.split.test_make import HOST_SOURCES, VIRAL_SOURCES, merged
from virnucpro_core.errors import InputError
from virnucpro_core.outputs import RECORD, Output, OutputClaim, read_record

GENOME = ">g\n" + "ATGAAATTTGGGCCC" * 20 + "\n"


@pytest.fixture
def genome(tmp_path) -> Path:
    path = tmp_path / "g.fa"
    path.write_text(GENOME)
    return path


def test_preprocess_refuses_a_folder_holding_the_users_own_files_of_its_names(tmp_path, run_cli, genome):
    out = tmp_path / "out"
    out.mkdir()
    (out / "protein.faa").write_text(">mine\nMKV\n")
    (out / "nucleotide.fa").write_text(">mine\nACGT\n")
    code, stdout, err = run_cli(["preprocess", str(genome), "--out", str(out)])
    refused(code, err, str(out / "protein.faa"), str(out / "nucleotide.fa"), "not written by virnucpro", "--force")
    assert "replacing" not in stdout, "no false 'replacing the earlier preprocess output'"
    assert (out / "protein.faa").read_text() == ">mine\nMKV\n" and not (out / "chunks.fa").exists()

    code, stdout, err = run_cli(["preprocess", str(genome), "--out", str(out), "--force"])
    assert code == 0, err
    assert "--force: replacing" in stdout and "which virnucpro did not write" in stdout
    assert read_record(out)["protein.faa"]["command"] == "preprocess"


def test_a_rerun_replaces_its_own_outputs_and_says_so_but_not_once_they_were_edited(tmp_path, run_cli, genome):
    out = tmp_path / "out"
    assert run_cli(["preprocess", str(genome), "--out", str(out)])[0] == 0
    assert set(read_record(out)) == {"chunks.fa", "nucleotide.fa", "protein.faa", "preprocess.json"}
    code, stdout, _ = run_cli(["preprocess", str(genome), "--out", str(out)])
    assert code == 0 and "written earlier by `virnucpro preprocess`" in stdout, stdout
    (out / "protein.faa").write_text((out / "protein.faa").read_text() + ">added\nMKV\n")
    code, _, err = run_cli(["preprocess", str(genome), "--out", str(out)])
    refused(code, err, "protein.faa", "changed since `virnucpro preprocess` wrote it", "--force")


def test_compare_refuses_the_users_report_and_predict_the_users_tables(tmp_path, run_cli):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("# my notes\n")
    code, _, err = run_cli(["compare", "--fast", str(tmp_path / "f.json"), "--baseline", str(tmp_path / "b.json"),
                            "--out", str(mine)])
    refused(code, err, str(mine / "report.md"), "not written by virnucpro")
    (mine / "frames.tsv").write_text("frame_id\n")
    code, _, err = run_cli(["predict", "--features", str(tmp_path / "x.pt"), "--model", str(tmp_path / "m.pt"),
                            "--out", str(mine)])
    refused(code, err, str(mine / "frames.tsv"))
    assert (mine / "report.md").read_text() == "# my notes\n" and (mine / "frames.tsv").read_text() == "frame_id\n"


@pytest.fixture
def split_dir(tmp_path, run_cli) -> Path:
    viral, host = tmp_path / "viral.pt", tmp_path / "host.pt"
    torch.save(merged(VIRAL_SOURCES, 1, seed=1), viral)
    torch.save(merged(HOST_SOURCES, 0, seed=2), host)
    code, _, err = run_cli(["split", "--viral", str(viral), "--host", str(host), "--out", str(tmp_path / "split")])
    assert code == 0, err
    return tmp_path / "split"


def test_an_out_onto_another_commands_file_is_refused_even_with_force(split_dir, run_cli, tmp_path):
    manifest = split_dir / "manifest.json"
    before = manifest.read_bytes()
    code, _, err = run_cli(["evaluate", "--model", str(tmp_path / "m.pt"), "--features", str(split_dir / "test.pt"),
                            "--out", str(manifest), "--force"])
    refused(code, err, str(manifest), "written by `virnucpro split`, not by `virnucpro evaluate`")
    assert manifest.read_bytes() == before, "the locked split's manifest is untouched"


def test_an_out_onto_a_file_that_views_read_is_refused_even_with_force(split_dir, run_cli, tmp_path):
    viral = tmp_path / "viral.pt"
    assert str(split_dir / "train.pt") in read_record(tmp_path)["viral.pt"]["needed_by"]
    code, _, err = run_cli(["merge", str(tmp_path / "d.pt"), str(tmp_path / "p.pt"), "--label", "viral",
                            "--out", str(viral), "--force"])
    refused(code, err, str(viral), "view(s) read their rows from it", str(split_dir))


def test_a_second_writer_waits_for_the_first_and_says_who_holds_the_output(tmp_path):
    out = tmp_path / "out"
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with OutputClaim("split", [Output(out, ("manifest.json",))], announce=lambda line: None):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(10)
    lines = []
    try:
        with pytest.raises(InputError, match=r"being written by another command \(pid \d+, virnucpro split, started"):
            OutputClaim("split", [Output(out, ("manifest.json",))], announce=lines.append, timeout=0.6).__enter__()
        assert lines and "waiting for it to finish" in lines[0]
    finally:
        release.set()
        thread.join()


def test_a_failed_command_leaves_no_folder_made_for_its_lock(tmp_path):
    out = tmp_path / "new" / "deeper" / "split"
    with pytest.raises(RuntimeError), OutputClaim("split", [Output(out, ("manifest.json",))], announce=print):
        raise RuntimeError("the split failed")
    assert not (tmp_path / "new").exists()


SPLIT_AT_ONCE = """
import sys
from virnucpro_core.cli import main
sys.exit(main(["split", "--viral", sys.argv[1], "--host", sys.argv[2], "--out", sys.argv[3], "--seed", sys.argv[4]]))
"""


@pytest.mark.slow
def test_two_splits_at_once_on_one_new_out_leave_one_whole_split(tmp_path):
    viral, host = tmp_path / "viral.pt", tmp_path / "host.pt"
    torch.save(merged(VIRAL_SOURCES, 1, seed=1), viral)
    torch.save(merged(HOST_SOURCES, 0, seed=2), host)
    out = tmp_path / "split"
    runs = [subprocess.Popen([sys.executable, "-c", SPLIT_AT_ONCE, str(viral), str(host), str(out), seed],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in ("1", "2")]
    results = [(run.wait(120), run.stderr.read()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refusal = next(err for code, err in results if code == 2)
    assert "already holds a different split" in refusal, refusal
    manifest = json.loads((out / "manifest.json").read_text())
    for side in ("train", "test"):
        view = torch.load(out / f"{side}.pt", weights_only=True)
        assert view["meta"]["split"]["split_id"] == manifest["split_id"], "every file comes from the one split"
    assert json.loads((out / RECORD).read_text())["files"]["manifest.json"]["command"] == "split"
