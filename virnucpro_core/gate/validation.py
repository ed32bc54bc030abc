"""A validation run: every stage from input genomes to the FastESM2-vs-ESM2-3B comparison, cached.

The acceptance suite's fixtures are one-liners over :class:`ValidationRun`;
each stage method calls the same library functions as the ``virnucpro``
command and caches its output under the artifacts directory, keyed by a hash
of its inputs and parameters (:class:`~virnucpro_core.gate.stages.StageCache`). A
rerun reuses what is there and says so; ``rebuild=True`` recomputes. A stage
is built once and always read back from its files (a split from its
manifest); each input is opened and hashed once per run
(:class:`~virnucpro_core.gate.stages.RunFiles`). What the run built in this session
is :attr:`ValidationRun.results` (:class:`RunResults`), each stage by what it
is; the reports read those attributes.

Stages: inputs → preprocess (per class) → extract (DNABERT-S, FastESM2,
ESM2 3B) → merge (per embedder and class) → split (once, applied to both
embedders) → train (per embedder) → predictions and evaluation → comparison.
The speed benchmark samples its proteins from the test set. Extraction runs
in this process, or as one process per GPU under torchrun when several GPUs
are visible (:meth:`ValidationRun.extraction_processes`): the same files.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.errors import InputError, VirNucProError
from virnucpro_core.paths import PreprocessPaths, ValidationPaths
from virnucpro_core.defaults import DNA_MODEL, EMBEDDERS
from virnucpro_core.gate.settings import CLASSES, MODEL_OPTIONS, Settings, _input_kind
from virnucpro_core.split.records import SplitResult
from virnucpro_core import threads
from virnucpro_core.gate import given
from virnucpro_core.gate.results import ExtractedModel, RunResults, TrainedModel
from virnucpro_core.gate.splits import split_count, split_stage
from virnucpro_core.gate.stages import RunFiles, StageCache, StageJob, StageRecord, stage_code
from virnucpro_core.compare.comparison import compare, uses_random_weights
from virnucpro_core.evaluate.metrics import Evaluation, evaluate
from virnucpro_core.extract.features import extract_to_file, extract_with_torchrun, extraction_code, read_records
from virnucpro_core.extract.forward import auto_path, prepare_path, use_compile_cache
from virnucpro_core.extract.merged import merge_features
from virnucpro_core.gate.benchmark import benchmark_sample
from virnucpro_core.gate.gates import decide_accuracy
from virnucpro_core.gate.generalisation import EvidenceInputs, EvidenceStages, build_evidence, no_baseline
from virnucpro_core.layouts.checkpoints import load_checkpoint
from virnucpro_core.layouts.features import OURS_MERGED, save_merged, save_view
from virnucpro_core.pickles import torch_load
from virnucpro_core.layouts.declarations import Declaration
from virnucpro_core.layouts.virnucpro import import_rows, load_features, plan_import
from virnucpro_core.models.precision import extraction_dtype
from virnucpro_core.models.hub_cache import model_directory
from virnucpro_core.models.registry import describe_identity, identity_records, load_model, resolve_device
from virnucpro_core.models.specs import get_spec
from virnucpro_core.predict.scoring import predict_features
from virnucpro_core.preprocess.sequences import preprocess, read_fasta, write_fasta
from virnucpro_core.train.results import TrainingConfig, TrainingHistory
from virnucpro_core.train.training import train_into

log = logging.getLogger("virnucpro.validation")

# The typed results live in gate/results.py; imported here, they stay importable from this module.
__all__ = ["ExtractedModel", "RunResults", "StageRecord", "TrainedModel", "ValidationRun"]


class ValidationRun:
    """The cached chain of stages for one :class:`Settings`; what it built is :attr:`results`."""

    def __init__(self, settings: Settings, *, progress: bool = False,
                 announce: Callable[[str], None] | None = None) -> None:
        """``progress``: tqdm bars on long loops; ``announce``: called with one line as each stage starts and ends."""
        self.settings = settings
        self.paths = ValidationPaths(settings.artifacts)
        self.progress = progress
        self.announce = announce or (lambda line: None)
        self.files = RunFiles()
        self.cache = StageCache(rebuild=settings.rebuild, announce=self.announce, files=self.files,
                                reuse_other_code=settings.reuse_other_code)
        self.results = RunResults()
        # (name, dtype) -> models.LoadedModel as loaded here; (name, dtype, path) -> the same, ready on that path
        self._models: dict[tuple, Any] = {}
        self._extracted: dict[tuple[str, str], ExtractedModel] = {}  # (name, dtype) of torchrun extractions
        self._import_plan: dict | None = None
        use_compile_cache(self.paths.inductor)  # compiled kernels kept beside the stages, unless the user set a place

    @property
    def stages(self) -> list[StageRecord]:
        """The stage log so far: every stage built or reused, in order."""
        return self.cache.records

    # ------------------------------------------------------------------ models

    def device(self) -> torch.device:
        return resolve_device(self.settings.device)

    def extraction_path(self, model: str) -> str:
        """The execution path ``model`` extracts with: ``--extraction-path`` for FastESM2, ``auto`` (eager) for
        ESM2 3B and DNABERT-S (:func:`virnucpro_core.extract.forward.auto_path`)."""
        return self.settings.extraction_path if model == EMBEDDERS["fast"] else "auto"

    def model(self, name: str, *, dtype: str = "float32", path: str | None = None):
        """Load (once) a model the way the settings say: pretrained from source, or a seeded stand-in; ready to
        run on ``path`` (default :meth:`extraction_path`; one loaded copy serves every path, weights shared)."""

        requested = path = path or self.extraction_path(name)
        if path == "auto":  # one copy per path that runs: auto and the path it resolves to are the same
            path = auto_path(name, self.device())[0]
        if (name, dtype, path) in self._models:
            return self._models[(name, dtype, path)]
        if (name, dtype) not in self._models:
            # A local directory or a hub id read from the cache; load_model tells a missing directory apart.
            self._models[(name, dtype)] = load_model(
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
        self._models[(name, dtype, path)] = prepare_path(self._models[(name, dtype)], requested)
        return self._models[(name, dtype, path)]

    def loaded_models(self) -> list:
        """The models used so far in this session (one per name and dtype), for the report.

        Models loaded here, and those that extracted features in other
        processes (:meth:`extraction_processes`), described by their feature files.
        """
        # A model loaded here describes itself, once per path it ran on.
        models = {**self._extracted, **{key: model for key, model in self._models.items() if len(key) == 3}}
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

    def preprocessed(self, label: str) -> PreprocessPaths:
        """Chunks and stop-free frames of one class (all its FASTA inputs, concatenated in order)."""

        if label in self.results.preprocessed:
            return self.results.preprocessed[label]
        inputs = self.settings.inputs(label)
        params = {"inputs": [self.files.sha256(p) for p in inputs], "chunk_size": self.settings.chunk_size}

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

        self.results.preprocessed[label] = self.cache.cached(
            f"preprocess[{label}]", params, lambda key: self.paths.preprocess(label, key), build, PreprocessPaths,
            frames, code=stage_code("preprocess"))
        return self.results.preprocessed[label]

    def extraction_dtype(self, model: str) -> str:
        """The dtype each model's accuracy features are extracted in: the precision policy on this run's device.

        :func:`virnucpro_core.models.precision.extraction_dtype` — FastESM2 in fp16 on
        CUDA and fp32 on the CPU, ESM2 3B and DNABERT-S in fp32 as VirNucPro ran
        them; the as-deployed timings use the same, so the accuracy gate
        validates the configuration whose speed is gated.
        """

        return extraction_dtype(model, self.device().type)

    def features(self, model: str, label: str) -> Path:
        """Per-model feature file of one class (``extract_to_file`` keeps its own resumable shards).

        Extracted in this process, or by ``virnucpro extract`` under torchrun
        when :meth:`extraction_processes` is more than 1 (one process per GPU):
        the same file either way, reused on a rerun either way.
        """

        if (model, label) in self.results.features:
            return self.results.features[(model, label)]
        if model == DNA_MODEL and self.has_baseline_features():
            self.results.features[(model, label)] = given.dna_features(self, label)
            return self.results.features[(model, label)]
        stage = f"extract[{model},{label}]"
        frames = self.preprocessed(label)
        fasta = frames.nucleotide if model == DNA_MODEL else frames.protein
        out = self.paths.features(model, label)
        before = out.stat().st_mtime_ns if out.exists() else None
        earlier = _code_of_features(out) if before is not None and not self.settings.rebuild else None
        if earlier is not None and not self.settings.reuse_other_code:
            self.announce(f"{stage}: {earlier}; extracting again ...")  # the file's code is not this code
        start = time.perf_counter()
        processes = self.extraction_processes()
        with self.cache.attempt(stage):  # a failed extraction (a full disk) is not run again by the next stage
            if processes > 1:
                self._extract_with_torchrun(stage, model, fasta, out, processes)
            else:
                loaded = self.model(model, dtype=self.extraction_dtype(model))
                self.announce(f"{stage}: {fasta.name} with {loaded.spec.display_name} "
                              f"({loaded.provenance['dtype']}, {loaded.device}, "
                              f"{loaded.provenance.get('path', 'eager')} path) ...")
                say = self.cache.progress(stage)  # in a pipe, where there is no bar: a line at most every 15 s
                extract_to_file(loaded, fasta, out, rebuild=self.settings.rebuild,
                                reuse_other_code=self.settings.reuse_other_code, progress=self.progress,
                                on_shard=lambda index, total: say(f"{index + 1}/{total} shards embedded"),
                                space_option="--artifacts")  # free space checked before anything is embedded
        reused = before is not None and out.stat().st_mtime_ns == before
        if reused and earlier is not None:
            self.cache.reused_from_other_code(stage, out, earlier)
        self.cache.record(stage, reused, start, "", detail=str(out))
        self.results.features[(model, label)] = out
        return out

    def _extract_with_torchrun(self, stage: str, model: str, fasta: Path, out: Path, processes: int) -> None:
        """``virnucpro extract`` as ``processes`` processes under torchrun, with this run's settings."""

        settings, dtype = self.settings, self.extraction_dtype(model)
        source = settings.model_sources.get(model) or None
        if settings.weights == "pretrained":  # missing weights: the suite's option in the message, before launching
            model_directory(model, source, MODEL_OPTIONS[model])
        self.announce(f"{stage}: {fasta.name} with {get_spec(model).display_name} ({dtype}, {processes} processes "
                      f"under torchrun, device {settings.device}) ...")
        extract_with_torchrun(processes, model, fasta, out, weights=settings.weights, size=settings.size,
                              dtype=dtype, device=settings.device, seed=settings.seed, model_path=source,
                              allow_other_model=settings.allow_other_model, rebuild=settings.rebuild,
                              reuse_other_code=settings.reuse_other_code, extraction_path=self.extraction_path(model),
                              on_line=lambda line: log.info("%s: %s", stage, line))
        meta = load_features(out).meta
        self._extracted[(model, meta["dtype"], meta.get("path", "eager"))] = ExtractedModel.from_meta(meta)
        ranks_stage = threads.extraction_stage(meta["size"])  # for the report: the ranks' threads, torchrun's choice
        threads.record_workers(ranks_stage, processes, threads.torchrun_choice(ranks_stage))

    def merged(self, embedder: str, label: str) -> Path:
        """Merged DNABERT-S ‖ protein features of one class for ``fast`` or ``baseline``."""

        if (embedder, label) in self.results.merged:
            return self.results.merged[(embedder, label)]
        if self.input_kind(label) == "merged":
            path = self._merged_inputs(embedder, label)
        elif embedder == "baseline" and self.has_baseline_features():
            path = given.baseline_view(self, label)
        else:
            dna, protein = self.features(DNA_MODEL, label), self.features(EMBEDDERS[embedder], label)
            params = {"dna": self.files.sha256(dna), "protein": self.files.sha256(protein), "label": label}

            def build(directory: Path) -> None:
                save_merged(merge_features(dna, protein, label), directory / "merged.pt")

            path = self.cache.cached(f"merged[{embedder},{label}]", params,
                                     lambda key: self.paths.merged(embedder, label, key), build,
                                     lambda d: d / "merged.pt", code=stage_code("merge"))
        self.results.merged[(embedder, label)] = path
        return path

    def has_merged_inputs(self) -> bool:
        return any(self.input_kind(label) == "merged" for label in CLASSES)

    def has_baseline_features(self) -> bool:
        """ESM2 3B merged features were given beside the FASTA inputs (``--baseline-features``: gate/given.py)."""
        return bool(self.settings.baseline_viral or self.settings.baseline_host)

    def not_extracted(self) -> dict[str, str]:
        """The models whose features this run's inputs already hold, and why none is extracted."""
        return given.not_extracted(self)

    def declarations(self) -> list:
        return [Declaration.parse(text, option="--declare-features") for text in self.settings.declarations]

    def random_weights_reason(self) -> str | None:
        """Why accuracy here cannot validate FastESM2, or ``None``: random weights, in the settings or in the inputs.

        Our merged files say which weights made them; VirNucPro-layout files
        are taken at the word of ``--declare-features``.
        """

        if not self.has_merged_inputs():
            return None if self.settings.weights == "pretrained" else "--weights random"
        paths = [path for label in CLASSES for path in self.settings.inputs(label)]
        made_by_standins = [path.name for path in paths
                            if self.files.layout(path) == OURS_MERGED and uses_random_weights(self.files.meta(path))]
        if any(self.files.layout(path) != OURS_MERGED for path in paths):
            made_by_standins += [f"--declare-features {d}" for d in self.declarations() if d.weights == "random"]
        if made_by_standins:
            return "merged features made with random-weight stand-ins: " + ", ".join(made_by_standins)
        return None

    def other_model_reason(self) -> str | None:
        """Why this run validated another model than the registry's (``--allow-other-model``), or ``None``.

        Read from the provenance of the models loaded so far (here or by torchrun processes) and, for
        merged inputs of ours, from the provenance their meta carries.
        """

        found = [(record, "") for model in self.loaded_models() for record in identity_records(model.provenance)]
        if self.has_merged_inputs():
            paths = [path for label in CLASSES for path in self.settings.inputs(label)]
            found += [(record, f" (merged input {path.name})") for path in paths
                      if self.files.layout(path) == OURS_MERGED for record in identity_records(self.files.meta(path))]
        notes = [f"another model than {record['expected']['display_name']} was validated (--allow-other-model): "
                 f"{describe_identity(record)}{where}" for record, where in found]
        return "; ".join(dict.fromkeys(notes)) or None

    def pipeline_dim(self, embedder: str) -> int:
        """Width the ``embedder`` pipeline feeds its MLP: DNABERT-S plus the protein model, at the run's size."""

        sizes = {DNA_MODEL: self.settings.size, EMBEDDERS[embedder]: self.settings.size}
        if self.input_kind("viral") == "merged":
            meta = self.files.meta(self.merged(embedder, "viral"))
            sizes = {DNA_MODEL: meta["dna"]["size"], EMBEDDERS[embedder]: meta["protein"]["size"]}
        return sum(get_spec(name).dim_for(size) for name, size in sizes.items())

    def import_plan(self) -> dict:
        """Which merged inputs hold which ``(protein model, class)`` (read once)."""

        if self._import_plan is None:
            inputs = {label: self.settings.inputs(label) for label in CLASSES}
            self._import_plan = plan_import(inputs, self.settings.size, load=self.files.loaded)
        return self._import_plan

    def _merged_inputs(self, embedder: str, label: str) -> Path:
        """One merged file of ``embedder`` and class ``label``: a single file of ours as given, else the inputs
        (ours joined, or VirNucPro's imported under their declared provenance) written once into the artifacts."""

        wanted = EMBEDDERS[embedder]
        paths = self.import_plan().get((wanted, label))
        if not paths:
            raise InputError(
                f"no {label} merged feature file from {wanted}",
                expected=f"merged files of each embedder for each class ({', '.join(EMBEDDERS.values())})",
                found=", ".join(str(p) for p in self.settings.inputs(label)),
                fix="pass both embedders' merged files (e.g. --data-dir for each data_merge tree), or FASTA inputs "
                "so the suite extracts them",
            )
        if len(paths) == 1 and self.files.layout(paths[0]) == OURS_MERGED:
            return paths[0]
        groups = {Path(p): g for p, g in self.settings.groups.items()}
        params = {"inputs": [self.files.sha256(p) for p in paths], "label": label, "size": self.settings.size,
                  "declarations": sorted(self.settings.declarations),
                  "groups": [groups.get(p) for p in paths]}

        def build(directory: Path) -> None:
            rows = import_rows(paths, label, self.declarations(), size=self.settings.size, groups=groups,
                               option="--declare-features", load=self.files.loaded)
            save_view(rows, directory / "merged.pt")  # where each row is; the rows stay in the inputs

        return self.cache.cached(f"import[{embedder},{label}]", params,
                                 lambda key: self.paths.imported(embedder, label, key), build,
                                 lambda d: d / "merged.pt", lambda p: f"{len(paths)} file(s)",
                                 code=stage_code("import"))

    def split(self) -> SplitResult:
        """The test set, made once on the FastESM2 features; same ids for both embedders.

        Built into its stage directory on the first run, then always read back
        from its manifest (:func:`~virnucpro_core.split.make.load_split`), never recomputed.
        """
        if "fast" in self.results.splits:
            return self.results.splits["fast"]
        self.results.splits["fast"] = split_stage(
            self.cache, self.files, "split[fast]", lambda key: self.paths.split("fast", key),
            self.merged("fast", "viral"), self.merged("fast", "host"), seed=self.settings.seed, count=split_count)
        return self.results.splits["fast"]

    def split_for(self, embedder: str) -> SplitResult:
        """The split applied to ``embedder``'s features (the FastESM2 split itself for ``fast``)."""
        source = self.split()
        if embedder in self.results.splits:
            return self.results.splits[embedder]
        self.results.splits[embedder] = split_stage(
            self.cache, self.files, f"split[{embedder}]", lambda key: self.paths.split(embedder, key),
            self.merged(embedder, "viral"), self.merged(embedder, "host"), source=source.manifest, count=split_count)
        return self.results.splits[embedder]

    def proteins(self) -> dict[str, str] | None:
        """The protein of every sample, read once (FASTA inputs; None for merged features, which carry none)."""

        if self.has_merged_inputs():
            return None
        if self.results.proteins is None:
            proteins: dict[str, str] = {}
            for label in CLASSES:
                proteins.update(read_records(self.preprocessed(label).protein, "esm"))
            self.results.proteins = proteins
        return self.results.proteins

    # ------------------------------------------------------------------ training and evaluation

    def training_config(self):
        return TrainingConfig(max_epochs=self.settings.max_epochs, patience=self.settings.patience,
                              seed=self.settings.seed, device=str(self.device()))

    def gate_embedders(self) -> list[str]:
        """The embedders whose MLPs the gate trains (FastESM2 only when the baseline comes from its metrics)."""
        return ["fast"] if self.settings.baseline_from_metrics else list(EMBEDDERS)

    def trained(self, embedder: str) -> TrainedModel:
        """Train the MLP for one embedder (VirNucPro's hyperparameters); keeps final and best weights.

        The first call trains every gate MLP not built yet at once, in worker processes where the cores
        allow (:meth:`train_at_once`); each is then loaded as it is asked for.
        """
        if embedder not in self.results.trained:
            jobs = {}
            for other in self.gate_embedders():
                if other in self.results.trained:
                    continue
                try:
                    jobs[other] = self._gate_training_job(other)
                except VirNucProError:  # that split fails: reported when its own stage is asked for
                    continue
            self.train_at_once(list(jobs.values()))
            job = jobs.get(embedder) or self._gate_training_job(embedder)  # raises its split's error here
            self.results.trained[embedder] = self.trained_by(job, embedder, self.split_for(embedder))
        return self.results.trained[embedder]

    def _gate_training_job(self, embedder: str) -> StageJob:
        return self.training_job(self.split_for(embedder), f"train[{embedder}]",
                                 lambda key: self.paths.train(embedder, key))

    def training_job(self, split: SplitResult, stage: str, directory_of: Callable[[str], Path]) -> StageJob:
        """The stage that trains an MLP on ``split``'s training side with the run's hyperparameters."""
        config = self.training_config()
        params = {"train": self.files.sha256(split.paths.train), "config": config.to_dict()}
        build = functools.partial(train_into, split.paths.train, config, self.progress)
        return StageJob(stage, params, directory_of, build, stage_code("train"))

    def train_at_once(self, jobs: list[StageJob]) -> None:
        """Build these training stages at once where the cores allow (one intra-op thread each by default)."""
        if self.device().type == "cpu":  # on a GPU they take turns: one device, and its own memory per process
            workers = self.cache.prebuild(jobs, threads.parallel_processes("train", len(jobs)))
            if workers:
                threads.record_workers("train", workers)

    def trained_on(self, embedder: str, split: SplitResult, stage: str,
                   directory_of: Callable[[str], Path]) -> TrainedModel:
        """Train ``embedder``'s MLP on ``split``'s training side with the run's hyperparameters (any split)."""
        return self.trained_by(self.training_job(split, stage, directory_of), embedder, split)

    def trained_by(self, job: StageJob, embedder: str, split: SplitResult) -> TrainedModel:
        """The MLP that ``job`` (:meth:`training_job`) trains, built unless finished, loaded from its files."""

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

        return self.cache.cached_job(job, load, epochs)

    def predictions(self, embedder: str):
        """The final MLP's predictions on the test set (the only time the test set is read).

        Their ``meta`` carries the checkpoint and both embedders' provenance, so
        the comparison knows whether random-weight stand-ins made the features.
        """

        if embedder not in self.results.predictions:
            trained, test = self.trained(embedder).final, self.split_for(embedder).paths.test
            start = time.perf_counter()
            predictions = predict_features(trained, test)
            self.results.seconds[f"predictions[{embedder}]"] = (time.perf_counter() - start, len(predictions.ids))
            self.results.predictions[embedder] = predictions
        return self.results.predictions[embedder]

    def evaluation(self, embedder: str):
        """Metrics of one embedder's MLP on the test set; the baseline's come from ``--baseline-metrics`` when given."""

        if embedder not in self.results.evaluations:
            if embedder == "baseline" and self.settings.baseline_from_metrics:
                self.results.evaluations[embedder] = Evaluation.load(self.settings.baseline_metrics)
            else:
                self.results.evaluations[embedder] = evaluate(self.predictions(embedder), seed=self.settings.seed)
        return self.results.evaluations[embedder]

    def comparison(self):
        """FastESM2 against the ESM2 3B baseline on the identical test samples, and the accuracy gate's decision."""

        if self.results.comparison is None:
            if self.settings.baseline_from_metrics:
                baseline, baseline_metrics, baseline_evaluation = None, self.evaluation("baseline"), None
            else:
                baseline, baseline_metrics = self.predictions("baseline"), None
                baseline_evaluation = self.evaluation("baseline")
            self.results.comparison = decide_accuracy(compare(
                self.predictions("fast"),
                baseline,
                baseline_metrics=baseline_metrics,
                max_accuracy_drop=self.settings.max_accuracy_drop,
                seed=self.settings.seed,
                fast_evaluation=self.evaluation("fast"),
                baseline_evaluation=baseline_evaluation,
                baseline_source=str(self.settings.baseline_metrics) if baseline_metrics is not None else None,
            ))
        return self.results.comparison

    def evidence(self):
        """Generalisation splits, per-group accuracy, calibration and verdict levels: evidence, never gated."""

        if self.results.evidence is None:
            if self.settings.baseline_from_metrics:
                self.results.evidence = no_baseline()
            else:
                inputs = EvidenceInputs(
                    settings=self.settings,
                    comparison=self.comparison(),
                    predictions={embedder: self.predictions(embedder) for embedder in EMBEDDERS},
                    locked=self.split(),
                    merged={embedder: (self.merged(embedder, "viral"), self.merged(embedder, "host"))
                            for embedder in EMBEDDERS},
                    protein_fastas=None if self.has_merged_inputs() else
                    [self.preprocessed(label).protein for label in CLASSES],
                    proteins=self.proteins(),
                )
                stages = EvidenceStages(cache=self.cache, directory=self.paths.evidence, train=self.trained_on,
                                        training_job=self.training_job, train_at_once=self.train_at_once)
                self.results.evidence = build_evidence(inputs, stages)
        return self.results.evidence

    # ------------------------------------------------------------------ speed

    def benchmark_proteins(self) -> list[tuple[str, str]]:
        """A seeded sample of test-set proteins that follows the test set's length distribution."""

        if self.results.bench_proteins is None:
            if self.has_merged_inputs():
                raise InputError(
                    "the speed benchmark needs protein sequences, and merged feature inputs carry none",
                    fix="pass FASTA inputs (--viral/--host genomes) so the benchmark can embed test-set proteins",
                )
            proteins = self.proteins()
            records = [(i, proteins[i]) for i in self.split().manifest.test.ids]
            picked = benchmark_sample([len(s) for _, s in records], self.settings.bench_sample, self.settings.seed)
            self.results.bench_proteins = [records[i] for i in picked]
        return self.results.bench_proteins

    def benchmark_dna(self) -> list[tuple[str, str]]:
        """The DNA of the benchmark's proteins (each sample's nucleotide frame), in the same order: what DNABERT-S
        embeds for those samples, timed for the projection of a whole run."""
        wanted = {rid for rid, _ in self.benchmark_proteins()}
        found: dict[str, str] = {}
        for label in CLASSES:
            found.update((rid, seq) for rid, seq in read_records(self.preprocessed(label).nucleotide, "dnabert")
                         if rid in wanted)
        return [(rid, found[rid]) for rid, _ in self.benchmark_proteins()]

    # ------------------------------------------------------------------ record

    def write_stage_log(self) -> None:
        self.cache.write_log(self.paths.stage_log)


def _code_of_features(path: Path) -> str | None:
    """How the code that made the feature file ``path`` differs from this extraction's (None: the same, or a file
    that cannot be read, which extraction reports itself)."""
    try:
        obj = torch_load(path, "feature", mmap=True)
    except VirNucProError:
        return None
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return extraction_code().change_from(meta.get("code")) if isinstance(meta, dict) else None

