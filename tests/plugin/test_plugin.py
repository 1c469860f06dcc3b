"""The pytest plugin, driven through ``pytester`` as a user would drive pytest."""

from __future__ import annotations

import json
import sys

import pytest
from helpers import by_name

ALWAYS_PASS = """
import llmcheck

@llmcheck.repeat(runs=12)
def test_ok():
    assert True
"""


def test_decorator_runs_the_body_many_times(pytester, report):
    pytester.makepyfile("""
        import llmcheck
        CALLS = []

        @llmcheck.repeat(runs=7, min_pass_rate=0.5)
        def test_counted():
            CALLS.append(1)

        def test_after():
            assert len(CALLS) == 7
    """)
    result = pytester.runpytest("-p", "no:randomly", "--llm-no-early-stop")
    result.assert_outcomes(passed=2)
    t = by_name(report())["test_counted"]
    assert (t["settings"]["runs"], t["run"], t["passed"], t["failed"], t["errors"]) == \
        (7, 7, 7, 0, 0)
    assert t["settings"]["min_pass_rate"] == 0.5
    assert [s["index"] for s in t["samples"]] == list(range(7))


def test_a_case_may_set_its_own_required_rate(pytester, report):
    pytester.makepyfile("""
        import pytest, llmcheck

        @pytest.mark.parametrize("case", [
            "plain", pytest.param("strict", marks=pytest.mark.llm(min_pass_rate=0.95))])
        @llmcheck.repeat(runs=4, min_pass_rate=0.6)
        def test_cases(case):
            pass
    """)
    pytester.runpytest("--llm-no-early-stop").assert_outcomes(passed=2)
    tests = by_name(report())
    assert tests["test_cases[plain]"]["settings"]["min_pass_rate"] == 0.6
    assert tests["test_cases[strict]"]["settings"]["min_pass_rate"] == 0.95
    assert tests["test_cases[strict]"]["settings"]["runs"] == 4  # the rest: the test's


def test_marker_is_equivalent_to_the_decorator(pytester, report):
    pytester.makepyfile("""
        import pytest, llmcheck

        @pytest.mark.llm(runs=5, min_pass_rate=0.6)
        def test_marker(llm_sample):
            assert llm_sample.index != 4

        @llmcheck.repeat(runs=5, min_pass_rate=0.6)
        def test_decorator(llm_sample):
            assert llm_sample.index != 4

        @llmcheck.repeat
        def test_bare():
            pass
    """)
    result = pytester.runpytest("--llm-no-early-stop", "--llm-verdict=threshold")
    result.assert_outcomes(passed=3)
    tests = by_name(report())
    def strip(t):
        # what may differ between two runs of the same test: timing, and when the
        # verdict settled (samples in flight finish in any order)
        ignored = ("nodeid", "duration", "samples", "failure_groups", "verdict", "fingerprint")
        return {k: v for k, v in t.items() if k not in ignored} | {
            "verdict": (t["verdict"]["outcome"], t["settings"]["verdict"])}

    assert strip(tests["test_marker"]) == strip(tests["test_decorator"])
    assert tests["test_marker"]["passed"] == 4
    assert tests["test_bare"]["settings"]["runs"] == 93  # the default: the design's N


def test_async_bodies_run_without_another_plugin(pytester, report):
    pytester.makepyfile("""
        import asyncio, llmcheck

        @llmcheck.repeat(runs=8, concurrency=4)
        async def test_async(llm_sample):
            await asyncio.sleep(0.01)
            assert llm_sample.index >= 0
    """)
    result = pytester.runpytest("-p", "no:asyncio")
    result.assert_outcomes(passed=1)
    t = by_name(report())["test_async"]
    assert t["run"] == 8 and t["passed"] == 8


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_concurrency_really_overlaps(pytester, report, kind):
    body = {
        "sync": "def test_overlap():\n    enter(); time.sleep(0.05); leave()",
        "async": "async def test_overlap():\n    enter(); await asyncio.sleep(0.05); leave()",
    }[kind]
    pytester.makepyfile("\n".join([
        "import asyncio, threading, time, llmcheck",
        "LOCK = threading.Lock()",
        "STATE = {'now': 0, 'max': 0}",
        "def enter():",
        "    with LOCK:",
        "        STATE['now'] += 1",
        "        STATE['max'] = max(STATE['max'], STATE['now'])",
        "def leave():",
        "    with LOCK:",
        "        STATE['now'] -= 1",
        "@llmcheck.repeat(runs=16, concurrency=4)",
        body,
        "def test_zz_observed():",
        "    assert STATE['max'] == 4",
    ]))
    result = pytester.runpytest("-p", "no:randomly", "-s")
    result.assert_outcomes(passed=2)
    assert by_name(report())["test_overlap"]["settings"]["concurrency"] == 4


