"""The data model of results: samples, tests and sessions as pydantic records.

The JSON report is the serialization of a :class:`SessionRecord`; every other
view (terminal table, markdown, HTML, the gate) is rendered from that JSON,
never from live objects, so any report can be re-rendered later. Per-test
records travel between xdist workers and the controller as JSON too.
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmcheck import stats
from llmcheck.config.names import IntervalMethod, PolicyName
from llmcheck.errors import ReportError
from llmcheck.redact import scrub
from llmcheck.version import __version__

SCHEMA_VERSION = 7
"""Bumped on every change of the JSON report's shape.

Version history (and how :func:`load_session` migrates older reports):
  1 - first version: session, tests, samples, verdicts, model calls and usage.
  2 - per-check results: ``samples[].checks`` (every ``assert_*`` evaluated in the
      sample), ``tests[].checks`` (per-check pass counts, rate, interval and the
      failing samples), ``tests[].pass_at_k`` and ``session.aggregates`` (pass
      rates pooled over the cases of a parametrized test). A version-1 report is
      read as version 2 with those empty: it recorded none of them.
  3 - the whole verdict configuration in ``tests[].settings`` (policy, required
      rate, margin, alpha, beta, confidence, interval method, early stop,
      planned samples, concurrency and the policy's boundaries in ``design``),
      replacing ``planned``, ``min_pass_rate``, ``confidence``, ``concurrency``
      and ``verdict.policy``; ``tests[].simulated`` (the calls went to a simulator
      the plugin started); ``session.cache`` (replay hits and misses) and
      ``session.recovered_from``; ``samples[].counted`` (verdicts are taken on the
      samples in index order: ``passed``, ``failed`` and ``errors`` count those, and a
      sample that finished after the deciding one is recorded with ``counted: false``);
      ``tests[].worst_case_rate``; ``session.false_fail_chance``.
  4 - inference that accounts for early stopping: with early stopping on,
      ``tests[].interval`` is the exact interval under the stopping rule (method
      ``stopping-exact``) and ``tests[].estimate`` the bias-adjusted rate. A version-3
      report is read with its intervals as they were and no estimate.
  5 - ``tests[].fingerprint`` (what the test asks: a hash of its source and parameters,
      so a baseline is only compared with the same test), ``session.merged_from`` (the
      reports a merged report joins) and ``session.shard``. A version-4 report is read
      with none of them.
  6 - fault injection: ``samples[].faults`` (which fault was injected into which of the
      sample's requests, and where), ``samples[].provider_failures`` (real provider
      failures the proxy saw), ``calls[].via`` and ``calls[].fault``,
      ``tests[].fault_plan`` and ``tests[].faults`` (pass counts per fault kind, and of
      the samples that got none). A version-5 report is read with none of them.
  7 - local models: ``calls[].params`` (the sampling parameters each request carried:
      temperature, seed, max_tokens, ...) and ``session.local_model`` (the GGUF file,
      context size and server llmcheck started for ``--llm-model=local/NAME`` or
      ``gguf:PATH``). A version-6 report is read with none of them.
      A version-2 report is read with its settings
      rebuilt from those fields; margin, alpha and beta, which it did not record,
      are taken as the defaults and ``design`` is empty.
"""

Outcome = Literal["passed", "failed", "error"]
VerdictOutcome = Literal["passed", "failed", "error", "interrupted"]
"""``error``: most samples could not reach the model, or none could run (budget);
``interrupted``: stopped before any sample finished. Neither is a verdict."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_secrets(cls, value: Any) -> Any:
        """Every string a record holds passes here: the boundary where secrets are
        removed (see :mod:`llmcheck.redact`)."""
        return scrub(value)


class CheckResult(_Record):
    """One check (``llmcheck.assert_*``) evaluated in a sample."""

    name: str = Field(description="the check with its key arguments, e.g. 'max_words(50)'")
    passed: bool
    message: str | None = Field(None, description="why it failed (None when it passed)")
    value: float | int | str | bool | None = Field(
        None, description="what was measured: a similarity score, a word count, ..."
    )


class CallRecord(_Record):
    """One model call made by a sample (after its retries)."""

    model: str
    latency: float = Field(description="seconds, retries and backoff included")
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = Field(None, description="dollars; None when the price is unknown")
    retries: int = 0
    cached: bool = False
    time_to_first_token: float | None = None
    error: str | None = Field(None, description="set when no answer came after the retries")
    via: str | None = Field(None, description="None for the llm fixture's client; 'proxy' "
                            "for a call of the code under test that came through llmcheck's "
                            "proxy (llm_endpoint.base_url)")
    fault: str | None = Field(None, description="the fault injected into this call, if any")
    params: dict[str, int | float | str | bool] = Field(
        default_factory=dict, description="the sampling parameters the request carried "
        "(temperature, seed, max_tokens, top_p, ...): what a rerun needs to reproduce it")


SAMPLING_PARAMS = frozenset({
    "temperature", "top_p", "top_k", "min_p", "seed", "max_tokens", "max_completion_tokens",
    "presence_penalty", "frequency_penalty", "repeat_penalty", "n",
})
"""The request parameters recorded with each call (``CallRecord.params``): those that
shape the answer's distribution."""


def sampling_params(request: Any) -> dict[str, int | float | str | bool]:
    """The :data:`SAMPLING_PARAMS` of a request's parameters or JSON body."""
    return {k: v for k, v in request.items()
            if k in SAMPLING_PARAMS and isinstance(v, (int, float, str, bool))}


class LocalModelRecord(_Record):
    """The local model a session served itself (``--llm-model=local/NAME`` or ``gguf:PATH``)."""

    name: str = Field(description="as given: local/smollm2 or gguf:/path/model.gguf")
    path: str = Field(description="the GGUF file served")
    size: int = Field(description="its size in bytes")
    context: int = Field(description="the context size the server was started with (tokens)")
    threads: int = Field(description="CPU threads the server decodes with")
    server: str = Field(description="the server and its version, e.g. llama-cpp-python "
                        "0.3.36 (each xdist worker starts its own)")


class FaultRecord(_Record):
    """A fault injected into one of a sample's model requests."""

    call: int = Field(description="0-based number of the request within the sample")
    kind: str = Field(description="the fault kind (llmcheck.injection.KINDS)")
    via: str = Field(description="'in-process' (httpx interception) or 'proxy'")


class SampleRecord(_Record):
    """One run of a test body."""

    index: int
    seed: int
    outcome: Outcome
    duration: float = Field(description="seconds spent in the body")
    message: str | None = Field(None, description="first line of the failure or error")
    error_type: str | None = Field(None, description="exception class, e.g. AssertionError")
    traceback: str | None = Field(None, description="short traceback of the failure or error")
    calls: list[CallRecord] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    faults: list[FaultRecord] = Field(default_factory=list)
    provider_failures: list[str] = Field(
        default_factory=list, description="real (not injected) provider failures seen by "
        "llmcheck's proxy in this sample: a sample that raised after one is an error")
    counted: bool = Field(True, description="the verdict counts it; False for a sample "
                          "that finished after the deciding sample (in index order), or "
                          "beyond an earlier one that never finished")


class Interval(_Record):
    low: float
    high: float
    method: IntervalMethod | Literal["cases-bootstrap", "stopping-exact"] = "wilson"
    """``cases-bootstrap`` (pooled case rates only): the union of the pooled interval and
    a percentile bootstrap over cases, so that differences between cases widen it.
    ``stopping-exact``: the exact interval under the early-stopping rule (sample-mean
    ordering), used whenever a test may stop early (see :mod:`llmcheck.stats.stopping`)."""
    confidence: float

    @classmethod
    def of(cls, successes: int, n: int, method: str, confidence: float) -> Interval:
        """The ``method`` interval of ``successes`` out of ``n`` at ``confidence``."""
        low, high = stats.confidence_interval(successes, n, confidence, method)
        return cls(low=low, high=high, method=method, confidence=confidence)


class FailureGroup(_Record):
    """Samples that failed (or errored) with the same message."""

    outcome: Outcome
    error_type: str | None
    message: str
    count: int
    samples: list[int]
    example: str | None = Field(None, description="one full example: the traceback")


class UsageTotals(_Record):
    """Model usage summed over samples (a test) or tests (a session)."""

    calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = Field(None, description="dollars over the calls whose price is known")
    unpriced_calls: int = Field(0, description="calls whose cost is unknown")

    @classmethod
    def of_calls(cls, calls: list[CallRecord]) -> UsageTotals:
        u = cls()
        for c in calls:
            u.calls += 1
            u.cached_calls += c.cached
            u.failed_calls += c.error is not None
            u.retries += c.retries
            u.prompt_tokens += c.prompt_tokens or 0
            u.completion_tokens += c.completion_tokens or 0
            if c.cost is not None:
                u.cost = (u.cost or 0.0) + c.cost
            elif not c.cached and c.error is None:
                u.unpriced_calls += 1
        return u

    def __add__(self, other: UsageTotals) -> UsageTotals:
        cost = None if self.cost is None and other.cost is None else \
            (self.cost or 0.0) + (other.cost or 0.0)
        return UsageTotals(
            calls=self.calls + other.calls, cached_calls=self.cached_calls + other.cached_calls,
            failed_calls=self.failed_calls + other.failed_calls,
            retries=self.retries + other.retries,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=cost, unpriced_calls=self.unpriced_calls + other.unpriced_calls,
        )


class CheckStat(_Record):
    """How one check fared over the samples of a test (per sample: a check that
    ran several times in a sample fails the sample if any evaluation failed)."""

    name: str
    evaluated: int = Field(description="samples in which the check ran")
    passed: int
    failed: int
    pass_rate: float | None
    interval: Interval
    failed_samples: list[int] = Field(default_factory=list)
    example: str | None = Field(None, description="the first failure's message")


class FaultStat(_Record):
    """How a test fared in the samples that got one fault kind (``none``: the samples
    that got no injected fault). A sample with two kinds counts under both."""

    kind: str
    samples: int
    passed: int
    failed: int
    errors: int
    pass_rate: float | None
    interval: Interval


class Aggregate(_Record):
    """Pass counts pooled over the cases (parametrizations) of one test function."""

    test: str = Field(description="the test function's node id without its parameters")
    cases: int
    passed: int
    failed: int
    errors: int
    pass_rate: float | None
    interval: Interval
    cases_passed: int = Field(description="cases whose own verdict passed")
    cases_failed: int


class Verdict(_Record):
    outcome: VerdictOutcome
    conclusive: bool
    reason: str
    samples_to_conclusive: int | None = None
    stopped_early: bool = False
    stop_reason: str | None = None
    decided_after: int | None = Field(None, description="finished samples when the verdict settled")


class TestSettings(_Record):
    """A test's settings, resolved once (marker keywords, then the command line,
    environment, ini and defaults: see :func:`llmcheck.records.resolve.resolve_test`).

    The same object drives the runner, is journaled with the samples and is
    saved in the test's record, so a saved report can re-derive and explain its
    own verdicts without pytest (:meth:`policy`).
    """

    __test__ = False  # not a pytest test class
    model_config = ConfigDict(extra="forbid", frozen=True)

    runs: int = Field(ge=1, description="samples planned: the most the test may run")
    verdict: PolicyName = Field(description="the verdict policy")
    min_pass_rate: float = Field(description="the pass rate the test requires")
    confidence: float = Field(description="confidence level of intervals and verdicts")
    margin: float = Field(description="sequential: half-width of the indifference zone")
    alpha: float = Field(description="sequential: P(pass) at min_pass_rate - margin")
    beta: float = Field(description="sequential: P(fail) at min_pass_rate + margin")
    interval: IntervalMethod = Field(description="the interval method of the reports")
    early_stop: bool = Field(description="stop launching samples once the verdict is settled")
    concurrency: int = Field(ge=1, description="samples in flight at once")
    model: str | None = Field(None, description="the model the test asked for, if any")
    temperature: float | None = None
    max_tokens: int | None = None
    design: dict[str, float | int | None] = Field(
        default_factory=dict,
        description="the policy's decision rule: for threshold and interval the fewest "
        "passes out of runs that pass; for sequential p0, p1, the SPRT boundaries on the "
        "log-likelihood ratio (None when dropped) and the truncation's critical value")

    def policy(self) -> stats.Policy:
        """The verdict policy these settings describe."""
        return stats.make_policy(
            self.verdict, min_pass_rate=self.min_pass_rate, confidence=self.confidence,
            max_samples=self.runs, margin=self.margin, alpha=self.alpha, beta=self.beta)

    def interval_of(self, successes: int, n: int) -> Interval:
        """The fixed-n interval (the settings' method) of ``successes`` out of ``n``."""
        return Interval.of(successes, n, self.interval, self.confidence)

    def inference(self, passes: int, scored: int, errors: int = 0) -> tuple[Interval,
                                                                         float | None]:
        """The interval and bias-adjusted rate a report gives for a run of these settings
        that ended by its own rule with ``passes`` out of ``scored`` (and ``errors``).

        With ``early_stop`` the exact interval under the stopping rule and Whitehead's
        bias-adjusted rate (the raw rate at a data-dependent stop is biased, and a
        fixed-n interval undercovers), errored samples taken as a shorter run; else (no
        early stopping, a stop that errors moved off the shorter run's stopping region,
        beyond :data:`~llmcheck.stats.MAX_STOPPING_SAMPLES` runs) the fixed-n interval
        and no estimate."""
        cap = self.runs - errors
        if not self.early_stop or scored == 0 or cap > stats.MAX_STOPPING_SAMPLES:
            return self.interval_of(passes, scored), None
        region = stats.stopping_region(self.policy(), cap)
        if not region.contains(scored, passes):  # errors moved the stop off the region
            return self.interval_of(passes, scored), None
        low, high = stats.stopping_interval(region, passes, scored, self.confidence)
        interval = Interval(low=low, high=high, method="stopping-exact",
                            confidence=self.confidence)
        return interval, stats.bias_adjusted_rate(region, passes, scored)


class TestRecord(_Record):
    """One pytest item: its samples and the verdict they add up to."""

    __test__ = False  # not a pytest test class

    nodeid: str
    settings: TestSettings
    run: int
    passed: int
    failed: int
    errors: int
    pass_rate: float | None
    worst_case_rate: float | None = Field(
        None, description="the pass rate with infrastructure errors counted as failures "
        "(set when there were errors): what errors could be hiding")
    interval: Interval
    fingerprint: str | None = Field(
        None, description="hash of the test's source and parameters: a baseline is only "
        "compared with the same test (None: unknown, e.g. an older report)")
    estimate: float | None = Field(
        None, description="the bias-adjusted pass rate (Whitehead) when the test may stop "
        "early, whose raw rate is biased by the stopping rule; else None")
    verdict: Verdict
    duration: float
    interrupted: bool = False
    budget_stopped: bool = Field(False, description="the session budget stopped new samples")
    model: str | None = None
    simulated: bool = Field(False, description="the calls went to a simulator the plugin "
                            "started (not a model configured by the user)")
    usage: UsageTotals = Field(default_factory=UsageTotals)
    xfail: str | None = Field(None, description="reason, when the test is expected to fail")
    pass_hat_k: dict[str, float] = Field(
        default_factory=dict, description="chance that k runs in a row all pass, by k"
    )
    pass_at_k: dict[str, float] = Field(
        default_factory=dict, description="chance that at least one of k runs passes, by k "
        "(the unbiased estimator of Chen et al. 2021)"
    )
    samples: list[SampleRecord]
    checks: list[CheckStat] = Field(default_factory=list)
    failure_groups: list[FailureGroup] = Field(default_factory=list)
    fault_plan: str | None = Field(None, description="the faults injected, as "
                                   "--llm-faults reads them, with the plan's seed")
    faults: list[FaultStat] = Field(default_factory=list, description="pass counts per "
                                    "injected fault kind and of the clean samples")
    warnings: list[str] = Field(default_factory=list)

    @property
    def scored(self) -> int:
        return self.passed + self.failed

    @property
    def planned(self) -> int:
        return self.settings.runs

    @property
    def uncounted(self) -> int:
        """Samples that ran but that the verdict does not count (see SampleRecord.counted)."""
        return self.run - self.passed - self.failed - self.errors

    @property
    def min_pass_rate(self) -> float:
        return self.settings.min_pass_rate

    @property
    def confidence(self) -> float:
        return self.settings.confidence


class CacheStats(_Record):
    """How the session's record/replay cache served its calls."""

    mode: Literal["read", "write", "rw"]
    path: str
    hits: int = Field(description="calls answered from the cache")
    misses: int = Field(description="calls that found no recorded answer (read and rw)")
    recorded_models: list[str] = Field(
        default_factory=list, description="models the cache holds answers of")


class SessionRecord(_Record):
    schema_version: int = SCHEMA_VERSION
    llmcheck_version: str
    started: datetime
    finished: datetime | None = None
    duration: float | None = None
    seed: int
    interrupted: bool = False
    exit_status: int | None = None
    options: dict[str, object] = Field(default_factory=dict)
    model: str | None = Field(None, description="the default model, or the simulator")
    simulated: bool = False
    local_model: LocalModelRecord | None = Field(
        None, description="the local GGUF model llmcheck served for this session, if any")
    usage: UsageTotals = Field(default_factory=UsageTotals)
    budget: str | None = Field(None, description="why the budget stopped the run, if it did")
    cache: CacheStats | None = Field(None, description="replay hits and misses, when a "
                                     "cache was used")
    recovered_from: str | None = Field(
        None, description="set on a report rebuilt from the journal of a run that was killed")
    false_fail_chance: float | None = Field(
        None, description="the chance that this session fails at least one of its LLM tests "
        "when every one truly passes at its required rate + margin (exact, per the tests' "
        "own settings): how often a good change is blocked by bad luck")
    merged_from: list[str] = Field(
        default_factory=list, description="the reports this one joins (llmcheck merge)")
    shard: str | None = Field(None, description="i/n: the share of the LLM tests this "
                              "session ran (--llm-shard)")
    tests: list[TestRecord] = Field(default_factory=list)
    aggregates: list[Aggregate] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def to_frame(self) -> Any:
        """A pandas DataFrame with one row per sample (pandas is imported only here):
        the test's node id, verdict and required rate beside the sample's index, seed,
        outcome, ``counted``, duration, message, and its calls' totals (calls, tokens,
        cost, latency, retries, cached)."""
        import pandas as pd

        columns = ["nodeid", "verdict", "min_pass_rate", "index", "seed", "outcome",
                   "counted", "duration", "message", "error_type", "calls",
                   "prompt_tokens", "completion_tokens", "cost", "latency", "retries",
                   "cached"]
        rows = []
        for test in self.tests:
            for s in test.samples:
                calls = s.calls
                rows.append((
                    test.nodeid, test.verdict.outcome, test.min_pass_rate, s.index, s.seed,
                    s.outcome, s.counted, s.duration, s.message, s.error_type, len(calls),
                    sum(c.prompt_tokens or 0 for c in calls),
                    sum(c.completion_tokens or 0 for c in calls),
                    None if any(c.cost is None for c in calls) else sum(c.cost or 0.0
                                                                        for c in calls),
                    sum(c.latency for c in calls), sum(c.retries for c in calls),
                    sum(c.cached for c in calls)))
        return pd.DataFrame(rows, columns=columns)

    @classmethod
    def assemble(cls, tests: list[TestRecord], *, seed: int, started: datetime,
                 model: str | None = None, options: dict[str, object] | None = None,
                 warnings: list[str] | None = None, **fields: Any) -> SessionRecord:
        """A session record from plain inputs: usage, budget, the simulated flag and
        the pooled case rates are derived from the tests (scripts, the CLI, the
        plugin and the gate all build sessions here)."""
        usage = UsageTotals()
        for t in tests:
            usage = usage + t.usage
        simulated = any(t.simulated for t in tests)
        if model is None and simulated:
            model = next(t.model for t in tests if t.simulated)
        budget = next((t.verdict.stop_reason for t in tests if t.budget_stopped), None)
        return cls(llmcheck_version=__version__, started=started, seed=seed,
                   options=dict(options or {}), model=model, simulated=simulated,
                   usage=usage, budget=budget, tests=list(tests),
                   aggregates=case_aggregates(tests), warnings=list(warnings or []),
                   false_fail_chance=false_fail_chance([t.settings for t in tests]), **fields)


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
    """Pass counts of the counted samples per injected fault kind (catalogue order),
    then ``none`` for the samples that got no fault; empty when nothing was injected."""
    from llmcheck.injection.catalogue import KINDS

    counted = [s for s in samples if s.counted]
    if not any(s.faults for s in counted):
        return []
    groups: dict[str, list[SampleRecord]] = {}
    for sample in counted:
        kinds = {f.kind for f in sample.faults} or {"none"}
        for kind in kinds:
            groups.setdefault(kind, []).append(sample)
    out = []
    for kind in [*KINDS, "none"]:
        members = groups.get(kind)
        if not members:
            continue
        passed = sum(s.outcome == "passed" for s in members)
        failed = sum(s.outcome == "failed" for s in members)
        errors = len(members) - passed - failed
        out.append(FaultStat(kind=kind, samples=len(members), passed=passed, failed=failed,
                             errors=errors,
                             pass_rate=passed / (passed + failed) if passed + failed else None,
                             interval=settings.interval_of(passed, passed + failed)))
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


def false_fail_chance(settings: list[TestSettings]) -> float | None:
    """P(at least one FAIL) for tests that all truly pass at their required rate +
    margin (:func:`~llmcheck.stats.passing_rate`), from each policy's exact operating
    characteristic (the tests independent)."""
    if not settings:
        return None
    all_pass = 1.0
    for s in settings:
        all_pass *= _pass_chance_when_good(s.verdict, s.min_pass_rate, s.confidence, s.runs,
                                           s.margin, s.alpha, s.beta)
    return 1.0 - all_pass


@functools.lru_cache(maxsize=256)
def _pass_chance_when_good(verdict: str, min_pass_rate: float, confidence: float, runs: int,
                           margin: float, alpha: float, beta: float) -> float:
    """Exact P(pass) at min_pass_rate + margin: computed once per design, although the
    session record is rebuilt at every save during a run."""
    policy = stats.make_policy(verdict, min_pass_rate=min_pass_rate, confidence=confidence,
                               max_samples=runs, margin=margin, alpha=alpha, beta=beta)
    return policy.operating_characteristic(stats.passing_rate(min_pass_rate, margin))[0]


BOOTSTRAP_RESAMPLES = 2000


def _cases_interval(base: str, members: list[TestRecord]) -> Interval:
    """The pooled rate's interval at the first case's confidence and method, widened
    to a percentile bootstrap over cases: cases differ (some prompts are harder), so
    their samples are not one binomial, and the pooled interval alone is too narrow
    when they do. Seeded by the test's name, so a report is reproducible."""
    import hashlib

    import numpy as np

    settings = members[0].settings
    passes = np.array([t.passed for t in members], dtype=float)
    scored = np.array([t.passed + t.failed for t in members], dtype=float)
    pooled = settings.interval_of(int(passes.sum()), int(scored.sum()))
    if scored.sum() == 0:
        return pooled
    seed = int.from_bytes(hashlib.sha256(base.encode()).digest()[:8], "big")
    picks = np.random.default_rng(seed).integers(0, len(members),
                                                 size=(BOOTSTRAP_RESAMPLES, len(members)))
    totals = scored[picks].sum(axis=1)
    rates = passes[picks].sum(axis=1)[totals > 0] / totals[totals > 0]
    tail = (1 - settings.confidence) / 2 * 100
    low, high = np.percentile(rates, [tail, 100 - tail])
    return Interval(low=min(pooled.low, float(low)), high=max(pooled.high, float(high)),
                    method="cases-bootstrap", confidence=settings.confidence)


def now() -> datetime:
    return datetime.now(timezone.utc)


def save_session(record: SessionRecord, path: str | os.PathLike[str]) -> Path:
    """Serialize ``record`` to ``path`` atomically; return the path."""
    from llmcheck.files import write_atomic

    p = Path(path)
    write_atomic(p, record.model_dump_json(indent=2) + "\n")
    return p


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older report up to :data:`SCHEMA_VERSION` (see its history)."""
    if data.get("schema_version") == 1:
        # v1 -> v2 only added lists that default to empty.
        data = {**data, "schema_version": 2}
    if data.get("schema_version") == 2:
        tests = data.get("tests")
        if isinstance(tests, list):
            tests = [_test_v2_to_v3(t) if isinstance(t, dict) else t for t in tests]
        warnings = list(data.get("warnings") or [])
        warnings.append("read from a schema version 2 report, which did not record margin, "
                        "alpha, beta or early stopping: the defaults are shown")
        data = {**data, "schema_version": 3, "tests": tests, "warnings": warnings}
    if data.get("schema_version") == 3:
        # v3 -> v4 only added ``estimate`` (None) and the ``stopping-exact`` method.
        data = {**data, "schema_version": 4}
    if data.get("schema_version") == 4:
        # v4 -> v5 only added fields that default to None or empty.
        data = {**data, "schema_version": 5}
    if data.get("schema_version") == 5:
        # v5 -> v6 only added fields that default to None or empty.
        data = {**data, "schema_version": 6}
    if data.get("schema_version") == 6:
        # v6 -> v7 only added ``calls[].params`` (empty) and ``session.local_model`` (None).
        data = {**data, "schema_version": 7}
    return data


def _test_v2_to_v3(test: dict[str, Any]) -> dict[str, Any]:
    """A v2 test record with its scattered settings gathered into ``settings``."""
    from llmcheck.config.settings import SETTINGS

    test = dict(test)
    verdict = dict(test.get("verdict") or {})
    interval = test.get("interval") or {}
    test["settings"] = {
        "runs": test.pop("planned", None),
        "verdict": verdict.pop("policy", None),
        "min_pass_rate": test.pop("min_pass_rate", None),
        "confidence": test.pop("confidence", None),
        "margin": SETTINGS["margin"].default,
        "alpha": SETTINGS["alpha"].default,
        "beta": SETTINGS["beta"].default,
        "interval": interval.get("method", SETTINGS["interval"].default),
        "early_stop": SETTINGS["early_stop"].default,
        "concurrency": test.pop("concurrency", None),
    }
    test["verdict"] = verdict
    return test


def load_report(path: str | os.PathLike[str]) -> SessionRecord:
    """A saved report's records (the same as :func:`load_session`); ``.to_frame()``
    gives its samples as a pandas DataFrame."""
    return load_session(path)


def load_session(path: str | os.PathLike[str]) -> SessionRecord:
    """Read a JSON report back, with a clear one-line :class:`ReportError` if it is
    missing, unreadable, not UTF-8, not JSON, nested too deeply, foreign, of an unknown
    schema version or not of the llmcheck schema."""
    p = Path(path)
    data = _report_json(p)
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ReportError(f"{p} is not an llmcheck report (no schema_version)")
    version = data["schema_version"]
    if type(version) is not int or not 1 <= version <= SCHEMA_VERSION:
        raise ReportError(
            f"report {p} has schema_version {_clipped_repr(version)}; this llmcheck reads "
            f"version {SCHEMA_VERSION} (and migrates 1 to 4)")
    if version < SCHEMA_VERSION:
        _check_migratable(data, p)
    data = _migrate(data)
    if data["schema_version"] != SCHEMA_VERSION:
        raise ReportError(f"report {p} has schema_version {version}, which this llmcheck "
                          f"cannot migrate to version {SCHEMA_VERSION}")
    try:
        return SessionRecord.model_validate(data)
    except ValidationError as exc:
        raise ReportError(_schema_problem(p, exc)) from None
    except RecursionError:  # a validator walking a value that json.loads could still read
        raise ReportError(f"report {p} is nested too deeply to be an llmcheck report") from None


def _report_json(p: Path) -> Any:
    """The JSON value of the report file ``p``; a ReportError for a file that cannot be
    read, is not UTF-8 text, or is not JSON."""
    from llmcheck.files import NotUTF8, read_utf8

    try:
        text = read_utf8(p)
    except OSError as exc:
        raise ReportError(f"cannot read report {p}: {exc.strerror or exc}") from exc
    except NotUTF8 as exc:
        why = ("it is UTF-16; save it as UTF-8" if exc.utf16 else
               f"byte 0x{exc.byte:02x} on line {exc.line}")
        raise ReportError(f"report {p} is not UTF-8 text ({why}); llmcheck writes its "
                          "reports as UTF-8 JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"report {p} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ReportError(f"report {p} is nested too deeply to be an llmcheck report") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ReportError(f"report {p} is not valid JSON: {exc}") from None


def _check_migratable(data: dict[str, Any], p: Path) -> None:
    """A ReportError unless the fields :func:`_migrate` reshapes have the types it reads:
    ``warnings`` a list, each test's ``verdict`` and ``interval`` objects."""
    problems = []
    if not isinstance(data.get("warnings") or [], list):
        problems.append(f"warnings: expected a list, got {type(data['warnings']).__name__}")
    tests = data.get("tests")
    for i, test in enumerate(tests if isinstance(tests, list) else []):
        for key in ("verdict", "interval"):
            value = test.get(key) if isinstance(test, dict) else None
            if value and not isinstance(value, dict):
                problems.append(f"tests[{i}].{key}: expected an object, got "
                                f"{type(value).__name__}")
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ReportError(f"report {p} does not match the llmcheck schema version "
                          f"{data['schema_version']}: {problems[0]}{more}")


def _schema_problem(p: Path, exc: ValidationError) -> str:
    """One line: the report, the first field that does not match and how many more."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"])
    got = f" (got {_clipped_repr(first['input'])})" if "input" in first else ""
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return (f"report {p} does not match the llmcheck schema: {loc.lstrip('.') or 'top level'}: "
            f"{first['msg']}{got}{more}")


def _clipped_repr(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except RecursionError:
        return "(a value nested too deeply to show)"
    return text if len(text) <= limit else text[:limit - 3] + "..."
