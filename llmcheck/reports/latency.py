"""The latency requirements' rows, for the terminal summary, markdown and HTML.

One row per requirement of a test that states any, read from the record only
(``TestRecord.latency``): ``p95 ttft 0.41 s (95% interval 0.33-0.58 s) <= 1.5 s: PASS``.
Tests without requirements get no row, so the other tables stay as they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from llmcheck.config.latency import percentile, seconds
from llmcheck.records.schema import LatencyStat, TestRecord

HEADING = "latency requirements (sample quantile, exact order-statistic interval, limit)"
NOTE = ("Each requirement is judged on all the samples that recorded the duration, by exact "
        "order statistics (no assumption about the distribution); a test fails if its pass "
        "rate or any requirement fails. n≈: the samples that would settle an inconclusive "
        "one at the observed share under the limit.")


@dataclass(frozen=True)
class LatencyRow:
    """One requirement of one test, as printed."""

    nodeid: str
    text: str
    """``p95 ttft 0.41 s (95% interval 0.33-0.58 s) <= 1.5 s``"""
    verdict: str
    """``PASS``, ``FAIL (inconclusive, n≈240)``, ``ERROR``"""
    samples: int
    reason: str


def requirement_text(s: LatencyStat) -> str:
    """``p95 ttft 0.41 s (95% interval 0.33-0.58 s) <= 1.5 s``."""
    q = percentile(s.quantile)
    if s.estimate is None:
        return f"{q} {s.metric} (no value) <= {seconds(s.limit)}"
    if s.interval is not None:
        spread = (f"{s.interval.confidence:.0%} interval {_bare(s.interval.low)}-"
                  f"{seconds(s.interval.high)}")
    else:
        spread = "too few samples for an interval"
    return f"{q} {s.metric} {seconds(s.estimate)} ({spread}) <= {seconds(s.limit)}"


def _bare(value: float) -> str:
    """The low end without its unit when it has the high end's (``0.33-0.58 s``)."""
    text = seconds(value)
    return text[:-2] if text.endswith(" s") else text


def verdict_text(s: LatencyStat) -> str:
    word = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}[s.outcome]
    if s.conclusive or s.outcome == "error":
        return word
    more = f", n≈{s.samples_to_conclusive}" if s.samples_to_conclusive else ""
    return f"{word} (inconclusive{more})"


def latency_rows(tests: Iterable[TestRecord]) -> list[LatencyRow]:
    """A row per latency requirement, tests in the given order."""
    return [LatencyRow(t.nodeid, requirement_text(s), verdict_text(s), s.samples, s.reason)
            for t in tests for s in t.latency]


def latency_lines(tests: Iterable[TestRecord], width: int | None = None) -> list[str]:
    """The terminal's lines: a heading, then ``nodeid: row: VERDICT`` per requirement
    (the node id shortened to fit ``width``); none when no test states a requirement."""
    from llmcheck.reports.cells import shorten_nodeid

    rows = latency_rows(tests)
    if not rows:
        return []
    lines = [f"{HEADING}:"]
    for row in rows:
        tail = f": {row.text}: {row.verdict}"
        name = row.nodeid if width is None else shorten_nodeid(
            row.nodeid, max(20, width - 2 - len(tail)))
        lines.append(f"  {name}{tail}")
    return lines