def test_concurrency_option_limits_samples_in_flight(pytester):
    pytester.makepyfile("""
        import threading, time, llmcheck
        LOCK = threading.Lock()
        STATE = {"now": 0, "max": 0}

        @llmcheck.repeat(runs=9)
        def test_overlap():
            with LOCK:
                STATE["now"] += 1
                STATE["max"] = max(STATE["max"], STATE["now"])
            time.sleep(0.03)
            with LOCK:
                STATE["now"] -= 1

        def test_zz_observed():
            assert STATE["max"] == 3
    """)
    pytester.runpytest("--llm-concurrency=3", "-p", "no:randomly").assert_outcomes(passed=2)


def test_llm_runs_overrides_every_marked_test(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=3)
        def test_a():
            pass

        @llmcheck.repeat
        def test_b():
            pass
    """)
    pytester.runpytest("--llm-runs=6").assert_outcomes(passed=2)
    tests = by_name(report())
    assert tests["test_a"]["settings"]["runs"] == 6 and tests["test_b"]["settings"]["runs"] == 6


def test_min_pass_rate_option_is_the_default_for_tests_that_set_none(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=10)
        def test_default(llm_sample):
            assert llm_sample.index < 7        # 7/10 pass

        @llmcheck.repeat(runs=10, min_pass_rate=0.9)
        def test_own(llm_sample):
            assert llm_sample.index < 7
    """)
    result = pytester.runpytest("--llm-min-pass-rate=0.7", "--llm-no-early-stop",
                                "--llm-verdict=threshold")
    result.assert_outcomes(passed=1, failed=1)
    tests = by_name(report())
    assert tests["test_default"]["settings"]["min_pass_rate"] == 0.7
    assert tests["test_default"]["verdict"]["outcome"] == "passed"
    assert tests["test_own"]["settings"]["min_pass_rate"] == 0.9
    assert tests["test_own"]["verdict"]["outcome"] == "failed"


def test_confidence_option_widens_the_interval(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=20, min_pass_rate=0.5)
        def test_x(llm_sample):
            assert llm_sample.index % 4 != 0      # 15/20
    """)
    pytester.runpytest("--llm-confidence=0.8", "--llm-no-early-stop").assert_outcomes(passed=1)
    narrow = by_name(report())["test_x"]["interval"]
    pytester.runpytest("--llm-confidence=0.99", "--llm-no-early-stop").assert_outcomes(passed=1)
    wide = by_name(report())["test_x"]["interval"]
    assert narrow["confidence"] == 0.8 and wide["confidence"] == 0.99
    assert wide["low"] < narrow["low"] < 0.75 < narrow["high"] < wide["high"]
    # Wilson 95% for 15/20 from an independent table, shown at 0.99 and 0.8 differently
    pytester.runpytest("--llm-no-early-stop").assert_outcomes(passed=1)
    default = by_name(report())["test_x"]["interval"]
    assert default["low"] == pytest.approx(0.5313, abs=1e-4)
    assert default["high"] == pytest.approx(0.8881, abs=1e-4)


def test_clopper_pearson_on_request(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=20, min_pass_rate=0.5, interval="clopper-pearson")
        def test_x(llm_sample):
            assert llm_sample.index < 17
    """)
    pytester.runpytest("--llm-no-early-stop").assert_outcomes(passed=1)
    iv = by_name(report())["test_x"]["interval"]
    assert iv["method"] == "clopper-pearson"
    assert (iv["low"], iv["high"]) == (pytest.approx(0.6211, abs=1e-4),
                                       pytest.approx(0.9679, abs=1e-4))


