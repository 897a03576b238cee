"""The parameter table written as a Stata ``sem`` command and as lavaan model syntax."""

from __future__ import annotations

import itertools
import textwrap

import pandas as pd

from ..spec.spec import ParameterTable, power_constraints

__all__ = ["to_lavaan", "to_stata", "to_stata_wide"]


def _wrap(items: list[str], indent: str, width: int = 76) -> list[str]:
    return textwrap.wrap(" ".join(items), width=width, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False)


def to_stata(table: ParameterTable, expanded: pd.DataFrame, balanced: bool) -> str:
    """A Stata ``sem`` command for the wide data (one ``///``-continued statement).

    Parameters
    ----------
    table : ParameterTable
    expanded : DataFrame
        ``table.expand(layout)``.
    balanced : bool
        Without missing positions ``method(ml)`` suffices; otherwise ``method(mlmv)``
        (full-information ML) is requested.

    Raises
    ------
    NotImplementedError
        For AR(1) residuals: their covariances ``S_e * rho^d`` are a nonlinear constraint,
        and ``sem`` constrains parameters only linearly.
    """
    if (expanded["op"] == "==").any():
        raise NotImplementedError(
            "AR(1) residuals make the residual covariance of positions d time steps apart S_e * rho^d, a "
            "nonlinear constraint that Stata sem cannot express (its constraints are linear); fit the long data "
            "with mixed, residuals(ar 1, t(time)), or the wide model with to_lavaan()"
        )
    return _stata_command(expanded, balanced, observed_exogenous=bool(table.covariates))


def to_stata_wide(expanded: pd.DataFrame, balanced: bool) -> str:
    """A Stata ``sem`` command for any linear wide model (a :class:`~sm_multisem.wide_model.WideSEM`'s table).

    Variables that only have a mean and covariances and are regressors elsewhere (covariates
    modelled jointly) are Stata's observed exogenous variables, whose means, variances and
    covariances ``sem`` estimates by default: their rows are left out. Free covariances are
    written in ``cov()``; where effects are correlated, the zero covariances of the others are
    written out in place of ``covstruct(_lexog, diagonal)``.
    """
    regressors = set(expanded.loc[expanded["op"] == "~", "rhs"])
    exogenous = regressors - set(expanded.loc[expanded["op"] == "~", "lhs"])
    own = ~(expanded["lhs"].isin(exogenous) & expanded["op"].isin(["~1", "~~"]))
    return _stata_command(expanded[own], balanced, observed_exogenous=bool(exogenous))


#: The longest name Stata takes, for a variable or a parameter's label.
STATA_NAME_LENGTH = 32


def _stata_command(expanded: pd.DataFrame, balanced: bool, observed_exogenous: bool) -> str:
    names = pd.concat([expanded["lhs"], expanded["rhs"], expanded["label"]]).dropna().astype(str)
    too_long = names[names.str.len() > STATA_NAME_LENGTH]
    if len(too_long):
        name = too_long.iloc[0]
        raise ValueError(f"the wide model's name {name!r} has {len(name)} characters; Stata takes at most "
                         f"{STATA_NAME_LENGTH}: rename the column (or label) it is made from, shorter by "
                         f"{len(name) - STATA_NAME_LENGTH} at least")
    equations = []
    loadings = expanded[expanded["op"] == "=~"]
    for y, rows in expanded[expanded["op"].isin(["~", "~1"])].groupby("lhs", sort=False):
        terms = [f"{r.rhs}@{r.label}" for r in rows.itertuples() if r.op == "~"]
        has_constant = (rows["op"] == "~1").any()
        if has_constant:
            terms.append(f"_cons@{rows.loc[rows['op'] == '~1', 'label'].iloc[0]}")
        terms += [f"{latent}@1" for latent in loadings.loc[loadings["rhs"] == y, "lhs"]]
        equations.append(f"({y} <- {' '.join(terms)}{'' if has_constant else ', noconstant'})")
    variances = expanded[(expanded["op"] == "~~") & (expanded["lhs"] == expanded["rhs"])]
    observed = set(expanded.loc[expanded["op"].isin(["~", "~1"]), "lhs"])
    cov_items = [f"{'e.' if v.lhs in observed else ''}{v.lhs}@{v.label}" for v in variances.itertuples()]
    covariances = expanded[(expanded["op"] == "~~") & (expanded["lhs"] != expanded["rhs"])]
    free = covariances[covariances["free"]]

    def term(name: str) -> str:
        return f"e.{name}" if name in observed else name

    cov_items += [f"{term(c.lhs)}*{term(c.rhs)}@{c.label}" for c in free.itertuples()]
    latent_free = free["lhs"].map(lambda name: name not in observed).any()
    options = []
    if latent_free:  # some effects correlate: the others' zero covariances are written out
        cov_items += [f"{c.lhs}*{c.rhs}@{c.value:g}" for c in covariances[~covariances["free"]].itertuples()]
    else:
        options.append("covstruct(_lexog, diagonal)")
    lines = ["sem " + equations[0] + " ///"] + [f"    {eq} ///" for eq in equations[1:]]
    if observed_exogenous:
        options.append("cov(_lexog*_oexog@0)")
    options.append(f"method({'ml' if balanced else 'mlmv'})")
    lines.append("    , " + " ".join(options) + " ///")
    cov_lines = _wrap(cov_items, "      ")
    cov_lines[0] = "    cov(" + cov_lines[0].lstrip()
    cov_lines[-1] += ")"
    lines += [line + " ///" for line in cov_lines[:-1]] + [cov_lines[-1]]
    return "\n".join(lines)


