"""What the markdown and HTML reports show, computed once from a :class:`SessionRecord`.

Both :mod:`llmcheck.reports.markdown` and :mod:`llmcheck.reports.html` render these plain
views, so the two files always agree on every number and word. The views hold raw
text (made terminal-safe by :func:`llmcheck.text.printable`, nothing more): each
renderer escapes it for its own format. Nothing here reads live state: a report can
be re-rendered from any saved JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# the one import of the fault catalogue in the report code
from llmcheck.config.faults import ALL_FAULT_KINDS as FAULT_KINDS
from llmcheck.records.schema import (
    Aggregate,
    CheckStat,
    FailureGroup,
    FaultStat,
    SampleRecord,
    SessionRecord,
    TestRecord,
)
from llmcheck.redact import redact
from llmcheck.reports.cells import (
    NO_VERDICT,
    conclusive_text,
    early_stop_cell,
    fmt_cost,
    fmt_duration,
    fmt_rate,
    interval_label,
    interval_text,
    role_notes,
    verdict_cell,
    verdict_word,
)
from llmcheck.reports.io_view import MAX_IO_EXAMPLES, ExchangeView, exchange_views
from llmcheck.text import printable

MAX_EXAMPLES = 5
"""Example samples kept per failure group; the rest are counted, not shown."""
MAX_SAMPLE_INDICES = 20
"""Sample indices listed per failure group."""
MAX_TEXT = 2000
"""Characters kept of one message or check value."""
MAX_TRACEBACK_LINES = 40
EXAMPLE_BUDGET = 2_000_000
"""Characters of example text (tracebacks, messages) a whole report may hold: past it,
failure groups show their message and counts only, so a session of thousands of failing
tests still gives a file a browser opens at once."""


def text(value: Any, *, newlines: bool = True, limit: int = MAX_TEXT) -> str:
    """``value`` as printable text (control characters shown as escapes), cut at
    ``limit`` characters with the number cut said; secrets masked before the cut."""
    s = printable(redact(str(value)), newlines=newlines)
    if len(s) > limit:
        s = s[:limit] + f"… ({len(s) - limit} more characters)"
    return s


def first_lines(value: str | None, lines: int = 3, limit: int = 300) -> str:
    """The first ``lines`` lines of ``value`` on one line, at most ``limit`` characters."""
    if not value:
        return ""
    joined = " ".join(line.strip() for line in value.splitlines()[:lines] if line.strip())
    return text(joined, newlines=False, limit=limit)


def clip_traceback(value: str) -> str:
    lines = text(value, limit=8 * MAX_TEXT).splitlines()
    if len(lines) <= MAX_TRACEBACK_LINES:
        return "\n".join(lines)
    keep = MAX_TRACEBACK_LINES // 2
    return "\n".join(lines[:keep] + [f"... ({len(lines) - 2 * keep} lines cut)"]
                     + lines[-keep:])


@dataclass
class CheckView:
    test: str
    name: str
    evaluated: int
    passed: int
    failed: int
    rate: float | None
    low: float
    high: float
    example: str

    @property
    def rate_text(self) -> str:
        return fmt_rate(self.rate)

    @property
    def interval_text(self) -> str:
        return f"[{self.low:.2f}, {self.high:.2f}]" if self.evaluated else "-"


NO_FAULT = "none"
"""The kind of :class:`~llmcheck.records.schema.FaultStat` that counts the samples that got no
injected fault."""
FAULT_PHRASES = {
    "rate_limit": "when rate-limited",
    "timeout": "on timeouts",
    "connection_error": "on connection errors",
    "server_error": "on server errors",
    "malformed_json": "on malformed JSON",
    "truncated": "on truncated answers",
    "empty": "on empty answers",
    "refusal": "on refusals",
    "wrong_schema": "on wrong-schema JSON",
    "slow": "when slow",
    "stream_cut": "on cut streams",
    "bad_tool_call": "on bad tool calls",
    NO_FAULT: "with no fault",
}
"""How a sentence says "in the samples that got this fault": ``19/20 when rate-limited``."""


def fault_description(kind: str) -> str:
    """What ``kind`` does to a call, from the fault catalogue."""
    if kind == NO_FAULT:
        return "no fault injected"
    return FAULT_KINDS.get(kind, "a fault kind this llmcheck does not know")


def fault_phrase(kind: str) -> str:
    """``when rate-limited``, ``on timeouts``: see :data:`FAULT_PHRASES`."""
    return FAULT_PHRASES.get(kind) or f"under {kind}"


@dataclass
class FaultView:
    """How one test fared in the samples that got one fault kind (``none``: no fault)."""

    test: str
    kind: str
    description: str
    samples: int
    passed: int
    failed: int
    errors: int
    rate: float | None
    low: float | None
    high: float | None
    required: float
    """the test's required rate, for comparison"""
    recovered: int = 0
    """samples that got this kind and recovered from it (judged under ``none``)"""

    @property
    def scored(self) -> int:
        return self.passed + self.failed

    @property
    def rate_text(self) -> str:
        return fmt_rate(self.rate)

    @property
    def interval_text(self) -> str:
        return "-" if self.low is None else f"[{self.low:.2f}, {self.high:.2f}]"

    @property
    def summary(self) -> str:
        """``19/20 when rate-limited``, ``3/3 with no fault (1 error)``, ``0/1 on server
        errors (4 recovered)``, or ``all 15 recovered`` when no sample stayed on the fault."""
        if self.samples == 0 and self.recovered:
            return f"all {self.recovered} recovered"
        notes = [f"{self.errors} error{'s' if self.errors > 1 else ''}"] if self.errors else []
        if self.recovered:
            notes.append(f"{self.recovered} recovered")
        notes_text = f" ({', '.join(notes)})" if notes else ""
        return f"{self.passed}/{self.scored} {fault_phrase(self.kind)}{notes_text}"


