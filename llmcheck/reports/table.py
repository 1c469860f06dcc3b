"""The session's tables for a terminal: pass rates per test, and pooled per
parametrized test, fitted to a width.

With no width a table shows every column (for files and pipes); with a terminal's
width it gives up columns and detail in a fixed order (:data:`SUMMARY_FIT_STEPS`) and
shortens node ids in the middle, so it fits without wrapping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from llmcheck.records.schema import Aggregate, TestRecord
from llmcheck.reports.cells import (
    MIN_TEST_WIDTH,
    NO_VERDICT,
    early_stop_cell,
    fmt_cost,
    fmt_count,
    fmt_interval,
    fmt_rate,
    interval_level,
    interval_text,
    printable_record,
    shorten_nodeid,
    verdict_cell,
)
from llmcheck.text import clip, ellipsize


def fit_width(is_tty: bool, terminal_columns: Callable[[], int]) -> int | None:
    """The one width rule of every table llmcheck prints (pytest's summary and ``llmcheck
    show``): ``COLUMNS`` when it is set to a positive integer, else the terminal's width
    (``terminal_columns()``) when the output is a terminal, else None: a log or a pipe with
    no width set gets every column, since a node id cut there cannot be rerun."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return terminal_columns() if is_tty else None


def aggregates_table(aggregates: Iterable[Aggregate], width: int | None = None) -> str:
    """Pass rates pooled over the cases of each parametrized test. With ``width``, fitted
    like :func:`summary_table`: the pooled counts go first; test, cases passed (of
    cases), rate and interval stay."""
    from tabulate import tabulate

    aggregates = [printable_record(a) for a in aggregates]
    rows = [[a.test, str(a.cases), f"{a.cases_passed}/{a.cases}", str(a.passed), str(a.failed),
             str(a.errors), fmt_rate(a.pass_rate), interval_text(a.interval, a.passed + a.failed)]
            for a in aggregates]
    headers = ["test (all cases)", "cases", "cases passed", "passed", "failed", "errors", "rate",
               "interval (cases)"]
    full = tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
    if width is None or _fits(full, width):
        return full

    def layouts() -> Iterator[_Table]:
        # short: "cases" is the denominator of "cases ok" (10/12)
        short = ["test (all cases)", "cases", "cases ok", "pass", "fail", "err", "rate",
                 "interval"]
        yield _Table(headers, rows)
        keep = [0, 2, 3, 4, 5, 6, 7]
        yield _Table([short[i] for i in keep], [[row[i] for i in keep] for row in rows])
        for dropped in ((3, 4), (5,)):
            keep = [i for i in keep if i not in dropped]
            yield _Table([short[i] for i in keep], [[row[i] for i in keep] for row in rows])
        compact = [[*row[:-1], interval_text(a.interval, a.passed + a.failed, compact=True)]
                   for row, a in zip(rows, aggregates, strict=True)]
        yield _Table([short[i] for i in keep], [[row[i] for i in keep] for row in compact])
        yield _Table([short[i] for i in keep], [[row[i] for i in keep] for row in compact],
                     sep=1, last_resort=True)

    return _fit(layouts(), width)


SUMMARY_HEADERS = ["test", "run/planned", "passed", "failed", "errors", "rate", "interval",
                   "required", "verdict", "early stop"]
USAGE_HEADERS = ["calls", "tokens", "cost"]


def summary_headers(records: Iterable[TestRecord]) -> list[str]:
    """:data:`SUMMARY_HEADERS`, the interval's saying its confidence level (``95%
    interval``) when every test shares one; else each interval cell says it."""
    level = interval_level(records)
    return [f"{level} interval" if h == "interval" and level else h for h in SUMMARY_HEADERS]


def summary_rows(records: Iterable[TestRecord]) -> list[list[str]]:
    records = [printable_record(r) for r in records]
    with_usage = any(r.usage.calls for r in records)
    mixed = interval_level(records) is None
    rows = []
    for r in records:
        early = early_stop_cell(r)
        verdict = verdict_cell(r)
        counted = r.passed + r.failed + r.errors
        row = [
            r.nodeid, f"{counted}/{r.planned}", str(r.passed), str(r.failed), str(r.errors),
            fmt_rate(r.pass_rate) + ("" if r.worst_case_rate is None
                                     else f" ({r.worst_case_rate:.2f})"),
            (f"{r.confidence:.0%} " if mixed and r.scored else "") + fmt_interval(r),
            f"{r.min_pass_rate:.2f}", verdict, early,
        ]
        if with_usage:
            u = r.usage
            row += [str(u.calls), str(u.prompt_tokens + u.completion_tokens),
                    fmt_cost(u.cost, u.unpriced_calls)]
        rows.append(row)
    return rows


