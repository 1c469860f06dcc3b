"""The data model of results: samples, tests and sessions as pydantic records.

The JSON report is the serialization of a :class:`SessionRecord`; every other
view (terminal table, markdown, HTML, the gate) is rendered from that JSON,
never from live objects, so any report can be re-rendered later. Per-test
records travel between xdist workers and the controller as JSON too. The session
record is in :mod:`llmcheck.records.session`, statistics derived from samples in
:mod:`llmcheck.records.derived`, reading and writing reports in
:mod:`llmcheck.records.io`; :mod:`llmcheck.records.schema` exports them all.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from llmcheck import stats
from llmcheck.config.names import IntervalMethod, PolicyName
from llmcheck.records.base import _Record
from llmcheck.records.calls import (  # noqa: F401 - re-exported: the records of one run
    SAMPLING_PARAMS,
    CallRecord,
    EpisodeRecord,
    ExchangeRecord,
    FaultRecord,
    LocalModelRecord,
    MessageRecord,
    sampling_params,
)

SCHEMA_VERSION = 10
"""Bumped on every change of the JSON report's shape.

Version history (and how :func:`llmcheck.records.io.load_session` migrates older
reports):
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
  8 - one call path and fault blame: ``samples[].faults[].recovered`` (a later request
      of the sample got a usable answer, so the sample is judged as a clean one),
      ``tests[].faults[].recovered`` (samples that recovered from each kind) and
      ``samples[].budget_refused`` (the session's budget refused one of the sample's
      requests: recorded, never counted). A version-7 report is read with none of
      them: every fault as not recovered, as version 7 judged them.
  9 - what a failing sample saw: ``samples[].exchanges`` (for a failed or errored sample,
      the messages sent and the answer of its last model calls, redacted and cut to
      ``--llm-keep-io`` characters a field; passing samples keep none). A version-8
      report is read with none of them.
  10 - episodes, latency and reliability: ``samples[].episode`` (what a tool loop or a
      conversation did: steps, tools, why it stopped), ``samples[].durations`` (named
      per-sample durations: total, ttft, episode, ...), ``checks[].step`` (the step or
      turn a path check failed at), ``calls[].role`` (app, user, judge), streamed calls'
      ``calls[].chunks`` and ``calls[].max_gap``, ``settings.latency`` (latency
      requirements), ``tests[].latency`` (quantiles with exact intervals and their
      verdicts), ``tests[].reliability`` (pass^k and pass@k with intervals) and
      ``tests[].step_failures`` (failing episodes grouped by the first step whose check
      failed). A version-9 report is read with none of them.
      A version-2 report is read with its settings
      rebuilt from those fields; margin, alpha and beta, which it did not record,
      are taken as the defaults and ``design`` is empty.
