"""Baselines: a test's pass counts accumulated over several runs of the main branch.

A run of 20 samples against another of 20 can only see large drops (the gate
flags a fall from 0.95 to 0.80 about a third of the time: see
:func:`llmcheck.gate.compare.min_detectable_drop`). The base side need not be one run,
though: runs of the same test against the same model are samples of the same
rate, so their counts add up, and a baseline merged from five runs compares 100
base samples with the branch's 20. ``llmcheck baseline save`` promotes a report
to the baseline, ``llmcheck baseline update`` merges a new run into it.

Counts are merged only while a test is the same test: same model and same
fingerprint (the hash of the test's source and parameters; a side that does not
know it matches any) and the same required rate. Otherwise the test's entry is
replaced by the new run's, and the update says so. Tests of the baseline the run
did not have are kept (a subset or a shard of the suite updates its own tests).

The file is JSON with its own ``baseline_version``, validated on read; it holds
node ids, models, fingerprints, counts and dates, never a sample, a prompt or an
output, and every string passes :func:`llmcheck.redact.scrub` as report records do.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from llmcheck.config.settings import MAX_RUNS
from llmcheck.errors import ReportError, UsageError
from llmcheck.gate.compare import Counts, counts_of_session
from llmcheck.records.io import json_file
from llmcheck.redact import scrub

BASELINE_VERSION = 1
"""Bumped on every change of the baseline file's shape."""
DEFAULT_BASELINE = ".llmcheck/baseline.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_secrets(cls, value: Any) -> Any:
        return scrub(value)


class BaselineRun(_Strict):
    """One run merged into a test's baseline."""

    started: datetime = Field(description="when the run's session started")
    seed: int | None = Field(None, description="the run's session seed")
    passed: int = Field(ge=0, le=MAX_RUNS)
    failed: int = Field(ge=0, le=MAX_RUNS)

    @model_validator(mode="after")
    def _one_run(self) -> BaselineRun:
        if self.passed + self.failed > MAX_RUNS:
            raise ValueError(f"passed + failed is {self.passed + self.failed}, more than "
                             f"{MAX_RUNS}, the most samples a run of a test may plan")
        return self


class BaselineTest(_Strict):
    """One test's accumulated counts."""

    __test__ = False  # not a pytest test class

    nodeid: str = Field(min_length=1)
    fingerprint: str | None = None
    model: str | None = None
    min_pass_rate: float = Field(ge=0, le=1)
    passed: int = Field(ge=0, description="passes summed over the runs merged")
    failed: int = Field(ge=0, description="failures summed over the runs merged")
    runs: int = Field(ge=1, description="runs merged")
    first_run: datetime
    last_run: datetime
    history: list[BaselineRun] = Field(min_length=1, description="the runs merged, oldest "
                                       "first")

    @model_validator(mode="after")
    def _adds_up(self) -> BaselineTest:
        if self.runs != len(self.history):
            raise ValueError(f"runs is {self.runs} but history lists {len(self.history)} "
                             "run(s)")
        passed = sum(r.passed for r in self.history)
        failed = sum(r.failed for r in self.history)
        if (self.passed, self.failed) != (passed, failed):
            raise ValueError(f"passed/failed are {self.passed}/{self.failed} but the history "
                             f"adds up to {passed}/{failed}")
        return self

    def counts(self) -> Counts:
        return Counts(nodeid=self.nodeid, passed=self.passed, failed=self.failed,
                      min_pass_rate=self.min_pass_rate, fingerprint=self.fingerprint,
                      model=self.model, runs=self.runs)

    @classmethod
    def of_runs(cls, first: Counts, history: list[BaselineRun]) -> BaselineTest:
        return cls(nodeid=first.nodeid, fingerprint=first.fingerprint, model=first.model,
                   min_pass_rate=first.min_pass_rate if first.min_pass_rate is not None
                   else 0.0,
                   passed=sum(r.passed for r in history), failed=sum(r.failed for r in history),
                   runs=len(history), first_run=history[0].started,
                   last_run=history[-1].started, history=history)


class Baseline(_Strict):
    baseline_version: int = BASELINE_VERSION
    llmcheck_version: str
    created: datetime
    updated: datetime
    tests: list[BaselineTest] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Baseline:
        seen: set[str] = set()
        for t in self.tests:
            if t.nodeid in seen:
                raise ValueError(f"test {t.nodeid} is listed twice")
            seen.add(t.nodeid)
        return self

    def counts(self) -> list[Counts]:
        return [t.counts() for t in self.tests]


# -- building and merging ---------------------------------------------------------------

def _run_of(session: Any, c: Counts) -> BaselineRun:
    return BaselineRun(started=session.started, seed=session.seed, passed=c.passed,
                       failed=c.failed)


def _usable(session: Any) -> list[Counts]:
    """The report's tests that scored at least one sample (errors only say nothing)."""
    return [c for c in counts_of_session(session) if c.scored > 0]


def baseline_from_session(session: Any) -> Baseline:
    """A new baseline holding one run: the report's."""
    from llmcheck.records.schema import now
    from llmcheck.version import __version__

    stamp = now()
    tests = [BaselineTest.of_runs(c, [_run_of(session, c)]) for c in _usable(session)]
    return Baseline(llmcheck_version=__version__, created=stamp, updated=stamp,
                    tests=tests)