@dataclass
class ExampleView:
    """One sample of a failure group: its full message, the checks it failed and what
    its last model calls sent and got back."""

    index: int
    seed: int
    outcome: str
    message: str
    checks: list[tuple[str, str, str]]
    """(check, message, measured value) of each failed check"""
    exchanges: list[ExchangeView] = field(default_factory=list)


@dataclass
class GroupView:
    outcome: str
    error_type: str
    message: str
    count: int
    samples: str
    traceback: str
    examples: list[ExampleView] = field(default_factory=list)
    not_shown: int = 0
    """samples of the group whose example is left out (beyond MAX_EXAMPLES)"""
    budget_cut: bool = False
    """examples left out because the report's example budget was spent"""


@dataclass
class TestView:
    __test__ = False  # not a pytest test class

    index: int
    nodeid: str
    outcome: str
    verdict: str
    """the word with its xfail marking: ``PASS``, ``FAIL (xfail)``"""
    verdict_full: str
    """as the terminal table shows it: ``PASS (inconclusive, n≈139)``"""
    conclusive: str
    """``yes``, ``no`` or ``no, n≈139``; ``-`` when there is no verdict"""
    is_conclusive: bool
    rate: float | None
    rate_text: str
    estimate: float | None
    low: float | None
    high: float | None
    interval_text: str
    interval_name: str
    required: float
    counted: int
    planned: int
    samples_text: str
    early: str
    passed: int
    failed: int
    errors: int
    cost: float | None
    cost_text: str
    calls: int
    tokens: int
    duration: float
    reason: str
    policy: str
    xfail: str | None
    failing_samples: int
    """samples (counted or not) that failed or errored"""
    checks: list[CheckView]
    groups: list[GroupView]
    warnings: list[str]
    fault_plan: str | None = None
    """the faults injected (``rate_limit:0.3,server_error:0.1 (seed 0)``); None: none"""
    faults: list[FaultView] = field(default_factory=list)
    """pass counts per injected fault kind, then ``none``; empty when none was injected"""

    @property
    def required_text(self) -> str:
        return f"{self.required:.2f}"


@dataclass
class AggregateView:
    test: str
    cases: int
    cases_passed: int
    passed: int
    failed: int
    errors: int
    rate: float | None
    low: float | None
    high: float | None
    interval_text: str
    required: float | None


@dataclass
class SessionView:
    title: str
    model: str
    simulated: bool
    runs: str
    seed: int
    started: str
    duration: float | None
    duration_text: str
    calls: int
    tokens: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    cost_text: str
    counts: dict[str, int]
    """verdicts: passed, failed, error, interrupted, inconclusive, xfail, failing_samples"""
    counts_text: str
    false_fail: str
    notes: list[str]
    warnings: list[str]
    tests: list[TestView]
    aggregates: list[AggregateView]
    version: str

    @property
    def checks(self) -> list[CheckView]:
        return [c for t in self.tests for c in t.checks]

    @property
    def faults(self) -> list[FaultView]:
        return [f for t in self.tests for f in t.faults]

    @property
    def fault_tests(self) -> list[TestView]:
        """The tests that had faults injected, or a fault plan."""
        return [t for t in self.tests if t.faults or t.fault_plan]

    def failure_groups(self) -> list[tuple[TestView, GroupView]]:
        """Every failure group of every test, the most frequent first."""
        pairs = [(t, g) for t in self.tests for g in t.groups]
        pairs.sort(key=lambda p: -p[1].count)
        return pairs


