"""tests/ mirrors the package: each test file is named after what it covers, and each module has its tests.

``tests/<package>/test_<module>.py`` (or ``test_<module>_<aspect>.py``) covers
``virnucpro_core/<package>/<module>.py``; ``tests/test_<module>.py`` a top-level
module. ``tests/acceptance``, ``tests/benchmarks``, ``tests/tools`` and
``tests/fixtures`` mirror those folders of the repository the same way. A test
file that covers no one module (the package's shape, every command against
hostile inputs, the suite end to end) is listed in ``CROSS_CUTTING`` with what
it covers. A module tested only through another module's tests is listed in
``COVERED_BY`` with that file and a piece of evidence: text that appears in the
module and in the test file (a name it defines, the subcommand it registers),
so that the entry fails when either side stops matching.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import virnucpro_core

PACKAGE = Path(virnucpro_core.__file__).parent
ROOT = PACKAGE.parent
TESTS = Path(__file__).resolve().parent
MIRRORED_FOLDERS = ("acceptance", "benchmarks", "tools", "fixtures")

CROSS_CUTTING = {
    "test_architecture.py": "the package's shape: import order, cycles, module sizes, docstrings",
    "test_tests_mirror_the_package.py": "this mapping",
    "test_workflow.py": "the CI workflow under .github/workflows",
    "test_heartbeat.py": "tests/heartbeat.py: the test run's own progress lines",
    "test_hostile_inputs.py": "every command against hostile inputs (first and second rounds)",
    "test_hostile_inputs_ids_and_disks.py": "every command against hostile ids, text and full disks (third round)",
    "acceptance/test_profiles.py": "the acceptance suite end to end, in each profile and with each kind of input",
    "acceptance/test_full_disk.py": "the acceptance suite end to end on a full disk",
    "commands/test_evaluate_and_predict_checkpoint_layouts.py": "evaluate and predict on every checkpoint layout",
}

# module (relative to virnucpro_core, no suffix) -> (test file relative to tests/, evidence in both)
COVERED_BY = {
    "commands/extract": ("extract/test_features.py", '"extract"'),
    "commands/import_features": ("layouts/test_features.py", '"import"'),
    "commands/merge": ("extract/test_features.py", '"merge"'),
    "commands/options": ("test_hostile_inputs.py", "expected a seed from 0 to"),
    "commands/predict": ("predict/test_run.py", '"predict"'),
    "commands/split": ("split/test_make.py", '"split"'),
    "commands/train": ("train/test_training.py", '"train"'),
    "compare/pairing": ("compare/test_comparison.py", "different splits"),
    "compare/rules": ("gate/test_gates.py", "ACCURACY_RULE"),
    "errors": ("models/test_registry.py", "WeightsNotFoundError"),
    "evaluate/bootstrap": ("evaluate/test_resampled.py", "percentile_interval"),
    "evaluate/predictions": ("split/test_lineage.py", "Predictions"),
    "extract/merged": ("predict/test_run.py", "merge_features"),
    "extract/reuse": ("gate/test_given.py", "dna_columns"),
    "files": ("test_custody.py", "atomic_torch_save"),
    "gate/acceptance_report": ("gate/test_html_report.py", "split_report"),
    "gate/lock": ("test_hostile_inputs_ids_and_disks.py", "ArtifactsLock"),
    "gate/report_files": ("gate/test_verdict.py", "gates_dict"),
    "gate/report_model": ("gate/test_html_report.py", "AcceptanceReport"),
    "gate/results": ("gate/test_verdict.py", "RunResults"),
    "gate/session": ("gate/test_verdict.py", "AcceptanceSession"),
    "layouts/declarations": ("layouts/test_features.py", "Declaration"),
    "layouts/foreign_checkpoints": ("layouts/test_checkpoints.py", "PickledMLP"),
    "layouts/rows": ("extract/test_features.py", "Embeddings"),
    "layouts/store": ("test_custody.py", "RowView"),
    "layouts/virnucpro": ("layouts/test_features.py", "read_foreign_merged"),
    "models/dnabert_config": ("models/test_dnabert.py", "DnaBertConfig"),
    "models/dnabert_tokenizer": ("models/test_dnabert.py", "load_dnabert_tokenizer"),
    "models/esm_config": ("models/test_registry.py", "esm_config_dict"),
    "models/hub_cache": ("models/test_registry.py", "hf_hub_cache_dir"),
    "models/specs": ("models/test_registry.py", "get_spec"),
    "paths": ("test_hostile_inputs_ids_and_disks.py", "ReportPaths"),
    "predict/scoring": ("predict/test_run.py", "score_features"),
    "preprocess/reference": ("preprocess/test_translation.py", "translate_reference"),
    "split/ids": ("split/test_make.py", "round_half_up"),
    "split/records": ("split/test_make.py", "SplitManifest"),
    "split/summary": ("split/test_make.py", "summarize"),
    "train/results": ("train/test_training.py", "TrainingHistory"),
}


def _modules() -> list[Path]:
    """Every module of the package, relative to it, without its suffix (``__init__`` files left out)."""
    return [p.relative_to(PACKAGE).with_suffix("") for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__init__.py"]


def _test_files() -> list[Path]:
    return sorted(p.relative_to(TESTS) for p in TESTS.rglob("test_*.py"))


def _covers(test: Path, name: str) -> bool:
    """Whether ``test``'s name is ``test_<name>`` or ``test_<name>_<aspect>``."""
    stem = test.stem.removeprefix("test_")
    return stem == name or stem.startswith(name + "_")


