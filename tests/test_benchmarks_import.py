"""The benchmark scripts import: a module they name that moved or was renamed fails here, not in a timing run."""

import importlib
import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script", sorted(path.stem for path in BENCHMARKS.glob("*.py")))
def test_benchmark_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import each other by name
    importlib.import_module(script)  # raises on a name that is not there
    sys.modules.pop(script, None)
