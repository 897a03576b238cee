"""Design matrices and the accounting of rows used and dropped.

The fixed part of a formula goes through statsmodels' formula engine (patsy by
default) exactly as in ``smf.ols``; rows it cannot use, and rows with a missing
grouping id, are dropped here and counted by reason, never silently.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from statsmodels.formula._manager import FormulaManager, NAAction

from .formula import ParsedFormula
from .layout import WideLayout

__all__ = ["EffectColumns", "ModelData", "RowAccounting", "check_columns", "cluster_weights", "data_from_arrays",
           "data_from_formula", "design_of_new_rows", "effect_values_of_new_rows", "sampling_weights"]


@dataclass(frozen=True)
class RowAccounting:
    """How many input rows were used, and why the others were not.

    Attributes
    ----------
    n_input : int
        Rows in the data given.
    n_used : int
        Rows that enter the likelihood.
    dropped : dict
        Reason -> number of rows; every dropped row is counted once, under the first
        reason that applies (outcome, then covariates, then ids).
    """

    n_input: int
    n_used: int
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def n_dropped(self) -> int:
        return self.n_input - self.n_used

    def describe(self) -> str:
        """One line for a summary: ``400 of 412 rows used; dropped 12 (missing x: 12)``."""
        text = f"{self.n_used:,} of {self.n_input:,} rows used"
        if self.dropped:
            reasons = ", ".join(f"{reason}: {count:,}" for reason, count in self.dropped.items())
            text += f"; dropped {self.n_dropped:,} ({reasons})"
        return text


@dataclass(frozen=True)
class EffectColumns:
    """The columns random effects load on, built by the formula engine from every random term.

    Attributes
    ----------
    values : ndarray, shape (n_used, u)
        The columns of every distinct name, the intercept's ones first.
    names : tuple of str
        Their names as the formula engine gives them (``Intercept``, ``x``, ``type[pub]``).
    of_term : tuple of tuple of str
        For every random term, in the order written, the names of its effect columns.
    designs : dict
        The one-sided formula of every term -> the formula engine's description of its columns
        (for the columns of new rows); empty after unpickling, as :attr:`ModelData.design`.
    """

    values: np.ndarray
    names: tuple[str, ...]
    of_term: tuple[tuple[str, ...], ...]
    designs: dict = field(default_factory=dict)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "designs": {}}

    def of_names(self, names) -> np.ndarray:
        """The columns ``names``, (n_used, len(names))."""
        return self.values[:, [self.names.index(name) for name in names]]


@dataclass(frozen=True)
class ModelData:
    """Outcome, fixed-effect design and ids of the rows used, in input order.

    Attributes
    ----------
    endog : ndarray
    exog : ndarray
    exog_names : list of str
    ids : DataFrame
        One column per id column named in the random terms.
    rows_used : ndarray of bool
        Which input rows are used (by position).
    row_labels : pandas.Index
        Index labels (in the input data) of the rows used.
    accounting : RowAccounting
    endog_name : str
    design : patsy DesignInfo or formulaic ModelSpec, optional
        The formula engine's description of the fixed part, which builds the design of new
        rows as it built this one (categorical levels, the state of transforms such as
        ``center(x)``); None for data given as arrays.
    effects : EffectColumns, optional
        The columns of random effects other than intercepts (random slopes, ``0 + type``);
        None when every random effect is an intercept.
    """

    endog: np.ndarray
    exog: np.ndarray
    exog_names: list[str]
    ids: pd.DataFrame
    rows_used: np.ndarray
    row_labels: pd.Index
    accounting: RowAccounting
    endog_name: str
    design: object | None = None
    effects: EffectColumns | None = None

    def __getstate__(self) -> dict:
        # patsy cannot pickle its description of a design; the model rebuilds it from its data
        return {**self.__dict__, "design": None}


def _missing_ids(ids: pd.DataFrame) -> pd.Series:
    return ids.isna().any(axis=1)


def _check_finite(
    endog: np.ndarray, exog: np.ndarray, endog_name: str, exog_names: list[str], ids: pd.DataFrame,
    labels: pd.Index,
) -> None:
    """Refuse infinite values in the rows used: outcome, covariates and numeric ids."""
    numeric_ids = [(name, ids[name].to_numpy()) for name in ids.columns if pd.api.types.is_float_dtype(ids[name])]
    for name, column in [(endog_name, endog), *zip(exog_names, exog.T), *numeric_ids]:
        bad = ~np.isfinite(column)
        if bad.any():
            raise ValueError(
                f"column {name!r} has {bad.sum():,} infinite value(s) (first in row "
                f"{labels[int(np.flatnonzero(bad)[0])]!r}); remove or recode them"
            )


def _near_miss(name: str, columns) -> str:
    close = [c for c in map(str, columns) if c.lower() == name.lower() and c != name]
    return f"; did you mean {close[0]!r}?" if close else ""


def check_columns(data: pd.DataFrame, names, what: str, where: str = "the data") -> None:
    """Refuse a frame without one of the named columns, suggesting a near miss in case."""
    for name in names:
        if name not in data.columns:
            raise ValueError(f"{what} {name!r} is not a column of {where}{_near_miss(name, data.columns)}")


class _DropMissing(NAAction):
    """statsmodels' "drop" action for patsy, but the arrays pass as they are when no value is missing.

    The drop copies every array through a boolean mask even when it keeps every row (11 ms of a
    500,000-row design); data without missing values are the common case.
    """

    def is_categorical_NA(self, obj) -> bool:
        """patsy's test, value by value, of a categorical factor (``C(type)`` reads every row through it):
        text and integers are never missing, and answered without patsy's general NaN check."""
        if isinstance(obj, (str, int)):
            return False
        return super().is_categorical_NA(obj)

    def _handle_NA_drop(self, values, is_nas, origins):
        if any(np.any(is_na) for is_na in is_nas):
            return super()._handle_NA_drop(values, is_nas, origins)
        self.missing_mask = np.zeros(is_nas[0].shape[0], dtype=bool)
        return values