def test_early_stop_when_the_verdict_cannot_change(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=20, min_pass_rate=0.9, concurrency=1)
        def test_always_fails():
            assert False, "nope"

        @llmcheck.repeat(runs=20, min_pass_rate=0.5, concurrency=1)
        def test_always_passes():
            pass
    """)
    result = pytester.runpytest("--llm-verdict=threshold")
    result.assert_outcomes(passed=1, failed=1)
    tests = by_name(report())
    fails = tests["test_always_fails"]
    # 3 failures out of 20 make 0.9 unreachable (17/20 = 0.85)
    assert fails["run"] == 3 and fails["verdict"]["stopped_early"]
    assert "decided at sample 3 of 20 (17 never started)" in fails["verdict"]["stop_reason"]
    passes = tests["test_always_passes"]
    assert passes["run"] == 10 and passes["verdict"]["outcome"] == "passed"   # 10/20 >= 0.5
    result.stdout.fnmatch_lines(["*test_always_fails*3/20*FAIL*after 3*"])


def test_no_early_stop_runs_every_sample_with_the_same_verdict(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=20, min_pass_rate=0.9, concurrency=1)
        def test_always_fails():
            assert False
    """)
    pytester.runpytest("--llm-no-early-stop").assert_outcomes(failed=1)
    t = by_name(report())["test_always_fails"]
    assert t["run"] == 20 and not t["verdict"]["stopped_early"]
    assert t["verdict"]["outcome"] == "failed"


def test_failures_vs_errors(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=10, min_pass_rate=0.5, concurrency=1)
        def test_some_errors(llm_sample):
            if llm_sample.index < 3:
                raise llmcheck.InfrastructureError("provider returned 503 after retries")
            if llm_sample.index < 5:
                raise ValueError("code under test raised")

        @llmcheck.repeat(runs=10, concurrency=1)
        def test_mostly_errors(llm_sample):
            if llm_sample.index < 6:
                raise llmcheck.InfrastructureError("429 Too Many Requests")
    """)
    result = pytester.runpytest("--llm-no-early-stop")
    result.assert_outcomes(passed=1, errors=1)
    tests = by_name(report())
    some = tests["test_some_errors"]
    assert (some["passed"], some["failed"], some["errors"]) == (5, 2, 3)
    assert some["pass_rate"] == pytest.approx(5 / 7)   # errors are not scored
    assert some["worst_case_rate"] == pytest.approx(5 / 10)   # ...but shown as failures
    assert some["verdict"]["outcome"] == "passed"
    mostly = tests["test_mostly_errors"]
    assert mostly["verdict"]["outcome"] == "error"
    assert "infrastructure errors" in mostly["verdict"]["reason"]
    result.stdout.fnmatch_lines(["*ERROR*test_mostly_errors*",
                                 "*0.71 (0.50)*",
                                 "rate (x): x counts the infrastructure errors as failures*",
                                 "warning: 2 test(s) had more than 10% of their samples end in "
                                 "infrastructure errors (--llm-max-error-share): "
                                 "*test_some_errors (3/10), *test_mostly_errors (6/10)"])


@pytest.mark.parametrize("passes, errors", [(12, 7), (40, 19)])
def test_errors_cannot_make_a_pass_conclusive(pytester, report, passes, errors):
    pytester.makepyfile(f"""
        import llmcheck

        @llmcheck.repeat(runs={passes + errors}, concurrency=1)
        def test_flaky_provider(llm_sample):
            if llm_sample.index < {errors}:
                raise llmcheck.InfrastructureError("timed out on a hard input")
    """)
    result = pytester.runpytest("--llm-no-early-stop")
    result.assert_outcomes(errors=1)  # issue 18, item 22: no pass for pytest either
    t = by_name(report())["test_flaky_provider"]
    assert (t["passed"], t["failed"], t["errors"]) == (passes, 0, errors)
    assert t["verdict"]["outcome"] == "error" and t["verdict"]["conclusive"] is False
    assert t["worst_case_rate"] == pytest.approx(passes / (passes + errors))
    assert f"counting the {errors} infrastructure error(s) as failures the test would fail" \
        in t["verdict"]["reason"]


def test_failure_report_groups_messages_most_common_first(pytester):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=10, min_pass_rate=0.9, concurrency=1, early_stop=False)
        def test_flaky(llm_sample):
            i = llm_sample.index
            if i in (1, 4, 7):
                assert i > 100, "label not in allowed set"
            if i == 5:
                raise KeyError("age")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "6/10 scored samples passed; pass rate 0.60" in out
    assert "95% Wilson interval [0.31, 0.83]" in out and "required 0.90" in out
    result.stdout.fnmatch_lines([
        "*4 sample(s) did not pass, 2 distinct message(s):*",
        "*3x AssertionError: label not in allowed set*(samples 1, 4, 7)*",
        "*1x KeyError: 'age'*(samples 5)*",
    ])
    # one full example per group, with the user's frame and not llmcheck's
    assert "--- example 1: sample 1 (3x) ---" in out
    assert "--- example 2: sample 5 (1x) ---" in out
    assert 'raise KeyError("age")' in out
    assert "runner.py" not in out


def test_inconclusive_verdict_is_visible(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=20, min_pass_rate=0.8, early_stop=False)
        def test_borderline(llm_sample):
            assert llm_sample.index not in (0, 1, 2)      # 17/20 = 0.85
    """)
    result = pytester.runpytest("--llm-verdict=threshold")
    result.assert_outcomes(passed=1)
    v = by_name(report())["test_borderline"]["verdict"]
    assert v["outcome"] == "passed" and v["conclusive"] is False
    assert v["samples_to_conclusive"] > 20
    result.stdout.fnmatch_lines(["*PASS (inconclusive, n≈*", "*1 verdict(s) inconclusive*"])


