"""Score test of a fixed effect freed by groups of rows, without building the relaxed design.

Freeing the slope of ``x`` by P groups replaces the column ``x`` with P columns ``x 1[g]``.
As a design that is rows x P numbers (half a gigabyte for 50 groups of a million rows); but the
test needs of it only, at the constrained estimate,

.. math::

    s = X_P'\\Sigma^{-1} r, \\qquad X_P'\\Sigma^{-1}X_P, \\qquad X_P'\\Sigma^{-1}X,

and ``X_P`` is a sparse matrix with one entry per row, which
:meth:`~sm_multisem.engine.likelihood.NestedNormal.cross_products` takes through the recursion.
The expected information of ML is block-diagonal between fixed effects and variances, so
these are the whole test: it equals :func:`~sm_multisem.inference.hypothesis.score_test` of the
relaxed model (a test checks it), at O(rows + P^2) memory.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from .hypothesis import InformationNotPositiveDefinite, ScoreTest

__all__ = ["fixed_effect_score_test", "takes_fixed_effect_shortcut"]


def takes_fixed_effect_shortcut(model) -> bool:
    """Whether the model's likelihood gives the cross products the test needs: nested random
    intercepts with independent residuals (by label) or exchangeable ones, no AR(1)."""
    return not model.plan.level_effects and model.plan.row_correlation is None


def fixed_effect_score_test(results, column: str, codes: np.ndarray, names) -> ScoreTest:
    """Expected-information score test of the fixed effect ``column`` freed by groups of rows.

    Parameters
    ----------
    results : MultilevelSEMResults
        An ML fit of the model with one ``column`` for all rows.
    column : str
        A fixed-effect column (``"x"``, ``"Intercept"``).
    codes : ndarray of int
        The group of every sorted row (the layout's order), an index into ``names``; every group
        holds rows.
    names : sequence of str
        The groups: the freed parameters are named ``column[name]``, as the relaxations name them.

    Returns
    -------
    ScoreTest
        Joint test with ``len(names) - 1`` df, and one row per group: freeing its parameter alone,
        the other groups sharing one, with the expected change from the shared value.

    Raises
    ------
    InformationNotPositiveDefinite
        When the columns by group are collinear with the other fixed effects.
    """
    model = results.model
    beta, variances = model.plan.split(np.asarray(results.params))
    layout, data = model.layout, model.model_data
    exog = layout.sort_rows(data.exog)
    residual = layout.sort_rows(data.endog) - exog @ beta
    at = data.exog_names.index(column)
    split = sp.csr_matrix((exog[:, at], (np.arange(layout.n_rows), codes)), shape=(layout.n_rows, len(names)))
    likelihood = model.likelihood
    split_info = likelihood.cross_products(variances, split, split)
    with_fixed = likelihood.cross_products(variances, split, np.column_stack([exog, residual]))
    fixed_info = likelihood.cross_products(variances, exog, exog)
    score, cross = with_fixed[:, -1], with_fixed[:, :-1]
    # every freed direction net of what the constrained fixed effects (the shared column among them) explain
    efficient = split_info - cross @ np.linalg.solve(fixed_info, cross.T)
    others = np.delete(np.arange(len(data.exog_names)), at)  # the relaxed model: the groups replace the column
    joint_info = split_info - cross[:, others] @ np.linalg.solve(fixed_info[np.ix_(others, others)], cross[:, others].T)
    eigenvalues = np.linalg.eigvalsh(joint_info)
    if eigenvalues[0] <= 1e-10 * eigenvalues[-1]:
        raise InformationNotPositiveDefinite(
            f"the columns of {column} by group are collinear with the other fixed effects (the information of the "
            f"relaxed model is singular, smallest eigenvalue {eigenvalues[0]:.3g})")
    statistic = float(score @ np.linalg.solve(joint_info, score))
    df = len(names) - 1
    diagonal = np.diag(efficient)
    chi2 = score**2 / diagonal
    table = pd.DataFrame({"chi2": chi2, "df": 1, "pvalue": stats.chi2.sf(chi2, 1), "epc": score / diagonal},
                         index=[f"{column}[{name}]" for name in names])
    return ScoreTest(statistic, df, float(stats.chi2.sf(statistic, df)), "expected", table)
