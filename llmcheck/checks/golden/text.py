"""Golden comparison of texts: ``exact``, ``normalized`` (:func:`normalize_text`) and
``fuzzy`` (rapidfuzz similarity), and the diff a failure shows."""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Any

from llmcheck.checks.base import (
    conclude,
    excerpt_around,
)
from llmcheck.checks.golden.options import (
    DEFAULT_THRESHOLDS,
    GoldenOptions,
    fmt,
    pass_fail,
    texts,
)

_NON_WORD = re.compile(r"[^\w\s]")


_JOINERS = frozenset("'\u2019\u2018\u02bc-\u2010\u2011.\u00b7")


def normalize_text(text: str) -> str:
    """Canonical form for ``normalized`` comparison.

    NFKC (so ``ﬁ``/``fi``, full-width and compatibility forms agree), case
    folded, punctuation removed and whitespace collapsed. Punctuation inside a
    word that joins it (``don't``, ``e-mail``, ``U.S.A``) is dropped so the
    parts join (``dont``, ``email``, ``usa``); other punctuation becomes a space
    (``yes—really`` and ``yes — really`` agree); ``.`` and ``,`` between digits
    are kept (``3.14`` is not ``314``). Symbols (``$``, ``%``, ``+``, emoji) and
    accents are kept. Turkish dotless ``ı`` folds to ``i``, since ``ı.upper()`` is
    ``I``: that keeps the comparison invariant under any change of case.
    """
    folded = unicodedata.normalize("NFKC", text).casefold().replace("\u0131", "i")
    text = unicodedata.normalize("NFKC", folded)

    def replace(match: re.Match[str]) -> str:
        ch = match.group(0)
        if not unicodedata.category(ch).startswith("P"):
            return ch
        i = match.start()
        before = text[i - 1] if i > 0 else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if ch in ".," and before.isdigit() and after.isdigit():
            return ch
        if ch in _JOINERS and _is_word(before) and _is_word(after):
            return ""
        return " "

    return " ".join(_NON_WORD.sub(replace, text).split())


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _visible(line: str, width: int = 160) -> str:
    line = _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", line)
    return line if len(line) <= width else line[: width - 3] + "..."


def first_difference(a: str, b: str) -> int:
    """Index of the first character where ``a`` and ``b`` differ (O(n log n), C-speed)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def text_diff(expected: str, actual: str, *, max_lines: int = 30) -> str:
    """Where two texts first differ, and a unified diff (cut) when they span lines."""
    at = first_difference(expected, actual)
    parts = [
        f"first difference at char {at:,}: expected "
        f"{excerpt_around(expected, at, at + 1, 30, position=False)}, got "
        f"{excerpt_around(actual, at, at + 1, 30, position=False)}"
    ]
    exp_lines = expected.splitlines()
    act_lines = actual.splitlines()
    if len(exp_lines) > 1 or len(act_lines) > 1:
        limit = 400  # difflib is quadratic in the worst case: diff the beginning only
        diff = list(difflib.unified_diff(exp_lines[:limit], act_lines[:limit], "expected",
                                         "output", n=1, lineterm=""))
        shown = [_visible(line) for line in diff[:max_lines]]
        if len(diff) > max_lines:
            shown.append(f"... ({len(diff) - max_lines} more diff lines)")
        if len(exp_lines) > limit or len(act_lines) > limit:
            shown.append(f"(diff of the first {limit} lines)")
        parts.append("\n".join(shown))
    return "\n".join(parts)


def golden_exact(output: Any, expected: Any, threshold: float | None,
                  options: GoldenOptions) -> float:
    __tracebackhide__ = True
    text, reference = texts(output, expected, "exact")
    passed = text == reference
    return pass_fail("golden.exact", passed, None if passed else text_diff(reference, text))


def golden_normalized(output: Any, expected: Any, threshold: float | None,
                       options: GoldenOptions) -> float:
    __tracebackhide__ = True
    text, reference = texts(output, expected, "normalized")
    a, b = normalize_text(reference), normalize_text(text)
    passed = a == b
    return pass_fail("golden.normalized", passed,
                      None if passed else "normalized texts differ; " + text_diff(a, b))


def golden_fuzzy(output: Any, expected: Any, threshold: float | None,
                  options: GoldenOptions) -> float:
    __tracebackhide__ = True
    text, reference = texts(output, expected, "fuzzy")
    limit = DEFAULT_THRESHOLDS["fuzzy"] if threshold is None else threshold
    use_normal = options.normalize is None or options.normalize
    a, b = (normalize_text(reference), normalize_text(text)) if use_normal else (reference,
                                                                                 text)
    from rapidfuzz import fuzz

    score = fuzz.ratio(a, b) / 100.0
    passed = score >= limit
    name = f"golden.fuzzy(>={fmt(limit)}{'' if use_normal else ', raw'})"
    message = None
    if not passed:
        message = f"similarity {score:.3f} < {fmt(limit)}; " + text_diff(a, b)
    conclude(name, passed, message, round(score, 6))
    return score
