"""Plain-text views of records for a terminal: the failing item's explanation, the
per-fault and failing-check lines, and the session's tables. Rendered from records
only, never from live state.

The tables are built in :mod:`llmcheck.reports.table` and the safe text in
:mod:`llmcheck.text`; :func:`summary_table`, :func:`aggregates_table` and
:func:`printable` are importable from here too, because this is the module the plugin's
terminal summary prints from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llmcheck.core.outcome import shorten_message
from llmcheck.records.schema import CheckStat, FaultStat, TestRecord, UsageTotals
from llmcheck.reports.cells import (
    MIN_NAME_WIDTH,
    MIN_TEST_WIDTH,
    NO_VERDICT,
    calls_by_role,
    fmt_cost,
    fmt_indices,
    fmt_interval,
    fmt_rate,
    interval_label,
    printable_record,
    shorten_check_name,
    shorten_nodeid,
    verdict_label,
)
from llmcheck.reports.steps import step_lines
from llmcheck.reports.table import aggregates_table, summary_table
from llmcheck.text import UNPRINTABLE, clip, printable

MAX_GROUPS_WITH_EXAMPLE = 5
GROUP_MESSAGE_WIDTH = 300
"""Characters of a failure group's message on its line (the excerpt of the output is
cut first, so what was violated stays)."""
MAX_EXAMPLE_LINES = 40


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
            first = shorten_message(g.message.splitlines()[0], GROUP_MESSAGE_WIDTH) \
                if g.message else ""
            kind = f"{g.error_type}: " if g.error_type else ""
            tag = " [error]" if g.outcome == "error" else ""
            lines.append(f"  {g.count:>4}x {kind}{first}{tag}  "
                         f"(samples {fmt_indices(g.samples)})")
        lines.extend(step_lines(record))
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
    recovered = f"{f.recovered} recovered" if f.recovered else ""
    if rate:
        detail = "; ".join(x for x in (fmt_rate(f.pass_rate), errors, recovered) if x)
        return f"{f.kind} {f.passed}/{scored} ({detail})"
    detail = "; ".join(x for x in (errors, recovered) if x)
    return f"{f.kind} {f.passed}/{scored}" + (f" ({detail})" if detail else "")


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
        example = f": {shorten_message(text, 160)}" if text else ""
        return (f"{c.name}  failed {c.failed} of {c.evaluated} ({rate}; samples "
                f"{fmt_indices(c.failed_samples)}){example}")
    counts = f"  failed {c.failed} of {c.evaluated}"
    variants = [f"{counts} ({rate}; samples {fmt_indices(c.failed_samples, limit)})"
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


def _clip_lines(text: str) -> list[str]:
    lines = text.splitlines()
    if len(lines) <= MAX_EXAMPLE_LINES:
        return lines
    keep = MAX_EXAMPLE_LINES // 2
    return lines[:keep] + [f"... ({len(lines) - 2 * keep} lines cut)"] + lines[-keep:]


def usage_line(usage: UsageTotals, label: str = "model usage") -> str:
    """Calls, retries, tokens and cost in one line: ``42 call(s): 22 answered, 20 failed;
    no call was retried; ...``. Answered and failed add up to the calls, and retries are
    counted apart, so a failed call is never said to have failed "after retries" that
    did not happen."""
    answered = usage.calls - usage.failed_calls
    calls = f"{usage.calls} call(s): {answered} answered" + (
        f" ({usage.cached_calls} from cache)" if usage.cached_calls else "") + (
        f", {usage.failed_calls} failed" if usage.failed_calls else "")
    retries = ("no call was retried" if not usage.retries else
               f"{usage.retries} retr{'y' if usage.retries == 1 else 'ies'} in all")
    parts = [calls, retries]
    parts.append(f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens")
    cost = fmt_cost(usage.cost, usage.unpriced_calls)
    if usage.unpriced_calls:
        cost += f" ({usage.unpriced_calls} call(s) with no known price)"
    parts.append(f"cost {cost}")
    roles = calls_by_role(usage)  # a simulated user's and a judge's calls, apart
    return f"{label}: " + "; ".join(parts[:1] + [roles] * bool(roles) + parts[1:])


def local_model_line(local: Any) -> str:
    """Which local model served the session, and how (a ``LocalModelRecord``)."""
    return (f"llmcheck local model: {local.name} ({local.path}, {local.size / 1e6:.0f} MB) "
            f"served by {local.server}, context {local.context} tokens, "
            f"{local.threads} thread(s) per server")


__all__ = [
    "UNPRINTABLE",
    "aggregates_table",
    "check_line",
    "explain",
    "failing_checks_lines",
    "fault_lines",
    "fault_text",
    "headline",
    "local_model_line",
    "printable",
    "summary_table",
    "usage_line",
]
