"""The wide SEM as a path diagram, written in Graphviz's DOT language.

Drawn as the source article draws it: observed variables in boxes (the covariates on the
left, the outcome at every position in the middle, its intercept under its name), the
latent effects in circles on the right (``K`` for the top level, ``J1``, ``J2``, ... for the
units of the level below, each with its variance under its name) and a small circle
``ε`` for the residual error of every position, with its variance. Every path carries its
constraint label (``bx``, ``S_j``), or for a fitted model its estimate; a path fixed at a
value shows the value. Covariances that are free or fixed away from 0 are curved
two-headed edges; effects fixed uncorrelated get no edge, as in the article.

The picture is read off the per-position parameter table
(:meth:`~sm_multisem.spec.spec.ParameterTable.expand`) and nothing else, so a relaxation shows
as the labels it writes there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..spec.spec import constrained_values

__all__ = ["GraphvizMissing", "PathDiagram", "path_diagram"]

INSTALL_HINT = (
    "rendering a path diagram needs the graphviz python package (pip install graphviz, or "
    "pip install sm_multisem[diagram]) and Graphviz's dot program (e.g. apt-get install graphviz, "
    "brew install graphviz, conda install graphviz); the DOT source (.source, or a .dot/.gv file) "
    "needs neither"
)
SOURCE_FORMATS = ("dot", "gv")
MORE = "..."  # the node standing for the positions not drawn; no variable of the table is named so


class GraphvizMissing(RuntimeError):
    """The graphviz python package or Graphviz's ``dot`` program, needed to render, is missing."""


def _graphviz():
    try:
        import graphviz
    except ImportError:
        raise GraphvizMissing(INSTALL_HINT) from None
    return graphviz


@dataclass(frozen=True)
class PathDiagram:
    """A path diagram: DOT source, rendered by Graphviz when it is installed.

    Shown inline in Jupyter (as SVG with Graphviz, as DOT text without it); ``str()`` is
    the DOT source.

    Attributes
    ----------
    source : str
        The diagram in Graphviz's DOT language.
    """

    source: str

    def __str__(self) -> str:
        return self.source

    def to_graphviz(self):
        """The diagram as a ``graphviz.Source`` (for ``view()`` and Graphviz's other tools).

        Raises
        ------
        GraphvizMissing
            Without the graphviz python package.
        """
        return _graphviz().Source(self.source)

    def pipe(self, format: str = "svg") -> bytes:
        """The diagram rendered by Graphviz's ``dot`` program.

        Parameters
        ----------
        format : str
            Any output format of ``dot``: ``"svg"``, ``"png"``, ``"pdf"``, ...

        Raises
        ------
        GraphvizMissing
            Without the graphviz python package or the ``dot`` program.
        """
        graphviz = _graphviz()
        try:
            return graphviz.Source(self.source).pipe(format=format)
        except graphviz.ExecutableNotFound:
            raise GraphvizMissing(INSTALL_HINT) from None

    def save(self, path: str | Path) -> Path:
        """Write the DOT source to ``path``; needs neither the graphviz package nor ``dot``."""
        path = Path(path)
        path.write_text(self.source, encoding="utf-8")
        return path

    def render(self, path: str | Path, format: str | None = None) -> Path:
        """Write the diagram to ``path``.

        Parameters
        ----------
        path : str or Path
        format : str, optional
            Output format of ``dot``; by default the extension of ``path`` (``.svg``,
            ``.png``, ``.pdf``, ...). ``"dot"`` and ``"gv"`` write the DOT source, as
            :meth:`save` does, and need no Graphviz.

        Returns
        -------
        Path
            The file written.

        Raises
        ------
        GraphvizMissing
            For a rendered format without the graphviz python package or ``dot``.
        """
        path = Path(path)
        format = (format or path.suffix.lstrip(".")).lower()
        if not format:
            raise ValueError(f"{str(path)!r} has no extension: give format= (svg, png, pdf, dot, ...)")
        if format in SOURCE_FORMATS:
            return self.save(path)
        path.write_bytes(self.pipe(format))
        return path

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        """SVG for Jupyter when Graphviz can render it, the DOT source otherwise."""
        try:
            return {"image/svg+xml": self.pipe("svg").decode("utf-8"), "text/plain": self.source}
        except GraphvizMissing:
            return {"text/plain": self.source}


