"""Parity: does our loader give the vectors FastESM2's own code gives, on the real snapshot?

We run FastESM2 on transformers' ``EsmModel`` with the snapshot's weights and
config.json (:mod:`virnucpro_core.models.esm`); the hub repository ships its own code
(``modeling_fastesm.py``, named by ``auto_map`` in config.json). The CPU
tests pin our loader to a reference we wrote from the public description;
:func:`fastesm_parity` checks the real thing where it can: it loads the
snapshot our way and through ``transformers.AutoModel.from_pretrained(dir,
trust_remote_code=True)``, embeds the same proteins with the same token ids,
batches and pooling (VirNucPro's mean over residues ``1..min(L, 1024)``), and
compares the pooled vectors protein by protein.

The result is one of:

* ``passed`` — every protein's cosine similarity is at least
  :data:`MIN_COSINE` (0.999), the largest absolute difference of any component
  is at most :data:`MAX_RELATIVE_DIFF` (1e-3) of the largest component, and
  every vector is finite;
* ``failed`` — one of these does not hold: the two disagree, and our
  features would not be the model's;
* ``not run`` — the model's own code cannot run here (no ``modeling_fastesm.py``,
  no ``auto_map``, an import error, a download it attempts offline), or is not
  run because the directory is not FastESM2_650 (a stand-in's size): the
  reason says which, and names a missing module with the command that
  installs it. Never a pass: in the full profile with pretrained weights a
  parity check that did not run leaves the verdict INCOMPLETE.

The snapshot's code is foreign code: it runs only after our own loader has
checked the directory — its identity (FastESM2_650's model type, 33 layers ×
1280, 20 heads, 33 tokens), config.json against the weights' shapes, the
weights themselves — and then with the SHA-256 of the file that runs recorded
in the result (``code_sha256``, beside the status in the report). A
directory that is anything else is never imported (issue 38: a 2 × 64 stand-in
was enough to run it).

``tools/fastesm_parity.py`` is the command-line entry point;
``acceptance/test_parity.py`` runs it in the acceptance suite when
``--fast-model`` is a real snapshot.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from virnucpro_core.extract.embeddings import (
    DEFAULT_TOKS_PER_BATCH,
    collate,
    extract_embeddings,
    pad_id,
    plan_batches,
    pool,
    pooling_weights,
    tokenize,
)
from virnucpro_core.files import atomic_write_text, sha256_file
from virnucpro_core.models.registry import load_model, resolve_dtype

log = logging.getLogger(__name__)

MIN_COSINE = 0.999
# Cosine alone is blind to some code differences: FastPLMs' older embedding layer (no token-dropout
# rescaling) gives cosine 0.99958 on tiny random weights while components move by 7 % of the largest
# (tests/extract/test_parity.py). Two fp32 implementations of one network agree to ~1e-6 of it.
MAX_RELATIVE_DIFF = 1e-3
PASSED, FAILED, NOT_RUN = "passed", "failed", "not run"
MODEL = "fastesm2_650"
# The third-party modules FastESM2's own code (FastPLMs' esm2/modeling_fastesm.py, the file the hub snapshot
# ships) imports at module level, read off every revision of that file in Synthyra/FastPLMs' git history:
# torch, transformers and einops (`from einops import rearrange`) in all of them, tqdm (`from tqdm.auto import
# tqdm`) and networkx (`import networkx as nx`) in many, numpy. transformers refuses to run the file if one is
# missing, so each is a dependency in pyproject.toml: the parity check must run after a plain `make install`.
# The hub snapshot's file is the composite FastPLMs' update_HF.py built (last in its history at 8bca3d7, 2026-06-25;
# FastESM2_650 is not in the newer artifact builder's models.toml): FastPLMs' shared modules (entrypoint_setup,
# embedding_mixin, attention, test_time_training) inlined above the model code, and its
# `try: from fastplms... except ImportError` guard stripped, so it does not import the `fastplms` package itself.
REMOTE_CODE_IMPORTS = ("torch", "transformers", "einops", "tqdm", "networkx", "numpy")
# The newest FastPLMs source (src/fastplms/models/esm2/modeling_fastesm.py) imports its own package at module level
# (`from fastplms.models._esm_rotary import RotaryEmbedding`). It is not on PyPI and the repository has no
# pyproject.toml: its README puts the clone's src/ on PYTHONPATH (older layouts kept fastplms/ at the root).
FASTPLMS = "fastplms"
FASTPLMS_INSTALL = ("git clone https://github.com/Synthyra/FastPLMs.git /opt/FastPLMs && "
                    "export PYTHONPATH=/opt/FastPLMs/src:/opt/FastPLMs:$PYTHONPATH")
_AMINO = "ACDEFGHIKLMNPQRSTVWY"
# The sizes (virnucpro_core.models.specs) whose directories may run their own code: the real model's only. The
# tests widen it to "tiny" for their tiny reference snapshots (tests/parity_standin_plugin.py): they ask for it.
CODE_RUNS_FOR_SIZES: tuple[str, ...] = ("full",)


@dataclass
class ParityResult:
    """Our FastESM2 vectors against the model's own code's, for one snapshot.

    Attributes:
        status: ``passed``, ``failed`` or ``not run``.
        reason: one sentence: why it passed or failed (the measured values), or why it did not run.
        model_dir: the snapshot compared.
        device: where both ran.
        dtype: the compute dtype of both.
        threshold: the smallest per-protein cosine that passes.
        proteins: how many proteins were compared.
        relative_limit: the largest ``max_abs_diff`` / ``max_abs_value`` that passes (None: not checked).
        min_cosine: the smallest per-protein cosine similarity (None when not run).
        max_abs_diff: the largest absolute difference of any vector component (None when not run).
        max_abs_value: the largest absolute component of the model's own vectors (the scale of the difference).
        worst: id of the protein with the smallest cosine.
        cosines: per-protein cosine similarity, by id.
        remote_code: the class ``auto_map`` named and transformers loaded (``module.Class``).
        unloaded_weights: weights the model's own code did not find in the checkpoint (random in its model).
        architecture: our configuration in effect (provenance ``architecture``).
        revision: the snapshot's commit, when it is a cache snapshot.
        environment: python, torch and transformers versions.
        code_file: the file of the model's own code that ran (``auto_map``'s module), when it ran.
        code_sha256: its SHA-256, taken before it ran.
    """

    status: str
    reason: str
    model_dir: str
    device: str
    dtype: str
    threshold: float = MIN_COSINE
    relative_limit: float | None = MAX_RELATIVE_DIFF
    proteins: int = 0
    min_cosine: float | None = None
    max_abs_diff: float | None = None
    max_abs_value: float | None = None
    worst: str | None = None
    cosines: dict[str, float] = field(default_factory=dict)
    remote_code: str | None = None
    unloaded_weights: list[str] = field(default_factory=list)
    architecture: dict[str, Any] | None = None
    revision: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    code_file: str | None = None
    code_sha256: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def summary(self) -> str:
        """One line for logs and the report: status and the reason (and which code ran, by its SHA-256)."""
        code = f" [its code: {Path(self.code_file).name}, sha256 {self.code_sha256}]" if self.code_sha256 else ""
        return f"{self.status}: {self.reason}{code}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | os.PathLike) -> Path:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ParityResult":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def default_proteins(n: int = 48, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` seeded random proteins, 5 to 1,100 residues (log-spaced; past the 1,024-residue pooling limit).

    The twenty standard amino acids, with an occasional X (an ambiguous codon
    in a translated frame); one protein holds all 25 letters ESM-2 knows.
    """
    rng = random.Random(seed)
    lengths = [round(5 * (1100 / 5) ** (i / max(n - 2, 1))) for i in range(n - 1)]
    records = [("all_letters", "LAGVSERTIDPKQNFYMHWCXBUZO")]
    for i, length in enumerate(lengths):
        seq = "".join("X" if rng.random() < 0.01 else rng.choice(_AMINO) for _ in range(length))
        records.append((f"random_{i:02d}_{length}aa", seq))
    return records


