"""The acceptance run's settings: every option resolved once, with the documented defaults and checks.

:meth:`Settings.resolve` turns the suite's options into one frozen object:
profile (smoke without data, full with it), inputs (files, directories of
``*.pt``, ``--data-dir`` folders of ``viral*``/``host*`` files or VirNucPro
``data_merge`` trees), declarations for VirNucPro-layout features, weights,
limits. Every problem of the options is reported before anything runs.

The settings, their defaults and the flags that set them are one table,
:data:`virnucpro_core.gate.options.SUITE_OPTIONS`. Errors about a setting name its
field (``max_time_ratio 0 is not positive``), or what ``name`` makes of it: the
suite passes ``name=SUITE_OPTIONS.flag`` so that a user reads the flag.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from virnucpro_core.defaults import EXTRACTION_PATHS, MAX_SEED
from virnucpro_core.errors import InputError
from virnucpro_core.files import check_output
from virnucpro_core.input_files import check_utf8_name, path_problem
from virnucpro_core.gate.options import SUITE_OPTIONS

log = logging.getLogger("virnucpro.validation")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SMOKE_DATA = {"viral": PROJECT_ROOT / "fixtures" / "smoke" / "viral.fasta",
              "host": PROJECT_ROOT / "fixtures" / "smoke" / "host.fasta"}
SMOKE_GROUPS = PROJECT_ROOT / "fixtures" / "smoke" / "groups.tsv"  # record id -> synthetic family
CLASSES = ("viral", "host")
# The setting that names each model's weights (a local directory or a hub id), and the suite's option for it.
MODEL_FIELDS = {"fastesm2_650": "fast_model", "esm2_3b": "baseline_model", "dnabert_s": "dna_model"}
MODEL_OPTIONS = {model: SUITE_OPTIONS.flag(field) for model, field in MODEL_FIELDS.items()}
FASTA_SUFFIXES = tuple(f"{name}{packed}" for name in (".fa", ".fasta", ".fna") for packed in ("", ".gz", ".bz2", ".xz"))
_default = SUITE_OPTIONS.default


@dataclass(frozen=True)
class Settings:
    """Everything a validation run depends on; built from the suite's options by :meth:`resolve`."""

    profile: str
    viral: tuple[Path, ...]
    host: tuple[Path, ...]
    weights: str
    size: str
    artifacts: Path
    model_sources: dict[str, str | None] = field(default_factory=dict)  # model name -> hub id or directory
    allow_other_model: bool = _default("allow_other_model")  # load another model (recorded; verdict not PASS)
    chunk_size: int = _default("chunk_size")
    baseline_metrics: Path | None = _default("baseline_metrics")
    max_accuracy_drop: float = _default("max_accuracy_drop")
    max_time_ratio: float = _default("max_time_ratio")
    bench_sample: int = _default("bench_sample")
    project_samples: int | None = _default("project_samples")  # the user's full run, for the cost projection
    bench_runs: int = _default("bench_runs")
    bench_warmup: int = _default("bench_warmup")
    rebuild: bool = _default("rebuild")
    reuse_other_code: bool = _default("reuse_other_code")  # keep stages other code built (listed; verdict not PASS)
    device: str = _default("device")
    extraction_path: str = _default("extraction_path")  # FastESM2's: auto, eager, compiled or packed
    require_gpu: bool = _default("require_gpu")
    extract_processes: int | None = _default("extract_processes")  # None: every GPU when several, else this process
    seed: int = _default("seed")
    max_epochs: int = _default("max_epochs")
    patience: int = _default("patience")
    declarations: tuple[str, ...] = _default("declarations")  # how VirNucPro-layout feature files were made
    # ESM2 3B merged features the user has for the FASTA inputs (--baseline-features), per class
    baseline_viral: tuple[Path, ...] = ()
    baseline_host: tuple[Path, ...] = ()
    groups: dict[str, str] = field(default_factory=dict)  # input path -> its data_merge folder (RefSeq category)
    # Evidence beside the gate (virnucpro_core.gate.generalisation); none of it changes the verdict.
    groups_file: Path | None = _default("groups_file")  # record or sample id -> group (TSV)
    cluster_identity: float = _default("cluster_identity")
    cluster_coverage: float = _default("cluster_coverage")
    viral_prevalence: str = _default("viral_prevalence")
    record_rule: str = _default("record_rule")

    @classmethod
    def resolve(cls, *, name: Callable[[str], str] = str, **options: Any) -> "Settings":
        """Apply the documented defaults (smoke without data, full with it) and check every setting.

        Args:
            name: how an error names a setting, given its field: the field itself, or (the suite's)
                ``SUITE_OPTIONS.flag`` for the option a user typed.
            **options: settings by field (:data:`virnucpro_core.gate.options.SUITE_OPTIONS`); one not given takes
                its default there.

        Raises:
            InputError: every problem of the settings' values together, or the first of the inputs.
            TypeError: a keyword that is no setting.
        """
        # lazy: pulls in torch/numpy, and pytest --help reads these settings without them
        from virnucpro_core.layouts.declarations import Declaration

        values = SUITE_OPTIONS.with_defaults(options)
        declarations = values.pop("declarations")
        viral, host = _expand(values.pop("viral"), name("viral")), _expand(values.pop("host"), name("host"))
        groups: dict[str, str] = {}
        data_dir = values.pop("data_dir")
        data_dirs = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir or [])
        for directory in data_dirs:
            found_viral, found_host, found_groups = _scan_data_dir(Path(directory), name)
            viral, host = viral + found_viral, host + found_host
            groups.update(found_groups)
        baseline_viral, baseline_host = [], []
        for directory in values.pop("baseline_features") or ():
            found_viral, found_host, _ = _scan_data_dir(Path(directory), name, "baseline_features")
            baseline_viral, baseline_host = baseline_viral + found_viral, baseline_host + found_host
        for text in declarations:
            Declaration.parse(text, option=name("declarations"))
        has_data = bool(viral or host)
        inputs = f"{name('viral')}/{name('host')}"
        profile = values.pop("profile") or ("full" if has_data else "smoke")
        if profile == "smoke":
            if has_data:
                raise InputError(
                    "the smoke profile runs on the bundled data only",
                    found=f"{len(viral)} viral and {len(host)} host inputs",
                    fix=f"drop {name('profile')} smoke to validate your data (the full profile)",
                )
            viral, host = [SMOKE_DATA["viral"]], [SMOKE_DATA["host"]]
        defaults_of = "smoke" if profile == "smoke" else "full"  # whose per-profile defaults apply
        weights = values.pop("weights") or SUITE_OPTIONS.default("weights", defaults_of)
        size = values.pop("size") or SUITE_OPTIONS.default("size", defaults_of)
        if profile != "smoke" and not has_data:
            if weights == "pretrained":
                # The real gate must never pass on the bundled synthetic genomes.
                raise InputError(
                    "the full profile with pretrained weights validates your data, and none was given",
                    expected=f"{inputs} FASTA or merged feature files, or {name('data_dir')} with viral* and host* "
                    "files",
                    found="no data options",
                    fix=f"pass your data; for a speed-only run of the real architectures add {name('weights')} random",
                )
            log.warning("full profile with random weights and no data: timing on the bundled synthetic proteins")
            viral, host = [SMOKE_DATA["viral"]], [SMOKE_DATA["host"]]
        if not viral or not host:
            raise InputError(
                "both classes are needed",
                expected=f"at least one viral and one host input ({inputs}, or {name('data_dir')} with viral* and "
                "host* files)",
                found=f"{len(viral)} viral and {len(host)} host inputs",
                fix="add the missing class",
            )
        problems = _problems(values, name)
        if problems:
            raise InputError("invalid acceptance options: " + "; ".join(problems),
                             fix="see `pytest acceptance/ --help`, group 'VirNucPro FastESM2 acceptance suite'")
        for path in [*viral, *host]:
            check_utf8_name(path, inputs)  # the reports and stage records name every input
            kind = path_problem(path)  # a pipe, a directory, a link loop: named as what it is, not "no such file"
            if kind is not None:
                raise kind.error(path, expected=f"{inputs}: a FASTA file or a merged feature file (.pt)")
        _check_declarations([*viral, *baseline_viral], [*host, *baseline_host], declarations, size, name)
        if baseline_viral or baseline_host:
            _check_baseline_features(viral, host, baseline_viral, baseline_host, values, name)
        # lazy: pulls in torch/numpy, and pytest --help reads these settings without them
        from virnucpro_core.evaluate.calibration import parse_prevalence

        parse_prevalence(values["viral_prevalence"])
        for field_name in ("artifacts", "baseline_metrics", "groups_file", *MODEL_FIELDS.values()):
            if values.get(field_name):  # named in the reports and stage records, which are UTF-8
                check_utf8_name(values[field_name], name(field_name))
        groups_file = values.pop("groups_file")
        groups_file = Path(groups_file) if groups_file else (SMOKE_GROUPS if profile == "smoke" else None)
        if groups_file is not None and not groups_file.is_file():
            raise InputError(f"{name('groups_file')} {groups_file}: no such file", expected="a TSV of id <TAB> group",
                             fix="check the path")
        artifacts, baseline_metrics = values.pop("artifacts"), values.pop("baseline_metrics")
        if artifacts:
            # A file, or a read-only place, is one message here, not a traceback from the first stage.
            check_output(artifacts, kind="directory", option=name("artifacts"))
        return cls(
            profile=profile,
            viral=tuple(viral),
            host=tuple(host),
            weights=weights,
            size=size,
            artifacts=Path(artifacts) if artifacts else PROJECT_ROOT / "artifacts" / "acceptance" / profile,
            bench_sample=values.pop("bench_sample") or SUITE_OPTIONS.default("bench_sample", defaults_of),
            model_sources={model: values.pop(field) for model, field in MODEL_FIELDS.items()},
            baseline_metrics=Path(baseline_metrics) if baseline_metrics else None,
            declarations=tuple(declarations),
            baseline_viral=tuple(baseline_viral),
            baseline_host=tuple(baseline_host),
            groups=groups,
            groups_file=groups_file,
            **values,
        )

    @property
    def baseline_from_metrics(self) -> bool:
        """The baseline is an earlier evaluation (``--baseline-metrics``): no ESM2 3B features, no baseline MLP."""
        return self.baseline_metrics is not None

    def inputs(self, label: str) -> tuple[Path, ...]:
        return self.viral if label == "viral" else self.host

    def to_dict(self) -> dict:
        data = asdict(self)
        return json.loads(json.dumps(data, default=str))