def _names_in(folder: Path) -> set[str]:
    """What a test file in ``tests/<folder>`` may be named after: the modules of that package, or the files of a
    mirrored folder of the repository."""
    if folder.parts and folder.parts[0] in MIRRORED_FOLDERS:
        return {p.stem for p in (ROOT / folder).iterdir() if p.is_file()}
    return {p.stem for p in (PACKAGE / folder).glob("*.py") if p.name != "__init__.py"}


def test_every_test_file_is_named_after_what_it_covers():
    unnamed = []
    for test in _test_files():
        if test.as_posix() in CROSS_CUTTING:
            continue
        if not (PACKAGE / test.parent).is_dir() and test.parent.parts[0] not in MIRRORED_FOLDERS:
            unnamed.append(f"{test}: tests/{test.parent} mirrors no package or folder of the repository")
        elif not any(_covers(test, name) for name in _names_in(test.parent)):
            unnamed.append(f"{test}: named after no module of {test.parent.as_posix() or 'virnucpro_core'}")
    assert not unnamed, "rename, or list in CROSS_CUTTING with what it covers:\n" + "\n".join(unnamed)


def test_every_module_has_a_test_file_named_after_it_or_listed():
    tests = _test_files()
    missing = []
    for module in _modules():
        named = [t for t in tests if t.parent == module.parent and _covers(t, module.name)]
        if named:
            assert module.as_posix() not in COVERED_BY, f"{module}: has {named[0]}; drop its COVERED_BY entry"
        elif module.as_posix() not in COVERED_BY:
            missing.append(module.as_posix())
    assert not missing, "no test file named after these modules (add one, or list in COVERED_BY):\n" + "\n".join(missing)


@pytest.mark.parametrize("module", sorted(COVERED_BY))
def test_a_listed_module_is_exercised_by_its_test_file(module):
    test, evidence = COVERED_BY[module]
    source = PACKAGE / f"{module}.py"
    assert source.is_file(), f"COVERED_BY lists {module}, which is not a module of virnucpro_core"
    assert evidence in source.read_text(encoding="utf-8"), f"{evidence!r} no longer appears in {module}.py"
    assert evidence in (TESTS / test).read_text(encoding="utf-8"), f"{evidence!r} no longer appears in tests/{test}"


@pytest.mark.parametrize("test", sorted(CROSS_CUTTING))
def test_a_cross_cutting_test_file_exists(test):
    assert (TESTS / test).is_file(), f"CROSS_CUTTING lists tests/{test}, which does not exist"
