"""Invariants on text: length, regular expressions, contained phrases, prefixes
and suffixes, a number in a range, a label from a fixed set.

Every check here runs in linear time in the size of the output (a 1 MB answer
is fine) and does no I/O; only token counting imports litellm (lazily,
offline). The checks live in modules named for what they look at:
``lengths``, ``patterns`` (regular expressions, phrases, prefixes and
suffixes), ``numbers`` and ``labels``; every name is importable from here.
"""

from __future__ import annotations

from llmcheck.checks.text.labels import assert_label, normalize_label
from llmcheck.checks.text.lengths import (
    assert_length,
    count_lines,
    count_sentences,
    count_tokens,
    count_words,
)
from llmcheck.checks.text.numbers import (
    assert_number_in_range,
    extract_number,
    number_in_output,
    parse_number,
)
from llmcheck.checks.text.patterns import (
    assert_contains,
    assert_ends_with,
    assert_matches,
    assert_not_matches,
    assert_starts_with,
    pattern_label,
)

__all__ = [
    "assert_contains",
    "assert_ends_with",
    "assert_label",
    "assert_length",
    "assert_matches",
    "assert_not_matches",
    "assert_number_in_range",
    "assert_starts_with",
    "count_lines",
    "count_sentences",
    "count_tokens",
    "count_words",
    "extract_number",
    "normalize_label",
    "number_in_output",
    "parse_number",
    "pattern_label",
]
