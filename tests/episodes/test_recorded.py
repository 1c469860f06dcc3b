"""An app's own tool loop, rebuilt from the calls recorded through the proxy: the openai SDK
in a hand-written loop and a LangChain chat model with bound tools give the same path, and
the path checks pass on both. Real HTTP: the simulator behind llmcheck's proxy, the
sample's calls attributed by its URL (as ``llm_endpoint`` does)."""

from __future__ import annotations

import json

import openai
import pytest

import llmcheck
from llmcheck.core.exchanges import Exchange
from llmcheck.episodes.episode import Episode
from llmcheck.episodes.recorded import rebuild
from llmcheck.model.proxy import FaultProxy

QUESTION = "What's the weather in Paris?"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string"}}, "required": ["city"]}}}


def get_weather(city: str, unit: str = "celsius") -> str:
    """The app's tool (a stand-in for a weather service)."""
    return f"18 degrees {unit}, sunny in {city}"


@pytest.fixture
def endpoint(simulator, sample):
    """A base URL that attributes calls to the running sample, like llm_endpoint's."""
    with FaultProxy(simulator.url) as proxy:
        yield proxy.sample_url(sample.token)


def sdk_loop(base_url: str, *, stream: bool = False) -> str:
    """An app's loop with the openai SDK: ask, run the tools asked for, send the results."""
    client = openai.OpenAI(base_url=base_url, api_key="sk-app", max_retries=0)
    messages: list[dict] = [{"role": "user", "content": QUESTION}]
    for _ in range(4):
        if stream:
            chunks = client.chat.completions.create(
                model="llmcheck-sim", messages=messages, tools=[WEATHER_TOOL], temperature=0,
                stream=True)
            calls: dict[int, dict] = {}
            text = ""
            for chunk in chunks:
                delta = chunk.choices[0].delta if chunk.choices else None
                text += (delta.content or "") if delta else ""
                for tc in (delta.tool_calls or []) if delta else []:
                    slot = calls.setdefault(tc.index, {"id": None, "name": "", "args": ""})
                    slot["id"] = tc.id or slot["id"]
                    slot["name"] += tc.function.name or ""
                    slot["args"] += tc.function.arguments or ""
            tool_calls = [(c["id"], c["name"], c["args"]) for _, c in sorted(calls.items())]
        else:
            message = client.chat.completions.create(
                model="llmcheck-sim", messages=messages, tools=[WEATHER_TOOL],
                temperature=0).choices[0].message
            text = message.content or ""
            tool_calls = [(c.id, c.function.name, c.function.arguments)
                          for c in message.tool_calls or []]
        if not tool_calls:
            return text
        messages.append({"role": "assistant", "content": text or None, "tool_calls": [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in tool_calls]})
        for call_id, _, arguments in tool_calls:
            messages.append({"role": "tool", "tool_call_id": call_id,
                             "content": get_weather(**json.loads(arguments))})
    raise AssertionError("the loop did not end")


def langchain_loop(base_url: str) -> str:
    """The same app as a LangChain chat model with the tool bound."""
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    weather = tool(get_weather)
    chat = ChatOpenAI(base_url=base_url, api_key="sk-app", model="llmcheck-sim",
                      temperature=0, max_retries=0).bind_tools([weather])
    messages: list = [HumanMessage(QUESTION)]
    for _ in range(4):
        answer = chat.invoke(messages)
        messages.append(answer)
        if not answer.tool_calls:
            return str(answer.content)
        for call in answer.tool_calls:
            messages.append(ToolMessage(weather.invoke(call["args"]), tool_call_id=call["id"]))
    raise AssertionError("the loop did not end")


def check_path(episode: Episode) -> None:
    """The path checks every variant of the app must pass."""
    llmcheck.assert_tools_called(episode, ["get_weather"])
    llmcheck.assert_tool_called_with(episode, "get_weather", {"city": "Paris"})
    llmcheck.assert_tool_not_called(episode, "book_flight")
    llmcheck.assert_max_steps(episode, 2)
    llmcheck.assert_contains(episode, "18 degrees celsius")  # the final answer, as any text


