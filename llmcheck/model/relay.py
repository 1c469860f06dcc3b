"""What the proxy does with the upstream and with the sample: forwarding a request
and piping its answer back (noting how it ended), relaying failures, and recording
each exchange through the one accounting path (:mod:`llmcheck.model.accounting`)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from llmcheck.core.exchanges import answer_text
from llmcheck.injection.attribution import ROLE_HEADER, read_role_header
from llmcheck.injection.catalogue import (
    NEEDS_UPSTREAM,
    cut_point,
)
from llmcheck.model.accounting import ModelSession, record_call, replay_key
from llmcheck.model.streaming import SSEClock

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

    from llmcheck.core.context import Role, SampleContext
from llmcheck.model.wire import (
    _NOT_FORWARDED,
    _NOT_IN_CACHE_KEY,
    FAULT_HEADER,
    _describe,
    _drop,
    _error,
    _failure_message,
    _is_sse,
    _json_object,
    _last_usage,
    _response_for,
    _returned,
    _tokens,
)


def answer_of(answer: Mapping[str, Any] | None) -> str | None:
    """The text of an answer in the proxy's plain form (:func:`~llmcheck.model.wire.
    _answer_of`): its content and tool calls; None for no answer."""
    if answer is None:
        return None
    return answer_text(answer.get("content"), ((c["name"], c["arguments"])
                                               for c in answer.get("tool_calls") or []))


def tool_calls_of(answer: Mapping[str, Any] | None) -> tuple[tuple[str, str, str | None], ...]:
    """The tool calls of an answer in the proxy's plain form (or a cached completion's
    dict) as ``(name, arguments, id)``: what a recorded episode is rebuilt from."""
    calls = (answer or {}).get("tool_calls") or []
    return tuple((str(c.get("name") or ""), str(c.get("arguments") or ""),
                  c["id"] if isinstance(c.get("id"), str) else None)
                 for c in calls if isinstance(c, dict))


class _Exchange:
    """One chat completion passing through: what to record about it, and where."""

    __slots__ = ("ctx", "model", "wire_model", "started", "fault", "first_byte", "recorded",
                 "record", "params", "call", "messages", "answer",
                 "tool_calls", "role", "clock")

    def __init__(self, ctx: SampleContext | None, model: str, wire_model: str,
                 fault: str | None, call: int) -> None:
        self.ctx = ctx
        self.call = call
        """The request's number within its sample (or the proxy's key)."""
        self.model = model
        self.wire_model = wire_model
        self.started = time.perf_counter()
        self.fault = fault
        self.first_byte: float | None = None
        self.recorded = False
        """Whether the call's outcome was recorded (the first outcome is the one kept)."""
        self.record: Any = None
        """The CallRecord added to the sample, if any."""
        self.params: dict[str, Any] = {}
        """The sampling parameters the request carried (seed included)."""
        self.messages: Any = None
        """The messages the request carried (kept if the sample fails)."""
        self.answer: str | None = None
        """The answer's text the client got, once read (see :func:`answer_of`)."""
        self.tool_calls: tuple[tuple[str, str, str | None], ...] = ()
        """The answer's tool calls (see :func:`tool_calls_of`)."""
        self.role: Role = "app"
        """Who made the call (the request's ROLE_HEADER): app, user or judge."""
        self.clock: SSEClock | None = None
        """A relayed stream's timing (time to first token, gaps), once its bytes flow."""

    def touch(self) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter() - self.started

    def heard(self, data: bytes) -> None:
        """Time the SSE events in ``data``, a piece of a relayed stream."""
        if self.clock is None:
            self.clock = SSEClock(self.started)
        self.clock.feed(data)

    @property
    def first_token(self) -> float | None:
        """Time to the first token of a relayed stream, else to the answer's first byte."""
        if self.clock is not None and self.clock.first is not None:
            return self.clock.first
        return self.first_byte


class Relay:
    """The upstream side of :class:`~llmcheck.model.proxy.FaultProxy` (its base class):
    the aiohttp session to the upstream, and the recording of every exchange."""

    upstream: str
    cache: Any
    _accept: str | None
    _upstream_key: str | None
    _session: aiohttp.ClientSession | None
    _stats_lock: threading.Lock
    _upstream_failures: int
    _accounts: ModelSession | None
    _model_name: Callable[[str], str] | None
    _cost: Callable[[str, int | None, int | None], float | None] | None

    @staticmethod
    def _role(request: web.Request) -> tuple[Role, bool]:
        """Who made a request, and whether faults apply to it (its ROLE_HEADER)."""
        return read_role_header(request.headers.get(ROLE_HEADER))

    def _headers(self, request: web.Request, *, chat: bool = False) -> Any:
        """The headers forwarded upstream: the client's, less hop-by-hop ones and the
        proxy's own (its token, llmcheck's), with the upstream's key when it has one."""
        from multidict import CIMultiDict

        out: CIMultiDict[str] = CIMultiDict()
        for name, value in request.headers.items():
            if name.lower() not in _NOT_FORWARDED:
                out.add(name, value)
        if self._accept is not None:  # the proxy's own key, not the provider's
            for name in ("Authorization", "api-key", "x-api-key"):
                out.popall(name, None)
        if self._upstream_key is not None:
            out.popall("api-key", None)
            out["Authorization"] = f"Bearer {self._upstream_key}"
        if chat:
            out["Accept-Encoding"] = "identity"  # the proxy reads these answers
        return out

    async def _admit(self, ex: _Exchange) -> web.Response | None:
        """Admit a chat completion about to go upstream to the session's budget and
        pace it (``--llm-rpm``), as llmcheck's own client does; or the refusal to send
        (a 429 naming the budget that tells clients not to retry). No accounts (the
        standalone proxy): always admitted."""
        refused = self._refusal(ex.ctx)
        if refused is not None:
            ex.recorded = True  # nothing was sent: there is no call to record
            return refused
        if self._accounts is not None:
            await self._accounts.limiter.await_slot(ex.model)
        return None

    def _refusal(self, ctx: SampleContext | None) -> web.Response | None:
        """Count a request about to go upstream against the session's budget; past it,
        the 429 that names the budget and tells clients not to retry (nothing is sent).
        No accounts (the standalone proxy): always admitted."""
        reason = None if self._accounts is None else self._accounts.admit(ctx)
        if reason is None:
            return None
        response = _error(429, f"llmcheck: the session's budget is spent ({reason}); "
                          "this request was not sent to the model.",
                          "insufficient_quota", "llmcheck_budget_spent")
        response.headers["x-should-retry"] = "false"
        return response

    async def _cut(self, request: web.Request, suffix: str, raw: bytes | bytearray,
                   headers: Any, ex: _Exchange, stream: bool) -> web.StreamResponse:
        """``stream_cut``: the first half of the upstream's answer, then a closed connection."""
        from aiohttp import web

        got = await self._fetch(suffix, raw, headers, ex)
        if isinstance(got, web.StreamResponse):
            return got
        status, up_headers, data = got
        if status != 200:
            return await self._relay_failure(request, ex, status, up_headers, data)
        resp = web.StreamResponse(status=200, headers=_returned(up_headers))
        resp.headers[FAULT_HEADER] = f"{ex.fault}; proxy"
        if not (stream and _is_sse(up_headers)):
            resp.content_length = len(data)  # promise the whole body, send half
        usage = _last_usage(data) if stream else (_json_object(data) or {}).get("usage")
        ex.touch()
        self._record(ex, usage=usage, error=f"injected {ex.fault}: the answer stopped "
                     "half-way", spent=True)
        half = data[:cut_point(len(data))]
        try:
            await resp.prepare(request)
            # in the upstream's event boundaries, so a client reads the whole events first
            for piece in re.split(rb"(?<=\n\n)", half):
                if piece:
                    await resp.write(piece)
        except ConnectionError:
            return resp
        _drop(request)
        return resp

    # ------------------------------------------------------------- upstream I/O

    def _request(self, method: str, suffix: str, raw: bytes | bytearray, headers: Any) -> Any:
        from yarl import URL

        assert self._session is not None
        return self._session.request(method, URL(self.upstream + suffix, encoded=True),
                                     data=raw, headers=headers, allow_redirects=False,
                                     skip_auto_headers=("Accept-Encoding", "User-Agent",
                                                        "Content-Type"))

    async def _fetch(self, suffix: str, raw: bytes | bytearray,
                     headers: Any, ex: _Exchange
                     ) -> tuple[int, Any, bytes] | web.StreamResponse:
        """The upstream's whole answer (status, headers, body), or the error to send."""
        import aiohttp

        try:
            async with self._request("POST", suffix, raw, headers) as up:
                return up.status, up.headers, await up.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return self._unreachable(ex, exc)

    async def _relay_failure(self, request: web.Request, ex: _Exchange, status: int,
                             up_headers: Any, data: bytes) -> web.StreamResponse:
        """An upstream's answer that is no usable completion, sent on as it came."""
        from aiohttp import web

        resp = web.Response(status=status, body=data, headers=_returned(up_headers))
        self._record(ex, error=_failure_message(status, data),
                     provider=status == 429 or status >= 500)
        return resp

    async def _passthrough(self, request: web.Request, suffix: str, raw: bytes | bytearray,
                           headers: Any) -> web.StreamResponse:
        """Any other request: forwarded, its answer streamed back untouched."""
        import aiohttp

        try:
            async with self._request(request.method, suffix, raw, headers) as up:
                resp = _response_for(up)
                await self._pipe(request, up, resp, None, False)
                return resp
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return self._unreachable(None, exc)

    async def _pipe(self, request: web.Request, up: aiohttp.ClientResponse,
                    resp: web.StreamResponse, ex: _Exchange | None, collect: bool,
                    whole: Callable[[aiohttp.ClientResponse, bytes], Awaitable[None]]
                    | None = None) -> str:
        """Send the upstream's answer on chunk by chunk, and say how it ended: ``whole``
        (``whole(up, bytes)`` was awaited just before the client could tell: before the
        last byte of a sized body, the ``[DONE]`` of an SSE stream or the end of a
        chunked body; the bytes only if ``collect``), ``broken`` (the upstream broke off
        mid-body: the client's connection is closed too) or ``gone`` (the client went
        away)."""
        import aiohttp

        size = up.content_length if request.method != "HEAD" else None
        if size is not None:
            resp.content_length = size
        ended = whole is None
        if size == 0 and whole is not None:
            ended = True  # the headers alone tell the client the answer is complete
            await whole(up, b"")
        try:
            await resp.prepare(request)
        except ConnectionError:
            return "gone"
        buf = bytearray()
        received = 0
        sse = _is_sse(up.headers)
        tail = b""
        chunks = up.content.iter_any().__aiter__()
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                if ex is None:
                    with self._stats_lock:
                        self._upstream_failures += 1
                _drop(request)
                return "broken"
            if ex is not None:
                ex.touch()
                if sse:
                    ex.heard(chunk)
            if collect:
                buf += chunk
            received += len(chunk)
            if not ended and ((size is not None and received >= size)
                              or (sse and b"data: [DONE]" in tail + chunk)):
                ended = True  # the client can tell the answer is complete once it has this
                await whole(up, bytes(buf))  # type: ignore[misc]
            if sse:
                tail = (tail + chunk)[-16:]
            try:
                await resp.write(chunk)
            except ConnectionError:
                return "gone"
        if not ended:
            await whole(up, bytes(buf))  # type: ignore[misc]
        try:
            await resp.write_eof()
        except ConnectionError:
            return "gone"
        return "whole"

    def _unreachable(self, ex: _Exchange | None, exc: BaseException) -> web.Response:
        """The 502 (or 504, for a silent upstream) of an upstream that gave no answer."""
        if isinstance(exc, asyncio.TimeoutError):
            status, what = 504, "did not answer in time"
        else:
            status, what = 502, f"could not be reached ({_describe(exc)})"
        message = f"llmcheck proxy: the upstream {what}"
        if ex is not None:
            self._record(ex, error=message, provider=True)
        else:
            with self._stats_lock:
                self._upstream_failures += 1
        return _error(status, message + ".", "upstream_error", "upstream_unavailable")

    # -------------------------------------------------------------- recording

    def _mapped(self, model: str) -> str:
        if self._model_name is None:
            return model
        try:
            return str(self._model_name(model))
        except Exception:  # noqa: BLE001 - a naming callback must not break the proxy
            return model

    def _price(self, model: str, prompt: int | None, completion: int | None) -> float | None:
        if self._cost is None:
            return None
        try:
            value = self._cost(model, prompt, completion)
        except Exception:  # noqa: BLE001 - unknown price, not an error
            return None
        return float(value) if isinstance(value, (int, float)) else None

    def _record(self, ex: _Exchange, *, usage: Any = None, error: str | None = None,
                provider: bool = False, spent: bool = True) -> float | None:
        """Add the exchange's CallRecord to its sample (if any); return its cost.

        ``provider``: a real failure of the upstream (counted, and noted on the
        sample). ``spent=False``: an injected answer that never reached the upstream
        (no tokens; it cost nothing). Only the first outcome of an exchange counts."""
        if ex.recorded:
            return None
        ex.recorded = True
        if provider:
            with self._stats_lock:
                self._upstream_failures += 1
            if ex.ctx is not None and error is not None:
                ex.ctx.note_provider_failure(f"{ex.model}: {error}")
        prompt = _tokens(usage, "prompt_tokens")
        completion = _tokens(usage, "completion_tokens")
        if ex.fault is not None and ex.fault not in NEEDS_UPSTREAM:
            spent = False
        if spent:
            cost = self._price(ex.model, prompt, completion) if (
                prompt is not None or completion is not None) else None
        else:
            cost = 0.0 if self._cost is not None else None
        if spent and self._accounts is not None:
            self._accounts.budget.spend(cost)  # --llm-max-cost counts the app's calls too
        ex.record = record_call(
            ex.ctx, model=ex.model, latency=time.perf_counter() - ex.started,
            prompt_tokens=prompt if spent else None,
            completion_tokens=completion if spent else None, cost=cost,
            time_to_first_token=ex.first_token, error=error, via="proxy", fault=ex.fault,
            params=ex.params, answered=ex.call, usable=ex.fault in (None, "slow"),
            messages=ex.messages, answer=ex.answer, role=ex.role, tool_calls=ex.tool_calls,
            chunks=None if ex.clock is None else ex.clock.chunks,
            max_gap=None if ex.clock is None else ex.clock.max_gap)
        return cost

    def _record_cached(self, ex: _Exchange, payload: Mapping[str, Any]) -> None:
        ex.recorded = True
        usage = payload.get("usage") or {}
        record_call(ex.ctx, model=ex.model, latency=float(payload.get("latency") or 0.0),
                    prompt_tokens=usage.get("prompt_tokens"),
                    completion_tokens=usage.get("completion_tokens"), cost=payload.get("cost"),
                    cached=True, time_to_first_token=payload.get("time_to_first_token"),
                    via="proxy", params=ex.params, answered=ex.call, messages=ex.messages,
                    role=ex.role,
                    answer=answer_text(payload.get("text"), (
                        (c.get("name", ""), c.get("arguments", ""))
                        for c in payload.get("tool_calls") or [] if isinstance(c, dict))),
                    tool_calls=tool_calls_of(payload))

    def _cache_key(self, ex: _Exchange, body: Mapping[str, Any]) -> str | None:
        """The replay key of a sample's clean chat completion, or None (no cache, no
        sample, or several choices asked for)."""
        ctx = ex.ctx
        if self.cache is None or ctx is None or body.get("n") not in (None, 1):
            return None
        params = {k: v for k, v in body.items() if k not in _NOT_IN_CACHE_KEY}
        if params.get("seed") == ctx.seed:
            del params["seed"]  # the derived per-sample seed, as llmcheck's client keys it
        return replay_key(ex.model, body.get("messages"), params, ctx)


