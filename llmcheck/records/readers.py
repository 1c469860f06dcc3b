"""Every reader of a file llmcheck did not just write itself, in one list.

A file read back may be corrupt, hand-edited or hostile. Each reader either accepts it,
and then what it returns satisfies the reader's invariants (counts >= 0, run <= planned,
intervals ordered within [0, 1], each test once, ...), or refuses it with its own error
type and a message; it never hangs or raises anything else. ``tests/test_fuzz_files.py``
holds every entry of :data:`READERS` to that with generated files, so a new reader joins
the fuzz by being listed here.

Entries name their functions as ``module:attribute`` strings: the readers live in
packages above this one (the gate, the simulator, the plugin), which this module must
not import; :meth:`Reader.load` imports them when called.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


def _resolve(name: str) -> Any:
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Reader:
    """One file reader: what it is called, its function, the error it refuses a file
    with, the file names it reads and what an accepted value must satisfy."""

    name: str
    function: str
    """``module:function``; called with a path (``takes="path"``), a list of two paths
    (``"paths"``: the file twice, as for a history of runs) or the file's text
    (``"text"``: a value stored inside another file, such as a cache row)."""
    error: str
    """``module:Exception``: the one error a refused file raises."""
    suffixes: tuple[str, ...]
    invariants: str | None = None
    """``module:function`` from the accepted value to its first broken invariant (None
    when all hold)."""
    takes: Literal["path", "paths", "text"] = "path"
    one_line: bool = True
    """Its refusals are one line (a scenario lists each problem on a line of its own)."""

    def load(self, path: Path) -> Any:
        """Read ``path`` the way this reader reads its files."""
        function = _resolve(self.function)
        if self.takes == "paths":
            return function([path, path])
        if self.takes == "text":
            return function(path.read_bytes().decode("utf-8", "surrogateescape"))
        return function(path)

    @property
    def error_type(self) -> type[Exception]:
        error: type[Exception] = _resolve(self.error)
        return error

    def problem(self, value: Any) -> str | None:
        """The first invariant ``value`` (what the reader accepted) breaks, or None."""
        return _resolve(self.invariants)(value) if self.invariants else None


# -- invariants: written from the definitions, independently of the validators ------------


def _first(problems: Iterable[str | None]) -> str | None:
    return next((p for p in problems if p is not None), None)


def _unique(names: list[str], what: str) -> str | None:
    seen = set()
    for name in names:
        if name in seen:
            return f"{what} {name!r} appears twice"
        seen.add(name)
    return None


def _counts(where: str, **counts: Any) -> str | None:
    for name, value in counts.items():
        if not isinstance(value, int) or value < 0:
            return f"{where}.{name} is {value!r}, not a count"
    return None


def _rate(where: str, value: Any) -> str | None:
    if value is None:
        return None
    if not (isinstance(value, float | int) and math.isfinite(value) and 0 <= value <= 1):
        return f"{where} is {value!r}, not a rate in [0, 1]"
    return None


def record_problem(test: Any) -> str | None:
    """A test record's counts, rates and interval against their definitions."""
    where = test.nodeid
    return _first([
        _counts(where, run=test.run, passed=test.passed, failed=test.failed,
                errors=test.errors, planned=test.settings.runs),
        None if test.passed + test.failed + test.errors <= test.run <= test.settings.runs
        else f"{where}: passed + failed + errors <= run <= planned does not hold",
        _rate(f"{where}.pass_rate", test.pass_rate),
        _rate(f"{where}.interval.low", test.interval.low),
        _rate(f"{where}.interval.high", test.interval.high),
        None if test.interval.low <= test.interval.high + 1e-9
        else f"{where}: the interval is not ordered",
        None if math.isfinite(test.duration) and test.duration >= 0
        else f"{where}.duration is {test.duration!r}",
        *(_counts(f"{where}.samples", index=s.index) for s in test.samples),
    ])


def tests_problem(tests: list[Any]) -> str | None:
    """Test records (of a report, or rebuilt from a journal): each sound, each once."""
    return _first([_unique([t.nodeid for t in tests], "test"),
                   *(record_problem(t) for t in tests)])


