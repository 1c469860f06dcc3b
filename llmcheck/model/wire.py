"""The proxy's wire: which headers pass, where a request goes, and the OpenAI
chat-completion documents and SSE streams it reads (to record and cache them) and
writes (errors, replays). Pure functions over bytes, headers and documents, apart
from the few that act on an aiohttp request."""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from llmcheck.errors import UsageError
from llmcheck.injection.attribution import ROLE_HEADER, SAMPLE_HEADER
from llmcheck.injection.catalogue import (
    error_body,
    sse_events,
)
from llmcheck.redact import redact

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

    from llmcheck.core.context import SampleContext


KEY_HEADER = "X-Llmcheck-Key"
"""Request header: the key of the proxy's plan for a request outside any sample."""
FAULT_HEADER = "X-Llmcheck-Fault"
"""Response header on a served fault: ``<kind>; proxy`` (the simulator's format)."""
CACHE_HEADER = "X-Llmcheck-Cache"
"""Response header on an answer replayed from the cache: ``hit``."""

_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "content-length", SAMPLE_HEADER.lower(),
                                KEY_HEADER.lower(), ROLE_HEADER.lower()}
_NOT_RETURNED = _HOP_BY_HOP | {"content-length", "date", "server"}
_CHAT_SUFFIX = "/chat/completions"
_NOT_IN_CACHE_KEY = frozenset({"model", "messages", "stream", "stream_options"})
_DATA = re.compile(rb"^data:[ \t]?(.*?)\r?$", re.MULTILINE)


def _dumps(obj: Any) -> bytes:
    from llmcheck.text import utf8_json

    return utf8_json(obj).encode()  # an answer may hold a lone surrogate


def _with_seed(raw: bytes | bytearray, seed: int) -> bytearray:
    """A JSON object's text with ``"seed": seed`` added before its closing brace, for
    an object that has no seed: one copy of a large body, not a re-serialization."""
    space = b" \t\r\n"
    end = len(raw) - 1
    while end > 0 and raw[end] in space:
        end -= 1  # the closing brace
    last = end - 1
    while last > 0 and raw[last] in space:
        last -= 1
    out = bytearray(memoryview(raw)[:last + 1])
    out += (b"" if raw[last] == ord("{") else b",") + b'"seed":%d}' % int(seed)
    return out




def _shown(url: str) -> str:
    """``url`` without any user:password part, to print."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def _check_upstream(upstream: str) -> str:
    if not isinstance(upstream, str):
        raise UsageError(f"upstream must be a URL such as http://127.0.0.1:8000/v1, "
                         f"got {upstream!r}")
    parts = urlsplit(upstream.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"upstream must be an http(s) base URL such as "
                         f"https://api.openai.com/v1, got {upstream!r}")
    if parts.query or parts.fragment:
        raise UsageError("upstream must be a base URL without a query or fragment")
    return upstream.strip().rstrip("/")


def _route(raw_path: str) -> tuple[str | None, str] | None:
    """``(sample token or None, path suffix after /v1 with the query)``, or None."""
    path, sep, query = raw_path.partition("?")
    token = None
    if path.startswith("/s/"):
        token, _, path = path[3:].partition("/")
        path = "/" + path
        if not token:
            return None
    if path != "/v1" and not path.startswith("/v1/"):
        return None
    return token, path[3:] + sep + query


def _sample(token: str | None) -> SampleContext | None:
    if not token:
        return None
    from llmcheck.core.context import sample_by_token

    return sample_by_token(token)


def _returned(headers: Any) -> Any:
    from multidict import CIMultiDict

    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in _NOT_RETURNED:
            out.add(name, value)
    return out


def _response_for(up: aiohttp.ClientResponse) -> web.StreamResponse:
    from aiohttp import web

    return web.StreamResponse(status=up.status, reason=up.reason,
                              headers=_returned(up.headers))


def _is_sse(headers: Any) -> bool:
    return "text/event-stream" in headers.get("Content-Type", "")


def _error(status: int, message: str, type_: str, code: str) -> web.Response:
    from aiohttp import web

    return web.Response(body=_dumps(error_body(message, type_, code)), status=status,
                        content_type="application/json")


async def _respond(request: web.Request, status: int, body: Mapping[str, Any],
                   headers: Mapping[str, str], stream: bool) -> web.StreamResponse:
    """A chat-completion (or error) document, as JSON or as an SSE stream."""
    from aiohttp import web

    if not stream:
        return web.Response(body=_dumps(body), status=status, content_type="application/json",
                            headers=headers)
    resp = web.StreamResponse(status=status, headers={
        **headers, "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache"})
    try:
        await resp.prepare(request)
        for event in sse_events(body):
            await resp.write(event)
        await resp.write_eof()
    except ConnectionError:  # the client went away; the call is recorded already
        pass
    return resp


def _drop(request: web.Request, *, reset: bool = False) -> None:
    """Close the client's connection now, with no (further) answer; ``reset`` sends a
    TCP reset instead of an orderly close."""
    transport = request.transport
    if transport is None:
        return
    if request.protocol is not None:
        request.protocol.force_close()
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()
    else:
        transport.close()


def _describe(exc: BaseException) -> str:
    cause = getattr(exc, "os_error", None)
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


_ERROR_BODY_READ = 65536
"""Bytes of a non-JSON error body read for its message (redacted, then cut to 160)."""


def _failure_message(status: int, data: bytes) -> str:
    doc = _json_object(data)
    error = doc.get("error") if doc is not None else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str):
        message = data[:_ERROR_BODY_READ].decode("utf-8", "replace")
    # redacted before it is cut: a cut key would no longer match the whole secret
    message = " ".join(redact(message).split())
    if len(message) > 160:
        message = message[:157] + "..."
    return f"upstream answered {status}" + (f": {message}" if message else "")


def _tokens(usage: Any, name: str) -> int | None:
    value = usage.get(name) if isinstance(usage, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sse_data(data: bytes) -> Iterable[bytes]:
    for match in _DATA.finditer(data):
        yield match.group(1).strip()


def _last_usage(data: bytes) -> dict[str, Any] | None:
    """The ``usage`` of the last SSE chunk that carries one."""
    usage = None
    for event in _sse_data(data):
        if event.startswith(b"{") and b'"usage"' in event:
            doc = _json_object(event)
            if doc is not None and isinstance(doc.get("usage"), dict):
                usage = doc["usage"]
    return usage


def _answer_of(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first choice of a chat-completion document, in the proxy's plain form:
    content, tool calls (name, arguments, id), finish reason, usage."""
    choices = doc.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message") or {}
    calls = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            return None
        calls.append({"name": str(fn.get("name") or ""),
                      "arguments": str(fn.get("arguments") or ""), "id": call.get("id")})
    content = message.get("content")
    return {"content": content if isinstance(content, str) else "", "tool_calls": calls,
            "finish_reason": choices[0].get("finish_reason"), "usage": doc.get("usage")}


