"""Refusals: ``assert_not_refusal`` and the phrase list it uses.

Detection is by phrase, not by a model: it is cheap, deterministic and easy to
audit, and it catches the stock refusals models produce. Phrases are matched
case-insensitively anywhere in the output after normalization (curly quotes
made straight, punctuation and runs of whitespace turned into one space), and
contractions are expanded, so ``"I can't help with"`` also matches ``"I cannot
help with"``, ``"I can not help with"`` and ``"I’m sorry but I can’t"``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from llmcheck.checks.base import as_text, conclude, excerpt, excerpt_around, short_repr
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion

REFUSAL_PHRASES: tuple[str, ...] = (
    "As an AI language model",
    "As an AI model, I can't",
    "As an AI, I can't",
    "I'm sorry, but I can't",
    "I'm sorry, I can't",
    "I apologize, but I can't",
    "I can't help with",
    "I can't assist with",
    "I can't help you with",
    "I can't comply",
    "I can't fulfill",
    "I can't provide that",
    "I can't do that",
    "I'm unable to help",
    "I'm unable to assist",
    "I'm unable to comply",
    "I'm unable to fulfill",
    "I'm not able to help",
    "I'm not able to assist",
    "I won't be able to help",
    "I must decline",
    "I'm not comfortable providing",
    "That's not something I can help with",
    "It would be inappropriate for me to",
)
"""The default refusal phrases (each also matches its expanded contractions)."""

_CONTRACTIONS = (
    ("can't", ("can't", "cannot", "can not")),
    ("i'm", ("i'm", "i am")),
    ("won't", ("won't", "will not")),
    ("that's", ("that's", "that is")),
)
_NOT_WORD = re.compile(r"[^\w']+|(?<!\w)'+|'+(?!\w)")


def _normalize(text: str) -> str:
    text = text.casefold().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    return " " + " ".join(_NOT_WORD.sub(" ", text).split()) + " "


def _variants(phrase: str) -> set[str]:
    forms = {_normalize(phrase).strip()}
    for short, longs in _CONTRACTIONS:
        forms = {f" {form} ".replace(f" {short} ", f" {long} ").strip()
                 for form in forms for long in longs}
    return forms


@functools.lru_cache(maxsize=32)
def _compile(phrases: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    origin: dict[str, str] = {}
    for phrase in phrases:
        for form in _variants(phrase):
            origin.setdefault(form, phrase)
    alternatives = sorted(origin, key=len, reverse=True)
    pattern = re.compile(" (?:" + "|".join(re.escape(a) for a in alternatives) + ") ")
    return pattern, origin


def _phrases(phrases: Iterable[str] | None, extra: Iterable[str]) -> tuple[str, ...]:
    base = REFUSAL_PHRASES if phrases is None else tuple(phrases)
    values = base + tuple(extra)
    if not values:
        raise UsageError("assert_not_refusal: the phrase list is empty")
    for value in values:
        if not isinstance(value, str) or not _normalize(value).strip():
            raise UsageError(f"assert_not_refusal: each phrase must be a non-empty str, "
                             f"got {value!r}")
    return values


def assert_not_refusal(
    output: Completion | str,
    *,
    phrases: Iterable[str] | None = None,
    extra_phrases: Iterable[str] = (),
) -> None:
    """Check that the output is not a refusal ("I can't help with that").

    ``phrases`` replaces :data:`REFUSAL_PHRASES`; ``extra_phrases`` adds to it.
    An empty output is not a refusal (check emptiness with
    :func:`~llmcheck.checks.text.assert_length`). Recorded as ``not_refusal``;
    on failure ``value`` is the phrase that matched.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    values = _phrases(phrases, extra_phrases)
    text = as_text(output, "assert_not_refusal")
    pattern, origin = _compile(values)
    name = "not_refusal" if phrases is None and not tuple(extra_phrases) else (
        f"not_refusal({short_repr(list(values), 48)})")
    normalized = _normalize(text)
    found = pattern.search(normalized)
    if found is None:
        conclude(name, True)
        return
    phrase = origin[found.group(0).strip()]
    words = found.group(0).split()
    located = re.search(
        r"[^\w]+".join(re.escape(w).replace("'", "['\u2019\u2018`]") for w in words),
        text, re.IGNORECASE)
    where = excerpt_around(text, *located.span()) if located else excerpt(text)
    conclude(name, False, f"looks like a refusal: matched {phrase!r} in {where}", phrase)