@pytest.mark.parametrize("app", ["sdk", "sdk-stream", "langchain"])
def test_an_apps_own_loop_is_rebuilt_with_its_tool_path(app, endpoint, sample):
    if app == "langchain":
        answer = langchain_loop(endpoint)
    else:
        answer = sdk_loop(endpoint, stream=app == "sdk-stream")
    episode = llmcheck.recorded_episode()

    assert episode.source == "recorded" and episode.stop_reason == "recorded"
    assert [s.index for s in episode.steps] == [1, 2]
    (call,) = episode.tool_calls
    assert (call.name, call.args, call.step) == (
        "get_weather", {"city": "Paris", "unit": "celsius"}, 1)
    assert call.result == "18 degrees celsius, sunny in Paris", "the result the app sent back"
    assert call.id and call.error is None
    assert episode.final_text == answer
    assert answer.startswith("Here is the current weather in Paris: 18 degrees celsius")
    if app != "sdk-stream":  # (a stream reports tokens only when asked to)
        assert episode.steps[1].usage.completion_tokens, "tokens come from the call records"
    assert episode.messages[-1] == {"role": "assistant", "content": answer}
    check_path(episode)
    assert all(c.passed for c in sample.checks) and len(sample.checks) == 5
    # the sample's record keeps what the episode did
    assert sample.episode.source == "recorded"
    assert (sample.episode.steps, sample.episode.tools) == (2, ["get_weather"])


def test_only_the_apps_answered_calls_are_steps():
    """A judge's and a simulated user's calls, and a call that got no answer (a retried
    429), are not steps; results go to the call with the same id; arguments that do not
    parse stay as written."""
    asked = [("lookup", '{"id": 7}', "c1"), ("lookup", "{id: 8", "c2")]
    sent_back = [{"role": "user", "content": "find 7 and 8"},
                 {"role": "assistant", "content": None, "tool_calls": []},
                 {"role": "tool", "tool_call_id": "c2", "content": "error: bad arguments"},
                 {"role": "tool", "tool_call_id": "c1",
                  "content": [{"type": "text", "text": "found 7"}]}]
    exchanges = [
        Exchange(0, "proxy", "find 7 and 8", None),  # a 429: no answer
        Exchange(1, "proxy", "find 7 and 8", "Looking.\n[tool call] lookup({\"id\": 7})\n"
                 "[tool call] lookup({id: 8)", tool_calls=tuple(asked)),
        Exchange(2, None, "grade it", '{"score": 1}', role="judge"),
        Exchange(4, "proxy", sent_back, "Found 7; 8 is not valid."),
        Exchange(3, None, "you are a user", "thanks", role="user"),
    ]
    episode = rebuild(exchanges)
    assert [(s.index, s.text) for s in episode.steps] == [
        (1, "Looking."), (2, "Found 7; 8 is not valid.")]
    first, second = episode.tool_calls
    assert (first.args, first.result) == ({"id": 7}, "found 7")
    assert (second.args, second.arguments, second.result) == (
        None, "{id: 8", "error: bad arguments")
    assert episode.final_text == "Found 7; 8 is not valid."
    assert episode.summary()["tools"] == ["lookup", "lookup"]


def test_an_episode_that_ended_on_a_tool_call_has_no_final_answer():
    episode = rebuild([Exchange(0, "proxy", "go", "[tool call] a({})",
                                tool_calls=(("a", "{}", None),))])
    assert episode.final_text == "" and episode.tool_names == ["a"]
    assert episode.tool_calls[0].result is None


def test_outside_a_sample_it_says_where_it_works():
    with pytest.raises(llmcheck.UsageError, match="in the body of an LLM test"):
        llmcheck.recorded_episode()
