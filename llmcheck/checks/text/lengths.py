"""Lengths of an output: words, sentences, lines, characters and tokens, and
``assert_length``. Token counting imports litellm, lazily and offline."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from llmcheck.checks.base import (
    as_text,
    check_bounds,
    conclude,
    excerpt,
)
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion

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
