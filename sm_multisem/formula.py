"""Split a mixed-model formula into its fixed part and its nested random-intercept terms.

``"y ~ x + (1|k/j)"`` becomes the fixed formula ``"y ~ x"`` (handed to statsmodels'
formula engine) and the grouping chain ``("k", "j")``. The random terms must be
removed before the formula engine sees them: patsy would otherwise read ``(1|k/j)``
as fixed-effect columns without complaint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ParsedFormula", "parse_formula", "FormulaError"]

_IDENTIFIER = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*\Z")


class FormulaError(ValueError):
    """A formula that cannot be read, with the offending text pointed at."""


@dataclass(frozen=True)
class RandomTerm:
    """One parenthesised random term as written, e.g. ``(1|k/j)``."""

    text: str
    effects: str
    grouping: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ParsedFormula:
    """A formula split into the parts the pipeline needs.

    Attributes
    ----------
    formula : str
        The formula as given.
    fixed : str
        The fixed part, ``"y ~ x"``, for statsmodels' formula engine.
    outcome : str
        The left-hand side.
    terms : tuple of RandomTerm
        The random terms as written.
    levels : tuple of tuple of str
        The grouping chain from the top level down; level ``l`` is identified by the
        columns ``levels[l]`` (``(("k",), ("k", "j"))`` for ``(1|k/j)``). Filled in by
        :func:`parse_formula` only when the terms spell out the nesting; grouping
        factors written separately, ``(1|k) + (1|j)``, are resolved against the data
        by :func:`sm_multisem.layout.nesting_chain`.
    """

    formula: str
    fixed: str
    outcome: str
    terms: tuple[RandomTerm, ...]

    @property
    def groupings(self) -> tuple[tuple[str, ...], ...]:
        """Every grouping factor named by a random term, in order of appearance."""
        return tuple(g for term in self.terms for g in term.grouping)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column named in a grouping factor."""
        seen: dict[str, None] = {}
        for grouping in self.groupings:
            for col in grouping:
                seen.setdefault(col)
        return tuple(seen)


def _pointer(text: str, start: int, end: int | None = None) -> str:
    width = max(1, (end or start + 1) - start)
    return f"\n    {text}\n    {' ' * start}{'^' * width}"


def _random_spans(rhs: str, formula: str, offset: int) -> list[tuple[int, int]]:
    """Locate parenthesised terms with a top-level ``|`` (not function calls like ``C(a)``)."""
    spans, stack = [], []
    for pos, char in enumerate(rhs):
        if char == "(":
            stack.append(pos)
        elif char == ")":
            if not stack:
                raise FormulaError("unmatched ')' in formula:" + _pointer(formula, offset + pos))
            start = stack.pop()
            before = rhs[:start].rstrip()
            is_call = bool(before) and (before[-1].isalnum() or before[-1] in "_.")
            if not stack and not is_call and _has_top_level_bar(rhs[start + 1 : pos]):
                spans.append((start, pos + 1))
    if stack:
        raise FormulaError("unmatched '(' in formula:" + _pointer(formula, offset + stack[-1]))
    return spans


def _has_top_level_bar(inner: str) -> bool:
    depth = 0
    for char in inner:
        depth += char == "("
        depth -= char == ")"
        if char == "|" and depth == 0:
            return True
    return False


def _parse_grouping(text: str, formula: str, where: int) -> tuple[tuple[str, ...], ...]:
    """``k/j/i`` -> ``(k,), (k,j), (k,j,i)``; ``k:j`` -> ``(k,j)``."""
    groupings: list[tuple[str, ...]] = []
    prefix: tuple[str, ...] = ()
    for part in text.split("/"):
        names = tuple(name.strip() for name in part.split(":"))
        for name in names:
            if not _IDENTIFIER.match(name):
                shown = name or "(nothing)"
                raise FormulaError(
                    f"grouping factor {shown!r} in random term is not a column name:"
                    + _pointer(formula, where, where + len(text))
                )
        prefix = prefix + names
        groupings.append(prefix)
    return tuple(groupings)


def parse_formula(formula: str) -> ParsedFormula:
    """Split ``formula`` into the fixed part and the random terms.

    Parameters
    ----------
    formula : str
        A formula such as ``"y ~ x + (1|k/j)"`` or ``"y ~ x + (1|k) + (1|k:j)"``.

    Returns
    -------
    ParsedFormula

    Raises
    ------
    FormulaError
        For a missing ``~``, unbalanced parentheses, a malformed random term, a random
        slope (not supported), a subtracted random term, or no random term at all.
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string, got {type(formula).__name__}")
    if formula.count("~") != 1:
        raise FormulaError(f"formula must contain exactly one '~': {formula!r}")
    lhs, rhs = formula.split("~")
    outcome = lhs.strip()
    if not outcome:
        raise FormulaError("formula has no outcome before '~':" + _pointer(formula, 0))
    offset = len(lhs) + 1

    terms, pieces, last = [], [], 0
    for start, end in _random_spans(rhs, formula, offset):
        text = rhs[start:end]
        where = offset + start
        preceding = rhs[last:start].rstrip()
        if preceding.endswith("-"):
            raise FormulaError("a random term cannot be subtracted:" + _pointer(formula, where, where + len(text)))
        if preceding and not preceding.endswith("+"):
            raise FormulaError("expected '+' before the random term:" + _pointer(formula, where, where + len(text)))
        pieces.append(preceding[:-1] if preceding.endswith("+") else preceding)
        terms.append(_parse_term(text, formula, where))
        last = end
    pieces.append(rhs[last:])

    fixed_rhs = " + ".join(p.strip().strip("+").strip() for p in pieces if p.strip().strip("+").strip())
    if not terms:
        raise FormulaError(
            f"formula {formula!r} has no random-effects term such as (1|k); "
            "without one it is a linear regression (statsmodels OLS)"
        )
    return ParsedFormula(
        formula=formula,
        fixed=f"{outcome} ~ {fixed_rhs or '1'}",
        outcome=outcome,
        terms=tuple(terms),
    )


def _parse_term(text: str, formula: str, where: int) -> RandomTerm:
    inner = text[1:-1]
    if "||" in inner:
        raise FormulaError(
            "'||' (uncorrelated random effects) is not supported; write (1|k):"
            + _pointer(formula, where, where + len(text))
        )
    effects, _, grouping = inner.partition("|")
    if "|" in grouping:
        raise FormulaError("a random term has one '|':" + _pointer(formula, where, where + len(text)))
    effects = effects.strip()
    if not effects:
        raise FormulaError(
            "random term has nothing before '|' (write (1|k) for a random intercept):"
            + _pointer(formula, where, where + len(text))
        )
    if re.sub(r"\s+", "", effects) != "1":
        raise FormulaError(
            f"random term {text!r} asks for random effects {effects!r}; only random "
            "intercepts (1|...) are supported:" + _pointer(formula, where, where + len(text))
        )
    if not grouping.strip():
        raise FormulaError("random term has no grouping factor after '|':" + _pointer(formula, where, where + len(text)))
    grouping_start = where + 1 + inner.index("|") + 1
    return RandomTerm(
        text=text, effects=effects, grouping=_parse_grouping(grouping.strip(), formula, grouping_start)
    )
