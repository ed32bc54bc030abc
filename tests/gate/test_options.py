"""The suite's one option table: pytest's options, ``Settings.resolve``'s keywords and ``Settings``' defaults."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import pytest

from virnucpro_core import defaults
from virnucpro_core.evaluate.aggregation import RECORD_RULES
from virnucpro_core.errors import InputError
from virnucpro_core.gate.options import SUITE_OPTIONS, Option
from virnucpro_core.gate.settings import MODEL_FIELDS, MODEL_OPTIONS, Settings

SETTINGS = [option for option in SUITE_OPTIONS if option.setting]
# Settings fields that no single option sets: they are made from several (see Settings.resolve).
DERIVED = {"model_sources": ["fast_model", "baseline_model", "dna_model"], "groups": ["data_dir"],
           "baseline_viral": ["baseline_features"], "baseline_host": ["baseline_features"]}


class Recorder:
    """Stands in for pytest's parser: records what is added to which group."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str], list[tuple[str, dict]]] = {}

    def getgroup(self, name: str, description: str = ""):
        added = self.groups.setdefault((name, description), [])
        return type("Group", (), {"addoption": staticmethod(lambda flag, **kwargs: added.append((flag, kwargs)))})


def _parsed_defaults() -> dict[str, object]:
    """What pytest's getoption returns for each flag when nothing is given."""
    recorder = Recorder()
    SUITE_OPTIONS.add_to(recorder)
    ((_, added),) = recorder.groups.items()
    return {flag: kwargs["default"] for flag, kwargs in added}


def test_pytest_gets_every_option_once_in_the_suites_group():
    recorder = Recorder()
    SUITE_OPTIONS.add_to(recorder)
    assert list(recorder.groups) == [("virnucpro", "VirNucPro FastESM2 acceptance suite")]
    flags = [flag for flag, _ in recorder.groups["virnucpro", "VirNucPro FastESM2 acceptance suite"]]
    assert flags == [option.flag for option in SUITE_OPTIONS] and len(set(flags)) == len(flags), flags


@pytest.mark.parametrize("option", list(SUITE_OPTIONS), ids=[option.flag for option in SUITE_OPTIONS])
def test_help_states_the_default(option: Option):
    text = option.help_text()
    stated = [*(option.by_profile or {}).values()] or ([] if option.default in (None, False, ()) else [option.default])
    for value in stated:
        assert str(value) in text, f"{option.flag}'s help does not state its default {value!r}: {text!r}"
    if option.by_profile:
        assert set(option.by_profile) == {"smoke", "full"} and option.default is None, option


def test_a_help_text_fills_in_the_one_value():
    option = dataclasses.replace(SUITE_OPTIONS["max_time_ratio"], default=0.25)
    assert "(default: 0.25)" in option.help_text(), "the help states the option's default, not a copy of it"
    assert SUITE_OPTIONS["max_time_ratio"].default == defaults.MAX_TIME_RATIO == 0.5
    assert SUITE_OPTIONS["max_accuracy_drop"].default == defaults.MAX_ACCURACY_DROP == 0.05


def test_every_setting_is_a_keyword_of_resolve_and_reaches_settings():
    fields = {f.name for f in dataclasses.fields(Settings)}
    made_of = {part for parts in DERIVED.values() for part in parts}
    for option in SETTINGS:
        assert option.field in fields or option.field in made_of, (
            f"{option.flag} sets {option.field!r}, which Settings neither holds nor derives anything from"
        )
    table = {option.field for option in SUITE_OPTIONS}
    for name in fields - set(DERIVED):
        assert name in table, f"Settings.{name} is set by no option of virnucpro_core.gate.options.SUITE_OPTIONS"


def test_settings_defaults_are_the_tables():
    for f in dataclasses.fields(Settings):
        if f.name in {option.field for option in SETTINGS} and f.default is not dataclasses.MISSING:
            assert f.default == SUITE_OPTIONS.default(f.name), (
                f"Settings.{f.name} defaults to {f.default!r}, the table to {SUITE_OPTIONS.default(f.name)!r}"
            )


def test_the_suites_defaults_give_the_librarys_settings():
    """What acceptance/conftest.py passes when no option is given resolves as Settings.resolve() does."""
    parsed = _parsed_defaults()
    values = SUITE_OPTIONS.values(parsed.__getitem__)
    assert set(values) == {option.field for option in SETTINGS}, "the report's options are not settings"
    assert Settings.resolve(**values, name=SUITE_OPTIONS.flag) == Settings.resolve()


def test_profile_defaults_come_from_the_table():
    smoke, full = Settings.resolve(), Settings.resolve(profile="full", weights="random")
    for field in ("weights", "size", "bench_sample"):
        assert getattr(smoke, field) == SUITE_OPTIONS.default(field, "smoke"), field
    assert (full.size, full.bench_sample) == (SUITE_OPTIONS.default("size"), SUITE_OPTIONS.default("bench_sample"))


def test_an_unknown_setting_is_refused():
    with pytest.raises(TypeError, match="unknown setting"):
        Settings.resolve(max_time=0.5)
    with pytest.raises(TypeError, match="allow_incomplete"):
        Settings.resolve(allow_incomplete=True)  # the report plugin's option, no setting


def test_flags_are_named_by_the_table():
    assert SUITE_OPTIONS.flag("groups_file") == "--groups"
    assert SUITE_OPTIONS.flag("declarations") == "--declare-features"
    assert SUITE_OPTIONS.flag("not_an_option") == "not_an_option"
    assert MODEL_OPTIONS == {"fastesm2_650": "--fast-model", "esm2_3b": "--baseline-model", "dnabert_s": "--dna-model"}
    assert set(MODEL_FIELDS.values()) <= {option.field for option in SETTINGS}


def test_errors_name_the_field_or_the_flag(tmp_path):
    directory = tmp_path / "no-such-dir"
    with pytest.raises(InputError, match=f"^data_dir {re.escape(str(directory))}: not a directory"):
        Settings.resolve(data_dir=directory)
    with pytest.raises(InputError, match=f"^--data-dir {re.escape(str(directory))}: not a directory"):
        Settings.resolve(data_dir=directory, name=SUITE_OPTIONS.flag)


def test_record_rule_choices_are_the_librarys():
    assert SUITE_OPTIONS["record_rule"].choices == tuple(RECORD_RULES)


def test_reading_the_table_imports_no_heavy_library():
    probe = ("import json, sys\nimport virnucpro_core.gate.options, virnucpro_core.gate.settings\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numpy', 'transformers'})))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.splitlines()[-1])
    assert loaded == [], f"reading the option table (pytest --help does) loaded {loaded}"
