"""The tool loop runner and tools from functions: the schema a model sees, arguments
validated before a tool runs (and a misfit told to the model), every stop reason, the
episode budget, sync and async tools and loops, tool timeouts, and the episode on the
running sample. The model is the simulator over real HTTP, playing a scripted agent."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Literal, Optional

import pytest
from pydantic import BaseModel

import llmcheck
from llmcheck.episodes.tools import Tool
from llmcheck.model.client import LLMClient, ModelConfig, ModelSession

AGENT = {
    "name": "agent", "seed": 1, "latency": {"ms": 0},
    "models": ["llmcheck-sim", "gpt-4o-mini"],
    "routes": [
        {"name": "ping", "match": ["keep pinging"],
         "answers": [{"tool_call": {"name": "ping", "arguments": {}}}]},
        {"name": "failed", "scope": "conversation", "match": ["(?m)^tool: error: "],
         "answers": [{"text": "Sorry, a tool failed."}]},
        {"name": "refunded", "scope": "conversation",
         "match": [r"(?m)^tool: refunded (?P<amount>[\d.]+)"],
         "answers": [{"text": "Refund of {{amount}} issued for order A1.", "template": True}]},
        {"name": "refund", "scope": "conversation", "match": ['(?m)^tool: {"order_id": "A1"'],
         "requires_tool": "refund",
         "answers": [{"tool_call": {"name": "refund",
                                    "arguments": {"order_id": "A1", "amount": 20.0}}}]},
        {"name": "lookup", "match": ["refund order A1"], "requires_tool": "lookup_order",
         "answers": [{"tool_call": {"name": "lookup_order", "arguments": {"order_id": "A1"}}}]},
        {"name": "bad_args", "match": ["refund order B2"],
         "answers": [{"tool_call": {"name": "lookup_order", "arguments": {"order": 5}}}]},
        {"name": "ghost", "match": ["ghost"],
         "answers": [{"tool_call": {"name": "ghost_tool", "arguments": {}}}]},
    ],
    "default": {"answers": [{"text": "A short answer."}]},
}
"""A simulated agent: 'refund order A1' looks the order up, refunds it, and answers; a
tool error anywhere gets an apology; 'keep pinging' never stops calling ``ping``."""


@pytest.fixture(scope="module")
def agent(model_stack):
    from llmcheck.simulator import SimulatorServer

    with SimulatorServer(scenario=AGENT) as server:
        yield server


def client(server, model: str = "openai/llmcheck-sim") -> LLMClient:
    config = ModelConfig(model=model, api_base=server.url, retries=0, timeout=30,
                         simulated=model == "openai/llmcheck-sim")
    return LLMClient(config, ModelSession())


def lookup_order(order_id: str) -> dict:
    """Find an order by its id."""
    return {"order_id": order_id, "total": 20.0}


def ping() -> str:
    """Check the line."""
    return "pong"


def refund(order_id: str, amount: float, state: dict) -> str:
    """Refund part of an order."""
    state.setdefault("refunds", []).append((order_id, amount))
    return f"refunded {amount}"


# --------------------------------------------------------------------------- tools


class Opaque:
    """A type pydantic cannot describe."""


class Address(BaseModel):
    street: str
    zip_code: int


def test_schema_comes_from_type_hints_and_docstring():
    @llmcheck.tool
    def ship(city: str, express: bool = False, note: Optional[str] = None,  # noqa: UP045 - both spellings,
             address: Address | None = None, speed: Literal["slow", "fast"] = "slow",
             state=None) -> str:
        """Ship a parcel.

        Longer text the model does not need.

        Args:
            city: where to, in English
                (continued on the next line)
            express: pay for next-day delivery
        """
        return city

    schema = ship.schema()
    assert schema["type"] == "function"
    function = schema["function"]
    assert function["name"] == "ship" and function["description"] == "Ship a parcel."
    params = function["parameters"]
    assert params["required"] == ["city"] and params["additionalProperties"] is False
    props = params["properties"]
    assert "state" not in props  # the world state is not the model's to send
    assert props["city"] == {"type": "string", "description":
                             "where to, in English (continued on the next line)"}
    assert props["express"] == {"type": "boolean", "default": False,
                                "description": "pay for next-day delivery"}
    assert props["note"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert props["speed"]["enum"] == ["slow", "fast"]
    assert props["address"]["anyOf"][0] == {"$ref": "#/$defs/Address"}
    assert params["$defs"]["Address"]["required"] == ["street", "zip_code"]
    # the decorated function still works as a function
    assert ship("Paris") == "Paris"
    assert ship.takes_state

    named = llmcheck.tool(name="ship_v2", description="Ship it.", timeout=2)(ship.fn)
    assert named.schema()["function"]["name"] == "ship_v2"
    assert named.schema()["function"]["description"] == "Ship it." and named.timeout == 2.0


def test_arguments_are_validated_with_a_message_the_model_can_act_on():
    tool = Tool(lookup_order)
    assert tool.parse('{"order_id": "A1"}') == ({"order_id": "A1"}, {"order_id": "A1"})
    cases = {
        '{"order_id": 7}': "arguments do not fit lookup_order(order_id: str): order_id: "
                           "Input should be a valid string",
        '{"order": "A1"}': "order_id: Field required; order: Extra inputs are not permitted",
        '["A1"]': "must be a JSON object, got list",
        '{"order_id": "A1"': "are not JSON",
        '{"order_id": NaN}': "are not JSON",
    }
    for arguments, expected in cases.items():
        with pytest.raises(ValueError) as info:
            tool.parse(arguments)
        assert expected in str(info.value), arguments


@pytest.mark.parametrize("bad, message", [
    ("varargs", "tool test_bad_tool_definitions_name_the_function.<locals>.varargs: *names "
                "cannot be described"),
    ("untyped", "parameter 'city' has no type hint"),
    ("opaque", "its parameters have no JSON schema"),
    ("badname", "name 'no spaces allowed' must be 1-64 letters"),
])
def test_bad_tool_definitions_name_the_function(bad, message):
    def varargs(*names: str) -> None: ...
    def untyped(city) -> None: ...  # noqa: ANN001 - the mistake under test
    def opaque(thing: Opaque) -> None: ...

    with pytest.raises(llmcheck.UsageError) as info:
        if bad == "badname":
            llmcheck.tool(name="no spaces allowed")(lookup_order)
        else:
            llmcheck.tool({"varargs": varargs, "untyped": untyped, "opaque": opaque}[bad])
    assert message in str(info.value)


def test_bad_loop_input_is_a_usage_error(agent):
    llm = client(agent)
    bad = [
        (dict(tools=[lookup_order, Tool(lookup_order)]), "two tools are named 'lookup_order'"),
        (dict(tools=lookup_order), "tools must be a list of functions"),
        (dict(max_steps=0), "max_steps=0 must be a whole number >= 1"),
        (dict(budget={"calls": 2}), "must be an llmcheck.EpisodeBudget"),
        (dict(prompt=42), "give a prompt (str) or a non-empty list of messages"),
        (dict(tool_timeout=-1), "tool_timeout=-1 must be a number of seconds > 0"),
        (dict(tool_faults="tool_eror:0.5"), "unknown fault kind 'tool_eror' (did you mean "
                                            "tool_error?)"),
        (dict(tool_faults="rate_limit:0.5"), "the kinds are tool_error, tool_timeout"),
        (dict(messages=[]), "pass the tools as its third argument"),
    ]
    for kwargs, message in bad:
        prompt = kwargs.pop("prompt", "refund order A1")
        tools = kwargs.pop("tools", [lookup_order])
        with pytest.raises(llmcheck.UsageError) as info:
            llmcheck.run_tool_loop(llm, prompt, tools, **kwargs)
        assert message in str(info.value), kwargs
    with pytest.raises(llmcheck.UsageError, match=r"EpisodeBudget\(calls=0\)"):
        llmcheck.EpisodeBudget(calls=0)
    with pytest.raises(llmcheck.UsageError, match=r"EpisodeBudget\(seconds=inf\)"):
        llmcheck.EpisodeBudget(seconds=float("inf"))
    with pytest.raises(llmcheck.UsageError, match="the first argument must be the llm client"):
        llmcheck.run_tool_loop("openai/gpt-4o", "hi", [lookup_order])


# --------------------------------------------------------------------------- the loop


def test_a_three_step_episode_runs_the_tools_and_feeds_results_back(agent):
    state: dict = {}
    episode = llmcheck.run_tool_loop(client(agent), "Please refund order A1.",
                                     [lookup_order, llmcheck.tool(refund)], state=state,
                                     temperature=0)
    assert episode.stop_reason == "final_answer" and episode.finished
    assert episode.final_text == "Refund of 20.0 issued for order A1."
    assert episode.tool_names == ["lookup_order", "refund"]
    assert state == {"refunds": [("A1", 20.0)]} and episode.state is state
    assert [len(s.tool_calls) for s in episode.steps] == [1, 1, 0]
    first, second = episode.tool_calls
    assert first.args == {"order_id": "A1"} and first.result == {"order_id": "A1", "total": 20.0}
    assert second.result == "refunded 20.0" and second.step == 2 and second.error is None
    for step in episode.steps:
        assert step.completion is not None and step.usage.total_tokens
        assert step.latency > 0
    assert episode.usage.total_tokens == sum(s.usage.total_tokens for s in episode.steps)
    # the messages are OpenAI's: assistant tool_calls, then one tool message per call
    roles = [m["role"] for m in episode.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    call = episode.messages[1]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "lookup_order"
    assert json.loads(call["function"]["arguments"]) == {"order_id": "A1"}
    tool_message = episode.messages[2]
    assert tool_message["tool_call_id"] == call["id"] == first.id
    assert json.loads(tool_message["content"]) == {"order_id": "A1", "total": 20.0}
    assert episode.messages[4]["content"] == "refunded 20.0"  # a str goes as it is
    assert episode.duration >= sum(s.latency for s in episode.steps)


def test_arguments_that_do_not_fit_are_told_to_the_model(agent):
    ran = []
    episode = llmcheck.run_tool_loop(
        client(agent), "refund order B2", [recording_lookup(ran)], temperature=0)
    bad = episode.tool_calls[0]
    assert ran == []  # the tool never ran on arguments that do not fit
    assert bad.args is None
    assert bad.error.startswith("ToolArgumentError: arguments do not fit "
                                "lookup_order(order_id: str): order_id: Field required")
    assert episode.messages[2]["content"] == "error: " + bad.error
    # the model had another turn after it: handled, and its answer ended the episode
    assert bad.handled and episode.final_text == "Sorry, a tool failed."
    assert episode.summary()["tool_errors"] == 1
    assert episode.summary()["unhandled_tool_errors"] == 0


def recording_lookup(ran: list):
    def lookup_order(order_id: str) -> dict:
        """Find an order."""
        ran.append(order_id)
        return {}

    return lookup_order


def test_unknown_tools_and_raising_tools_become_tool_errors(agent):
    episode = llmcheck.run_tool_loop(client(agent), "call the ghost", [lookup_order])
    assert episode.tool_calls[0].error == ("UnknownTool: no tool named 'ghost_tool'; the tools "
                                           "are lookup_order")
    assert episode.final_text == "Sorry, a tool failed."

    def lookup_order_broken(order_id: str) -> dict:
        raise KeyError(f"no order {order_id} (token sk-test-abcdefghijklmnop1234)")

    broken = llmcheck.tool(name="lookup_order")(lookup_order_broken)
    llmcheck_redact = __import__("llmcheck.redact", fromlist=["register_secret"])
    llmcheck_redact.register_secret("sk-test-abcdefghijklmnop1234")
    try:
        episode = llmcheck.run_tool_loop(client(agent), "refund order A1", [broken])
    finally:
        llmcheck_redact.forget_secrets()
    error = episode.tool_calls[0].error
    assert error.startswith("KeyError: 'no order A1 (token ")
    assert "sk-test-abcdefghijklmnop1234" not in error  # redacted before the model sees it
    assert episode.messages[2]["content"] == "error: " + error


def test_a_result_that_cannot_be_written_as_json_is_a_tool_error_the_model_is_told(agent):
    """A tool answering a circular structure: the loop goes on and the model is told,
    instead of the sample failing with a serializer's error naming no tool."""

    def lookup_order(order_id: str) -> dict:
        """Find an order."""
        order: dict = {"id": order_id}
        order["self"] = order
        return order

    episode = llmcheck.run_tool_loop(client(agent), "refund order A1", [lookup_order])
    call = episode.tool_calls[0]
    assert call.error.startswith("ToolResultError: lookup_order returned a value that cannot "
                                 "be sent to the model as JSON: Circular reference")
    assert episode.messages[2]["content"] == "error: " + call.error
    assert call.handled and episode.stop_reason == "final_answer"