class _Budget:
    def __init__(self, chars: int) -> None:
        self.left = chars

    def take(self, *texts: str) -> bool:
        """Spend the length of ``texts``; False (nothing spent) when it is not there."""
        need = sum(len(t) for t in texts)
        if need > self.left:
            self.left = 0
            return False
        self.left -= need
        return True


def _group_view(g: FailureGroup, by_index: dict[int, SampleRecord],
                budget: _Budget) -> GroupView:
    shown = ", ".join(str(i) for i in g.samples[:MAX_SAMPLE_INDICES])
    if len(g.samples) > MAX_SAMPLE_INDICES:
        shown += f", … (+{len(g.samples) - MAX_SAMPLE_INDICES})"
    view = GroupView(outcome=g.outcome, error_type=text(g.error_type or "", newlines=False),
                     message=text(g.message), count=g.count, samples=shown, traceback="")
    traceback = clip_traceback(g.example) if g.example else ""
    if not budget.take(traceback):
        view.budget_cut = True
        view.not_shown = len(g.samples)
        return view
    view.traceback = traceback
    for i in g.samples[:MAX_EXAMPLES]:
        s = by_index.get(i)
        if s is None:
            continue
        checks = [(text(c.name, newlines=False, limit=300), text(c.message or ""),
                   "" if c.value is None else text(c.value))
                  for c in s.checks if not c.passed]
        example = ExampleView(index=s.index, seed=s.seed, outcome=s.outcome,
                              message=text(s.message or ""), checks=checks,
                              exchanges=exchange_views(s) if len(view.examples) <
                              MAX_IO_EXAMPLES else [])
        if not budget.take(example.message, *(a + b + c for a, b, c in checks),
                           *(t for x in example.exchanges for t in x.texts)):
            view.budget_cut = True
            break
        view.examples.append(example)
    view.not_shown = len(g.samples) - len(view.examples)
    return view


def _check_view(test: str, c: CheckStat) -> CheckView:
    return CheckView(test=test, name=text(c.name, newlines=False, limit=300),
                     evaluated=c.evaluated, passed=c.passed, failed=c.failed, rate=c.pass_rate,
                     low=c.interval.low, high=c.interval.high, example=first_lines(c.example))


def _fault_view(test: str, f: FaultStat, required: float) -> FaultView:
    scored = f.passed + f.failed
    return FaultView(test=test, kind=text(f.kind, newlines=False, limit=100),
                     description=text(fault_description(f.kind), newlines=False),
                     samples=f.samples, passed=f.passed, failed=f.failed, errors=f.errors,
                     rate=f.pass_rate, low=f.interval.low if scored else None,
                     high=f.interval.high if scored else None, required=required,
                     recovered=f.recovered)


def _test_view(index: int, r: TestRecord, budget: _Budget) -> TestView:
    scored = r.passed + r.failed
    counted = scored + r.errors
    rate_text = fmt_rate(r.pass_rate)
    if r.worst_case_rate is not None:
        rate_text += f" ({r.worst_case_rate:.2f})"
    nodeid = text(r.nodeid, newlines=False, limit=1000)
    by_index = {s.index: s for s in r.samples} if r.failure_groups else {}
    return TestView(
        index=index, nodeid=nodeid, outcome=r.verdict.outcome, verdict=verdict_word(r),
        verdict_full=verdict_cell(r), conclusive=conclusive_text(r),
        is_conclusive=r.verdict.conclusive and r.verdict.outcome not in NO_VERDICT,
        rate=r.pass_rate, rate_text=rate_text, estimate=r.estimate,
        low=r.interval.low if scored else None, high=r.interval.high if scored else None,
        interval_text=interval_text(r.interval, scored), interval_name=interval_label(r),
        required=r.min_pass_rate, counted=counted, planned=r.planned,
        samples_text=f"{counted}/{r.planned}", early=early_stop_cell(r),
        passed=r.passed, failed=r.failed, errors=r.errors, cost=r.usage.cost,
        cost_text=fmt_cost(r.usage.cost, r.usage.unpriced_calls), calls=r.usage.calls,
        tokens=r.usage.prompt_tokens + r.usage.completion_tokens, duration=r.duration,
        reason=text(r.verdict.reason), policy=r.settings.verdict,
        xfail=None if r.xfail is None else text(r.xfail),
        failing_samples=sum(g.count for g in r.failure_groups),
        checks=[_check_view(nodeid, c) for c in r.checks],
        groups=[_group_view(g, by_index, budget) for g in r.failure_groups],
        warnings=[text(w) for w in r.warnings],
        fault_plan=None if r.fault_plan is None else text(r.fault_plan, newlines=False,
                                                           limit=1000),
        faults=[_fault_view(nodeid, f, r.min_pass_rate) for f in r.faults],
    )


