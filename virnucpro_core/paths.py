"""Where every artifact lives: one small dataclass per stage, one property per file.

Fixtures, commands and reports ask these objects for paths; nothing else
joins artifact paths by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PreprocessPaths:
    """Outputs of ``virnucpro preprocess``."""

    root: Path

    @property
    def chunks(self) -> Path:
        """Every chunk of every record (``{record}_chunk_{k}``)."""
        return self.root / "chunks.fa"

    @property
    def nucleotide(self) -> Path:
        """Nucleotide sequence of each selected frame (DNABERT-S input)."""
        return self.root / "nucleotide.fa"

    @property
    def protein(self) -> Path:
        """Protein of each selected frame (ESM input); same ids as ``nucleotide``."""
        return self.root / "protein.faa"

    @property
    def summary(self) -> Path:
        """Parameters, input hash and counts of the run."""
        return self.root / "preprocess.json"


@dataclass(frozen=True)
class ValidationPaths:
    """Cached stage outputs of one validation run; ``key`` hashes a stage's inputs and parameters."""

    root: Path

    def preprocess(self, label: str, key: str) -> Path:
        return self.root / "preprocess" / f"{label}-{key}"

    def features(self, model: str, label: str) -> Path:
        return self.root / "features" / f"{model}-{label}.pt"

    def merged(self, embedder: str, label: str, key: str) -> Path:
        return self.root / "merged" / f"{embedder}-{label}-{key}"

    def imported(self, embedder: str, label: str, key: str) -> Path:
        """Merged inputs of one embedder and class joined into one file (VirNucPro's files converted)."""
        return self.root / "imported" / f"{embedder}-{label}-{key}"

    def split(self, embedder: str, key: str) -> Path:
        return self.root / "split" / f"{embedder}-{key}"

    def train(self, embedder: str, key: str) -> Path:
        return self.root / "train" / f"{embedder}-{key}"

    def evidence(self, what: str, key: str) -> Path:
        """Stages of the evidence beside the gate: extra splits, their MLPs, protein clusters, identity searches."""
        return self.root / "evidence" / f"{what}-{key}"

    @property
    def stage_log(self) -> Path:
        return self.root / "stages.json"

    @property
    def inductor(self) -> Path:
        """torch.compile's kernel cache (``TORCHINDUCTOR_CACHE_DIR``): compiled once, reused by later runs."""
        return self.root / "inductor"


@dataclass(frozen=True)
class ReportPaths:
    """The reports of one acceptance run, side by side."""

    root: Path

    @property
    def html(self) -> Path:
        return self.root / "acceptance.html"

    @property
    def markdown(self) -> Path:
        return self.root / "acceptance.md"

    @property
    def json(self) -> Path:
        return self.root / "acceptance.json"

    @property
    def comparison_markdown(self) -> Path:
        """The detailed accuracy comparison (written only when accuracy was compared)."""
        return self.root / "comparison.md"

    @property
    def benchmark_json(self) -> Path:
        """pytest-benchmark's raw timings."""
        return self.root / "benchmark.json"

    @property
    def html_stylesheet(self) -> Path:
        """pytest-html's stylesheet beside a report that is not self-contained (older runs wrote one)."""
        return self.root / "assets" / "style.css"

    def owned(self) -> list[Path]:
        """Every file a run writes here: removed before a run, so none is left from an earlier one."""
        return [self.html, self.markdown, self.json, self.comparison_markdown, self.benchmark_json,
                self.html_stylesheet]


