"""The numbers a record read back from a file may hold, and how they must agree.

A report, a merged report or a recovered one is read by ``llmcheck show``, ``report``,
``compare``, ``merge``, ``history`` and ``baseline save``; a hand-edited or corrupt one
must be refused there with one line naming the field, not crash a renderer
(an infinite duration) or a statistical test (counts of 10^30), or be believed
(``-8/40 ... PASS``). :func:`problem` is called for every record validated with
:data:`llmcheck.records.base.LOADED`: every number finite, counts whole and >= 0, rates
in [0, 1], amounts (seconds, dollars) >= 0, and each record's counts consistent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmcheck.config.settings import MAX_RUNS

MAX_INT = 2**63 - 1
"""The largest whole number a record holds (a 64-bit count)."""
SLACK = 1e-9
"""Rounding allowed where two floats are compared (an interval's bounds)."""


@dataclass(frozen=True)
class Bounds:
    """The fields of one record type by kind (a list or a mapping: each of its items)."""

    counts: tuple[str, ...] = ()
    rates: tuple[str, ...] = ()
    amounts: tuple[str, ...] = ()
    agree: Callable[[Any], str | None] | None = None
    """What the record's numbers must satisfy together: the problem, or None."""


def _interval(r: Any) -> str | None:
    # a rate's interval lies in [0, 1]; a latency quantile's (order-statistics) is seconds
    kind = "amounts" if r.method == "order-statistics" else "rates"
    for name in ("low", "high"):
        found = _number_problem(name, getattr(r, name), kind)
        if found is not None:
            return found
    if r.low > r.high + SLACK:
        return f"low: {r.low:g} is above high ({r.high:g}); an interval's bounds are ordered"
    return None


def _parts(total: str, *names: str) -> Callable[[Any], str | None]:
    """The fields ``names`` add up to at most the field ``total``."""
    def agree(r: Any) -> str | None:
        parts = sum(getattr(r, n) for n in names)
        if parts > getattr(r, total):
            return (f"{' + '.join(names)}: {parts} is more than {total} "
                    f"({getattr(r, total)}); the parts of a count never exceed it")
        return None
    return agree


def _settings(r: Any) -> str | None:
    if r.runs > MAX_RUNS:
        return f"runs: {r.runs} is more than {MAX_RUNS}, the most samples a test may plan"
    return None


def _test(r: Any) -> str | None:
    if r.run > r.settings.runs:
        return (f"run: {r.run} is more than planned ({r.settings.runs}); a test runs at most "
                "the samples it plans")
    scored = r.passed + r.failed + r.errors
    if scored > r.run:
        return (f"passed + failed + errors: {scored} is more than run ({r.run}); only "
                "samples that ran are counted")
    for i, sample in enumerate(r.samples):
        if sample.index >= r.settings.runs:
            return (f"samples[{i}].index: {sample.index} is beyond the {r.settings.runs} "
                    "planned samples (indexes start at 0)")
    return None


def _session(r: Any) -> str | None:
    seen: dict[str, int] = {}
    for i, test in enumerate(r.tests):
        if test.nodeid in seen:
            return (f"tests[{i}].nodeid: {test.nodeid!r} is listed twice (also "
                    f"tests[{seen[test.nodeid]}]); a report holds each test once")
        seen[test.nodeid] = i
    return None


BOUNDS: dict[str, Bounds] = {
    "CallRecord": Bounds(counts=("prompt_tokens", "completion_tokens", "retries"),
                         amounts=("latency", "cost", "time_to_first_token")),
    "LocalModelRecord": Bounds(counts=("size", "context", "threads")),
    "FaultRecord": Bounds(counts=("call",)),
    "SampleRecord": Bounds(counts=("index",), amounts=("duration",)),
    "Interval": Bounds(rates=("confidence",), agree=_interval),
    "LatencyStat": Bounds(counts=("samples", "samples_to_conclusive"), rates=("quantile",),
                          amounts=("limit", "estimate")),
    "FailureGroup": Bounds(counts=("count", "samples")),
    "UsageTotals": Bounds(counts=("calls", "cached_calls", "failed_calls", "retries",
                                  "prompt_tokens", "completion_tokens", "unpriced_calls",
                                  "user_calls", "judge_calls"),
                          amounts=("cost",)),
    "CheckStat": Bounds(counts=("evaluated", "passed", "failed", "failed_samples"),
                        rates=("pass_rate",), agree=_parts("evaluated", "passed", "failed")),
    "FaultStat": Bounds(counts=("samples", "passed", "failed", "errors", "recovered"),
                        rates=("pass_rate",),
                        agree=_parts("samples", "passed", "failed", "errors")),
    "Aggregate": Bounds(counts=("cases", "passed", "failed", "errors", "cases_passed",
                                "cases_failed"), rates=("pass_rate",),
                        agree=_parts("cases", "cases_passed", "cases_failed")),
    "Verdict": Bounds(counts=("samples_to_conclusive", "decided_after")),
    "KStat": Bounds(counts=("k",), rates=("pass_hat_k", "pass_at_k")),
    "TestSettings": Bounds(counts=("runs", "concurrency", "max_tokens"),
                           rates=("min_pass_rate", "confidence", "margin", "alpha", "beta"),
                           amounts=("temperature",), agree=_settings),
    "TestRecord": Bounds(counts=("run", "passed", "failed", "errors"),
                         rates=("pass_rate", "worst_case_rate", "estimate", "pass_hat_k",
                                "pass_at_k"),
                         amounts=("duration",), agree=_test),
    "CacheStats": Bounds(counts=("hits", "misses")),
    "SessionRecord": Bounds(rates=("false_fail_chance",), amounts=("duration",),
                            agree=_session),
}
"""Each record type's numbers (by class name: the records import this module lazily)."""


def _items(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list) else [value]


def _number_problem(name: str, value: Any, kind: str) -> str | None:
    """What is wrong with one number of a field of ``kind`` (counts, rates, amounts)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name}: {value} is not a finite number; every number in a report is finite"
    if isinstance(value, int) and abs(value) > MAX_INT:
        return f"{name}: {value:.3g} is out of range; whole numbers lie within +-(2^63 - 1)"
    if kind == "counts" and value < 0:
        return f"{name}: {value} is negative; counts are >= 0"
    if kind == "rates" and not 0.0 <= value <= 1.0:
        return f"{name}: {value:g} is outside [0, 1]; rates and probabilities lie in [0, 1]"
    if kind == "amounts" and value < 0:
        return f"{name}: {value:g} is negative; durations and costs are >= 0"
    return None


def problem(record: Any) -> str | None:
    """The first number of ``record`` (itself, not the records it holds: each is checked
    on its own) that no run produces, as ``field: what is wrong; what is accepted``."""
    bounds = BOUNDS.get(type(record).__name__, Bounds())
    kinds = {**dict.fromkeys(bounds.amounts, "amounts"), **dict.fromkeys(bounds.rates, "rates"),
             **dict.fromkeys(bounds.counts, "counts")}
    for name in type(record).model_fields:
        value = getattr(record, name)
        if isinstance(value, (list, dict)) and not value:
            continue
        for item in _items(value):
            found = _number_problem(name, item, kinds.get(name, "any"))
            if found is not None:
                return found
    return bounds.agree(record) if bounds.agree is not None else None
