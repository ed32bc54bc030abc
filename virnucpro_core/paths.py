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
