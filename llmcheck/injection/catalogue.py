"""The fault catalogue: what real providers do to a call, as data.

One catalogue serves every injection point (in-process interception of
httpx, the ``llmcheck proxy``, the simulator's scenario files), so
``rate_limit`` means the same 429 everywhere. A :class:`FaultPlan` is a rate
per kind plus a seed; :meth:`FaultPlan.draw` decides, deterministically for a
(seed, sample key, call number), which fault (if any) a call gets, and
:func:`render` turns a fault into what the wire carries: an error status with
its headers and body, a 200 whose answer is broken, or an instruction to
hold, drop or cut the connection. Nothing here does I/O.

The answers are OpenAI chat-completion documents (what litellm, the openai SDK
and LangChain's ``ChatOpenAI`` read). Kinds that damage a real answer
(``truncated``, ``stream_cut``, ``slow``) are applied to the upstream's
answer; the others are served without calling the upstream at all, so an
injected rate limit costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from llmcheck.config.faults import (
    FAULT_KINDS,
    LEGACY_FAULT_ALIASES,
    check_fault_rates,
    parse_fault_rates,
)
from llmcheck.errors import UsageError

KINDS = FAULT_KINDS
"""Every fault kind, in the order :meth:`FaultPlan.draw` lays them on [0, 1) (the
names are plain data of :mod:`llmcheck.config.faults`, which checks ``--llm-faults``)."""

NEEDS_UPSTREAM = frozenset({"truncated", "slow", "stream_cut"})
"""Kinds that damage the upstream's real answer; the others replace it."""

LEGACY_ALIASES = LEGACY_FAULT_ALIASES
"""Names of older scenario files (``malformed`` is ``stream_cut``)."""

SERVER_ERROR_STATUSES = (500, 502, 503)
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."


