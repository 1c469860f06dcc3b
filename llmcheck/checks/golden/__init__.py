"""Golden examples: compare an output with the expected answer.

One entry point, :func:`assert_golden`, with a ``method`` per kind of
answer: ``exact``, ``normalized`` (case, whitespace, punctuation, NFKC),
``fuzzy`` (edit-distance similarity), ``numeric`` (tolerances), ``json``
(structural equality with ignored paths and unordered lists), ``set`` (lists
of items in any order) and ``semantic`` (embedding cosine similarity, the
only method that does I/O, through a pluggable embedder).

Failure messages show where the answers differ: a unified diff for text,
the differing JSON paths with expected and actual values, the missing and
extra items of a set.

The methods live in modules named for what they compare: ``text`` (exact,
normalized, fuzzy), ``structured`` (json), ``numeric``, ``sets`` and
``semantic``; ``options`` holds the arguments they share. Every name is
importable from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from llmcheck.checks.golden.numeric import golden_numeric
from llmcheck.checks.golden.options import (
    DEFAULT_THRESHOLDS,
    METHODS,
    Embedder,
    GoldenOptions,
    check_arguments,
)
from llmcheck.checks.golden.semantic import cosine, golden_semantic
from llmcheck.checks.golden.sets import golden_set, split_items
from llmcheck.checks.golden.structured import JsonComparer, golden_json, parse_json_path
from llmcheck.checks.golden.text import (
    first_difference,
    golden_exact,
    golden_fuzzy,
    golden_normalized,
    normalize_text,
    text_diff,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "Embedder",
    "JsonComparer",
    "assert_golden",
    "cosine",
    "first_difference",
    "normalize_text",
    "parse_json_path",
    "split_items",
    "text_diff",
]


def assert_golden(
    output: Any,
    expected: Any,
    method: str = "exact",
    threshold: float | None = None,
    *,
    rel_tol: float | None = None,
    abs_tol: float | None = None,
    pattern: str | None = None,
    ignore_paths: Iterable[str] | None = None,
    unordered_lists: bool | None = None,
    lenient: bool | None = None,
    normalize: bool | None = None,
    embed: Embedder | None = None,
) -> float | None:
    """Compare the output with the expected (golden) answer; returns the score.

    Methods (and the options each accepts; others raise :class:`UsageError`):

    - ``exact``: the texts are identical. Score 1.0 or 0.0.
    - ``normalized``: equal after :func:`normalize_text` (case, whitespace,
      punctuation, NFKC). Score 1.0 or 0.0.
    - ``fuzzy``: similarity ratio of the normalized texts (``normalize=False``:
      raw texts) >= ``threshold`` (default 0.85). The ratio is rapidfuzz's
      ``fuzz.ratio`` / 100 (Indel distance, ``2*matches/total``), in O(n*m/64);
      compare long outputs with short references, not 1 MB with 1 MB.
    - ``numeric``: the first number in the output (or ``pattern``'s group) is
      ``math.isclose`` to ``expected`` with ``rel_tol`` (default 1e-9) and
      ``abs_tol`` (default 0). Score: the number found.
    - ``json``: structurally equal JSON (``expected`` may be a value or JSON
      text); numbers compare by value (1 == 1.0, but true != 1);
      ``ignore_paths`` (``'$.id'``, ``'$.items[*].ts'``, ``'$..ts'``) are skipped
      on both sides; ``unordered_lists=True`` compares every array as a
      multiset; ``lenient=True`` as in :func:`assert_json`. Score 1.0 or 0.0.
    - ``set``: the items of the output (see :func:`split_items`) equal the
      expected items (a list, or text split the same way); with ``threshold``,
      Jaccard similarity >= threshold instead. Score: the Jaccard similarity.
    - ``semantic``: cosine similarity of embeddings >= ``threshold`` (default
      0.8). ``embed(texts) -> vectors`` is any callable; by default
      ``llmcheck.model.client.default_embedder()`` (an embedding model through
      litellm). Score: the similarity.

    Recorded as ``golden.<method>`` with its options, e.g.
    ``golden.fuzzy(>=0.85)``; ``value`` is the score. Inside ``soft()`` a failed
    comparison still returns its score.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    options = GoldenOptions(rel_tol, abs_tol, pattern, ignore_paths, unordered_lists, lenient,
                       normalize, embed)
    threshold = check_arguments(method, threshold, options)
    return _GOLDEN_METHODS[method](output, expected, threshold, options)


_GoldenMethod = Callable[[Any, Any, float | None, GoldenOptions], float | None]


_GOLDEN_METHODS: dict[str, _GoldenMethod] = {
    "exact": golden_exact,
    "normalized": golden_normalized,
    "fuzzy": golden_fuzzy,
    "numeric": golden_numeric,
    "json": golden_json,
    "set": golden_set,
    "semantic": golden_semantic,
}
"""One comparison per method: ``(output, expected, threshold, options) -> score``."""