def test_sequential_policy_and_its_default_cap(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(verdict="sequential", min_pass_rate=0.875, margin=0.075)
        def test_good():
            pass

        @llmcheck.repeat(verdict="sequential", min_pass_rate=0.875, margin=0.075)
        def test_bad():
            assert False
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    tests = by_name(report())
    # the fixed-sample test meeting alpha, beta
    assert tests["test_good"]["settings"]["runs"] == 50
    assert tests["test_good"]["run"] < 50
    assert tests["test_good"]["settings"]["verdict"] == "sequential"
    assert tests["test_bad"]["run"] < 50
    assert "warning: sequential" not in result.stdout.str()


def test_sequential_warns_once_when_n_is_too_small(pytester):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(verdict="sequential", min_pass_rate=0.875, margin=0.075)
        def test_a():
            pass

        @llmcheck.repeat(verdict="sequential", min_pass_rate=0.875, margin=0.075)
        def test_b():
            pass
    """)
    result = pytester.runpytest("--llm-runs=20")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert out.count("warning: sequential: N=20 cannot meet") == 1
    assert "N=50 would" in out


def test_interval_policy_needs_the_lower_bound_to_clear(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=20, min_pass_rate=0.8, verdict="interval")
        def test_all_pass():
            pass
    """)
    # 20/20: Wilson lower bound 0.8389 >= 0.8 passes; at 0.85 it does not.
    pytester.runpytest().assert_outcomes(passed=1)
    assert by_name(report())["test_all_pass"]["settings"]["verdict"] == "interval"
    pytester.runpytest("--llm-min-pass-rate=0.85").assert_outcomes(passed=1)  # marker wins
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=20, verdict="interval")
        def test_all_pass():
            pass
    """)
    # at 0.85 even 20/20 cannot clear it: a usage error of the test, not a FAIL
    result = pytester.runpytest("--llm-min-pass-rate=0.85")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*this test can never pass*N=22 all passing could*"])


def test_verdict_option_and_ini_and_env(pytester, report, monkeypatch):
    pytester.makepyfile(ALWAYS_PASS)
    pytester.makeini("[pytest]\nllm_verdict = interval\nllm_runs = 4\n"
                     "llm_min_pass_rate = 0.75\n")
    pytester.runpytest().assert_outcomes(passed=1)   # 12/12: lower bound 0.7575 >= 0.75
    t = by_name(report())["test_ok"]
    assert t["settings"]["verdict"] == "interval"
    assert t["settings"]["runs"] == 12   # ini runs is a default; the test's own runs wins
    monkeypatch.setenv("LLMCHECK_VERDICT", "threshold")
    monkeypatch.setenv("LLMCHECK_RUNS", "5")
    pytester.runpytest().assert_outcomes(passed=1)   # env beats ini; env runs overrides
    t = by_name(report())["test_ok"]
    assert t["settings"]["verdict"] == "threshold" and t["settings"]["runs"] == 5
    pytester.runpytest("--llm-verdict=sequential", "--llm-runs=60").assert_outcomes(passed=1)
    t = by_name(report())["test_ok"]
    assert t["settings"]["verdict"] == "sequential" and t["settings"]["runs"] == 60


def test_report_dir_option(pytester, report):
    pytester.makepyfile(ALWAYS_PASS)
    pytester.runpytest("--llm-report-dir=out/llm", "--llm-no-early-stop").assert_outcomes(passed=1)
    assert report("out/llm")["tests"][0]["run"] == 12
    assert not (pytester.path / "reports").exists()


def test_seed_makes_sample_seeds_reproducible(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=6, min_pass_rate=0.0)
        def test_seeded(llm_sample):
            assert llm_sample.rng.random() < 0.5
    """)
    def seeds(*args):
        result = pytester.runpytest(*args)
        data = report()
        t = by_name(data)["test_seeded"]
        return data["seed"], [(s["seed"], s["outcome"]) for s in t["samples"]], result

    seed_a, first, result = seeds("--llm-seed=42", "--llm-no-early-stop")
    result.stdout.fnmatch_lines(["llmcheck: seed=42 *--llm-seed=42*"])
    assert seed_a == 42
    assert seeds("--llm-seed=42", "--llm-no-early-stop")[1] == first
    assert len({s for s, _ in first}) == 6
    assert seeds("--llm-seed=43", "--llm-no-early-stop")[1] != first


