"""Nested multilevel random-effects models as wide, constrained structural equation models.

The pipeline, each stage a public function:

``parse_formula`` -> ``build_layout`` -> ``specify`` -> ``compile_plan`` -> ``fit_profiled``
-> ``MultilevelSEMResults``; :class:`MultilevelSEM` chains them behind one formula.
"""

from .compare import compare_mixedlm, mixedlm_equivalent
from .data import RowAccounting
from .estimation import fit_profiled
from .formula import FormulaError, parse_formula
from .hypothesis import LRTest
from .layout import WideLayout, build_layout
from .likelihood import NestedNormal
from .model import MultilevelSEM
from .plan import Plan, compile_plan
from .results import MultilevelSEMResults
from .simulate import simulate_article_data, simulate_districts, simulate_nested
from .spec import ParameterTable, specify

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
