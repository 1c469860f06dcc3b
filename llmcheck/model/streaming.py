"""Reading a streamed answer: chunks assembled into one Completion, the time to the
first token, and a stream that brought nothing told apart from an empty answer."""

from __future__ import annotations

import time
from typing import Any

from llmcheck.model.completion import Completion, ToolCall, Usage
from llmcheck.model.failures import MalformedResponse


def content_type(chunks: Any) -> str | None:
    """The content type the provider answered a streamed request with, if litellm kept it."""
    hidden = getattr(chunks, "_hidden_params", None)
    headers = hidden.get("additional_headers") if isinstance(hidden, dict) else None
    value = headers.get("llm_provider-content-type") if isinstance(headers, dict) else None
    return value if isinstance(value, str) else None


def close(chunks: Any) -> None:
    close = getattr(chunks, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001 - best effort: the connection is being dropped
            pass


async def aclose(chunks: Any) -> None:
    close = getattr(chunks, "aclose", None)
    if callable(close):
        try:
            await close()
        except Exception:  # noqa: BLE001 - best effort: the connection is being dropped
            pass


class StreamAccumulator:
    """Assembles streamed chunks into one Completion, timing the first token."""

    def __init__(self, model: str, started: float) -> None:
        self.model = model
        self.started = started
        self.first: float | None = None
        self.parts: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.usage = Usage()
        self.response_model: str | None = None
        self.received = False
        """Whether any chunk carried something from the provider (a role, text, a tool
        call, usage): litellm turns a body without events into one empty final chunk."""

    def add(self, chunk: Any) -> None:
        usage = getattr(chunk, "usage", None)
        if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
            self.usage = Usage(usage.prompt_tokens, usage.completion_tokens)
            self.received = True
        self.response_model = getattr(chunk, "model", None) or self.response_model
        if not getattr(chunk, "choices", None):
            return
        choice = chunk.choices[0]
        delta = choice.delta
        content = getattr(delta, "content", None)
        tool_deltas = getattr(delta, "tool_calls", None) or []
        if content or tool_deltas or getattr(delta, "role", None):
            self.received = True
        if (content or tool_deltas) and self.first is None:
            self.first = time.perf_counter() - self.started
        if content:
            self.parts.append(content)
        for td in tool_deltas:
            slot = self.tools.setdefault(getattr(td, "index", 0) or 0,
                                         {"id": None, "name": "", "arguments": ""})
            if getattr(td, "id", None):
                slot["id"] = td.id
            fn = getattr(td, "function", None)
            if fn is not None:
                if getattr(fn, "name", None):
                    slot["name"] = fn.name
                if getattr(fn, "arguments", None):
                    slot["arguments"] += fn.arguments
        if choice.finish_reason:
            self.finish = choice.finish_reason

    def completion(self, content_type: str | None = None) -> Completion:
        """The assembled answer; :class:`MalformedResponse` if the stream brought
        nothing from the provider (``content_type``: what it answered with)."""
        if not self.received:
            if content_type and "event-stream" not in content_type:
                raise MalformedResponse(
                    f"the provider answered a streamed request with a plain {content_type} "
                    "body, not an event stream")
            raise MalformedResponse("the provider's stream ended without a single chunk "
                                    "(no role, text, tool call or usage)")
        calls = tuple(ToolCall(t["name"], t["arguments"], t["id"])
                      for _, t in sorted(self.tools.items()))
        return Completion(
            text="".join(self.parts), model=self.response_model or self.model,
            finish_reason=self.finish, tool_calls=calls, usage=self.usage,
            time_to_first_token=self.first,
        )

