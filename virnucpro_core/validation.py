"""A validation run: every stage from input genomes to the FastESM2-vs-ESM2-3B comparison, cached.

The acceptance suite's fixtures are one-liners over :class:`ValidationRun`;
each stage method calls the same library functions as the ``virnucpro``
command and caches its output under the artifacts directory, keyed by a hash
of its inputs and parameters. A rerun reuses what is there and says so;
``rebuild=True`` recomputes.

Stages: inputs → preprocess (per class) → extract (DNABERT-S, FastESM2,
ESM2 3B) → merge (per embedder and class) → split (once, applied to both
embedders) → train (per embedder) → predictions and evaluation → comparison.
The speed benchmark samples its proteins from the test set. Extraction runs
in this process, or as one process per GPU under torchrun when several GPUs
are visible (:meth:`ValidationRun.extraction_processes`): the same files.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.errors import InputError
from virnucpro_core.files import atomic_write_text, sha256_file, sha256_text
from virnucpro_core.paths import ValidationPaths

log = logging.getLogger("virnucpro.validation")

from virnucpro_core.settings import CLASSES, DNA_MODEL, EMBEDDERS, MODEL_OPTIONS, Settings, _input_kind


@dataclass
class StageRecord:
    """One line of the run's stage log: what ran, whether it was reused, how long it took."""

    stage: str
    reused: bool
    seconds: float
    key: str
    detail: str = ""


