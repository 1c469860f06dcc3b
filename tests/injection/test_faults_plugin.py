"""Fault injection through the plugin: @llmcheck.faults, --llm-faults, llm_faults, and
apps that call the model themselves through llm_endpoint (openai SDK, litellm,
LangChain), with their calls attributed, counted, seeded, cached and faulted."""

from __future__ import annotations

import json

import pytest
from helpers import by_name

LLM_FIXTURE = """
import llmcheck

@llmcheck.repeat(runs=30, verdict="threshold", min_pass_rate=0.5, early_stop=False)
@llmcheck.faults(rate_limit=0.3, server_error=0.1, retry_after=0.01)
def test_llm_client(llm):
    assert "Paris" in llm("What is the capital of France?").text
"""

NAIVE_APP = """
import litellm
from litellm import completion          # bound before any fault is installed
import llmcheck

def ask(endpoint):
    return completion(model=endpoint.config.model, api_base=endpoint.config.api_base,
                      api_key="sk-sim", num_retries=0, max_retries=0,
                      messages=[{"role": "user", "content": "What is the capital of France?"}])

@llmcheck.repeat(runs=40, verdict="threshold", min_pass_rate=0.5, early_stop=False)
@llmcheck.faults(rate_limit=0.3, seed=7)
def test_naive(llm_endpoint):
    assert "Paris" in ask(llm_endpoint).choices[0].message.content
"""


def test_faults_reach_the_llm_client_which_retries_them(pytester, report, model_stack):
    pytester.makepyfile(LLM_FIXTURE)
    pytester.runpytest("--llm-seed=3").assert_outcomes(passed=1)
    test = by_name(report())["test_llm_client"]
    assert test["fault_plan"] == "rate_limit:0.3,server_error:0.1 (seed 0)"
    injected = [f for s in test["samples"] for f in s["faults"]]
    assert injected and {f["kind"] for f in injected} <= {"rate_limit", "server_error"}
    assert {f["via"] for f in injected} == {"in-process"}
    assert test["passed"] == 30                       # the client's retries ride them out
    assert sum(c["retries"] for s in test["samples"] for c in s["calls"]) == len(injected)
    # every fault was recovered from (the client's retry got an answer): each sample is
    # judged as a clean one, and each kind's row counts its recoveries
    assert all(f["recovered"] for f in injected)
    kinds = {row["kind"]: row for row in test["faults"]}
    assert kinds["none"]["samples"] == kinds["none"]["passed"] == 30
    for kind in {f["kind"] for f in injected}:
        assert kinds[kind]["samples"] == 0
        assert kinds[kind]["recovered"] == sum(
            1 for s in test["samples"] if any(f["kind"] == kind for f in s["faults"]))


def test_code_that_imported_completion_early_fails_naming_the_fault(pytester, report,
                                                                      model_stack):
    pytester.makepyfile(NAIVE_APP)
    result = pytester.runpytest("--llm-seed=5")
    result.assert_outcomes(passed=1)
    test = by_name(report())["test_naive"]
    failed = [s for s in test["samples"] if s["outcome"] == "failed"]
    faulted = [s for s in test["samples"] if s["faults"]]
    assert failed and [s["index"] for s in failed] == [s["index"] for s in faulted]
    for sample in failed:
        assert sample["message"].startswith("under injected rate_limit: ")
        assert sample["error_type"] == "litellm.exceptions.RateLimitError"
    rows = {row["kind"]: row for row in test["faults"]}
    assert rows["rate_limit"]["passed"] == 0 and rows["none"]["failed"] == 0
    # roughly 30% of the samples (their only call) were rate-limited
    assert 3 <= rows["rate_limit"]["samples"] <= 24
    result.stdout.fnmatch_lines(["pass rate by injected fault*",
                                 "*test_naive: rate_limit 0/*, none */*"])


def test_the_same_seed_injects_the_same_faults(pytester, report, model_stack):
    pytester.makepyfile(NAIVE_APP)
    runs = []
    for _ in range(2):
        pytester.runpytest("--llm-seed=11", "--llm-concurrency=8")
        runs.append([(s["index"], [f["kind"] for f in s["faults"]], s["outcome"])
                     for s in by_name(report())["test_naive"]["samples"]])
    assert runs[0] == runs[1]
    pytester.runpytest("--llm-seed=12")
    other = [(s["index"], [f["kind"] for f in s["faults"]], s["outcome"])
             for s in by_name(report())["test_naive"]["samples"]]
    assert other != runs[0]


