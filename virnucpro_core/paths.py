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
