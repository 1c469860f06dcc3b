"""Golden comparison of lists written as text (``method="set"``): the items, in any
order, equal the expected ones (or their Jaccard similarity clears a threshold)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from llmcheck.checks.base import (
    as_text,
    conclude,
    short_repr,
)
from llmcheck.checks.golden.options import (
    GoldenOptions,
    fmt,
)
from llmcheck.checks.golden.text import normalize_text
from llmcheck.errors import UsageError

_ITEM_SPLIT = re.compile(r"\r?\n|[,;]")


_BULLET = re.compile(r"^\s*(?:[-*+\u2022\u00b7\u2013\u2014]|\d{1,3}[.)]|[A-Za-z][)])\s+")


_CONJUNCTION = re.compile(r"^(?:and|or)\s+", re.IGNORECASE)


def split_items(text: str) -> list[str]:
    """Items of a list written as text: split at newlines, commas and semicolons,
    bullets (``-``, ``*``, ``•``, ``1.``, ``a)``) and a leading ``and``/``or``
    removed, each :func:`normalize_text`-ed, empty ones dropped. Commas inside
    an item (``1,000``) split it: write such lists one item per line."""
    items = []
    for piece in _ITEM_SPLIT.split(text):
        piece = _CONJUNCTION.sub("", _BULLET.sub("", piece).strip())
        normalized = normalize_text(piece)
        if normalized:
            items.append(normalized)
    return items


def golden_set(output: Any, expected: Any, threshold: float | None,
                options: GoldenOptions) -> float:
    __tracebackhide__ = True
    text = as_text(output, "assert_golden(set)")
    want, got = set(_set_reference(expected)), set(split_items(text))
    union = want | got
    score = len(want & got) / len(union) if union else 1.0
    passed = want == got if threshold is None else score >= threshold
    name = "golden.set" if threshold is None else f"golden.set(>={fmt(threshold)})"
    message = None
    if not passed:
        missing, extra = sorted(want - got), sorted(got - want)
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {short_repr(missing, 300)}")
        if extra:
            parts.append(f"extra {len(extra)}: {short_repr(extra, 300)}")
        need = "equal sets" if threshold is None else f"Jaccard >= {fmt(threshold)}"
        message = f"Jaccard {score:.3f}, need {need}; " + "; ".join(parts)
    conclude(name, passed, message, round(score, 6))
    return score


def _set_reference(expected: Any) -> list[str]:
    """The expected items, normalized: a str split like the output, or a list of str."""
    __tracebackhide__ = True
    if isinstance(expected, str):
        return split_items(expected)
    if isinstance(expected, Iterable) and not isinstance(expected, (bytes, dict)):
        reference = []
        for item in expected:
            if not isinstance(item, str):
                raise UsageError(f"assert_golden(set): expected items must be str, got "
                                 f"{short_repr(item)}")
            normalized = normalize_text(item)
            if normalized:
                reference.append(normalized)
        return reference
    raise UsageError(f"assert_golden(set): expected must be a list of str or a str, got "
                     f"{short_repr(expected)}")
