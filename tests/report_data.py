"""Records for the tests that read or render them: sessions with real samples, checks,
failure groups, pooled cases and pass rates per injected fault, built from a string of
sample outcomes with hostile text where model output goes (``make_test``,
``make_session``); test records from counts alone (``make_record``); a report saved to
disk (``save_report``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import llmcheck
from llmcheck.records.schema import (
    CallRecord,
    CheckResult,
    CheckStat,
    FaultRecord,
    Interval,
    SampleRecord,
    SessionRecord,
    TestRecord,
    TestSettings,
    UsageTotals,
    Verdict,
    check_stats,
    fault_stats,
    group_failures,
    now,
    save_session,
)

HOSTILE = ("bad | pipe `tick` <script>window.__pwned = 1; document.title = 'pwned'; "
           "alert(1)</script> <img src=x onerror=\"window.__pwned = 2; alert(2)\"> "
           "</script><b>bold</b> &amp;")
"""What a model could answer: markdown and HTML metacharacters, a script, an image
with a handler, a closing script tag."""
HOSTILE_LINES = HOSTILE + "\nsecond line | with a pipe\n<script>alert(3)</script>"


def make_test(nodeid: str, outcomes: str, *, required: float = 0.8, outcome: str | None = None,
              conclusive: bool = True, message: str = "wrong answer", check_message: str = "",
              xfail: str | None = None, cost: float = 0.001,
              to_conclusive: int | None = None, faults: Sequence[str] = (),
              fault_plan: str | None = None) -> TestRecord:
    """A test whose samples are ``outcomes``: ``P`` passed, ``F`` failed (``message``), ``f``
    failed with another message, ``E`` errored. Each sample has one call and a check
    ``golden.exact`` that fails with the sample (its message ``check_message``).

    ``faults`` gives, per sample, the fault kinds injected into it, comma-separated (``""``:
    none; the first kind on call 0, the next on call 1, ...): a failing sample's message
    then says so, as the runner's does."""
    settings = TestSettings(runs=len(outcomes) + 10, verdict="threshold", min_pass_rate=required,
                            confidence=0.95, margin=0.05, alpha=0.05, beta=0.05,
                            interval="wilson", early_stop=False, concurrency=4)
    samples = []
    for i, o in enumerate(outcomes):
        kind = {"P": "passed", "F": "failed", "f": "failed", "E": "error"}[o]
        text = {"F": message, "f": "AssertionError: other reason", "E": "connection refused"}
        msg = text.get(o)
        kinds = [k for k in (faults[i] if i < len(faults) else "").split(",") if k]
        injected = [FaultRecord(call=n, kind=k, via="in-process") for n, k in enumerate(kinds)]
        if kinds and kind == "failed":
            msg = (f"under injected {', '.join(kinds)}: {msg}\n(injected: "
                   + ", ".join(f"{k} on call {n}" for n, k in enumerate(kinds)) + ")")
        samples.append(SampleRecord(
            index=i, seed=1000 + i, outcome=kind, duration=0.05 + 0.01 * (i % 7), message=msg,
            error_type=None if kind == "passed" else "AssertionError",
            traceback=None if msg is None else f"Traceback (most recent call last):\n  File "
                                                f"\"t.py\", line 3\n{msg}",
            checks=[CheckResult(name="golden.exact", passed=o == "P",
                                message=None if o == "P" else (check_message or msg),
                                value=None if o == "P" else HOSTILE)],
            faults=injected,
            calls=[CallRecord(model="openai/m", latency=0.02 + 0.005 * (i % 11),
                              prompt_tokens=10, completion_tokens=5, cost=cost,
                              fault=kinds[0] if kinds else None)]))
    passed = outcomes.count("P")
    failed = outcomes.count("F") + outcomes.count("f")
    errors = outcomes.count("E")
    scored = passed + failed
    rate = passed / scored if scored else None
    if outcome is None:
        outcome = "passed" if rate is not None and rate >= required else "failed"
    return TestRecord(
        nodeid=nodeid, settings=settings, run=len(outcomes), passed=passed, failed=failed,
        errors=errors, pass_rate=rate,
        worst_case_rate=passed / len(outcomes) if errors else None,
        interval=settings.interval_of(passed, scored),
        verdict=Verdict(outcome=outcome, conclusive=conclusive, reason="observed vs required",
                        samples_to_conclusive=to_conclusive),
        duration=1.0, model="openai/m", xfail=xfail,
        usage=UsageTotals.of_calls([c for s in samples for c in s.calls]),
        samples=samples, checks=check_stats(samples, settings),
        failure_groups=group_failures(samples), fault_plan=fault_plan,
        faults=fault_stats(samples, settings))


FAULT_PLAN = "rate_limit:0.3,timeout:0.15,server_error:0.05 (seed 7) " + HOSTILE
"""A fault plan as the record keeps it, with hostile text (a plan is test code's text)."""
FAULT_OUTCOMES = "PPPPFPPPPP" "PPFEP" "P" + "P" * 14
FAULTS = ["rate_limit"] * 10 + ["timeout"] * 5 + ["rate_limit,server_error"] + [""] * 14
"""30 samples: 11 rate-limited (10 passed, 1 failed; one of them also got a server error and
passed), 5 timed out (3 passed, 1 failed, 1 error), 14 with no fault (all passed)."""