def path_diagram(table: pd.DataFrame, *, estimates: Mapping[str, float] | None = None,
                 max_positions: int | None = 6) -> PathDiagram:
    """Draw the wide SEM from its per-position parameter table.

    Parameters
    ----------
    table : DataFrame
        One row per parameter at every position, columns ``lhs, op, rhs, label, free,
        value`` (``model.parameter_table``): ``~`` regressions, ``~1`` intercepts, ``=~``
        loadings of the latent effects, ``~~`` variances and covariances (of an outcome:
        of its residual error).
    estimates : mapping, optional
        Estimate of every free label (those the table's constraints fix, ``S_e_lag2 ==
        S_e*rho^2``, follow from them); the paths then show estimates (4 significant
        digits) in place of labels.
    max_positions : int or None
        Draw the outcomes of this many positions, in the table's order, with their
        covariates and effects, and one node ``... n more positions`` for the rest, so
        that large models stay readable. ``None`` draws every position.

    Returns
    -------
    PathDiagram
    """
    if max_positions is not None and max_positions < 1:
        raise ValueError(f"max_positions must be at least 1 (or None for all), got {max_positions}")
    if estimates is not None:  # with the values of labels fixed by constraints (AR(1) covariances)
        estimates = constrained_values(table, estimates)
    ops = table["op"]
    loadings = table[ops == "=~"]
    outcomes = list(dict.fromkeys([*table.loc[ops.isin(["~", "~1"]), "lhs"], *loadings["rhs"]]))
    shown = outcomes[:max_positions]
    drawn = {*shown, *table.loc[(ops == "~") & table["lhs"].isin(shown), "rhs"],
             *loadings.loc[loadings["rhs"].isin(shown), "lhs"]}
    rows = table[table["lhs"].isin(drawn) & (table["rhs"].isin(drawn) | (ops == "~1"))]
    outcomes_drawn = set(shown)

    def text(row) -> str:
        """What a path shows: the value it is fixed at, or its label (its estimate, once fitted)."""
        if not row.free:
            return f"{row.value:.4g}"
        return row.label if estimates is None else f"{estimates[row.label]:.4g}"

    def owner(name: str) -> str:
        """The node a variance or covariance belongs to: an outcome's is its residual error's."""
        return f"e.{name}" if name in outcomes_drawn else name

    variances = rows[(rows["op"] == "~~") & (rows["lhs"] == rows["rhs"])]
    covariances = rows[(rows["op"] == "~~") & (rows["lhs"] != rows["rhs"]) & (rows["free"] | (rows["value"] != 0))]
    under_name = {row.lhs: text(row) for row in rows[rows["op"] == "~1"].itertuples()}
    under_name |= {owner(row.lhs): text(row) for row in variances.itertuples()}
    latents = list(dict.fromkeys(rows.loc[rows["op"] == "=~", "lhs"]))
    covariates = [name for name in dict.fromkeys(rows.loc[rows["op"] == "~", "rhs"]) if name not in latents]
    with_error = [name for name in shown if owner(name) in under_name]

    def node(name: str, shape: str, title: str | None = None, **attrs: str) -> str:
        label = [title or name] + ([under_name[name]] if name in under_name else [])
        return f"  {_quoted(name)} {_attributes(shape=shape, label=label, **attrs)};"

    def edge(tail: str, head: str, **attrs: str) -> str:
        return f"  {_quoted(tail)} -> {_quoted(head)} {_attributes(**attrs)};"

    lines = [
        "digraph wide_sem {",
        "  graph [rankdir=LR, nodesep=0.3, ranksep=0.6];",
        '  node [fontname="Helvetica", fontsize=12];',
        '  edge [fontname="Helvetica", fontsize=10];',
        "  // observed: covariates and the outcome at every position (its intercept under its name)",
        *(node(name, "box") for name in [*covariates, *shown]),
        "  // latent effects, each with its variance",
        *(node(name, "circle") for name in latents),
        "  // residual errors, each with its variance",
        *(node(owner(name), "circle", "ε", fontsize="10", margin="0.02") for name in with_error),
        "  // regressions",
        *(edge(row.rhs, row.lhs, label=text(row)) for row in rows[rows["op"] == "~"].itertuples()),
        # effects and errors point at the outcomes from the right: each such path is written
        # outcome -> effect with dir=back, which draws the same arrow but ranks the effect after the outcome
        "  // loadings of the latent effects; the residual errors",
        *(edge(row.rhs, row.lhs, dir="back", minlen="2", label=text(row))
          for row in rows[rows["op"] == "=~"].itertuples()),
        *(edge(name, owner(name), dir="back") for name in with_error),
        "  // covariances",
        *(edge(owner(row.lhs), owner(row.rhs), dir="both", constraint="false", label=text(row))
          for row in covariances.itertuples()),
    ]
    column = shown
    hidden_positions = len(outcomes) - len(shown)
    if hidden_positions:
        hidden_latents = loadings["lhs"].nunique() - len(latents)
        label = [f"... {hidden_positions} more position{'s' * (hidden_positions > 1)}"]
        if hidden_latents:
            label.append(f"{hidden_latents} more effect{'s' * (hidden_latents > 1)}")
        lines += [
            "  // positions not drawn; dashed paths from the drawn effects that also load on them",
            f"  {_quoted(MORE)} {_attributes(shape='box', style='dashed', label=label)};",
            *(edge(MORE, latent, dir="back", minlen="2", style="dashed")
              for latent in dict.fromkeys(loadings.loc[~loadings["rhs"].isin(shown), "lhs"]) if latent in latents),
        ]
        column = [*shown, MORE]
    if len(column) > 1:
        lines += ["  // the positions in order, top to bottom",
                  f"  {{rank=same; {' -> '.join(map(_quoted, column))} [style=invis];}}"]
    return PathDiagram("\n".join([*lines, "}"]) + "\n")


def _escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace('"', '\\"')


def _quoted(text: str) -> str:
    return f'"{_escape(text)}"'


def _attributes(**attrs: str | list[str]) -> str:
    """``[key="value", ...]``; a list is the lines of a label (DOT's ``\\n`` breaks a line)."""

    def value(text: str | list[str]) -> str:
        return "\\n".join(map(_escape, text)) if isinstance(text, list) else _escape(text)

    return "[" + ", ".join(f'{key}="{value(text)}"' for key, text in attrs.items()) + "]"