def test_llm_sample_outside_a_sample_is_a_clear_error(pytester):
    pytester.makepyfile("""
        def test_unmarked(llm_sample):
            llm_sample.index
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*llm_sample is only available while a sample*"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--llm-runs=0"], "--llm-runs=0 is invalid (out of range): expected an integer >= 1"),
        (["--llm-runs=many"], "--llm-runs=many is invalid: expected an integer >= 1"),
        (["--llm-concurrency=0"], "--llm-concurrency=0 is invalid*expected an integer >= 1"),
        (["--llm-min-pass-rate=1.5"], "--llm-min-pass-rate=1.5 is invalid*>= 0 and <= 1"),
        (["--llm-confidence=1"], "--llm-confidence=1 is invalid*> 0 and < 1"),
        (["--llm-verdict=vibes"], "--llm-verdict=vibes is invalid: expected one of threshold, "
                                  "sequential, interval"),
        (["--llm-seed=-1"], "--llm-seed=-1 is invalid*"),
        (["--llm-alpha=0.7"], "--llm-alpha=0.7 is invalid*"),
    ],
)
def test_bad_option_values_are_usage_errors(pytester, args, expected):
    pytester.makepyfile(ALWAYS_PASS)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{expected}*"])


def test_bad_ini_and_env_values_say_where_they_came_from(pytester, monkeypatch):
    pytester.makepyfile(ALWAYS_PASS)
    pytester.makeini("[pytest]\nllm_concurrency = zero\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini key llm_concurrency=zero is invalid*"])
    pytester.makeini("[pytest]\n")
    monkeypatch.setenv("LLMCHECK_MIN_PASS_RATE", "2")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*environment variable LLMCHECK_MIN_PASS_RATE=2 is invalid*"])


def test_bad_decorator_arguments_fail_at_import_naming_the_value(pytester):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(min_pass_rate=1.5)
        def test_x():
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*@llmcheck.repeat(min_pass_rate=1.5) is invalid (out of range): "
        "expected a number >= 0 and <= 1*"
    ])
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runz=5)
        def test_x():
            pass
    """)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*unknown keyword runz=5 (did you mean runs?); accepted "
                                 "keywords: runs, *"])


