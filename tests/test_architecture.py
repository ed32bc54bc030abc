"""The package's shape: layers that only point down, no import cycles, no oversized module, every lazy import explained.

Imports are read with ``ast`` (nothing is imported): module-level ones and
those inside functions alike, since a function-level import is still a
dependency, only a late one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import virnucpro_core

PACKAGE = Path(virnucpro_core.__file__).parent
MAX_LINES = 650
REASON = "Over 600 lines:"

# README.md's layer order, lowest first: the top-level helper modules (errors, files, paths...), then each package.
# A module may import any module of its own layer and of the layers before it, never one of a later layer.
LAYERS = ("", "models", "layouts", "preprocess", "extract", "split", "train", "evaluate", "predict", "compare", "gate",
          "commands")  # fmt: skip
# Top-level modules that are not helpers, and the layer they belong to: the CLI dispatches to the subcommands.
TOP_LEVEL_LAYERS = {"virnucpro_core.cli": "commands"}
# Upward imports allowed, each with the reason it is allowed: (importer, imported) → reason. None today.
UPWARD_EXCEPTIONS: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported(name: str, path: Path, tree: ast.Module) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source (``from pkg import submodule`` included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target not in MODULES:
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                out.add(submodule if submodule in MODULES else target)
    out.discard(name)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports."""
    return {name: _imported(name, path, ast.parse(path.read_text(encoding="utf-8"))) for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycles_finds_a_loop_and_nothing_else():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    described = [" ⇄ ".join(c) + " (" + "; ".join(f"{a} → {b}" for a in c for b in sorted(graph[a] & set(c))) + ")"
                 for c in found]
    assert not found, "import cycles (module-level and function-level imports):\n" + "\n".join(described)


def layer_of(name: str) -> int:
    """The index in :data:`LAYERS` of a module's layer: its package's, or the top-level helpers' (0)."""
    parts = name.split(".")
    if name in TOP_LEVEL_LAYERS:
        return LAYERS.index(TOP_LEVEL_LAYERS[name])
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1] / "__init__.py").is_file()):
        return LAYERS.index(parts[1])
    return 0


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``importer (layer) → imported (layer)`` for every import of a later layer that is not an exception."""
    return [f"{name} ({LAYERS[layer_of(name)] or 'top level'}) → {other} ({LAYERS[layer_of(other)]})"
            for name in sorted(graph) for other in sorted(graph[name])
            if layer_of(other) > layer_of(name) and (name, other) not in UPWARD_EXCEPTIONS]


def test_every_package_has_a_layer():
    packages = {p.name for p in _subpackages()}
    assert packages == set(LAYERS) - {""}, f"LAYERS lists {sorted(set(LAYERS) - {''})}, the package has {sorted(packages)}"


def test_layer_check_names_an_upward_import():
    graph = {"virnucpro_core.models.specs": {"virnucpro_core.train.training", "virnucpro_core.errors"},
             "virnucpro_core.gate.gates": {"virnucpro_core.models.specs"}, "virnucpro_core.errors": set(),
             "virnucpro_core.train.training": set()}
    assert upward_imports(graph) == ["virnucpro_core.models.specs (models) → virnucpro_core.train.training (train)"]


def test_imports_only_point_down_the_layers():
    """Every import (module-level and function-level) follows README.md's layer order."""
    found = upward_imports(import_graph())
    assert not found, (
        "imports that run up the layer order (LAYERS, README.md's Layout): move the imported code down, or the "
        "importing module up, or list the import in UPWARD_EXCEPTIONS with the reason it is allowed:\n"
        + "\n".join(found)
    )


def test_upward_exceptions_are_still_needed():
    graph = import_graph()
    stale = [pair for pair in UPWARD_EXCEPTIONS if pair[1] not in graph.get(pair[0], set())]
    assert not stale, f"UPWARD_EXCEPTIONS lists imports that no longer exist: {stale}"
    assert all(reason.strip() for reason in UPWARD_EXCEPTIONS.values()), "every exception needs its reason"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    path = MODULES[name]
    text = path.read_text(encoding="utf-8")
    n = len(text.splitlines())
    if n <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert any(line.strip().startswith(REASON) for line in doc.splitlines()), (
        f"{path.relative_to(PACKAGE.parent)} has {n} lines (limit {MAX_LINES}): split it by what it does, "
        f"or give the reason in its docstring on a line starting with {REASON!r}"
    )


def _lazy_import_blocks(tree: ast.Module) -> list[list[ast.stmt]]:
    """Runs of consecutive import statements inside functions (methods included)."""
    blocks = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            for body in (getattr(node, field, None) for field in ("body", "orelse", "finalbody", "handlers")):
                if not isinstance(body, list):
                    continue
                run: list[ast.stmt] = []
                for statement in body + [None]:
                    if isinstance(statement, (ast.Import, ast.ImportFrom)):
                        run.append(statement)
                    elif run:
                        blocks.append(run)
                        run = []
    return blocks


def test_function_level_imports_say_why():
    unexplained = []
    for path in MODULES.values():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for block in _lazy_import_blocks(ast.parse(text)):
            # One reason covers a block: a comment on the line above it or on any of its lines.
            first, last = block[0].lineno, block[-1].end_lineno
            if not any("#" in line for line in lines[max(first - 2, 0) : last]):
                unexplained.append(f"{path.relative_to(PACKAGE.parent)}:{first}: {lines[first - 1].strip()}")
    assert not unexplained, (
        "function-level imports without a reason (a `# ...` comment on the line above the block or on one of its "
        "lines); hoist them to module level unless start-up time needs them:\n" + "\n".join(unexplained)
    )


def _subpackages() -> list[Path]:
    return sorted(p.parent for p in PACKAGE.glob("*/__init__.py"))


@pytest.mark.parametrize("package", _subpackages(), ids=lambda p: p.name)
def test_each_package_docstring_names_its_modules(package):
    """A package's docstring says what each of its modules owns: a module it does not name is one nobody documented."""
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    missing = [p.stem for p in sorted(package.glob("*.py")) if p.stem != "__init__" and p.stem not in doc]
    assert not missing, f"virnucpro_core/{package.name}/__init__.py's docstring does not name {missing}"


def test_readme_layout_shows_the_tree():
    """README.md's Layout block names every package and every module of the library."""
    readme = (PACKAGE.parent / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    layout = layout[:layout.index("```", layout.index("```") + 3)]
    missing = [f"{p.name}/" for p in _subpackages() if f"{p.name}/" not in layout]
    missing += [p.name for p in sorted(PACKAGE.rglob("*.py")) if p.stem != "__init__" and p.name not in layout]
    assert not missing, f"README.md's Layout does not show {missing}"