def _not_run(base: dict[str, Any], reason: str) -> ParityResult:
    log.warning("FastESM2 parity not run: %s", reason)
    return ParityResult(status=NOT_RUN, reason=reason, **base)


def _not_the_model(loaded, directory: Path) -> str | None:
    """Why ``directory`` is not the real FastESM2_650 whose code may run, when it is not (our loader has checked its
    identity, config.json against its weights and the weights; a stand-in's size is all it may still be)."""
    size = loaded.provenance.get("size")
    if size in CODE_RUNS_FOR_SIZES:
        return None
    return (f"{directory} is a {loaded.spec.display_name} stand-in's size ({size}: {loaded.dim}-d), not "
            f"{loaded.spec.display_name} itself ({loaded.spec.dim}-d): its own code is not run (a directory's code "
            "runs only once our loader has found it to be the real model)")


def _code_file(directory: Path, reference: str) -> Path:
    """The file of ``directory`` that ``auto_map``'s ``reference`` (``module.Class``, or ``repo--module.Class``)
    names: the model's own code."""
    return directory / f"{reference.split('--')[-1].rsplit('.', 1)[0]}.py"


def _remote_code_problem(directory: Path) -> tuple[str | None, str | None]:
    """``(class named by auto_map, None)`` when transformers can find the model's own code, else ``(.., why not)``."""
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return None, f"config.json of {directory} cannot be read: {error}"
    reference = (config.get("auto_map") or {}).get("AutoModel") if isinstance(config, dict) else None
    if not reference:
        return None, (f"config.json of {directory} has no auto_map.AutoModel, so transformers cannot find the "
                      "model's own code (the hub's FastESM2_650 config.json names modeling_fastesm.FastEsmModel)")
    module = _code_file(directory, reference).stem
    if not (directory / f"{module}.py").is_file():
        return reference, (f"{directory} has no {module}.py, the model's own code that auto_map names "
                           f"({reference}); download the whole repository (`hf download Synthyra/FastESM2_650 "
                           f"--local-dir DIR`)")
    return reference, None


