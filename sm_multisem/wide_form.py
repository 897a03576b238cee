"""The wide form of a multilevel model: the SEM a mixed model is, as a table, data, syntax and a diagram.

One row per top-level cluster, one position per slot of the units below it, and the mixed model's
equalities as shared labels: :attr:`~WideForm.parameter_table`, :meth:`~WideForm.wide_data`, Stata
and lavaan syntax, a path diagram, and the same model on the dense wide engine (:meth:`~WideForm.as_wide`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import systems
from .engine.ram import conditioned_covariates
from .output import export
from .spec.data import ModelData
from .spec.layout import position_name

if TYPE_CHECKING:
    from .model import MultilevelSEM

__all__ = ["WideForm"]


class WideForm:
    """The wide-form methods of :class:`~sm_multisem.MultilevelSEM` (which holds the table and layout they read)."""

    @property
    def parameter_table(self) -> pd.DataFrame:
        """The wide SEM, one row per parameter at every position, with its constraint label.

        When a parameter differs by a label of the top-level clusters the wide form is a
        multi-group SEM: the rows of every group, under a first column ``group``.
        """
        if self._wide_form_problem:
            raise NotImplementedError(self._wide_form_problem)
        from .correlate import free_sibling_covariances

        table = self.table.expand(self.layout, self.labels, groups=None if self._groups is None else self._groups[1])
        return free_sibling_covariances(self, table)

    def single_group_table(self, what: str) -> pd.DataFrame:
        """:attr:`parameter_table`, for a use (``what``) that needs a single-group wide form.

        Raises
        ------
        NotImplementedError
            For a multi-group wide form, saying why.
        """
        table = self.parameter_table
        if self._groups is not None:
            raise NotImplementedError(
                f"{what} of a multi-group SEM (parameters differ by {self._groups[0]!r}, a label of the top-level "
                "clusters, so every label is a group of wide rows) is not written here; parameter_table and "
                "to_lavaan() show the multi-group form"
            )
        return table

    def wide_data(self, fill_absent_covariates: bool = False, max_cells: int = 10_000_000) -> pd.DataFrame:
        """The data reshaped to one row per top-level cluster (``y1_1, x1_1, ...``).

        Parameters
        ----------
        fill_absent_covariates : bool
            Set the covariates of absent positions (where the outcome is missing) to 0.
            Their value does not enter the likelihood, which conditions on covariates,
            but software that drops incomplete covariates (lavaan with ``fixed.x=TRUE``)
            would otherwise discard whole clusters. Use it to fit :meth:`to_lavaan`.
        max_cells : int
            Refuse to build a larger frame.
        """
        source: ModelData = self._recipe["source"]  # covariates before any slope was split by label
        long = pd.DataFrame({self.table.outcome: source.endog})
        for column, ident in zip(source.exog.T, self._covariate_identifiers(source.exog_names)):
            if ident is not None:
                long[ident] = column
        wide = self.layout.wide_frame(long, max_cells=max_cells)
        if fill_absent_covariates:
            for suffix in np.unique(self.layout.position_names()):
                absent = wide[position_name(self.table.outcome, suffix)].isna()
                for ident in self.table.covariates:
                    wide.loc[absent, position_name(ident, suffix)] = 0.0
        if self._groups is not None:  # the multi-group form's group of every row
            by, labels = self._groups
            wide.insert(len(self.layout.levels[0]), by, labels)
        return wide

    def _covariate_identifiers(self, exog_names: list[str]) -> list[str | None]:
        covariates = iter(self.table.covariates)
        return [None if name == "Intercept" else next(covariates) for name in exog_names]

    def as_wide(self, start_params=None):
        """The same model as a :class:`~sm_multisem.wide_model.WideSEM`, fitted by the dense wide engine.

        Its table is :attr:`parameter_table`; edit it and call ``with_table`` to fit what the
        nested likelihood cannot (covariances among effects or residuals, fixed parameters).
        Start values are ``start_params`` (in the order of :attr:`param_names`) or this model's
        ML estimates.

        Raises
        ------
        NotImplementedError
            Where the model has no single wide form (see :attr:`parameter_table`), or its
            residuals are AR(1) (a nonlinear constraint the wide engine does not take).
        """
        from .wide_model import WideSEM

        table = self.single_group_table("the dense wide engine's fit")
        if (table["op"] == "==").any():
            raise NotImplementedError("AR(1) residuals tie the residual covariances by a nonlinear constraint "
                                      "(S_e * rho^d), which the dense wide engine does not take")
        wide = self.wide_data(fill_absent_covariates=True)
        exogenous = conditioned_covariates(table)
        free = self.table.free_parameters
        start = (systems.estimates_by_label(self) if start_params is None
                 else dict(zip(free["label"], np.asarray(start_params, dtype=float))))
        return WideSEM(table, wide, exogenous=exogenous, names=dict(zip(free["label"], free["name"])), start=start,
                       source=self, title=f"Wide SEM: {self.formula or self.endog_names}")

    def to_stata(self) -> str:
        """The wide constrained model as a Stata ``sem`` command."""
        return export.to_stata(self.table, self.single_group_table("Stata sem syntax"), balanced=self._balanced())

    def to_lavaan(self) -> str:
        """The wide constrained model in lavaan model syntax."""
        return export.to_lavaan(self.parameter_table)

    def path_diagram(self, *, max_positions: int | None = 6):
        """The wide SEM as a path diagram, every path labelled with its constraint label.

        Parameters
        ----------
        max_positions : int or None
            Draw this many positions and one node for the rest (``None``: all).

        Returns
        -------
        sm_multisem.output.diagram.PathDiagram
            DOT source (``.source``), shown as SVG in Jupyter and written by ``.render(path)``
            when Graphviz is installed; see :func:`sm_multisem.output.diagram.path_diagram`.
        """
        from .output.diagram import path_diagram

        return path_diagram(self.single_group_table("the path diagram"), max_positions=max_positions)

    def with_positions(self, layout) -> MultilevelSEM:
        """The same model with the positions of its wide form named by ``layout``: the same rows in the
        same units, their slots keyed or numbered otherwise (by a label, by occasion).

        The nested likelihood does not depend on how slots are keyed, only the names of the positions
        and the wide form do, so nothing is refitted or rebuilt; this model is not changed.

        Raises
        ------
        ValueError
            A layout of other rows or other units.
        """
        same_units = (np.array_equal(layout.order, self.layout.order) and len(layout.levels) == len(self.layout.levels)
                      and all(np.array_equal(a, b) for a, b in zip(layout.child_starts, self.layout.child_starts))
                      and np.array_equal(layout.row_starts, self.layout.row_starts))
        if not same_units:
            raise ValueError("the layout holds other rows or other units than the model's; only its slots may differ")
        renamed = copy.copy(self)
        renamed.layout = layout
        return renamed

    def _balanced(self) -> bool:
        counts = np.bincount(self.layout.cluster_of_rows())
        # by name: slots keyed by a label number each label from 1, so numbers alone repeat
        return bool(np.all(counts == counts[0])) and len(np.unique(self.layout.position_names())) == counts[0]
