"""What a validation run has built, typed: the stages' results the reports read, and the models they describe.

:class:`RunResults` holds each finished stage by what it is (filled by
:class:`~virnucpro_core.gate.validation.ValidationRun`, never built on
access); :class:`TrainedModel` is one training stage's checkpoints and
history; :class:`ExtractedModel` describes a model that ran in other
processes (torchrun) from its feature file, as a loaded model describes itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from virnucpro_core.compare.comparison import Comparison
from virnucpro_core.evaluate.metrics import Evaluation
from virnucpro_core.evaluate.predictions import Predictions
from virnucpro_core.gate.generalisation import Evidence
from virnucpro_core.models.classifier import LoadedCheckpoint
from virnucpro_core.models.specs import ModelSpec, get_spec
from virnucpro_core.paths import PreprocessPaths
from virnucpro_core.split.records import SplitResult
from virnucpro_core.train.results import TrainingHistory


@dataclass
class RunResults:
    """What a run has built in this session, each stage by what it is; a stage not built yet is absent.

    Reports read these attributes; nothing here is built on access (the
    :class:`ValidationRun` methods build).
    """

    preprocessed: dict[str, PreprocessPaths] = field(default_factory=dict)  # by class
    features: dict[tuple[str, str], Path] = field(default_factory=dict)  # by (model, class)
    merged: dict[tuple[str, str], Path] = field(default_factory=dict)  # by (embedder, class)
    splits: dict[str, SplitResult] = field(default_factory=dict)  # by embedder; "fast" is the split itself
    trained: dict[str, TrainedModel] = field(default_factory=dict)  # by embedder
    predictions: dict[str, Predictions] = field(default_factory=dict)  # by embedder, on the test set
    evaluations: dict[str, Evaluation] = field(default_factory=dict)  # by embedder
    comparison: Comparison | None = None
    evidence: Evidence | None = None
    proteins: dict[str, str] | None = None  # every sample's protein (FASTA inputs)
    bench_proteins: list[tuple[str, str]] | None = None  # the speed benchmark's sample
    seconds: dict[str, tuple[float, int]] = field(default_factory=dict)  # stage -> (seconds, items), for projections

    @property
    def split(self) -> SplitResult | None:
        """The test set: made once on the FastESM2 features (None until built)."""
        return self.splits.get("fast")


@dataclass(frozen=True)
class ExtractedModel:
    """A model that ran in other processes (torchrun), as the report sees it: its feature file's provenance.

    Has the attributes of :class:`~virnucpro_core.models.registry.LoadedModel` the
    report reads: ``spec``, ``provenance`` and ``dim``.
    """

    spec: ModelSpec
    provenance: dict

    @classmethod
    def from_meta(cls, meta: dict) -> "ExtractedModel":
        keys = ("weights", "size", "source", "revision", "seed", "dtype", "vocab", "vocab_sha256", "architecture",
                "path")
        identity = {"identity": meta["identity"]} if meta.get("identity") else {}
        return cls(get_spec(meta["model"]), {**{key: meta.get(key) for key in keys}, **identity})

    @property
    def dim(self) -> int:
        return self.spec.dim_for(self.provenance["size"])


@dataclass
class TrainedModel:
    """The two checkpoints of one training stage, its history and its validation ids."""

    embedder: str
    final: LoadedCheckpoint
    best: LoadedCheckpoint
    history: TrainingHistory
    val_ids: list[str]
    train_path: Path
