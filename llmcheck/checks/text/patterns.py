"""Patterns in an output: regular expressions, contained phrases, prefixes and
suffixes."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from llmcheck.checks.base import (
    as_text,
    conclude,
    excerpt,
    excerpt_around,
    short_repr,
)
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion
from llmcheck.redact import redact

_FLAG_LETTERS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"),
                 (re.VERBOSE, "x"), (re.ASCII, "a"))


def compile_pattern(pattern: str | re.Pattern[str], flags: int, check: str) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        if flags:
            raise UsageError(f"{check}: flags cannot be given with an already-compiled pattern")
        if not isinstance(pattern.pattern, str):
            raise UsageError(f"{check}: the pattern must be a str pattern, not bytes")
        return pattern
    if not isinstance(pattern, str):
        raise UsageError(f"{check}: pattern must be a str or re.Pattern, got {short_repr(pattern)}")
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise UsageError(f"{check}: invalid regular expression {pattern!r}: {exc}") from None


def pattern_label(regex: re.Pattern[str], limit: int = 48) -> str:
    """``/^\\d+$/i``: a regex as it would be written, truncated."""
    source = regex.pattern if len(regex.pattern) <= limit else regex.pattern[: limit - 3] + "..."
    letters = "".join(letter for flag, letter in _FLAG_LETTERS if regex.flags & flag)
    return f"/{source}/{letters}"


def assert_matches(
    output: Completion | str,
    pattern: str | re.Pattern[str],
    flags: int = 0,
    *,
    fullmatch: bool = False,
) -> re.Match[str] | None:
    """Check that ``pattern`` is found in the output (``re.search``) and return the match.

    ``fullmatch=True`` requires the whole output to match (``re.fullmatch``).
    Recorded as ``matches(/pattern/flags)`` or ``fullmatch(/pattern/)``;
    ``value`` is the matched text (cut to 80 chars). See
    :func:`assert_not_matches` for the negation.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    regex = compile_pattern(pattern, flags, "assert_matches")
    text = as_text(output, "assert_matches")
    kind = "fullmatch" if fullmatch else "matches"
    name = f"{kind}({pattern_label(regex)})"
    found = regex.fullmatch(text) if fullmatch else regex.search(text)
    if found is None:
        what = "the output does not fully match" if fullmatch else "no match"
        conclude(name, False, f"{what} {pattern_label(regex, 200)} in {excerpt(text)}")
        return None
    conclude(name, True, value=redact(found.group(0))[:80])
    return found


