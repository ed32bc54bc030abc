"""The whole `virnucpro` chain (tools/cli_chain.sh) on two genomes per class with tiny stand-ins."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from virnucpro_core.preprocess.sequences import read_fasta, write_fasta

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cli_chain_end_to_end(tmp_path):
    inputs = {}
    for label in ("viral", "host"):
        records = read_fasta(ROOT / "fixtures" / "smoke" / f"{label}.fasta")
        # fam01 and fam02 genomes: two families, enough frames for a 10 % test set of both classes
        chosen = [r for r in records if "_fam01_" in r.id or "_fam02_" in r.id]
        inputs[label] = tmp_path / f"{label}.fasta"
        write_fasta(((r.id, r.seq) for r in chosen), inputs[label])
    virnucpro = shutil.which("virnucpro", path=str(Path(sys.executable).parent)) or "virnucpro"
    env = {**os.environ, "VIRNUCPRO": virnucpro}
    out = tmp_path / "chain"
    proc = subprocess.run(
        ["bash", str(ROOT / "tools" / "cli_chain.sh"), str(out), "7", str(inputs["viral"]), str(inputs["host"])],
        capture_output=True, text=True, env=env, timeout=900,
    )
    # compare exits 1 when the accuracy gate fails; any other failure is a broken chain
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "comparison" / "report.json").read_text())
    assert report["verdict"] == ("PASS" if proc.returncode == 0 else "FAIL"), report["reason"]
    assert report["random_weights"] is True
    fast = json.loads((out / "split" / "fastesm2_650" / "manifest.json").read_text())
    baseline = json.loads((out / "split" / "esm2_3b" / "manifest.json").read_text())
    assert fast["test"] == baseline["test"] and fast["seed"] == 7
    assert sorted(p.name for p in (out / "comparison" / "figures").iterdir())


def _chain_copy(tree, out) -> subprocess.CompletedProcess:
    """tools/cli_chain.sh copied into ``tree`` and run there into ``out``, with no `virnucpro` on PATH."""
    (tree / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "cli_chain.sh", tree / "tools" / "cli_chain.sh")
    env = {key: value for key, value in os.environ.items() if key != "VIRNUCPRO"}
    env["PATH"] = "/usr/bin:/bin"
    return subprocess.run(["bash", str(tree / "tools" / "cli_chain.sh"), str(out)],
                          capture_output=True, text=True, env=env, timeout=60)


def test_cli_chain_finds_the_venv_command_and_leaves_no_empty_directory_on_failure(tmp_path):
    # A copy of the script in a bare tree whose .venv holds a `virnucpro` that fails: PATH has none.
    stub = tmp_path / ".venv" / "bin" / "virnucpro"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\necho \"stub $1\"\nexit 3\n")
    stub.chmod(0o755)
    out = tmp_path / "chain"
    proc = _chain_copy(tmp_path, out)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"cli_chain: {stub}," in proc.stdout and "stub preprocess" in proc.stdout, proc.stdout
    assert not out.exists(), sorted(str(p) for p in out.rglob("*"))


def test_cli_chain_without_any_virnucpro_says_how_to_install(tmp_path):
    out = tmp_path / "chain"
    proc = _chain_copy(tmp_path, out)
    assert proc.returncode == 127, proc.stdout + proc.stderr
    assert "make install" in proc.stderr, proc.stderr
    assert not out.exists()
