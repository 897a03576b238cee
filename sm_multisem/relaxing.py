"""The relaxations of a multilevel model: every method returns a new model with one constraint freed.

Each ``relax_*`` method names what it frees in Stata's and nlme's words, checks the request
against the data (a label constant where it must be, a time column where one is needed),
and rebuilds the model from its recipe with one more :class:`~sm_multisem.spec.relax.Relaxation`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .correlate import keying_relaxation, unstructured_model
from .spec.data import ModelData
from .spec.layout import level_name
from .spec.relax import LabelColumn, Relaxation, time_key
from .spec.residuals import RESIDUAL_KINDS, STRUCTURES, check_occasions, exchangeable_changes

if TYPE_CHECKING:
    from .model import MultilevelSEM

__all__ = ["Relaxing"]


class Relaxing:
    """The ``relax_*`` methods of :class:`~sm_multisem.MultilevelSEM` (which holds the recipe they rebuild from)."""

    def relax_variance(self, level: str, by) -> MultilevelSEM:
        """Let the variance of a level's random effects differ by a label (heteroskedastic effects).

        Parameters
        ----------
        level : str
            The level, as the summary names it (``"k:j"``).
        by : str or array_like
            A column of the data (or one label per input row) that is constant within
            each unit of the level, e.g. the school type.

        Returns
        -------
        MultilevelSEM
            A new model with ``var(k:j)[pub]``, ``var(k:j)[prv]``, ... in place of
            ``var(k:j)``. In nlme: ``random = list(k = ~ 1, j = pdDiag(~ 0 + type))``.
        """
        return self._relaxed(Relaxation("variance", level, self._label_name(by)), by)

    def relax_residuals(self, by=None, *, structure: str = "independent", t=None, within=None,
                        order: int | None = None):
        """Relax the residuals: a variance per label, AR(1) correlation along time, or exchangeable blocks.

        Parameters
        ----------
        by : str or array_like, optional
            With ``structure="independent"``: one residual variance per label (Stata
            ``mixed, residuals(independent, by(role))``; nlme ``varIdent(form = ~ 1 | role)``);
            the new model has ``var(Residual)[a]``, ``var(Residual)[b]``, ...
        structure : {"independent", "ar1", "exchangeable", "unstructured", "toeplitz", "banded"}
            ``"ar1"``: residuals of one unit of the lowest level are correlated
            ``rho^|t - s|`` along the integer time ``t`` (Stata ``residuals(ar 1, t(time))``;
            nlme ``corCAR1(form = ~ time | k/j)``); the new model has ``rho(Residual)``.
            With ``by=`` (a column constant within the lowest units) every label has its own
            residual variance and rho, ``var(Residual)[a]`` and ``rho(Residual)[a]`` (Stata
            ``residuals(ar 1, t(time) by(type))``).
            ``"exchangeable"``: residuals of one unit of the residual grouping ``within`` share
            a covariance (Stata ``residuals(exchangeable)``; nlme ``corCompSymm``); the new model
            has ``cov(Residual)``, and ``var(Residual)[g]``, ``cov(Residual)[g]`` per label with
            ``by=`` (a column constant within the units of ``within``). See
            :mod:`sm_multisem.spec.residuals`.
            ``"unstructured"``: a variance per occasion of the integer ``t`` and a covariance per
            pair of occasions within a unit of ``within`` (Stata ``residuals(unstructured, t(time))``;
            nlme ``corSymm`` with ``varIdent(form = ~ 1 | time)``), with ``var(Residual)[t]`` and
            ``cov(Residual)[s,t]``: a dense block of every unit in the recursion
            (:class:`~sm_multisem.engine.whitened.BlockResiduals`). With ``by=`` every label has its own
            (``var(Residual)[a,t]``), returned as a :class:`~sm_multisem.wide_model.WideSEM` fitted by
            the dense wide engine.
            ``"toeplitz"``: one residual variance and a covariance per lag of the integer ``t``
            within a unit of ``within`` (Stata ``residuals(toeplitz, t(time))``; nlme ``corARMA``
            of order T - 1), with ``cov(Residual)[lag1]``, ...: a dense block of every unit.
            ``"banded"``: ``"unstructured"`` with the covariances of occasions more than ``order``
            apart held at 0 (Stata ``residuals(banded order, t(time))``).
        t : str or array_like
            The time column, for ``structure="ar1"``, ``"unstructured"``, ``"banded"`` and ``"toeplitz"``.
        order : int, optional
            For ``structure="toeplitz"`` the last lag with a covariance of its own (Stata
            ``residuals(toeplitz order)``; by default every lag the data hold), for ``"banded"`` the
            band (required).
        within : str, optional
            For ``structure="exchangeable"``, ``"unstructured"`` and ``"toeplitz"``: a column whose units, nested
            in the lowest random level, group the residuals (``(1|k)`` with ``within="j"``: blocks
            of ``k:j``). A grouping that carries a random intercept is refused: its variance and
            the residual covariances are confounded.

        Returns
        -------
        MultilevelSEM, or WideSEM for ``structure="unstructured"`` with ``by=``
        """
        if structure == "exchangeable":
            if t is not None:
                raise ValueError('structure="exchangeable" takes no t= (the residuals of a unit are exchangeable)')
            changes = exchangeable_changes(self, within)
            target = level_name(changes["groupings"][-1])
            relaxation = Relaxation("residual covariance", target, "" if by is None else self._label_name(by))
            return self._relaxed(relaxation, by, **changes)
        if order is not None and (structure not in ("toeplitz", "banded") or not isinstance(order, int)
                                  or isinstance(order, bool) or order < 1):
            raise ValueError(f'order= is a positive integer of structure="toeplitz" or "banded", got order={order!r} '
                             f'with structure={structure!r}')
        if structure == "unstructured" and by is not None:
            return unstructured_model(self, t, within, by)
        if structure in ("unstructured", "banded", "toeplitz"):
            if t is None or by is not None:
                raise ValueError(f'structure="{structure}" takes t= (the integer time column) and within= (the '
                                 'residual grouping)' + (", and no by=" if structure != "unstructured" else ""))
            if structure == "banded" and order is None:
                raise ValueError('structure="banded" takes order= (the band: covariances of occasions more than '
                                 'order apart are 0)')
            changes = exchangeable_changes(self, within, "unstructured" if structure == "banded" else structure)
            if structure != "toeplitz":
                check_occasions(self, t, changes["layout"], band=order)
            per = structure if order is None else f"{structure}:{order}"
            relaxation = Relaxation("residual block", level_name(changes["groupings"][-1]), self._label_name(t),
                                    per=per)
            return self._relaxed(relaxation, t, **changes)
        if within is not None and structure != "ar1":
            raise ValueError(f'within= names the residual grouping of structure="exchangeable", "unstructured", '
                             f'"toeplitz" or "ar1", not {structure!r}')
        if structure == "independent":
            if by is None or t is not None:
                raise ValueError('structure="independent" takes by= (the labelling column) and no t=')
            return self._relaxed(Relaxation("residual variance", "Residual", self._label_name(by)), by)
        if structure == "ar1":
            if t is None:
                raise ValueError('structure="ar1" takes t= (the time column), and optionally by= (a label of the '
                                 'lowest units, each with its own residual variance and rho)')
            time = self._label_name(t)
            # the sums by gap serve random intercepts on whole times; every other case takes dense blocks
            if (within is not None or self.plan.level_effects or not self._whole_times(t)
                    or (by is not None and self._varies_in_units(by))):
                return self._ar1_block(t, within, by)
            if by is None:
                return self._relaxed(Relaxation("residual correlation", "Residual", time), t)
            if self._label_name(by) == time:
                raise ValueError(f"t= and by= are both named {time!r}: give the time and the label different names")
            return self._relaxed(Relaxation("residual correlation", "Residual", time, self._label_name(by)), t, by)
        raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")

    def _whole_times(self, t) -> bool:
        """Whether the time column holds whole numbers only (the AR(1) of the recursion's sums by gap)."""
        values = pd.to_numeric(pd.Series(np.asarray(self._label_values(t, self._recipe["frame"],
                                                                        self._recipe["source"]), dtype=object)),
                               errors="coerce").to_numpy(dtype=float)
        return bool(np.all(values[np.isfinite(values)] == np.round(values[np.isfinite(values)])))

    def _varies_in_units(self, by) -> bool:
        """Whether a labelling column varies within the lowest units (a variance per label of the rows)."""
        codes = pd.factorize(self._label_values(by, self._recipe["frame"], self._recipe["source"]))[0]
        return self.layout.per_unit(codes[self.layout.order], len(self.layout.levels) - 1)[1] is not None

    def _ar1_block(self, t, within, by) -> MultilevelSEM:
        """AR(1) residuals as a dense block of every unit of the residual grouping: in any real time (nlme
        ``corCAR1``), within a grouping named by ``within``, and with a variance per label of the rows
        (nlme ``corAR1`` with ``varIdent``)."""
        changes = {} if within is None else exchangeable_changes(self, within, "ar1")
        # within the lowest random level, which keeps its effects, or within a residual grouping without any
        target = level_name(changes["groupings"][-1]) if changes else "Residual"
        model = self._relaxed(Relaxation("residual block", target, self._label_name(t), per="ar1"), t, **changes)
        if by is None:
            return model
        return model._relaxed(Relaxation("residual variance", "Residual", self._label_name(by)), by)

    def relax_slope(self, term: str, by) -> MultilevelSEM:
        """Let the slope of a fixed-effect column differ by a label.

        The new model has ``x[pub]``, ``x[prv]``, ... in place of ``x`` (``x:C(type)`` in long
        form, with no main effect of the label: add ``C(type)`` to the formula for that).
        """
        return self._relaxed(Relaxation("slope", term, self._label_name(by)), by)

    def relax_intercept(self, by) -> MultilevelSEM:
        """Let the intercept differ by a label: ``_cons@c`` becomes one intercept per label.

        The new model has ``Intercept[pub]``, ``Intercept[prv]``, ... in place of ``Intercept``:
        ``y ~ 0 + C(type) + x`` in long form.
        """
        return self._relaxed(Relaxation("intercept", "Intercept", self._label_name(by)), by)

    def relax_covariance(self, level: str, by, *, among=None, equal: bool = False) -> MultilevelSEM:
        """Correlate the random intercepts of sibling units of a level (units with one parent), by a label.

        The article's correlated effects of the northern counties: in the wide form the latents
        of the level's units are keyed by ``by`` (``J_north1``, ``J_north2``, ``J_south1``) and
        the covariance of two siblings whose labels are in one group of ``among`` is freed,
        ``cov(k:j)[north1,north2]`` for every pair of keyed slots, or one ``cov(k:j)[north]``
        per group with ``equal=True``. Every parent then carries its children's effects as one
        vector with a dense covariance, evaluated in the recursion (:mod:`sm_multisem.engine.siblings`),
        so the model fits at the scale of the nested one.

        Parameters
        ----------
        level : str
            A level below the top (``"k:j"``); its siblings are the units inside one unit of the
            level above.
        by : str or array_like
            The labelling column (or one label per input row), constant within the level's units.
            A variance of the level relaxed by a label keys the slots by that label, so the
            covariances take the same one.
        among : str, sequence, or None
            Groups of labels whose siblings are correlated (``["north"]``; ``[["north", "south"]]``
            to correlate across labels too); by default every label is its own group.
        equal : bool
            One covariance per group instead of one per pair of keyed slots.

        Returns
        -------
        MultilevelSEM
            With ``cov(k:j)[a,b]`` (or ``cov(k:j)[group]``) after the level's variances.

        Raises
        ------
        ValueError
            Before fitting, for a request the data cannot identify: the top level; a labelling
            column that varies inside the units; a label of ``among`` that is not a label of
            the level; no two siblings of one group in any parent; every pair of siblings in
            the data correlated (then their covariance is confounded with the parent's variance).
        """
        from .spec.pairs import normalized_among

        name = self._label_name(by)
        keying_relaxation(self, level, name, residual=False)  # residual covariances: relax_residual_covariance
        return self._relaxed(Relaxation("covariance", level, name, among=normalized_among(among), equal=equal), by)

    def relax_residual_covariance(self, by, *, among=None, equal: bool = False, start_params=None):
        """Correlate the residuals of observations of one lowest unit, by a row-level label.

        The article's correlated errors of the public schools: the observations' slots are keyed
        by ``by`` (``y_pub1``, ``y_pub2``, ``y_prv1``) and the residual covariance of two
        observations of one unit whose labels are in one group of ``among`` is freed,
        ``cov(Residual)[pub1,pub2]``, or one ``cov(Residual)[pub]`` per group with ``equal=True``.
        See :func:`sm_multisem.correlate.relax_covariances`.

        Parameters
        ----------
        by : str or array_like
            The row-level labelling column (or one label per input row).
        among, equal, start_params
            As for :meth:`relax_covariance`.

        Returns
        -------
        WideSEM
        """
        from .correlate import RESIDUAL, Covariances, relax_covariances

        return relax_covariances(self, Covariances(RESIDUAL, by, among, equal), start_params=start_params)

    @staticmethod
    def _label_values(by, frame, source: ModelData) -> np.ndarray:
        """The values of a labelling column (its name in ``frame``, or one value per input row) on the rows used.

        A pandas Series is aligned on the data's index, as statsmodels aligns its inputs: reordered, it
        labels the same rows; an index that does not hold the data's rows once each is refused.
        """
        if isinstance(by, str):
            if frame is None or by not in frame.columns:
                where = "the data" if frame is not None else "a model built from arrays (pass the labels)"
                raise ValueError(f"labelling column {by!r} is not in {where}")
            return frame[by].to_numpy()[source.rows_used]
        if isinstance(by, pd.Series) and frame is not None and not by.index.equals(frame.index):
            same_rows = (not by.index.has_duplicates and not frame.index.has_duplicates and len(by) == len(frame)
                         and by.index.isin(frame.index).all())
            if not same_rows:
                raise ValueError(f"the Series {by.name!r} is aligned on the data's index, and its index does not "
                                 "hold the data's rows once each; pass a Series on the data's index, or an array "
                                 "in the data's row order")
            by = by.reindex(frame.index)
        values = np.asarray(by, dtype=object)
        if values.shape != source.rows_used.shape:
            raise ValueError(f"labels have shape {values.shape}; give one label per input row "
                             f"({len(source.rows_used):,})")
        return values[source.rows_used]

    def _label_name(self, by) -> str:
        return by if isinstance(by, str) else str(getattr(by, "name", None) or "label")

    def _relaxed(self, relaxation: Relaxation, by, per=None, **changes) -> MultilevelSEM:
        """The model with one more relaxation; ``by`` and ``per`` are the values of its columns
        ``relaxation.by`` and ``relaxation.per``; ``changes`` replace parts of the recipe (the
        source and groupings of a new residual grouping)."""
        recipe = {**self._recipe, **changes}
        if any((r.kind, r.target) == (relaxation.kind, relaxation.target) for r in recipe["relaxations"]):
            raise ValueError(f"the {relaxation.kind} of {relaxation.target} is already relaxed")
        if any(r.kind == "residual covariance" for r in recipe["relaxations"]) and relaxation.kind in RESIDUAL_KINDS:
            raise ValueError("the residuals are exchangeable already; their variances differ by label through "
                             "relax_residuals(structure='exchangeable', by=...)")
        kinds = {r.kind for r in recipe["relaxations"]} | {relaxation.kind}
        if {"residual variance", "residual correlation"} <= kinds:
            # each AR(1) variance needs its own rho, and one rho per variance is by= of the AR(1) structure
            raise ValueError("AR(1) residuals take a residual variance (and a rho) per label through "
                             "relax_residuals(structure='ar1', t=..., by=...), not with relax_residuals(by=...)")
        source: ModelData = recipe["source"]
        columns = dict(recipe["label_columns"])
        timed = relaxation.kind in ("residual correlation", "residual block")  # its column holds times
        for name, values, is_time in ((relaxation.by, by, timed),
                                      (relaxation.per, per, False)):
            if values is not None:
                values = self._label_values(values, recipe["frame"], source)
                if is_time:
                    columns[time_key(name)] = values
                else:
                    columns[name] = LabelColumn.of(values, name)
        recipe["relaxations"] = recipe["relaxations"] + (relaxation,)
        recipe["label_columns"] = columns
        model = type(self).__new__(type(self))
        model._build(recipe.pop("source"), recipe.pop("groupings"), **recipe)
        return model