def _matrices(manager: FormulaManager, formula, data: pd.DataFrame, text: str, where: str,
              what: str = "the fixed part", **options):
    """The formula engine's matrices, rows with a missing value dropped; its errors as ValueErrors.

    ``text`` is the formula as the messages show it, ``what`` what they call it; a name the
    engine could not find is named, with a near miss among the columns of ``data``.
    """
    try:
        drop = _DropMissing(on_NA="drop", NA_types=["None", "NaN"]) if manager.engine == "patsy" else "drop"
        return manager.get_matrices(formula, data, pandas=True, na_action=drop, **options)
    except Exception as err:  # the formula engine's own errors name the problem; keep its text
        keywords = [c for c in _referenced(data.columns, text) if keyword.iskeyword(c)]
        if "SyntaxError" in str(err) and keywords:
            raise ValueError(f"column {keywords[0]!r} in {text!r} is a Python keyword, which the formula engine "
                             f"cannot read as a name: write Q({keywords[0]!r}) in the formula") from None
        unknown = re.search(r"name '([^']+)' is not defined", str(err))
        if unknown:
            name = unknown.group(1)
            raise ValueError(f"{name!r} in {text!r} is neither a column of {where} nor a defined name"
                             f"{_near_miss(name, data.columns)}") from None
        raise ValueError(f"cannot build {what} {text!r} from {where}: {err}") from None