def test_the_option_applies_to_tests_without_a_plan_and_a_plan_wins(pytester, report,
                                                                    model_stack):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=20, verdict="threshold", min_pass_rate=0.1)
        def test_plain(llm):
            llm("What is the capital of France?")

        @llmcheck.repeat(runs=20, verdict="threshold", min_pass_rate=0.1)
        @llmcheck.faults(empty=0.5)
        def test_own(llm):
            llm("What is the capital of France?")
    """)
    pytester.runpytest("--llm-faults=refusal:0.5", "--llm-seed=1").assert_outcomes(passed=2)
    tests = by_name(report())
    assert {f["kind"] for s in tests["test_plain"]["samples"] for f in s["faults"]} == \
        {"refusal"}
    assert {f["kind"] for s in tests["test_own"]["samples"] for f in s["faults"]} == {"empty"}


def test_llm_faults_fixture_changes_the_running_samples_plan(pytester, report, model_stack):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=6, verdict="threshold", min_pass_rate=0.5)
        def test_fixture(llm, llm_faults):
            with llm_faults.off():
                assert "Paris" in llm("What is the capital of France?").text
            with llm_faults(empty=1.0) as plan:
                assert llm("What is the capital of France?").text == ""
            assert plan.rates == {"empty": 1.0} and llm_faults.plan is None
            assert [(f.call, f.kind) for f in llm_faults.injected] == [(1, "empty")]
    """)
    pytester.runpytest("--llm-no-early-stop").assert_outcomes(passed=1)
    test = by_name(report())["test_fixture"]
    assert test["passed"] == 6 and all(len(s["faults"]) == 1 for s in test["samples"])


@pytest.mark.parametrize(("source", "message"), [
    ("@llmcheck.repeat(runs=3)\n@llmcheck.faults(ratelimit=0.3)",
     "*@llmcheck.faults: unknown fault kind 'ratelimit' (did you mean rate_limit?); the kinds "
     "are rate_limit, timeout*"),
    ("@llmcheck.repeat(runs=3)\n@llmcheck.faults(rate_limit=0.7, timeout=0.5)",
     "*fault rates add up to 1.2, more than 1*"),
    ("@llmcheck.faults(rate_limit=0.3)",
     "*@llmcheck.faults injects faults into the samples of an LLM test; add "
     "@llmcheck.repeat(...)*"),
])
def test_a_bad_plan_names_what_is_wrong(pytester, source, message):
    pytester.makepyfile(f"import llmcheck\n\n{source}\ndef test_x(llm):\n    pass\n")
    result = pytester.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines([message])


def test_a_bad_option_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--llm-faults=rate_limit:2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llm-faults=rate_limit:2 is invalid (fault rate "
                                 "rate_limit=2.0 must be a number from 0 to 1)*"])


# -- apps with their own client, through llm_endpoint ---------------------------

OPENAI_APP = """
import openai
import pytest
import llmcheck

@pytest.fixture(scope="session")
def client(llm_endpoint):      # built once, before any sample, as an app does
    return openai.OpenAI(base_url=llm_endpoint.base_url, api_key=llm_endpoint.api_key,
                         max_retries=0)

@llmcheck.repeat(runs=24, verdict="threshold", min_pass_rate=0.3, early_stop=False)
@llmcheck.faults(rate_limit=0.25, seed=2)
def test_sdk(client, llm_endpoint):
    reply = client.chat.completions.create(
        model=llm_endpoint.model, messages=[{"role": "user",
                                             "content": "What is the capital of France?"}])
    assert "Paris" in reply.choices[0].message.content
"""


