"""The words and figures a report prints for one record, shared by every view.

The terminal (:mod:`llmcheck.reports.terminal`, :mod:`llmcheck.reports.table`) and the
files (:mod:`llmcheck.reports.view`, rendered as markdown and HTML) say a verdict, a rate,
an interval or a cost the same way because they all take it from here. Also here:
:func:`printable_record`, which makes everything a record could print terminal-safe,
and the shortening of node ids and check names to a width.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from llmcheck.records.schema import Interval, TestRecord
from llmcheck.text import ellipsize, printable

MIN_TEST_WIDTH = 20
"""A fitted table shortens its test column down to this width, no further: below it a
node id is unrecognizable, so a terminal narrower than the minimal layout overflows."""
MIN_NAME_WIDTH = 16
"""Check names are shortened down to this width, no further."""
NODEID_KEEP_END = 0.6
"""Share of a shortened node id taken from its end: the test name and its parameters
tell tests apart more than the directory does."""
MULTILINE_FIELDS = frozenset({"message", "traceback", "example"})
"""Record fields whose newlines the layout keeps (messages and tracebacks span lines)."""
NOT_RENDERED_FIELDS = frozenset({"samples", "options"})
"""Record fields no view prints (samples are summed up in the tests' counts, groups and
checks), left as they are by :func:`printable_record`."""


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


def shorten_nodeid(nodeid: str, width: int) -> str:
    """A node id in ``width`` characters, keeping the file's start and the test's end."""
    return ellipsize(nodeid, width, keep_end=NODEID_KEEP_END)


def shorten_check_name(name: str, width: int) -> str:
    """A check name in ``width`` characters: its start (the check and its first argument)
    says more than its end."""
    return ellipsize(name, width, keep_end=0.3)


def fmt_rate(x: float | None) -> str:
    """A rate to two decimals, ``-`` when there is none (nothing scored)."""
    return "-" if x is None else f"{x:.2f}"


def fmt_interval(record: TestRecord) -> str:
    if record.passed + record.failed == 0:
        return "-"
    return f"[{record.interval.low:.2f}, {record.interval.high:.2f}]"


def interval_level(records: Iterable[TestRecord]) -> str | None:
    """``95%``: the confidence level of every record's interval, when they share one
    (None when they differ, or there are none)."""
    levels = {f"{r.confidence:.0%}" for r in records}
    return levels.pop() if len(levels) == 1 else None


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


def fmt_cost(cost: float | None, unpriced: int = 0) -> str:
    """``$0.0123``, ``$4.56``; ``+?`` when some calls had no known price, ``?`` when none
    had, ``-`` when nothing was spent."""
    if cost is None:
        return "?" if unpriced else "-"
    text = f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"
    return text + ("+?" if unpriced else "")


def calls_by_role(usage: Any) -> str | None:
    """``12 app calls, 8 simulated-user calls, 4 judge calls`` for a ``UsageTotals`` that
    holds a simulated user's or a judge's calls (None when every call was the app's)."""
    if not (usage.user_calls or usage.judge_calls):
        return None
    app = usage.calls - usage.user_calls - usage.judge_calls
    parts = [(app, "app"), (usage.user_calls, "simulated-user"), (usage.judge_calls, "judge")]
    return ", ".join(f"{n} {who} call{'' if n == 1 else 's'}" for n, who in parts if n)


def role_notes(usage: Any) -> list[str]:
    """The report's note on who made the calls, when not only the app did."""
    roles = calls_by_role(usage)
    return [f"model calls by role: {roles}"] if roles else []


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


def fmt_indices(indices: list[int], limit: int = 10) -> str:
    """Sample indices as ``1, 4, 7``: the first ``limit``, then how many more."""
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f", ... (+{len(indices) - limit})" if len(indices) > limit else "")


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


def interval_text(interval: Interval, scored: int, compact: bool = False) -> str:
    """``[0.83, 0.99]`` (``0.83-0.99`` compact), ``-`` when nothing was scored."""
    if not scored:
        return "-"
    if compact:
        return f"{interval.low:.2f}-{interval.high:.2f}"
    return f"[{interval.low:.2f}, {interval.high:.2f}]"


def fmt_duration(seconds: float | None) -> str:
    """``4.2 s``, ``3 min 5 s``, ``1 h 2 min``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def verdict_word(r: TestRecord) -> str:
    """``PASS``, ``FAIL``, ``ERROR`` with its xfail marking, without inconclusiveness."""
    word = VERDICT_WORDS.get(r.verdict.outcome, r.verdict.outcome.upper())
    if r.xfail is not None and r.verdict.outcome not in NO_VERDICT:
        word += " (xfail)" if r.verdict.outcome != "passed" else " (xpass)"
    return word


def conclusive_text(r: TestRecord) -> str:
    """``yes``, ``no`` or ``no, n≈139`` (samples that would settle it); ``-`` when there
    is no verdict."""
    v = r.verdict
    if v.outcome in NO_VERDICT:
        return "-"
    if v.conclusive:
        return "yes"
    return f"no, n≈{v.samples_to_conclusive}" if v.samples_to_conclusive else "no"
