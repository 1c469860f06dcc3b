"""pass^k and pass@k in the reports: the terminal lines, and the rows the markdown and
HTML reports show, all from one place so they say the same figures the same way.

They are shown for the tests whose samples are episodes (a tool loop, a conversation:
the reliability agent benchmarks report) and for the cases of such a test pooled; every
test's record carries them in the JSON report (``tests[].reliability``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from llmcheck.records.schema import Aggregate, Interval, KStat, TestRecord
from llmcheck.reports.cells import shorten_nodeid
from llmcheck.text import printable

RELIABILITY_NOTE = ("pass^k: all of k runs pass; pass@k: at least one does; in brackets "
                    "the {level} interval (cases pooled: the mean over cases)")


def k_value_text(value: float | None, interval: Interval | None) -> str:
    """``0.73 (0.61-0.83)``; ``-`` without an estimate (fewer samples than k), and the
    interval alone in brackets then."""
    shown = "-" if value is None else f"{value:.2f}"
    if interval is None:
        return shown
    return f"{shown} ({interval.low:.2f}-{interval.high:.2f})"


def k_texts(stat: KStat) -> tuple[str, str]:
    """``pass^3 0.73 (0.61-0.83)`` and ``pass@3 0.99 (0.97-1.00)`` of one k."""
    return (f"pass^{stat.k} {k_value_text(stat.pass_hat_k, stat.pass_hat_k_interval)}",
            f"pass@{stat.k} {k_value_text(stat.pass_at_k, stat.pass_at_k_interval)}")


def shows_reliability(record: TestRecord) -> bool:
    """Whether the reports show ``record``'s pass^k and pass@k: its samples are episodes."""
    return bool(record.reliability) and any(s.episode is not None for s in record.samples)


@dataclass
class ReliabilityRow:
    """One test's (or one pooled test's) pass^k and pass@k, terminal-safe text."""

    test: str
    pooled: bool
    """the cases of a parametrized test pooled (means over cases)"""
    stats: list[KStat]

    @property
    def label(self) -> str:
        return f"{self.test} (all cases)" if self.pooled else self.test


def reliability_rows(tests: Sequence[TestRecord],
                     aggregates: Sequence[Aggregate]) -> list[ReliabilityRow]:
    """The tests that show pass^k (see :func:`shows_reliability`), each followed by its
    cases pooled when it is one case of a parametrized test whose cases were pooled."""
    shown = [t for t in tests if shows_reliability(t)]
    bases = {t.nodeid.split("[", 1)[0] for t in shown}
    rows = [ReliabilityRow(printable(t.nodeid), False, t.reliability) for t in shown]
    rows += [ReliabilityRow(printable(a.test), True, a.reliability) for a in aggregates
             if a.test in bases and a.reliability]
    return rows


def reliability_lines(tests: Sequence[TestRecord], aggregates: Sequence[Aggregate],
                      width: int | None = None) -> list[str]:
    """The terminal's lines: a test per line, ``nodeid: pass^2 0.81 (0.70-0.89), ...``,
    wrapped to ``width`` between figures (never inside one), the node id shortened to
    fit; nothing when no test shows pass^k."""
    rows = reliability_rows(tests, aggregates)
    if not rows:
        return []
    levels = {f"{t.confidence:.0%}" for t in tests if shows_reliability(t)}
    note = RELIABILITY_NOTE.format(level=levels.pop() if len(levels) == 1 else "its") + ":"
    lines = [note] if width is None else textwrap.wrap(note, width)
    for row in rows:
        hats, ats = zip(*(k_texts(s) for s in row.stats), strict=True)
        label = row.label if width is None else shorten_nodeid(row.label, max(20, width - 3))
        lines.append(f"  {label}:")
        lines += _wrap([*hats, *ats], width, "    ")
    return lines


def _wrap(items: list[str], width: int | None, indent: str) -> list[str]:
    """``items`` joined by ", " on lines of at most ``width`` (one line without one)."""
    if width is None:
        return [indent + ", ".join(items)]
    lines, current = [], ""
    for item in items:
        joined = f"{current}, {item}" if current else item
        if current and len(indent) + len(joined) + 1 > width:  # room for the comma
            lines.append(indent + current + ",")
            joined = item
        current = joined
    return [*lines, indent + current]
