"""The arguments of :func:`~llmcheck.checks.golden.assert_golden`: the methods, their
options and thresholds, and what every method uses to read its texts and record
its score."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from llmcheck.checks.base import (
    as_text,
    check_fraction,
    conclude,
    short_repr,
)
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion

METHODS = ("exact", "normalized", "fuzzy", "numeric", "json", "set", "semantic")
DEFAULT_THRESHOLDS = {"fuzzy": 0.85, "semantic": 0.8, "set": 1.0}

Embedder = Callable[[list[str]], Sequence[Sequence[float]]]
"""Maps a list of texts to one embedding vector per text."""


def fmt(x: float) -> str:
    """A number as a check name or message shows it (``0.85``, ``1e-09``)."""
    return f"{x:g}"


class GoldenOptions(NamedTuple):
    """The method-specific options of :func:`assert_golden`, ``None`` when not given."""

    rel_tol: float | None
    abs_tol: float | None
    pattern: str | None
    ignore_paths: Iterable[str] | None
    unordered_lists: bool | None
    lenient: bool | None
    normalize: bool | None
    embed: Embedder | None


_METHOD_OPTIONS: dict[str, frozenset[str]] = {
    "numeric": frozenset({"rel_tol", "abs_tol", "pattern"}),
    "json": frozenset({"ignore_paths", "unordered_lists", "lenient"}),
    "fuzzy": frozenset({"normalize"}),
    "semantic": frozenset({"embed"}),
}
"""The options each method accepts (``threshold``: the methods in DEFAULT_THRESHOLDS)."""


_OPTION_OWNERS = {"threshold": "fuzzy, semantic, set", "rel_tol": "numeric",
                  "abs_tol": "numeric", "pattern": "numeric", "ignore_paths": "json",
                  "unordered_lists": "json", "lenient": "json", "normalize": "fuzzy",
                  "embed": "semantic"}
"""The methods that take each option, for the message naming a misplaced one."""


def check_arguments(method: str, threshold: float | None, options: GoldenOptions) -> float | None:
    """Reject an unknown method, an option the method does not take or a threshold
    outside [0, 1] with a UsageError; returns the threshold as a float (or None)."""
    __tracebackhide__ = True
    if method not in METHODS:
        raise UsageError(f"assert_golden: unknown method {method!r}; accepted: {list(METHODS)}")
    allowed = _METHOD_OPTIONS.get(method, frozenset())
    wrong = [k for k, v in options._asdict().items() if v is not None and k not in allowed]
    if threshold is not None and method not in DEFAULT_THRESHOLDS:
        wrong.insert(0, "threshold")
    if wrong:
        raise UsageError(f"assert_golden(method={method!r}) does not take "
                         + ", ".join(f"{k} (only {_OPTION_OWNERS[k]})" for k in wrong))
    if threshold is None:
        return None
    return check_fraction("assert_golden", "threshold", threshold)


def pass_fail(name: str, passed: bool, message: str | None) -> float:
    """Record a comparison scored 1.0 (equal) or 0.0 and return the score."""
    __tracebackhide__ = True
    score = 1.0 if passed else 0.0
    conclude(name, passed, message, score)
    return score


def texts(output: Any, expected: Any, method: str) -> tuple[str, str]:
    """The output's text and the expected text, for the methods comparing texts."""
    __tracebackhide__ = True
    text = as_text(output, f"assert_golden({method})")
    if not isinstance(expected, (str, Completion)):
        raise UsageError(f"assert_golden({method}): expected must be a str, got "
                         f"{type(expected).__name__} {short_repr(expected)}")
    return text, expected.text if isinstance(expected, Completion) else expected
