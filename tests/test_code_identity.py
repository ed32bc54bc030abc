"""Code identity: which code made a cached stage, a feature file or a checkpoint, and what changed since."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from virnucpro_core import code_identity as C
from virnucpro_core.code_identity import RESULTS, CodeIdentity, closure, code_identity, code_of
from virnucpro_core.gate.stages import StageCache, stage_code


def test_a_stage_s_code_is_what_its_module_imports_and_not_the_report():
    training = code_identity("virnucpro_core.train.training")
    assert "virnucpro_core/train/training.py" in training.sources
    assert "virnucpro_core/models/classifier.py" in training.sources, "the MLP's initialisation is training's code"
    assert not any(path.startswith("virnucpro_core/gate/") for path in training.sources), (
        "an edit to the report or the gate does not retrain the MLPs")
    assert not any("compare/" in path or "evaluate/" in path for path in training.sources)


def test_function_level_imports_count_and_package_data_follows_its_module():
    extract = code_of("extract")
    # registry.py imports the DNABERT-S stand-in's tokenizer inside functions; its files are package data.
    assert "virnucpro_core/models/dnabert_tokenizer.py" in extract.sources
    assert any(path.startswith("virnucpro_core/data/dnabert_s_standin_tokenizer/") for path in extract.sources)
    assert set(extract.libraries) == {"torch", "transformers"}


@pytest.mark.parametrize("kind", sorted(RESULTS))
def test_every_kind_of_result_names_modules_that_exist(kind):
    roots, _ = RESULTS[kind]
    assert set(roots) <= set(closure(roots))
    assert code_of(kind).digest == code_of(kind).digest, "computed once, the same every time"


def test_an_unknown_module_is_an_error_not_an_empty_identity():
    with pytest.raises(ValueError, match="virnucpro_core.nothing"):
        closure(["virnucpro_core.nothing"])


def test_differences_name_the_version_each_changed_file_and_library():
    old = CodeIdentity("0.1.0", {"virnucpro_core/a.py": "1" * 16, "virnucpro_core/b.py": "2" * 16}, {"torch": "2.13.0"})
    new = CodeIdentity("0.2.0", {"virnucpro_core/a.py": "3" * 16, "virnucpro_core/c.py": "4" * 16}, {"torch": "2.14.1"})
    assert new.differences(old) == ["version 0.1.0 → 0.2.0", "virnucpro_core/a.py changed",
                                    "virnucpro_core/b.py no longer used", "virnucpro_core/c.py added",
                                    "torch 2.13.0 → 2.14.1"]
    assert new.change_from(old.to_dict()) == ("built by other code (version 0.1.0 → 0.2.0, virnucpro_core/a.py "
                                              "changed, virnucpro_core/b.py no longer used and 2 more)")
    assert new.change_from(new.to_dict()) is None
    assert new.change_from(None) == "built by an older version, which recorded no code identity"
    assert CodeIdentity.from_dict(json.loads(json.dumps(new.to_dict()))) == new


def _stage(cache, tmp_path, built, code):
    def build(directory):
        built.append(directory)
        (directory / "out.txt").write_text("x")

    return cache.cached("train[fast]", {"p": 1}, lambda key: tmp_path / f"train-{key}", build,
                        lambda d: (d / "out.txt").read_text(), code=code)


def test_a_stage_built_by_other_code_is_rebuilt_with_one_line_naming_what_changed(tmp_path):
    old = stage_code("train")
    changed_source = dict(old.sources, **{"virnucpro_core/train/training.py": "0" * 16})
    new = CodeIdentity(old.version, changed_source, old.libraries)
    lines, built = [], []
    _stage(StageCache(rebuild=False, announce=lines.append), tmp_path, built, old)
    _stage(StageCache(rebuild=False, announce=lines.append), tmp_path, built, old)
    assert len(built) == 1, "the same code reuses its stage"
    lines.clear()
    _stage(StageCache(rebuild=False, announce=lines.append), tmp_path, built, new)
    assert len(built) == 2
    assert lines[0] == ("train[fast]: built by other code (virnucpro_core/train/training.py changed); rebuilding ...")
    (done,) = tmp_path.glob("train-*/stage.json")
    assert json.loads(done.read_text())["code"] == new.to_dict(), "the stage records the code that built it"


def test_a_version_bump_rebuilds_and_reuse_from_other_code_keeps_and_lists_the_stage(tmp_path):
    old = stage_code("train")
    bumped = CodeIdentity("9.9.9", old.sources, old.libraries)
    built = []
    _stage(StageCache(rebuild=False, announce=lambda line: None), tmp_path, built, old)
    lines = []
    keeping = StageCache(rebuild=False, announce=lines.append, reuse_other_code=True)
    _stage(keeping, tmp_path, built, bumped)
    assert len(built) == 1, "--reuse-stages-from-other-code keeps it"
    assert keeping.other_code == [("train[fast]", f"built by other code (version {old.version} → 9.9.9)")]
    assert "reused anyway (--reuse-stages-from-other-code)" in lines[0]
    _stage(StageCache(rebuild=False, announce=lines.append), tmp_path, built, bumped)
    assert len(built) == 2
    assert f"train[fast]: built by other code (version {old.version} → 9.9.9); rebuilding ..." in lines


def test_a_stage_of_the_previous_format_is_rebuilt_as_one_of_unknown_code(tmp_path):
    built, lines = [], []
    _stage(StageCache(rebuild=False, announce=lines.append), tmp_path, built, stage_code("train"))
    (done,) = tmp_path.glob("train-*/stage.json")
    record = json.loads(done.read_text())
    del record["code"]
    record["format"] = 2
    done.write_text(json.dumps(record))
    _stage(StageCache(rebuild=False, announce=lines.append), tmp_path, built, stage_code("train"))
    assert len(built) == 2
    assert "train[fast]: built by an older version, which recorded no code identity; rebuilding ..." in lines


def test_the_report_names_version_source_digest_and_commit():
    line = C.describe_package()
    assert line.startswith(f"virnucpro-accept {C.package_identity().version}, source sha256 ")
    assert "commit " in line and len(C.package_identity().sources) > 50


# --------------------------------------------------------------------------- end to end, on a copy of the package

ROOT = Path(__file__).resolve().parents[1]


def _repository_copy(dest: Path) -> Path:
    """The suite and its package copied (the copy's ``virnucpro_core`` is the one its runs import)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("virnucpro_core", "acceptance", "fixtures"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in ("pytest.ini",):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def _suite(repo: Path, artifacts: Path, *options: str) -> str:
    run = subprocess.run([sys.executable, "-m", "pytest", "acceptance/", "-q", "-p", "no:cacheprovider",
                          "--artifacts", str(artifacts), "--html", str(repo / "reports" / "acceptance.html"),
                          "--allow-incomplete", *options], cwd=repo, capture_output=True, text=True, timeout=1200,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run.stdout


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


@pytest.mark.slow
def test_stages_of_older_code_are_rebuilt_and_only_those(smoke_copy, tmp_path):
    repo, artifacts = _repository_copy(tmp_path / "repo"), smoke_copy(tmp_path / "artifacts")
    _suite(repo, artifacts, "-k", "accuracy")  # the copy's stages as this code builds them (reused where they are)
    weights = {p.parent.name: p.read_bytes() for p in artifacts.glob("train/*/final.pt")}

    # The MLP's initialisation: the gate's two trainings are built again, nothing before them.
    _edit(repo / "virnucpro_core/models/classifier.py", "nn.init.xavier_uniform_(module.weight)",
          "nn.init.xavier_normal_(module.weight)")
    out = _suite(repo, artifacts, "-k", "accuracy")
    for embedder in ("fast", "baseline"):
        assert (f"train[{embedder}]: built by other code (virnucpro_core/models/classifier.py changed); "
                f"rebuilding ...") in out, out
    assert "split[fast]: reused" in out and "extract[fastesm2_650,viral]: reused" in out, out
    # The gate's two trainings give other weights; the evidence's (not run under -k accuracy) are as they were.
    changed = sorted(p.parent.name.split("-")[0] for p in artifacts.glob("train/*/final.pt")
                     if p.read_bytes() != weights.get(p.parent.name))
    assert changed == ["baseline", "fast"], changed

    # Kept on request: the stages are reused and listed in the banner (the verdict rule: tests/gate/test_verdict.py).
    _edit(repo / "virnucpro_core/__init__.py", f'__version__ = "{C.package_identity().version}"',
          '__version__ = "99.0.0"')
    out = _suite(repo, artifacts, "-k", "accuracy", "--reuse-stages-from-other-code")
    report = json.loads((repo / "reports" / "acceptance.json").read_text())
    assert "reused anyway (--reuse-stages-from-other-code)" in out
    assert "OTHER CODE:" in report["notice"] and "preprocess[viral]: built by other code (version" in report["notice"]
    assert any("built by other code were reused" in reason for reason in report["verdict"]["reasons"])


def test_a_feature_file_of_other_stand_in_code_is_extracted_again(tmp_path):
    """How the stand-ins are built changed: `virnucpro extract` (and so the suite, whose extraction is the same
    function) extracts again, saying what changed, so the speed gate and the accuracy gate judge the same models."""
    repo = _repository_copy(tmp_path / "repo")
    fasta = tmp_path / "p.faa"
    fasta.write_text(">s0\nMKVLAAGIVW\n>s1\nMSTNPKPQRK\n")
    argv = [sys.executable, "-m", "virnucpro_core.cli", "extract", str(fasta), "--model", "fastesm2_650", "--weights",
            "random", "--size", "tiny", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "p.pt")]

    def extract() -> subprocess.CompletedProcess:
        run = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert run.returncode == 0, run.stdout + run.stderr
        return run

    first = extract()
    assert f"wrote {tmp_path / 'p.pt'}" in first.stdout
    vectors = torch.load(tmp_path / "p.pt")["data"]
    _edit(repo / "virnucpro_core/models/registry.py", "torch.manual_seed(seed)", "torch.manual_seed(seed + 1)")
    again = extract()
    assert "built by other code (virnucpro_core/models/registry.py changed); extracting again" in again.stderr, (
        again.stderr)
    assert f"wrote {tmp_path / 'p.pt'}" in again.stdout and "reused" not in again.stdout
    assert not torch.equal(torch.load(tmp_path / "p.pt")["data"], vectors), "the new stand-ins' vectors"
