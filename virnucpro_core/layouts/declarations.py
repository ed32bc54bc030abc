"""What the user declares about foreign feature files: which protein model made them, in which dtype, with which weights.

VirNucPro's feature files (:mod:`virnucpro_core.layouts.virnucpro`) carry no
provenance. A :class:`Declaration` (``--declare`` of ``virnucpro import``,
``--declare-features`` of the suite) states it; imported sets record it as
*declared*, never as verified. A merged file's width names its protein model
(:func:`protein_model_of_width`), and :func:`declaration_for` finds the
declaration for that model, or says which one is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from virnucpro_core.errors import InputError
from virnucpro_core.models.registry import WEIGHTS
from virnucpro_core.models.specs import DTYPES, SPECS, get_spec, merged_widths


@dataclass(frozen=True)
class Declaration:
    """What the user states about foreign features: which protein model made them, in which dtype, with which
    weights. Recorded as declared, never as verified.

    The DNA half is DNABERT-S in every VirNucPro layout.
    """

    model: str
    dtype: str
    weights: str = "pretrained"

    OPTION_FORMAT = "MODEL:DTYPE[:WEIGHTS], e.g. esm2_3b:float32 or fastesm2_650:float16"

    @classmethod
    def parse(cls, text: str, *, option: str = "--declare") -> Declaration:
        parts = text.split(":")
        models = sorted(n for n, s in SPECS.items() if s.family == "esm")
        problems = []
        if len(parts) not in (2, 3):
            problems.append("not two or three ':'-separated parts")
        else:
            if parts[0] not in models:
                problems.append(f"model {parts[0]!r} is not one of {', '.join(models)}")
            if parts[1] not in DTYPES:
                problems.append(f"dtype {parts[1]!r} is not one of {', '.join(DTYPES)}")
            if len(parts) == 3 and parts[2] not in WEIGHTS:
                problems.append(f"weights {parts[2]!r} is not one of {', '.join(WEIGHTS)}")
        if problems:
            raise InputError(f"{option} {text!r} cannot be read", expected=cls.OPTION_FORMAT,
                             found="; ".join(problems), fix=f"e.g. {option} esm2_3b:float32")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.model}:{self.dtype}:{self.weights}"

    def entry(self, model: str, size: str, dtype: str | None, origin: str) -> dict[str, Any]:
        """A provenance entry in the shape of our feature meta, marked as declared."""
        spec = get_spec(model)
        return {
            "model": model,
            "display_name": spec.display_name,
            "weights": self.weights,
            "size": size,
            "dtype": dtype,
            "dim": spec.dim_for(size),
            "pooling": spec.pooling,
            "provenance": "declared",
            "declared_by": str(self),
            "origin": origin,
        }


# How each protein model's features were usually made, for the hint in a missing-declaration error.
_USUAL_DTYPE = {"esm2_3b": ("float32", "the original VirNucPro"),
                "fastesm2_650": ("float16", "the FastESM2 fork (fp16 extraction)")}


def declaration_for(declarations: Sequence[Declaration], protein_model: str, what: str,
                    option: str = "--declare") -> Declaration:
    """The declaration naming ``protein_model``; a clear error when there is none (or more than one)."""
    matching = [d for d in declarations if d.model == protein_model]
    if len(matching) == 1:
        return matching[0]
    spec = get_spec(protein_model)
    if not matching:
        raise InputError(
            f"{what} are {spec.display_name} features in VirNucPro's layout, which does not say how they were made",
            expected=f"{option} {protein_model}:DTYPE[:WEIGHTS] stating the precision (and weights: pretrained or "
            "random) they were extracted with",
            found="declarations: " + (", ".join(map(str, declarations)) or "none"),
            fix=f"add {option} {protein_model}:{_USUAL_DTYPE[protein_model][0]} if they came from "
            f"{_USUAL_DTYPE[protein_model][1]}, or the dtype you extracted them in; it is reported as declared",
        )
    raise InputError(f"{option} names {protein_model} {len(matching)} times",
                     found=", ".join(map(str, matching)), fix="give one declaration per protein model")


def protein_model_of_width(width: int, size: str) -> str | None:
    """The protein model whose width plus DNABERT-S's (at ``size``) is ``width``; None when none fits."""
    return merged_widths(size).get(width)


def widths_expected(size: str) -> str:
    """The merged widths a file may have at ``size``, each with its two halves, for messages."""
    dna = get_spec("dnabert_s").dim_for(size)
    return ", ".join(f"{dna + s.dim_for(size)} (DNABERT-S {dna} + {s.display_name} {s.dim_for(size)})"
                     for s in SPECS.values() if s.family == "esm")
