"""The simulator as a multi-step tool-using agent: the default scenario's order-support
routes (look the order up, cancel it, answer quoting the result; a wrong tool or wrong
arguments at their stated rates), the ``after_tool`` and list ``requires_tool``
matchers, tool-call argument templates, and the schema's errors for them and for
``stream`` pacing."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from scipy.stats import binom

from llmcheck.core.context import SampleContext
from llmcheck.errors import UsageError
from llmcheck.model.proxy import FaultProxy
from llmcheck.simulator import SimulatorServer
from llmcheck.simulator.engine import Engine
from llmcheck.simulator.scenario import default_scenario, load_scenario

REQUEST = "Please cancel order 1042, it arrived damaged."
TOOLS = [{"type": "function", "function": {
    "name": name, "description": name.replace("_", " "),
    "parameters": {"type": "object", "properties": props, "required": list(props)}}}
    for name, props in (("lookup_order", {"order_id": {"type": "string"}}),
                        ("cancel_order", {"order_id": {"type": "string"},
                                          "reason": {"type": "string"}}))]
RESULTS = {"lookup_order": '{"order_id": "1042", "status": "shipped"}',
           "cancel_order": '{"order_id": "1042", "status": "cancelled"}'}


def run_agent(sdk: openai.OpenAI, seed: int) -> tuple[list[tuple[str, Any]], str | None]:
    """The openai SDK in a loop, as an app writes it: the assistant's message goes back
    as the SDK gives it (``content: null`` beside its tool calls), each tool's result as
    a ``tool`` message answering the call's id. Returns the path and the final text."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": REQUEST}]
    path: list[tuple[str, Any]] = []
    for _ in range(6):
        reply = sdk.chat.completions.create(model="sim", messages=messages, tools=TOOLS,
                                            seed=seed)
        message = reply.choices[0].message
        messages.append(message.model_dump(exclude_none=False, exclude_unset=True))
        if not message.tool_calls:
            return path, message.content
        for call in message.tool_calls:
            path.append((call.function.name, json.loads(call.function.arguments)))
            messages.append({"role": "tool", "tool_call_id": call.id,
                             "content": RESULTS[call.function.name]})
    return path, None


def first_steps(seeds: range) -> list[Any]:
    engine = Engine(default_scenario())
    return [engine.decide({"model": "m", "seed": seed, "tools": TOOLS, "messages": [
        {"role": "user", "content": REQUEST}]}).answers[0] for seed in seeds]


def test_three_steps_with_the_openai_sdk_recorded_through_the_proxy():
    good = next(s for s, a in zip(range(50), first_steps(range(50)), strict=True)
                if a.label is None)
    ctx = SampleContext(index=0, seed=good)
    with SimulatorServer() as sim, FaultProxy(sim.url) as px:
        sdk = openai.OpenAI(base_url=px.sample_url(ctx.token), api_key="sk-x", max_retries=0)
        path, final = run_agent(sdk, good)
        routes = [r["route"] for r in sim.recent_requests]
    assert path == [("lookup_order", {"order_id": "1042"}),
                    ("cancel_order", {"order_id": "1042", "reason": "customer request"})]
    assert final == f"Order 1042 is cancelled. The system says: {RESULTS['cancel_order']}"
    assert routes == ["order_lookup", "order_cancel", "order_final"]
    assert [c.via for c in ctx.calls] == ["proxy"] * 3 and all(c.error is None
                                                               for c in ctx.calls)