def test_max_steps_stops_the_loop_and_leaves_the_last_error_unhandled(agent):
    calls = []

    def ping() -> str:
        calls.append(1)
        if len(calls) % 2 == 1:
            raise ConnectionError("host unreachable")
        return "pong"

    episode = llmcheck.run_tool_loop(client(agent), "keep pinging", [ping], max_steps=3)
    assert episode.stop_reason == "max_steps" and not episode.finished
    assert len(episode.steps) == 3 and len(calls) == 3  # the last step's tools still ran
    assert episode.final_text == ""
    errors = [(c.step, c.error, c.handled) for c in episode.tool_calls if c.error]
    assert errors == [(1, "ConnectionError: host unreachable", True),
                      (3, "ConnectionError: host unreachable", False)]
    assert episode.summary()["unhandled_tool_errors"] == 1


@pytest.mark.parametrize("budget, reason, steps", [
    (llmcheck.EpisodeBudget(calls=2), "budget_calls", 2),
    (llmcheck.EpisodeBudget(tokens=1), "budget_tokens", 1),
    (llmcheck.EpisodeBudget(calls=9, seconds=0.02), "budget_time", 1),
])
def test_each_budget_stops_the_episode(agent, budget, reason, steps):
    def ping() -> str:
        time.sleep(0.03)  # tools count toward the episode's wall time
        return "pong"

    episode = llmcheck.run_tool_loop(client(agent), "keep pinging", [ping], budget=budget)
    assert episode.stop_reason == reason and len(episode.steps) == steps


