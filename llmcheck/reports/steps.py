"""Where failing episodes went wrong, for the terminal, markdown and HTML.

Read from the record only (``TestRecord.step_failures``): the failed samples of a test
whose path checks name a step, grouped by the first such step and its check, the most
frequent first: ``3x step 2: cancel_order, tool_called_with(cancel_order, ...)``. Tests
without episodes (or whose failures name no step) get nothing, so the other sections stay
as they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from llmcheck.core.outcome import shorten_message
from llmcheck.records.schema import TestRecord
from llmcheck.reports.cells import fmt_indices
from llmcheck.reports.view import text

HEADING = "where failing episodes first went wrong (first failed step, its check):"
NOTE = ("Failed samples grouped by the first step of their episode (in step order; "
        "'final': the end of the episode, its final answer or state) whose path check "
        "failed, and that check; samples whose failed checks name no step are not counted "
        "here.")
CHECK_WIDTH = 120
"""Longest check name shown (names are cut at a word boundary beyond it)."""


@dataclass(frozen=True)
class StepRow:
    """One group of one test, as printed (every text printable and secret-free)."""

    nodeid: str
    step: str
    check: str
    count: int
    samples: str
    """``1, 4, 7`` (the first ten, then how many more)"""


def step_rows(tests: Iterable[TestRecord]) -> list[StepRow]:
    """A row per step group of each test, tests in report order."""
    return [StepRow(nodeid=text(t.nodeid, newlines=False, limit=1000),
                    step=text(g.step, newlines=False, limit=200),
                    check=shorten_message(text(g.check, newlines=False), CHECK_WIDTH),
                    count=g.count, samples=fmt_indices(g.samples))
            for t in tests for g in t.step_failures]


def step_lines(record: TestRecord) -> list[str]:
    """The terminal's lines for one test (under its failure groups); none without."""
    rows = step_rows([record])
    if not rows:
        return []
    return ["", HEADING] + [f"  {r.count:>4}x {r.step} — {r.check}  (samples {r.samples})"
                            for r in rows]
