"""``--llm-session-alpha``: the chance that a session fails any good test is held to A.

With session_alpha=A over K tests, each test's fail-side error (the chance of failing a
model at min_pass_rate + margin) is set to 1-(1-A)^(1/K) (Sidak): sequential lowers its
beta (its N grows), threshold and interval run more samples. The slow test checks the
promise through the real SampleRunner, over many simulated 30-test sessions
(benchmarks/session_gate.py gives the full figures).
"""

from __future__ import annotations

import re

import pytest

import llmcheck
from llmcheck import stats
from llmcheck.config.settings import Resolved, session_defaults
from llmcheck.core import seeded
from llmcheck.core.runner import RunSpec, SampleRunner
from llmcheck.records.resolve import resolve_test
from llmcheck.records.schema import false_fail_chance

K = 30
SESSION_ALPHA = 0.05
PER_TEST = 1 - (1 - SESSION_ALPHA) ** (1 / K)
GOOD = 0.95  # the default required rate 0.9 + the default margin 0.05


def with_session_alpha(alpha: float = SESSION_ALPHA) -> dict[str, Resolved]:
    session = session_defaults()
    session["session_alpha"] = Resolved(alpha, "command line")
    return session


def false_fail(settings) -> float:
    """Exact P(FAIL) of one test at the required rate + margin."""
    return 1 - settings.policy().operating_characteristic(GOOD)[0]


def test_session_alpha_lowers_the_sequential_beta_and_holds_the_session_to_it():
    default = resolve_test({}, session_defaults(), session_tests=K)
    shared = resolve_test({}, with_session_alpha(), session_tests=K)
    assert shared.verdict == default.verdict == "sequential"
    assert shared.beta == pytest.approx(PER_TEST, rel=1e-12)
    assert shared.alpha == default.alpha == 0.05  # the pass side is untouched
    assert shared.runs > default.runs
    assert false_fail(shared) <= PER_TEST
    assert false_fail_chance([shared] * K) <= SESSION_ALPHA
    # without it, 30 such tests fail a good model most of the time
    assert false_fail_chance([default] * K) > 0.7


def test_default_session_leaves_beta_alone():
    assert resolve_test({}, session_defaults(), session_tests=K).beta == 0.05
    assert resolve_test({"beta": 0.1}, session_defaults(), session_tests=K).beta == 0.1
    # session alpha only ever lowers a test's beta
    assert resolve_test({"beta": 0.0005}, with_session_alpha(), session_tests=K).beta == 0.0005
    # one test: its share is the whole session alpha
    assert resolve_test({}, with_session_alpha(), session_tests=1).beta == pytest.approx(0.05)


@pytest.mark.parametrize("verdict", ["threshold", "interval"])
def test_rate_policies_get_enough_runs(verdict):
    default = resolve_test({"verdict": verdict}, session_defaults(), session_tests=K)
    shared = resolve_test({"verdict": verdict}, with_session_alpha(), session_tests=K)
    assert false_fail(default) > PER_TEST
    assert shared.runs > default.runs
    assert false_fail(shared) <= PER_TEST
    assert false_fail_chance([shared] * K) <= SESSION_ALPHA


def test_explicit_runs_too_small_for_session_alpha_is_a_usage_error():
    with pytest.raises(llmcheck.UsageError, match="session-alpha") as info:
        resolve_test({"verdict": "threshold", "runs": 20}, with_session_alpha(),
                     session_tests=K)
    fewest, first_above = map(int, re.search(
        r"runs=20 does not: runs=(\d+) is the fewest that does, and runs=(\d+) the first "
        r"above 20", str(info.value)).groups())
    # the runs it names are enough, and accepted; one fewer is not
    for needed in (fewest, first_above):
        settings = resolve_test({"verdict": "threshold", "runs": needed},
                                with_session_alpha(), session_tests=K)
        assert settings.runs == needed and false_fail(settings) <= PER_TEST
    with pytest.raises(llmcheck.UsageError, match=f"runs={fewest - 1} does not"):
        resolve_test({"verdict": "threshold", "runs": fewest - 1}, with_session_alpha(),
                     session_tests=K)
    # the default (runs unset) is the fewest from the design's N on: 190, not more
    assert resolve_test({"verdict": "threshold"}, with_session_alpha(),
                        session_tests=K).runs == fewest == 190
    # sequential: its fixed-sample equivalent at the lowered beta
    with pytest.raises(llmcheck.UsageError, match=r"takes runs=\d+; runs=20 is set"):
        resolve_test({"runs": 20}, with_session_alpha(), session_tests=K)
    # the same runs without session alpha are fine
    assert resolve_test({"verdict": "threshold", "runs": 20}, session_defaults()).runs == 20


# -- through the real runner -----------------------------------------------------

PASS_DELAY = 0.0002
FAIL_DELAY = 3 * PASS_DELAY  # failures are slower: with concurrency they finish out of order


@pytest.mark.slow
def test_session_alpha_holds_through_the_runner():
    """150 sessions of 30 tests at 0.95 with session_alpha=0.05: every twentieth
    session runs async bodies at concurrency 4 (failures slower), the rest inline. The
    share of sessions with a FAIL is not significantly above 0.05 and is the exact
    figure within 4 SE (seeded, so not flaky). 2,000 sessions, power and the A/A
    agreement: benchmarks/session_gate.py."""
    sessions = 150
    settings = {c: resolve_test({"concurrency": c}, with_session_alpha(), session_tests=K)
                for c in (1, 4)}
    failed_sessions = 0
    for i in range(sessions):
        use_async = i % 20 == 0
        s = settings[4 if use_async else 1]
        body = (seeded.async_body(GOOD, PASS_DELAY, FAIL_DELAY) if use_async
                else seeded.sync_body(GOOD))
        failed = False
        for j in range(K):
            record = SampleRunner(body, RunSpec(test_id=f"suite/test_gate.py::test_{j}",
                                                settings=s, session_seed=7_000_000 + i)).run()
            assert record.verdict.outcome in ("passed", "failed")
            failed |= record.verdict.outcome == "failed"
        failed_sessions += failed
    share = failed_sessions / sessions
    p_value = stats.binomial_test(failed_sessions, sessions, SESSION_ALPHA, "greater")
    assert p_value > 0.01, f"{failed_sessions}/{sessions} = {share:.4f} > {SESSION_ALPHA}"
    exact = false_fail_chance([settings[1]] * K)
    se = (exact * (1 - exact) / sessions) ** 0.5
    assert abs(share - exact) < 4 * se, (share, exact)