def make_fault_test(nodeid: str = "suites/test_d.py::test_survives_faults") -> TestRecord:
    """A passing test whose samples got injected faults (:data:`FAULTS`): its record has
    a fault plan and pass counts per fault kind."""
    return make_test(nodeid, FAULT_OUTCOMES, message="APIError: " + HOSTILE,
                     faults=FAULTS, fault_plan=FAULT_PLAN)


def make_session(*, faults: bool = False) -> SessionRecord:
    """Five tests: a clean pass, a pass with failing samples whose message is hostile, a
    fail, an inconclusive pass with errors, and an expected failure; two of them are
    cases of one parametrized test (a pooled rate). With ``faults``, a sixth test whose
    samples got injected faults (:func:`make_fault_test`)."""
    tests = [
        make_test("suites/test_a.py::test_clean", "P" * 20, cost=0.002),
        make_test("suites/test_a.py::test_hostile[a|b`c]", "PPPPFPPPPPPFPPPPPPPP",
                  message=HOSTILE_LINES, check_message=HOSTILE_LINES),
        make_test("suites/test_b.py::test_fails[case-1]", "PFPFFPFfPFFF", required=0.9),
        make_test("suites/test_b.py::test_fails[case-2]", "PPPPPPPPEPPPPPPPEPPP",
                  required=0.9, conclusive=False, to_conclusive=139),
        make_test("suites/test_c.py::test_known_bad", "FFPFFPFF", required=0.95,
                  xfail="known: the model ignores the limit"),
    ]
    if faults:
        tests.append(make_fault_test())
    return SessionRecord.assemble(
        tests, seed=42, started=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        model="openai/m", options={"runs": {"value": None, "source": "default"}},
        warnings=["a warning with <script>alert(4)</script> | pipe"])


# -- test records from counts ----------------------------------------------------

def make_record(nodeid: str, *, run: int = 100, planned: int = 100, passed: int = 95,
                failed: int = 5, errors: int = 0, low: float = 0.89, high: float = 0.98,
                min_pass_rate: float = 0.9, outcome: str = "passed", conclusive: bool = True,
                samples_to_conclusive: int | None = None, decided_after: int | None = None,
                calls: int = 0, tokens: int = 0, cost: float | None = None,
                xfail: str | None = None, checks: list[CheckStat] | None = None) -> TestRecord:
    """A test record from its counts alone (no samples): for tables, views and files."""
    scored = passed + failed
    settings = TestSettings(
        runs=planned, verdict="threshold", min_pass_rate=min_pass_rate, confidence=0.95,
        margin=0.05, alpha=0.05, beta=0.05, interval="wilson", early_stop=True, concurrency=4)
    return TestRecord(
        nodeid=nodeid, settings=settings, run=run, passed=passed, failed=failed, errors=errors,
        pass_rate=passed / scored if scored else None,
        interval=Interval(low=low, high=high, confidence=0.95),
        verdict=Verdict(outcome=outcome, conclusive=conclusive, reason="why",
                        samples_to_conclusive=samples_to_conclusive,
                        stopped_early=decided_after is not None, decided_after=decided_after),
        duration=1.0, xfail=xfail,
        usage=UsageTotals(calls=calls, prompt_tokens=tokens, completion_tokens=tokens // 4,
                          cost=cost),
        samples=[], checks=checks or [])


def check_stat(name: str, failed: int, evaluated: int = 100) -> CheckStat:
    """A check that failed ``failed`` of ``evaluated`` samples."""
    return CheckStat(
        name=name, evaluated=evaluated, passed=evaluated - failed, failed=failed,
        pass_rate=(evaluated - failed) / evaluated,
        interval=Interval(low=0.71, high=0.86, confidence=0.95),
        failed_samples=list(range(0, 5 * failed, 5)), example="field required: address.street")


LONG = "suites/test_extraction.py::test_extracts_person_with_a_very_long_name[case-12-many-params]"


def session_records() -> list[TestRecord]:
    """Long node ids, usage numbers and every kind of verdict."""
    return [
        make_record("suites/test_extraction.py::test_extracts_person[case-3]", calls=100,
                    tokens=123456, cost=0.0123),
        make_record(LONG, passed=85, failed=15, low=0.77, high=0.91, conclusive=False,
                    samples_to_conclusive=139, calls=100, tokens=99000, cost=1.5),
        make_record("tests/test_summary.py::test_summary_is_short", run=12, passed=1,
                    failed=11, low=0.01, high=0.35, outcome="failed", decided_after=12,
                    calls=12, tokens=5000, cost=0.001),
        make_record("tests/test_tools.py::test_weather_tool_called_with_the_city", passed=0,
                    failed=0, errors=100, outcome="error", calls=100),
        make_record("tests/test_xfail.py::test_known_bad[gpt-4o-mini]", planned=40, run=40,
                    passed=12, failed=28, low=0.18, high=0.46, min_pass_rate=0.95,
                    outcome="failed", conclusive=False, samples_to_conclusive=41,
                    xfail="known", calls=40, tokens=1000),
    ]


def save_report(path: Path, tests: list[TestRecord]) -> Path:
    """Save ``tests`` as a session report at ``path``, as a session would."""
    session = SessionRecord(llmcheck_version=llmcheck.__version__, started=now(), seed=7,
                            tests=tests)
    return save_session(session, path)
