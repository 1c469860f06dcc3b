"""Tool calling: the model must call the right tool with the right arguments, and
the code around it must finish the conversation with the tool's result.

Against a real model:

    pytest suites/test_tool_call.py --llm-runs=20 \
        --llm-model=openai/gpt-4o-mini --llm-api-key-env=OPENAI_API_KEY
"""

from __future__ import annotations

import json

import pytest

import llmcheck

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
QUESTION = "What's the weather in Paris right now? Use celsius."


def get_weather(city: str, unit: str = "celsius") -> dict:
    """The application's own tool (a fake here): what the model's call would run."""
    return {"city": city, "temperature": 18, "unit": unit, "sky": "light clouds"}


@llmcheck.repeat(min_pass_rate=0.7)
def test_calls_get_weather_for_paris(llm):
    reply = llm(QUESTION, tools=[WEATHER_TOOL])
    llmcheck.assert_tool_call(reply, "get_weather", args={"city": "Paris"})


@llmcheck.repeat(min_pass_rate=0.7)
async def test_answers_with_the_tool_result(llm):
    """The full round trip, async: call, run the tool, send the result back."""
    messages = [{"role": "user", "content": QUESTION}]
    first = await llm.achat(messages, tools=[WEATHER_TOOL])
    call = first.tool_call("get_weather")
    assert call is not None, "the model did not call the tool"
    result = get_weather(**{k: v for k, v in call.args().items() if k in ("city", "unit")})
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call.id or "call_1", "type": "function",
            "function": {"name": call.name, "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": call.id or "call_1", "content": json.dumps(result)},
    ]
    final = await llm.achat(messages, tools=[WEATHER_TOOL])
    assert "18" in final.text, f"the answer ignores the tool result: {final.text[:80]!r}"


@pytest.mark.xfail(reason="about 1 call in 10 drops the required 'unit' argument or asks "
                          "for the wrong Paris", strict=False)
@llmcheck.repeat(min_pass_rate=0.99)
def test_arguments_are_exactly_right(llm):
    llmcheck.assert_tool_call(llm(QUESTION, tools=[WEATHER_TOOL]), "get_weather",
                              args_schema=WEATHER_TOOL["function"]["parameters"],
                              args={"city": "Paris", "unit": "celsius"})
