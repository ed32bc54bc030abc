"""An acceptance run's start (virnucpro_core.gate.start): one session made from the config, or a usage error that
holds nothing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from virnucpro_core.errors import InputError
from virnucpro_core.gate.lock import ArtifactsLock
from virnucpro_core.gate.start import start_session

from tests.gate.test_options import _parsed_defaults


class Config:
    """What start_session reads of pytest's config: ``getoption`` (the suite's flags, ``force``, ``htmlpath``) and
    ``option``, which it sets for pytest-html and pytest-benchmark."""

    def __init__(self, html: Path, **given) -> None:
        self.values = {**_parsed_defaults(), "force": False, **given}
        self.option = SimpleNamespace(htmlpath=str(html), self_contained_html=False, benchmark_json=None)

    def getoption(self, name: str, default=None):
        return self.option.htmlpath if name == "htmlpath" else self.values.get(name, default)


def _free(artifacts: Path) -> bool:
    """Whether another run could take the --artifacts lock now."""
    try:
        ArtifactsLock(artifacts).acquire(timeout=0).release()
    except InputError:
        return False
    return True


def test_a_started_session_holds_the_settings_the_lock_the_staging_and_the_run_id(tmp_path):
    art, html = tmp_path / "art", tmp_path / "reports" / "acceptance.html"
    config = Config(html, **{"--artifacts": str(art)})
    session = start_session(config)
    try:
        assert Path(session.settings.artifacts) == art and session.settings.profile == "smoke"
        assert not _free(art), "a second run waits for this one"
        staged = Path(config.option.htmlpath)
        assert staged == session.staging.staged_html and staged.name == html.name
        assert staged.parent.parent == html.parent, "staged beside the reports' place"
        assert config.option.self_contained_html and Path(config.option.benchmark_json).parent == staged.parent
        assert session.run_id and session.started and session.reports_claim is not None
    finally:
        session.staging.discard()
        session.release()
    assert _free(art), "released at the end"
    session.release()  # twice is harmless


@pytest.mark.parametrize(("given", "words"), [
    ({"--max-time-ratio": 0.0}, "--max-time-ratio"),
    ({"--device": "tpu"}, "--device"),
], ids=["ratio", "device"])
def test_a_bad_option_is_one_usage_error_before_the_lock(tmp_path, given, words):
    art, html = tmp_path / "art", tmp_path / "reports" / "acceptance.html"
    with pytest.raises(pytest.UsageError, match=f"^acceptance options: .*{words}"):
        start_session(Config(html, **{"--artifacts": str(art)}, **given))
    assert not art.exists() and not html.parent.exists(), "nothing was made or touched"


def test_reports_that_are_not_ours_are_refused_after_the_lock_and_it_is_let_go(tmp_path):
    """The reports' claim comes after the lock: when it refuses (a file we did not write in --html's folder), the
    lock taken for this run is released at once, and the earlier file is as it was."""
    art, html = tmp_path / "art", tmp_path / "reports" / "acceptance.html"
    html.parent.mkdir()
    (html.parent / "acceptance.md").write_text("someone's notes\n")
    with pytest.raises(pytest.UsageError, match="^acceptance options: --html holds 1 file.*not written by virnucpro"):
        start_session(Config(html, **{"--artifacts": str(art)}))
    assert _free(art)
    assert (html.parent / "acceptance.md").read_text() == "someone's notes\n"
    assert not list(html.parent.glob(".acceptance.*.part")), "no staging folder"