def _missing_modules(error: BaseException) -> list[str]:
    """The modules whose absence made the model's own code fail to import (none if it failed otherwise).

    transformers checks a remote file's imports before running it and names every missing one
    ("... not found in your environment: einops, networkx. Run `pip install ...`"); an import it does not
    see fails when the file runs, as a ``ModuleNotFoundError`` with the module's name.
    """
    if not isinstance(error, ImportError):
        return []
    if isinstance(error, ModuleNotFoundError) and error.name:
        return [error.name.split(".")[0]]
    found = re.search(r"not found in your environment: (.+?)\. Run", str(error))
    return [name.strip() for name in found.group(1).split(",")] if found else []


def _missing_modules_reason(reference: str | None, missing: list[str]) -> str:
    """Why the model's own code did not load, naming the missing modules and how to install them."""
    names = ", ".join(missing)
    if FASTPLMS in missing:
        # Not on PyPI: `pip install fastplms` (transformers' own advice) would find nothing, or something else.
        others = [name for name in missing if name != FASTPLMS]
        fix = (f"`{FASTPLMS_INSTALL}` (FastPLMs' own package: not on PyPI, so pip cannot install it; check out the "
               "FastPLMs commit the snapshot's file comes from if the newest does not match)"
               + (f", and `pip install {' '.join(others)}`" if others else ""))
        return (f"the model's own code ({reference}) does not load here: it imports {names}, which is not installed "
                f"in this environment; install it with {fix}, then rerun")
    fix = f"`pip install {' '.join(missing)}`"
    if all(name in REMOTE_CODE_IMPORTS for name in missing):
        fix += " or `make install` (this project depends on every module FastESM2's code imports)"
    else:
        fix += (" (FastESM2's code imports a module this project does not install: add it to "
                "REMOTE_CODE_IMPORTS in virnucpro_core/extract/parity.py and to pyproject.toml's dependencies)")
    return (f"the model's own code ({reference}) does not load here: it imports {names}, which is not installed "
            f"in this environment; install it with {fix}, then rerun")


