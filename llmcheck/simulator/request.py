"""Reading a chat completion request the way OpenAI would: what the simulator accepts.

Every field the simulator uses is checked here and normalised; a request OpenAI would
reject gets a :class:`RequestError` (a 400 with OpenAI's error body) naming the field.
Nothing from a request is evaluated: it is only measured, matched and hashed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from llmcheck.simulator.schema import FAULT_KINDS, LEGACY_FAULT_KINDS, canonical_fault_kind

MAX_CHOICES = 16
"""Largest ``n`` accepted in a chat completion request."""


class RequestError(ValueError):
    """A request the simulator rejects with a 400, OpenAI style."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value"):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def approx_tokens(text: str) -> int:
    """Deterministic token estimate: one token per 4 characters, rounded up."""
    return (len(text) + 3) // 4


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message: its string content, or its text parts joined by newlines."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def offered_tools(body: Mapping[str, Any]) -> set[str]:
    """Names of the tools (or legacy functions) the request offers the model."""
    if body.get("tool_choice") == "none":
        return set()
    names: set[str] = set()
    for tool in body.get("tools") or ():
        if isinstance(tool, Mapping) and isinstance(tool.get("function"), Mapping):
            name = tool["function"].get("name")
            if isinstance(name, str):
                names.add(name)
    for function in body.get("functions") or ():
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return names


def check_forced_fault(forced_fault: str | None) -> str | None:
    """The catalogue kind an ``X-Llmcheck-Fault`` value names (None for None); a
    :class:`RequestError` for a value that names none."""
    if forced_fault is None:
        return None
    kind = canonical_fault_kind(forced_fault)
    if kind not in FAULT_KINDS:
        raise RequestError(
            f"unknown X-Llmcheck-Fault {forced_fault!r}; use one of {', '.join(FAULT_KINDS)} "
            f"(or the old name{'s' if len(LEGACY_FAULT_KINDS) > 1 else ''} "
            f"{', '.join(LEGACY_FAULT_KINDS)})",
            param="X-Llmcheck-Fault",
        )
    return kind


def last_user(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of the last user message ("" when there is none)."""
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")


def last_tool(messages: Sequence[Mapping[str, Any]]) -> tuple[str | None, str]:
    """The tool whose result the last message is, and that result's text; ``(None, "")``
    when the last message is no tool result. The tool is named by the assistant call
    the message answers (``tool_call_id``), else by the message's own ``name`` (the
    older ``function`` role carries it)."""
    if not messages or messages[-1].get("role") not in ("tool", "function"):
        return None, ""
    result = messages[-1]
    call_id = result.get("tool_call_id")
    calls = (call for message in reversed(messages[:-1]) if message.get("role") == "assistant"
             and isinstance(message.get("tool_calls"), list) for call in message["tool_calls"])
    for call in calls:
        if call_id and isinstance(call, Mapping) and call.get("id") == call_id:
            function = call.get("function")
            name = function.get("name") if isinstance(function, Mapping) else None
            return (name if isinstance(name, str) else None), message_text(result)
    name = result.get("name")
    return (name if isinstance(name, str) else None), message_text(result)


def prompt_tokens(messages: Sequence[Mapping[str, Any]], tools: Any) -> int:
    """The request's prompt tokens as :func:`approx_tokens` counts them, with OpenAI's
    per-message overhead and the offered tools."""
    total = 3 + sum(4 + approx_tokens(message_text(m)) for m in messages)
    if tools:
        total += approx_tokens(json.dumps(tools, separators=(",", ":")))
    return total


def _optional_int(body: Mapping[str, Any], name: str, low: int, high: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"'{name}' must be an integer, got {value!r}", param=name)
    if value < low or (high is not None and value > high):
        upper = f" and at most {high}" if high is not None else ""
        raise RequestError(f"'{name}' must be at least {low}{upper}, got {value}", param=name)
    return value


def required_field(body: Any, name: str) -> Any:
    """``body[name]`` of a JSON-object request body, with OpenAI's errors when the
    body is not an object or the field is missing."""
    if not isinstance(body, Mapping):
        raise RequestError("the request body must be a JSON object", code="invalid_request")
    value = body.get(name)
    if value is None:
        raise RequestError(
            f"Missing required parameter: '{name}'.",
            param=name,
            code="missing_required_parameter",
        )
    return value


def parse_chat_request(body: Any, default_model: str) -> dict[str, Any]:
    """Check the fields the simulator uses, the way OpenAI would, and normalise them."""
    messages = required_field(body, "messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty array", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise RequestError(
                f"messages[{i}] must be an object with a string 'role'", param=f"messages[{i}]"
            )
    for name in ("tools", "functions"):
        if body.get(name) is not None and not isinstance(body[name], list):
            raise RequestError(f"'{name}' must be an array", param=name)
    model = body.get("model", default_model)
    if not isinstance(model, str) or not model:
        raise RequestError("'model' must be a non-empty string", param="model")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise RequestError("'stream' must be a boolean", param="stream")
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not 0 <= temperature <= 2
        or math.isnan(temperature)
    ):
        raise RequestError(
            f"'temperature' must be a number between 0 and 2, got {temperature!r}",
            param="temperature",
        )
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError(f"'seed' must be an integer, got {seed!r}", param="seed")
    n = _optional_int(body, "n", 1, MAX_CHOICES) or 1
    max_tokens = _optional_int(body, "max_completion_tokens", 1, None)
    if max_tokens is None:
        max_tokens = _optional_int(body, "max_tokens", 1, None)
    options = body.get("stream_options")
    include_usage = bool(isinstance(options, Mapping) and options.get("include_usage"))
    return {
        "messages": messages,
        "model": model,
        "stream": stream,
        "temperature": temperature,
        "seed": seed,
        "n": n,
        "max_tokens": max_tokens,
        "include_usage": include_usage,
    }


__all__ = [
    "MAX_CHOICES",
    "RequestError",
    "approx_tokens",
    "check_forced_fault",
    "last_tool",
    "last_user",
    "message_text",
    "offered_tools",
    "parse_chat_request",
    "prompt_tokens",
    "required_field",
]
