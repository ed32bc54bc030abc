"""The acceptance suite's options: one table, from which pytest's options and :class:`~virnucpro_core.gate.settings.Settings`
are made.

Each :class:`Option` states the setting it sets (its *field*: a keyword of
:meth:`Settings.resolve <virnucpro_core.gate.settings.Settings.resolve>`, and the ``Settings`` field of that name
where there is one), the flag a user types, how pytest parses it, its default
(a value of :mod:`virnucpro_core.defaults` where the library has one) and its
help, which states the default from that one value. From :data:`SUITE_OPTIONS`

* the plugin :mod:`virnucpro_core.gate.plugin` adds the options to pytest (:meth:`OptionTable.add_to`),
* :func:`virnucpro_core.gate.start.start_session` reads them back, once, as ``Settings.resolve``'s keywords
  (:meth:`OptionTable.values`), and
* ``Settings`` and ``Settings.resolve`` take their defaults (:meth:`OptionTable.default`).

The library's errors about a setting name its field; the suite has them name
the flag instead (``Settings.resolve(name=SUITE_OPTIONS.flag)``), so a user
reads ``--max-time-ratio 0 is not positive``. Not to be confused with
:mod:`virnucpro_core.commands.options`, the ``virnucpro`` subcommands' value types.
Free of heavy imports: ``pytest --help`` loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from virnucpro_core.defaults import (
    CHUNK_SIZE, CLUSTER_COVERAGE, CLUSTER_IDENTITY, DEVICE, EXTRACTION_PATH, EXTRACTION_PATHS, HUB_IDS,
    MAX_ACCURACY_DROP, MAX_EPOCHS, MAX_TIME_RATIO, PATIENCE, RECORD_RULE, SEED, SIZES, VIRAL_PREVALENCE, WEIGHTS,
)  # fmt: skip

PROFILES = ("smoke", "full")


@dataclass(frozen=True)
class Option:
    """One option of the acceptance suite.

    Attributes:
        field: the setting: a keyword of ``Settings.resolve`` (and the ``Settings`` field of that name, if any).
        flag: what a user types, e.g. ``--max-time-ratio``.
        help: the help text; ``{default}`` stands for :attr:`default`, ``{smoke}`` and ``{full}`` for the
            default in each profile (:attr:`by_profile`); literal braces are doubled.
        default: the value when the option is not given (``None``: decided by ``Settings.resolve``).
        type: what pytest converts the text to (``int``, ``float``); ``None``: the text itself.
        choices: the allowed values, where there is a fixed list.
        metavar: the value's name in ``--help``.
        action: ``append`` (repeatable; the values as a list) or ``store_true`` (a switch).
        by_profile: the default in each profile, where it depends on the profile (``default`` is then ``None``).
        setting: ``False`` for an option of the run's reporting that ``Settings`` does not hold.
    """

    field: str
    flag: str
    help: str
    default: Any = None
    type: type | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    action: str | None = None
    by_profile: Mapping[str, Any] | None = None
    setting: bool = True

    def help_text(self) -> str:
        """The help as ``--help`` shows it, the default filled in."""
        return self.help.format(default=self.default, **(self.by_profile or {}))

    def pytest_kwargs(self) -> dict[str, Any]:
        """Keywords of pytest's ``addoption``: those that are set, and the help with the default filled in."""
        # argparse appends to a copy of the default, which must be a list.
        default = list(self.default) if self.action == "append" else self.default
        kwargs = {"default": default, "help": self.help_text()}
        for name in ("type", "choices", "metavar", "action"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        return kwargs


class OptionTable:
    """Options in the order ``--help`` lists them, found by field."""

    def __init__(self, group: tuple[str, str], options: tuple[Option, ...]) -> None:
        self.group = group  # pytest's option group: name and description
        self.options = options
        self._by_field = {option.field: option for option in options}
        if len(self._by_field) != len(options):
            raise ValueError("two options of one table set the same field")

    def __iter__(self) -> Iterator[Option]:
        return iter(self.options)

    def __getitem__(self, field: str) -> Option:
        return self._by_field[field]

    def add_to(self, parser) -> None:
        """Add every option to a ``pytest.Parser``, in one group."""
        add = parser.getgroup(*self.group).addoption
        for option in self.options:
            add(option.flag, **option.pytest_kwargs())

    def values(self, getoption: Callable[[str], Any]) -> dict[str, Any]:
        """Each setting's parsed value by field (``Settings.resolve``'s keywords), from pytest's ``getoption``."""
        return {option.field: getoption(option.flag) for option in self.options if option.setting}

    def default(self, field: str, profile: str = "full") -> Any:
        """The default of ``field``; where it depends on the profile, ``profile``'s."""
        option = self[field]
        if option.default is None and option.by_profile is not None:
            return option.by_profile[profile]
        return option.default

    def with_defaults(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every setting by field: ``given``'s value, else the default (``None`` where it depends on the profile).

        Raises:
            TypeError: a field that is no setting of this table, as for an unknown keyword argument.
        """
        unknown = sorted(set(given) - {option.field for option in self.options if option.setting})
        if unknown:
            raise TypeError(f"unknown setting(s) {', '.join(unknown)}; the settings are the fields of "
                            "virnucpro_core.gate.options.SUITE_OPTIONS")
        return {option.field: given.get(option.field, option.default) for option in self.options if option.setting}

    def flag(self, field: str) -> str:
        """The flag that sets ``field`` (a field of no option is named as it is)."""
        option = self._by_field.get(field)
        return option.flag if option is not None else field


SUITE_OPTIONS = OptionTable(("virnucpro", "VirNucPro FastESM2 acceptance suite"), (
    Option("profile", "--profile", choices=PROFILES,
           help="smoke: bundled synthetic data, tiny random-weight stand-ins, CPU-sized (validates the suite, "
           "not FastESM2); full: your data and models. Default: smoke when no --viral/--host/--data-dir is given, "
           "else full."),
    Option("viral", "--viral", action="append", default=(), metavar="PATH",
           help="viral input: FASTA (preprocessed and embedded by the suite), merged feature files (.pt: ours, or "
           "VirNucPro's original or FastESM2-fork files), or a directory of such .pt files. Repeatable."),
    Option("host", "--host", action="append", default=(), metavar="PATH",
           help="non-viral (host) input, same forms as --viral. Repeatable."),
    Option("data_dir", "--data-dir", action="append", default=(), metavar="DIR",
           help="a directory holding viral*.{{fa,fasta,fna,pt}} and host*.{{fa,fasta,fna,pt}}, or VirNucPro's "
           "data/data_merge tree (<category>_merged/*.pt; viral.1.1_merged is viral, every other folder host). "
           "Repeatable: e.g. the original's ESM2 3B tree and the fork's FastESM2 tree."),
    Option("declarations", "--declare-features", action="append", default=(), metavar="MODEL:DTYPE[:WEIGHTS]",
           help="how VirNucPro-layout feature files were made, which they do not record: e.g. esm2_3b:float32 "
           "(the original VirNucPro) or fastesm2_650:float16 (the FastESM2 fork); WEIGHTS pretrained (default) or "
           "random. One per protein model given in that layout; reported as declared, not verified."),
    Option("baseline_features", "--baseline-features", action="append", default=(), metavar="DIR",
           help="ESM2 3B merged features you already have for the FASTA inputs (--viral/--host): a VirNucPro "
           "data/data_merge tree, or a directory of viral*/host* .pt files (ours or VirNucPro's, declared with "
           "--declare-features esm2_3b:float32). They are the baseline's features, and their DNABERT-S columns "
           "(the first 768: VirNucPro's merged layout) serve FastESM2's features too, so neither ESM2 3B nor "
           "DNABERT-S is extracted. They must hold every sample of the FASTA inputs, by id. Repeatable."),
    Option("fast_model", "--fast-model", metavar="ID_OR_DIR",
           help="FastESM2 weights: hub id (from the HF cache) or local directory (default: "
           f"{HUB_IDS['fastesm2_650']})."),
    Option("baseline_model", "--baseline-model", metavar="ID_OR_DIR",
           help=f"ESM2 3B weights: hub id or local directory (default: {HUB_IDS['esm2_3b']})."),
    Option("dna_model", "--dna-model", metavar="ID_OR_DIR",
           help=f"DNABERT-S weights: hub id or local directory (default: {HUB_IDS['dnabert_s']})."),
    Option("allow_other_model", "--allow-other-model", action="store_true", default=False,
           help="load a model directory whose config.json states another model than the one it is given for "
           "(another model_type, depth, heads or vocabulary of the same width, e.g. ESM-2 650M as --fast-model), "
           "to study it in that model's place: the report says so in its banner and environment table, and the "
           "verdict is at best INCOMPLETE. Default: refuse such a directory, naming what it is."),
    Option("weights", "--weights", choices=WEIGHTS, by_profile={"smoke": "random", "full": "pretrained"},
           help="pretrained: real weights (required for the accuracy gate); random: seeded stand-ins of the real "
           "architectures (speed gate only). Default: {smoke} in the smoke profile, {full} in the full profile."),
    Option("size", "--size", choices=SIZES, by_profile={"smoke": "tiny", "full": "full"},
           help="stand-in size with --weights random: tiny (CPU-sized, same code path) or full (real architecture, "
           "for timing). Default: {smoke} in the smoke profile, {full} in the full profile."),
    Option("chunk_size", "--chunk-size", type=int, default=CHUNK_SIZE,
           help="chunk length for FASTA inputs (default: {default})."),
    Option("baseline_metrics", "--baseline-metrics", metavar="JSON",
           help="ESM2 3B metrics from an earlier run, used when baseline features are unavailable "
           "(no paired CI or McNemar test then). Default: train the baseline here."),
    Option("max_accuracy_drop", "--max-accuracy-drop", type=float, default=MAX_ACCURACY_DROP,
           help="accuracy gate: ESM2 3B accuracy minus FastESM2 accuracy must be strictly below this "
           "(default: {default})."),
    Option("max_time_ratio", "--max-time-ratio", type=float, default=MAX_TIME_RATIO,
           help="speed gate: FastESM2 embedding time / ESM2 3B embedding time must be at most this "
           "(default: {default})."),
    Option("bench_sample", "--bench-sample", type=int, by_profile={"smoke": 150, "full": 1000},
           help="proteins in the speed benchmark, a seeded sample of the test set with its length distribution "
           "(default: {full}; {smoke} in the smoke profile). More is steadier but slower."),
    Option("project_samples", "--project-samples", type=int, metavar="N",
           help="the number of samples of your full run: the report projects its extraction, training and "
           "evaluation time from the rates this run measures, on this GPU and on k GPUs (default: this run's "
           "input and VirNucPro's ~2.1 million samples only)."),
    Option("bench_runs", "--bench-runs", type=int, default=3,
           help="timed runs per embedder, averaged (default: {default})."),
    Option("bench_warmup", "--bench-warmup", type=int, default=1,
           help="untimed warmup runs before the timed ones (default: {default})."),
    Option("artifacts", "--artifacts", metavar="DIR",
           help="where stage outputs are cached, keyed by a hash of their inputs (default: "
           "artifacts/acceptance/<profile>)."),
    Option("rebuild", "--rebuild", action="store_true", default=False,
           help="recompute every stage instead of reusing cached artifacts."),
    Option("reuse_other_code", "--reuse-stages-from-other-code", action="store_true", default=False,
           help="keep finished stages and feature files that other code built (another version, or edited "
           "modules of what the stage runs), instead of rebuilding them: the report lists each in its banner and "
           "the verdict is at best INCOMPLETE. Default: rebuild them, with one line naming what changed."),
    Option("device", "--device", default=DEVICE,
           help="auto (CUDA when available), cpu or cuda (default: {default})."),
    Option("extraction_path", "--extraction-path", choices=EXTRACTION_PATHS, default=EXTRACTION_PATH,
           help="how FastESM2's batches run, for its accuracy features and its as-deployed timing alike "
           "(default: {default}: packed on a CUDA GPU where torch.compile works, eager on the CPU). eager: "
           "transformers' model on padded batches; compiled: torch.compile over a few padded widths; packed: "
           "proteins end to end in rows of the token budget, FlexAttention with a document mask, compiled. "
           "Compilation happens before the timed rounds and is reported beside them; inductor's kernels are kept "
           "in <artifacts>/inductor for later runs. ESM2 3B always runs eager in the gated pair, as VirNucPro ran "
           "it."),
    Option("extract_processes", "--extract-processes", type=int, metavar="N",
           help="feature extraction as N processes under torchrun (`virnucpro extract`, one per GPU, each on "
           "cuda:LOCAL_RANK; with --device cpu, N CPU processes): the same files, N times the GPUs. Default: every "
           "visible GPU when there are several (and --device is auto or cuda), else one, in the suite's own "
           "process."),
    Option("require_gpu", "--require-gpu", action="store_true", default=False,
           help="a missing CUDA GPU is an ERROR (exit 12) instead of an INCOMPLETE run (use on GPU runners)."),
    # The report plugin's: the exit status of an INCOMPLETE verdict.
    Option("allow_incomplete", "--allow-incomplete", action="store_true", default=False, setting=False,
           help="exit 0 when the verdict is INCOMPLETE (a gate could not run, or the smoke profile), for local "
           "runs; default: INCOMPLETE exits 11, so a CI gate that measured nothing never goes green. PASS always "
           "exits 0, FAIL 10, ERROR 12."),
    # The report plugin's: the report files it may replace.
    Option("force", "--force", action="store_true", default=False, setting=False,
           help="replace report files in --html's folder that virnucpro did not write, or that changed since "
           "(default: refuse them, naming each, before anything runs)."),
    Option("seed", "--seed", type=int, default=SEED,
           help="one seed for split, initialisation and data order (default: {default})."),
    Option("max_epochs", "--max-epochs", type=int, default=MAX_EPOCHS,
           help="MLP training epochs at most (default: {default}, as VirNucPro)."),
    Option("patience", "--patience", type=int, default=PATIENCE,
           help="early-stopping patience in epochs (default: {default})."),
    # Evidence beside the gate (the Generalisation, per-group, calibration and levels sections): never gated.
    Option("groups_file", "--groups", metavar="TSV",
           help="record id (or sample id) <TAB> group, for per-group accuracy (e.g. RefSeq category). Default: the "
           "data_merge folder of each file with --data-dir trees; fixtures/smoke/groups.tsv in the smoke profile."),
    Option("cluster_identity", "--cluster-identity", type=float, default=CLUSTER_IDENTITY,
           help="clustered split: MMseqs2 --min-seq-id of the protein clusters kept on one side (default: "
           "{default}, as Jaeger). Lower merges more proteins into a cluster: a harder split, but fewer, larger "
           "clusters."),
    Option("cluster_coverage", "--cluster-coverage", type=float, default=CLUSTER_COVERAGE,
           help="clustered split: MMseqs2 -c alignment coverage (default: {default}, MMseqs2's own)."),
    Option("viral_prevalence", "--viral-prevalence", default=VIRAL_PREVALENCE,
           help="viral:non-viral ratio (or a fraction) the precision / FDR figures are reweighted to (default: "
           "{default})."),
    Option("record_rule", "--record-rule", choices=("mean", "majority"), default=RECORD_RULE,
           help="per-record verdict: mean (mean viral score of the record's frames >= 0.5, default) or majority "
           "(at least half its chunks viral by VirNucPro's chunk rule)."),
))