WORST_CASE_NOTE = "rate (x): x counts the infrastructure errors as failures, the worst case"


def summary_table(records: Iterable[TestRecord], width: int | None = None) -> str:
    """The pass-rate table, with a note when a rate shows its worst case beside it."""
    records = list(records)
    table = _summary_table(records, width)
    if any(r.worst_case_rate is not None for r in records):
        table += "\n" + WORST_CASE_NOTE
    return table


def _summary_table(records: list[TestRecord], width: int | None = None) -> str:
    """The session's pass-rate table, one row per test.

    ``width=None``: every column, nothing shortened (for files and pipes). With a
    ``width`` (a terminal's), the table fits in it: when all columns do not fit, the
    layouts of :data:`SUMMARY_FIT_STEPS` are tried in turn, each giving up a little more,
    until the test column gets a reasonable share of the width (40%, at least
    :data:`MIN_TEST_WIDTH`); the test ids are then shortened in the middle to fill what is
    left. Test, n (run/planned), rate, interval, required and verdict always stay. The
    verdict is abbreviated only when its full text does not fit even with the test ids at
    :data:`MIN_TEST_WIDTH`, and always says pass, fail or error and whether it is
    inconclusive. Only when even the last layout leaves less than :data:`MIN_TEST_WIDTH`
    for the test ids does the table overflow ``width``.
    """
    from tabulate import tabulate

    records = [printable_record(r) for r in records]
    rows = summary_rows(records)
    headers = summary_headers(records)
    if rows and len(rows[0]) > len(headers):
        headers += USAGE_HEADERS
    full = tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
    if width is None or _fits(full, width):
        return full
    with_usage = len(headers) > len(SUMMARY_HEADERS)
    return _fit(_summary_tables(records, with_usage), width)


@dataclass(frozen=True)
class SummaryLayout:
    """What a fitted summary table shows (see :data:`SUMMARY_FIT_STEPS`)."""

    short: bool = False
    """short headers (run/planned -> n, 95% interval -> 95% CI, required -> req, ...),
    token counts as 12k"""
    drop: frozenset[str] = frozenset()
    verdict: int = 0
    """the form of :func:`verdict_label`"""
    compact_interval: bool = False
    sep: int = 2

    @property
    def last_resort(self) -> bool:
        """Shortens the verdict or squeezes the columns: taken only when nothing else fits."""
        return self.verdict > 0 or self.sep < 2


SUMMARY_FIT_STEPS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("all columns, headers not padded", {}),
    ("short headers (run/planned -> n, 95% interval -> 95% CI, ...), token counts as 12k",
     {"short": True}),
    ("drop calls", {"drop": {"calls"}}),
    ("drop tokens", {"drop": {"tokens"}}),
    ("drop early stop", {"drop": {"stop"}}),
    ("drop cost", {"drop": {"cost"}}),
    ("drop passed and failed (n and rate tell them)", {"drop": {"passed", "failed"}}),
    ("drop errors", {"drop": {"errors"}}),
    ("interval '0.83-0.99'", {"compact_interval": True}),
    # last resorts: only when the full verdict does not fit even with the test ids at
    # MIN_TEST_WIDTH
    ("verdict 'PASS (inconcl., n≈139)'", {"verdict": 1}),
    ("verdict 'PASS? n≈139'", {"verdict": 2}),
    ("verdict 'PASS?'", {"verdict": 3}),
    ("one space between columns", {"sep": 1}),
)
"""How :func:`summary_table` gives up columns and detail to fit a width, in order and
cumulatively. Test, n, rate, interval, required and verdict are never dropped, and the
verdict is shortened only as a last resort (:attr:`SummaryLayout.last_resort`)."""


def summary_layouts() -> Iterator[SummaryLayout]:
    """The layouts of :data:`SUMMARY_FIT_STEPS`, widest first."""
    layout = SummaryLayout()
    for _, change in SUMMARY_FIT_STEPS:
        if "drop" in change:
            change = {**change, "drop": layout.drop | frozenset(change["drop"])}
        layout = replace(layout, **change)
        yield layout


_SUMMARY_COLUMNS = ("test", "n", "passed", "failed", "errors", "rate", "interval", "required",
                    "verdict", "stop", "calls", "tokens", "cost")
_USAGE_COLUMNS = ("calls", "tokens", "cost")
_SHORT_HEADERS = {"n": "n", "passed": "pass", "failed": "fail", "errors": "err",
                  "required": "req", "stop": "stop"}