def test_an_openai_sdk_app_is_counted_seeded_and_faulted_per_sample(pytester, report,
                                                                     model_stack):
    pytester.makepyfile(OPENAI_APP)
    result = pytester.runpytest("--llm-seed=4")
    result.assert_outcomes(passed=1)
    data = report()
    test = by_name(data)["test_sdk"]
    for sample in test["samples"]:
        assert len(sample["calls"]) == 1 and sample["calls"][0]["via"] == "proxy"
        call = sample["calls"][0]
        if sample["faults"]:
            assert [f["via"] for f in sample["faults"]] == ["proxy"]
            assert call["fault"] == "rate_limit" and sample["outcome"] == "failed"
            assert sample["error_type"] == "openai.RateLimitError"
        else:
            assert call["fault"] is None and call["completion_tokens"] > 0
            assert sample["outcome"] == "passed"
    assert test["usage"]["calls"] == 24
    # the terminal table counts the app's calls: its "calls" column reads 24
    lines = result.stdout.str().splitlines()
    header = next(line for line in lines if line.startswith("test ") and " calls " in line)
    row = next(line for line in lines if "::test_sdk " in line)
    at = header.index(" calls ") + 1  # by position: headers and cells may hold spaces
    assert row[at:].split()[0] == "24"


def test_a_real_provider_failure_is_an_error_not_a_failure(pytester, report, model_stack,
                                                           tmp_path):
    scenario = tmp_path / "storm.yaml"
    scenario.write_text("errors:\n  server_error: 1.0\n")
    pytester.makepyfile(OPENAI_APP.replace("@llmcheck.faults(rate_limit=0.25, seed=2)\n", ""))
    pytester.runpytest(f"--llm-scenario={scenario}", "--llm-runs=4")
    test = by_name(report())["test_sdk"]
    assert test["errors"] == 4 and test["failed"] == 0
    for sample in test["samples"]:
        assert sample["outcome"] == "error" and sample["provider_failures"]
        assert sample["message"].startswith("the provider failed (")


def test_app_calls_are_replayed_from_the_cache(pytester, report, model_stack):
    pytester.makepyfile(OPENAI_APP.replace("@llmcheck.faults(rate_limit=0.25, seed=2)\n", ""))
    pytester.runpytest("--llm-cache=write", "--llm-runs=5").assert_outcomes(passed=1)
    written = by_name(report())["test_sdk"]
    pytester.runpytest("--llm-cache=read", "--llm-runs=5").assert_outcomes(passed=1)
    replayed = by_name(report())["test_sdk"]
    assert [c["cached"] for s in replayed["samples"] for c in s["calls"]] == [True] * 5
    assert [s["calls"][0]["completion_tokens"] for s in replayed["samples"]] == \
        [s["calls"][0]["completion_tokens"] for s in written["samples"]]


def test_a_langchain_chat_model_is_counted_and_faulted_per_sample(pytester, report,
                                                                  model_stack):
    pytest.importorskip("langchain_openai")
    pytester.makepyfile("""
        import pytest
        from langchain_openai import ChatOpenAI
        import llmcheck

        @pytest.fixture(scope="module")
        def chat(llm_endpoint):
            return ChatOpenAI(base_url=llm_endpoint.base_url, api_key=llm_endpoint.api_key,
                              model=llm_endpoint.model, temperature=0, max_retries=0)

        @llmcheck.repeat(runs=20, verdict="threshold", min_pass_rate=0.3, early_stop=False)
        @llmcheck.faults(server_error=0.3, seed=3)
        def test_chain(chat):
            assert "Paris" in chat.invoke("What is the capital of France?").content
    """)
    pytester.runpytest("--llm-seed=9").assert_outcomes(passed=1)
    test = by_name(report())["test_chain"]
    assert test["usage"]["calls"] == 20
    faulted = [s for s in test["samples"] if s["faults"]]
    assert faulted and all(s["outcome"] == "failed"  # LangChain wraps openai's error
                           and s["message"].startswith("under injected server_error: ")
                           for s in faulted), [(s["error_type"], s["message"]) for s in faulted]
    assert all(s["outcome"] == "passed" for s in test["samples"] if not s["faults"])


def test_the_reports_show_the_rate_per_fault(pytester, report, model_stack):
    pytester.makepyfile(NAIVE_APP)
    pytester.runpytest("--llm-seed=5")
    markdown = (pytester.path / "reports" / "llmcheck.md").read_text()
    assert "### Faults injected" in markdown and "when rate-limited" in markdown
    html = (pytester.path / "reports" / "llmcheck.html").read_text()
    assert "Faults injected" in html
    data = json.loads((pytester.path / "reports" / "llmcheck.json").read_text())
    from llmcheck.records.schema import SCHEMA_VERSION

    assert data["schema_version"] == SCHEMA_VERSION >= 6
