"""The acceptance suite's options and places as a user or another user's files give them (issue 38): a bad
``--device``, more threads than cores, an input whose name is not UTF-8, a stage cache shared read-only.

Outcome: a usage error (exit 4) before anything runs, or, for a stage that cannot be built where the cache is,
an ERROR (exit 12) before its work starts, with one message that says what to do (rerunning cannot help there);
never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "fixtures" / "smoke"


def suite(*options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options], cwd=ROOT,
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def test_a_bad_device_is_a_usage_error_and_threads_beyond_the_cores_are_capped(tmp_path):
    run = suite("acceptance/", "--device=banana", "--artifacts", str(tmp_path / "art"), "--html",
                str(tmp_path / "r" / "acceptance.html"), env={"OMP_NUM_THREADS": "99999"})
    assert run.returncode == 4, run.stdout[-3000:] + run.stderr[-3000:]
    assert "--device 'banana' is not a device (auto, cpu, cuda or cuda:N)" in run.stderr, run.stderr
    assert run.stderr.count("note: OMP_NUM_THREADS=99999 is more threads than the") == 1, run.stderr
    assert "Traceback" not in run.stdout + run.stderr and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_an_input_whose_name_is_not_utf8_is_refused_before_the_run(tmp_path):
    host = os.fsdecode(bytes(tmp_path) + b"/h\xf4te.fasta")  # Latin-1 "hôte", as an old file system keeps it
    shutil.copyfile(SMOKE / "host.fasta", host)
    run = suite("acceptance/", "--viral", str(SMOKE / "viral.fasta"), "--host", host, "--weights", "random",
                "--artifacts", str(tmp_path / "art"), "--html", str(tmp_path / "r" / "acceptance.html"))
    assert run.returncode == 4, run.stdout[-3000:] + run.stderr[-3000:]
    assert "h\\xf4te.fasta: the path is not valid UTF-8 (byte(s) \\xf4)" in run.stderr, run.stderr
    assert "as Latin-1: " in run.stderr and "hôte.fasta" in run.stderr and "ln -s" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr and not (tmp_path / "art" / "preprocess").exists()


def _read_only(folder: Path) -> str:
    """Make ``folder`` unwritable to this process: its mode for a user, immutable for root (whom modes do not
    stop); ``chattr`` where root is; the command to undo it."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return f"chmod 755 {folder}"
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"running as root on a file system without chattr +i ({done.stderr.strip()}): no folder can be "
                    "made read-only to this process")
    return f"chattr -i {folder}"


@pytest.mark.slow
def test_a_stage_in_a_read_only_cache_is_refused_before_it_trains(tmp_path, smoke_copy):
    art = smoke_copy(tmp_path / "shared")  # another user's cache: its finished stages are reused
    # The stage this run asks for: the one the smoke profile's default settings built (other tests' runs with other
    # settings may have added more to the shared folder).
    (stage,) = [p for p in (art / "train").glob("fast-*")
                if json.loads((p / "stage.json").read_text())["params"]["config"]["max_epochs"] == 200]
    for item in stage.iterdir():  # left unfinished by its owner (killed), read-only to us
        item.unlink()
    undo = _read_only(stage)
    try:
        run = suite("acceptance/test_training.py", "--artifacts", str(art), "--html",
                    str(tmp_path / "r" / "acceptance.html"))
    finally:
        subprocess.run(undo.split(), check=True)
    out = run.stdout + run.stderr
    assert run.returncode == 12, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    assert f"train[fast]: its stage folder {stage} cannot be written" in out, out[-4000:]
    assert "rerunning cannot help" in out and "pass --artifacts a folder of your own" in out, out[-4000:]
    assert "train[fast]: building" not in out and "epoch " not in out, "refused before training, not after"
    assert not any(stage.iterdir())