def report_problem(session: Any) -> str | None:
    return _first([tests_problem(session.tests),
                   None if session.duration is None or (math.isfinite(session.duration)
                                                        and session.duration >= 0)
                   else f"the session's duration is {session.duration!r}"])


def history_problem(history: Any) -> str | None:
    return _first(report_problem(s) for s in history.sessions)


def baseline_problem(baseline: Any) -> str | None:
    return _first([
        _unique([t.nodeid for t in baseline.tests], "test"),
        *(_counts(t.nodeid, passed=t.passed, failed=t.failed, runs=t.runs)
          for t in baseline.tests),
        *(_rate(f"{t.nodeid}.min_pass_rate", t.min_pass_rate) for t in baseline.tests),
        *(None if (t.passed, t.failed) == (sum(r.passed for r in t.history),
                                           sum(r.failed for r in t.history))
          else f"{t.nodeid}: the counts are not the sum of its runs" for t in baseline.tests),
    ])


def counts_problem(loaded: tuple[str, list[Any]]) -> str | None:
    """What ``llmcheck compare`` reads: a report's or a baseline's per-test counts."""
    _, counts = loaded
    return _first([_unique([c.nodeid for c in counts], "test"),
                   *(_counts(c.nodeid, passed=c.passed, failed=c.failed, runs=c.runs)
                     for c in counts),
                   *(_rate(f"{c.nodeid}.min_pass_rate", c.min_pass_rate) for c in counts)])


def cases_problem(cases: list[Any]) -> str | None:
    if not cases:
        return "no case"
    return _first([_unique([c.name for c in cases], "case"),
                   *(None if c.name else "a case has no name" for c in cases)])


def cache_row_problem(payload: dict[str, Any]) -> str | None:
    usage = payload.get("usage") or {}
    return _first([
        None if isinstance(payload.get("text"), str) else "the answer has no text",
        *(_counts("usage", **{k: v}) for k, v in usage.items() if v is not None),
        *(None if payload.get(k) is None or (math.isfinite(payload[k]) and payload[k] >= 0)
          else f"{k} is {payload[k]!r}" for k in ("latency", "cost", "retries")),
    ])


def scenario_problem(scenario: Any) -> str | None:
    return _unique([r.name for r in scenario.routes], "route")


_HERE = "llmcheck.records.readers:"
_REPORT_ERROR = "llmcheck.errors:ReportError"
_USAGE_ERROR = "llmcheck.errors:UsageError"

READERS: tuple[Reader, ...] = (
    Reader("report", "llmcheck.records.io:load_session", _REPORT_ERROR, (".json",),
           _HERE + "report_problem"),
    Reader("baseline", "llmcheck.gate.baseline:load_baseline", _REPORT_ERROR, (".json",),
           _HERE + "baseline_problem"),
    Reader("compare input", "llmcheck.gate.baseline:load_counts", _REPORT_ERROR, (".json",),
           _HERE + "counts_problem"),
    Reader("history", "llmcheck.gate.history:load_history", _REPORT_ERROR, (".json",),
           _HERE + "history_problem", takes="paths"),
    Reader("cases", "llmcheck.checks.cases:load_cases", _USAGE_ERROR,
           (".yaml", ".json", ".jsonl", ".csv"), _HERE + "cases_problem"),
    Reader("scenario", "llmcheck.simulator.scenario:load_scenario", _USAGE_ERROR,
           (".yaml", ".json"), _HERE + "scenario_problem", one_line=False),
    Reader("cache row", "llmcheck.model.cache:decode_payload", _USAGE_ERROR, (".row",),
           _HERE + "cache_row_problem", takes="text"),
    Reader("journal", "llmcheck_pytest.journal:read_journal", _REPORT_ERROR, (".jsonl",),
           _HERE + "tests_problem"),
)
"""Every file reader. ``llmcheck merge`` reads its inputs with the report's reader (and
refuses a test in two of them); the journal's reader rebuilds records as recovery does."""

READERS_BY_NAME: dict[str, Reader] = {r.name: r for r in READERS}
"""The same, by name."""

__all__ = ["READERS", "READERS_BY_NAME", "Reader"]
