"""Sessions for the report tests: real records (samples, checks, failure groups, pooled
cases, pass rates per injected fault) built from a string of sample outcomes, with hostile
text where model output goes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from llmcheck.records.schema import (
    CallRecord,
    CheckResult,
    FaultRecord,
    SampleRecord,
    SessionRecord,
    TestRecord,
    TestSettings,
    UsageTotals,
    Verdict,
    check_stats,
    fault_stats,
    group_failures,
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