def test_the_cost_budget_counts_the_priced_calls(agent):
    llm = client(agent, "openai/gpt-4o-mini")  # priced from litellm's offline map
    episode = llmcheck.run_tool_loop(llm, "keep pinging", [ping],
                                     budget=llmcheck.EpisodeBudget(cost=1e-9))
    assert episode.stop_reason == "budget_cost" and len(episode.steps) == 1
    assert episode.steps[0].completion.cost > 0


def test_a_slow_tool_times_out_and_the_model_is_told(agent):
    @llmcheck.tool(timeout=0.01)
    def lookup_order(order_id: str) -> dict:
        time.sleep(0.06)
        return {"order_id": order_id}

    episode = llmcheck.run_tool_loop(client(agent), "refund order A1", [lookup_order])
    call = episode.tool_calls[0]
    assert call.error == "ToolTimeout: lookup_order did not return within 0.01 s"
    assert call.handled and episode.final_text == "Sorry, a tool failed."

    def plain(order_id: str) -> dict:  # a loop-wide tool_timeout applies to it
        time.sleep(0.06)
        return {}

    episode = llmcheck.run_tool_loop(client(agent), "refund order A1",
                                     [llmcheck.tool(name="lookup_order")(plain)],
                                     tool_timeout=0.01)
    assert episode.tool_calls[0].error.startswith("ToolTimeout:")


