"""Invariants on text: length, regular expressions, contained phrases, prefixes
and suffixes, a number in a range, a label from a fixed set.

Every check here runs in linear time in the size of the output (a 1 MB answer
is fine) and does no I/O; only token counting imports litellm (lazily,
offline).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from llmcheck.checks.base import (
    as_text,
    check_bounds,
    conclude,
    excerpt,
    excerpt_around,
    short_repr,
)
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion

# --------------------------------------------------------------------------- counting

_CJK = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]"
)
"""Hiragana, katakana and Han ideographs: scripts written without spaces between words."""
_WORD = re.compile(r"\w+(?:['\u2019\-]\w+|[.,]\d+)*")
_SENTENCE_END = re.compile(
    "[.!?\u2026]+[\"'\u201d\u2019)\\]]*\\s+|[\u3002\uff01\uff1f]+\\s*|\\n\\s*\\n"
)
_HAS_WORD = re.compile(r"\w")


def count_words(text: str) -> int:
    """Words in ``text``: runs of letters/digits, keeping ``don't``, ``e-mail``, ``3.14``
    together. Each Chinese/Japanese character counts as one word (they are not
    separated by spaces); this is a best-effort convention, like most word
    processors'. Thai, Lao and Khmer runs count as one word each."""
    cjk = len(_CJK.findall(text))
    if cjk:
        text = _CJK.sub(" ", text)
    return cjk + len(_WORD.findall(text))


def count_sentences(text: str) -> int:
    """Sentences: pieces ending in ``. ! ? …`` (before whitespace), ``。！？``, or a blank
    line. Best-effort: abbreviations such as ``e.g. this`` split a sentence."""
    return sum(1 for piece in _SENTENCE_END.split(text) if _HAS_WORD.search(piece))


def count_lines(text: str) -> int:
    """Non-blank lines."""
    return sum(1 for line in text.splitlines() if line.strip())


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens of ``text`` for ``model`` with ``litellm.token_counter``, offline.

    ``model=None`` uses litellm's default encoding (tiktoken ``cl100k_base``,
    bundled with litellm). Known OpenAI models use their own bundled encoding
    (``gpt-4o``: ``o200k_base``). For models whose tokenizer litellm would
    download from the Hugging Face hub (Llama 2/3, Cohere Command R), the
    download is disabled (``HF_HUB_OFFLINE=1``) and litellm falls back to
    ``cl100k_base``: an approximation that typically stays within about 10-20% of
    the model's true count. No network connection is made either way.
    """
    from llmcheck.model.client import import_litellm

    litellm = import_litellm()
    return int(litellm.token_counter(model=model or "", text=text))


_COUNTERS: dict[str, Callable[[str, str | None], int]] = {
    "chars": lambda text, model: len(unicodedata.normalize("NFC", text)),
    "words": lambda text, model: count_words(text),
    "sentences": lambda text, model: count_sentences(text),
    "lines": lambda text, model: count_lines(text),
    "tokens": lambda text, model: count_tokens(text, model),
}
"""How :func:`assert_length` counts each unit: ``(text, model) -> count``."""
_UNITS = tuple(_COUNTERS)


def _plural(unit: str, count: float) -> str:
    return unit[:-1] if count == 1 else unit


def assert_length(
    output: Completion | str,
    *,
    min_chars: int | None = None,
    max_chars: int | None = None,
    min_words: int | None = None,
    max_words: int | None = None,
    min_sentences: int | None = None,
    max_sentences: int | None = None,
    min_lines: int | None = None,
    max_lines: int | None = None,
    min_tokens: int | None = None,
    max_tokens: int | None = None,
    model: str | None = None,
) -> dict[str, int]:
    """Check the output's length in characters, words, sentences, lines or tokens.

    Characters are Unicode code points after NFC normalization; words, sentences
    and lines are counted by :func:`count_words`, :func:`count_sentences`
    (best-effort) and :func:`count_lines` (non-blank); tokens by
    :func:`count_tokens` for ``model``. Returns the measured counts.

    Recorded as ``max_words(50)`` for one bound, ``words(10..50)`` for both
    bounds of one unit, ``length(max_words=50, max_chars=300)`` for several
    units; ``value`` is the count (or ``"words=73 chars=412"`` for several).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    bounds = {
        "min_chars": min_chars, "max_chars": max_chars, "min_words": min_words,
        "max_words": max_words, "min_sentences": min_sentences, "max_sentences": max_sentences,
        "min_lines": min_lines, "max_lines": max_lines, "min_tokens": min_tokens,
        "max_tokens": max_tokens,
    }
    units = _length_units(bounds, model)
    text = as_text(output, "assert_length")
    counts = {unit: _COUNTERS[unit](text, model) for unit in units}
    problems = _length_problems(counts, bounds)
    name, value = _length_record(counts, bounds, model)
    message = None
    if problems:
        message = f"{'; '.join(problems)} in {excerpt(text)}"
    conclude(name, not problems, message, value)
    return counts


