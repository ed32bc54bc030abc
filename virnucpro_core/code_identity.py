"""Code identity: which code computed a cached stage, a feature file or a checkpoint.

A result is reused only when the code that would compute it now is the code
that computed it. :func:`code_identity` describes that code for one stage: the
package version, the SHA-256 of the source of every module of
``virnucpro_core`` the stage's library module imports (transitively, read
from the sources with :mod:`ast`, function-level imports included, so the
answer does not depend on what this process happened to import), the package
data those modules read, and the versions of the libraries that change its
numbers (torch, transformers, ...). So an edit to the report does not retrain
the MLPs, and an edit to training (or to what training imports) does.

:meth:`CodeIdentity.differences` names what changed between two identities
(``virnucpro_core/train/training.py changed``, ``version 0.1.0 → 0.2.0``,
``torch 2.13.0 → 2.14.1``), for the one line a rebuilt stage prints.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import virnucpro_core

PACKAGE = "virnucpro_core"
_ROOT = Path(virnucpro_core.__file__).resolve().parent

# Package data read by a module: part of the code of any stage that imports it.
_DATA = {"virnucpro_core.models.dnabert_tokenizer": ("data/dnabert_s_standin_tokenizer",)}

# Per-module digests are shortened: 64 bits tell an edited file from the recorded one, and keep records small.
_SHORT = 16
#: How many changed names a one-line description lists before "and N more".
SHOW = 3


def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` of this package, or None when there is none."""
    parts = name.split(".")[1:]
    if not parts:
        return _ROOT / "__init__.py"
    relative = Path(*parts)
    for candidate in (_ROOT / relative.with_suffix(".py"), _ROOT / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _relative(path: Path) -> str:
    return f"{PACKAGE}/{path.relative_to(_ROOT).as_posix()}"


@functools.cache
def _imports(name: str) -> frozenset[str]:
    """The modules of this package that module ``name`` imports anywhere in its source (not transitively)."""
    path = _module_file(name)
    if path is None:
        return frozenset()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    modules = set()
    for candidate in found:
        while candidate.startswith(PACKAGE) and _module_file(candidate) is None and "." in candidate:
            candidate = candidate.rpartition(".")[0]
        if candidate.startswith(PACKAGE) and _module_file(candidate) is not None:
            modules.add(candidate)
    return frozenset(modules)


def closure(roots: Iterable[str]) -> list[str]:
    """Every module of this package that ``roots`` import, directly or not, the roots included; sorted."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if _module_file(name) is None:
            raise ValueError(f"{name} is not a module of {PACKAGE}")
        seen.add(name)
        todo.extend(_imports(name) - seen)
    return sorted(seen)


@functools.cache
def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:_SHORT]


def _sources(modules: Sequence[str]) -> dict[str, str]:
    files = [_module_file(name) for name in modules]
    for name in modules:
        for folder in _DATA.get(name, ()):
            files += sorted(p for p in (_ROOT / folder).rglob("*") if p.is_file())
    return {_relative(path): _file_digest(path) for path in sorted(set(files))}


def _library_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@dataclass(frozen=True)
class CodeIdentity:
    """The code that computes one kind of result.

    Attributes:
        version: this package's version.
        sources: each source file the result's code reads (``virnucpro_core/...``) with its SHA-256 (first 16 hex).
        libraries: the version of each library or tool that changes the result's numbers.
    """

    version: str
    sources: dict[str, str] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """One SHA-256 of the whole identity (what a shard or a cache entry compares)."""
        text = json.dumps([self.version, self.sources, self.libraries], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "digest": self.digest, "sources": dict(self.sources),
                "libraries": dict(self.libraries)}

    @classmethod
    def from_dict(cls, data: Any) -> CodeIdentity | None:
        """The identity :meth:`to_dict` wrote, or None when ``data`` is not one (a file written before it existed)."""
        if not isinstance(data, Mapping):
            return None
        sources, libraries = data.get("sources"), data.get("libraries")
        if not isinstance(data.get("version"), str) or not isinstance(sources, Mapping) \
                or not isinstance(libraries, Mapping):
            return None
        return cls(data["version"], {str(k): str(v) for k, v in sources.items()},
                   {str(k): str(v) for k, v in libraries.items()})

    def differences(self, recorded: CodeIdentity) -> list[str]:
        """What differs from the ``recorded`` identity, one phrase each (empty: the same code)."""
        changes = []
        if recorded.version != self.version:
            changes.append(f"version {recorded.version} → {self.version}")
        for path in sorted(set(self.sources) | set(recorded.sources)):
            old, new = recorded.sources.get(path), self.sources.get(path)
            if old != new:
                changes.append(f"{path} {'added' if old is None else 'no longer used' if new is None else 'changed'}")
        for name in sorted(set(self.libraries) | set(recorded.libraries)):
            old, new = recorded.libraries.get(name), self.libraries.get(name)
            if old != new:
                changes.append(f"{name} {old or 'not recorded'} → {new or 'not used'}")
        return changes

    def change_from(self, recorded: Any) -> str | None:
        """Why a result recorded with ``recorded`` (a :meth:`to_dict`, or anything older) is not this code's; None
        when it is. One phrase: "built by other code (virnucpro_core/train/training.py changed)"."""
        old = recorded if isinstance(recorded, CodeIdentity) else CodeIdentity.from_dict(recorded)
        if old is None:
            return "built by an older version, which recorded no code identity"
        changes = self.differences(old)
        if not changes:
            return None
        shown = ", ".join(changes[:SHOW]) + (f" and {len(changes) - SHOW} more" if len(changes) > SHOW else "")
        return f"built by other code ({shown})"


@functools.cache
def _identity(roots: tuple[str, ...], libraries: tuple[str, ...]) -> CodeIdentity:
    return CodeIdentity(virnucpro_core.__version__, _sources(closure(roots)),
                        {name: _library_version(name) for name in libraries})


def code_identity(*roots: str, libraries: Sequence[str] = ()) -> CodeIdentity:
    """The identity of the code of a result computed by the modules ``roots`` (dotted names of this package).

    ``libraries``: distributions (or tools, through :func:`with_tool`) whose versions change the result's
    numbers. Computed once per process.
    """
    return _identity(tuple(sorted(roots)), tuple(sorted(libraries)))


#: Each kind of result: the library modules that compute it (their imports follow) and the libraries whose
#: versions change its numbers. Names, not imports: this module stays below the ones it names.
RESULTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "preprocess": (("virnucpro_core.preprocess.sequences",), ()),
    "extract": (("virnucpro_core.extract.features",), ("torch", "transformers")),
    "merge": (("virnucpro_core.extract.merged", "virnucpro_core.layouts.features"), ("torch",)),
    "import": (("virnucpro_core.layouts.virnucpro", "virnucpro_core.layouts.features"), ("torch",)),
    "reuse": (("virnucpro_core.extract.reuse", "virnucpro_core.layouts.features"), ("torch",)),
    "split": (("virnucpro_core.split.make",), ("numpy", "torch")),
    "train": (("virnucpro_core.train.training",), ("numpy", "torch")),
    "clusters": (("virnucpro_core.split.clusters",), ()),
    "identity": (("virnucpro_core.split.clusters",), ()),
}


def code_of(kind: str) -> CodeIdentity:
    """The code identity of a kind of result (a key of :data:`RESULTS`)."""
    roots, libraries = RESULTS[kind]
    return code_identity(*roots, libraries=libraries)


def with_tool(identity: CodeIdentity, name: str, version: str) -> CodeIdentity:
    """``identity`` with the version of an external tool (e.g. MMseqs2) among its libraries."""
    return CodeIdentity(identity.version, identity.sources, {**identity.libraries, name: version})


@functools.cache
def package_identity() -> CodeIdentity:
    """The identity of the whole package (every source and data file): what the report's environment table names."""
    files = [p for p in _ROOT.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return CodeIdentity(virnucpro_core.__version__, {_relative(p): _file_digest(p) for p in sorted(files)}, {})


@functools.cache
def git_commit() -> str:
    """The commit of the checkout this package runs from (with ``+changes`` when it holds edits), or "unknown"."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=_ROOT, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+changes" if dirty else "")


def describe_package() -> str:
    """One line for the report: version, source digest (and module count), commit."""
    identity = package_identity()
    return (f"virnucpro-accept {identity.version}, source sha256 {identity.digest[:12]} "
            f"({len(identity.sources)} files), commit {git_commit()}")
