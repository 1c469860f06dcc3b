"""Sessions for the report tests: real records (samples, checks, failure groups, pooled
cases) built from a string of sample outcomes, with hostile text where model output goes."""

from __future__ import annotations

from datetime import datetime, timezone

from llmcheck.records import (
    CallRecord,
    CheckResult,
    SampleRecord,
    SessionRecord,
    TestRecord,
    TestSettings,
    UsageTotals,
    Verdict,
    check_stats,
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
              to_conclusive: int | None = None) -> TestRecord:
    """A test whose samples are ``outcomes``: ``P`` passed, ``F`` failed (``message``), ``f``
    failed with another message, ``E`` errored. Each sample has one call and a check
    ``golden.exact`` that fails with the sample (its message ``check_message``)."""
    settings = TestSettings(runs=len(outcomes) + 10, verdict="threshold", min_pass_rate=required,
                            confidence=0.95, margin=0.05, alpha=0.05, beta=0.05,
                            interval="wilson", early_stop=False, concurrency=4)
    samples = []
    for i, o in enumerate(outcomes):
        kind = {"P": "passed", "F": "failed", "f": "failed", "E": "error"}[o]
        text = {"F": message, "f": "AssertionError: other reason", "E": "connection refused"}
        msg = text.get(o)
        samples.append(SampleRecord(
            index=i, seed=1000 + i, outcome=kind, duration=0.05 + 0.01 * (i % 7), message=msg,
            error_type=None if kind == "passed" else "AssertionError",
            traceback=None if msg is None else f"Traceback (most recent call last):\n  File "
                                                f"\"t.py\", line 3\n{msg}",
            calls=[CallRecord(model="openai/m", latency=0.02 + 0.005 * (i % 11),
                              prompt_tokens=10, completion_tokens=5, cost=cost)],
            checks=[CheckResult(name="golden.exact", passed=o == "P",
                                message=None if o == "P" else (check_message or msg),
                                value=None if o == "P" else HOSTILE)]))
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
        failure_groups=group_failures(samples))


def make_session() -> SessionRecord:
    """Five tests: a clean pass, a pass with failing samples whose message is hostile, a
    fail, an inconclusive pass with errors, and an expected failure; two of them are
    cases of one parametrized test (a pooled rate)."""
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
    return SessionRecord.assemble(
        tests, seed=42, started=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        model="openai/m", options={"runs": {"value": None, "source": "default"}},
        warnings=["a warning with <script>alert(4)</script> | pipe"])
