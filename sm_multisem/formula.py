"""Split a mixed-model formula into its fixed part and its nested random terms.

``"y ~ x + (1|k/j)"`` becomes the fixed formula ``"y ~ x"`` (handed to statsmodels'
formula engine) and the grouping chain ``("k", "j")``; ``(1 + x|k/j)`` adds a random
slope of ``x`` at both levels, correlated with the level's intercept. The random terms must be
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
    slope: str | None = None  # the column with a random slope, ``x`` in ``(1 + x|k)``


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
        The random terms as written. Their grouping factors (:attr:`groupings`) are put in
        order from the top level down, and checked for nesting against the data, by
        :func:`sm_multisem.layout.nesting_chain`.
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
    def slopes(self) -> dict[tuple[str, ...], str]:
        """Grouping factor -> the column whose slope varies over its units (random slopes only)."""
        return {g: term.slope for term in self.terms if term.slope for g in term.grouping}

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


def _is_call(text: str, paren: int) -> bool:
    """Whether the parenthesis at ``paren`` opens a function call such as ``C(a)`` (not ``1 (``)."""
    name = re.search(r"[\w.]*$", text[:paren].rstrip()).group()
    return bool(name) and not re.fullmatch(r"[\d.]+", name)


def _scan_strings(text: str) -> tuple[list[tuple[int, str]], int | None]:
    """Characters outside quoted strings as ``(position, character)``, and the position
    of a quote that is never closed (None when every string is closed)."""
    outside: list[tuple[int, str]] = []
    quote, opened, escaped = None, None, False
    for pos, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote, opened = char, pos
        else:
            outside.append((pos, char))
    return outside, (opened if quote else None)


def _check_parentheses(outside: list[tuple[int, str]], formula: str, offset: int) -> None:
    depth: list[int] = []
    for pos, char in outside:
        if char == "(":
            depth.append(pos)
        elif char == ")":
            if not depth:
                raise FormulaError("unmatched ')' in formula:" + _pointer(formula, offset + pos))
            depth.pop()
    if depth:
        raise FormulaError("unmatched '(' in formula:" + _pointer(formula, offset + depth[-1]))


def _random_spans(rhs: str, formula: str, offset: int) -> list[tuple[int, int]]:
    """Locate parenthesised terms with a top-level ``|`` (not function calls like ``C(a)``)."""
    outside, open_quote = _scan_strings(rhs)
    if open_quote is not None:
        raise FormulaError("unterminated string in formula:" + _pointer(formula, offset + open_quote))
    _check_parentheses(outside, formula, offset)
    spans: list[tuple[int, int]] = []
    stack: list[tuple[int, bool]] = []  # open parentheses: position, opens a call
    for pos, char in outside:
        if char == "(":
            stack.append((pos, _is_call(rhs, pos)))
        elif char == ")":
            start, is_call = stack.pop()
            if is_call or not _has_top_level_bar(rhs[start + 1 : pos]):
                continue
            if not stack:
                spans.append((start, pos + 1))
            elif not any(call for _, call in stack):
                text = rhs[start : pos + 1]
                raise FormulaError(
                    f"random term {text!r} must not be inside parentheses; add it as a term of its own, "
                    f"'+ {text}':" + _pointer(formula, offset + start, offset + pos + 1)
                )
        elif char == "|" and not stack:
            raise FormulaError(
                "'|' outside parentheses; write a random term in parentheses, e.g. (1|k):"
                + _pointer(formula, offset + pos)
            )
    return spans


def _has_top_level_bar(inner: str) -> bool:
    depth = 0
    for _, char in _scan_strings(inner)[0]:
        depth += char == "("
        depth -= char == ")"
        if char == "|" and depth == 0:
            return True
    return False


def _parse_grouping(term: str, text: str, formula: str, where: int) -> tuple[tuple[str, ...], ...]:
    """``k/j/i`` -> ``(k,), (k,j), (k,j,i)``; ``k:j`` -> ``(k,j)``.

    ``text`` is the grouping part of the random term ``term``; it starts at ``where``
    in ``formula``.
    """
    here = _pointer(formula, where, where + len(text))
    groupings: list[tuple[str, ...]] = []
    prefix: tuple[str, ...] = ()
    for part in text.split("/"):
        names = tuple(name.strip() for name in part.split(":"))
        for name in names:
            if not name:
                raise FormulaError(f"random term {term!r} has an empty grouping factor in {text!r}:" + here)
            if not _IDENTIFIER.match(name):
                raise FormulaError(
                    f"grouping factor {name!r} in random term {term!r} is not a column name:" + here
                )
            if name in prefix or names.count(name) > 1:
                raise FormulaError(f"grouping factor {name!r} appears twice in random term {term!r}:" + here)
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
        For a missing ``~``, unbalanced parentheses, a malformed random term, random
        effects other than ``1`` or ``1 + x``, a random term not added with ``+``, or no
        random term at all.
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

    spans = _random_spans(rhs, formula, offset)
    if not spans:
        raise FormulaError(
            f"formula {formula!r} has no random-effects term such as (1|k); "
            "without one it is a linear regression (statsmodels OLS)"
        )
    terms, pieces = [], []
    for number, (start, end) in enumerate(spans):
        text = rhs[start:end]
        where = offset + start
        here = _pointer(formula, where, where + len(text))
        before = rhs[spans[number - 1][1] if number else 0 : start]
        after = rhs[end : spans[number + 1][0] if number + 1 < len(spans) else len(rhs)]
        preceding = before.rstrip()
        if preceding.endswith("-"):
            raise FormulaError(f"random term {text!r} cannot be subtracted:" + here)
        if preceding.endswith("+"):
            pieces.append(preceding[:-1])  # the term leaves with the '+' that added it
        elif preceding or number:
            raise FormulaError(f"expected '+' before the random term {text!r}:" + here)
        following = after.lstrip()
        if following and following[0] not in "+-":
            raise FormulaError(f"expected '+' after the random term {text!r}:" + here)
        if number + 1 == len(spans):
            if following.rstrip() in ("+", "-"):
                raise FormulaError(
                    f"formula ends with {following.rstrip()!r}:" + _pointer(formula, len(formula.rstrip()) - 1)
                )
            pieces.append(after)
        terms.append(_parse_term(text, formula, where))

    fixed_rhs = ""
    for piece in pieces:  # rejoin what surrounds the random terms, keeping each '-'
        piece = piece.strip()
        piece = piece[1:].strip() if piece.startswith("+") else piece
        if piece and fixed_rhs:
            fixed_rhs += (" " if piece.startswith("-") else " + ") + piece
        elif piece:
            fixed_rhs = piece
    return ParsedFormula(
        formula=formula,
        fixed=f"{outcome} ~ {fixed_rhs or '1'}",
        outcome=outcome,
        terms=tuple(terms),
    )


def _parse_term(text: str, formula: str, where: int) -> RandomTerm:
    here = _pointer(formula, where, where + len(text))
    inner = text[1:-1]
    if "||" in inner:
        raise FormulaError(
            f"'||' (uncorrelated random effects) in {text!r} is not supported; write (1|k):" + here
        )
    effects, _, grouping = inner.partition("|")
    if "|" in grouping:
        raise FormulaError(f"random term {text!r} has more than one '|':" + here)
    effects = effects.strip()
    if not effects:
        raise FormulaError(
            f"random term {text!r} has nothing before '|' (write (1|k) for a random intercept):" + here
        )
    slope = _slope_of(effects, text, here)
    if not grouping.strip():
        raise FormulaError(f"random term {text!r} has no grouping factor after '|':" + here)
    grouping_start = where + 1 + inner.index("|") + 1 + len(grouping) - len(grouping.lstrip())
    return RandomTerm(
        text=text, effects=effects, grouping=_parse_grouping(text, grouping.strip(), formula, grouping_start),
        slope=slope,
    )


def _slope_of(effects: str, text: str, here: str) -> str | None:
    """The column of a random slope in ``1 + x`` (lme4 reads ``x`` alone as ``1 + x``), None for ``1``."""
    parts = [part.strip() for part in effects.split("+")]
    others = [part for part in parts if part != "1"]
    supported = ("only random intercepts (1|k) and one random slope correlated with the intercept, "
                 "(1 + x|k), are supported")
    if not others:
        if len(parts) > 1:
            raise FormulaError(f"random term {text!r} repeats the intercept in {effects!r}:" + here)
        return None
    if any(part in ("0", "-1") or part.startswith("-") for part in parts) or "-" in effects:
        raise FormulaError(f"random term {text!r} asks for random effects {effects!r} without the intercept; "
                           f"{supported}:" + here)
    if len(others) > 1 or len(parts) > 2:
        raise FormulaError(f"random term {text!r} asks for random effects {effects!r}; {supported}:" + here)
    if not _IDENTIFIER.match(others[0]):
        raise FormulaError(f"random slope {others[0]!r} in random term {text!r} is not a column name; "
                           f"{supported}:" + here)
    return others[0]
