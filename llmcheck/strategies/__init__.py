"""Hypothesis strategies for the malformed inputs an LLM feature really receives.

Users and upstream systems send empty or whitespace-only text, huge pastes,
control and zero-width characters, right-to-left overrides, look-alike letters,
mixed scripts and emoji sequences, unbalanced quotes and code fences, markup
and prompt injection, broken JSON, and structured payloads that *almost* match
their schema. Each kind has its own strategy; :func:`malformed_text` draws
from all the text kinds.

Every strategy is built from plain hypothesis primitives (``sampled_from``,
``text``, ``lists``, ``builds``, ``one_of`` with the simplest kinds first), so
``@given`` shrinks a failure to a short, readable input.

Use them with ``@given`` directly, or inside an ``@llmcheck.repeat`` test with
:func:`draw`, which draws one example per sample from the sample's seed::

    @llmcheck.repeat(runs=20)
    def test_summary_survives_bad_input(llm):
        text = strategies.draw(strategies.malformed_text())
        ...

What "malformed JSON" means is defined by :func:`strict_json_object`: the
intended document is one JSON object, read as it is by the library's one JSON
reader (:mod:`llmcheck.model.jsontext`: strict RFC 8259, no ``NaN``/``Infinity``,
no duplicated keys, nesting of at most :data:`MAX_JSON_DEPTH`); everything
:func:`malformed_json` draws fails it.

The kinds live in modules named for what they draw: ``text`` (malformed text),
``broken_json``, ``structured`` (near-miss values) and ``seeded`` (:func:`draw`).
"""

from __future__ import annotations

from hypothesis import strategies as st

from llmcheck.strategies import text as _text
from llmcheck.strategies.broken_json import MAX_JSON_DEPTH, malformed_json, strict_json_object
from llmcheck.strategies.seeded import draw
from llmcheck.strategies.structured import VIOLATION_KINDS, violating, violating_json
from llmcheck.strategies.text import (
    bidi_overrides,
    control_characters,
    empty_text,
    homoglyphs,
    long_text,
    markup_injection,
    mixed_scripts,
    prompt_injection,
    unbalanced_delimiters,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "VIOLATION_KINDS",
    "bidi_overrides",
    "control_characters",
    "draw",
    "empty_text",
    "homoglyphs",
    "long_text",
    "malformed_json",
    "malformed_text",
    "markup_injection",
    "mixed_scripts",
    "prompt_injection",
    "strict_json_object",
    "unbalanced_delimiters",
    "violating",
    "violating_json",
]

# The character tables, for tests that check what a strategy drew.
WHITESPACE = _text.WHITESPACE
ZERO_WIDTH = _text.ZERO_WIDTH
CONTROL_CHARACTERS = _text.CONTROL_CHARACTERS
BIDI_CONTROLS = _text.BIDI_CONTROLS
HOMOGLYPHS = _text.HOMOGLYPHS
HOMOGLYPH_TO_ASCII = _text.HOMOGLYPH_TO_ASCII


def malformed_text() -> st.SearchStrategy[str]:
    """Any of the malformed text kinds of this package (simplest kinds first), including
    broken JSON. Long text is 10k to 20k characters here, to keep examples fast."""
    return st.one_of(
        empty_text(),
        control_characters(),
        unbalanced_delimiters(),
        bidi_overrides(),
        homoglyphs(),
        mixed_scripts(),
        markup_injection(),
        prompt_injection(),
        malformed_json(),
        long_text(10_000, 20_000),
    )
