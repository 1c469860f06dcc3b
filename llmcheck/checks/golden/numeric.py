"""Golden comparison of numbers (``method="numeric"``): the first number in the
output is ``math.isclose`` to the expected one."""

from __future__ import annotations

import math
from typing import Any

from llmcheck.checks.base import (
    conclude,
    short_repr,
)
from llmcheck.checks.golden.options import (
    GoldenOptions,
    fmt,
)
from llmcheck.checks.text.numbers import extract_number, number_in_output
from llmcheck.errors import UsageError


def golden_numeric(output: Any, expected: Any, threshold: float | None,
                    options: GoldenOptions) -> float | None:
    __tracebackhide__ = True
    rel_tol, abs_tol = options.rel_tol, options.abs_tol
    for key, tol in (("rel_tol", rel_tol), ("abs_tol", abs_tol)):
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))
                                or not tol >= 0):
            raise UsageError(f"assert_golden(numeric): {key} must be a number >= 0, got {tol!r}")
    rel = 1e-9 if rel_tol is None else float(rel_tol)
    absolute = 0.0 if abs_tol is None else float(abs_tol)
    target = _numeric_target(expected)
    opts = [f"rel_tol={fmt(rel)}" if rel_tol is not None else "",
            f"abs_tol={fmt(absolute)}" if abs_tol is not None else ""]
    opts_text = ", ".join(o for o in opts if o)
    name = f"golden.numeric({opts_text})" if opts_text else "golden.numeric"
    number, written = number_in_output(output, options.pattern, 0, "assert_golden(numeric)")
    if number is None:
        conclude(name, False, written)
        return None
    passed = math.isclose(number, target, rel_tol=rel, abs_tol=absolute)
    message = None
    if not passed:
        off = abs(number - target)
        rel_off = f" ({off / abs(target):.2%})" if target else ""
        message = (f"expected {fmt(target)} (rel_tol={fmt(rel)}, abs_tol={fmt(absolute)}), "
                   f"got {fmt(number)} (written {written!r}): off by {fmt(off)}{rel_off}")
    conclude(name, passed, message, number)
    return number


def _numeric_target(expected: Any) -> float:
    """The expected number: a finite number, or the first number in a str."""
    __tracebackhide__ = True
    if isinstance(expected, bool):
        raise UsageError("assert_golden(numeric): expected must be a number, got a bool")
    if isinstance(expected, str):
        parsed, _ = extract_number(expected)
        if parsed is None:
            raise UsageError(f"assert_golden(numeric): expected {expected!r} holds no number")
        return parsed
    if isinstance(expected, (int, float)) and math.isfinite(expected):
        return expected
    raise UsageError(f"assert_golden(numeric): expected must be a finite number or a str "
                     f"holding one, got {short_repr(expected)}")
