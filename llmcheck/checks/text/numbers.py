"""Numbers in an output: reading the first number (or a pattern's group), and
``assert_number_in_range``."""

from __future__ import annotations

import re
from typing import Any

from llmcheck.checks.base import (
    as_text,
    conclude,
    excerpt,
)
from llmcheck.checks.text.patterns import compile_pattern, pattern_label
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion

_NUMBER = re.compile(
    r"(?<![\w.])[-+\u2212]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
    r"|(?<![\w.])[-+\u2212]?\.\d+(?:[eE][-+]?\d+)?"
)


def parse_number(token: str) -> int | float | None:
    """``'1,234.5'`` -> 1234.5, ``'−3'`` -> -3; ``None`` if ``token`` is not a number."""
    cleaned = token.strip().replace("\u2212", "-").replace(",", "").replace("_", "")
    cleaned = cleaned.replace(" ", "").replace("\u00a0", "")
    try:
        if re.fullmatch(r"[-+]?\d+", cleaned):
            return int(cleaned)
        value = float(cleaned)
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return value


def extract_number(
    text: str, pattern: str | re.Pattern[str] | None = None, flags: int = 0, *, check: str = ""
) -> tuple[int | float | None, str]:
    """The first number in ``text`` and a description of what was found.

    Without ``pattern``: the first decimal number (``-12``, ``3.5``, ``1,234``,
    ``2e-3``); ``,`` is a thousands separator only in groups of three, ``.`` is the
    decimal point. With ``pattern``: its first group (or whole match) parsed as a
    number. Returns ``(None, reason)`` when there is none.
    """
    if pattern is None:
        match = _NUMBER.search(text)
        if match is None:
            return None, f"no number in {excerpt(text)}"
        return parse_number(match.group(0)), match.group(0)
    regex = compile_pattern(pattern, flags, check or "extract_number")
    match = regex.search(text)
    if match is None:
        return None, f"no match for {pattern_label(regex, 200)} in {excerpt(text)}"
    group = match.group(1) if regex.groups else match.group(0)
    if group is None:
        return None, f"{pattern_label(regex)} matched, but its group is empty"
    value = parse_number(group)
    if value is None:
        return None, f"{pattern_label(regex)} matched {group!r}, which is not a number"
    return value, group


def number_in_output(
    output: Any, pattern: str | re.Pattern[str] | None, flags: int, check: str
) -> tuple[int | float | None, str]:
    """The number ``output`` holds and how it was written: an ``int``/``float`` as is,
    else :func:`extract_number` of its text (``(None, reason)`` when there is none)."""
    __tracebackhide__ = True
    if isinstance(output, (int, float)) and not isinstance(output, bool):
        return output, repr(output)
    text = as_text(output, check)
    return extract_number(text, pattern, flags, check=check)


def _range_label(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low}..{high}"
    return f">={low}" if low is not None else f"<={high}"


def assert_number_in_range(
    output: Completion | str | int | float,
    low: float | None = None,
    high: float | None = None,
    *,
    pattern: str | re.Pattern[str] | None = None,
    flags: int = 0,
) -> int | float | None:
    """Check that the number in the output lies in ``[low, high]`` and return it.

    The number is the first one in the text, or the first group of ``pattern``
    (see :func:`extract_number`); an output with no number fails. Bounds are
    inclusive; either may be ``None`` (open). Returns an ``int`` when the number
    was written without a decimal point or exponent. Recorded as
    ``number_in_range(0..100)`` / ``number_in_range(>=0)``; ``value`` is the number.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    for key, bound in (("low", low), ("high", high)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))
                                  or bound != bound):
            raise UsageError(f"assert_number_in_range: {key} must be a number, got {bound!r}")
    if low is None and high is None:
        raise UsageError("assert_number_in_range: give low, high or both")
    if low is not None and high is not None and low > high:
        raise UsageError(f"assert_number_in_range: low={low!r} is greater than high={high!r}")
    name = f"number_in_range({_range_label(low, high)})"
    number, written = number_in_output(output, pattern, flags, "assert_number_in_range")
    if number is None:
        conclude(name, False, written)
        return None
    passed = (low is None or number >= low) and (high is None or number <= high)
    message = None
    if not passed:
        message = f"found {number!r} (written {written!r}), outside {_range_label(low, high)}"
    conclude(name, passed, message, number)
    return number
