"""Checks inside LLM tests: per-check counts in the terminal and the JSON report."""

from __future__ import annotations

import json

import pytest
from helpers import by_name

from llmcheck.records.schema import SCHEMA_VERSION


def test_per_check_counts_in_terminal_and_json(pytester, report):
    pytester.makepyfile("""
        import llmcheck
        from pydantic import BaseModel

        class Person(BaseModel):
            name: str
            age: int

        ANSWERS = ['{"name": "Ada", "age": 36}'] * 14 + ['{"name": "Ada"}'] * 4 + \\
                  ['{"name": "Ada", "age": 36, "bio": "' + "word " * 60 + '"}'] * 2

        @llmcheck.repeat(runs=20, min_pass_rate=0.9, concurrency=1, early_stop=False)
        def test_person(llm_sample):
            answer = ANSWERS[llm_sample.index]
            with llmcheck.soft():
                llmcheck.assert_schema(answer, Person)
                llmcheck.assert_length(answer, max_words=50)
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*checks that failed (per sample):*",
        "*schema(Person)  failed 4 of 20 (pass rate 0.80*samples 14, 15, 16, 17)*age*",
        "*max_words(50)  failed 2 of 20 (pass rate 0.90*samples 18, 19)*",
    ])
    result.stdout.fnmatch_lines([
        "*failing checks (samples failed / evaluated):*",
        "*test_person: schema(Person) 4/20, max_words(50) 2/20*",
    ])
    data = report()
    assert data["schema_version"] == SCHEMA_VERSION
    t = by_name(data)["test_person"]
    checks = {c["name"]: c for c in t["checks"]}
    assert checks["schema(Person)"]["failed"] == 4
    assert checks["schema(Person)"]["failed_samples"] == [14, 15, 16, 17]
    assert checks["schema(Person)"]["evaluated"] == 20
    assert checks["schema(Person)"]["interval"]["low"] == pytest.approx(0.5840, abs=1e-4)
    assert checks["max_words(50)"]["failed"] == 2
    assert checks["max_words(50)"]["failed_samples"] == [18, 19]
    sample = t["samples"][14]
    assert [c["name"] for c in sample["checks"]] == ["schema(Person)", "max_words(50)"]
    assert [c["passed"] for c in sample["checks"]] == [False, True]
    assert sample["checks"][1]["value"] <= 50
    assert "age" in sample["checks"][0]["message"]


def test_a_check_that_fails_stops_the_sample_without_soft(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=4, min_pass_rate=0.0, concurrency=1, early_stop=False)
        def test_hard(llm_sample):
            llmcheck.assert_contains("hello world", ["missing"])
            llmcheck.assert_length("hello world", max_words=5)
    """)
    pytester.runpytest().assert_outcomes(passed=1)
    t = by_name(report())["test_hard"]
    assert [c["name"] for c in t["checks"]] == ["contains_all(['missing'])"]
    assert t["failed"] == 4


def test_golden_cases_are_items_and_aggregate(pytester, report):
    pytester.makefile(".yaml", cases="""
        - {name: one, input: "1", expected: "1"}
        - {name: two, input: "2", expected: "2"}
        - {name: three, input: "3", expected: "x", xfail: the model cannot count to three}
    """)
    pytester.makepyfile("""
        import pytest, llmcheck

        @pytest.mark.parametrize("case", llmcheck.cases("cases.yaml"))
        @llmcheck.repeat(runs=5, min_pass_rate=0.8, early_stop=False)
        def test_echo(case):
            llmcheck.assert_golden(case.input, case.expected, method="exact")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, xfailed=1)
    data = report()
    assert sorted(by_name(data)) == ["test_echo[one]", "test_echo[three]", "test_echo[two]"]
    (agg,) = data["aggregates"]
    assert agg["test"].endswith("::test_echo")
    assert (agg["cases"], agg["cases_passed"], agg["passed"], agg["failed"]) == (3, 2, 10, 5)
    result.stdout.fnmatch_lines(["*test (all cases)*", "*::test_echo*3*2/3*10*5*0.67*"])


def test_bad_check_arguments_stop_the_test_as_a_usage_error(pytester):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=10)
        def test_broken(llm_sample):
            llmcheck.assert_schema('{"a": 1}', {"type": "no-such-type"})
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "llmcheck: " in out and "schema" in out.lower()
    assert "scored samples passed" not in out   # no verdict on the model: the test is broken


def test_judge_and_semantic_through_the_simulator(pytester, report, model_stack):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=20, min_pass_rate=0.5)
        def test_judged(llm):
            reply = llm("Summarize the Apollo 11 moon landing in one sentence.")
            llmcheck.assert_judge(reply, "Mentions Apollo 11 and the year 1969.",
                                  threshold=0.7)

        @llmcheck.repeat(runs=3, min_pass_rate=1.0)
        def test_semantic(llm):
            llmcheck.assert_golden("The capital of France is Paris.",
                                   "Paris is the capital of France.", method="semantic",
                                   threshold=0.5)
    """)
    result = pytester.runpytest("--llm-seed=11", "--llm-no-early-stop")
    data = report()
    judged = by_name(data)["test_judged"]
    # the judge's replies: mostly confident, some harsh (failures), a few unparseable:
    # those are errors (the judge failed), never passes
    outcomes = {s["outcome"] for s in judged["samples"]}
    assert "passed" in outcomes
    for s in judged["samples"]:
        if s["outcome"] == "error":
            assert "JudgeError" in s["error_type"] and "no JSON" in s["message"]
    assert all(len(s["calls"]) == 2 for s in judged["samples"])   # the answer + the judge
    semantic = by_name(data)["test_semantic"]
    assert semantic["passed"] == 3
    assert semantic["checks"][0]["name"].startswith("golden.semantic")
    assert semantic["checks"][0]["pass_rate"] == 1.0
    judge_checks = {c["name"] for c in judged["checks"]}
    assert any(name.startswith("judge(") for name in judge_checks)
    result.stdout.fnmatch_lines(["*test_judged*", "*test_semantic*"])


def test_an_unparseable_judge_is_an_error_never_a_pass(pytester, report, model_stack,
                                                       tmp_path):
    scenario = tmp_path / "judge.yaml"
    scenario.write_text(
        "name: prose-judge\n"
        "latency: {ms: 0}\n"
        "routes:\n"
        "  - name: judge\n"
        "    match: ['<rubric>']\n"
        "    answers: ['Looks great to me!']\n"
        "default:\n"
        "  answers: ['Apollo 11 landed on the Moon in 1969.']\n"
    )
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=5, min_pass_rate=0.5, early_stop=False)
        def test_judged(llm):
            llmcheck.assert_judge(llm("Summarize Apollo 11."), "Mentions 1969.")
    """)
    result = pytester.runpytest(f"--llm-scenario={scenario}")
    result.assert_outcomes(errors=1)
    t = by_name(report())["test_judged"]
    assert (t["passed"], t["failed"], t["errors"]) == (0, 0, 5)
    assert t["verdict"]["outcome"] == "error"
    assert all("JudgeError" in s["error_type"] for s in t["samples"])


def test_version_1_reports_are_migrated(tmp_path):
    from llmcheck.records.schema import load_session

    v1 = {"schema_version": 1, "llmcheck_version": "0.1.0",
          "started": "2026-11-29T00:00:00Z", "seed": 1, "tests": []}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(v1))
    session = load_session(path)
    assert session.schema_version == SCHEMA_VERSION and session.aggregates == []
