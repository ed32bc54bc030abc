"""The acceptance run's settings: every option resolved once, with the documented defaults and checks.

:meth:`Settings.resolve` turns the suite's options into one frozen object:
profile (smoke without data, full with it), inputs (files, directories of
``*.pt``, ``--data-dir`` folders of ``viral*``/``host*`` files or VirNucPro
``data_merge`` trees), declarations for VirNucPro-layout features, weights,
limits. Every problem of the options is reported before anything runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from virnucpro_core.errors import InputError

log = logging.getLogger("virnucpro.validation")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SMOKE_DATA = {"viral": PROJECT_ROOT / "fixtures" / "smoke" / "viral.fasta",
              "host": PROJECT_ROOT / "fixtures" / "smoke" / "host.fasta"}
SMOKE_GROUPS = PROJECT_ROOT / "fixtures" / "smoke" / "groups.tsv"  # record id -> synthetic family
CLASSES = ("viral", "host")
# The two protein embedders under comparison, and the DNA embedder they share.
EMBEDDERS = {"fast": "fastesm2_650", "baseline": "esm2_3b"}
DNA_MODEL = "dnabert_s"
# The suite's option that names each model's weights (a local directory or a hub id).
MODEL_OPTIONS = {"fastesm2_650": "--fast-model", "esm2_3b": "--baseline-model", "dnabert_s": "--dna-model"}
FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz")


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
    allow_other_model: bool = False  # load a directory that states another model (recorded; verdict not PASS)
    chunk_size: int = 300
    baseline_metrics: Path | None = None
    max_accuracy_drop: float = 0.05
    max_time_ratio: float = 0.5
    bench_sample: int = 1000
    bench_runs: int = 3
    bench_warmup: int = 1
    rebuild: bool = False
    device: str = "auto"
    require_gpu: bool = False
    extract_processes: int | None = None  # None: every visible GPU when there are several, else this process
    seed: int = 42
    max_epochs: int = 200
    patience: int = 5
    declarations: tuple[str, ...] = ()  # --declare-features: how VirNucPro-layout feature files were made
    groups: dict[str, str] = field(default_factory=dict)  # input path -> its data_merge folder (RefSeq category)
    # Evidence beside the gate (virnucpro_core.generalisation); none of it changes the verdict.
    groups_file: Path | None = None  # record or sample id -> group (TSV)
    cluster_identity: float = 0.6
    cluster_coverage: float = 0.8
    viral_prevalence: str = "1:19"
    record_rule: str = "mean"

    @classmethod
    def resolve(
        cls,
        *,
        profile: str | None = None,
        viral: Sequence[str | Path] = (),
        host: Sequence[str | Path] = (),
        data_dir: str | Path | Sequence[str | Path] | None = None,
        declarations: Sequence[str] = (),
        weights: str | None = None,
        size: str | None = None,
        artifacts: str | Path | None = None,
        bench_sample: int | None = None,
        fast_model: str | None = None,
        baseline_model: str | None = None,
        dna_model: str | None = None,
        baseline_metrics: str | Path | None = None,
        **rest: Any,
    ) -> "Settings":
        """Apply the documented defaults: smoke without data, full with it."""
        from virnucpro_core.layouts.virnucpro import Declaration

        viral, host = _expand(viral, "--viral"), _expand(host, "--host")
        groups: dict[str, str] = {}
        data_dirs = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir or [])
        for directory in data_dirs:
            found_viral, found_host, found_groups = _scan_data_dir(Path(directory))
            viral, host = viral + found_viral, host + found_host
            groups.update(found_groups)
        for text in declarations:
            Declaration.parse(text, option="--declare-features")
        has_data = bool(viral or host)
        profile = profile or ("full" if has_data else "smoke")
        if profile == "smoke":
            if has_data:
                raise InputError(
                    "the smoke profile runs on the bundled data only",
                    found=f"{len(viral)} viral and {len(host)} host inputs",
                    fix="drop --profile smoke to validate your data (the full profile)",
                )
            viral, host = [SMOKE_DATA["viral"]], [SMOKE_DATA["host"]]
            weights = weights or "random"
            size = size or "tiny"
        else:
            weights = weights or "pretrained"
            size = size or "full"
            if not has_data:
                if weights == "pretrained":
                    # The real gate must never pass on the bundled synthetic genomes.
                    raise InputError(
                        "the full profile with pretrained weights validates your data, and none was given",
                        expected="--viral/--host FASTA or merged feature files, or --data-dir with viral* and host* files",
                        found="no data options",
                        fix="pass your data; for a speed-only run of the real architectures add --weights random",
                    )
                log.warning("full profile with random weights and no data: timing on the bundled synthetic proteins")
                viral, host = [SMOKE_DATA["viral"]], [SMOKE_DATA["host"]]
        if not viral or not host:
            raise InputError(
                "both classes are needed",
                expected="at least one viral and one host input (--viral/--host, or --data-dir with viral* and host* files)",
                found=f"{len(viral)} viral and {len(host)} host inputs",
                fix="add the missing class",
            )
        problems = []
        if not 0 <= rest.get("max_accuracy_drop", 0.05) <= 1:
            problems.append(f"--max-accuracy-drop {rest['max_accuracy_drop']} is not in [0, 1]")
        if not rest.get("max_time_ratio", 0.5) > 0:
            problems.append(f"--max-time-ratio {rest['max_time_ratio']} is not positive")
        for name in ("bench_runs", "chunk_size", "max_epochs", "patience"):
            if name in rest and rest[name] < 1:
                problems.append(f"--{name.replace('_', '-')} {rest[name]} is not a positive integer")
        if rest.get("extract_processes") is not None and rest["extract_processes"] < 1:
            problems.append(f"--extract-processes {rest['extract_processes']} is not a positive integer")
        if bench_sample is not None and bench_sample < 1:
            problems.append(f"--bench-sample {bench_sample} is not a positive integer")
        if not 0 <= rest.get("seed", 0) <= 2**63 - 1:
            problems.append(f"--seed {rest['seed']} is not from 0 to 2**63 - 1")
        if rest.get("bench_warmup", 1) < 0:
            problems.append(f"--bench-warmup {rest['bench_warmup']} is negative")
        if not 0 < rest.get("cluster_identity", 0.6) <= 1 or not 0 < rest.get("cluster_coverage", 0.8) <= 1:
            problems.append("--cluster-identity and --cluster-coverage must be fractions in (0, 1]")
        if problems:
            raise InputError("invalid acceptance options: " + "; ".join(problems),
                             fix="see `pytest acceptance/ --help`, group 'VirNucPro FastESM2 acceptance suite'")
        for path in [*viral, *host]:
            if not path.exists():
                raise InputError(f"{path}: no such input file", fix="check the --viral/--host/--data-dir paths")
        _check_declarations(viral, host, declarations, size)
        from virnucpro_core.calibration import parse_prevalence

        parse_prevalence(rest.get("viral_prevalence", "1:19"))
        groups_file = rest.pop("groups_file", None)
        groups_file = Path(groups_file) if groups_file else (SMOKE_GROUPS if profile == "smoke" else None)
        if groups_file is not None and not groups_file.is_file():
            raise InputError(f"--groups {groups_file}: no such file", expected="a TSV of id <TAB> group",
                             fix="check the path")
        return cls(
            profile=profile,
            viral=tuple(viral),
            host=tuple(host),
            weights=weights,
            size=size,
            artifacts=Path(artifacts) if artifacts else PROJECT_ROOT / "artifacts" / "acceptance" / profile,
            bench_sample=bench_sample or (300 if profile == "smoke" else 1000),
            model_sources={"fastesm2_650": fast_model, "esm2_3b": baseline_model, "dnabert_s": dna_model},
            baseline_metrics=Path(baseline_metrics) if baseline_metrics else None,
            declarations=tuple(declarations),
            groups=groups,
            groups_file=groups_file,
            **rest,
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


def _check_declarations(viral: Sequence[Path], host: Sequence[Path], declarations: Sequence[str], size: str) -> None:
    """Every protein model given in VirNucPro's layout (which records no provenance) must be declared.

    Checked before anything runs, so a missing declaration is one usage error;
    files are memory-mapped, so this reads little more than their headers.
    """
    from virnucpro_core.layouts.features import ORIGINAL_MERGED, detect_layout, torch_load
    from virnucpro_core.layouts.virnucpro import Declaration, declaration_for, protein_model_of_width

    parsed = [Declaration.parse(text, option="--declare-features") for text in declarations]
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
                        option="--declare-features")


def _expand(paths: Sequence[str | Path], option: str) -> list[Path]:
    """Input paths with each directory replaced by its ``*.pt`` files (sorted)."""
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


def _scan_data_dir(directory: Path) -> tuple[list[Path], list[Path], dict[str, str]]:
    """Viral and host inputs of a ``--data-dir``, and each file's group (for a VirNucPro data_merge tree)."""
    from virnucpro_core.layouts.virnucpro import is_data_merge_tree, scan_data_merge

    expected = ("viral* and host* files: FASTA (.fa/.fasta/.fna, optionally .gz) or merged feature files (.pt); "
                "or VirNucPro's data/data_merge tree (<category>_merged/*.pt)")
    if not directory.is_dir():
        raise InputError(f"--data-dir {directory}: not a directory", expected=expected)
    if is_data_merge_tree(directory):
        tree = scan_data_merge(directory)
        viral = [item.path for item in tree if item.label == "viral"]
        host = [item.path for item in tree if item.label == "host"]
        if not viral or not host:
            raise InputError(f"--data-dir {directory}: {len(viral)} viral and {len(host)} host files",
                             expected="viral.1.1_merged/*.pt and at least one other <category>_merged/*.pt",
                             fix="check the tree, or pass the files with --viral/--host")
        return viral, host, {str(item.path): item.group for item in tree}
    files = sorted(p for p in directory.iterdir() if p.is_file())
    pick = lambda prefix: [p for p in files if p.name.lower().startswith(prefix) and _input_kind(p) is not None]
    viral, host = pick("viral"), pick("host")
    if not viral or not host:
        names = ", ".join(p.name for p in files[:8]) + (" ..." if len(files) > 8 else "")
        raise InputError(
            f"--data-dir {directory}: {len(viral)} viral and {len(host)} host inputs",
            expected=expected,
            found=names or "an empty directory",
            fix="rename the files (e.g. viral_genomes.fasta, host_genomes.fasta) or pass them with --viral/--host",
        )
    return viral, host, {}


def _input_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(FASTA_SUFFIXES):
        return "fasta"
    if name.endswith(".pt"):
        return "merged"
    return None


