"""Plain-text views of records: the failing item's explanation and the
session's summary table. Rendered from records only, never from live state."""

from __future__ import annotations

from collections.abc import Iterable

from llmcheck.records import Aggregate, CheckStat, TestRecord, UsageTotals

MAX_GROUPS_WITH_EXAMPLE = 5
MAX_EXAMPLE_LINES = 40


def fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def fmt_interval(record: TestRecord) -> str:
    if record.passed + record.failed == 0:
        return "-"
    return f"[{record.interval.low:.2f}, {record.interval.high:.2f}]"


def interval_label(record: TestRecord) -> str:
    method = "Wilson" if record.interval.method == "wilson" else "Clopper-Pearson"
    return f"{record.confidence:.0%} {method} interval"


def verdict_label(record: TestRecord) -> str:
    v = record.verdict
    word = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}[v.outcome]
    if v.outcome == "error":
        return word
    if v.conclusive:
        return word
    more = f", n≈{v.samples_to_conclusive}" if v.samples_to_conclusive else ""
    return f"{word} (inconclusive{more})"


def headline(record: TestRecord) -> str:
    """One sentence: counts, rate, interval, required rate, verdict."""
    scored = record.passed + record.failed
    parts = [
        f"{record.passed}/{scored} scored samples passed",
        f"pass rate {fmt_rate(record.pass_rate)}",
        f"{interval_label(record)} {fmt_interval(record)}",
        f"required {record.min_pass_rate:.2f}",
    ]
    if record.errors:
        parts.append(f"{record.errors} infrastructure error(s) not scored")
    return "; ".join(parts)


def explain(record: TestRecord) -> str:
    """Why an item failed (or errored): what a user reads under FAILURES."""
    v = record.verdict
    lines = [f"llmcheck {verdict_label(record)}: {headline(record)}"]
    lines.append(f"verdict ({v.policy}): {v.reason}")
    if not v.conclusive and v.outcome != "error":
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
    if v.stop_reason:
        run += f" ({v.stop_reason})"
    lines.append(run)
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
            lines.append(f"--- example {i}: sample {g.samples[0]} ({g.count}x) ---")
            lines.extend(_clip_lines(g.example or g.message))
        if len(groups) > MAX_GROUPS_WITH_EXAMPLE:
            lines.append(f"... {len(groups) - MAX_GROUPS_WITH_EXAMPLE} more message(s) in the "
                         "JSON report")
    return "\n".join(lines)


def check_line(c: CheckStat) -> str:
    """``schema(Person)  failed 4 of 20 (pass rate 0.80 [0.58, 0.92]) samples 1, 5, ...``"""
    rate = f"pass rate {fmt_rate(c.pass_rate)} [{c.interval.low:.2f}, {c.interval.high:.2f}]"
    example = ""
    if c.example:
        text = " ".join(line.strip() for line in c.example.splitlines()[:3])
        example = f": {text[:160]}" + ("..." if len(text) > 160 else "")
    return (f"{c.name}  failed {c.failed} of {c.evaluated} ({rate}; samples "
            f"{_indices(c.failed_samples)}){example}")


def failing_checks_lines(records: Iterable[TestRecord]) -> list[str]:
    """One line per test with failing checks, naming them with counts."""
    out = []
    for r in records:
        failing = [c for c in r.checks if c.failed]
        if failing:
            parts = ", ".join(f"{c.name} {c.failed}/{c.evaluated}" for c in failing[:5])
            more = f", +{len(failing) - 5} more" if len(failing) > 5 else ""
            out.append(f"{r.nodeid}: {parts}{more}")
    return out


def aggregates_table(aggregates: Iterable[Aggregate]) -> str:
    from tabulate import tabulate

    rows = [[a.test, str(a.cases), f"{a.cases_passed}/{a.cases}", str(a.passed), str(a.failed),
             str(a.errors), fmt_rate(a.pass_rate),
             f"[{a.interval.low:.2f}, {a.interval.high:.2f}]" if a.passed + a.failed else "-"]
            for a in aggregates]
    return tabulate(rows, headers=["test (all cases)", "cases", "cases passed", "passed",
                                   "failed", "errors", "rate", "interval"],
                    tablefmt="simple", disable_numparse=True)


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


def summary_rows(records: Iterable[TestRecord]) -> list[list[str]]:
    records = list(records)
    with_usage = any(r.usage.calls for r in records)
    rows = []
    for r in records:
        v = r.verdict
        if v.stopped_early and v.decided_after is not None and not r.interrupted:
            early = f"after {v.decided_after}"
        elif r.interrupted:
            early = "interrupted"
        else:
            early = "-"
        if r.budget_stopped:
            early = "budget"
        verdict = verdict_label(r)
        if r.xfail is not None:
            # marked xfail: an expected failure, or an unexpected pass (XPASS)
            verdict += " (xfail)" if r.verdict.outcome != "passed" else " (xpass)"
        row = [
            r.nodeid, f"{r.run}/{r.planned}", str(r.passed), str(r.failed), str(r.errors),
            fmt_rate(r.pass_rate), fmt_interval(r), f"{r.min_pass_rate:.2f}", verdict, early,
        ]
        if with_usage:
            u = r.usage
            row += [str(u.calls), str(u.prompt_tokens + u.completion_tokens),
                    fmt_cost(u.cost, u.unpriced_calls)]
        rows.append(row)
    return rows


def summary_table(records: Iterable[TestRecord]) -> str:
    from tabulate import tabulate

    rows = summary_rows(records)
    headers = list(SUMMARY_HEADERS)
    if rows and len(rows[0]) > len(headers):
        headers += USAGE_HEADERS
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