def assert_not_matches(
    output: Completion | str, pattern: str | re.Pattern[str], flags: int = 0
) -> None:
    """Check that ``pattern`` is nowhere in the output (``re.search`` finds nothing).

    Recorded as ``not_matches(/pattern/flags)``; on failure ``value`` is the
    offending match and the message shows it in context.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    regex = compile_pattern(pattern, flags, "assert_not_matches")
    text = as_text(output, "assert_not_matches")
    name = f"not_matches({pattern_label(regex)})"
    found = regex.search(text)
    if found is None:
        conclude(name, True)
        return
    conclude(name, False,
             f"found {excerpt(found.group(0), 80)} matching {pattern_label(regex, 200)}: "
             f"{excerpt_around(text, found.start(), found.end())}",
             redact(found.group(0))[:80])


# --------------------------------------------------------------------------- phrases


def _fold(text: str, case_sensitive: bool) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text if case_sensitive else text.casefold()


def as_items(items: str | Iterable[str], check: str, what: str) -> list[str]:
    if isinstance(items, (set, frozenset)):
        # Set order changes from run to run (hash randomization); check names are
        # grouping keys in reports, so give them one stable order.
        items = sorted(items, key=str)
    values = [items] if isinstance(items, str) else list(items) if items is not None else []
    if not values:
        raise UsageError(f"{check}: give at least one {what}")
    for value in values:
        if not isinstance(value, str) or not value:
            raise UsageError(f"{check}: each {what} must be a non-empty str, got {value!r}")
    return values


def items_label(items: list[str]) -> str:
    return short_repr(items, 60)


def options_label(case_sensitive: bool, whole_word: bool = False) -> str:
    opts = []
    if case_sensitive:
        opts.append("case_sensitive=True")
    if whole_word:
        opts.append("whole_word=True")
    return "".join(f", {o}" for o in opts)


def _find(haystack: str, needle: str, whole_word: bool) -> tuple[int, int] | None:
    if not whole_word:
        at = haystack.find(needle)
        return None if at < 0 else (at, at + len(needle))
    match = re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack)
    return None if match is None else match.span()


def assert_contains(
    output: Completion | str,
    items: str | Iterable[str],
    *,
    mode: str = "all",
    case_sensitive: bool = False,
    whole_word: bool = False,
) -> int:
    """Check which of ``items`` occur in the output; returns how many were found.

    ``mode``: ``"all"`` (every item must occur), ``"any"`` (at least one) or
    ``"none"`` (none may occur). Matching is case-insensitive by default
    (``casefold``), because models vary capitalization freely; pass
    ``case_sensitive=True`` for identifiers and codes. Both sides are NFKC
    normalized (so ``ﬁ``/``fi`` and full-width forms match). ``whole_word=True``
    requires the item not to be part of a longer word (``cat`` does not match
    ``concatenate``).

    Recorded as ``contains_all(['Apollo 11', '1969'])``, ``contains_any([...])``
    or ``contains_none([...])`` (plus non-default options); ``value`` is the
    number of items found.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    if mode not in ("all", "any", "none"):
        raise UsageError(f"assert_contains: mode must be 'all', 'any' or 'none', got {mode!r}")
    values = as_items(items, "assert_contains", "item")
    text = as_text(output, "assert_contains")
    haystack = _fold(text, case_sensitive)
    spans = {item: _find(haystack, _fold(item, case_sensitive), whole_word) for item in values}
    found = [item for item in values if spans[item] is not None]
    missing = [item for item in values if spans[item] is None]
    name = f"contains_{mode}({items_label(values)}{options_label(case_sensitive, whole_word)})"
    message = None
    if mode == "all":
        passed = not missing
        if missing:
            message = (f"missing {len(missing)} of {len(values)}: {short_repr(missing, 200)} "
                       f"in {excerpt(text)}")
    elif mode == "any":
        passed = bool(found)
        if not found:
            message = f"none of {short_repr(values, 200)} found in {excerpt(text)}"
    else:
        passed = not found
        if found:
            shown = []
            for item in found[:5]:
                start, end = spans[item]  # type: ignore[misc]
                shown.append(f"{item!r} {excerpt_around(haystack, start, end)}")
            message = f"found {len(found)} forbidden: " + "; ".join(shown)
    conclude(name, passed, message, len(found))
    return len(found)


def _affix(output: Any, affixes: str | Sequence[str], case_sensitive: bool, strip: bool,
           check: str, end: bool) -> None:
    __tracebackhide__ = True
    values = as_items(affixes, check, "suffix" if end else "prefix")
    text = as_text(output, check)
    subject = text.strip() if strip else text
    folded = _fold(subject, case_sensitive)
    targets = tuple(_fold(v, case_sensitive) for v in values)
    passed = folded.endswith(targets) if end else folded.startswith(targets)
    label = short_repr(values[0], 48) if len(values) == 1 else items_label(values)
    kind = "ends_with" if end else "starts_with"
    name = f"{kind}({label}{options_label(case_sensitive)})"
    width = max(len(v) for v in values) + 20
    seen = subject[-width:] if end else subject[:width]
    message = None
    if not passed:
        if not subject:
            message = "the output is empty"
        else:
            where = "ends" if end else "starts"
            message = (f"expected the output to {where[:-1]} with "
                       f"{' or '.join(repr(v) for v in values[:5])}; it {where} with "
                       f"{'...' if end and len(subject) > width else ''}{seen!r}"
                       f"{'...' if not end and len(subject) > width else ''}")
    conclude(name, passed, message, seen[-40:] if end else seen[:40])


def assert_starts_with(
    output: Completion | str,
    prefix: str | Sequence[str],
    *,
    case_sensitive: bool = False,
    strip: bool = True,
) -> None:
    """Check that the output starts with ``prefix`` (or with one of several).

    Leading/trailing whitespace is ignored unless ``strip=False``;
    case-insensitive by default like :func:`assert_contains`. Recorded as
    ``starts_with('Answer:')``; ``value`` is how the output actually starts.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    _affix(output, prefix, case_sensitive, strip, "assert_starts_with", end=False)


def assert_ends_with(
    output: Completion | str,
    suffix: str | Sequence[str],
    *,
    case_sensitive: bool = False,
    strip: bool = True,
) -> None:
    """Check that the output ends with ``suffix`` (or with one of several).

    Same options as :func:`assert_starts_with`. Recorded as ``ends_with('.')``.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    _affix(output, suffix, case_sensitive, strip, "assert_ends_with", end=True)
