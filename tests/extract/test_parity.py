"""The FastESM2 parity check on fake snapshots whose "own code" is the reference of tests/fastesm_reference.py.

Each snapshot holds the reference's seeded weights in the hub layout, and the
reference itself as ``modeling_fastesm.py`` with ``auto_map`` in config.json,
so that ``AutoModel.from_pretrained(..., trust_remote_code=True)`` runs it as
the model's own code. The check must pass on it, say why it did not run where
that code is missing or broken, and fail — with the measured values — where
the code differs (FastPLMs' older embedding layer: no token-dropout rescaling).
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from virnucpro_core.files import sha256_file
from virnucpro_core.extract import parity
from virnucpro_core.extract.parity import (FAILED, FASTPLMS_INSTALL, NOT_RUN, PASSED, REMOTE_CODE_IMPORTS, ParityResult,
                                          default_proteins, fastesm_parity)

from tests.scripts import import_script
from tests.models.test_esm_fastesm2_reference import hub_config, reference_model, write_snapshot

REFERENCE_CODE = Path(__file__).parents[1] / "fastesm_reference.py"
PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"
PROTEINS = default_proteins(12)


@pytest.fixture(scope="module", autouse=True)
def modules_cache(tmp_path_factory):
    """transformers copies remote code into HF_MODULES_CACHE; keep it out of the user's cache. The snapshots here
    are tiny: their code may run because these tests ask for it (as tests/parity_standin_plugin.py does)."""
    from transformers import dynamic_module_utils

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path_factory.mktemp("hf_modules")))
        patch.setattr(parity, "CODE_RUNS_FOR_SIZES", ("full", "tiny"))
        yield


def snapshot(tmp_path: Path, code: str | None = None, **config) -> Path:
    """A fake FastESM2 snapshot; ``code``: its modeling_fastesm.py (default: the reference; "" for none)."""
    directory = write_snapshot(reference_model(True), tmp_path / f"{tmp_path.name}-snapshot", hub_config(True, **config))
    text = REFERENCE_CODE.read_text() if code is None else code
    if text:
        (directory / "modeling_fastesm.py").write_text(text)
    return directory


def test_the_models_own_code_agrees_and_the_result_round_trips(tmp_path):
    result = fastesm_parity(snapshot(tmp_path), PROTEINS, "cpu")
    assert result.status == PASSED and result.passed, result.summary()
    assert result.min_cosine > 0.999999 and result.max_abs_diff < 1e-5, result.summary()
    assert result.remote_code.endswith("modeling_fastesm.FastEsmModel") and result.unloaded_weights == []
    assert set(result.cosines) == {rid for rid, _ in PROTEINS} and result.proteins == len(PROTEINS)
    assert result.architecture["token_dropout"] is True and result.dtype == "float32"
    code = Path(result.model_dir) / "modeling_fastesm.py"
    assert (result.code_file, result.code_sha256) == (str(code), sha256_file(code)), "which code ran, by its hash"
    assert result.summary().endswith(f"[its code: modeling_fastesm.py, sha256 {sha256_file(code)}]")
    back = ParityResult.load(result.save(tmp_path / "parity.json"))
    assert back == result


def test_a_snapshot_without_its_code_is_not_run_and_says_why(tmp_path):
    result = fastesm_parity(snapshot(tmp_path, code=""), PROTEINS, "cpu")
    assert result.status == NOT_RUN and not result.passed
    assert "has no modeling_fastesm.py" in result.reason and "hf download" in result.reason, result.reason
    assert result.min_cosine is None


def test_a_config_without_auto_map_is_not_run(tmp_path):
    directory = snapshot(tmp_path)
    config = json.loads((directory / "config.json").read_text())
    del config["auto_map"]
    (directory / "config.json").write_text(json.dumps(config))
    result = fastesm_parity(directory, PROTEINS, "cpu")
    assert result.status == NOT_RUN and "no auto_map.AutoModel" in result.reason, result.reason


def test_code_that_does_not_import_is_not_run_with_the_error(tmp_path):
    code = "import not_a_module_virnucpro_needs\n" + REFERENCE_CODE.read_text()
    result = fastesm_parity(snapshot(tmp_path, code=code), PROTEINS, "cpu")
    assert result.status == NOT_RUN, result.summary()
    assert "does not load here" in result.reason and "imports not_a_module_virnucpro_needs" in result.reason
    # A module this project does not know of: pip installs it, and the list of FastESM2's imports needs it.
    assert "`pip install not_a_module_virnucpro_needs`" in result.reason, result.reason
    assert "REMOTE_CODE_IMPORTS" in result.reason and "make install" not in result.reason, result.reason


class _NoEinops:
    """A meta-path finder for which einops is not installed, as on an environment without the dependency."""

    def find_spec(self, name, path=None, target=None):
        if name == "einops" or name.startswith("einops."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def test_a_missing_dependency_of_the_models_own_code_names_it_and_the_fix(tmp_path, monkeypatch):
    directory = snapshot(tmp_path)
    for name in [n for n in sys.modules if n == "einops" or n.startswith("einops.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoEinops(), *sys.meta_path])
    result = fastesm_parity(directory, PROTEINS, "cpu")
    assert result.status == NOT_RUN and result.min_cosine is None, result.summary()
    assert result.reason == (
        "the model's own code (modeling_fastesm.FastEsmModel) does not load here: it imports einops, which is not "
        "installed in this environment; install it with `pip install einops` or `make install` (this project "
        "depends on every module FastESM2's code imports), then rerun"), result.reason


@pytest.mark.parametrize("module", REMOTE_CODE_IMPORTS)
def test_every_module_fastesm2s_own_code_imports_is_installed(module):
    """Without it transformers refuses to run the snapshot's modeling_fastesm.py: the parity check cannot run."""
    try:
        importlib.import_module(module)
    except ImportError as error:
        pytest.fail(f"{module} is not importable ({error}): FastESM2's own code imports it, so the parity check "
                    "would be 'not run'; run `make install` (it is a dependency in pyproject.toml)")