def _assemble_stream(data: bytes) -> dict[str, Any] | None:
    """An SSE stream's answer in the form of :func:`_answer_of`, or None if it did not
    end with ``[DONE]`` or has several choices."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish = usage = None
    done = False
    for event in _sse_data(data):
        if event == b"[DONE]":
            done = True
            continue
        doc = _json_object(event)
        if doc is None:
            return None
        if isinstance(doc.get("usage"), dict):
            usage = doc["usage"]
        for choice in doc.get("choices") or []:
            if choice.get("index", 0) != 0:
                return None
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                text.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call.get("index", 0),
                                        {"name": "", "arguments": "", "id": None})
                if call.get("id"):
                    slot["id"] = call["id"]
                fn = call.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
    if not done:
        return None
    return {"content": "".join(text), "tool_calls": [calls[i] for i in sorted(calls)],
            "finish_reason": finish, "usage": usage}


def _completion_dict(answer: Mapping[str, Any], ex: Any, cost: float | None
                     ) -> dict[str, Any]:
    """What the cache stores: :meth:`llmcheck.model.completion.Completion.to_dict`."""
    from llmcheck.model.completion import Completion, ToolCall, Usage

    usage = answer.get("usage")
    return Completion(
        text=answer["content"], model=ex.model, finish_reason=answer.get("finish_reason"),
        tool_calls=tuple(ToolCall(c["name"], c["arguments"],
                                  c["id"] if isinstance(c.get("id"), str) else None)
                         for c in answer["tool_calls"]),
        usage=Usage(_tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens")),
        cost=cost, latency=time.perf_counter() - ex.started,
        time_to_first_token=ex.first_token,
        gaps=tuple(ex.clock.gaps) if ex.clock is not None else (),
    ).to_dict()


def _replay_body(payload: Mapping[str, Any], wire_model: str) -> dict[str, Any]:
    """A chat-completion document from a cached ``Completion.to_dict()``."""
    calls = payload.get("tool_calls") or []
    text = payload.get("text") or ""
    message: dict[str, Any] = {"role": "assistant",
                               "content": text if text or not calls else None, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": c.get("id") or f"call_llmcheck_cache_{i}", "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}}
            for i, c in enumerate(calls)]
    usage = payload.get("usage") or {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return {
        "id": "chatcmpl-llmcheck-cache-" + os.urandom(6).hex(), "object": "chat.completion",
        "created": int(time.time()), "model": wire_model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": payload.get("finish_reason") or "stop"}],
        "usage": None if prompt is None and completion is None else {
            "prompt_tokens": prompt or 0, "completion_tokens": completion or 0,
            "total_tokens": (prompt or 0) + (completion or 0)},
    }