class ValidationRun:
    """The cached chain of stages for one :class:`Settings`."""

    def __init__(self, settings: Settings, *, progress: bool = False,
                 announce: Callable[[str], None] | None = None) -> None:
        """``progress``: tqdm bars on long loops; ``announce``: called with one line as each stage starts and ends."""
        self.settings = settings
        self.paths = ValidationPaths(settings.artifacts)
        self.progress = progress
        self.announce = announce or (lambda line: None)
        self.stages: list[StageRecord] = []
        self._memo: dict[str, Any] = {}

    def _record(self, stage: str, reused: bool, start: float, key: str, items: str = "", detail: str = "") -> None:
        seconds = time.perf_counter() - start
        self.stages.append(StageRecord(stage, reused, seconds, key, detail))
        self.announce(f"{stage}: {'reused' if reused else 'built'} in {seconds:.1f} s" + (f" ({items})" if items else ""))

    def peek(self, stage: str) -> Any:
        """A stage's result if it has been built in this session, else ``None`` (never builds)."""
        return self._memo.get(stage)

    # ------------------------------------------------------------------ caching machinery

    def _cached(self, stage: str, params: dict, directory_of: Callable[[str], Path],
                build: Callable[[Path], None], load: Callable[[Path], Any],
                count: Callable[[Any], str] | None = None) -> Any:
        """Build ``stage`` into a directory keyed by ``params`` unless a finished one exists.

        ``count`` describes the result's size for the progress line (``"2,182 frames"``).
        """
        if stage in self._memo:
            return self._memo[stage]
        key = sha256_text(json.dumps(params, sort_keys=True, default=str))[:16]
        directory = directory_of(key)
        done = directory / "stage.json"
        start = time.perf_counter()
        reused = done.is_file() and not self.settings.rebuild
        if reused:
            log.info("%s: reusing %s (pass --rebuild to recompute)", stage, directory)
        else:
            log.info("%s: building into %s", stage, directory)
            self.announce(f"{stage}: building ...")
            directory.mkdir(parents=True, exist_ok=True)
            done.unlink(missing_ok=True)
            build(directory)
            atomic_write_text(done, json.dumps({"stage": stage, "params": params}, indent=2, default=str) + "\n")
        value = load(directory)
        self._record(stage, reused, start, key, count(value) if count else "")
        self._memo[stage] = value
        return value

    # ------------------------------------------------------------------ models

    def device(self) -> torch.device:
        from virnucpro_core.models import resolve_device

        return resolve_device(self.settings.device)

    def model(self, name: str, *, dtype: str = "float32"):
        """Load (once) a model the way the settings say: pretrained from source, or a seeded stand-in."""
        from virnucpro_core.models import load_model

        memo = f"model:{name}:{dtype}"
        if memo not in self._memo:
            # A local directory or a hub id read from the cache; load_model tells a missing directory apart.
            self._memo[memo] = load_model(
                name,
                weights=self.settings.weights,
                size=self.settings.size,
                model_path=self.settings.model_sources.get(name) or None,
                device=self.device(),
                dtype=dtype,
                seed=self.settings.seed,
                path_option=MODEL_OPTIONS[name],
                allow_other_model=self.settings.allow_other_model,
            )
        return self._memo[memo]

    def loaded_models(self) -> list:
        """The models used so far in this session (one per name and dtype), for the report.

        Models loaded here, and those that extracted features in other
        processes (:meth:`extraction_processes`), described by their feature files.
        """
        models = {key.removeprefix("model:"): value for key, value in self._memo.items() if key.startswith("model:")}
        for key, value in self._memo.items():
            if key.startswith("extracted by:"):
                models.setdefault(key.removeprefix("extracted by:"), value)
        return [models[key] for key in sorted(models)]

    def extraction_processes(self) -> int:
        """How many processes extract features: ``--extract-processes``, else every visible GPU when there
        are several and ``--device`` is auto or cuda, else 1 (in this process)."""
        if self.settings.extract_processes is not None:
            return self.settings.extract_processes
        if self.settings.device in ("auto", "cuda") and torch.cuda.device_count() > 1:
            return torch.cuda.device_count()
        return 1

    # ------------------------------------------------------------------ data stages

    def input_kind(self, label: str) -> str:
        kinds = {_input_kind(p) for p in self.settings.inputs(label)}
        if None in kinds or len(kinds) != 1:
            raise InputError(
                f"{label} inputs must be all FASTA or all merged feature files",
                found=", ".join(str(p) for p in self.settings.inputs(label)),
                expected="*.fa/*.fasta/*.fna(.gz) genomes, or *.pt files written by `virnucpro merge`",
            )
        return kinds.pop()

    def preprocessed(self, label: str):
        """Chunks and stop-free frames of one class (all its FASTA inputs, concatenated in order)."""
        from virnucpro_core.paths import PreprocessPaths
        from virnucpro_core.sequences import preprocess, read_fasta, write_fasta

        inputs = self.settings.inputs(label)
        params = {"inputs": [sha256_file(p) for p in inputs], "chunk_size": self.settings.chunk_size}

        def build(directory: Path) -> None:
            if len(inputs) == 1:
                source = inputs[0]
            else:
                source = directory / "input.fasta"
                write_fasta(((r.id, r.seq) for p in inputs for r in read_fasta(p)), source)
            preprocess(source, self.settings.chunk_size, directory)

        def frames(paths: PreprocessPaths) -> str:
            summary = json.loads(paths.summary.read_text(encoding="utf-8"))
            return f"{summary['records']:,} records, {summary['chunks']:,} chunks, {summary['frames']:,} frames"

        return self._cached(f"preprocess[{label}]", params, lambda key: self.paths.preprocess(label, key),
                            build, PreprocessPaths, frames)

    def extraction_dtype(self, model: str) -> str:
        """The dtype each model's accuracy features are extracted in: the precision policy on this run's device.

        :func:`virnucpro_core.precision.extraction_dtype` — FastESM2 in fp16 on
        CUDA and fp32 on the CPU, ESM2 3B and DNABERT-S in fp32 as VirNucPro ran
        them; the as-deployed timings use the same, so the accuracy gate
        validates the configuration whose speed is gated.
        """
        from virnucpro_core.precision import extraction_dtype

        return extraction_dtype(model, self.device().type)

    def features(self, model: str, label: str) -> Path:
        """Per-model feature file of one class (``extract_to_file`` keeps its own resumable shards).

        Extracted in this process, or by ``virnucpro extract`` under torchrun
        when :meth:`extraction_processes` is more than 1 (one process per GPU):
        the same file either way, reused on a rerun either way.
        """
        from virnucpro_core.features import extract_to_file

        memo = f"extract[{model},{label}]"
        if memo in self._memo:
            return self._memo[memo]
        frames = self.preprocessed(label)
        fasta = frames.nucleotide if model == DNA_MODEL else frames.protein
        out = self.paths.features(model, label)
        before = out.stat().st_mtime_ns if out.exists() else None
        start = time.perf_counter()
        processes = self.extraction_processes()
        if processes > 1:
            self._extract_with_torchrun(memo, model, fasta, out, processes)
        else:
            loaded = self.model(model, dtype=self.extraction_dtype(model))
            self.announce(f"{memo}: {fasta.name} with {loaded.spec.display_name} ({loaded.provenance['dtype']}, "
                          f"{loaded.device}) ...")
            extract_to_file(loaded, fasta, out, rebuild=self.settings.rebuild, progress=self.progress)
        reused = before is not None and out.stat().st_mtime_ns == before
        self._record(memo, reused, start, "", detail=str(out))
        self._memo[memo] = out
        return out

    def _extract_with_torchrun(self, memo: str, model: str, fasta: Path, out: Path, processes: int) -> None:
        """``virnucpro extract`` as ``processes`` processes under torchrun, with this run's settings."""
        from virnucpro_core.features import extract_with_torchrun
        from virnucpro_core.layouts.features import load_features
        from virnucpro_core.models import get_spec, model_directory

        settings, dtype = self.settings, self.extraction_dtype(model)
        source = settings.model_sources.get(model) or None
        if settings.weights == "pretrained":  # missing weights: the suite's option in the message, before launching
            model_directory(model, source, MODEL_OPTIONS[model])
        self.announce(f"{memo}: {fasta.name} with {get_spec(model).display_name} ({dtype}, {processes} processes "
                      f"under torchrun, device {settings.device}) ...")
        extract_with_torchrun(processes, model, fasta, out, weights=settings.weights, size=settings.size,
                              dtype=dtype, device=settings.device, seed=settings.seed, model_path=source,
                              allow_other_model=settings.allow_other_model, rebuild=settings.rebuild,
                              on_line=lambda line: log.info("%s: %s", memo, line))
        meta = load_features(out).meta
        self._memo[f"extracted by:{model}:{meta['dtype']}"] = ExtractedModel.from_meta(meta)

    def merged(self, embedder: str, label: str) -> Path:
        """Merged DNABERT-S ‖ protein features of one class for ``fast`` or ``baseline``."""
        from virnucpro_core.features import merge_features
        from virnucpro_core.layouts.features import save_merged

        if self.input_kind(label) == "merged":
            return self._merged_inputs(embedder, label)
        protein_model = EMBEDDERS[embedder]
        memo = f"merged[{embedder},{label}]"
        if memo in self._memo:
            return self._memo[memo]
        dna, protein = self.features(DNA_MODEL, label), self.features(protein_model, label)
        params = {"dna": sha256_file(dna), "protein": sha256_file(protein), "label": label}

        def build(directory: Path) -> None:
            save_merged(merge_features(dna, protein, label), directory / "merged.pt")

        return self._cached(memo, params, lambda key: self.paths.merged(embedder, label, key), build,
                            lambda d: d / "merged.pt")

    def has_merged_inputs(self) -> bool:
        return any(self.input_kind(label) == "merged" for label in CLASSES)

    def layout(self, path: Path) -> str:
        """The layout of a merged input (tensors memory-mapped, so this reads little)."""
        from virnucpro_core.layouts.features import detect_layout, torch_load

        memo = f"layout:{path}"
        if memo not in self._memo:
            self._memo[memo] = detect_layout(torch_load(path, "merged feature", mmap=True))
        return self._memo[memo]

    def merged_meta(self, path: Path) -> dict:
        """The ``meta`` of a merged feature file or view of ours (read once)."""
        from virnucpro_core.layouts.features import torch_load

        memo = f"merged meta:{path}"
        if memo not in self._memo:  # the meta only: the rows are memory-mapped and never touched
            obj = torch_load(path, "merged feature", mmap=True)
            self._memo[memo] = dict(obj["meta"]) if isinstance(obj.get("meta"), dict) else {}
        return self._memo[memo]

    def declarations(self) -> list:
        from virnucpro_core.layouts.virnucpro import Declaration

        return [Declaration.parse(text, option="--declare-features") for text in self.settings.declarations]

    def random_weights_reason(self) -> str | None:
        """Why accuracy here cannot validate FastESM2, or ``None``: random weights, in the settings or in the inputs.

        Our merged files say which weights made them; VirNucPro-layout files
        are taken at the word of ``--declare-features``.
        """
        from virnucpro_core.comparison import uses_random_weights
        from virnucpro_core.layouts.features import OURS_MERGED

        if not self.has_merged_inputs():
            return None if self.settings.weights == "pretrained" else "--weights random"
        paths = [path for label in CLASSES for path in self.settings.inputs(label)]
        made_by_standins = [path.name for path in paths
                            if self.layout(path) == OURS_MERGED and uses_random_weights(self.merged_meta(path))]
        if any(self.layout(path) != OURS_MERGED for path in paths):
            made_by_standins += [f"--declare-features {d}" for d in self.declarations() if d.weights == "random"]
        if made_by_standins:
            return "merged features made with random-weight stand-ins: " + ", ".join(made_by_standins)
        return None

    def other_model_reason(self) -> str | None:
        """Why this run validated another model than the registry's (``--allow-other-model``), or ``None``.

        Read from the provenance of the models loaded so far (here or by torchrun processes) and, for
        merged inputs of ours, from the provenance their meta carries.
        """
        from virnucpro_core.layouts.features import OURS_MERGED
        from virnucpro_core.models import describe_identity, identity_records

        found = [(record, "") for model in self.loaded_models() for record in identity_records(model.provenance)]
        if self.has_merged_inputs():
            paths = [path for label in CLASSES for path in self.settings.inputs(label)]
            found += [(record, f" (merged input {path.name})") for path in paths if self.layout(path) == OURS_MERGED
                      for record in identity_records(self.merged_meta(path))]
        notes = [f"another model than {record['expected']['display_name']} was validated (--allow-other-model): "
                 f"{describe_identity(record)}{where}" for record, where in found]
        return "; ".join(dict.fromkeys(notes)) or None

    def pipeline_dim(self, embedder: str) -> int:
        """Width the ``embedder`` pipeline feeds its MLP: DNABERT-S plus the protein model, at the run's size."""
        from virnucpro_core.models import get_spec

        sizes = {DNA_MODEL: self.settings.size, EMBEDDERS[embedder]: self.settings.size}
        if self.input_kind("viral") == "merged":
            meta = self.merged_meta(self.merged(embedder, "viral"))
            sizes = {DNA_MODEL: meta["dna"]["size"], EMBEDDERS[embedder]: meta["protein"]["size"]}
        return sum(get_spec(name).dim_for(size) for name, size in sizes.items())

    def _import_plan(self) -> dict:
        from virnucpro_core.layouts.virnucpro import plan_import

        if "import plan" not in self._memo:
            inputs = {label: self.settings.inputs(label) for label in CLASSES}
            self._memo["import plan"] = plan_import(inputs, self.settings.size)
        return self._memo["import plan"]

    def _merged_inputs(self, embedder: str, label: str) -> Path:
        """One merged file of ``embedder`` and class ``label``: a single file of ours as given, else the inputs
        (ours joined, or VirNucPro's imported under their declared provenance) written once into the artifacts."""
        from virnucpro_core.layouts.features import OURS_MERGED, save_view
        from virnucpro_core.layouts.virnucpro import import_rows

        wanted = EMBEDDERS[embedder]
        paths = self._import_plan().get((wanted, label))
        if not paths:
            raise InputError(
                f"no {label} merged feature file from {wanted}",
                expected=f"merged files of each embedder for each class ({', '.join(EMBEDDERS.values())})",
                found=", ".join(str(p) for p in self.settings.inputs(label)),
                fix="pass both embedders' merged files (e.g. --data-dir for each data_merge tree), or FASTA inputs "
                "so the suite extracts them",
            )
        if len(paths) == 1 and self.layout(paths[0]) == OURS_MERGED:
            return paths[0]
        groups = {Path(p): g for p, g in self.settings.groups.items()}
        params = {"inputs": [sha256_file(p) for p in paths], "label": label, "size": self.settings.size,
                  "declarations": sorted(self.settings.declarations),
                  "groups": [groups.get(p) for p in paths]}

        def build(directory: Path) -> None:
            rows = import_rows(paths, label, self.declarations(), size=self.settings.size, groups=groups,
                               option="--declare-features")
            save_view(rows, directory / "merged.pt")  # where each row is; the rows stay in the inputs

        return self._cached(f"import[{embedder},{label}]", params,
                            lambda key: self.paths.imported(embedder, label, key), build,
                            lambda d: d / "merged.pt", lambda p: f"{len(paths)} file(s)")

    def split(self):
        """The test set, made once on the FastESM2 features; same ids for both embedders."""
        from virnucpro_core.split import make_split

        viral, host = self.merged("fast", "viral"), self.merged("fast", "host")
        params = {"viral": sha256_file(viral), "host": sha256_file(host), "seed": self.settings.seed,
                  "test_fraction": 0.1}
        return self._cached(
            "split[fast]", params, lambda key: self.paths.split("fast", key),
            lambda d: make_split(viral, host, test_fraction=0.1, seed=self.settings.seed, out_dir=d, overwrite=True),
            lambda d: make_split(viral, host, test_fraction=0.1, seed=self.settings.seed, out_dir=d),
            _split_count,
        )

    def split_for(self, embedder: str):
        """The split applied to ``embedder``'s features (the FastESM2 split itself for ``fast``)."""
        from virnucpro_core.split import apply_split

        source = self.split()
        if embedder == "fast":
            return source
        viral, host = self.merged(embedder, "viral"), self.merged(embedder, "host")
        params = {"manifest": source.manifest.sha256, "viral": sha256_file(viral), "host": sha256_file(host)}
        return self._cached(
            f"split[{embedder}]", params, lambda key: self.paths.split(embedder, key),
            lambda d: apply_split(source.manifest, viral, host, out_dir=d, overwrite=True),
            lambda d: apply_split(source.manifest, viral, host, out_dir=d),
            _split_count,
        )

    # ------------------------------------------------------------------ training and evaluation

    def training_config(self):
        from virnucpro_core.training import TrainingConfig

        return TrainingConfig(max_epochs=self.settings.max_epochs, patience=self.settings.patience,
                              seed=self.settings.seed, device=str(self.device()))

    def trained(self, embedder: str) -> "TrainedModel":
        """Train the MLP for one embedder (VirNucPro's hyperparameters); keeps final and best weights."""
        return self.trained_on(embedder, self.split_for(embedder), f"train[{embedder}]",
                               lambda key: self.paths.train(embedder, key))

    def trained_on(self, embedder: str, split, stage: str, directory_of: Callable[[str], Path]) -> "TrainedModel":
        """Train ``embedder``'s MLP on ``split``'s training side with the run's hyperparameters (any split)."""
        from virnucpro_core.layouts.checkpoints import load_checkpoint
        from virnucpro_core.training import TrainingHistory, train_classifier

        config = self.training_config()
        params = {"train": sha256_file(split.paths.train), "config": config.to_dict()}

        def build(directory: Path) -> None:
            result = train_classifier(split.paths.train, config, progress=self.progress, log=log.info)
            result.save(directory / "final.pt", "final")
            result.save(directory / "best.pt", "best")
            atomic_write_text(directory / "val_ids.json", json.dumps(result.val_ids) + "\n")

        def load(directory: Path) -> TrainedModel:
            return TrainedModel(
                embedder=embedder,
                final=load_checkpoint(directory / "final.pt"),
                best=load_checkpoint(directory / "best.pt"),
                history=TrainingHistory.load(directory / "final.history.json"),
                val_ids=json.loads((directory / "val_ids.json").read_text()),
                train_path=split.paths.train,
            )

        def epochs(trained: TrainedModel) -> str:
            history = trained.history
            return f"{len(history.epochs)} epochs, best {history.best_epoch}, stopped by {history.stop_reason}"

        return self._cached(stage, params, directory_of, build, load, epochs)

    def predictions(self, embedder: str):
        """The final MLP's predictions on the test set (the only time the test set is read).

        Their ``meta`` carries the checkpoint and both embedders' provenance, so
        the comparison knows whether random-weight stand-ins made the features.
        """
        from virnucpro_core.prediction import predict_features

        memo = f"predictions[{embedder}]"
        if memo not in self._memo:
            self._memo[memo] = predict_features(self.trained(embedder).final, self.split_for(embedder).paths.test)
        return self._memo[memo]

    def evaluation(self, embedder: str):
        """Metrics of one embedder's MLP on the test set; the baseline's come from ``--baseline-metrics`` when given."""
        from virnucpro_core.metrics import Evaluation, evaluate

        memo = f"evaluation[{embedder}]"
        if memo not in self._memo:
            if embedder == "baseline" and self.settings.baseline_from_metrics:
                self._memo[memo] = Evaluation.load(self.settings.baseline_metrics)
            else:
                self._memo[memo] = evaluate(self.predictions(embedder), seed=self.settings.seed)
        return self._memo[memo]

    def comparison(self):
        """FastESM2 against the ESM2 3B baseline on the identical test samples, with the verdict."""
        from virnucpro_core.comparison import compare

        if "comparison" not in self._memo:
            if self.settings.baseline_from_metrics:
                baseline, baseline_metrics, baseline_evaluation = None, self.evaluation("baseline"), None
            else:
                baseline, baseline_metrics = self.predictions("baseline"), None
                baseline_evaluation = self.evaluation("baseline")
            self._memo["comparison"] = compare(
                self.predictions("fast"),
                baseline,
                baseline_metrics=baseline_metrics,
                max_accuracy_drop=self.settings.max_accuracy_drop,
                seed=self.settings.seed,
                fast_evaluation=self.evaluation("fast"),
                baseline_evaluation=baseline_evaluation,
                baseline_source=str(self.settings.baseline_metrics) if baseline_metrics is not None else None,
            )
        return self._memo["comparison"]

    def evidence(self):
        """Generalisation splits, per-group accuracy, calibration and verdict levels: evidence, never gated."""
        from virnucpro_core.generalisation import build_evidence

        if "evidence" not in self._memo:
            self._memo["evidence"] = build_evidence(self)
        return self._memo["evidence"]

    # ------------------------------------------------------------------ speed

    def benchmark_proteins(self) -> list[tuple[str, str]]:
        """A seeded sample of test-set proteins that follows the test set's length distribution."""
        from virnucpro_core.benchmark import benchmark_sample

        if "bench" not in self._memo:
            if self.has_merged_inputs():
                raise InputError(
                    "the speed benchmark needs protein sequences, and merged feature inputs carry none",
                    fix="pass FASTA inputs (--viral/--host genomes) so the benchmark can embed test-set proteins",
                )
            from virnucpro_core.features import read_records

            proteins = {}
            for label in CLASSES:
                proteins.update(read_records(self.preprocessed(label).protein, "esm"))
            test_ids = [i for i in self.split().manifest.test.ids]
            records = [(i, proteins[i]) for i in test_ids]
            picked = benchmark_sample([len(s) for _, s in records], self.settings.bench_sample, self.settings.seed)
            self._memo["bench"] = [records[i] for i in picked]
        return self._memo["bench"]

    # ------------------------------------------------------------------ record

    def write_stage_log(self) -> None:
        atomic_write_text(self.paths.stage_log,
                          json.dumps([asdict(s) for s in self.stages], indent=2) + "\n")


