"""Tool faults: a tool raises, times out or returns garbage at a seeded rate; the draws
follow the sample's seed and nothing else; each fault is recorded on the sample with
via="tool", never recovered, and the report's per-kind fault table counts them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import by_name

import llmcheck
from llmcheck.core import context
from llmcheck.core.context import SampleContext
from llmcheck.core.outcome import judge_faults
from llmcheck.episodes.faults import ToolFaultPlan, garbage, tool_fault_plan
from llmcheck.model.client import LLMClient, ModelConfig, ModelSession
from llmcheck.records.schema import FaultRecord

PINGER = {
    "name": "pinger", "seed": 1, "latency": {"ms": 0},
    "routes": [{"name": "ping", "match": ["keep pinging"],
                "answers": [{"tool_call": {"name": "ping", "arguments": {}}}]}],
    "default": {"answers": [{"text": "A short answer."}]},
}
"""A model that calls ``ping`` at every step, whatever the tool answered."""

MIX = "tool_error:0.3,tool_timeout:0.2,tool_garbage:0.2"


@pytest.fixture(scope="module")
def pinger(model_stack):
    from llmcheck.simulator import SimulatorServer

    with SimulatorServer(scenario=PINGER) as server:
        yield server


def client(server) -> LLMClient:
    return LLMClient(ModelConfig(model="openai/llmcheck-sim", api_base=server.url, retries=0,
                                 simulated=True, timeout=30), ModelSession())


def pinging(server, seed: int, ran: list, **kwargs) -> tuple[llmcheck.Episode, SampleContext]:
    """A 12-step ping episode inside a sample of seed ``seed``."""

    def ping() -> str:
        ran.append(1)
        return "pong"

    ctx = SampleContext(index=0, seed=seed)
    token = context._set(ctx)
    try:
        episode = llmcheck.run_tool_loop(client(server), "keep pinging", [ping], max_steps=12,
                                         **kwargs)
    finally:
        context._reset(token)
    return episode, ctx


def test_plans_read_the_tool_kinds_and_only_those():
    plan = tool_fault_plan("tool_error:0.2, tool_garbage=0.1", seed=4, tools=["ping"])
    assert isinstance(plan, ToolFaultPlan) and plan.seed == 4 and plan.tools == ("ping",)
    assert plan.rates == {"tool_error": 0.2, "tool_garbage": 0.1}
    assert tool_fault_plan(tool_timeout=0.5).rates == {"tool_timeout": 0.5}
    assert tool_fault_plan("none") is None and tool_fault_plan(plan) is plan
    bad = {
        "rate_limit:0.2": "unknown fault kind 'rate_limit'; the kinds are tool_error, "
                          "tool_timeout, tool_garbage",
        "tool_error:2": "tool_error=2.0 must be a number from 0 to 1",
        "tool_error:0.7,tool_garbage:0.7": "add up to 1.4",
        "tool_error": "write KIND:RATE, e.g. tool_error:0.3",
    }
    for spec, message in bad.items():
        with pytest.raises(llmcheck.UsageError) as info:
            llmcheck.tool_faults(spec)
        assert message in str(info.value) and str(info.value).startswith(
            "@llmcheck.tool_faults: "), spec
    with pytest.raises(llmcheck.UsageError, match="tools='ping' must be a list of tool names"):
        tool_fault_plan("tool_error:0.1", tools="ping")
    with pytest.raises(llmcheck.UsageError, match="is a provider fault plan"):
        tool_fault_plan(llmcheck.FaultPlan.parse("rate_limit:0.1"))
    with pytest.raises(llmcheck.UsageError, match="needs rates"):
        llmcheck.tool_faults(lambda: None)  # type: ignore[arg-type]
    # a provider plan refuses tool kinds, and says where they go
    with pytest.raises(llmcheck.UsageError, match=r"a tool fault goes in @llmcheck.tool_faults"):
        llmcheck.faults("tool_error:0.2")


def test_the_draws_follow_the_sample_seed_and_nothing_else(pinger):
    runs = []
    for seed in (5, 5, 6):
        ran: list = []
        episode, ctx = pinging(pinger, seed, ran, tool_faults=MIX, tool_timeout=4)
        runs.append([call.fault for call in episode.tool_calls])
        # the sample's record: one FaultRecord per injected fault, numbered by invocation
        assert [(f.call, f.kind, f.via) for f in ctx.faults] == [
            (n, kind, "tool") for n, kind in enumerate(runs[-1]) if kind]
        assert len(ran) == runs[-1].count(None)  # a faulted tool never runs
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    kinds = {kind for run in runs for kind in run}
    assert kinds == {None, "tool_error", "tool_timeout", "tool_garbage"}
    # the draw is the plan's: a function of (plan seed, sample seed, invocation number)
    plan = tool_fault_plan(MIX)
    assert runs[0] == [plan.draw_for("ping", 5, n) for n in range(12)]
    assert runs[0] != [tool_fault_plan(MIX, seed=1).draw_for("ping", 5, n) for n in range(12)]


def test_what_each_fault_does_to_the_invocation(pinger):
    ran: list = []
    episode, ctx = pinging(pinger, 5, ran, tool_faults=MIX, tool_timeout=4)
    seen = set()
    for n, call in enumerate(episode.tool_calls):
        seen.add(call.fault)
        if call.fault == "tool_error":
            assert call.error == "RuntimeError: ping failed" and call.result is None
        elif call.fault == "tool_timeout":
            # reported as timed out after the tool's timeout, without waiting for it
            assert call.error == "ToolTimeout: ping did not return within 4 s"
            assert call.duration == 0.0
        elif call.fault == "tool_garbage":
            assert call.error is None and call.result == garbage(tool_fault_plan(MIX), 5, n)
            assert call.result != "pong"
        else:
            assert call.result == "pong" and call.error is None
    assert seen == {None, "tool_error", "tool_timeout", "tool_garbage"}
    # the model was told each error; the last step's, if any, went unanswered
    tool_messages = [m["content"] for m in episode.messages if m["role"] == "tool"]
    assert tool_messages == [f"error: {c.error}" if c.error else c.result
                             for c in episode.tool_calls]
    # never recovered, even though later requests of the sample got answers
    judged = judge_faults(ctx.faults, answers=list(range(30)))
    assert judged and not any(f.recovered for f in judged)


def test_faults_can_be_limited_to_some_tools(pinger):
    ran: list = []
    episode, ctx = pinging(pinger, 5, ran, tool_faults=tool_fault_plan(
        "tool_error:1", tools=["search"]))
    assert ctx.faults == [] and len(ran) == 12
    episode, ctx = pinging(pinger, 5, ran, tool_faults=tool_fault_plan(
        "tool_error:1", tools=["ping"]))
    assert [f.kind for f in ctx.faults] == ["tool_error"] * 12


def test_tool_faults_leave_provider_fault_recovery_alone():
    faults = [FaultRecord(call=0, kind="rate_limit", via="in-process"),
              FaultRecord(call=1, kind="tool_garbage", via="tool")]
    judged = judge_faults(faults, answers=[1])
    assert [f.recovered for f in judged] == [True, False]


AGENT_SUITE = """
import llmcheck