def _load_remote(directory: Path, device: torch.device, dtype: torch.dtype):
    """The model's own code via ``AutoModel`` (``trust_remote_code``): ``(model, unloaded weights)``."""
    # transformers takes seconds to import; loaded only when a model is built
    from transformers import AutoModel

    model, info = AutoModel.from_pretrained(
        str(directory), trust_remote_code=True, local_files_only=True, output_loading_info=True, dtype=dtype
    )
    return model.to(device).eval(), sorted(info.get("missing_keys") or [])


def _remote_pooled(model, loaded, records: list[tuple[str, str]], batches: list[list[int]]) -> torch.Tensor:
    """The model's own code on our token ids and batches, pooled as VirNucPro pools."""
    token_ids = tokenize(loaded, [seq for _, seq in records])
    out = torch.empty((len(records), loaded.dim), dtype=torch.float32)
    with torch.inference_mode():
        for batch in batches:
            input_ids, mask = collate([token_ids[i] for i in batch], pad_id(loaded), loaded.device)
            output = model(input_ids=input_ids, attention_mask=mask)
            hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
            lengths = torch.tensor([len(records[i][1]) for i in batch])
            out[batch] = pool(hidden, pooling_weights("esm", mask, lengths)).cpu()
    return out


def _compare(ours: torch.Tensor, theirs: torch.Tensor, ids: list[str]) -> tuple[dict[str, float], float, float, float]:
    """Per-protein cosines (float64), the smallest, the largest absolute difference and the largest
    absolute component of ``theirs`` (all NaN if a vector is not finite)."""
    a, b = ours.double(), theirs.double()
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1)
    cosines = {rid: float(c) for rid, c in zip(ids, cosine.tolist(), strict=True)}
    if not bool(torch.isfinite(a).all() and torch.isfinite(b).all()):
        return cosines, math.nan, math.nan, math.nan
    return cosines, float(cosine.min()), float((a - b).abs().max()), float(b.abs().max())


