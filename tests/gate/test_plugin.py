"""Nothing of a data or model folder runs unless the user asked for it (issue 38).

Every folder here holds a ``conftest.py`` (and the model folder a
``modeling_fastesm.py``) that writes a marker file when Python imports it. The
suite is started as a user starts it, with the options as the README writes
them (``--viral PATH``) and in the ``--flag=PATH`` form: no marker may appear.
A control run without our pytest plugin shows the markers do appear when
pytest does not know the options before it pre-parses (what the plugin fixes),
so the check can fail. The parity check runs a snapshot's code only once our
loader has accepted the directory as FastESM2_650: a tiny directory's code, and
that of one our loader refuses, never runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.extract.test_parity import snapshot
from virnucpro_core.errors import InputError
from virnucpro_core.extract import parity
from virnucpro_core.extract.parity import NOT_RUN, default_proteins, fastesm_parity

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "fixtures" / "smoke"


def marker_code(marker: Path, extra: str = "") -> str:
    """Python that leaves ``marker`` behind when it is imported."""
    return f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n{extra}"


def _folders(tmp_path: Path) -> dict[str, Path]:
    """A data folder, another checkout of this suite (its conftest adds our options too) and a model folder."""
    data, other = tmp_path / "data", tmp_path / "other-checkout" / "fixtures"
    data.mkdir()
    other.mkdir(parents=True)
    (data / "viral.fasta").write_bytes((SMOKE / "viral.fasta").read_bytes())
    (other / "host.fasta").write_bytes((SMOKE / "host.fasta").read_bytes())
    (data / "conftest.py").write_text(marker_code(tmp_path / "data.ran"))
    (other.parent / "conftest.py").write_text(marker_code(
        tmp_path / "checkout.ran", "def pytest_addoption(parser):\n    parser.addoption('--profile')\n"))
    model = snapshot(tmp_path, code=marker_code(tmp_path / "model-code.ran"))
    (model / "conftest.py").write_text(marker_code(tmp_path / "model-conftest.ran"))
    return {"viral": data / "viral.fasta", "host": other / "host.fasta", "model": model}


def _suite(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})


def _options(folders: dict[str, Path], form: str = "space") -> list[str]:
    """The options naming the folders, ``--viral PATH`` as the README writes them (``space``) or ``--viral=PATH``."""
    named = {"--viral": folders["viral"], "--host": folders["host"], "--fast-model": folders["model"]}
    given = [[flag, str(path)] if form == "space" else [f"{flag}={path}"] for flag, path in named.items()]
    return ["--profile", "full", "--weights", "pretrained", *(word for pair in given for word in pair)]


@pytest.mark.parametrize(("form", "addopts"), [("space", []), ("equals", []), ("space", ["-o", "addopts=-ra"])],
                         ids=["space", "equals", "space-without-plugin"])
def test_no_conftest_of_an_input_folder_runs_at_start_up(tmp_path, form, addopts):
    """pytest imports the conftest files it finds at start-up, before collecting, whatever it collects then: one
    light test file is collected here (the slow test below runs the suite itself). Without our plugin (the
    control: pytest.ini's addopts taken away) the space-separated form makes pytest import the data folder's
    conftest.py and the other checkout's, before any check of ours: the test can fail."""
    run = _suite("tests/test_heartbeat.py", "--collect-only", "-q", *addopts, *_options(_folders(tmp_path), form),
                 timeout=120)
    if addopts:
        ran = sorted(p.name for p in tmp_path.glob("*.ran"))
        assert ran == ["checkout.ran", "data.ran", "model-conftest.ran"], run.stdout + run.stderr
        return
    assert sorted(p.name for p in tmp_path.glob("*.ran")) == [], run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0 and "Traceback" not in run.stdout + run.stderr, run.stdout[-3000:] + run.stderr
    assert "already added" not in run.stderr, "the other checkout's conftest was imported"


@pytest.mark.slow
def test_a_full_run_imports_no_code_of_its_input_and_model_folders(tmp_path):
    folders = _folders(tmp_path)
    html = tmp_path / "reports" / "acceptance.html"
    run = _suite("acceptance/test_parity.py", "-q", *_options(folders), "--artifacts", str(tmp_path / "art"),
                 "--html", str(html), "--allow-incomplete")
    assert sorted(p.name for p in tmp_path.glob("*.ran")) == [], run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "Traceback" not in run.stdout + run.stderr and "already added" not in run.stderr
    report = json.loads(html.with_name("acceptance.json").read_text(encoding="utf-8"))
    assert report["parity"]["status"] == NOT_RUN and report["parity"]["code_sha256"] is None
    assert "stand-in's size" in report["parity"]["reason"] and "its own code is not run" in report["parity"]["reason"]


def test_parity_runs_no_code_of_a_directory_that_is_not_fastesm2(tmp_path, monkeypatch):
    marker = tmp_path / "model-code.ran"
    proteins = default_proteins(4)
    # A tiny directory that our loader accepts as a stand-in: not FastESM2_650, so its code does not run.
    result = fastesm_parity(snapshot(tmp_path / "tiny", code=marker_code(marker)), proteins, "cpu")
    assert result.status == NOT_RUN and "not FastESM2_650 itself (1280-d)" in result.reason, result.reason
    assert not marker.exists() and result.code_sha256 is None
    # With stand-in sizes allowed (as the tests ask), every check of our loader still comes first.
    monkeypatch.setattr(parity, "CODE_RUNS_FOR_SIZES", ("full", "tiny"))
    other = snapshot(tmp_path / "esm", code=marker_code(marker), model_type="esm")  # another model
    shapes = snapshot(tmp_path / "shapes", code=marker_code(marker), intermediate_size=96)  # config ≠ weights
    broken = snapshot(tmp_path / "broken", code=marker_code(marker))
    os.truncate(broken / "model.safetensors", 100)  # weights cut short
    for directory, words in ((other, "model_type"), (shapes, "intermediate"), (broken, "truncated or corrupt")):
        with pytest.raises(InputError, match=words):
            fastesm_parity(directory, proteins, "cpu")
        assert not marker.exists(), f"{directory.name}: the model's own code ran before our checks refused it"
