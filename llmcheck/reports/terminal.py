"""Plain-text views of records: the failing item's explanation and the
session's summary table. Rendered from records only, never from live state."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pydantic import BaseModel

from llmcheck.records.schema import (
    Aggregate,
    CheckStat,
    FaultStat,
    Interval,
    TestRecord,
    UsageTotals,
)

MAX_GROUPS_WITH_EXAMPLE = 5
MAX_EXAMPLE_LINES = 40

ELLIPSIS = "…"
MIN_TEST_WIDTH = 20
"""A fitted table shortens its test column down to this width, no further: below it a
node id is unrecognizable, so a terminal narrower than the minimal layout overflows."""
MIN_NAME_WIDTH = 16
"""Check names are shortened down to this width, no further."""
NODEID_KEEP_END = 0.6
"""Share of a shortened node id taken from its end: the test name and its parameters
tell tests apart more than the directory does."""


UNPRINTABLE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]")
"""What a terminal could act on rather than show: C0 and C1 control characters (ESC starts
escape sequences that move the cursor, clear the screen or set the window title; a lone
CR overwrites the line), DEL, the bidirectional overrides that reorder what is shown, the
line and paragraph separators, and lone surrogates (which cannot even be encoded)."""
_ESCAPES = {"\n": "\\n", "\r": "\\r"}
MULTILINE_FIELDS = frozenset({"message", "traceback", "example"})
"""Record fields whose newlines the layout keeps (messages and tracebacks span lines)."""
NOT_RENDERED_FIELDS = frozenset({"samples", "options"})
"""Record fields no view prints (samples are summed up in the tests' counts, groups and
checks), left as they are by :func:`printable_record`."""


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` safe to print on a terminal: every character of :data:`UNPRINTABLE`
    shown as an escape (``\\x1b``, ``\\u202e``, ``\\n``), newlines kept only with
    ``newlines`` (a CR before one is dropped), tabs expanded to spaces. Idempotent."""
    if UNPRINTABLE.search(text):
        if newlines:
            text = text.replace("\r\n", "\n")

        def escape(match: re.Match[str]) -> str:
            ch = match.group()
            if ch == "\n" and newlines:
                return ch
            code = ord(ch)
            return _ESCAPES.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")

        text = UNPRINTABLE.sub(escape, text)
    return text.expandtabs(4) if "\t" in text else text


Model = TypeVar("Model", bound=BaseModel)


def printable_record(record: Model) -> Model:
    """``record`` (a session, a test, or any part of one) with every string a view could
    print passed through :func:`printable` (newlines kept in :data:`MULTILINE_FIELDS`):
    what a report holds comes from test code and model output, and must not drive the
    terminal it is shown on. Every public view applies it to the records it is given;
    ``llmcheck show`` applies it once to the whole report. The record itself when nothing
    changes."""
    changes = {}
    for name in type(record).model_fields:
        if name in NOT_RENDERED_FIELDS:
            continue
        value = getattr(record, name)
        clean = _printable_value(value, name in MULTILINE_FIELDS)
        if clean is not value:
            changes[name] = clean
    return record.model_copy(update=changes) if changes else record


def _printable_value(value: Any, newlines: bool) -> Any:
    """``value`` with its strings printable; the same object when nothing changes."""
    if isinstance(value, str):
        clean = printable(value, newlines=newlines)
        return value if clean == value else clean
    if isinstance(value, BaseModel):
        return printable_record(value)
    if isinstance(value, list):
        items = [_printable_value(v, newlines) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        pairs = [(_printable_value(k, False), _printable_value(v, newlines))
                 for k, v in value.items()]
        same = all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items(),
                                                                    strict=True))
        return value if same else dict(pairs)
    return value