def test_every_module_fastesm2s_own_code_imports_is_a_declared_dependency():
    """Installed is not enough: a module that came with this environment by chance is gone from the next one."""
    declared = {re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower()
                for spec in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]}
    missing = [m for m in REMOTE_CODE_IMPORTS if m not in declared]
    assert missing == [], f"not in pyproject.toml's [project] dependencies: {missing} (declared: {sorted(declared)})"


def test_the_stand_in_imports_at_module_level_what_fastesm2s_own_code_imports():
    """The fake snapshot must need what the real one needs, or a missing dependency would pass unnoticed here."""
    tree = ast.parse(REFERENCE_CODE.read_text())
    imported = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    missing = sorted(set(REMOTE_CODE_IMPORTS) - imported)
    assert missing == [], (f"{REFERENCE_CODE.name} does not import {missing} at module level "
                           f"(it imports {sorted(imported)})")


def test_older_code_without_token_dropout_rescaling_fails_with_the_measured_values(tmp_path):
    old = REFERENCE_CODE.read_text().replace("RESCALE_TOKEN_DROPOUT = True", "RESCALE_TOKEN_DROPOUT = False")
    assert old != REFERENCE_CODE.read_text()
    directory = snapshot(tmp_path, code=old)
    result = fastesm_parity(directory, PROTEINS, "cpu")
    assert result.status == FAILED, result.summary()
    assert result.max_abs_diff / result.max_abs_value > 10 * result.relative_limit, result.summary()
    assert f"max abs difference {result.max_abs_diff:.3g}" in result.reason and "> 0.001" in result.reason
    # Why the check has a difference limit beside the cosine one: cosine alone does not see this revision.
    cosine_only = fastesm_parity(directory, PROTEINS, "cpu", relative_limit=None)
    assert cosine_only.status == PASSED and 0.999 < cosine_only.min_cosine < 0.99999, cosine_only.summary()


def _tool():
    return import_script("tools/fastesm_parity.py")