def test_wrong_tool_and_wrong_arguments_come_at_their_stated_rates():
    n = 1500
    labels = [a.label for a in first_steps(range(n))]
    assert all(a.tool_calls for a in first_steps(range(20)))  # step 1 always calls a tool
    engine = Engine(default_scenario())
    second = []
    for seed in range(n):
        history = [{"role": "user", "content": REQUEST},
                   {"role": "assistant", "content": None, "tool_calls": [{
                       "id": f"call_{seed}", "type": "function", "function": {
                           "name": "lookup_order", "arguments": '{"order_id": "1042"}'}}]},
                   {"role": "tool", "tool_call_id": f"call_{seed}",
                    "content": RESULTS["lookup_order"]}]
        answer = engine.decide({"model": "m", "seed": seed, "tools": TOOLS,
                                "messages": history}).answers[0]
        second.append((answer.label, json.loads(answer.tool_calls[0].arguments)["order_id"]))
    low, high = binom.ppf([0.0005, 0.9995], n, 0.10)  # 99.9% of seeded runs fall inside
    wrong_tool = labels.count("wrong_tool")
    wrong_args = sum(1 for label, _ in second if label == "wrong_arguments")
    assert low <= wrong_tool <= high and labels.count(None) == n - wrong_tool
    assert low <= wrong_args <= high
    assert {order for label, order in second if label == "wrong_arguments"} == {"1024"}
    assert {order for label, order in second if label is None} == {"1042"}


@pytest.mark.parametrize("messages, route", [
    # a tool result whose call is found by its id: the route of that tool's step
    ([{"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "cancel_order",
                                                     "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "a", "content": "done"}], "order_final"),
    # the older function role names its tool itself
    ([{"role": "function", "name": "lookup_order", "content": "{}"}], "order_cancel"),
    # a result whose call is not in the conversation matches no after_tool route
    ([{"role": "tool", "tool_call_id": "missing", "content": "{}"}], "order_lookup"),
])
def test_after_tool_matches_the_tool_whose_result_the_last_message_is(messages, route):
    engine = Engine(default_scenario())
    history = [{"role": "user", "content": REQUEST}, *messages]
    assert engine.match(history, {"lookup_order", "cancel_order"})[0] == route
    # every tool must be offered: with one of the two the agent routes do not match
    assert engine.match(history, {"lookup_order"})[0] == "default"


def test_templated_arguments_stay_json_whatever_the_request_says():
    scenario = load_scenario({"default": {"answers": [{"template": True, "tool_call": {
        "name": "echo", "arguments": {"said": "{{last_user}}"}}}]}})
    said = 'a "quoted" back\\slash and\nnewline {{model}}'
    answer = Engine(scenario).decide({"model": "m", "messages": [
        {"role": "user", "content": said}]}).answers[0]
    assert json.loads(answer.tool_calls[0].arguments) == {"said": said}


def _route(**fields: Any) -> dict[str, Any]:
    return {"routes": [{"name": "r", "answers": ["x"], **fields}]}


@pytest.mark.parametrize("data, expected", [
    ({"stream": {}}, "give `ttft_ms`, `gap_ms` or both"),
    ({"stream": {"ttft": {"ms": 5}}}, "stream.ttft: unknown key; allowed: gap_ms, ttft_ms"),
    ({"stream": {"gap_ms": {"median_ms": 0}}}, "stream.gap_ms.median_ms: Input should be "
     "greater than 0"),
    ({"stream": {"ttft_ms": {"median_ms": 50, "p95_ms": 20}}}, "`p95_ms` (20.0) must be >= "
     "`median_ms` (50.0)"),
    ({"stream": {"ttft_ms": 80}}, "stream.ttft_ms: Input should be a valid dictionary"),
    (_route(match="x", stream={"gap_ms": {"ms": -1}}), "routes[0].stream.gap_ms.ms: Input "
     "should be greater than or equal to 0"),
    (_route(), "`match` needs at least one pattern (only a route with `after_tool`"),
    (_route(match="x", requires_tool=[]), "`requires_tool` is a tool name or a non-empty list"),
    (_route(match="x", after_tool=""), "after_tool"),
    ({"default": {"answers": [{"template": True, "tool_call": {
        "name": "f", "arguments": {"id": "{{order}}"}}}]}}, "unknown placeholder {{order}}"),
])
def test_bad_tool_loop_and_stream_keys_are_usage_errors(data, expected):
    with pytest.raises(UsageError) as info:
        load_scenario(data)
    assert expected in str(info.value)


def test_a_route_may_leave_match_out_after_a_tool():
    scenario = load_scenario(_route(after_tool="search"))
    history = [{"role": "user", "content": "anything"},
               {"role": "tool", "name": "search", "content": "[]"}]
    assert Engine(scenario).match(history)[0] == "r"
    assert Engine(scenario).match(history[:1])[0] == "default"
