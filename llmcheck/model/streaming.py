"""Reading a streamed answer: chunks assembled into one Completion, its timing (time
to the first token, the gaps between chunks), and a stream that brought nothing told
apart from an empty answer.

:class:`ChunkClock` is the one place a stream's timing is computed, whichever way the
call was made: llmcheck's client feeds it litellm's chunks (:class:`StreamAccumulator`),
the recording proxy feeds it the SSE bytes it relays (:class:`SSEClock`). A chunk
counts when it carries text or a piece of a tool call (a role-only chunk, the finish
chunk and the usage chunk do not): the time to first token is the wait for the first
such chunk, and the gaps are the waits between consecutive ones.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from llmcheck.model.completion import Completion, ToolCall, Usage
from llmcheck.model.deadline import DeadlineExceeded
from llmcheck.model.failures import MalformedResponse

_warmed: set[str] = set()
_warm_lock = threading.Lock()


def warm_tokenizer(litellm: Any, model: str) -> None:
    """Load what litellm counts a streamed request's tokens with, once per model, before
    the first stream's clock starts: litellm counts the prompt with tiktoken before it
    hands back a stream, and the first count in a process loads the encodings (seconds
    on a busy machine), which the first streams' time to first token would carry. A
    model litellm cannot count for is left alone (its streams then pay nothing)."""
    if model in _warmed:
        return
    with _warm_lock:
        if model in _warmed:
            return
        try:
            litellm.token_counter(model=model, messages=[{"role": "user", "content": "."}])
        except Exception:  # noqa: BLE001 - warming is best effort, the call says what failed
            pass
        _warmed.add(model)


def is_warm(model: str) -> bool:
    """Whether :func:`warm_tokenizer` already ran for ``model``."""
    return model in _warmed


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


class ChunkClock:
    """Times the chunks of one stream that carry tokens: time to the first one, the gap
    before each later one, and how many there were."""

    def __init__(self, started: float) -> None:
        self.started = started
        """``time.perf_counter()`` when the request was sent."""
        self.first: float | None = None
        """Seconds from :attr:`started` to the first token chunk (None: none yet)."""
        self.gaps: list[float] = []
        """Seconds between consecutive token chunks, in order."""
        self._last: float | None = None

    def tick(self, now: float | None = None) -> None:
        """Note one chunk that carried a token, received at ``now`` (perf_counter)."""
        now = time.perf_counter() if now is None else now
        if self._last is None:
            self.first = now - self.started
        else:
            self.gaps.append(max(0.0, now - self._last))
        self._last = now

    @property
    def chunks(self) -> int:
        """Token chunks received."""
        return 0 if self._last is None else len(self.gaps) + 1

    @property
    def max_gap(self) -> float | None:
        """The longest gap (0.0 for a single chunk, None before any)."""
        if self._last is None:
            return None
        return max(self.gaps, default=0.0)


class SSEClock(ChunkClock):
    """A :class:`ChunkClock` fed raw SSE bytes as they arrive (the proxy's view of a
    stream): events split across or packed into network reads are told apart, and an
    event that does not parse is ignored (the proxy records such answers elsewhere)."""

    def __init__(self, started: float) -> None:
        super().__init__(started)
        self._pending = b""

    def feed(self, data: bytes, now: float | None = None) -> None:
        """Read the events completed by ``data``, all received at ``now``."""
        now = time.perf_counter() if now is None else now
        self._pending += data.replace(b"\r\n", b"\n")
        *events, self._pending = self._pending.split(b"\n\n")
        for event in events:
            for line in event.split(b"\n"):
                if line.startswith(b"data:") and _sse_carries_token(line[5:].strip()):
                    self.tick(now)
                    break


def _sse_carries_token(data: bytes) -> bool:
    if not data or data == b"[DONE]":
        return False
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    choices = doc.get("choices") if isinstance(doc, dict) else None
    for choice in choices if isinstance(choices, list) else ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
            return True
    return False


class StreamAccumulator:
    """Assembles streamed chunks into one Completion, timing them (:class:`ChunkClock`)."""

    def __init__(self, model: str, started: float) -> None:
        self.model = model
        self.clock = ChunkClock(started)
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
        if content or tool_deltas:
            self.clock.tick()
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
            time_to_first_token=self.clock.first, gaps=tuple(self.clock.gaps),
        )



def consume(chunks: Any, model: str, started: float, timeout: float,
            abandoned: threading.Event | None = None) -> Completion:
    """The Completion of litellm's streamed ``chunks``, read in the helper thread of a
    sync call; once ``abandoned`` is set (the caller's deadline or stop) the connection
    is closed and :class:`DeadlineExceeded` raised."""
    acc = StreamAccumulator(model, started)
    for chunk in chunks:
        if abandoned is not None and abandoned.is_set():
            close(chunks)  # the caller gave up (deadline, stop): free the connection
            raise DeadlineExceeded(timeout)
        acc.add(chunk)
    return acc.completion(content_type(chunks))


async def aconsume(chunks: Any, model: str, started: float) -> Completion:
    """The Completion of litellm's async streamed ``chunks`` (awaited under a deadline)."""
    acc = StreamAccumulator(model, started)
    try:
        async for chunk in chunks:
            acc.add(chunk)
    except BaseException:
        # cancelled at the deadline, or the stream broke: close the connection
        await aclose(chunks)
        raise
    return acc.completion(content_type(chunks))