def fastesm_parity(
    model_dir: str | os.PathLike,
    proteins: list[tuple[str, str]] | None = None,
    device: str | torch.device | None = "cpu",
    *,
    dtype: str = "float32",
    threshold: float = MIN_COSINE,
    relative_limit: float | None = MAX_RELATIVE_DIFF,
) -> ParityResult:
    """Compare our FastESM2 vectors with those of the snapshot's own code.

    Args:
        model_dir: a FastESM2 snapshot: config.json, model.safetensors, vocab.txt, modeling_fastesm.py.
        proteins: ``(id, sequence)`` pairs (default: :func:`default_proteins`).
        device: ``cpu``, ``cuda``, ``auto``...; both models run there.
        dtype: compute dtype of both (default float32: this checks the code, not the precision).
        threshold: the smallest per-protein cosine that passes.
        relative_limit: the largest absolute difference that passes, as a fraction of the largest
            component of the model's own vectors (None: cosine only).

    Returns:
        A :class:`ParityResult`: ``passed``, ``failed`` (with the measured values) or ``not run`` (with why).
        The snapshot's code runs only after our loader has accepted the directory as FastESM2_650 (identity,
        config.json against the weights, the weights), with its file's SHA-256 recorded first.

    Raises:
        InputError, WeightsNotFoundError: our own loader refuses the snapshot (as ``virnucpro extract`` would).
    """
    # transformers takes seconds to import; loaded only when a model is built
    import transformers

    directory = Path(model_dir).expanduser()
    records = list(proteins) if proteins is not None else default_proteins()
    # This check compares the snapshot it is given: no --allow-other-model here, so the refusal must not offer it.
    loaded = load_model(MODEL, model_path=directory, device=device, dtype=dtype, path_option="MODEL_DIR",
                        other_model_option=None)
    base: dict[str, Any] = {
        "model_dir": str(directory), "device": str(loaded.device), "dtype": dtype, "threshold": threshold,
        "relative_limit": relative_limit,
        "proteins": len(records), "architecture": loaded.provenance.get("architecture"),
        "revision": loaded.provenance.get("revision"),
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "transformers": transformers.__version__},
    }  # fmt: skip
    reference, problem = _remote_code_problem(directory)
    base["remote_code"] = reference
    problem = _not_the_model(loaded, directory) or problem
    if problem:
        return _not_run(base, problem)
    code_file = _code_file(directory, reference)
    base["code_file"], base["code_sha256"] = str(code_file), sha256_file(code_file)  # before it runs
    try:
        remote, unloaded = _load_remote(directory, loaded.device, resolve_dtype(dtype))
    except Exception as error:  # noqa: BLE001 - any failure of foreign code means it cannot be compared here
        missing = _missing_modules(error)
        if missing:
            return _not_run(base, _missing_modules_reason(reference, missing))
        first = (str(error).strip().splitlines() or [""])[0]
        return _not_run(base, f"the model's own code ({reference}) does not load here: {type(error).__name__}: "
                              f"{first} (check its imports and that anything it downloads is in "
                              "the Hugging Face cache with HF_HUB_OFFLINE=1)")
    base["remote_code"] = f"{type(remote).__module__}.{type(remote).__name__}"
    base["unloaded_weights"] = unloaded

    budget = DEFAULT_TOKS_PER_BATCH["esm"]
    batches = plan_batches([len(ids) for ids in tokenize(loaded, [s for _, s in records])], budget)
    ours = extract_embeddings(loaded, records, toks_per_batch=budget, progress=False).data
    try:
        theirs = _remote_pooled(remote, loaded, records, batches)
    except Exception as error:  # noqa: BLE001
        first = (str(error).strip().splitlines() or [""])[0]
        return _not_run(base, f"the model's own code loaded but its forward pass failed: {type(error).__name__}: "
                              f"{first}")
    cosines, min_cos, max_abs, scale = _compare(ours, theirs, [rid for rid, _ in records])
    worst = min(cosines, key=lambda rid: cosines[rid] if not math.isnan(cosines[rid]) else -math.inf)
    relative = max_abs / scale if scale else math.nan
    cosine_ok = min_cos >= threshold  # False for NaN
    diff_ok = relative_limit is None or relative <= relative_limit
    measured = (f"min cosine {min_cos:.6f} {'≥' if cosine_ok else '<'} {threshold} over {len(records)} proteins "
                f"(worst: {worst}); max abs difference {max_abs:.3g} = {relative:.2g} of the largest component "
                f"{scale:.3g}" + ("" if relative_limit is None else f" ({'≤' if diff_ok else '>'} {relative_limit:g})"))
    if math.isnan(min_cos):
        measured = "NaN or Inf in the vectors of one side; " + measured
    if unloaded:
        measured += f"; the model's own code found no checkpoint tensor for {len(unloaded)} weight(s): " + ", ".join(
            unloaded[:5])
    result = ParityResult(status=PASSED if cosine_ok and diff_ok else FAILED, reason=measured, min_cosine=min_cos,
                          max_abs_diff=max_abs, max_abs_value=scale, worst=worst, cosines=cosines, **base)
    log.info("FastESM2 parity %s", result.summary())
    return result