def update_baseline(baseline: Baseline, session: Any,
                    max_runs: int | None = None) -> tuple[Baseline, list[str]]:
    """Merge a report's counts into ``baseline``; return the new baseline and what was
    done, one line per kind of change. ``max_runs`` keeps only the latest runs of each
    test (a moving window: an old run of a model that has since drifted stops counting)."""
    from llmcheck.records.schema import now
    from llmcheck.version import __version__

    if max_runs is not None and max_runs < 1:
        raise UsageError(f"max_runs must be at least 1, got {max_runs}")
    by_id = {t.nodeid: t for t in baseline.tests}
    merged, added, replaced, repeated = [], [], [], []
    seen: set[str] = set()
    for c in _usable(session):
        seen.add(c.nodeid)
        run = _run_of(session, c)
        old = by_id.get(c.nodeid)
        if old is None:
            by_id[c.nodeid] = BaselineTest.of_runs(c, [run])
            added.append(c.nodeid)
            continue
        if any(r.started == run.started and r.seed == run.seed for r in old.history):
            repeated.append(c.nodeid)
            continue
        why = _differs(old, c)
        if why:
            by_id[c.nodeid] = BaselineTest.of_runs(c, [run])
            replaced.append(f"{c.nodeid} ({why})")
            continue
        history = [*old.history, run]
        if max_runs is not None:
            history = history[-max_runs:]
        # what either side knows of the test (an older report has no fingerprint)
        known = replace(c, fingerprint=c.fingerprint or old.fingerprint,
                        model=c.model or old.model)
        by_id[c.nodeid] = BaselineTest.of_runs(known, history)
        merged.append(c.nodeid)
    kept = [t for t in baseline.tests if t.nodeid not in seen]
    lines = []
    if merged:
        lines.append(f"merged {len(merged)} test(s) into their baseline")
    if added:
        lines.append(f"added {len(added)} new test(s): {', '.join(added)}")
    if replaced:
        lines.append(f"replaced {len(replaced)} test(s) whose baseline was of another test "
                     f"or model, so their counts start again from this run: "
                     f"{'; '.join(replaced)}")
    if repeated:
        lines.append(f"skipped {len(repeated)} test(s) already merged from this same run "
                     "(same start time and seed)")
    if kept:
        lines.append(f"kept {len(kept)} test(s) this run did not have, unchanged")
    updated = Baseline(llmcheck_version=__version__, created=baseline.created,
                       updated=now(), tests=list(by_id.values()))
    return updated, lines


def _differs(old: BaselineTest, new: Counts) -> str:
    """Why ``new`` is not the test ``old`` accumulated ('' when it is)."""
    reasons = []
    if old.model != new.model and old.model is not None and new.model is not None:
        reasons.append(f"model {old.model} -> {new.model}")
    if old.fingerprint is not None and new.fingerprint is not None and \
            old.fingerprint != new.fingerprint:
        reasons.append("fingerprint changed")
    if new.min_pass_rate is not None and abs(old.min_pass_rate - new.min_pass_rate) > 1e-12:
        reasons.append(f"required rate {old.min_pass_rate:g} -> {new.min_pass_rate:g}")
    return ", ".join(reasons)


# -- files ------------------------------------------------------------------------------

def save_baseline(baseline: Baseline, path: str | os.PathLike[str]) -> Path:
    from llmcheck.files import write_atomic

    p = Path(path)
    write_atomic(p, baseline.model_dump_json(indent=2) + "\n")
    return p


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read a baseline file, with a one-line :class:`ReportError` naming the problem."""
    p = Path(path)
    return _baseline_of(json_file(p, "baseline"), p)


def _baseline_of(data: Any, p: Path) -> Baseline:
    if not isinstance(data, dict) or "baseline_version" not in data:
        raise ReportError(f"{p} is not an llmcheck baseline (no baseline_version)")
    version = data["baseline_version"]
    if type(version) is not int or version != BASELINE_VERSION:
        shown = repr(version)[:40]
        raise ReportError(f"baseline {p} has baseline_version {shown}; this llmcheck reads "
                          f"version {BASELINE_VERSION}")
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in first["loc"])
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 \
            else ""
        msg = first["msg"].removeprefix("Value error, ")
        raise ReportError(f"baseline {p} is invalid: {loc.lstrip('.') or 'top level'}: "
                          f"{msg}{more}") from None
    except RecursionError:
        raise ReportError(f"baseline {p} is nested too deeply") from None


def load_counts(path: str | os.PathLike[str]) -> tuple[str, list[Counts]]:
    """The per-test counts of a report or of a baseline file (told apart by their
    version key): ``("report" | "baseline", counts)``."""
    from llmcheck.records.schema import load_session

    p = Path(path)
    data = json_file(p, "file")
    if isinstance(data, dict) and "baseline_version" in data:
        return "baseline", _baseline_of(data, p).counts()
    if isinstance(data, dict) and "schema_version" in data:
        return "report", counts_of_session(load_session(p))
    raise ReportError(f"{p} is neither an llmcheck report (schema_version) nor a baseline "
                      "(baseline_version)")