@dataclass(frozen=True)
class SplitPaths:
    """Outputs of ``virnucpro split`` in one directory."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def train(self) -> Path:
        """Training samples of both classes: a view (ids, labels, lengths and where each row is in the inputs)."""
        return self.root / "train.pt"

    @property
    def test(self) -> Path:
        """Held-out test samples of both classes, a view like :attr:`train`; read once, at the end."""
        return self.root / "test.pt"

    @property
    def manifest(self) -> Path:
        """Every train and test id with label and source, parameters and input hashes."""
        return self.root / "manifest.json"

    @property
    def distribution(self) -> Path:
        """:class:`SplitSummary`: class counts, length distributions, leakage."""
        return self.root / "distribution.json"


@dataclass(frozen=True)
class ShardPaths:
    """Where the shards of one extraction live: ``<out>.shards/<key>/``."""

    out: Path
    key: str

    @property
    def parent(self) -> Path:
        return self.out.with_name(self.out.name + ".shards")

    @property
    def root(self) -> Path:
        return self.parent / self.key[:16]

    @property
    def manifest(self) -> Path:
        """Parameters, input hash and shard count of the run."""
        return self.root / "manifest.json"

    def shard(self, index: int) -> Path:
        return self.root / f"shard_{index:05d}.pt"


@dataclass(frozen=True)
class TrainingPaths:
    """Outputs of ``virnucpro train``: the checkpoint and its history beside it."""

    checkpoint: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))

    @property
    def history(self) -> Path:
        """Per-epoch losses (``model.pt`` → ``model.history.json``), for the loss-curve figure."""
        return self.checkpoint.with_name(self.checkpoint.stem + ".history.json")


# File names under a comparison report's figures directory (virnucpro_core.compare.figures draws them).
FIGURE_FILES = {
    "confusion": "confusion_matrices.png",
    "roc_pr": "roc_pr_curves.png",
    "loss": "loss_curves.png",
    "lengths": "length_histogram.png",
}


@dataclass(frozen=True)
class CompareReportPaths:
    """Outputs of ``virnucpro compare`` under one directory."""

    root: Path

    @property
    def markdown(self) -> Path:
        return self.root / "report.md"

    @property
    def json(self) -> Path:
        return self.root / "report.json"

    @property
    def comparison(self) -> Path:
        """:class:`~virnucpro_core.compare.comparison.Comparison` alone (``Comparison.load``)."""
        return self.root / "comparison.json"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def figure(self, key: str) -> Path:
        return self.figures / FIGURE_FILES[key]

    def evaluation(self, which: str) -> Path:
        """One model's :class:`~virnucpro_core.evaluate.metrics.Evaluation` (``which``: fast or baseline); the
        baseline's can be passed later as ``--baseline-metrics``."""
        return self.root / f"evaluation_{which}.json"

    def written(self) -> list[Path]:
        """Everything ``virnucpro compare`` writes here (the figures folder as one)."""
        return [self.markdown, self.json, self.comparison, self.evaluation("fast"), self.evaluation("baseline"),
                self.figures]


# The original VirNucPro's result files (virnucpro_core.predict.tables writes them in its layout).
ORIGINAL_RESULTS = "prediction_results.txt"
ORIGINAL_HIGHEST = "prediction_results_highestscore.csv"


@dataclass(frozen=True)
class PredictionPaths:
    """Outputs of ``virnucpro predict``, one property per file."""

    root: Path

    @property
    def frames(self) -> Path:
        """One row per frame: ids, viral and host score, call."""
        return self.root / "frames.tsv"

    @property
    def chunks(self) -> Path:
        """One row per chunk: frame count, highest scores, verdict."""
        return self.root / "chunks.tsv"

    @property
    def summary(self) -> Path:
        """Parameters, model provenance, counts and warnings."""
        return self.root / "summary.json"

    @property
    def original_results(self) -> Path:
        """The original VirNucPro's per-frame table (``Sequence_ID Prediction score1 score2``)."""
        return self.root / ORIGINAL_RESULTS

    @property
    def original_highest(self) -> Path:
        """The original VirNucPro's per-chunk verdicts (``Modified_ID Is_Virus``)."""
        return self.root / ORIGINAL_HIGHEST

    @property
    def preprocess(self) -> Path:
        """Directory of ``virnucpro preprocess``'s outputs for the input."""
        return self.root / "preprocess"

    @property
    def dna_features(self) -> Path:
        return self.root / "features" / "dna.pt"

    @property
    def protein_features(self) -> Path:
        return self.root / "features" / "protein.pt"
