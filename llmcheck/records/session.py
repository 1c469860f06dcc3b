"""The session record, a report's root: its tests, and what is derived from them
when it is assembled (usage, budget, the pooled case rates, the false-fail chance).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field

from llmcheck import stats
from llmcheck.records.derived import case_aggregates
from llmcheck.records.models import (
    SCHEMA_VERSION,
    Aggregate,
    LocalModelRecord,
    TestRecord,
    UsageTotals,
    _Record,
)
from llmcheck.version import __version__


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
                   false_fail_chance=stats.false_fail_chance([t.settings for t in tests]), **fields)


def now() -> datetime:
    return datetime.now(timezone.utc)