def test_the_command_writes_the_result_and_exits_by_status(tmp_path, capsys):
    fasta = tmp_path / "proteins.faa"
    fasta.write_text("".join(f">{rid}\n{seq}\n" for rid, seq in PROTEINS[:5]))
    out = tmp_path / "parity.json"
    assert _tool().main([str(snapshot(tmp_path)), "--proteins", str(fasta), "--device", "cpu", "--out", str(out)]) == 0
    assert "FastESM2 parity passed" in capsys.readouterr().out
    assert ParityResult.load(out).proteins == 5

    shutil.rmtree(tmp_path / f"{tmp_path.name}-snapshot")
    assert _tool().main([str(snapshot(tmp_path, code="")), "--device", "cpu"]) == 3
    assert "FastESM2 parity not run" in capsys.readouterr().out
    assert _tool().main([str(tmp_path / "missing"), "--device", "cpu"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(("code", "exit_status", "outcome", "status"),
                         [("reference", 0, "passed", "passed"), ("older", 12, "failed", "failed"),
                          ("none", 0, "skipped", "not run")], ids=["agrees", "differs", "no-code"])
def test_acceptance_runs_the_check_on_a_real_snapshot_and_reports_it(tmp_path, code, exit_status, outcome, status):
    """acceptance/test_parity.py with --fast-model on a (fake) pretrained snapshot: the outcome, verdict and report."""
    import os
    import subprocess
    import sys

    text = {"reference": None, "none": "",
            "older": REFERENCE_CODE.read_text().replace("RESCALE_TOKEN_DROPOUT = True", "RESCALE_TOKEN_DROPOUT = False")}
    directory = snapshot(tmp_path, code=text[code])
    root, reports = Path(__file__).resolve().parents[2], tmp_path / "reports"
    smoke = root / "fixtures" / "smoke"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "acceptance/test_parity.py", "-q", "-p", "no:cacheprovider",
         "-p", "parity_standin_plugin", "--profile", "full",
         "--weights", "pretrained", "--fast-model", str(directory), "--viral", str(smoke / "viral.fasta"),
         "--host", str(smoke / "host.fasta"), "--allow-incomplete", "--artifacts", str(tmp_path / "artifacts"),
         "--html", str(reports / "acceptance.html")],
        cwd=root, capture_output=True, text=True, timeout=600,
        env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "hf_modules"), "HF_HUB_OFFLINE": "1",
             "PYTHONPATH": str(Path(__file__).parents[1])},  # the tiny snapshot's code may run: -p parity_standin_plugin
    )  # fmt: skip
    assert run.returncode == exit_status, run.stdout[-3000:]
    report = json.loads((reports / "acceptance.json").read_text())
    assert [o["outcome"] for o in report["outcomes"]] == [outcome], report["outcomes"]
    assert report["parity"]["status"] == status
    assert report["environment"]["FastESM2 parity with its own code"].startswith(f"{status}:")
    if status != "not run":  # the code that ran, by its hash, beside the verdict
        assert report["parity"]["code_sha256"] == sha256_file(directory / "modeling_fastesm.py")
        assert report["parity"]["code_sha256"] in report["environment"]["FastESM2 parity with its own code"]
    if status == "failed":
        assert report["verdict"]["status"] == "ERROR" and "FastESM2 parity FAIL" in report["outcomes"][0]["message"]


def test_code_that_imports_fastplms_names_the_clone_not_pip(tmp_path):
    """The newest FastPLMs source imports its own package, which is not on PyPI: the fix is the clone, not pip."""
    code = "from fastplms.models._esm_rotary import RotaryEmbedding\n" + REFERENCE_CODE.read_text()
    result = fastesm_parity(snapshot(tmp_path, code=code), PROTEINS, "cpu")
    assert result.status == NOT_RUN, result.summary()
    assert "it imports fastplms, which is not installed" in result.reason, result.reason
    assert f"`{FASTPLMS_INSTALL}`" in result.reason and "not on PyPI" in result.reason, result.reason
    assert "pip install fastplms" not in result.reason and "REMOTE_CODE_IMPORTS" not in result.reason, result.reason


def test_the_command_refuses_another_model_without_offering_an_option_it_lacks(tmp_path, capsys):
    """tools/fastesm_parity.py has no --allow-other-model: its refusal of another model must not suggest one."""
    directory = snapshot(tmp_path, model_type="esm")  # ESM-2's model type at FastESM2's stand-in shape
    tool = import_script("tools/fastesm_parity.py")
    assert tool.main([str(directory), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "is not FastESM2_650" in err and "model_type" in err, err
    assert "--allow-other-model" not in err, err
    assert "--allow-other-model" not in [flag for a in tool.create_parser()._actions for flag in a.option_strings]
