"""Split a mixed-model formula into its fixed part and its nested random terms.

``"y ~ x + (1|k/j)"`` becomes the fixed formula ``"y ~ x"`` (handed to statsmodels'
formula engine) and the grouping chain ``("k", "j")``. The left of ``|`` is lme4's: the
random effects are the columns of the one-sided formula it names, built by the same formula
engine (``1 + x + w``: an intercept and two slopes; ``0 + type``: the indicators of every
level of a factor; ``x`` alone is ``1 + x``), unstructured for ``|`` and independent for
``||``; several terms of one grouping factor (``(1|k) + (0 + x|k)``) are independent blocks.
The random terms must be removed before the formula engine sees them: patsy would otherwise
read ``(1|k/j)`` as fixed-effect columns without complaint.
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
    """One parenthesised random term as written, e.g. ``(1 + x|k/j)``.

    Attributes
    ----------
    text, effects : str
        The term, and the part before the bar (``"1 + x"``).
    grouping : tuple of tuple of str
        The grouping factors, ``(("k",), ("k", "j"))`` for ``k/j``.
    intercept : bool
        Whether the effects hold a random intercept.
    columns : tuple of str
        The other terms of the effects, as written (``("x",)``; ``("type",)`` for a factor,
        whose columns the formula engine makes).
    correlated : bool
        ``|`` (an unstructured covariance) rather than ``||`` (independent effects).
    """

    text: str
    effects: str
    grouping: tuple[tuple[str, ...], ...]
    intercept: bool = True
    columns: tuple[str, ...] = ()
    correlated: bool = True

    @property
    def design(self) -> str:
        """The effects as a one-sided formula for the formula engine (``"1 + x"``, ``"0 + type"``)."""
        return " + ".join(("1" if self.intercept else "0",) + self.columns)


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
        :func:`sm_multisem.spec.layout.nesting_chain`.
    """

    formula: str
    fixed: str
    outcome: str
    terms: tuple[RandomTerm, ...]

    @property
    def groupings(self) -> tuple[tuple[str, ...], ...]:
        """Every grouping factor named by a random term, in order of appearance.

        A factor named again by a term of other effects (``(1|k) + (0 + x|k)``, two blocks of one
        level) counts once; a second random intercept of one factor stays, for the layout to refuse.
        """
        out, has_intercept = [], {}
        for term in self.terms:
            for grouping in term.grouping:
                key = frozenset(grouping)
                if key not in has_intercept or (term.intercept and has_intercept[key]):
                    out.append(grouping)
                has_intercept[key] = has_intercept.get(key, False) or term.intercept
        return tuple(out)

    @property
    def has_slopes(self) -> bool:
        """Whether any random effect is more than a random intercept."""
        return any(term.columns or not term.intercept for term in self.terms)

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
            if is_call or _top_level_bar(rhs[start + 1 : pos]) < 0:
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
        effects that subtract anything but the intercept, a random term not added with
        ``+``, or no random term at all.
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
    bar = _top_level_bar(inner)
    correlated = inner[bar + 1 : bar + 2] != "|"
    effects, grouping = inner[:bar], inner[bar + (1 if correlated else 2):]
    if _top_level_bar(grouping) >= 0:
        raise FormulaError(f"random term {text!r} has more than one '|':" + here)
    effects = effects.strip()
    if not effects:
        raise FormulaError(
            f"random term {text!r} has nothing before '|' (write (1|k) for a random intercept):" + here
        )
    intercept, columns = _effect_terms(effects, text, here)
    if not grouping.strip():
        raise FormulaError(f"random term {text!r} has no grouping factor after '|':" + here)
    grouping_start = where + 1 + len(inner) - len(grouping.lstrip())
    return RandomTerm(
        text=text, effects=effects, grouping=_parse_grouping(text, grouping.strip(), formula, grouping_start),
        intercept=intercept, columns=columns, correlated=correlated,
    )


def _top_level_bar(inner: str) -> int:
    """The position of the first ``|`` outside parentheses and strings in ``inner``, or -1."""
    depth = 0
    for pos, char in _scan_strings(inner)[0]:
        depth += char == "("
        depth -= char == ")"
        if char == "|" and depth == 0:
            return pos
    return -1


def _split_sum(text: str) -> list[tuple[str, str]]:
    """``"1 + x - 1"`` -> ``[("+", "1"), ("+", "x"), ("-", "1")]``: the signed terms of a sum,
    split at the ``+`` and ``-`` outside parentheses and strings."""
    parts, sign, start, depth = [], "+", 0, 0
    for pos, char in _scan_strings(text)[0]:
        depth += char == "("
        depth -= char == ")"
        if char in "+-" and depth == 0:
            parts.append((sign, text[start:pos].strip()))
            sign, start = char, pos + 1
    parts.append((sign, text[start:].strip()))
    if parts[0] == ("+", ""):  # a leading sign: "-1 + x"
        parts = parts[1:]
    return parts


def _effect_terms(effects: str, text: str, here: str) -> tuple[bool, tuple[str, ...]]:
    """Whether ``effects`` holds the intercept, and its other terms (lme4 reads ``x`` as ``1 + x``)."""
    intercept, columns, ones = True, [], 0
    for sign, part in _split_sum(effects):
        if not part:
            raise FormulaError(f"random term {text!r} has an empty term in {effects!r}:" + here)
        if part in ("0", "1"):
            if sign == "-" and part == "0":
                raise FormulaError(f"random term {text!r} subtracts 0 in {effects!r}:" + here)
            ones += (sign, part) == ("+", "1")
            if ones > 1:
                raise FormulaError(f"random term {text!r} repeats the intercept in {effects!r}:" + here)
            intercept = (sign, part) == ("+", "1")
        elif sign == "-":
            raise FormulaError(f"random term {text!r} subtracts {part!r}; only the intercept can be removed "
                               f"(0 + x or x - 1):" + here)
        elif part in columns:
            raise FormulaError(f"random term {text!r} names {part!r} twice:" + here)
        else:
            columns.append(part)
    if not intercept and not columns:
        raise FormulaError(f"random term {text!r} asks for no random effect ({effects!r}); write (1|k) for a "
                           "random intercept:" + here)
    return intercept, tuple(columns)