def _aggregate_view(a: Aggregate, required_rates: dict[str, set[float]]) -> AggregateView:
    scored = a.passed + a.failed
    required = required_rates.get(a.test, set())
    return AggregateView(
        test=text(a.test, newlines=False, limit=1000), cases=a.cases,
        cases_passed=a.cases_passed, passed=a.passed, failed=a.failed, errors=a.errors,
        rate=a.pass_rate, low=a.interval.low if scored else None,
        high=a.interval.high if scored else None,
        interval_text=interval_text(a.interval, scored),
        required=next(iter(required)) if len(required) == 1 else None)


def runs_setting(session: SessionRecord) -> str:
    option = session.options.get("runs")
    value = option.get("value") if isinstance(option, dict) else None
    return "per test" if value is None else text(value, newlines=False, limit=40)


def counts_of(tests: list[TestRecord]) -> dict[str, int]:
    counts = dict.fromkeys(("passed", "failed", "error", "interrupted", "inconclusive",
                            "xfail", "failing_samples"), 0)
    for r in tests:
        outcome = r.verdict.outcome
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome not in NO_VERDICT:
            counts["inconclusive"] += not r.verdict.conclusive
            counts["xfail"] += r.xfail is not None and outcome != "passed"
        counts["failing_samples"] += outcome == "passed" and bool(r.failure_groups)
    return counts


def counts_line(counts: dict[str, int]) -> str:
    """``10 passed, 5 failed (5 expected), 1 error; 2 inconclusive``."""
    failed = f"{counts['failed']} failed"
    if counts["xfail"]:
        failed += f" ({counts['xfail']} expected)"
    parts = [f"{counts['passed']} passed", failed, f"{counts['error']} error(s)"]
    if counts["interrupted"]:
        parts.append(f"{counts['interrupted']} interrupted")
    line = ", ".join(parts)
    if counts["inconclusive"]:
        line += f"; {counts['inconclusive']} inconclusive"
    return line


def session_view(session: SessionRecord) -> SessionView:
    """The view of ``session`` both report formats render."""
    budget = _Budget(EXAMPLE_BUDGET)
    tests = [_test_view(i, r, budget) for i, r in enumerate(session.tests, 1)]
    u = session.usage
    model = text(session.model or "none called", newlines=False, limit=200)
    notes = role_notes(u)
    if session.interrupted:
        notes.append("the session was interrupted: the verdicts rest on the samples that "
                     "finished")
    if session.budget:
        notes.append(f"budget: {text(session.budget)}")
    if session.recovered_from:
        notes.append(f"recovered from the journal of a run that was killed "
                     f"({text(session.recovered_from)})")
    if session.shard:
        notes.append(f"shard {text(session.shard, newlines=False)} of the LLM tests")
    if session.merged_from:
        notes.append(f"merged from {len(session.merged_from)} report(s)")
    ffc = session.false_fail_chance
    required: dict[str, set[float]] = {}
    for r in session.tests:
        required.setdefault(r.nodeid.split("[", 1)[0], set()).add(r.min_pass_rate)
    counts = counts_of(session.tests)
    return SessionView(
        title=f"llmcheck report: {model}", model=model, simulated=session.simulated,
        runs=runs_setting(session), seed=session.seed,
        started=session.started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        duration=session.duration, duration_text=fmt_duration(session.duration),
        calls=u.calls, tokens=u.prompt_tokens + u.completion_tokens,
        prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, cost=u.cost,
        cost_text=fmt_cost(u.cost, u.unpriced_calls), counts=counts,
        counts_text=counts_line(counts),
        false_fail="-" if ffc is None else f"{ffc:.1%}", notes=notes,
        warnings=[text(w) for w in session.warnings], tests=tests,
        aggregates=[_aggregate_view(a, required) for a in session.aggregates],
        version=text(session.llmcheck_version, newlines=False, limit=40),
    )
