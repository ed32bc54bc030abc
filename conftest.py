"""Options of the acceptance suite, and the HTML report's default location.

Everything here is parsed into :class:`virnucpro_core.settings.Settings`
by ``acceptance/conftest.py``; help texts state each default.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DEFAULT_HTML = Path("reports") / "acceptance.html"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("virnucpro", "VirNucPro FastESM2 acceptance suite")
    add = group.addoption
    add(
        "--profile",
        choices=("smoke", "full"),
        default=None,
        help="smoke: bundled synthetic data, tiny random-weight stand-ins, CPU-sized (validates the suite, "
        "not FastESM2); full: your data and models. Default: smoke when no --viral/--host/--data-dir is given, "
        "else full.",
    )
    add("--viral", action="append", default=[], metavar="PATH",
        help="viral input: FASTA (preprocessed and embedded by the suite), merged feature files (.pt: ours, or "
        "VirNucPro's original or FastESM2-fork files), or a directory of such .pt files. Repeatable.")
    add("--host", action="append", default=[], metavar="PATH",
        help="non-viral (host) input, same forms as --viral. Repeatable.")
    add("--data-dir", action="append", default=[], metavar="DIR",
        help="a directory holding viral*.{fa,fasta,fna,pt} and host*.{fa,fasta,fna,pt}, or VirNucPro's "
        "data/data_merge tree (<category>_merged/*.pt; viral.1.1_merged is viral, every other folder host). "
        "Repeatable: e.g. the original's ESM2 3B tree and the fork's FastESM2 tree.")
    add("--declare-features", action="append", default=[], metavar="MODEL:DTYPE[:WEIGHTS]",
        help="how VirNucPro-layout feature files were made, which they do not record: e.g. esm2_3b:float32 "
        "(the original VirNucPro) or fastesm2_650:float16 (the FastESM2 fork); WEIGHTS pretrained (default) or "
        "random. One per protein model given in that layout; reported as declared, not verified.")
    add("--fast-model", default=None, metavar="ID_OR_DIR",
        help="FastESM2 weights: hub id (from the HF cache) or local directory (default: Synthyra/FastESM2_650).")
    add("--baseline-model", default=None, metavar="ID_OR_DIR",
        help="ESM2 3B weights: hub id or local directory (default: facebook/esm2_t36_3B_UR50D).")
    add("--dna-model", default=None, metavar="ID_OR_DIR",
        help="DNABERT-S weights: hub id or local directory (default: zhihan1996/DNABERT-S).")
    add("--allow-other-model", action="store_true",
        help="load a model directory whose config.json states another model than the one it is given for "
        "(another model_type, depth, heads or vocabulary of the same width, e.g. ESM-2 650M as --fast-model), "
        "to study it in that model's place: the report says so in its banner and environment table, and the "
        "verdict is at best INCOMPLETE. Default: refuse such a directory, naming what it is.")
    add("--weights", choices=("pretrained", "random"), default=None,
        help="pretrained: real weights (required for the accuracy gate); random: seeded stand-ins of the real "
        "architectures (speed gate only). Default: random in the smoke profile, pretrained in the full profile.")
    add("--size", choices=("tiny", "full"), default=None,
        help="stand-in size with --weights random: tiny (CPU-sized, same code path) or full (real architecture, "
        "for timing). Default: tiny in the smoke profile, full in the full profile.")
    add("--chunk-size", type=int, default=300, help="chunk length for FASTA inputs (default: 300).")
    add("--baseline-metrics", default=None, metavar="JSON",
        help="ESM2 3B metrics from an earlier run, used when baseline features are unavailable "
        "(no paired CI or McNemar test then). Default: train the baseline here.")
    add("--max-accuracy-drop", type=float, default=0.05,
        help="accuracy gate: ESM2 3B accuracy minus FastESM2 accuracy must be strictly below this (default: 0.05).")
    add("--max-time-ratio", type=float, default=0.5,
        help="speed gate: FastESM2 embedding time / ESM2 3B embedding time must be at most this (default: 0.5).")
    add("--bench-sample", type=int, default=None,
        help="proteins in the speed benchmark, a seeded sample of the test set with its length distribution "
        "(default: 1000; 300 in the smoke profile). More is steadier but slower.")
    add("--bench-runs", type=int, default=3, help="timed runs per embedder, averaged (default: 3).")
    add("--bench-warmup", type=int, default=1, help="untimed warmup runs before the timed ones (default: 1).")
    add("--artifacts", default=None, metavar="DIR",
        help="where stage outputs are cached, keyed by a hash of their inputs (default: artifacts/acceptance/<profile>).")
    add("--rebuild", action="store_true", help="recompute every stage instead of reusing cached artifacts.")
    add("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto).")
    add("--extract-processes", type=int, default=None, metavar="N",
        help="feature extraction as N processes under torchrun (`virnucpro extract`, one per GPU, each on "
        "cuda:LOCAL_RANK; with --device cpu, N CPU processes): the same files, N times the GPUs. Default: every "
        "visible GPU when there are several (and --device is auto or cuda), else one, in the suite's own process.")
    add("--require-gpu", action="store_true",
        help="a missing CUDA GPU is an ERROR (exit 12) instead of an INCOMPLETE run (use on GPU runners).")
    add("--allow-incomplete", action="store_true",
        help="exit 0 when the verdict is INCOMPLETE (a gate could not run, or the smoke profile), for local runs; "
        "default: INCOMPLETE exits 11, so a CI gate that measured nothing never goes green. PASS always exits 0, "
        "FAIL 10, ERROR 12.")
    add("--seed", type=int, default=42, help="one seed for split, initialisation and data order (default: 42).")
    add("--max-epochs", type=int, default=200, help="MLP training epochs at most (default: 200, as VirNucPro).")
    add("--patience", type=int, default=5, help="early-stopping patience in epochs (default: 5).")
    # Evidence beside the gate (the Generalisation, per-group, calibration and levels sections): never gated.
    add("--groups", default=None, metavar="TSV",
        help="record id (or sample id) <TAB> group, for per-group accuracy (e.g. RefSeq category). Default: the "
        "data_merge folder of each file with --data-dir trees; fixtures/smoke/groups.tsv in the smoke profile.")
    add("--cluster-identity", type=float, default=0.6,
        help="clustered split: MMseqs2 --min-seq-id of the protein clusters kept on one side (default: 0.6, as "
        "Jaeger). Lower merges more proteins into a cluster: a harder split, but fewer, larger clusters.")
    add("--cluster-coverage", type=float, default=0.8,
        help="clustered split: MMseqs2 -c alignment coverage (default: 0.8, MMseqs2's own).")
    add("--viral-prevalence", default="1:19",
        help="viral:non-viral ratio (or a fraction) the precision / FDR figures are reweighted to (default: 1:19).")
    add("--record-rule", choices=("mean", "majority"), default="mean",
        help="per-record verdict: mean (mean viral score of the record's frames >= 0.5, default) or majority "
        "(at least half its chunks viral by VirNucPro's chunk rule).")


def _runs_acceptance(config: pytest.Config) -> bool:
    return any(Path(str(arg).split("::")[0]).resolve().is_relative_to(Path(__file__).parent / "acceptance")
               for arg in config.args)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not _runs_acceptance(config):
        return
    from virnucpro_core.acceptance_report import new_run_id, remove_previous_reports
    from virnucpro_core.paths import ReportPaths

    from acceptance.report_plugin import RUN_ID

    # `pytest acceptance/` writes its HTML report without being asked; an explicit --html wins. Either way the
    # report is one self-contained file (styles and figures inline, no assets/ beside it).
    if config.getoption("help") or config.getoption("collectonly"):
        config.option.htmlpath = None  # they run nothing, so they write and remove no report either
        return
    if not config.getoption("htmlpath", default=None):
        config.option.htmlpath = str(DEFAULT_HTML)
    config.option.self_contained_html = True
    paths = ReportPaths(Path(config.option.htmlpath).parent)
    if hasattr(config.option, "benchmark_json") and config.option.benchmark_json is None:
        # pytest-benchmark's raw timings (every round, machine info) beside the HTML report.
        config.option.benchmark_json = paths.benchmark_json
    # One run, one set of reports: nothing an earlier run wrote here may sit beside this run's files.
    remove_previous_reports(paths, Path(config.option.htmlpath))
    paths.root.mkdir(parents=True, exist_ok=True)
    config.stash[RUN_ID] = new_run_id()


def pytest_sessionstart(session: pytest.Session) -> None:
    """The report has one environment section, ours: pytest-metadata's table stays empty."""
    if not _runs_acceptance(session.config):
        return
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return
    if metadata_key in session.config.stash:
        session.config.stash[metadata_key].clear()