def data_from_formula(parsed: ParsedFormula, data: pd.DataFrame, eval_env: int = 0) -> ModelData:
    """Evaluate the fixed part with statsmodels' formula engine and collect ids.

    Parameters
    ----------
    parsed : ParsedFormula
    data : DataFrame
    eval_env : int
        Passed to the formula engine (how many frames up to look for names that
        are not columns).
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("data has no rows")
    if isinstance(data.columns, pd.MultiIndex):
        raise ValueError("data has MultiIndex columns, which a formula cannot name; flatten them first, e.g. "
                         "data.columns = ['_'.join(map(str, c)) for c in data.columns]")
    text = " ".join([parsed.fixed] + [term.effects for term in parsed.terms] + list(parsed.columns))
    used = _referenced(data.columns, text)
    repeated = [c for c in dict.fromkeys(data.columns[data.columns.duplicated()]) if c in used]
    if repeated:
        raise ValueError(f"the data have two or more columns named {repeated[0]!r}; the formula cannot tell them "
                         "apart: rename or drop the copies")
    if "Residual" in parsed.columns:
        raise ValueError("a grouping column named 'Residual' would share its name with the residuals "
                         "(var(Residual)); rename the column")
    check_columns(data, parsed.columns, "grouping factor")
    if re.fullmatch(r"\w+", parsed.outcome):  # a transform such as log(y) is left to the formula engine
        check_columns(data, [parsed.outcome], "outcome")
    if parsed.outcome in data.columns and not pd.api.types.is_numeric_dtype(data[parsed.outcome]):
        raise ValueError(f"outcome {parsed.outcome!r} is not numeric (dtype {data[parsed.outcome].dtype})")

    labels = data.index
    data = data.reset_index(drop=True)  # rows by position: the index may repeat labels
    ids_all = data[list(parsed.columns)]
    data = _as_numpy_columns(data, parsed)
    data = _text_as_categories(data, parsed)
    manager = FormulaManager()
    endog, exog = _matrices(manager, parsed.fixed, data, parsed.fixed, "the data", eval_env=eval_env + 2)
    if endog.shape[1] != 1:
        raise ValueError(
            f"outcome {parsed.outcome!r} gives {endog.shape[1]} columns ({', '.join(map(str, endog.columns))}); "
            "the outcome must be one numeric column"
        )
    if exog.shape[1] == 0:
        raise ValueError(f"the fixed part {parsed.fixed!r} has no columns")

    rows = np.zeros(len(data), dtype=bool)
    rows[endog.index.to_numpy()] = True  # the formula engine kept these (positions: the index was reset)
    rows &= ~_missing_ids(ids_all).to_numpy()
    effect_frames = _effect_frames(parsed, data, eval_env + 2)
    for frame, _ in effect_frames.values():
        rows &= np.isin(np.arange(len(data)), frame.index.to_numpy())
    if rows.all():  # nothing dropped: the frames are used as they are, without gathering a copy
        dropped: dict[str, int] = {}
        endog_used, exog_used, used_labels, ids_used = endog.iloc[:, 0], exog, labels, ids_all
    else:
        dropped = _dropped_reasons(data, parsed, pd.Series(~rows))
        used = data.index[rows]
        endog_used, exog_used, used_labels = endog.loc[used].iloc[:, 0], exog.loc[used], labels[rows]
        ids_used = ids_all.loc[used].reset_index(drop=True)
        effect_frames = {text: (frame.loc[used], info) for text, (frame, info) in effect_frames.items()}
    endog_used, exog_used = endog_used.to_numpy(dtype=float), exog_used.to_numpy(dtype=float)
    names = list(exog.columns)
    _check_finite(endog_used, exog_used, parsed.outcome, names, ids_used, used_labels)
    if len(endog_used) == 0:
        raise ValueError(f"no row of the data has the outcome, covariates and ids all present ({dropped})")
    effects = _effect_columns(parsed, effect_frames, len(endog_used))
    if effects is not None:
        _check_finite(effects.values[:, 0], effects.values[:, 1:], "Intercept", list(effects.names[1:]), ids_used[[]],
                      used_labels)
    return ModelData(
        endog=endog_used,
        exog=exog_used,
        exog_names=names,
        ids=ids_used,
        rows_used=rows,
        row_labels=used_labels,
        accounting=RowAccounting(len(data), int(rows.sum()), dropped),
        endog_name=parsed.outcome,
        design=manager.spec,
        effects=effects,
    )


def _effect_frames(parsed: ParsedFormula, data: pd.DataFrame, eval_env: int) -> dict[str, tuple]:
    """The formula engine's columns of every distinct random-effects formula beyond an intercept
    (``"1 + x"``, ``"0 + type"``), rows with a missing value dropped: formula -> (frame, description)."""
    frames = {}
    for term in parsed.terms:
        if term.design in frames or term.design == "1":
            continue
        manager = FormulaManager()
        frame = _matrices(manager, term.design, data, term.effects, "the data",
                          what=f"the random effects of {term.text}", eval_env=eval_env)
        frames[term.design] = (frame, manager.spec)
    return frames


def _effect_columns(parsed: ParsedFormula, frames: dict[str, tuple], n_used: int) -> EffectColumns | None:
    """The columns of the random effects, by name (the intercept's ones first), or None: intercepts only."""
    if not parsed.has_slopes:
        return None
    columns: dict[str, np.ndarray] = {"Intercept": np.ones(n_used)}
    of_term = []
    for term in parsed.terms:
        if term.design == "1":
            of_term.append(("Intercept",))
            continue
        frame = frames[term.design][0]
        if not term.intercept and "Intercept" in map(str, frame.columns):
            raise ValueError(f"the random effects of {term.text} hold a column named 'Intercept', the name of the "
                             "random intercept's column of ones; rename that column of the data")
        for name in frame.columns:
            columns.setdefault(str(name), frame[name].to_numpy(dtype=float))
        of_term.append(tuple(map(str, frame.columns)))
    return EffectColumns(np.column_stack(list(columns.values())), tuple(columns), tuple(of_term),
                         {text: info for text, (_, info) in frames.items()})


def design_of_new_rows(model_data: ModelData, frame: pd.DataFrame) -> np.ndarray:
    """The fixed-effect design of new rows, built as the design of ``model_data`` was.

    Parameters
    ----------
    model_data : ModelData
        With a formula, its :attr:`~ModelData.design` is applied to ``frame`` (the columns
        the fixed part names); without one, ``frame`` holds the design's columns by name.
    frame : DataFrame
        The new rows; the outcome is not needed.

    Returns
    -------
    ndarray, shape (len(frame), len(model_data.exog_names))
        Rows with a missing value are NaN.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"new rows must be a pandas DataFrame, got {type(frame).__name__}")
    if model_data.design is None:
        check_columns(frame, model_data.exog_names, "design column", "exog")
        return frame[model_data.exog_names].to_numpy(dtype=float)
    manager = FormulaManager()
    rows = frame.reset_index(drop=True)  # by position: the index may repeat labels
    fixed = f"{model_data.endog_name} ~ {manager.get_description(model_data.design)}"
    design = _matrices(manager, model_data.design, rows, fixed, "exog", prediction=True)
    # rows dropped for a missing value come back as NaN, in place
    return design.reindex(rows.index).to_numpy(dtype=float)


def effect_values_of_new_rows(model_data: ModelData, frame: pd.DataFrame) -> np.ndarray:
    """The effect columns of new rows (as :attr:`EffectColumns.values`), built as the fit's were.

    Rows with a missing value are NaN.
    """
    effects = model_data.effects
    if not effects.designs:
        raise ValueError("the random effects' columns of new rows cannot be built once the model was pickled "
                         "(the formula engine's description of them is not kept); refit it to predict new rows")
    out = np.full((len(frame), len(effects.names)), np.nan)
    out[:, 0] = 1.0
    rows = frame.reset_index(drop=True)
    for text, design in effects.designs.items():
        manager = FormulaManager()
        columns = _matrices(manager, design, rows, text, "exog", what="the random effects", prediction=True)
        columns = columns.reindex(rows.index)
        for name in columns.columns:
            out[:, effects.names.index(str(name))] = columns[name].to_numpy(dtype=float)
    return out


def _referenced(columns, text: str) -> list[str]:
    """The columns whose names appear in ``text`` as whole names."""
    return [c for c in map(str, columns) if re.search(rf"(?<![\w.]){re.escape(c)}(?![\w.])", text)]


def _as_numpy_columns(data: pd.DataFrame, parsed: ParsedFormula) -> pd.DataFrame:
    """``data`` with the nullable columns (``Int64``, ``Float64``, ``boolean``) the formula's fixed and random
    parts name as their NumPy equivalents, ``pd.NA`` as a missing value the formula engine understands.

    The formula engine tests values with ``bool()``, which ``pd.NA`` refuses; a ``boolean`` column it does
    not read at all. Numbers become floats with NaN; booleans stay booleans (``x[T.True]``), with None
    where missing. Id columns keep their type: they are read as codes.
    """
    text = " ".join([parsed.fixed] + [term.effects for term in parsed.terms])
    nullable = [c for c in _referenced(data.columns, text)
                if isinstance(data[c].dtype, pd.api.extensions.ExtensionDtype) and data[c].dtype.kind in "iufb"]
    converted = {}
    for c in nullable:
        column = data[c]
        if column.dtype.kind == "b":
            converted[c] = (column.to_numpy(dtype=bool) if not column.isna().any()
                            else column.astype(object).where(column.notna(), None).to_numpy())
        else:
            converted[c] = column.to_numpy(dtype=float, na_value=np.nan)
    return data.assign(**converted) if converted else data


def _text_as_categories(data: pd.DataFrame, parsed: ParsedFormula) -> pd.DataFrame:
    """``data`` with the text columns the formula names as pandas categoricals, of the same sorted levels.

    The formula engine reads a text column value by value (a Python call per row to test for a
    missing value); a categorical it reads by its codes, several times faster, to the same columns.
    """
    text = " ".join([parsed.fixed.split("~", 1)[1]] + [term.effects for term in parsed.terms])
    strings = [c for c in _referenced(data.columns, text)
               if pd.api.types.is_object_dtype(data[c]) or pd.api.types.is_string_dtype(data[c])]
    if not strings:
        return data
    return data.assign(**{c: data[c].astype("category") for c in strings})


def _dropped_reasons(data: pd.DataFrame, parsed: ParsedFormula, dropped: pd.Series) -> dict[str, int]:
    """Attribute each dropped row to the first column that explains it."""
    remaining = dropped.copy()
    reasons: dict[str, int] = {}
    def referenced(text: str) -> list[str]:
        return _referenced(data.columns, text)

    covariates = [c for c in referenced(parsed.fixed.split("~", 1)[1]) if c != parsed.outcome]
    candidates = [("outcome", parsed.outcome)] if parsed.outcome in data.columns else []
    candidates += [("covariate", c) for c in covariates]
    effects = " + ".join(term.effects for term in parsed.terms)
    candidates += [("random-effect column", c) for c in referenced(effects) if c not in covariates]
    candidates += [("id", c) for c in parsed.columns]
    for kind, column in candidates:
        hit = remaining & data[column].isna()
        if hit.any():
            reasons[f"missing {kind} {column}"] = int(hit.sum())
            remaining &= ~hit
    if remaining.any():
        reasons["missing value in a term of the fixed part"] = int(remaining.sum())
    return reasons


def data_from_arrays(endog, exog, groups, group_names=None) -> ModelData:
    """Collect arrays given without a formula; rows with a missing value are dropped and counted.

    Parameters
    ----------
    endog : array_like, shape (n,)
    exog : array_like, shape (n, p)
        Include a column of ones for an intercept (see ``statsmodels.api.add_constant``).
    groups : sequence of array_like, or DataFrame
        One id array per grouping level, top level first.
    group_names : sequence of str, optional
        Names of the levels; taken from ``groups`` when it is a DataFrame or a list of
        named Series, ``group0, group1, ...`` otherwise.
    """
    if isinstance(endog, pd.DataFrame) and endog.shape[1] == 1:
        endog = endog.iloc[:, 0]
    if not isinstance(endog, pd.Series):
        endog = np.asarray(endog)
        if endog.ndim == 2 and endog.shape[1] == 1:
            endog = endog[:, 0]
        if endog.ndim != 1:
            raise ValueError(f"endog must be one-dimensional, got shape {endog.shape}")
    endog_s = pd.Series(endog) if not isinstance(endog, pd.Series) else endog.reset_index(drop=True)
    endog_name = str(endog.name) if getattr(endog, "name", None) is not None else "y"
    if not isinstance(exog, pd.DataFrame) and np.ndim(exog) not in (1, 2):
        raise ValueError(f"exog must be one- or two-dimensional, got shape {np.shape(exog)}")
    exog_df = pd.DataFrame(exog) if not isinstance(exog, pd.DataFrame) else exog.reset_index(drop=True)
    if exog_df.shape[1] == 1 and not isinstance(exog, pd.DataFrame) and np.ndim(exog) == 1:
        exog_df.columns = ["x1"]
    elif not isinstance(exog, pd.DataFrame):
        exog_df.columns = [f"x{i + 1}" for i in range(exog_df.shape[1])]
    if len(exog_df) != len(endog_s):
        raise ValueError(f"exog has {len(exog_df):,} rows but endog has {len(endog_s):,}")
    if isinstance(groups, pd.DataFrame):
        ids = groups.reset_index(drop=True)
    else:
        if isinstance(groups, pd.Series):
            groups = [groups]
        groups = list(groups) if not isinstance(groups, np.ndarray) or groups.ndim == 1 else list(groups.T)
        if groups and np.ndim(groups[0]) == 0:
            groups = [groups]
        names = list(group_names) if group_names is not None else [
            str(g.name) if getattr(g, "name", None) is not None else f"group{i}" for i, g in enumerate(groups)
        ]
        if len(names) != len(groups):
            raise ValueError(f"group_names has {len(names)} name(s) for {len(groups)} id array(s) in groups")
        for name, g in zip(names, groups):
            if np.ndim(g) != 1:
                raise ValueError(f"id array {name!r} in groups must be one-dimensional, got shape {np.shape(g)}")
            if len(g) != len(endog_s):
                raise ValueError(f"id array {name!r} in groups has {len(g):,} rows but endog has {len(endog_s):,}")
        ids = pd.DataFrame({i: (g.reset_index(drop=True) if isinstance(g, pd.Series) else np.asarray(g))
                            for i, g in enumerate(groups)})
        ids.columns = names
    if group_names is not None:
        if len(group_names) != ids.shape[1]:
            raise ValueError(f"group_names has {len(group_names)} name(s) for {ids.shape[1]} id column(s) in groups")
        ids.columns = list(group_names)
    if ids.shape[1] == 0:
        raise ValueError("groups is empty; give one id array per grouping level")
    repeated = sorted({str(c) for c in ids.columns if list(ids.columns).count(c) > 1})
    if repeated:
        raise ValueError(f"grouping level name(s) {repeated} appear more than once; give distinct group_names")
    n = len(endog_s)
    if len(ids) != n:
        raise ValueError(f"groups has {len(ids):,} rows but endog has {n:,}")
    if not pd.api.types.is_numeric_dtype(endog_s):
        raise ValueError(f"endog is not numeric (dtype {endog_s.dtype})")
    for column in exog_df.columns:
        if not pd.api.types.is_numeric_dtype(exog_df[column]) and pd.api.types.infer_dtype(
            exog_df[column], skipna=True
        ) not in ("floating", "integer", "mixed-integer-float", "decimal", "boolean", "empty"):
            raise ValueError(f"exog column {column!r} is not numeric (dtype {exog_df[column].dtype})")
    reasons: dict[str, int] = {}
    remaining = pd.Series(False, index=range(n))
    for label, miss in [(f"missing outcome {endog_name}", endog_s.isna()),
                        *[(f"missing covariate {c}", exog_df[c].isna()) for c in exog_df.columns],
                        *[(f"missing id {c}", ids[c].isna()) for c in ids.columns]]:
        hit = miss & ~remaining
        if hit.any():
            reasons[label] = int(hit.sum())
            remaining |= hit
    used = ~remaining.to_numpy()
    if not used.any():
        raise ValueError(f"no row has the outcome, covariates and ids all present ({reasons})")
    endog_used = endog_s[used].to_numpy(dtype=float)
    exog_used = exog_df[used].to_numpy(dtype=float)
    names = [str(c) for c in exog_df.columns]
    labels = pd.RangeIndex(n)[used]
    ids_used = ids[used].reset_index(drop=True)
    _check_finite(endog_used, exog_used, endog_name, names, ids_used, labels)
    return ModelData(
        endog=endog_used,
        exog=exog_used,
        exog_names=names,
        ids=ids_used,
        rows_used=used,
        row_labels=labels,
        accounting=RowAccounting(n, int(used.sum()), reasons),
        endog_name=endog_name,
    )


def sampling_weights(weights, frame, model_data: ModelData) -> np.ndarray | None:
    """Sampling weights of the rows used (a column of ``frame``, or one value per input row)."""
    if weights is None:
        return None
    if isinstance(weights, str):
        if frame is None or weights not in frame.columns:
            raise ValueError(f"weights column {weights!r} is not a column of the data")
        weights = frame[weights]
    values = pd.to_numeric(pd.Series(np.asarray(weights)), errors="coerce").to_numpy(dtype=float)
    if values.shape != model_data.rows_used.shape:
        raise ValueError(f"weights has {len(values):,} values; give one per input row ({len(model_data.rows_used):,})")
    values = values[model_data.rows_used]
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError("weights must be positive and finite in every row used")
    return values


def cluster_weights(row_weights: np.ndarray, layout: WideLayout) -> np.ndarray:
    """One weight per top-level cluster; refuses weights that vary inside a cluster."""
    per_cluster, varies = layout.per_unit(row_weights[layout.order], 0)
    if varies is not None:
        top = layout.level_names[0]
        raise ValueError(f"weights vary within units of {top!r}: sampling weights belong to the top-level "
                         f"clusters (one {top} unit is one row of the wide model)")
    return per_cluster
