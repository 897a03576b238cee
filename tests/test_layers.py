"""The package's imports run one way: engine, spec, compile, fit, inference, output (one subpackage each), then
the statsmodels face at the top; no module is over 600 lines.

The import graph is read from the source (function-level imports included: a lazy import is
still a dependency; imports under ``if TYPE_CHECKING`` are not). A module's stage is its
subpackage; it may import its own stage or a lower one, never a higher one, and the graph has no
cycle. The known departures are listed by edge, so that a new one fails here and a removed one
must be struck off the list.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "sm_multisem"

#: The pipeline's stages, lowest first: each imports only its own and lower ones.
STAGES = ("engine", "spec", "compile", "fit", "inference", "output", "face")

#: Imports against the stages that the package still has, (importer, imported).
KNOWN_UPWARD: set[tuple[str, str]] = set()

#: Imports inside one stage that close a cycle, (importer, imported).
KNOWN_CYCLIC = {
    ("systems", "model"),  # the systems build MultilevelSEM, whose from_formula hands systems to them
}

#: Private names imported from another module, (importer, module, name).
KNOWN_PRIVATE: set[tuple[str, str, str]] = set()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_name(path: pathlib.Path) -> str:
    """``engine.likelihood`` for a module of a subpackage, ``model`` for one at the top."""
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def _stage(module: str) -> str:
    return module.split(".")[0] if "." in module else "face"


def _imports(tree: ast.AST, package: list[str]):
    """``(module, names)`` of every relative import (resolved to a module of the package), outside
    ``if TYPE_CHECKING`` blocks; ``package`` is the importer's package, as parts below the top."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            if (PACKAGE.joinpath(*base) / "__init__.py").exists() and base:  # names are modules of a subpackage
                for alias in node.names:
                    yield ".".join([*base, alias.name]), []
            elif not base:  # from . import a, b at the top
                for alias in node.names:
                    yield alias.name, []
            else:
                yield ".".join(base), [alias.name for alias in node.names]
        stack.extend(ast.iter_child_nodes(node))


def _graph() -> tuple[dict[str, set[str]], set[tuple[str, str, str]]]:
    edges, private = {}, set()
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py" and path.parent != PACKAGE:
            continue  # a subpackage's docstring
        module = _module_name(path)
        package = list(path.relative_to(PACKAGE).parts[:-1])
        edges[module] = set()
        for imported, names in _imports(ast.parse(path.read_text()), package):
            edges[module].add(imported)
            private.update((module, imported, name) for name in names if name.startswith("_"))
    return edges, private


EDGES, PRIVATE = _graph()


def test_every_import_is_a_module_of_the_package():
    assert sorted({imported for targets in EDGES.values() for imported in targets} - set(EDGES)) == []


def test_every_subpackage_is_a_stage():
    folders = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert folders == set(STAGES) - {"face"}


def test_known_cycles_are_cycles():
    for module, imported in KNOWN_CYCLIC:
        assert imported in EDGES[module] and _stage(module) == _stage(imported)


def test_imports_run_down_the_stages():
    def rank(module: str) -> int:
        return STAGES.index(_stage(module))

    upward = {(module, imported) for module, targets in EDGES.items() for imported in targets
              if rank(imported) > rank(module)}
    assert sorted(upward - KNOWN_UPWARD) == [], "imports from a higher stage"
    assert sorted(KNOWN_UPWARD - upward) == [], "gone: strike these off KNOWN_UPWARD"


def test_no_import_cycle():
    """Every cycle runs through an import against the stages or a known one; without those there is none."""
    known = KNOWN_UPWARD | KNOWN_CYCLIC
    edges = {module: {imported for imported in targets if (module, imported) not in known}
             for module, targets in EDGES.items()}
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(path: list[str]) -> None:
        module = path[-1]
        state[module] = 1
        for imported in sorted(edges[module]):
            if state.get(imported) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(imported):], imported]))
            if imported not in state:
                visit([*path, imported])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit([module])


def test_no_private_name_imported_from_another_module():
    assert sorted(PRIVATE - KNOWN_PRIVATE) == []
    assert sorted(KNOWN_PRIVATE - PRIVATE) == [], "gone: strike these off KNOWN_PRIVATE"


def test_no_module_over_600_lines():
    lengths = {_module_name(path): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {module: n for module, n in lengths.items() if n > 600} == {}