def _length_units(bounds: dict[str, int | None], model: str | None) -> list[str]:
    """The units ``bounds`` constrain, in :data:`_UNITS` order; a UsageError for a
    bound that is not a non-negative integer, no bound at all or a useless ``model``."""
    __tracebackhide__ = True
    check_bounds("assert_length", **bounds)
    for key, bound in bounds.items():
        if bound is not None and (bound < 0 or int(bound) != bound):
            raise UsageError(f"assert_length: {key} must be a non-negative integer, got {bound!r}")
    units = [u for u in _UNITS if bounds[f"min_{u}"] is not None or bounds[f"max_{u}"] is not None]
    if not units:
        raise UsageError("assert_length: give at least one bound: min_/max_ chars, words, "
                         "sentences, lines or tokens")
    if model is not None and "tokens" not in units:
        raise UsageError("assert_length: model= only applies to min_tokens/max_tokens")
    return units


def _length_problems(counts: dict[str, int], bounds: dict[str, int | None]) -> list[str]:
    """One line per count outside its bounds (none when every count fits)."""
    problems: list[str] = []
    for unit, n in counts.items():
        low, high = bounds[f"min_{unit}"], bounds[f"max_{unit}"]
        if high is not None and n > high:
            problems.append(f"expected at most {high} {_plural(unit, high)}, found {n}")
        if low is not None and n < low:
            problems.append(f"expected at least {low} {_plural(unit, low)}, found {n}")
    return problems


def _length_record(counts: dict[str, int], bounds: dict[str, int | None],
                   model: str | None) -> tuple[str, int | str]:
    """The recorded name and value: ``words(10..50)``/``max_words(50)`` and the count for
    one unit, ``length(max_words=50, max_chars=300)`` and ``"words=73 chars=412"`` for
    several."""
    if len(counts) > 1:
        parts = [f"{k}={v}" for k, v in bounds.items() if v is not None]
        if model:
            parts.append(f"model={model}")
        return f"length({', '.join(parts)})", " ".join(f"{k}={v}" for k, v in counts.items())
    [(unit, n)] = counts.items()
    low, high = bounds[f"min_{unit}"], bounds[f"max_{unit}"]
    suffix = f", {model}" if unit == "tokens" and model else ""
    if low is not None and high is not None:
        return f"{unit}({low}..{high}{suffix})", n
    if high is not None:
        return f"max_{unit}({high}{suffix})", n
    return f"min_{unit}({low}{suffix})", n


# --------------------------------------------------------------------------- regular expressions

_FLAG_LETTERS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"),
                 (re.VERBOSE, "x"), (re.ASCII, "a"))


def _compile(pattern: str | re.Pattern[str], flags: int, check: str) -> re.Pattern[str]:
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
    regex = _compile(pattern, flags, "assert_matches")
    text = as_text(output, "assert_matches")
    kind = "fullmatch" if fullmatch else "matches"
    name = f"{kind}({pattern_label(regex)})"
    found = regex.fullmatch(text) if fullmatch else regex.search(text)
    if found is None:
        what = "the output does not fully match" if fullmatch else "no match"
        conclude(name, False, f"{what} {pattern_label(regex, 200)} in {excerpt(text)}")
        return None
    conclude(name, True, value=found.group(0)[:80])
    return found