INCONCLUSIVE_NOTE = "?: inconclusive verdict; n≈: samples that would settle it"


def _summary_tables(records: list[TestRecord], with_usage: bool) -> Iterator[_Table]:
    long_headers = dict(zip(_SUMMARY_COLUMNS, summary_headers(records) + USAGE_HEADERS,
                            strict=True))
    level = interval_level(records)
    mixed = level is None
    short = {**_SHORT_HEADERS, "interval": f"{level} CI" if level else "interval"}
    full_rows = [dict(zip(_SUMMARY_COLUMNS, row, strict=False)) for row in summary_rows(records)]
    inconclusive = any(not r.verdict.conclusive and r.verdict.outcome not in NO_VERDICT
                       for r in records)
    for layout in summary_layouts():
        columns = [c for c in _SUMMARY_COLUMNS
                   if c not in layout.drop and (with_usage or c not in _USAGE_COLUMNS)]
        headers = [short.get(c, long_headers[c]) if layout.short else long_headers[c]
                   for c in columns]
        rows = []
        for r, full in zip(records, full_rows, strict=True):
            cells = dict(full)
            if layout.short and with_usage:
                cells["tokens"] = fmt_count(r.usage.prompt_tokens + r.usage.completion_tokens)
            cells["verdict"] = verdict_cell(r, layout.verdict)
            if layout.compact_interval:
                cells["interval"] = (f"{r.confidence:.0%} " if mixed and r.scored else ""
                                     ) + interval_text(r.interval, r.scored, compact=True)
            rows.append([cells[c] for c in columns])
        notes = []
        if inconclusive and layout.verdict >= 2:
            notes.append(INCONCLUSIVE_NOTE if layout.verdict == 2 else
                         INCONCLUSIVE_NOTE.split(";")[0])
        yield _Table(headers, rows, sep=layout.sep, notes=notes, last_resort=layout.last_resort)


def _fits(text: str, width: int) -> bool:
    return all(len(line) <= width for line in text.splitlines())


class _Table:
    """A table in tabulate's "simple" format whose first column (the test id) can be
    shortened; headers are not padded, so it is narrower than tabulate's."""

    def __init__(self, headers: list[str], rows: list[list[str]], sep: int = 2,
                 notes: list[str] | None = None, last_resort: bool = False) -> None:
        self.headers = headers
        self.rows = rows
        self.sep = sep
        self.notes = notes or []
        self.last_resort = last_resort
        self.widths = [max([len(h), *(len(row[i]) for row in rows)])
                       for i, h in enumerate(headers)]

    def overhead(self) -> int:
        """Characters taken by all but the first column, separators included."""
        return sum(self.widths[1:]) + self.sep * (len(self.widths) - 1)

    def render(self, first_width: int, width: int) -> str:
        headers = [ellipsize(self.headers[0], first_width), *self.headers[1:]]
        rows = [[shorten_nodeid(row[0], first_width), *row[1:]] for row in self.rows]
        widths = [max([len(headers[0]), *(len(row[0]) for row in rows)]), *self.widths[1:]]
        gap = " " * self.sep

        def line(cells: list[str]) -> str:
            return gap.join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        lines = [line(headers), gap.join("-" * w for w in widths), *map(line, rows)]
        lines += [clip(note, width) for note in self.notes]
        return "\n".join(lines)


def _fit(layouts: Iterable[_Table], width: int) -> str:
    """Render the first table of ``layouts`` (widest first) that leaves its first column
    a reasonable share of ``width`` (40%), else the narrowest one that is no last resort
    if its first column still gets :data:`MIN_TEST_WIDTH`, else the first last resort that
    does, else the very last table with its first column at :data:`MIN_TEST_WIDTH`
    (overflowing ``width``)."""
    tables = list(layouts)
    regular = [t for t in tables if not t.last_resort]
    resorts = [t for t in tables if t.last_resort]

    def budget(table: _Table) -> int:
        return min(table.widths[0], width - table.overhead())

    def minimum(table: _Table) -> int:
        return min(table.widths[0], MIN_TEST_WIDTH)

    for table in regular:
        if budget(table) >= min(table.widths[0], max(MIN_TEST_WIDTH, width * 2 // 5)):
            return table.render(budget(table), width)
    for table in regular[-1:] + resorts:
        if budget(table) >= minimum(table):
            return table.render(budget(table), width)
    table = tables[-1]
    return table.render(max(budget(table), minimum(table)), width)
