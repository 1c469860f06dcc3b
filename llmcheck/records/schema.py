"""The records of a run in one place: every name a report's reader or writer needs.

The records live in modules named for what they own, and this module re-exports
their public names, so ``from llmcheck.records.schema import SessionRecord,
load_session`` works wherever it did before the split:

- :mod:`llmcheck.records.models`: the pydantic models of samples and tests, and the
  report's ``SCHEMA_VERSION`` with the history of its shape;
- :mod:`llmcheck.records.session`: the session record and how it is assembled;
- :mod:`llmcheck.records.derived`: statistics derived from samples (failure groups,
  per-check and per-fault counts, the pooled rates of a test's cases);
- :mod:`llmcheck.records.io`: save, load and migrate reports;
- :mod:`llmcheck.records.resolve`: a test's settings, resolved once.
"""

from __future__ import annotations

from llmcheck.records.derived import case_aggregates, check_stats, fault_stats, group_failures
from llmcheck.records.io import _report_json, load_report, load_session, save_session
from llmcheck.records.models import (
    SAMPLING_PARAMS,
    SCHEMA_VERSION,
    Aggregate,
    CallRecord,
    CheckResult,
    CheckStat,
    EpisodeRecord,
    ExchangeRecord,
    FailureGroup,
    FaultRecord,
    FaultStat,
    Interval,
    KStat,
    LatencyRequirement,
    LatencyStat,
    LocalModelRecord,
    MessageRecord,
    Outcome,
    SampleRecord,
    StepFailureGroup,
    TestRecord,
    TestSettings,
    UsageTotals,
    Verdict,
    VerdictOutcome,
    sampling_params,
)
from llmcheck.records.session import CacheStats, SessionRecord, now
from llmcheck.stats.design import false_fail_chance

__all__ = [
    "SAMPLING_PARAMS", "SCHEMA_VERSION", "Aggregate", "CacheStats", "CallRecord",
    "CheckResult", "CheckStat", "EpisodeRecord", "ExchangeRecord", "FailureGroup",
    "FaultRecord", "FaultStat", "Interval", "KStat", "LatencyRequirement", "LatencyStat",
    "LocalModelRecord", "MessageRecord", "Outcome", "SampleRecord", "SessionRecord",
    "StepFailureGroup", "TestRecord", "TestSettings", "UsageTotals", "Verdict",
    "VerdictOutcome", "_report_json", "case_aggregates", "check_stats", "false_fail_chance",
    "fault_stats", "group_failures", "load_report", "load_session", "now",
    "sampling_params", "save_session",
]