def assert_not_matches(
    output: Completion | str, pattern: str | re.Pattern[str], flags: int = 0
) -> None:
    """Check that ``pattern`` is nowhere in the output (``re.search`` finds nothing).

    Recorded as ``not_matches(/pattern/flags)``; on failure ``value`` is the
    offending match and the message shows it in context.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    regex = _compile(pattern, flags, "assert_not_matches")
    text = as_text(output, "assert_not_matches")
    name = f"not_matches({pattern_label(regex)})"
    found = regex.search(text)
    if found is None:
        conclude(name, True)
        return
    conclude(name, False,
             f"found {excerpt(found.group(0), 80)} matching {pattern_label(regex, 200)}: "
             f"{excerpt_around(text, found.start(), found.end())}",
             found.group(0)[:80])


# --------------------------------------------------------------------------- phrases


def _fold(text: str, case_sensitive: bool) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text if case_sensitive else text.casefold()


def _items(items: str | Iterable[str], check: str, what: str) -> list[str]:
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


def _items_label(items: list[str]) -> str:
    return short_repr(items, 60)


def _options(case_sensitive: bool, whole_word: bool = False) -> str:
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
    values = _items(items, "assert_contains", "item")
    text = as_text(output, "assert_contains")
    haystack = _fold(text, case_sensitive)
    spans = {item: _find(haystack, _fold(item, case_sensitive), whole_word) for item in values}
    found = [item for item in values if spans[item] is not None]
    missing = [item for item in values if spans[item] is None]
    name = f"contains_{mode}({_items_label(values)}{_options(case_sensitive, whole_word)})"
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
    values = _items(affixes, check, "suffix" if end else "prefix")
    text = as_text(output, check)
    subject = text.strip() if strip else text
    folded = _fold(subject, case_sensitive)
    targets = tuple(_fold(v, case_sensitive) for v in values)
    passed = folded.endswith(targets) if end else folded.startswith(targets)
    label = short_repr(values[0], 48) if len(values) == 1 else _items_label(values)
    kind = "ends_with" if end else "starts_with"
    name = f"{kind}({label}{_options(case_sensitive)})"
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


# --------------------------------------------------------------------------- numbers

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
    regex = _compile(pattern, flags, check or "extract_number")
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


# --------------------------------------------------------------------------- labels

_LABEL_TRIM = " \t\r\n\"'`*_.,;:!?()[]{}<>\u201c\u201d\u2018\u2019\u00ab\u00bb\u3002"


def normalize_label(text: str, case_sensitive: bool = False) -> str:
    """NFKC, whitespace collapsed, surrounding quotes/markdown/punctuation removed,
    case folded (unless ``case_sensitive``): ``' **Positive.**\\n'`` -> ``'positive'``."""
    text = " ".join(unicodedata.normalize("NFKC", text).split()).strip(_LABEL_TRIM)
    return text if case_sensitive else text.casefold()


def assert_label(
    output: Completion | str,
    labels: Iterable[str],
    *,
    case_sensitive: bool = False,
) -> str | None:
    """Check that the output is exactly one of ``labels`` and return that label.

    Both the output and the labels are compared after :func:`normalize_label`,
    so ``"Positive."``, ``"**positive**"`` and ``" POSITIVE\\n"`` all count as
    ``"positive"``; an answer that merely *contains* a label (``"The sentiment
    is positive"``) fails, with a hint. Returns the label as given in
    ``labels``. Recorded as ``label(['negative', 'positive'])``; ``value`` is the
    normalized output (cut to 60 chars).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    values = _items(labels, "assert_label",
                    "label")
    canon: dict[str, str] = {}
    for label in values:
        key = normalize_label(label, case_sensitive)
        if not key:
            raise UsageError(f"assert_label: label {label!r} is empty after normalization")
        if key in canon and canon[key] != label:
            raise UsageError(f"assert_label: labels {canon[key]!r} and {label!r} are the same "
                             "after normalization; pass case_sensitive=True or drop one")
        canon[key] = label
    text = as_text(output, "assert_label")
    got = normalize_label(text, case_sensitive)
    name = f"label({_items_label(values)}{_options(case_sensitive)})"
    if got in canon:
        conclude(name, True, value=got[:60])
        return canon[got]
    message = f"expected one of {short_repr(values, 200)}, got {excerpt(text, 120)}"
    inside = [label for key, label in canon.items()
              if re.search(rf"(?<!\w){re.escape(key)}(?!\w)", got)]
    if inside:
        message += f" (it mentions {short_repr(inside, 120)} but is not just a label)"
    conclude(name, False, message, got[:60])
    return None
