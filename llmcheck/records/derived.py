"""Statistics derived from a test's samples: failures grouped by message, per-check
and per-fault pass counts. The runner calls these when it finishes a test's record.
"""

from __future__ import annotations

from collections import Counter

from llmcheck import stats
from llmcheck.records.models import (
    Aggregate,
    CheckResult,
    CheckStat,
    FailureGroup,
    FaultStat,
    Interval,
    SampleRecord,
    TestRecord,
    TestSettings,
)


def group_failures(samples: list[SampleRecord]) -> list[FailureGroup]:
    """Group failed and errored samples by the first line of their message, the
    most common first. (pytest's assertion rewriting appends the compared values
    on later lines; those differ per sample and would split every group.)"""
    counts: Counter[tuple[str, str | None, str]] = Counter()
    members: dict[tuple[str, str | None, str], list[SampleRecord]] = {}
    for s in samples:
        if s.outcome == "passed":
            continue
        first_line = (s.message or "").splitlines()[0] if s.message else ""
        key = (s.outcome, s.error_type, first_line)
        counts[key] += 1
        members.setdefault(key, []).append(s)
    groups = []
    for key, count in counts.most_common():
        outcome, error_type, message = key
        first = members[key][0]
        groups.append(
            FailureGroup(
                outcome=outcome,
                error_type=error_type,
                message=message,
                count=count,
                samples=[s.index for s in members[key]],
                example=first.traceback,
            )
        )
    return groups


def fault_stats(samples: list[SampleRecord], settings: TestSettings) -> list[FaultStat]:
    """Pass counts of the counted samples per injected fault kind they did not recover
    from (catalogue order), then ``none`` for the samples judged as clean (no fault, or
    every fault recovered from); each kind also counts its recovered samples. Empty when
    nothing was injected."""
    from llmcheck.config.faults import FAULT_KINDS as KINDS

    counted = [s for s in samples if s.counted]
    if not any(s.faults for s in counted):
        return []
    groups: dict[str, list[SampleRecord]] = {}
    recovered: dict[str, int] = {}
    for sample in counted:
        blamed = {f.kind for f in sample.faults if not f.recovered}
        for kind in {f.kind for f in sample.faults if f.recovered} - blamed:
            recovered[kind] = recovered.get(kind, 0) + 1
        for kind in blamed or {"none"}:
            groups.setdefault(kind, []).append(sample)
    out = []
    for kind in [*KINDS, "none"]:
        members = groups.get(kind, [])
        if not members and not recovered.get(kind):
            continue
        passed = sum(s.outcome == "passed" for s in members)
        failed = sum(s.outcome == "failed" for s in members)
        errors = len(members) - passed - failed
        out.append(FaultStat(kind=kind, samples=len(members), passed=passed, failed=failed,
                             errors=errors,
                             pass_rate=passed / (passed + failed) if passed + failed else None,
                             interval=settings.interval_of(passed, passed + failed),
                             recovered=recovered.get(kind, 0)))
    return out


def check_stats(samples: list[SampleRecord], settings: TestSettings) -> list[CheckStat]:
    """Per-check counts over samples, the checks that failed most first."""
    by_name: dict[str, dict[int, list[CheckResult]]] = {}
    for sample in samples:
        for result in sample.checks:
            by_name.setdefault(result.name, {}).setdefault(sample.index, []).append(result)
    out = []
    for name, per_sample in by_name.items():
        failed_samples = sorted(i for i, rs in per_sample.items() if not all(r.passed for r in rs))
        evaluated = len(per_sample)
        passed = evaluated - len(failed_samples)
        example = None
        if failed_samples:
            first = next(r for r in per_sample[failed_samples[0]] if not r.passed)
            example = first.message
        out.append(CheckStat(
            name=name, evaluated=evaluated, passed=passed, failed=len(failed_samples),
            pass_rate=passed / evaluated if evaluated else None,
            interval=settings.interval_of(passed, evaluated),
            failed_samples=failed_samples, example=example,
        ))
    out.sort(key=lambda c: (-c.failed, c.name))
    return out


def case_aggregates(tests: list[TestRecord]) -> list[Aggregate]:
    """Pool the cases of each parametrized test function (two or more cases), with
    the interval method and confidence of its first case."""
    groups: dict[str, list[TestRecord]] = {}
    for t in tests:
        base = t.nodeid.split("[", 1)[0] if t.nodeid.endswith("]") else None
        if base is not None:
            groups.setdefault(base, []).append(t)
    out = []
    for base, members in groups.items():
        if len(members) < 2:
            continue
        passed = sum(t.passed for t in members)
        failed = sum(t.failed for t in members)
        scored = passed + failed
        out.append(Aggregate(
            test=base, cases=len(members), passed=passed, failed=failed,
            errors=sum(t.errors for t in members),
            pass_rate=passed / scored if scored else None,
            interval=_cases_interval(base, members),
            cases_passed=sum(t.verdict.outcome == "passed" for t in members),
            cases_failed=sum(t.verdict.outcome != "passed" for t in members),
        ))
    return out


def _cases_interval(base: str, members: list[TestRecord]) -> Interval:
    """The pooled rate's interval at the first case's confidence and method, widened
    to a percentile bootstrap over cases (:func:`llmcheck.stats.cases_bootstrap`):
    cases differ, so the pooled interval alone is too narrow when they do."""
    settings = members[0].settings
    passes = [t.passed for t in members]
    scored = [t.passed + t.failed for t in members]
    pooled = settings.interval_of(sum(passes), sum(scored))
    spread = stats.cases_bootstrap(passes, scored, settings.confidence, base)
    if spread is None:
        return pooled
    low, high = spread
    return Interval(low=min(pooled.low, low), high=max(pooled.high, high),
                    method="cases-bootstrap", confidence=settings.confidence)