def _mix(*parts: Any) -> int:
    """A 64-bit hash of the parts: the same on every machine and Python version."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


DEFAULT_TIMEOUT_S = 600.0
"""How long a ``timeout`` fault holds a request when neither its plan nor the proxy
says (the openai SDK's own default deadline)."""


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject, how often, and with what parameters.

    ``rates`` maps kinds of :data:`KINDS` to probabilities per call (their sum at
    most 1). ``seed`` makes the plan reproducible: the same plan, sample key and
    call number always give the same fault. ``retry_after`` is the Retry-After
    of a ``rate_limit`` (seconds), ``slow_s`` the latency a ``slow`` adds, and
    ``timeout_s`` how long a ``timeout`` holds a request over HTTP before the proxy
    answers 504 (in-process, the client's own timeout error is raised at once).
    ``None`` means the harness's own deadline: ``--llm-timeout`` for the session's
    proxy behind ``llm_endpoint``, :data:`DEFAULT_TIMEOUT_S` elsewhere.
    """

    KINDS: ClassVar[Mapping[str, str]] = FAULT_KINDS
    """The kinds this plan accepts (a tool plan, :mod:`llmcheck.episodes.faults`, its own)."""

    rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    retry_after: float = 1.0
    slow_s: float = 2.0
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        # canonical order, zero rates dropped: equal plans compare and hash equal
        rates = check_fault_rates(self.rates, self.KINDS)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UsageError(f"fault seed must be an integer, got {self.seed!r}")
        for name in ("retry_after", "slow_s", "timeout_s"):
            value = getattr(self, name)
            if name == "timeout_s" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
                    or not math.isfinite(value):
                raise UsageError(f"fault {name}={value!r} must be a number of seconds >= 0")
        object.__setattr__(self, "rates", rates)

    @classmethod
    def parse(cls, spec: str, *, seed: int = 0, **params: float) -> FaultPlan:
        """A plan from ``"rate_limit:0.3,timeout:0.1"`` (``=`` works as well as ``:``);
        an empty string or ``none`` is the empty plan."""
        return cls(rates=parse_fault_rates(spec, cls.KINDS), seed=seed, **params)

    @classmethod
    def build(cls, spec: str | FaultPlan | None = None, **kwargs: Any) -> FaultPlan:
        """A plan from a spec string or from ``KIND=RATE`` keywords (not both), with
        the parameters ``seed``, ``retry_after``, ``slow_s`` and ``timeout_s`` among the
        keywords: what ``@llmcheck.faults``, the ``llm_faults`` marker and fixture take."""
        if isinstance(spec, FaultPlan) and not kwargs:
            return spec
        params = {k: kwargs.pop(k) for k in ("seed", "retry_after", "slow_s", "timeout_s")
                  if k in kwargs}
        if spec is not None and kwargs:
            raise UsageError(f"give a spec string or KIND=RATE keywords, not both (got "
                             f"{spec!r} and {', '.join(kwargs)})")
        if spec is not None:
            return cls.parse(spec, **params)
        return cls(rates=kwargs, **params)

    def __bool__(self) -> bool:
        return bool(self.rates)

    def spec(self) -> str:
        """The plan's rates in the form :meth:`parse` reads."""
        return ",".join(f"{k}:{v:g}" for k, v in self.rates.items())

    def draw(self, key: Any, call: int) -> str | None:
        """The fault of call number ``call`` (0-based) made under ``key`` (a sample's
        seed, or any stable name), or None for a clean call."""
        if not self.rates:
            return None
        u = _mix("fault", self.seed, key, call) / 2.0 ** 64
        edge = 0.0
        for kind, rate in self.rates.items():
            edge += rate
            if u < edge:
                return kind
        return None

    def variant(self, key: Any, call: int, choices: int) -> int:
        """A second deterministic draw for the details of a fault (which 5xx status...)."""
        return _mix("variant", self.seed, key, call) % choices

    def __repr__(self) -> str:
        return f"FaultPlan({self.spec() or 'none'}, seed={self.seed})"


# --------------------------------------------------------------------------- rendering


@dataclass
class FaultResponse:
    """What to put on the wire for a fault.

    ``action`` is ``respond`` (send ``status``/``headers``/``body``, a JSON document;
    as an SSE stream of ``chunks`` when the request streamed), ``hold`` (say nothing
    for ``delay`` seconds, then drop the connection: a timeout), ``reset`` (close the
    connection at once: a connection error), ``forward`` (send the upstream's answer
    after ``delay`` seconds: slow) or ``cut`` (send the first half of the upstream's
    answer, then close).
    """

    kind: str
    action: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    delay: float = 0.0

    def stream_chunks(self) -> list[bytes]:
        """The answer as SSE events (``data: {...}`` lines ending in ``[DONE]``)."""
        assert self.body is not None
        return sse_events(self.body)


def render(kind: str, plan: FaultPlan, request: Mapping[str, Any], key: Any = 0,
           call: int = 0, upstream: Mapping[str, Any] | None = None) -> FaultResponse:
    """The wire form of ``kind`` for a chat-completion ``request`` (its JSON body).

    ``upstream`` is the real answer (a chat-completion document) for the kinds in
    :data:`NEEDS_UPSTREAM` that damage it (``truncated``); the others ignore it.
    """
    kind = LEGACY_ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise UsageError(f"unknown fault kind {kind!r}; the kinds are " + ", ".join(KINDS))
    model = str(request.get("model") or "unknown")
    if kind == "rate_limit":
        retry = plan.retry_after
        return FaultResponse(kind, "respond", 429, {
            "Retry-After": f"{retry:g}", "retry-after-ms": str(round(retry * 1000)),
            "x-ratelimit-remaining-requests": "0"},
            error_body("Rate limit reached for requests (injected by llmcheck). "
                       f"Please try again in {retry:g}s.", "requests", "rate_limit_exceeded"))
    if kind == "server_error":
        status = SERVER_ERROR_STATUSES[plan.variant(key, call, len(SERVER_ERROR_STATUSES))]
        return FaultResponse(kind, "respond", status, {}, error_body(
            f"The server had an error while processing your request ({status}, injected "
            "by llmcheck).", "server_error", "server_error"))
    if kind == "timeout":
        return FaultResponse(kind, "hold", delay=plan.timeout_s if plan.timeout_s is not None
                             else DEFAULT_TIMEOUT_S)
    if kind == "connection_error":
        return FaultResponse(kind, "reset")
    if kind == "slow":
        return FaultResponse(kind, "forward", delay=plan.slow_s)
    if kind == "stream_cut":
        return FaultResponse(kind, "cut")
    if kind == "truncated":
        base = dict(upstream) if upstream is not None else completion_body(model, "")
        return FaultResponse(kind, "respond", 200, {}, truncate(base))
    if kind == "empty":
        return FaultResponse(kind, "respond", 200, {}, completion_body(model, ""))
    if kind == "refusal":
        return FaultResponse(kind, "respond", 200, {}, completion_body(model, REFUSAL_TEXT))
    if kind == "malformed_json":
        return FaultResponse(kind, "respond", 200, {}, completion_body(
            model, '{"answer": "the model stopped writing JSON half-way, "items": [1, 2'))
    if kind == "wrong_schema":
        return FaultResponse(kind, "respond", 200, {}, completion_body(
            model, json.dumps(wrong_instance(_requested_schema(request)))))
    # bad_tool_call
    return FaultResponse(kind, "respond", 200, {}, completion_body(
        model, None, tool_call=(_first_tool(request), '{"arguments": "cut off here')))


def error_body(message: str, type_: str, code: str) -> dict[str, Any]:
    """An OpenAI-style error document."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def completion_body(model: str, content: str | None, *, finish_reason: str | None = None,
                    tool_call: tuple[str, str] | None = None) -> dict[str, Any]:
    """A chat-completion document with one choice."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_call is not None:
        name, arguments = tool_call
        message["tool_calls"] = [{"id": "call_llmcheck_fault", "type": "function",
                                  "function": {"name": name, "arguments": arguments}}]
    finish = finish_reason or ("tool_calls" if tool_call is not None else "stop")
    tokens = max(1, len(content or "") // 4)
    return {
        "id": "chatcmpl-llmcheck-fault", "object": "chat.completion",
        "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens},
    }


def truncate(body: dict[str, Any]) -> dict[str, Any]:
    """The answer cut to half its length (at least one character gone), with
    ``finish_reason="length"``, as a provider sends when ``max_tokens`` runs out."""
    body = json.loads(json.dumps(body))
    for choice in body.get("choices") or []:
        message = choice.get("message") or {}
        text = message.get("content") or ""
        message["content"] = text[: max(0, min(len(text) - 1, len(text) // 2))]
        choice["finish_reason"] = "length"
    usage = body.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        usage["completion_tokens"] = max(0, usage["completion_tokens"] // 2)
        if isinstance(usage.get("prompt_tokens"), int):
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return body


def _requested_schema(request: Mapping[str, Any]) -> dict[str, Any] | None:
    fmt = request.get("response_format")
    if isinstance(fmt, Mapping) and isinstance(fmt.get("json_schema"), Mapping):
        schema = fmt["json_schema"].get("schema")
        return dict(schema) if isinstance(schema, Mapping) else None
    return None


_WRONG_TYPE = {"string": 12345, "integer": "not a number", "number": "not a number",
               "boolean": "yes", "array": {"not": "a list"}, "object": ["not", "an object"],
               "null": 0}


def wrong_instance(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Valid JSON that a schema rejects: every declared property with a value of the
    wrong type, the first required one missing, and an undeclared field. Without a
    schema, an object no application expects."""
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(props, Mapping) or not props:
        return {"unexpected_field": True, "value": "not what was asked for"}
    required = [r for r in (schema.get("required") or []) if isinstance(r, str)]
    out: dict[str, Any] = {}
    for name, sub in props.items():
        kind = sub.get("type") if isinstance(sub, Mapping) else None
        out[name] = _WRONG_TYPE.get(kind if isinstance(kind, str) else "", None)
    if required:
        out.pop(required[0], None)
    out["unexpected_field"] = True
    return out


def _first_tool(request: Mapping[str, Any]) -> str:
    tools = request.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            fn = tool.get("function") if isinstance(tool, Mapping) else None
            if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
                return fn["name"]
    return "tool"


def sse_events(body: Mapping[str, Any]) -> list[bytes]:
    """A chat-completion document as the SSE events a streaming client reads: the role,
    the content in a few pieces, tool calls, the finish reason, usage, ``[DONE]``."""
    base = {"id": body.get("id", "chatcmpl-llmcheck"), "object": "chat.completion.chunk",
            "created": body.get("created", int(time.time())), "model": body.get("model")}
    events: list[bytes] = []

    def emit(choices: list[dict[str, Any]], **extra: Any) -> None:
        doc = {**base, "choices": choices, **extra}
        events.append(b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n")

    for choice in body.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        emit([{"index": index, "delta": {"role": "assistant", "content": ""},
               "finish_reason": None}])
        text = message.get("content") or ""
        for piece in re.findall(r"\S+\s*|\s+", text):
            emit([{"index": index, "delta": {"content": piece}, "finish_reason": None}])
        for n, call in enumerate(message.get("tool_calls") or []):
            emit([{"index": index, "delta": {"tool_calls": [{
                "index": n, "id": call.get("id"), "type": "function",
                "function": call.get("function")}]}, "finish_reason": None}])
        emit([{"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}])
    if body.get("usage") is not None:
        emit([], usage=body["usage"])
    events.append(b"data: [DONE]\n\n")
    return events


def cut_point(length: int) -> int:
    """Where a ``stream_cut`` stops: half-way, at least one unit in and one short."""
    return max(1, min(length - 1, length // 2)) if length > 1 else 0