def test_async_loop_runs_sync_and_async_tools_and_the_sync_loop_runs_async_tools(agent):
    async def lookup_order(order_id: str) -> dict:
        """Find an order."""
        await asyncio.sleep(0)
        return {"order_id": order_id, "total": 20.0}

    state: dict = {}
    episode = asyncio.run(llmcheck.arun_tool_loop(
        client(agent), "refund order A1", [lookup_order, refund], state=state))
    assert episode.final_text == "Refund of 20.0 issued for order A1."
    assert state == {"refunds": [("A1", 20.0)]}

    episode = llmcheck.run_tool_loop(client(agent), "refund order A1", [lookup_order, refund],
                                     state={})
    assert episode.final_text == "Refund of 20.0 issued for order A1."

    @llmcheck.tool(name="lookup_order", timeout=0.01)
    async def slow(order_id: str) -> dict:
        await asyncio.sleep(0.06)
        return {}

    episode = asyncio.run(llmcheck.arun_tool_loop(client(agent), "refund order A1", [slow]))
    assert episode.tool_calls[0].error == "ToolTimeout: lookup_order did not return within " \
                                          "0.01 s"


def test_messages_can_start_the_loop_and_are_not_changed(agent):
    messages = [{"role": "system", "content": "You are a support agent."},
                {"role": "user", "content": "Please refund order A1."}]
    episode = llmcheck.run_tool_loop(client(agent), messages, [lookup_order, refund],
                                     state={})
    assert len(messages) == 2  # the caller's list is left alone
    assert episode.messages[:2] == messages and episode.final_text.startswith("Refund")


def test_inside_a_sample_the_episode_is_noted_even_when_a_model_call_fails(sample, agent):
    episode = llmcheck.run_tool_loop(client(agent), "refund order A1", [lookup_order, refund],
                                     state={})
    assert sample.episode.stop_reason == "final_answer" and sample.episode.steps == 3
    assert sample.episode.tools == ["lookup_order", "refund"]
    assert sample.durations["episode"] == episode.duration
    assert len(sample.calls) == 3  # every step went through the one call path

    dead = LLMClient(ModelConfig(model="openai/llmcheck-sim", api_base="http://127.0.0.1:9/v1",
                                 retries=0, simulated=True, timeout=5), ModelSession())
    with pytest.raises(llmcheck.ModelCallError):
        llmcheck.run_tool_loop(dead, "refund order A1", [lookup_order])
    assert sample.episode.stop_reason == "error" and sample.episode.steps == 0
