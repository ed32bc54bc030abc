"""benchmarks/time_to_verdict.py: what it runs, in which order, and its usage errors (the timings are not tested)."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest

from tests.scripts import imported_script


@pytest.fixture
def ttv():
    with imported_script("benchmarks/time_to_verdict.py") as module:
        yield module


def test_an_unknown_step_is_a_usage_error_before_anything_is_cloned(ttv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        ttv.main(["--steps", "smoke,tests", "--work", str(tmp_path / "w")])
    assert exit_.value.code == 2 and "--steps takes smoke, test or smoke,test" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_each_condition_runs_smoke_cold_then_cached_then_make_test_on_no_artifacts(ttv, tmp_path, monkeypatch):
    ran, real_popen = [], subprocess.Popen

    def fake_run(command, cwd=None, **_):
        if command[:2] == ["git", "clone"]:
            (tmp_path / "w" / "clone").mkdir(parents=True)
        return SimpleNamespace(stdout="abc1234\n", returncode=0)

    def fake_timed(command, cwd, env, log):
        ran.append((" ".join(command), (cwd / "artifacts").exists(), "OMP_NUM_THREADS" in env))
        (cwd / "artifacts").mkdir(exist_ok=True)  # what make smoke / make test leave behind
        return {"seconds": 1.0, "exit": 0, "load_before": 0.1, "load_after": 0.2}

    monkeypatch.setattr(ttv.subprocess, "run", fake_run)
    monkeypatch.setattr(ttv, "timed", fake_timed)
    monkeypatch.setattr(ttv.subprocess, "Popen", lambda *a, **k: real_popen(["sleep", "30"]))  # the busy process
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "ttv.json"
    assert ttv.main(["--work", str(tmp_path / "w"), "--steps", "smoke,test", "--json", str(out)]) == 0
    # (command, artifacts already there, OMP_NUM_THREADS passed on): cold runs start with none; no user's threads
    assert ran == [("make install", False, False),
                   ("make smoke", False, False), ("make smoke", True, False), ("make test", False, False),
                   ("make smoke", False, False), ("make smoke", True, False), ("make test", False, False)]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["step"], r["condition"]) for r in rows] == [
        ("make install", "quiet"), ("make smoke (cold)", "quiet"), ("make smoke (cached)", "quiet"),
        ("make test", "quiet"), ("make smoke (cold)", "busy"), ("make smoke (cached)", "busy"), ("make test", "busy")]
