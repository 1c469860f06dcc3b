"""Latency requirements as a test states them: ``"p95 ttft <= 1.5s"``.

Parsed here, at the bottom of the house, into plain ``(metric, quantile, limit)``
triples, so the settings table can validate a marker keyword, an option or an ini key
with them; :func:`llmcheck.records.resolve.resolve_test` turns them into the record's
``LatencyRequirement`` s and the runner judges them (:mod:`llmcheck.core.latency`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from llmcheck.errors import UsageError

BUILTIN_METRICS = ("total", "ttft", "episode")
"""Durations llmcheck records itself: the sample's wall time, a stream's time to first
token, an episode's wall time. A test may require any other name it records with
``llmcheck.record_duration``."""

ACCEPTED = ("'pQ METRIC <= LIMIT' or 'pQ(METRIC) <= LIMIT', e.g. 'p95 ttft <= 1.5s' or "
            "'p50(total) <= 800ms': Q a percentile between 0 and 100 (exclusive), METRIC "
            "total, ttft, episode or a name the test records, LIMIT a positive number of "
            "seconds (s) or milliseconds (ms); or a list of such strings")

METRIC = re.compile(r"[A-Za-z_][\w.-]*")
"""A duration's name."""
_FORM = re.compile(
    r"\s*p(?P<q>\d+(?:\.\d+)?)\s*(?:\(\s*(?P<m1>[A-Za-z_][\w.-]*)\s*\)|\s(?P<m2>[A-Za-z_][\w.-]*))"
    r"\s*(?:<=|≤)\s*(?P<limit>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s)\s*", re.IGNORECASE)

Requirement = tuple[str, float, float]
"""(metric, quantile, limit in seconds)."""


def parse_requirement(text: str) -> Requirement:
    """One requirement string as (metric, quantile, limit in seconds); raises ValueError
    saying what is wrong with it."""
    match = _FORM.fullmatch(text)
    if match is None:
        raise ValueError("not of the accepted form")
    percent = float(match.group("q"))
    if not 0 < percent < 100:
        raise ValueError(f"percentile p{match.group('q')} is not between 0 and 100")
    limit = float(match.group("limit")) / (1000 if match.group("unit").lower() == "ms" else 1)
    if not (math.isfinite(limit) and limit > 0):
        raise ValueError("the limit must be more than 0")
    metric = match.group("m1") or match.group("m2")
    return metric, round(percent / 100, 10), limit


def parse_latency(value: Any, shown: str) -> tuple[Requirement, ...]:
    """A requirement string, or a list or tuple of them (text from the command line or
    an ini file: requirements separated by ``;``), as requirement triples; a bad one is a
    UsageError starting with ``shown`` and naming the bad string."""
    if isinstance(value, str):
        items: Sequence[Any] = [part for part in value.split(";") if part.strip()]
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise UsageError(f"{shown} is invalid (got {type(value).__name__}): expected "
                         f"{ACCEPTED}")
    if not items:
        raise UsageError(f"{shown} is invalid (no requirement): expected {ACCEPTED}")
    out: list[Requirement] = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"{shown} is invalid ({item!r} is not a string): expected "
                             f"{ACCEPTED}")
        try:
            out.append(parse_requirement(item))
        except ValueError as exc:
            raise UsageError(f"{shown} is invalid ({item.strip()!r}: {exc}): expected "
                             f"{ACCEPTED}") from None
    return tuple(out)


def count_requirements(value: Any) -> int:
    """How many requirements ``value`` states (0 for none; a value that does not parse
    counts its strings, so counting never fails: the test's setup names the mistake)."""
    if value is None:
        return 0
    if isinstance(value, str):
        return sum(1 for part in value.split(";") if part.strip())
    if isinstance(value, (list, tuple)):
        return len(value)
    return 1


def describe(metric: str, quantile: float, limit: float) -> str:
    """``p95 ttft <= 1.5 s``: a requirement as the reports name it."""
    return f"{percentile(quantile)} {metric} <= {seconds(limit)}"


def percentile(quantile: float) -> str:
    """``p95``, ``p99.9``."""
    return f"p{quantile * 100:.10g}"


def seconds(value: float) -> str:
    """``0.41 s``, ``1.5 s``, ``12 ms``: a duration as the reports print it."""
    if value < 0.1:
        return f"{value * 1000:.3g} ms"
    return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"
