"""The stage cache and the run's files: a stage built once and reused, each file opened and hashed once."""

from __future__ import annotations

import os

import torch

from virnucpro_core import custody
from virnucpro_core.gate import stages as stages_module
from virnucpro_core.files import sha256_file
from virnucpro_core.code_identity import CodeIdentity
from virnucpro_core.gate.stages import RunFiles, StageCache

CODE = CodeIdentity("1.0", {"virnucpro_core/train/training.py": "a" * 16}, {"torch": "2.13.0"})


def test_a_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_text("one")
    hashed = []
    real = custody.hashlib.file_digest
    monkeypatch.setattr(custody.hashlib, "file_digest", lambda f, name: hashed.append(f.name) or real(f, name))
    files = RunFiles()
    assert files.sha256(path) == files.sha256(tmp_path / "." / "a.txt") == sha256_file(path)
    assert len(hashed) == 1, "the same file, however named, is hashed once"
    path.write_text("two, longer")
    assert files.sha256(path) == sha256_file(path) and len(hashed) == 2, "a rewritten file is hashed again"


def test_a_merged_file_is_loaded_once_for_its_layout_meta_ids_and_rows(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    torch.save({"ids": ["a_chunk_1F1", "a_chunk_2F1"], "data": torch.zeros(2, 3), "labels": torch.ones(2, dtype=torch.long),
                "lengths": torch.tensor([5, 6]), "meta": {"label": "viral"}}, path)
    loads = []
    real = stages_module.torch_load
    monkeypatch.setattr(stages_module, "torch_load", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    files = RunFiles()
    assert files.layout(path) and files.meta(path) == {"label": "viral"} and files.ids(path) == ["a_chunk_1F1",
                                                                                                   "a_chunk_2F1"]
    rows, digest = files.split_input(path)
    assert files.rows(path) is rows and rows.ids == ["a_chunk_1F1", "a_chunk_2F1"] and digest == sha256_file(path)
    assert loads == [path]


def test_a_finished_stage_is_reused_and_logged(tmp_path):
    lines, built = [], []
    cache = StageCache(rebuild=False, announce=lines.append)

    def build(directory):
        built.append(directory)
        (directory / "out.txt").write_text("x")

    def load(directory):
        return (directory / "out.txt").read_text()

    first = cache.cached("thing[a]", {"p": 1}, lambda key: tmp_path / f"thing-{key}", build, load, lambda v: "1 item",
                         code=CODE)
    again = cache.cached("thing[a]", {"p": 1}, lambda key: tmp_path / f"thing-{key}", build, load, code=CODE)
    assert first == again == "x" and len(built) == 1
    assert [(r.stage, r.reused) for r in cache.records] == [("thing[a]", False), ("thing[a]", True)]
    assert lines[0] == "thing[a]: building ..." and lines[1].endswith("(1 item)") and "reused" in lines[2]
    StageCache(rebuild=True, announce=lines.append).cached("thing[a]", {"p": 1}, lambda key: tmp_path / f"thing-{key}",
                                                           build, load, code=CODE)
    assert len(built) == 2, "--rebuild builds a finished stage again"
    cache.write_log(tmp_path / "stages.json")
    assert os.path.getsize(tmp_path / "stages.json") > 0
