"""Features a validation run is given rather than extracts: the user's ESM2 3B merged files (``--baseline-features``).

A user who runs VirNucPro has its ESM2 3B merged features (``data/data_merge``,
DNABERT-S ‖ ESM2 3B, 3328-d) for the genomes they now give as FASTA. Extracted
again, ESM2 3B alone takes ~9 GPU-hours per 2 million samples in fp32. With
``--baseline-features`` the run extracts only what it must:

* the baseline's merged features are the user's rows for the samples of the
  FASTA inputs (:func:`baseline_view`: a view, nothing copied; every sample
  must be there, by id);
* FastESM2's merged features take their DNABERT-S block from the same rows
  (:func:`dna_features`, :mod:`virnucpro_core.extract.reuse`): only FastESM2
  is extracted, and the two feature sets differ only in the protein model.

The functions take the :class:`~virnucpro_core.gate.validation.ValidationRun`
and cache their output as its stages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from virnucpro_core.errors import InputError
from virnucpro_core.extract.features import read_records
from virnucpro_core.extract.reuse import dna_columns, missing_ids
from virnucpro_core.files import sha256_text
from virnucpro_core.defaults import DNA_MODEL, EMBEDDERS
from virnucpro_core.gate.stages import stage_code
from virnucpro_core.layouts.features import open_rows, save_features, save_view
from virnucpro_core.layouts.virnucpro import import_rows

FEATURE_SETS_NOTE = ("the FastESM2 and ESM2 3B feature sets differ only in the protein model: both hold the same "
                     "DNABERT-S vectors, the first 768 columns of the ESM2 3B merged features given with "
                     "--baseline-features (VirNucPro's merged layout: DNABERT-S first), so DNABERT-S was not extracted")


def not_extracted(run) -> dict[str, str]:
    """The models whose features ``run``'s inputs already hold, and why none is extracted."""
    if run.has_merged_inputs():
        return {name: "not needed: the merged feature inputs hold them" for name in (DNA_MODEL, *EMBEDDERS.values())}
    out = {}
    if run.settings.baseline_from_metrics:
        out[EMBEDDERS["baseline"]] = "not needed: the baseline's metrics were given (--baseline-metrics)"
    if run.has_baseline_features():
        out[EMBEDDERS["baseline"]] = "not needed: ESM2 3B's merged features were given (--baseline-features)"
        out[DNA_MODEL] = "not needed: the DNABERT-S columns of --baseline-features serve both feature sets"
    return out


def feature_sets_note(run) -> str | None:
    """What the two feature sets share, when both take their DNABERT-S block from the user's files (else None)."""
    given = getattr(run, "has_baseline_features", None)  # a report may describe a run that never got this far
    return FEATURE_SETS_NOTE if given is not None and given() else None


def _given(run, label: str) -> tuple[Path, ...]:
    return run.settings.baseline_viral if label == "viral" else run.settings.baseline_host


def _protein_ids(run, label: str) -> list[str]:
    return [rid for rid, _ in read_records(run.preprocessed(label).protein, "esm")]


def _params(run, label: str) -> dict[str, Any]:
    return {"inputs": [run.files.sha256(p) for p in _given(run, label)], "label": label, "size": run.settings.size,
            "declarations": sorted(run.settings.declarations),
            "ids": sha256_text("\n".join(_protein_ids(run, label)))}


def baseline_view(run, label: str) -> Path:
    """ESM2 3B's merged features of ``label``: the given files' rows for the samples of the FASTA inputs, in
    protein.faa's order (a view; every sample must be there).

    Raises:
        InputError: a sample of the FASTA inputs the given files lack (by id).
    """
    paths = _given(run, label)

    def build(directory: Path) -> None:
        ids = _protein_ids(run, label)
        rows = import_rows(paths, label, run.declarations(), size=run.settings.size, option="--declare-features",
                           load=run.files.loaded)
        absent = missing_ids(rows, ids)
        if absent:
            raise InputError(
                f"--baseline-features: the {label} files lack {len(absent):,} of the {len(ids):,} samples of the "
                "FASTA inputs", expected="ESM2 3B merged features of the same genomes, by sample id",
                found=", ".join(absent[:5]) + (" ..." if len(absent) > 5 else ""),
                fix="give the data_merge tree made from these genomes, or drop --baseline-features to extract ESM2 3B "
                "and DNABERT-S here")
        save_view(rows.take(rows.positions(ids)), directory / "merged.pt")

    return run.cache.cached(f"import[baseline,{label}]", _params(run, label),
                            lambda key: run.paths.imported("baseline", label, key), build,
                            lambda d: d / "merged.pt", lambda p: f"{len(paths)} file(s)", code=stage_code("import"))


def dna_features(run, label: str) -> Path:
    """DNABERT-S features of ``label``: the first columns of the given ESM2 3B merged features, not extracted."""

    def build(directory: Path) -> None:
        nucleotide = read_records(run.preprocessed(label).nucleotide, "dnabert")
        given = _given(run, label)
        names = ", ".join(p.name for p in given[:3]) + (f" and {len(given) - 3} more" if len(given) > 3 else "")
        embeddings = dna_columns(open_rows(baseline_view(run, label)), [rid for rid, _ in nucleotide],
                                 [len(seq) for _, seq in nucleotide], source=f"--baseline-features {names}")
        save_features(embeddings, directory / "features.pt")

    return run.cache.cached(f"reuse[{DNA_MODEL},{label}]", _params(run, label),
                            lambda key: run.paths.imported("dna", label, key), build, lambda d: d / "features.pt",
                            code=stage_code("reuse"))