"""

Outcome = Literal["passed", "failed", "error"]
VerdictOutcome = Literal["passed", "failed", "error", "interrupted"]
"""``error``: most samples could not reach the model, or none could run (budget);
``interrupted``: stopped before any sample finished. Neither is a verdict."""


class CheckResult(_Record):
    """One check (``llmcheck.assert_*``) evaluated in a sample."""

    name: str = Field(description="the check with its key arguments, e.g. 'max_words(50)'")
    passed: bool
    message: str | None = Field(None, description="why it failed (None when it passed)")
    value: float | int | str | bool | None = Field(
        None, description="what was measured: a similarity score, a word count, ..."
    )
    step: str | None = Field(None, description="path checks over an episode: the step or "
                             "turn the check failed at ('step 2: cancel_order', 'turn 3')")


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
    budget_refused: bool = Field(False, description="the session's budget refused one of "
                                 "its requests (not sent): the sample is no evidence and is "
                                 "never counted; the test is budget-stopped")
    exchanges: list[ExchangeRecord] = Field(
        default_factory=list, description="failed and errored samples only: the prompt "
        "and answer of the sample's last model calls (see --llm-keep-io); empty for a "
        "passing sample, so the report does not grow with every answer")
    episode: EpisodeRecord | None = Field(None, description="the sample's episode (a tool "
                                          "loop or a conversation), if it ran one")
    durations: dict[str, float] = Field(
        default_factory=dict, description="named durations of the sample in seconds "
        "(total, ttft, episode, or a test's own): what latency requirements judge")


class Interval(_Record):
    low: float
    high: float
    method: IntervalMethod | Literal["cases-bootstrap", "cases-simultaneous",
                                     "stopping-exact", "order-statistics"] = "wilson"
    """``cases-bootstrap`` (pooled case rates only): the union of the pooled interval and
    a percentile bootstrap over cases, so that differences between cases widen it.
    ``cases-simultaneous`` (pooled pass^k and pass@k only): the mean of the cases' bounds,
    each case's interval taken at the Šidák level that makes them hold all at once.
    ``stopping-exact``: the exact interval under the early-stopping rule (sample-mean
    ordering), used whenever a test may stop early (see :mod:`llmcheck.stats.stopping`).
    ``order-statistics`` (a latency quantile, in seconds): the exact distribution-free
    interval [X_(l), X_(u)] (see :mod:`llmcheck.stats.quantiles`)."""
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
    user_calls: int = Field(0, description="of the calls, those of a simulated user")
    judge_calls: int = Field(0, description="of the calls, those of a judge")

    @classmethod
    def of_calls(cls, calls: list[CallRecord]) -> UsageTotals:
        u = cls()
        for c in calls:
            u.calls += 1
            u.user_calls += c.role == "user"
            u.judge_calls += c.role == "judge"
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
            user_calls=self.user_calls + other.user_calls,
            judge_calls=self.judge_calls + other.judge_calls,
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
    """How a test fared in the samples that got one fault kind and did not recover from
    it (``none``: the samples with no fault left unrecovered, judged as clean). A sample
    with two kinds counts under both."""

    kind: str
    samples: int
    passed: int
    failed: int
    errors: int
    pass_rate: float | None
    interval: Interval
    recovered: int = Field(0, description="samples that got this kind and recovered (a "
                           "later request got a usable answer): counted under 'none'")


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
    reliability: list[KStat] = Field(default_factory=list, description="pass^k and pass@k "
                                     "as means over the cases (tau-bench), with intervals")


class LatencyRequirement(_Record):
    """``quantile`` of the per-sample duration ``metric`` must be at most ``limit`` s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(description="the duration judged: total, ttft, episode, or a "
                        "name the test records itself")
    quantile: float = Field(gt=0, lt=1, description="e.g. 0.95 for p95")
    limit: float = Field(gt=0, description="seconds")


class LatencyStat(_Record):
    """A latency requirement's quantile, its exact distribution-free interval (order
    statistics) and its verdict."""

    metric: str
    quantile: float
    limit: float
    samples: int = Field(description="samples that recorded the duration")
    estimate: float | None = Field(None, description="the sample quantile, seconds")
    interval: Interval | None = Field(None, description="exact order-statistic interval "
                                      "for the quantile (None: too few samples)")
    outcome: Literal["passed", "failed", "error"]
    conclusive: bool
    reason: str
    samples_to_conclusive: int | None = None


class KStat(_Record):
    """pass^k (all of k runs pass) and pass@k (at least one does), with intervals."""

    k: int
    pass_hat_k: float | None
    pass_hat_k_interval: Interval | None = None
    pass_at_k: float | None
    pass_at_k_interval: Interval | None = None


class StepFailureGroup(_Record):
    """Failing episodes grouped by the first step whose check failed."""

    step: str = Field(description="e.g. 'step 2: cancel_order', 'turn 3', or 'final' "
                      "(only the final answer's or state's check failed)")
    check: str = Field(description="the first failing check")
    count: int
    samples: list[int]


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
    latency: list[LatencyRequirement] = Field(
        default_factory=list, description="latency requirements: each a quantile of a "
        "per-sample duration that must be at most a limit (a hypothesis of its own)")
    session_share: float | None = Field(
        None, description="--llm-session-alpha's share for each hypothesis (the tests and "
        "their latency requirements): a latency requirement then fails only conclusively, "
        "at this error (None: no session alpha)")
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
    latency: list[LatencyStat] = Field(default_factory=list, description="the latency "
                                       "requirements' quantiles and verdicts")
    reliability: list[KStat] = Field(default_factory=list, description="pass^k and pass@k "
                                     "with intervals, by k")
    step_failures: list[StepFailureGroup] = Field(
        default_factory=list, description="failing episodes grouped by the first step "
        "whose check failed")
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
