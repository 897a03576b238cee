"""The package's imports run one way: engine, spec, compile, fit, inference, output, then the statsmodels face;
no module is over 600 lines.

The import graph is read from the source (function-level imports included: a lazy import is
still a dependency; imports under ``if TYPE_CHECKING`` are not). A module may import its own
stage or a lower one, never a higher one, and the graph has no cycle. The known departures are
listed by edge, so that a new one fails here and a removed one must be struck off the list.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "sm_multisem"

#: The pipeline's stages, lowest first: each imports only its own and lower ones.
STAGES = ("engine", "spec", "compile", "fit", "inference", "output", "face")

#: The stage of every module. The engine knows nothing of structural equation models.
STAGE_OF = {
    **dict.fromkeys(("segments", "ar1_sums", "centring", "moments", "moment_normal", "likelihood", "whitened",
                     "siblings", "effects", "patterns", "wide_normal", "ram"), "engine"),
    **dict.fromkeys(("formula", "data", "layout", "pairs", "relax", "residuals", "spec"), "spec"),
    **dict.fromkeys(("plan", "pattern_path"), "compile"),
    **dict.fromkeys(("estimation", "covariance", "identification", "gmm"), "fit"),
    **dict.fromkeys(("hypothesis", "scoretests", "gof"), "inference"),
    **dict.fromkeys(("summary", "export", "diagram", "graphics", "compare"), "output"),
    **dict.fromkeys(("model", "relaxing", "wide_form", "results", "wide_model", "correlate", "systems", "simulate",
                     "__init__", "__main__"), "face"),
}

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


def _imports(tree: ast.AST):
    """``(module, names)`` of every relative import, outside ``if TYPE_CHECKING`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                yield node.module.split(".")[0], [alias.name for alias in node.names]
            else:
                for alias in node.names:
                    yield alias.name, []
        stack.extend(ast.iter_child_nodes(node))


def _graph() -> tuple[dict[str, set[str]], set[tuple[str, str, str]]]:
    edges, private = {}, set()
    for path in sorted(PACKAGE.glob("*.py")):
        module = path.stem
        edges[module] = set()
        for imported, names in _imports(ast.parse(path.read_text())):
            edges[module].add(imported)
            private.update((module, imported, name) for name in names if name.startswith("_"))
    return edges, private


EDGES, PRIVATE = _graph()


def test_every_module_has_a_stage():
    assert sorted(set(EDGES) - set(STAGE_OF)) == []
    assert sorted(set(STAGE_OF) - set(EDGES)) == [], "a module in STAGE_OF no longer exists"


def test_known_cycles_are_cycles():
    for module, imported in KNOWN_CYCLIC:
        assert imported in EDGES[module] and STAGE_OF[module] == STAGE_OF[imported]


def test_imports_run_down_the_stages():
    rank = {module: STAGES.index(stage) for module, stage in STAGE_OF.items()}
    upward = {(module, imported) for module, targets in EDGES.items() for imported in targets
              if rank[imported] > rank[module]}
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
    lengths = {path.stem: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert {module: n for module, n in lengths.items() if n > 600} == {}