def _split_count(split) -> str:
    manifest = split.manifest
    return f"{len(manifest.train.ids):,} training and {len(manifest.test.ids):,} test samples"


@dataclass(frozen=True)
class ExtractedModel:
    """A model that ran in other processes (torchrun), as the report sees it: its feature file's provenance.

    Has the attributes of :class:`~virnucpro_core.models.LoadedModel` the
    report reads: ``spec``, ``provenance`` and ``dim``.
    """

    spec: Any  # models.ModelSpec
    provenance: dict

    @classmethod
    def from_meta(cls, meta: dict) -> "ExtractedModel":
        from virnucpro_core.models import get_spec

        keys = ("weights", "size", "source", "revision", "seed", "dtype", "vocab", "vocab_sha256", "architecture")
        identity = {"identity": meta["identity"]} if meta.get("identity") else {}
        return cls(get_spec(meta["model"]), {**{key: meta.get(key) for key in keys}, **identity})

    @property
    def dim(self) -> int:
        return self.spec.dim_for(self.provenance["size"])


@dataclass
class TrainedModel:
    """The two checkpoints of one training stage, its history and its validation ids."""

    embedder: str
    final: Any  # classifier.LoadedCheckpoint
    best: Any
    history: Any  # training.TrainingHistory
    val_ids: list[str]
    train_path: Path
