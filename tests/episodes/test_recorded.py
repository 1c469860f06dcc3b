"""An app's own tool loop, rebuilt from the calls recorded through the proxy: the openai SDK
in a hand-written loop and a LangChain chat model with bound tools give the same path, and
the path checks pass on both. Real HTTP: the simulator behind llmcheck's proxy, the
sample's calls attributed by its URL (as ``llm_endpoint`` does)."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from helpers import by_name

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


def test_a_loop_over_the_llm_client_is_rebuilt_too(simulator, sample):
    """The ``llm`` client's calls record their tool calls like the proxy's."""
    from llmcheck.model.accounting import ModelSession
    from llmcheck.model.client import LLMClient, ModelConfig

    llm = LLMClient(ModelConfig(model="openai/llmcheck-sim", api_base=simulator.url,
                                api_key_env=None, simulated=True), ModelSession())
    messages: list[dict] = [{"role": "user", "content": QUESTION}]
    first = llm.chat(messages, tools=[WEATHER_TOOL], temperature=0)
    (asked,) = first.tool_calls
    messages += [{"role": "assistant", "content": None, "tool_calls": [
        {"id": asked.id, "type": "function",
         "function": {"name": asked.name, "arguments": asked.arguments}}]},
        {"role": "tool", "tool_call_id": asked.id, "content": get_weather(**asked.args())}]
    final = llm.chat(messages, tools=[WEATHER_TOOL], temperature=0)
    episode = llmcheck.recorded_episode()
    check_path(episode)
    assert episode.tool_calls[0].id == asked.id and episode.final_text == final.text


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


# --------------------------------------------------------------------------- a real run

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tool-loops.md"

STEPS_TEST = """
import openai
import llmcheck
from test_doc_example import weather_app


@llmcheck.repeat(runs=7, verdict="threshold", min_pass_rate=0.5, early_stop=False,
                 concurrency=1)
def test_paths(llm_endpoint, llm_sample):
    client = openai.OpenAI(base_url=llm_endpoint.base_url, api_key=llm_endpoint.api_key)
    weather_app(client, llm_endpoint.model, "What's the weather in Paris?", temperature=0)
    episode = llmcheck.recorded_episode()
    if llm_sample.index == 6:
        assert False, "a failure with no step"
    if llm_sample.index % 3 == 1:
        llmcheck.assert_max_steps(episode, 1)
    elif llm_sample.index % 3 == 2:
        with llmcheck.soft():  # both fail; the earlier step is the one grouped
            llmcheck.assert_max_steps(episode, 1)
            llmcheck.assert_tool_called_with(episode, "get_weather", {"city": "Rome"})
"""


def doc_example() -> str:
    """The first python block of the docs page's "Checking the path" section."""
    section = DOCS.read_text(encoding="utf-8").split("## Checking the path", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_a_run_groups_failing_episodes_by_their_first_failed_step(pytester, report):
    """One real session: the docs page's example passes, and a test whose episodes fail
    at different steps gets its step groups in the JSON, the terminal, markdown and HTML."""
    pytester.makepyfile(test_doc_example=doc_example(), test_steps=STEPS_TEST)
    result = pytester.runpytest("--llm-seed=3", "--llm-runs=7", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    tests = by_name(report())

    example = tests["test_the_weather_agent_takes_the_right_path"]
    assert example["verdict"]["outcome"] == "passed"
    episodes = [s["episode"] for s in example["samples"]]
    assert all(e["source"] == "recorded" for e in episodes)
    assert sum(e["tools"] == ["get_weather"] and e["steps"] == 2 for e in episodes) \
        >= 0.8 * len(episodes)

    steps = tests["test_paths"]
    assert steps["step_failures"] == [
        {"step": "step 1: get_weather", "check": "tool_called_with(get_weather, {'city': "
         "'Rome'})", "count": 2, "samples": [2, 5]},
        {"step": "step 2", "check": "max_steps(1)", "count": 2, "samples": [1, 4]}]
    failed_check = next(c for c in steps["samples"][1]["checks"] if not c["passed"])
    assert failed_check["step"] == "step 2"

    out = result.stdout.str()
    heading = out.index("where failing episodes first went wrong")
    assert out.index("3 distinct message(s)") < heading, "under the failure groups"
    assert "     2x step 1: get_weather — tool_called_with(get_weather, {'city': 'Rome'})  " \
        "(samples 2, 5)" in out[heading:]
    assert "     2x step 2 — max_steps(1)  (samples 1, 4)" in out[heading:]

    markdown = (pytester.path / "reports" / "llmcheck.md").read_text()
    assert "### Where failing episodes went wrong" in markdown
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in markdown.splitlines() if "`test_steps.py::test_paths`" in line]
    assert ["2", "`test_steps.py::test_paths`", "step 2", "`max_steps(1)`", "1, 4"] in rows

    from llmcheck.records.schema import load_session
    from llmcheck.reports.html import render_html

    session = load_session(pytester.path / "reports" / "llmcheck.json")
    record = next(t for t in session.tests if t.step_failures)
    record.step_failures[0].step = "step 1: <script>alert(1)</script>"
    html = render_html(session)
    assert "Where failing episodes went wrong" in html
    assert "step 1: &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
