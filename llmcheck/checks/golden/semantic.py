"""Golden comparison by meaning (``method="semantic"``): the cosine similarity of two
embeddings, from a pluggable embedder; the only method that does I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from llmcheck.checks.base import (
    conclude,
    excerpt,
)
from llmcheck.checks.golden.options import (
    DEFAULT_THRESHOLDS,
    Embedder,
    GoldenOptions,
    fmt,
    texts,
)
from llmcheck.errors import UsageError


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0.0 when either vector is zero."""
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return 0.0 if norm == 0 else max(-1.0, min(1.0, dot / norm))


def _embed_pair(embed: Embedder | None, texts: list[str]) -> tuple[list[float], list[float]]:
    if embed is None:
        from llmcheck.model.client import default_embedder  # lazily: only this path needs a model

        embed = default_embedder()
    vectors = embed(texts)
    try:
        vectors = [[float(x) for x in v] for v in vectors]
    except (TypeError, ValueError) as exc:
        raise UsageError(f"assert_golden(semantic): embed must return one list of floats per "
                         f"text ({exc})") from None
    if len(vectors) != 2 or len(vectors[0]) != len(vectors[1]) or not vectors[0]:
        raise UsageError(
            "assert_golden(semantic): embed must return 2 vectors of the same non-zero length "
            f"for 2 texts, got {len(vectors)} of lengths {[len(v) for v in vectors]}")
    return vectors[0], vectors[1]


def golden_semantic(output: Any, expected: Any, threshold: float | None,
                     options: GoldenOptions) -> float:
    __tracebackhide__ = True
    text, reference = texts(output, expected, "semantic")
    limit = DEFAULT_THRESHOLDS["semantic"] if threshold is None else threshold
    first, second = _embed_pair(options.embed, [text, reference])
    score = cosine(first, second)
    passed = score >= limit
    message = None
    if not passed:
        message = (f"cosine similarity {score:.3f} < {fmt(limit)}: expected "
                   f"{excerpt(reference, 120)}, got {excerpt(text, 120)}")
    conclude(f"golden.semantic(>={fmt(limit)})", passed, message, round(score, 6))
    return score