def ellipsize(text: str, width: int, *, keep_end: float = 0.5) -> str:
    """``text`` if it fits in ``width`` characters, else its start and its end joined by
    "…", exactly ``width`` characters long; ``keep_end`` is the share of the kept
    characters taken from the end (``suites/test_extr…t_extracts_person[case-3]``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:max(width, 0)]
    keep = width - 1
    tail = min(keep, int(keep * keep_end + 0.5))
    head = keep - tail
    return text[:head] + ELLIPSIS + (text[len(text) - tail:] if tail else "")


def clip(text: str, width: int) -> str:
    """``text`` cut at its end to ``width`` characters, "…" marking the cut."""
    return ellipsize(text, width, keep_end=0.0)


def shorten_nodeid(nodeid: str, width: int) -> str:
    """A node id in ``width`` characters, keeping the file's start and the test's end."""
    return ellipsize(nodeid, width, keep_end=NODEID_KEEP_END)


def fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def fmt_interval(record: TestRecord) -> str:
    if record.passed + record.failed == 0:
        return "-"
    return f"[{record.interval.low:.2f}, {record.interval.high:.2f}]"


INTERVAL_NAMES = {"wilson": "Wilson", "clopper-pearson": "Clopper-Pearson",
                  "stopping-exact": "exact (stopping-rule)",
                  "cases-bootstrap": "cases-bootstrap"}


def interval_label(record: TestRecord) -> str:
    method = INTERVAL_NAMES.get(record.interval.method, record.interval.method)
    return f"{record.confidence:.0%} {method} interval"


VERDICT_WORDS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR",
                 "interrupted": "INTERRUPTED"}
NO_VERDICT = frozenset({"error", "interrupted"})
"""Outcomes that are no verdict (no samples could run or finish): never inconclusive,
never an expected failure."""


def verdict_label(record: TestRecord, *, form: int = 0) -> str:
    """``PASS``, ``FAIL``, ``ERROR``, or ``PASS (inconclusive, n≈139)`` when the interval
    still contains the required rate. Shorter forms for narrow tables keep outcome and
    inconclusiveness visible: 1 ``PASS (inconcl., n≈139)``, 2 ``PASS? n≈139``, 3 ``PASS?``."""
    v = record.verdict
    word = VERDICT_WORDS.get(v.outcome, v.outcome.upper())
    if v.outcome in NO_VERDICT or v.conclusive:
        return word
    n = v.samples_to_conclusive
    if form >= 3 or (form == 2 and not n):
        return f"{word}?"
    if form == 2:
        return f"{word}? n≈{n}"
    inconclusive = "inconcl." if form == 1 else "inconclusive"
    more = f", n≈{n}" if n else ""
    return f"{word} ({inconclusive}{more})"


def verdict_cell(record: TestRecord, form: int = 0) -> str:
    """The verdict as the summary table shows it: :func:`verdict_label` plus the xfail
    marking (``(xfail)``: an expected failure, ``(xpass)``: an unexpected pass; the
    short forms say ``XFAIL``/``XPASS`` as pytest does)."""
    label = verdict_label(record, form=form)
    if record.xfail is None or record.verdict.outcome in NO_VERDICT:
        return label
    if form >= 2:
        return "X" + label
    return label + (" (xfail)" if record.verdict.outcome != "passed" else " (xpass)")


def headline(record: TestRecord) -> str:
    """One sentence: counts, rate, interval, required rate, verdict."""
    scored = record.passed + record.failed
    parts = [
        f"{record.passed}/{scored} scored samples passed",
        f"pass rate {fmt_rate(record.pass_rate)}" + (
            f" (bias-adjusted for early stopping: {fmt_rate(record.estimate)})"
            if record.estimate is not None and fmt_rate(record.estimate) != fmt_rate(
                record.pass_rate) else ""),
        f"{interval_label(record)} {fmt_interval(record)}",
        f"required {record.min_pass_rate:.2f}",
    ]
    if record.errors:
        worst = record.worst_case_rate
        parts.append(f"{record.errors} infrastructure error(s) not scored (counted as "
                     f"failures, the rate would be {fmt_rate(worst)})")
    return "; ".join(parts)


def explain(record: TestRecord) -> str:
    """Why an item failed (or errored): what a user reads under FAILURES."""
    record = printable_record(record)
    v = record.verdict
    lines = [f"llmcheck {verdict_label(record)}: {headline(record)}"]
    lines.append(f"verdict ({record.settings.verdict}): {v.reason}")
    if not v.conclusive and v.outcome not in NO_VERDICT:
        if v.samples_to_conclusive:
            lines.append(
                f"not conclusive: the interval still contains {record.min_pass_rate:.2f}; "
                f"about {v.samples_to_conclusive} samples at this rate would settle it"
            )
        else:
            lines.append(f"not conclusive: the interval contains {record.min_pass_rate:.2f}")
    if record.usage.calls:
        lines.append(usage_line(record.usage))
    run = f"ran {record.run} of {record.planned} planned samples"
    if record.uncounted:
        run += (f"; the verdict counts the first {record.run - record.uncounted} in index "
                f"order, {record.uncounted} more finished after the deciding one")
    if v.stop_reason:
        run += f" ({v.stop_reason})"
    lines.append(run)
    if record.fault_plan:
        lines.append(f"faults injected: {record.fault_plan}")
    if record.faults:
        lines.append("pass rate by injected fault: "
                     + ", ".join(fault_text(f) for f in record.faults))
    for warning in record.warnings:
        lines.append(f"warning: {warning}")
    failing = [c for c in record.checks if c.failed]
    if failing:
        lines.append("")
        lines.append("checks that failed (per sample):")
        lines.extend("  " + check_line(c) for c in failing)
    groups = record.failure_groups
    if groups:
        bad = sum(g.count for g in groups)
        lines.append("")
        lines.append(f"{bad} sample(s) did not pass, {len(groups)} distinct message(s):")
        for g in groups:
            first = g.message.splitlines()[0] if g.message else ""
            kind = f"{g.error_type}: " if g.error_type else ""
            tag = " [error]" if g.outcome == "error" else ""
            lines.append(f"  {g.count:>4}x {kind}{first}{tag}  (samples {_indices(g.samples)})")
        for i, g in enumerate(groups[:MAX_GROUPS_WITH_EXAMPLE], 1):
            lines.append("")
            sample = f"sample {g.samples[0]}" if g.samples else "a sample"
            lines.append(f"--- example {i}: {sample} ({g.count}x) ---")
            lines.extend(_clip_lines(g.example or g.message))
        if len(groups) > MAX_GROUPS_WITH_EXAMPLE:
            lines.append(f"... {len(groups) - MAX_GROUPS_WITH_EXAMPLE} more message(s) in the "
                         "JSON report")
    return "\n".join(lines)


def fault_text(f: FaultStat, *, rate: bool = True) -> str:
    """``rate_limit 19/20 (0.95)``: passed of scored samples that got the fault kind
    (``none``: no fault), the rate, and the errors when there are any
    (``timeout 3/4 (0.75; 1 error)``); without ``rate``, ``rate_limit 19/20``."""
    scored = f.passed + f.failed
    errors = f"{f.errors} error{'s' if f.errors > 1 else ''}" if f.errors else ""
    if rate:
        detail = "; ".join(x for x in (fmt_rate(f.pass_rate), errors) if x)
        return f"{f.kind} {f.passed}/{scored} ({detail})"
    return f"{f.kind} {f.passed}/{scored}" + (f" ({errors})" if errors else "")


def fault_lines(records: Iterable[TestRecord], width: int | None = None) -> list[str]:
    """One line per test that had faults injected: its passed/scored samples per fault
    kind, ``none`` last (``t.py::test_x: rate_limit 19/20, timeout 3/5, none 30/30``).
    With ``width``, every line fits in it: the node id is shortened in the middle and,
    when even that is not enough, only the kinds with the lowest rates are named (in
    their order; ``+N more`` counts the rest)."""
    out = []
    for r in map(printable_record, records):
        if not r.faults:
            continue
        parts = [fault_text(f, rate=False) for f in r.faults]
        if width is None:
            out.append(f"{r.nodeid}: {', '.join(parts)}")
            continue
        worst = sorted(range(len(parts)), key=lambda i: (
            2.0 if r.faults[i].pass_rate is None else r.faults[i].pass_rate, i))
        node_min = min(len(r.nodeid), max(MIN_TEST_WIDTH, width * 2 // 5))
        line = ""
        for shown in range(len(parts), 0, -1):
            keep = sorted(worst[:shown])
            more = f", +{len(parts) - shown} more" if shown < len(parts) else ""
            rest = ": " + ", ".join(parts[i] for i in keep) + more
            if shown == 1 or node_min + len(rest) <= width:
                line = shorten_nodeid(r.nodeid, max(width - len(rest),
                                                    min(len(r.nodeid), MIN_TEST_WIDTH))) + rest
                break
        out.append(clip(line, width))
    return out


def check_line(c: CheckStat, width: int | None = None) -> str:
    """``schema(Person)  failed 4 of 20 (pass rate 0.80 [0.58, 0.92]; samples 1, 5, ...)``
    and the first failure's message. With ``width``, the line fits in it: fewer sample
    indices, the check name shortened in the middle, the message cut at its end."""
    c = printable_record(c)
    rate = f"pass rate {fmt_rate(c.pass_rate)} [{c.interval.low:.2f}, {c.interval.high:.2f}]"
    text = ""
    if c.example:
        text = " ".join(line.strip() for line in c.example.splitlines()[:3])
    if width is None:
        example = f": {text[:160]}" + ("..." if len(text) > 160 else "") if text else ""
        return (f"{c.name}  failed {c.failed} of {c.evaluated} ({rate}; samples "
                f"{_indices(c.failed_samples)}){example}")
    counts = f"  failed {c.failed} of {c.evaluated}"
    variants = [f"{counts} ({rate}; samples {_indices(c.failed_samples, limit)})"
                for limit in (10, 5, 3)] + [f"{counts} ({rate})", counts]
    name_width = min(len(c.name), max(MIN_NAME_WIDTH, width // 3))
    stats = next((v for v in variants if name_width + len(v) <= width), variants[-1])
    line = shorten_check_name(c.name, max(min(len(c.name), MIN_NAME_WIDTH),
                                          width - len(stats))) + stats
    room = width - len(line) - 2
    if text and room >= 8:  # a message cut shorter than this says nothing
        line += ": " + clip(text, min(room, 160))
    return clip(line, width)


def failing_checks_lines(records: Iterable[TestRecord], width: int | None = None) -> list[str]:
    """One line per test with failing checks, naming them with counts. With ``width``,
    every line fits in it (the plugin indents these lines: pass its width minus the
    indent): long check names and node ids are shortened in the middle, and fewer checks
    are named when even that is not enough (``+N more`` counts the rest)."""
    out = []
    for r in map(printable_record, records):
        failing = [c for c in r.checks if c.failed]
        if not failing:
            continue
        if width is None:
            parts = ", ".join(f"{c.name} {c.failed}/{c.evaluated}" for c in failing[:5])
            more = f", +{len(failing) - 5} more" if len(failing) > 5 else ""
            out.append(f"{r.nodeid}: {parts}{more}")
        else:
            out.append(_fit_checks_line(r.nodeid, failing, width))
    return out


def _fit_checks_line(nodeid: str, failing: list[CheckStat], width: int) -> str:
    # in order of preference: the node id's share of the line, then naming more checks;
    # the longest check names are shortened first, none below MIN_NAME_WIDTH
    preferred = min(len(nodeid), max(MIN_TEST_WIDTH, width * 2 // 5))
    shortest = min(len(nodeid), MIN_TEST_WIDTH)
    rest = ""
    for node_min in (preferred, shortest):
        for shown in range(min(5, len(failing)), 0, -1):
            checks = failing[:shown]
            counts = [f" {c.failed}/{c.evaluated}" for c in checks]
            more = f", +{len(failing) - shown} more" if len(failing) > shown else ""
            fixed = len(": ") + sum(map(len, counts)) + len(", ") * (shown - 1) + len(more)
            cap = _cap([c.name for c in checks], width - node_min - fixed)
            if cap is None:
                continue
            rest = ": " + ", ".join(shorten_check_name(c.name, cap) + n
                                    for c, n in zip(checks, counts, strict=True)) + more
            return shorten_nodeid(nodeid, width - len(rest)) + rest
    node = shorten_nodeid(nodeid, shortest)
    rest = ": " + ", ".join(f"{shorten_check_name(c.name, MIN_NAME_WIDTH)} {c.failed}/"
                            f"{c.evaluated}" for c in failing[:1])
    return node + clip(rest, width - len(node))


def _cap(names: list[str], budget: int) -> int | None:
    """The largest length cap that fits ``names`` in ``budget`` characters (only names
    longer than it are shortened), or None when it would go below MIN_NAME_WIDTH."""
    longest = max(map(len, names))
    low = min(longest, MIN_NAME_WIDTH)
    if sum(min(len(n), low) for n in names) > budget:
        return None
    cap = low
    while cap < longest and sum(min(len(n), cap + 1) for n in names) <= budget:
        cap += 1
    return cap


def shorten_check_name(name: str, width: int) -> str:
    """A check name in ``width`` characters: its start (the check and its first argument)
    says more than its end."""
    return ellipsize(name, width, keep_end=0.3)


def aggregates_table(aggregates: Iterable[Aggregate], width: int | None = None) -> str:
    """Pass rates pooled over the cases of each parametrized test. With ``width``, fitted
    like :func:`summary_table`: the pooled counts go first; test, cases passed (of
    cases), rate and interval stay."""
    from tabulate import tabulate

    aggregates = [printable_record(a) for a in aggregates]
    rows = [[a.test, str(a.cases), f"{a.cases_passed}/{a.cases}", str(a.passed), str(a.failed),
             str(a.errors), fmt_rate(a.pass_rate), _interval_text(a.interval, a.passed + a.failed)]
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
        compact = [[*row[:-1], _interval_text(a.interval, a.passed + a.failed, compact=True)]
                   for row, a in zip(rows, aggregates, strict=True)]
        yield _Table([short[i] for i in keep], [[row[i] for i in keep] for row in compact])
        yield _Table([short[i] for i in keep], [[row[i] for i in keep] for row in compact],
                     sep=1, last_resort=True)

    return _fit(layouts(), width)


def _indices(indices: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f", ... (+{len(indices) - limit})" if len(indices) > limit else "")


def _clip_lines(text: str) -> list[str]:
    lines = text.splitlines()
    if len(lines) <= MAX_EXAMPLE_LINES:
        return lines
    keep = MAX_EXAMPLE_LINES // 2
    return lines[:keep] + [f"... ({len(lines) - 2 * keep} lines cut)"] + lines[-keep:]


SUMMARY_HEADERS = ["test", "run/planned", "passed", "failed", "errors", "rate", "interval",
                   "required", "verdict", "early stop"]
USAGE_HEADERS = ["calls", "tokens", "cost"]


def fmt_cost(cost: float | None, unpriced: int = 0) -> str:
    if cost is None:
        return "?" if unpriced else "-"
    text = f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"
    return text + ("+?" if unpriced else "")


def usage_line(usage: UsageTotals, label: str = "model usage") -> str:
    """Calls, retries, tokens and cost in one line."""
    parts = [f"{usage.calls} call(s)"]
    if usage.cached_calls:
        parts.append(f"{usage.cached_calls} from cache")
    if usage.failed_calls:
        parts.append(f"{usage.failed_calls} failed after retries")
    parts.append(f"{usage.retries} retries")
    parts.append(f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens")
    cost = fmt_cost(usage.cost, usage.unpriced_calls)
    if usage.unpriced_calls:
        cost += f" ({usage.unpriced_calls} call(s) with no known price)"
    parts.append(f"cost {cost}")
    return f"{label}: " + ", ".join(parts)


def early_stop_cell(r: TestRecord) -> str:
    """The "early stop" column: ``after 8 (+3)`` (decided after 8 samples in index order,
    3 more finished uncounted), ``interrupted``, ``budget`` or ``-``."""
    v = r.verdict
    if v.stopped_early and v.decided_after is not None and not r.interrupted:
        early = f"after {v.decided_after}"
    elif r.interrupted:
        early = "interrupted"
    else:
        early = "-"
    if r.budget_stopped:
        early = "budget"
    if r.uncounted:
        early += f" (+{r.uncounted})"  # ran after the deciding sample: not counted
    return early


def summary_rows(records: Iterable[TestRecord]) -> list[list[str]]:
    records = [printable_record(r) for r in records]
    with_usage = any(r.usage.calls for r in records)
    rows = []
    for r in records:
        early = early_stop_cell(r)
        verdict = verdict_cell(r)
        counted = r.passed + r.failed + r.errors
        row = [
            r.nodeid, f"{counted}/{r.planned}", str(r.passed), str(r.failed), str(r.errors),
            fmt_rate(r.pass_rate) + ("" if r.worst_case_rate is None
                                     else f" ({r.worst_case_rate:.2f})"),
            fmt_interval(r), f"{r.min_pass_rate:.2f}", verdict, early,
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
    headers = list(SUMMARY_HEADERS)
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
    """short headers (run/planned -> n, required -> req, ...), token counts as 12k"""
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
    ("short headers (run/planned -> n, required -> req, ...), token counts as 12k",
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
    long_headers = dict(zip(_SUMMARY_COLUMNS, SUMMARY_HEADERS + USAGE_HEADERS, strict=True))
    full_rows = [dict(zip(_SUMMARY_COLUMNS, row, strict=False)) for row in summary_rows(records)]
    inconclusive = any(not r.verdict.conclusive and r.verdict.outcome not in NO_VERDICT
                       for r in records)
    for layout in summary_layouts():
        columns = [c for c in _SUMMARY_COLUMNS
                   if c not in layout.drop and (with_usage or c not in _USAGE_COLUMNS)]
        headers = [_SHORT_HEADERS.get(c, long_headers[c]) if layout.short else long_headers[c]
                   for c in columns]
        rows = []
        for r, full in zip(records, full_rows, strict=True):
            cells = dict(full)
            if layout.short and with_usage:
                cells["tokens"] = fmt_count(r.usage.prompt_tokens + r.usage.completion_tokens)
            cells["verdict"] = verdict_cell(r, layout.verdict)
            if layout.compact_interval:
                cells["interval"] = _interval_text(r.interval, r.scored, compact=True)
            rows.append([cells[c] for c in columns])
        notes = []
        if inconclusive and layout.verdict >= 2:
            notes.append(INCONCLUSIVE_NOTE if layout.verdict == 2 else
                         INCONCLUSIVE_NOTE.split(";")[0])
        yield _Table(headers, rows, sep=layout.sep, notes=notes, last_resort=layout.last_resort)


def fmt_count(n: int) -> str:
    """``950``, ``9.9k``, ``12k``, ``123k``, ``4.5M``: a count in at most 4 characters
    (up to a billion)."""
    if n < 1000:
        return str(n)
    for scale, suffix in ((1_000, "k"), (1_000_000, "M"), (1_000_000_000, "G")):
        x = n / scale
        text = f"{x:.1f}" if x < 9.95 else f"{x:.0f}"
        if len(text) <= 3 or suffix == "G":
            return text + suffix
    raise AssertionError("unreachable")


def _interval_text(interval: Interval, scored: int, compact: bool = False) -> str:
    if not scored:
        return "-"
    if compact:
        return f"{interval.low:.2f}-{interval.high:.2f}"
    return f"[{interval.low:.2f}, {interval.high:.2f}]"


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


def local_model_line(local: Any) -> str:
    """Which local model served the session, and how (a ``LocalModelRecord``)."""
    return (f"llmcheck local model: {local.name} ({local.path}, {local.size / 1e6:.0f} MB) "
            f"served by {local.server}, context {local.context} tokens, "
            f"{local.threads} thread(s) per server")