def test_bad_marker_arguments_error_the_item_only(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.llm(runs=0)
        def test_bad():
            pass

        @pytest.mark.llm(runs=3)
        def test_good():
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.llm(runs=0) is invalid*expected an integer >= 1*"])


def test_unmarked_tests_are_untouched(pytester):
    pytester.makepyfile("""
        def test_plain():
            assert True
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "llmcheck pass rates" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_plugin_can_be_disabled(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.llm(runs=5)
        def test_marked():
            pass
    """)
    result = pytester.runpytest("-p", "no:llmcheck",
                                "-W", "ignore::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(passed=1)
    assert "llmcheck" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_skip_inside_a_sample_skips_the_item(pytester):
    pytester.makepyfile("""
        import pytest, llmcheck

        @llmcheck.repeat(runs=5)
        def test_skips():
            pytest.skip("no model for this")
    """)
    pytester.runpytest().assert_outcomes(skipped=1)


def test_pytest_fail_inside_a_sample_is_a_sample_failure(pytester, report):
    pytester.makepyfile("""
        import pytest, llmcheck

        @llmcheck.repeat(runs=4, min_pass_rate=0.5, concurrency=1, early_stop=False)
        def test_fails_sometimes(llm_sample):
            if llm_sample.index == 0:
                pytest.fail("explicit failure")
    """)
    pytester.runpytest().assert_outcomes(passed=1)
    t = by_name(report())["test_fails_sometimes"]
    assert t["failed"] == 1 and t["samples"][0]["message"] == "explicit failure"


def test_xfail_marked_llm_tests_are_reported_with_their_reason(pytester, report):
    pytester.makepyfile("""
        import pytest, llmcheck

        @pytest.mark.xfail(reason="model invents ages")
        @llmcheck.repeat(runs=5)
        def test_known_bad():
            assert False
    """)
    result = pytester.runpytest()
    result.assert_outcomes(xfailed=1)
    assert result.ret == 0
    t = by_name(report())["test_known_bad"]
    assert t["xfail"] == "model invents ages"
    result.stdout.fnmatch_lines(["*test_known_bad*FAIL (inconclusive*) (xfail)*"])


def test_json_report_content(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=10, min_pass_rate=0.8, concurrency=2, verdict="threshold")
        def test_mix(llm_sample):
            assert llm_sample.index != 3, "sample three is wrong"
    """)
    pytester.runpytest("--llm-no-early-stop", "--llm-seed=7").assert_outcomes(passed=1)
    data = report()
    from llmcheck.records.schema import SCHEMA_VERSION, SessionRecord

    assert data["schema_version"] == SCHEMA_VERSION
    SessionRecord.model_validate(data)          # round-trips through the models
    assert data["seed"] == 7 and data["exit_status"] == 0 and data["interrupted"] is False
    assert data["options"]["no_early_stop"] == {"value": True, "source": "command line"}
    (t,) = data["tests"]
    assert t["nodeid"] == "test_json_report_content.py::test_mix"
    assert (t["settings"]["runs"], t["run"], t["passed"], t["failed"], t["errors"]) == \
        (10, 10, 9, 1, 0)
    assert t["pass_rate"] == 0.9 and t["settings"]["concurrency"] == 2 and t["duration"] > 0
    assert t["interval"]["method"] == "wilson"
    assert t["interval"]["low"] == pytest.approx(0.5958, abs=1e-4)
    v = t["verdict"]
    assert (v["outcome"], t["settings"]["verdict"], v["conclusive"]) == \
        ("passed", "threshold", False)
    assert v["stopped_early"] is False and v["stop_reason"] is None
    assert v["samples_to_conclusive"] > 10 and "0.80 required" in v["reason"]
    # Settled once the unfinished samples could no longer change it: when 8 have
    # passed (8/10 >= 0.8 whatever the rest do). With 2 in flight, the failing
    # sample 3 may finish before or after that point.
    assert v["decided_after"] in (8, 9, 10)
    assert set(t["pass_hat_k"]) == {"2", "3", "5", "10"}
    assert t["pass_hat_k"]["10"] == 0.0 and t["pass_hat_k"]["2"] == pytest.approx(0.8)
    # pass@k: 1 - C(n-c, k)/C(n, k) with n=10, c=9: any k >= 2 draws a pass
    assert t["pass_at_k"]["2"] == 1.0 and set(t["pass_at_k"]) == {"2", "3", "5", "10"}
    s3 = t["samples"][3]
    assert s3["outcome"] == "failed" and s3["message"].startswith("sample three is wrong")
    assert s3["error_type"] == "AssertionError" and "test_mix" in s3["traceback"]
    assert all(s["duration"] >= 0 for s in t["samples"])
    (group,) = t["failure_groups"]
    assert group["count"] == 1 and group["samples"] == [3]


def test_progress_is_shown_only_when_asked_or_on_a_terminal(pytester):
    pytester.makepyfile(test_p="""
        import time, llmcheck

        @llmcheck.repeat(runs=12, concurrency=1)
        def test_slowish():
            time.sleep(0.1)
    """)
    quiet = pytester.runpytest_subprocess()        # not a terminal: no progress
    assert "\b" not in quiet.stdout.str() and "passed 5" not in quiet.stdout.str()
    shown = pytester.runpytest_subprocess("--llm-progress=on")
    shown.assert_outcomes(passed=1)
    out = shown.stdout.str()
    assert "[" in out and "/12 passed" in out and "\b" in out


def test_xdist_merges_into_one_report(pytester, report):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_a="""
        import llmcheck

        @llmcheck.repeat(runs=5)
        def test_a1(): pass

        @llmcheck.repeat(runs=5)
        def test_a2(): pass
    """, test_b="""
        import llmcheck

        @llmcheck.repeat(runs=5)
        def test_b1(llm_sample): assert llm_sample.index != 0

        def test_plain(): pass
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--llm-seed=5")
    result.assert_outcomes(passed=3, failed=1)
    data = report()
    ids = sorted(t["nodeid"] for t in data["tests"])
    assert ids == ["test_a.py::test_a1", "test_a.py::test_a2", "test_b.py::test_b1"]
    assert data["seed"] == 5
    result.stdout.fnmatch_lines(["*llmcheck pass rates (seed 5)*"])
    # workers use the controller's seed: the same samples as a run without xdist
    def seeds(d):
        return {(t["nodeid"], s["index"]): s["seed"] for t in d["tests"] for s in t["samples"]}

    under_xdist = seeds(data)
    pytester.runpytest_subprocess("--llm-seed=5")
    alone = seeds(report())
    # Early stopping may launch a different number of samples; the ones both ran match.
    common = under_xdist.keys() & alone.keys()
    assert len(common) >= 12
    assert {k: under_xdist[k] for k in common} == {k: alone[k] for k in common}


def test_interrupted_session_still_writes_what_it_measured(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=5)
        def test_first(): pass

        @llmcheck.repeat(runs=20, concurrency=1)
        def test_interrupted(llm_sample):
            if llm_sample.index == 4:
                raise KeyboardInterrupt
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    data = report()
    assert data["interrupted"] is True
    tests = by_name(data)
    assert tests["test_first"]["run"] == 5
    part = tests["test_interrupted"]
    assert part["interrupted"] is True and part["run"] == 4 and part["passed"] == 4
    assert "interrupted after 4 of 20" in part["verdict"]["stop_reason"]


def test_report_file_is_written_atomically(pytester, report):
    pytester.makepyfile(ALWAYS_PASS)
    pytester.runpytest().assert_outcomes(passed=1)
    leftovers = sorted(p.name for p in (pytester.path / "reports").iterdir())
    assert leftovers == ["llmcheck.html", "llmcheck.json", "llmcheck.md"]  # no temporary file
    json.loads((pytester.path / "reports" / "llmcheck.json").read_text())


def test_library_does_not_import_pytest_or_heavy_dependencies():
    code = (
        "import sys, llmcheck, llmcheck.core.runner, llmcheck.stats, llmcheck.records.schema; "
        "llmcheck.wilson_interval(1, 2); "
        "bad = [m for m in ('pytest', 'litellm', 'pandas', 'scipy') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_test_that_can_never_pass_at_n_is_a_usage_error_not_a_verdict(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=20, min_pass_rate=0.95, verdict="interval")
        def test_strict():
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)        # a setup error of the test, before any sample
    result.stdout.fnmatch_lines([
        "*test_strict: @pytest.mark.llm: this test can never pass: interval: even 20/20 "
        "passing cannot show a rate >= 0.95 at 95% confidence; N=73 all passing could*"
    ])
    assert "llmcheck pass rates" not in result.stdout.str()   # no verdict was given


def test_a_crashed_xdist_worker_still_leaves_its_samples(pytester, report):
    pytest.importorskip("xdist")
    pytester.makepyfile("""
        import os, llmcheck

        @llmcheck.repeat(runs=20, concurrency=1, min_pass_rate=0.5)
        def test_crashes(llm_sample):
            if llm_sample.index == 6:
                os._exit(3)          # the worker process dies mid-test
            assert llm_sample.index % 3 != 0

        @llmcheck.repeat(runs=4)
        def test_fine():
            pass
    """)
    result = pytester.runpytest_subprocess("-n", "1", "-p", "no:randomly")
    assert result.ret != 0
    data = report()
    tests = by_name(data)
    crashed = tests["test_crashes"]
    assert crashed["run"] == 6 and crashed["interrupted"] is True
    assert (crashed["passed"], crashed["failed"]) == (4, 2)     # samples 0 and 3 failed
    assert "the process running it died after 6 of 20" in crashed["verdict"]["stop_reason"]
    assert tests["test_fine"]["run"] == 4
    assert any("rebuilt from the samples journaled" in w for w in data["warnings"])
    journal = pytester.path / "reports" / ".llmcheck-journal"
    assert not journal.exists() or not list(journal.iterdir())


def test_a_killed_run_leaves_its_samples_in_the_journal(pytester):
    pytester.makepyfile("""
        import os, llmcheck

        @llmcheck.repeat(runs=10, concurrency=1)
        def test_killed(llm_sample):
            if llm_sample.index == 3:
                os._exit(9)          # no sessionfinish: nothing else gets written
    """)
    pytester.runpytest_subprocess("--llm-seed=77")
    (journal,) = (pytester.path / "reports" / ".llmcheck-journal").glob("*.jsonl")
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert lines[0]["session"]["seed"] == 77
    assert lines[1]["start"].endswith("::test_killed")
    assert lines[1]["settings"]["runs"] == 10 and lines[1]["settings"]["concurrency"] == 1
    assert [e["sample"]["index"] for e in lines if "sample" in e] == [0, 1, 2]


def test_the_next_run_recovers_a_killed_runs_journal_into_its_own_report(pytester):
    pytester.makepyfile(test_killed="""
        import os, llmcheck

        @llmcheck.repeat(runs=4)
        def test_finished():
            pass

        @llmcheck.repeat(runs=10, concurrency=1)
        def test_killed(llm_sample):
            if llm_sample.index == 3:
                os._exit(9)
            assert llm_sample.index != 1
    """)
    pytester.runpytest_subprocess("--llm-seed=77", "-p", "no:randomly", "--llm-verdict=threshold")
    reports = pytester.path / "reports"
    (journal,) = (reports / ".llmcheck-journal").glob("*.jsonl")
    token = journal.name.split("-")[0]
    # the next session, in the same report directory, running something else
    pytester.makepyfile(test_killed="def test_other():\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines([f"llmcheck: recovered 2 test(s) from the journal of an earlier "
                                 f"run that was killed (session {token}) into *"
                                 f"llmcheck-recovered-{token}.json"])
    assert not (reports / ".llmcheck-journal").exists()
    from llmcheck.records.schema import load_session

    recovered = load_session(reports / f"llmcheck-recovered-{token}.json")
    assert recovered.seed == 77 and recovered.recovered_from and recovered.interrupted
    tests = {t.nodeid.split("::")[-1]: t for t in recovered.tests}
    assert tests["test_finished"].run == 4 and not tests["test_finished"].interrupted
    killed = tests["test_killed"]
    assert (killed.run, killed.passed, killed.failed, killed.interrupted) == (3, 2, 1, True)
    assert "the run was killed after 3 of 10" in killed.verdict.stop_reason
    # and it is said once: the run after that finds nothing to recover
    again = pytester.runpytest_subprocess()
    assert "recovered" not in again.stdout.str()


def test_a_journal_that_cannot_be_recovered_is_kept_and_its_path_shown(pytester):
    journal = pytester.path / "reports" / ".llmcheck-journal"
    journal.mkdir(parents=True)
    bad = journal / "deadbeef0000-main-999999999.jsonl"
    bad.write_text('{"session": {"seed": 1}}\n{"start": "t.py::test_x", "settings": {}}\n'
                   '{"nodeid": "t.py::test_x", "sample": {"index": 0, "seed": 1, '
                   '"outcome": "passed", "duration": 0.1}}\n')
    pytester.makepyfile("def test_other():\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*earlier run that was killed (session deadbeef0000) could "
                                 "not be recovered (ValidationError*); it is left at *"
                                 "deadbeef0000-main-999999999.jsonl"])
    assert bad.exists()


