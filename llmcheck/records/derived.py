"""Statistics derived from a test's samples: failures grouped by message (and by the
episode step where they went wrong), per-check and per-fault pass counts, pass^k and
pass@k. The runner calls these when it finishes a test's record; the session pools the
cases of parametrized tests.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from llmcheck import stats
from llmcheck.records.models import (
    Aggregate,
    CheckResult,
    CheckStat,
    FailureGroup,
    FaultStat,
    Interval,
    KStat,
    SampleRecord,
    StepFailureGroup,
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


def _step_order(step: str) -> tuple[float, str]:
    """Where a path check's step comes in an episode: ``step 2: x`` and ``turn 2`` by their
    number, ``final`` after every numbered step."""
    match = re.match(r"(?:step|turn) (\d+)", step)
    return (int(match.group(1)) if match else math.inf), step


def step_failures(samples: list[SampleRecord]) -> list[StepFailureGroup]:
    """Failed samples grouped by the first step (in episode order) whose path check failed
    and that check, the most frequent first: where episodes go wrong. A sample whose
    failed checks name no step is left out."""
    members: dict[tuple[str, str], list[int]] = {}
    for s in samples:
        failed = [r for r in s.checks if not r.passed and r.step] if s.outcome == "failed" \
            else []
        if failed:
            first = min(failed, key=lambda r: _step_order(r.step or ""))
            members.setdefault((first.step or "", first.name), []).append(s.index)
    ranked = sorted(members.items(), key=lambda kv: (-len(kv[1]), _step_order(kv[0][0])))
    return [StepFailureGroup(step=step, check=check, count=len(indices), samples=indices)
            for (step, check), indices in ranked]


def fault_stats(samples: list[SampleRecord], settings: TestSettings) -> list[FaultStat]:
    """Pass counts of the counted samples per injected fault kind they did not recover
    from (catalogue order), then ``none`` for the samples judged as clean (no fault, or
    every fault recovered from); each kind also counts its recovered samples. Empty when
    nothing was injected."""
    from llmcheck.config.faults import FAULT_KINDS, TOOL_FAULT_KINDS

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
    for kind in [*FAULT_KINDS, *TOOL_FAULT_KINDS, "none"]:
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
            reliability=_cases_reliability(members),
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


def reliability_fields(passed: int, scored: int, interval: Interval) -> dict[str, Any]:
    """A test's pass^k and pass@k for each k of :data:`~llmcheck.stats.RELIABILITY_KS` up
    to ``scored``, computed once, as the :class:`TestRecord` fields of those names: the
    unbiased estimates by k (``pass_hat_k``, ``pass_at_k``) and ``reliability``, which adds
    their intervals mapped from the test's own ``interval`` for the rate (same coverage:
    both increase with the rate)."""
    out = []
    for k in (k for k in stats.RELIABILITY_KS if k <= scored):
        out.append(KStat(
            k=k, pass_hat_k=stats.pass_hat_k(scored, passed, k),
            pass_hat_k_interval=_k_interval(
                stats.pass_hat_k_bounds(interval.low, interval.high, k), interval),
            pass_at_k=stats.pass_at_k(scored, passed, k),
            pass_at_k_interval=_k_interval(
                stats.pass_at_k_bounds(interval.low, interval.high, k), interval)))
    return {"pass_hat_k": {str(s.k): s.pass_hat_k for s in out},
            "pass_at_k": {str(s.k): s.pass_at_k for s in out}, "reliability": out}


def _k_interval(bounds: tuple[float, float], like: Interval, method: str | None = None
                ) -> Interval:
    """``bounds`` as an interval at ``like``'s confidence, by ``like``'s method unless
    ``method`` names another."""
    update: dict[str, Any] = {"low": bounds[0], "high": bounds[1]}
    if method is not None:
        update["method"] = method
    return like.model_copy(update=update)


def _case_bounds(t: TestRecord, level: float) -> tuple[float, float]:
    """Case ``t``'s interval for its rate at confidence ``level``: exact under its own
    stopping rule when its reported interval was, else Clopper-Pearson (exact, so the
    simultaneous coverage is guaranteed); ``(0, 1)`` when nothing was scored."""
    scored = t.passed + t.failed
    if not scored:
        return 0.0, 1.0
    if t.interval.method == "stopping-exact":
        region = stats.stopping_region(t.settings.policy(), t.settings.runs - t.errors)
        return stats.stopping_interval(region, t.passed, scored, level)
    return stats.clopper_pearson_interval(t.passed, scored, level)


def _cases_reliability(members: list[TestRecord]) -> list[KStat]:
    """pass^k and pass@k as means over the cases (tau-bench's definition): the mean of
    the cases' unbiased estimates, and the mean of their bounds at the simultaneous
    (Šidák) level, which covers the mean however much the cases differ
    (:mod:`llmcheck.stats.reliability`); at the first case's confidence."""
    like = members[0].interval
    level = stats.simultaneous_confidence(like.confidence, len(members))
    bounds = [_case_bounds(t, level) for t in members]
    passes = [t.passed for t in members]
    scored = [t.passed + t.failed for t in members]
    out = []
    for k in (k for k in stats.RELIABILITY_KS if k <= max(scored)):
        out.append(KStat(
            k=k, pass_hat_k=stats.pooled_k_estimate(passes, scored, k, "pass_hat_k"),
            pass_hat_k_interval=_k_interval(stats.pooled_k_bounds(bounds, k, "pass_hat_k"),
                                            like, "cases-simultaneous"),
            pass_at_k=stats.pooled_k_estimate(passes, scored, k, "pass_at_k"),
            pass_at_k_interval=_k_interval(stats.pooled_k_bounds(bounds, k, "pass_at_k"),
                                           like, "cases-simultaneous")))
    return out