def get_weather(city: str, unit: str = "celsius") -> dict:
    \"\"\"Current weather for a city.\"\"\"
    return {"city": city, "temp_c": 18}

@llmcheck.repeat(runs=24, verdict="threshold", min_pass_rate=0.3, early_stop=False)
@llmcheck.tool_faults("tool_error:0.25,tool_garbage:0.25", seed=1)
def test_weather_agent(llm):
    episode = llmcheck.run_tool_loop(llm, "What's the weather in Paris?", [get_weather],
                                     temperature=0)
    assert "18" in episode.final_text

@llmcheck.tool_faults(tool_error=0.5)
def test_not_an_llm_test():
    pass
"""


DOCS = Path(__file__).resolve().parents[2] / "docs" / "tool-loops.md"


def doc_example() -> str:
    """The first python block of docs/tool-loops.md: the loop runner's example."""
    return DOCS.read_text(encoding="utf-8").split("```python\n", 1)[1].split("```", 1)[0]


def test_a_plugin_run_reports_tool_faults_per_kind(pytester, report, model_stack):
    """One session: the docs page's example passes, and a test under tool faults gets
    per-kind rows, its plan, and the episode on every sample."""
    pytester.makepyfile(test_agent=AGENT_SUITE, test_doc_example=doc_example())
    result = pytester.runpytest("--llm-seed=7", "--llm-runs=24", "-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)  # the misplaced decorator fails at setup
    tests = by_name(report())
    for name in ("test_the_weather_agent_answers_from_the_tool",
                 "test_the_agent_gets_a_turn_after_every_tool_failure"):
        assert tests[name]["verdict"]["outcome"] == "passed"
    faulted = tests["test_the_agent_gets_a_turn_after_every_tool_failure"]
    assert {f["kind"] for s in faulted["samples"] for f in s["faults"]} == {
        "tool_error", "tool_timeout"}
    result.stdout.fnmatch_lines(["*test_not_an_llm_test: @llmcheck.tool_faults injects faults "
                                 "into the samples of an LLM test*"])
    test = tests["test_weather_agent"]
    assert test["fault_plan"] == "tool_error:0.25,tool_garbage:0.25 (seed 1)"
    rows = {row["kind"]: row for row in test["faults"]}
    assert set(rows) == {"tool_error", "tool_garbage", "none"}
    for kind in ("tool_error", "tool_garbage"):  # the agent passes the garbage on: it fails
        assert rows[kind]["samples"] > 0 and rows[kind]["passed"] == 0
        assert rows[kind]["recovered"] == 0
    assert rows["none"]["passed"] == rows["none"]["samples"] > 0
    for sample in test["samples"]:
        assert {f["via"] for f in sample["faults"]} <= {"tool"}
        assert sample["outcome"] == ("failed" if sample["faults"] else "passed")
        # the episode and its wall time are on every sample
        assert sample["episode"]["source"] == "loop"
        assert sample["episode"]["tools"] == ["get_weather"]
        assert sample["episode"]["steps"] == 2
        assert sample["episode"]["stop_reason"] == "final_answer"
        assert sample["episode"]["tool_errors"] == sum(
            f["kind"] == "tool_error" for f in sample["faults"])
        assert 0 < sample["durations"]["episode"] <= sample["durations"]["total"]
    # the terminal's fault line names the tool kinds beside the clean samples
    result.stdout.fnmatch_lines(["*test_weather_agent*tool_error 0/*tool_garbage 0/*none *"])
    reports = pytester.path / "reports"
    assert re.search(r"\| 0/\d+ under tool\\_error", (reports / "llmcheck.md").read_text())
    assert "the tool raises instead of running" in (reports / "llmcheck.html").read_text()
