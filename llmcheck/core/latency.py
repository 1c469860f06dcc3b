"""A test's latency requirements judged on its samples, and the verdict they join.

Each requirement (``TestSettings.latency``: the q-quantile of a per-sample duration at
most a limit) gets a :class:`~llmcheck.records.schema.LatencyStat` from
:func:`llmcheck.stats.quantile_verdict`: the sample quantile, its exact order-statistic
interval and a verdict with the pass-rate verdict's meaning of "conclusive".

**Which samples.** Every sample that ran (not the ones the budget refused), in index
order, up to the test's N: a test with latency requirements runs all N of its samples
(:func:`runs_all`), also when its pass-rate verdict is settled sooner. Durations may
depend on outcomes (failures are often slower), and the pass-rate rule stops on
outcomes, so judging the quantile on the samples up to that stop would judge a sample
chosen by the data; all N samples are a fixed-n sample of the duration, for which the
order-statistic verdict and interval are exact (``benchmarks/latency_coverage.py``
measures both through the runner). A sample that did not record the duration (it
errored before its first token, say) is not counted for that requirement, and the
reason says how many.

**The test's verdict** (:func:`combine`) fails if the pass-rate verdict or any latency
verdict fails, is an error if one of them is (and none failed), is conclusive only if
every part is, and its reason names the parts that failed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from llmcheck import stats
from llmcheck.config.latency import describe, percentile, seconds
from llmcheck.config.names import did_you_mean
from llmcheck.core.spec import Tally
from llmcheck.records.schema import (
    Interval,
    LatencyRequirement,
    LatencyStat,
    SampleRecord,
    TestSettings,
    Verdict,
)

ADVICE = {
    "ttft": "stream the call (stream=True), or record it with "
            "llmcheck.record_duration('ttft', seconds)",
    "episode": "run the sample as an episode (a tool loop or a conversation), or record it "
               "with llmcheck.record_duration('episode', seconds)",
}
"""How a sample gets a built-in duration it lacks ("total" it always has)."""


def record_duration(name: str, seconds: float) -> None:
    """Record the duration ``name`` (in seconds) of the running sample, for a latency
    requirement on it (``@llmcheck.repeat(latency="p95 lookup <= 200ms")``); a second
    call with the same name replaces the first. Outside a sample it is a UsageError:
    there is no sample to record it in."""
    from llmcheck.config.latency import METRIC
    from llmcheck.core.context import current_sample
    from llmcheck.errors import UsageError

    if not isinstance(name, str) or not METRIC.fullmatch(name):
        raise UsageError(f"record_duration: name must be a word such as 'ttft' or "
                         f"'db_lookup' (letters, digits, _ . -), got {name!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not math.isfinite(seconds) or seconds < 0:
        raise UsageError(f"record_duration({name!r}, ...): seconds must be a finite number "
                         f">= 0, got {seconds!r}")
    sample = current_sample()
    if sample is None:
        raise UsageError(f"record_duration({name!r}, ...) was called outside a sample: call "
                         "it in the body of an LLM test (@llmcheck.repeat)")
    sample.record_duration(name, seconds)


def runs_all(settings: TestSettings) -> bool:
    """Whether the test runs all its N samples whatever its pass-rate verdict: it has
    latency requirements (see the module's docstring)."""
    return bool(settings.latency)


def latency_stats(settings: TestSettings, samples: Sequence[SampleRecord]) -> list[LatencyStat]:
    """One LatencyStat per requirement of ``settings``, judged on the samples that ran."""
    ran = [s for s in samples if not s.budget_refused]
    recorded = {name for s in ran for name in s.durations}
    return [_judge(settings, r, ran, recorded) for r in settings.latency]


def _judge(settings: TestSettings, r: LatencyRequirement, ran: list[SampleRecord],
           recorded: set[str]) -> LatencyStat:
    values = [s.durations[r.metric] for s in ran if r.metric in s.durations]
    base: dict[str, Any] = {"metric": r.metric, "quantile": r.quantile, "limit": r.limit,
                            "samples": len(values)}
    if not values:
        advice = ADVICE.get(r.metric) or (f"record it with llmcheck.record_duration("
                                          f"{r.metric!r}, seconds)")
        what = f"no sample recorded {r.metric}" if ran else "no sample ran"
        return LatencyStat(**base, outcome="error", conclusive=False, reason=(
            f"{what}{did_you_mean(r.metric, recorded) if ran else ''}: {advice}"))
    alpha, beta, only = stats.latency_errors(settings.alpha, settings.beta,
                                             settings.session_share)
    v = stats.quantile_verdict(values, r.quantile, r.limit, alpha=alpha, beta=beta,
                               confidence=settings.confidence, fail_only_conclusive=only)
    interval = None if v.high is None else Interval(
        low=v.low or 0.0, high=v.high, method="order-statistics",
        confidence=settings.confidence)
    return LatencyStat(**base, estimate=v.estimate, interval=interval,
                       outcome="passed" if v.passed else "failed", conclusive=v.conclusive,
                       reason=_reason(settings, r, v, only, alpha, beta, len(ran)),
                       samples_to_conclusive=v.samples_to_conclusive)


def _reason(settings: TestSettings, r: LatencyRequirement, v: stats.QuantileVerdict,
            only: bool, alpha: float, beta: float, ran: int) -> str:
    q, limit = percentile(r.quantile), seconds(r.limit)
    counts = f"{v.at_or_under} of {v.n} samples at or under {limit}"
    if v.conclusive and v.passed:
        text = (f"{counts}, at least the {v.needed_to_pass} that put the {1 - alpha:.0%} "
                f"upper bound of the {q} at or under the limit")
    elif v.conclusive:
        text = (f"{counts}, fewer than the {v.fewest_to_not_fail} that keep the "
                f"{1 - beta:.3g} lower bound of the {q} at or under the limit")
    else:
        side = "at or under" if v.estimate is not None and v.estimate <= r.limit else "above"
        pass_needs = (f"a conclusive pass needs {v.needed_to_pass}" if v.needed_to_pass <= v.n
                      else f"{v.n} samples cannot prove it")
        text = (f"the sample {q} is {side} the limit, not settled: {counts} ({pass_needs}, "
                f"a conclusive fail fewer than {v.fewest_to_not_fail})")
        if only and v.estimate is not None and v.estimate > r.limit:
            text += ("; under --llm-session-alpha only a conclusive fail fails a latency "
                     "requirement")
    if v.high is None:
        tail = (1 - settings.confidence) / 2
        needs = math.ceil(math.log(tail) / math.log(r.quantile))
        text += (f"; too few samples for the upper end of a {settings.confidence:.0%} "
                 f"interval of the {q} (it needs {needs})")
    if ran > v.n:
        text += (f"; {ran - v.n} sample(s) without {r.metric} not counted (they recorded "
                 "none, e.g. an error before the first token)")
    return text


def combine(verdict: Verdict, latency: list[LatencyStat]) -> Verdict:
    """The test's verdict: the pass-rate verdict joined with its latency verdicts."""
    if not latency or verdict.outcome == "interrupted":
        return verdict
    named = [(describe(s.metric, s.quantile, s.limit), s) for s in latency]
    failed = [name for name, s in named if s.outcome == "failed"]
    if verdict.outcome == "failed":
        failed.insert(0, "the pass rate")
    outcome = verdict.outcome
    if failed:
        outcome = "failed"
    elif any(s.outcome == "error" for s in latency):
        outcome = "error"
    conclusive = verdict.conclusive and all(s.conclusive for s in latency)
    parts = "; ".join(f"{name}: {_word(s)} ({s.reason})" for name, s in named)
    reason = f"{verdict.reason}; {parts}"
    if failed:
        reason = f"failed on {', '.join(failed)}. Pass rate: {reason}"
    elif outcome == "error" and verdict.outcome != "error":
        reason = f"no verdict on a latency requirement. Pass rate: {reason}"
    more = [n for n in (verdict.samples_to_conclusive,
                        *(s.samples_to_conclusive for s in latency if not s.conclusive))
            if n is not None]
    return verdict.model_copy(update={
        "outcome": outcome, "conclusive": conclusive, "reason": reason,
        "samples_to_conclusive": max(more) if more and not conclusive and outcome != "error"
        else None})


def _word(stat: LatencyStat) -> str:
    word = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}[stat.outcome]
    return word if stat.conclusive or stat.outcome == "error" else f"{word} (inconclusive)"


def stop_reason(t: Tally, runs: int, *, interrupted: bool, budget_reason: str | None,
                stopped_early: bool, runs_all: bool) -> str | None:
    """Why the run ended where it did, or None when it simply ran its N samples."""
    if interrupted:
        return f"interrupted after {t.finished} of {runs} samples"
    if budget_reason is not None and t.decision is None:
        return f"budget spent after {t.finished} of {runs} samples: {budget_reason}"
    if stopped_early and t.decision is not None:
        started = t.finished + len(t.refused)  # every sample launched has finished
        running = (f"the latency requirements ran all {runs}" if runs_all else
                   f"all {runs} were already running" if started >= runs else
                   f"{runs - started} never started" if started == t.counted else
                   f"{started - t.counted} more had started, {runs - started} never did")
        return (f"decided at sample {t.decided_after} of {runs} ({running}): "
                f"{t.decision.reason}")
    return None