def test_a_run_without_llm_tests_imports_nothing_heavy(pytester):
    pytester.makeconftest("""
        import sys

        def pytest_unconfigure(config):
            heavy = ("pydantic", "llmcheck.records.schema", "llmcheck.stats",
                     "llmcheck.model.client", "litellm", "pandas", "scipy", "tabulate")
            with open("modules.txt", "w") as f:
                f.write("\\n".join(m for m in heavy if m in sys.modules))
    """)
    pytester.makepyfile("def test_plain():\n    assert True\n")
    # other plugins that import pydantic themselves (hypothesis's, langsmith's, which
    # langchain-openai brings) are turned off: this is about what llmcheck imports
    pytester.runpytest_subprocess("-p", "no:hypothesispytest", "-p", "no:langsmith_plugin"
                                  ).assert_outcomes(passed=1)
    assert (pytester.path / "modules.txt").read_text() == ""


def test_progress_appears_on_a_real_terminal_and_is_erased(pytester):
    """``auto`` shows progress on a terminal (a pty here), even though pytest's fd
    capture points fd 1 elsewhere while the test runs."""
    import os
    import pty
    import subprocess
    import sys

    pytester.makepyfile(test_p="""
        import time, llmcheck

        @llmcheck.repeat(runs=12, concurrency=1)
        def test_slowish():
            time.sleep(0.1)
    """)
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
                            cwd=pytester.path, stdin=follower, stdout=follower,
                            stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:          # the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    proc.wait()
    os.close(leader)
    out = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, out
    assert "/12 passed" in out and "\b" in out
    final_line = next(line for line in out.splitlines() if line.startswith("test_p.py"))
    assert final_line.rstrip().endswith("[100%]")
