"""Nested multilevel random-effects models as wide, constrained structural equation models.

The pipeline, each stage a public function:

``parse_formula`` -> ``build_layout`` -> ``specify`` -> ``compile_plan`` -> ``fit_profiled``
-> ``MultilevelSEMResults``; :class:`MultilevelSEM` chains them behind one formula.
"""

from .compile.plan import Plan, compile_plan
from .engine.likelihood import NestedNormal
from .fit.estimation import fit_profiled
from .inference.hypothesis import LRTest
from .model import MultilevelSEM
from .output.compare import compare_mixedlm, mixedlm_equivalent
from .results import MultilevelSEMResults
from .simulate import simulate_article_data, simulate_districts, simulate_nested
from .spec.data import RowAccounting
from .spec.formula import FormulaError, parse_formula
from .spec.layout import WideLayout, build_layout
from .spec.spec import ParameterTable, specify

__version__ = "0.1.0"

__all__ = [
    "MultilevelSEM",
    "MultilevelSEMResults",
    "LRTest",
    "FormulaError",
    "RowAccounting",
    "parse_formula",
    "build_layout",
    "WideLayout",
    "specify",
    "ParameterTable",
    "compile_plan",
    "Plan",
    "NestedNormal",
    "fit_profiled",
    "compare_mixedlm",
    "mixedlm_equivalent",
    "simulate_article_data",
    "simulate_districts",
    "simulate_nested",
]