def _problems(values: dict[str, Any], name: Callable[[str], str]) -> list[str]:
    """What is wrong with the settings' values, each naming its setting; empty when nothing is."""
    problems = []
    if not 0 <= values["max_accuracy_drop"] <= 1:
        problems.append(f"{name('max_accuracy_drop')} {values['max_accuracy_drop']} is not in [0, 1]")
    if not values["max_time_ratio"] > 0:
        problems.append(f"{name('max_time_ratio')} {values['max_time_ratio']} is not positive")
    elif not math.isfinite(values["max_time_ratio"]):
        problems.append(f"{name('max_time_ratio')} {values['max_time_ratio']} is not a finite number")
    for field in ("bench_runs", "chunk_size", "max_epochs", "patience"):
        if values[field] < 1:
            problems.append(f"{name(field)} {values[field]} is not a positive integer")
    for field in ("extract_processes", "bench_sample", "project_samples"):  # None: the default (decided later)
        if values[field] is not None and values[field] < 1:
            problems.append(f"{name(field)} {values[field]} is not a positive integer")
    if not 0 <= values["seed"] <= MAX_SEED:
        problems.append(f"{name('seed')} {values['seed']} is not from 0 to 2**63 - 1")
    if values["extraction_path"] not in EXTRACTION_PATHS:
        problems.append(f"{name('extraction_path')} {values['extraction_path']!r} is not one of "
                        f"{', '.join(EXTRACTION_PATHS)}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(values["device"])):
        problems.append(f"{name('device')} {values['device']!r} is not a device (auto, cpu, cuda or cuda:N)")
    if values["bench_warmup"] < 0:
        problems.append(f"{name('bench_warmup')} {values['bench_warmup']} is negative")
    if not 0 < values["cluster_identity"] <= 1 or not 0 < values["cluster_coverage"] <= 1:
        problems.append(f"{name('cluster_identity')} and {name('cluster_coverage')} must be fractions in (0, 1]")
    return problems


def _check_declarations(viral: Sequence[Path], host: Sequence[Path], declarations: Sequence[str], size: str,
                        name: Callable[[str], str]) -> None:
    """Every protein model given in VirNucPro's layout (which records no provenance) must be declared.

    Checked before anything runs, so a missing declaration is one usage error;
    files are memory-mapped, so this reads little more than their headers.
    """
    # lazy: pulls in torch/numpy, and pytest --help reads these settings without them
    from virnucpro_core.layouts.features import ORIGINAL_MERGED, detect_layout
    from virnucpro_core.pickles import torch_load
    from virnucpro_core.layouts.declarations import Declaration, declaration_for, protein_model_of_width

    parsed = [Declaration.parse(text, option=name("declarations")) for text in declarations]
    models: dict[str, list[str]] = {}
    for path in [*viral, *host]:
        if _input_kind(path) != "merged":
            continue
        obj = torch_load(path, "merged feature", mmap=True)
        if detect_layout(obj) == ORIGINAL_MERGED and hasattr(obj.get("data"), "shape") and obj["data"].ndim == 2:
            model = protein_model_of_width(int(obj["data"].shape[1]), size)
            if model is not None:  # other widths are refused with their own message when imported
                models.setdefault(model, []).append(path.name)
    for model, names in models.items():
        declaration_for(parsed, model, f"{len(names)} input file(s) ({', '.join(names[:3])}...)",
                        option=name("declarations"))


def _expand(paths: Sequence[str | Path], option: str) -> list[Path]:
    """Input paths with each directory replaced by its ``*.pt`` files (sorted)."""
    # lazy: pulls in torch/numpy, and pytest --help reads these settings without them
    from virnucpro_core.layouts.virnucpro import merged_files

    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = merged_files(path)
            if not found:
                raise InputError(f"{option} {path}: a directory without *.pt files",
                                 expected="merged feature files (.pt), or a FASTA file", fix="check the path")
            out += found
        else:
            out.append(path)
    return out


def _check_baseline_features(viral: Sequence[Path], host: Sequence[Path], baseline_viral: Sequence[Path],
                             baseline_host: Sequence[Path], values: dict[str, Any], name: Callable[[str], str]) -> None:
    """``--baseline-features`` completes FASTA inputs with the baseline's merged features: of both classes, for
    FASTA inputs only, and not beside ``--baseline-metrics`` (which replaces the baseline altogether)."""
    option = name("baseline_features")
    if any(_input_kind(path) != "fasta" for path in [*viral, *host]):
        raise InputError(f"{option} completes FASTA inputs, and merged feature files were given as inputs",
                         expected=f"FASTA genomes with {name('viral')}/{name('host')}, and {option} DIR",
                         fix=f"pass the merged files as inputs (without {option}), or the FASTA genomes")
    not_merged = [path.name for path in [*baseline_viral, *baseline_host] if _input_kind(path) != "merged"]
    if not_merged:
        raise InputError(f"{option} holds files that are not merged features", found=", ".join(not_merged[:5]),
                         expected="ESM2 3B merged feature files (.pt)", fix="point it at the data_merge tree")
    if values.get("baseline_metrics"):
        raise InputError(f"{option} and {name('baseline_metrics')} both describe the baseline",
                         fix="give one of them")
    if not baseline_viral or not baseline_host:
        raise InputError(f"{option} must hold both classes",
                         found=f"{len(baseline_viral)} viral and {len(baseline_host)} host files",
                         fix="point it at the whole data_merge tree (or viral* and host* files)")


def _scan_data_dir(directory: Path, name: Callable[[str], str], field: str = "data_dir",
                   ) -> tuple[list[Path], list[Path], dict[str, str]]:
    """Viral and host inputs of a ``--data-dir`` (or of the option ``field`` names), and each file's group (for a
    VirNucPro data_merge tree)."""
    # lazy: pulls in torch/numpy, and pytest --help reads these settings without them
    from virnucpro_core.layouts.virnucpro import is_data_merge_tree, scan_data_merge

    expected = ("viral* and host* files: FASTA (.fa/.fasta/.fna, optionally .gz) or merged feature files (.pt); "
                "or VirNucPro's data/data_merge tree (<category>_merged/*.pt)")
    if not directory.is_dir():
        raise InputError(f"{name(field)} {directory}: not a directory", expected=expected)
    if is_data_merge_tree(directory):
        tree = scan_data_merge(directory)
        viral = [item.path for item in tree if item.label == "viral"]
        host = [item.path for item in tree if item.label == "host"]
        if not viral or not host:
            raise InputError(f"{name(field)} {directory}: {len(viral)} viral and {len(host)} host files",
                             expected="viral.1.1_merged/*.pt and at least one other <category>_merged/*.pt",
                             fix=f"check the tree, or pass the files with {name('viral')}/{name('host')}")
        return viral, host, {str(item.path): item.group for item in tree}
    files = sorted(p for p in directory.iterdir() if p.is_file())
    pick = lambda prefix: [p for p in files if p.name.lower().startswith(prefix) and _input_kind(p) is not None]
    viral, host = pick("viral"), pick("host")
    if not viral or not host:
        names = ", ".join(p.name for p in files[:8]) + (" ..." if len(files) > 8 else "")
        raise InputError(
            f"{name(field)} {directory}: {len(viral)} viral and {len(host)} host inputs",
            expected=expected,
            found=names or "an empty directory",
            fix=f"rename the files (e.g. viral_genomes.fasta, host_genomes.fasta) or pass them with {name('viral')}/"
            f"{name('host')}",
        )
    return viral, host, {}


def _input_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(FASTA_SUFFIXES):
        return "fasta"
    if name.endswith(".pt"):
        return "merged"
    return None