def to_lavaan(expanded: pd.DataFrame) -> str:
    """lavaan model syntax; shared labels are equality constraints.

    Fit it to the wide data with ``sem(model, data = wide, missing = "ml", fixed.x = TRUE)``.
    A multi-group table (a first column ``group``) is written once, a parameter that differs
    between groups with one label per group (``c(S_k_north, S_k_south)*K``): fit it with
    ``group = "<labelling column>"`` as well.
    """
    if "group" in expanded.columns:
        return _multi_group_lavaan(expanded)
    blocks = ["# regressions: equal labels are equality constraints"]
    for y, rows in expanded[expanded["op"].isin(["~", "~1"])].groupby("lhs", sort=False):
        terms = [f"{r.label}*{r.rhs}" if r.op == "~" else f"{r.label}*1" for r in rows.itertuples()]
        blocks.append(f"{y} ~ {' + '.join(terms)}")
    blocks.append("# random effects: latent variables with loadings fixed at 1")
    for latent, rows in expanded[expanded["op"] == "=~"].groupby("lhs", sort=False):
        blocks += _wrap_formula(f"{latent} =~ ", [f"1*{y}" for y in rows["rhs"]])
    blocks.append("# variances")
    variances = expanded[(expanded["op"] == "~~") & (expanded["lhs"] == expanded["rhs"])]
    blocks += [f"{v.lhs} ~~ {v.label}*{v.rhs}" for v in variances.itertuples()]
    zero = expanded[(expanded["op"] == "~~") & (expanded["lhs"] != expanded["rhs"]) & ~expanded["free"]]
    if len(zero):
        blocks.append("# effects are uncorrelated")
        blocks += [f"{c.lhs} ~~ {c.value:g}*{c.rhs}" for c in zero.itertuples()]
    constraints = power_constraints(expanded)
    if constraints:
        blocks += _ar1_syntax(expanded, constraints)
        return "\n".join(blocks)
    covariances = expanded[(expanded["op"] == "~~") & (expanded["lhs"] != expanded["rhs"]) & expanded["free"]]
    if len(covariances):
        blocks.append("# free covariances")
        blocks += [f"{c.lhs} ~~ {c.label}*{c.rhs}" for c in covariances.itertuples()]
    return "\n".join(blocks)


def _multi_group_lavaan(expanded: pd.DataFrame) -> str:
    """lavaan syntax of a multi-group table: one statement per row, ``c(...)`` labels where groups differ."""
    groups = list(dict.fromkeys(expanded["group"]))
    keys = ["lhs", "op", "rhs"]
    per_group = [expanded[expanded["group"] == g].drop(columns="group").reset_index(drop=True) for g in groups]
    first = per_group[0]
    for group, table in zip(groups[1:], per_group[1:]):
        if not table[keys].equals(first[keys]):
            raise NotImplementedError(
                f"group {group!r} has other positions than group {groups[0]!r}; lavaan fits one model to every "
                "group, so the groups' wide data must have the same positions"
            )
    labels = pd.concat([table["label"] for table in per_group], axis=1)
    common = labels.nunique(axis=1) == 1
    merged = first.copy()
    merged.loc[~common, "label"] = ["c(" + ", ".join(row) + ")" for row in labels[~common].to_numpy()]
    order = ", ".join(f'"{g}"' for g in groups)
    return f"# multi-group: fit with group.label = c({order}), the order of the c(...) labels\n" + to_lavaan(merged)


def _ar1_syntax(expanded: pd.DataFrame, constraints: list[tuple[str, str, str, int]]) -> list[str]:
    """Residual covariances of AR(1) residuals and the constraints ``lag_d == S_e * rho^d``.

    lavaan accepts a label in a constraint only if it is a parameter of the model or defined
    by ``:=``; rho is neither, so it is defined from the lag-1 covariance (``rho := lag_1 / S_e``)
    and the other lags are constrained through it: once for every ``(S_e, rho)`` pair, that is
    for every label of AR(1) residuals by a label.
    """
    lines = []
    for (scale, rho), lags in itertools.groupby(constraints, key=lambda constraint: constraint[1:3]):
        first, *others = lags
        if first[3] != 1:
            raise NotImplementedError(
                f"no two positions of a unit with {scale} are one time step apart (the closest are {first[3]}), so "
                f"the lavaan syntax cannot define {rho} from the lag-1 residual covariance"
            )
        lines += [f"{rho} := {first[0]} / {scale}", *(f"{label} == {scale} * {rho}^{power}"
                                                      for label, _, _, power in others)]
    covariances = expanded[(expanded["op"] == "~~") & (expanded["lhs"] != expanded["rhs"]) & expanded["free"]]
    return ["# AR(1) residuals: the covariance of positions d time steps apart is S_e * rho^d",
            *(f"{c.lhs} ~~ {c.label}*{c.rhs}" for c in covariances.itertuples()), *lines]


def _wrap_formula(head: str, terms: list[str]) -> list[str]:
    lines = textwrap.wrap(" + ".join(terms), width=76 - len(head), break_long_words=False)
    return [head + lines[0]] + [" " * len(head) + line for line in lines[1:]]
