"""``llmcheck proxy``: an OpenAI-compatible HTTP proxy that injects catalogue faults.

Point any OpenAI-compatible client (the openai SDK, LangChain's ``ChatOpenAI``,
litellm, curl) at :attr:`FaultProxy.url` instead of the provider: every request
under ``/v1/...`` is forwarded to the upstream (method, path, query, body and
headers, minus hop-by-hop ones), and answers, SSE streams included, come back
chunk by chunk, byte for byte. Only ``POST .../chat/completions`` gets faults:
each one draws a kind of :data:`~llmcheck.injection.catalogue.KINDS` from a
:class:`~llmcheck.injection.catalogue.FaultPlan` and serves it the way
:func:`~llmcheck.injection.catalogue.render` says (an injected 429 or 500 never
reaches the upstream; ``slow``, ``truncated`` and ``stream_cut`` damage the
upstream's real answer)::

    with SimulatorServer() as sim, FaultProxy(sim.url, FaultPlan.parse("rate_limit:0.2")) as px:
        openai.OpenAI(base_url=px.url, api_key="x").chat.completions.create(...)

**Attribution.** A request names its sample with the header
:data:`~llmcheck.injection.attribution.SAMPLE_HEADER` or with the path form
``/s/<token>/v1/...`` (a base URL the code under test can be given); the token
is :attr:`llmcheck.core.context.SampleContext.token`. For such a request the fault
is the sample's (:meth:`~llmcheck.core.context.SampleContext.next_fault`; with no
plan on the sample, the proxy's own plan keyed by the sample's seed), it is
recorded in ``ctx.faults`` (``via="proxy"``), the sample's seed is added to
the forwarded body when absent, and a :class:`~llmcheck.records.schema.CallRecord`
lands in ``ctx.calls`` for every chat completion, before the client can tell its
answer (or error) is complete. A failure the proxy did not
inject (an upstream 429 or 5xx, a refused connection, an upstream timeout) is
relayed to the client as it came (a refused or silent upstream as a 502 or
504 with an OpenAI-style body) and noted with
:meth:`~llmcheck.core.context.SampleContext.note_provider_failure`. Without a
sample, the proxy's plan applies with the key of the request header
``X-Llmcheck-Key`` (default ``"proxy"``) and a proxy-wide counter of chat
completions as call number.

**Keys.** ``upstream_api_key`` replaces whatever ``Authorization`` the client
sent; ``accept_key`` makes the proxy answer 401 to requests without
``Authorization: Bearer <accept_key>``, so a client can be given a throwaway
key while the real one stays in this process. The upstream key goes to the
upstream only, the accept key nowhere (it is taken off forwarded requests);
neither is logged or echoed.

**Cache.** With a :class:`~llmcheck.model.cache.ResponseCache` and a sample, a
chat completion without a fault is looked up under a key built the way
llmcheck's own client builds it (:func:`llmcheck.model.cache.cache_key` of the model
as ``model_name`` maps it, the messages, the parameters that shape the answer,
the sample index and the ordinal of identical calls in the sample, counted in
``ctx.call_counts``). The sample's derived seed is left out, as the client
leaves it out; unlike the client's, the stream flag is too, so a recording made
streamed replays plain and vice versa (and the proxy's keys never meet the
client's). The stored value is what
:meth:`llmcheck.model.completion.Completion.to_dict` gives (the cache's own format,
so entries are checked like the client's), rebuilt into a chat-completion
document (or an SSE stream) on a hit. That form keeps one choice: requests
with ``n`` > 1 bypass the cache.

The server is aiohttp in a background thread with its own event loop, like
:class:`llmcheck.simulator.SimulatorServer`; aiohttp is imported only when a
proxy starts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hmac
import itertools
import json
import os
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from llmcheck.errors import UsageError
from llmcheck.injection.attribution import SAMPLE_HEADER, register_proxy, unregister_proxy
from llmcheck.injection.catalogue import (
    NEEDS_UPSTREAM,
    FaultPlan,
    FaultResponse,
    cut_point,
    error_body,
    render,
    sse_events,
)
from llmcheck.loopback import LoopbackServer, add_listen_arguments, serve_until_interrupted
from llmcheck.redact import register_secret

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
                                KEY_HEADER.lower()}
_NOT_RETURNED = _HOP_BY_HOP | {"content-length", "date", "server"}
_CHAT_SUFFIX = "/chat/completions"
_NOT_IN_CACHE_KEY = frozenset({"model", "messages", "stream", "stream_options"})
_DATA = re.compile(rb"^data:[ \t]?(.*?)\r?$", re.MULTILINE)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class _Exchange:
    """One chat completion passing through: what to record about it, and where."""

    __slots__ = ("ctx", "model", "wire_model", "started", "fault", "first_byte", "recorded",
                 "record", "params")

    def __init__(self, ctx: SampleContext | None, model: str, wire_model: str,
                 fault: str | None) -> None:
        self.ctx = ctx
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

    def touch(self) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter() - self.started


class FaultProxy(LoopbackServer):
    """An OpenAI-compatible proxy to ``upstream`` (a base URL such as
    ``http://127.0.0.1:8000/v1``) that injects the faults of ``plan``.

    ``port=0`` picks a free port. ``cache`` is a
    :class:`~llmcheck.model.cache.ResponseCache` used for the calls of samples;
    ``model_name`` maps the model of a request body to the name recorded (and used
    in cache keys and prices), e.g. ``lambda m: "openai/" + m``; ``cost(model,
    prompt_tokens, completion_tokens)`` prices a call in dollars (None: unknown).
    ``register`` marks the proxy with
    :func:`~llmcheck.injection.attribution.register_proxy` while it runs, so
    in-process injection leaves its requests alone. ``upstream_timeout`` is how
    many seconds the upstream may stay silent before the client gets a 504.
    """

    _kind = "proxy"

    def __init__(
        self,
        upstream: str,
        plan: FaultPlan | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_api_key: str | None = None,
        accept_key: str | None = None,
        cache: Any = None,
        model_name: Callable[[str], str] | None = None,
        cost: Callable[[str, int | None, int | None], float | None] | None = None,
        register: bool = False,
        upstream_timeout: float = 600.0,
        shutdown_grace_s: float = 1.0,
    ) -> None:
        self.upstream = _check_upstream(upstream)
        if plan is not None and not isinstance(plan, FaultPlan):
            raise UsageError(f"plan must be a FaultPlan, got {type(plan).__name__}")
        self.plan = plan if plan is not None else FaultPlan()
        super().__init__(host, port, shutdown_grace_s)
        self._upstream_key = upstream_api_key or None
        if self._upstream_key is not None:
            # an upstream that echoes the key (in an error, say) must not get it into a
            # record: every record and report redacts registered secrets
            register_secret(self._upstream_key)
        self._accept = f"Bearer {accept_key}".encode() if accept_key else None
        self.cache = cache
        self._model_name = model_name
        self._cost = cost
        self._register = register
        self._registered: str | None = None
        self._upstream_timeout = upstream_timeout
        self._calls: dict[str, itertools.count[int]] = {}
        self._stats_lock = threading.Lock()
        self._request_count = 0
        self._faults: collections.Counter[str] = collections.Counter()
        self._upstream_failures = 0
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------- lifecycle

    def start(self) -> FaultProxy:
        """Bind, start serving in a background thread, and return once listening."""
        super().start()
        if self._register:
            self._registered = urlsplit(self.url).netloc
            register_proxy(self._registered)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop listening (held requests are dropped at once), let other in-flight
        requests finish for the grace period, join the thread. Idempotent."""
        if self._registered is not None:
            unregister_proxy(self._registered)
            self._registered = None
        super().stop(timeout)

    def _make_app(self) -> web.Application:
        from aiohttp import web

        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _on_start(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            # bytes are relayed as they came (a gzip body stays gzip); chat completions,
            # which the proxy reads, are asked for uncompressed
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30.0,
                                          sock_read=self._upstream_timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def _on_stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------ inspection

    def sample_url(self, token: str) -> str:
        """The base URL that attributes every request to the sample of ``token``."""
        return f"{self.root_url}/s/{token}/v1"

    @property
    def request_count(self) -> int:
        """HTTP requests received so far, on every path."""
        with self._stats_lock:
            return self._request_count

    @property
    def faults_served(self) -> collections.Counter[str]:
        """Faults injected so far, by kind (a copy)."""
        with self._stats_lock:
            return collections.Counter(self._faults)

    @property
    def upstream_failures(self) -> int:
        """Failures of the upstream the proxy relayed (not injected): 429s, 5xx,
        refused or silent connections, answers that stopped early."""
        with self._stats_lock:
            return self._upstream_failures

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._request_count = 0
            self._faults.clear()
            self._upstream_failures = 0

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"<FaultProxy {self.plan!r} {where} -> {_shown(self.upstream)}>"

    # ---------------------------------------------------------------- routing

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._stats_lock:
            self._request_count += 1
        route = _route(request.raw_path)
        if route is None:
            return _error(404, f"Invalid URL ({request.method} {request.path}): the llmcheck "
                          "proxy serves /v1/... and /s/<sample token>/v1/...",
                          "invalid_request_error", "unknown_url")
        if self._accept is not None and not hmac.compare_digest(
                request.headers.get("Authorization", "").encode(), self._accept):
            return _error(401, "Incorrect API key provided to the llmcheck proxy (it expects "
                          "the key it was started with).", "invalid_request_error",
                          "invalid_api_key")
        token, suffix = route
        token = token or request.headers.get(SAMPLE_HEADER)
        ctx = _sample(token)
        if request.method == "POST" and suffix.split("?", 1)[0].rstrip("/").endswith(
                _CHAT_SUFFIX):
            return await self._chat(request, suffix, ctx)
        raw = await request.read()
        return await self._passthrough(request, suffix, raw, self._headers(request))

    def _headers(self, request: web.Request, *, chat: bool = False) -> Any:
        from multidict import CIMultiDict

        out: CIMultiDict[str] = CIMultiDict()
        for name, value in request.headers.items():
            if name.lower() not in _NOT_FORWARDED:
                out.add(name, value)
        if self._upstream_key is not None:
            out.popall("api-key", None)
            out["Authorization"] = f"Bearer {self._upstream_key}"
        elif self._accept is not None:
            out.popall("Authorization", None)  # the proxy's own key, not the provider's
        if chat:
            out["Accept-Encoding"] = "identity"  # the proxy reads these answers
        return out

    def _draw(self, request: web.Request, ctx: SampleContext | None
              ) -> tuple[FaultPlan, Any, int, str | None]:
        """The plan, key, call number and fault kind of a chat completion."""
        if ctx is not None:
            call, kind = ctx.next_fault()
            if ctx.fault_plan is not None:
                return ctx.fault_plan, ctx.seed, call, kind
            return self.plan, ctx.seed, call, self.plan.draw(ctx.seed, call)
        key = request.headers.get(KEY_HEADER) or "proxy"
        # numbered per key, so a client that names its requests (one key per test
        # case, say) gets the same faults whatever else reaches the proxy meanwhile
        call = next(self._calls.setdefault(key, itertools.count()))
        return self.plan, key, call, self.plan.draw(key, call)

    # ----------------------------------------------------------- chat completions

    async def _chat(self, request: web.Request, suffix: str,
                    ctx: SampleContext | None) -> web.StreamResponse:
        raw = await request.read()
        headers = self._headers(request, chat=True)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):  # the upstream says what is wrong with it
            return await self._passthrough(request, suffix, raw, headers)
        plan, key, call, kind = self._draw(request, ctx)
        wire_model = str(body.get("model") or "unknown")
        ex = _Exchange(ctx, self._mapped(wire_model), wire_model, kind)
        if kind is not None:
            with self._stats_lock:
                self._faults[kind] += 1
            if ctx is not None:
                ctx.note_fault(call, kind, "proxy")
        if ctx is not None and "seed" not in body:
            body = {**body, "seed": ctx.seed}
            raw = _dumps(body)
        from llmcheck.records.schema import sampling_params

        ex.params = sampling_params(body)
        stream = body.get("stream") is True
        try:
            if kind is None:
                return await self._clean(request, suffix, raw, headers, body, ex, stream)
            return await self._fault(request, suffix, raw, headers, body, ex, stream,
                                     render(kind, plan, body, key, call), plan, key, call)
        except asyncio.CancelledError:
            self._record(ex, error="the client closed the connection")
            raise

    async def _fault(self, request: web.Request, suffix: str, raw: bytes, headers: Any,
                     body: dict[str, Any], ex: _Exchange, stream: bool, fault: FaultResponse,
                     plan: FaultPlan, key: Any, call: int) -> web.StreamResponse:
        from aiohttp import web

        if fault.action == "hold":
            # recorded now: the client gives up on its own clock, and its sample may end
            # before the proxy hears of it; the latency is updated when the hold ends
            self._record(ex, error=f"injected {fault.kind}: no answer")
            try:
                await self._sleep(fault.delay)
            finally:  # also when the client gives up first (and cancels this handler)
                if ex.record is not None:
                    ex.record.latency = time.perf_counter() - ex.started
            _drop(request)
            return web.Response(status=504)  # never sent: the connection is gone
        if fault.action == "reset":
            self._record(ex, error=f"injected {fault.kind}: connection reset")
            _drop(request, reset=True)
            return web.Response(status=502)
        if fault.action == "forward":
            await self._sleep(fault.delay)
            return await self._forward_chat(request, suffix, raw, headers, ex, stream)
        if fault.action == "cut":
            return await self._cut(request, suffix, raw, headers, ex, stream)
        if fault.kind == "truncated":
            plain = {k: v for k, v in body.items() if k != "stream_options"}
            plain["stream"] = False
            got = await self._fetch(suffix, _dumps(plain), headers, ex)
            if isinstance(got, web.StreamResponse):
                return got
            status, up_headers, data = got
            answer = _json_object(data) if status == 200 else None
            if answer is None:
                return await self._relay_failure(request, ex, status, up_headers, data)
            fault = render(fault.kind, plan, body, key, call, upstream=answer)
        usage = (fault.body or {}).get("usage") if fault.status == 200 else None
        error = None if fault.status < 400 else f"injected {fault.kind}: {fault.status}"
        ex.touch()
        self._record(ex, usage=usage if fault.kind == "truncated" else None, error=error,
                     spent=fault.kind == "truncated")
        return await _respond(request, fault.status, fault.body or {},
                              {**fault.headers, FAULT_HEADER: f"{fault.kind}; proxy"},
                              stream and fault.status == 200)

    async def _clean(self, request: web.Request, suffix: str, raw: bytes, headers: Any,
                     body: dict[str, Any], ex: _Exchange, stream: bool) -> web.StreamResponse:
        """A chat completion without a fault: from the cache, or forwarded (and stored)."""
        cache_key = self._cache_key(ex, body)
        if cache_key is not None:
            try:
                payload = await asyncio.get_running_loop().run_in_executor(
                    None, self.cache.get, cache_key)
            except UsageError as exc:  # a corrupt recording: say so, do not guess
                self._record(ex, error=str(exc))
                return _error(500, f"llmcheck proxy: {exc}", "server_error", "cache_error")
            if payload is not None:
                answer = _replay_body(payload, ex.wire_model)
                self._record_cached(ex, payload)
                return await _respond(request, 200, answer, {CACHE_HEADER: "hit"}, stream)
        return await self._forward_chat(request, suffix, raw, headers, ex, stream, cache_key)

    async def _forward_chat(self, request: web.Request, suffix: str, raw: bytes,
                            headers: Any, ex: _Exchange, stream: bool,
                            cache_key: str | None = None) -> web.StreamResponse:
        """Forward a chat completion as it comes, reading what it says on the way. The
        call is recorded (and cached) before its last bytes go out, so a client that
        has its answer finds it recorded."""
        import aiohttp

        collect = ex.ctx is not None or cache_key is not None

        async def whole(up: aiohttp.ClientResponse, data: bytes) -> None:
            status = up.status
            if status >= 400 or status < 200:
                self._record(ex, error=_failure_message(status, data),
                             provider=status == 429 or status >= 500)
                return
            if stream and _is_sse(up.headers):
                answer = _assemble_stream(data) if collect else None
                usage = answer.get("usage") if answer else _last_usage(data)
            else:
                doc = _json_object(data) if collect else None
                if collect and (doc is None or not isinstance(doc.get("choices"), list)
                                or not doc["choices"]):
                    # a 200 that is no chat completion (empty, HTML, cut): the provider
                    # failed, whatever the app makes of it
                    self._record(ex, error="the upstream answered 200 without a chat "
                                 "completion in its body", provider=True)
                    return
                answer = _answer_of(doc) if doc is not None else None
                usage = doc.get("usage") if doc is not None else None
            cost = self._record(ex, usage=usage)
            if cache_key is not None and answer is not None:
                payload = _completion_dict(answer, ex, cost)
                await asyncio.get_running_loop().run_in_executor(
                    None, self.cache.put, cache_key, ex.model, payload)

        try:
            async with self._request("POST", suffix, raw, headers) as up:
                resp = _response_for(up)
                if ex.fault is not None:
                    resp.headers[FAULT_HEADER] = f"{ex.fault}; proxy"
                state = await self._pipe(request, up, resp, ex, collect, whole)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return self._unreachable(ex, exc)
        if state == "gone":
            self._record(ex, error="the client closed the connection")
        elif state == "broken":
            self._record(ex, error="the upstream's answer stopped early", provider=True)
        return resp

    async def _cut(self, request: web.Request, suffix: str, raw: bytes, headers: Any,
                   ex: _Exchange, stream: bool) -> web.StreamResponse:
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

    def _request(self, method: str, suffix: str, raw: bytes, headers: Any) -> Any:
        from yarl import URL

        assert self._session is not None
        return self._session.request(method, URL(self.upstream + suffix, encoded=True),
                                     data=raw, headers=headers, allow_redirects=False,
                                     skip_auto_headers=("Accept-Encoding", "User-Agent",
                                                        "Content-Type"))

    async def _fetch(self, suffix: str, raw: bytes, headers: Any, ex: _Exchange
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

    async def _passthrough(self, request: web.Request, suffix: str, raw: bytes,
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
        if ex.ctx is None:
            return cost
        from llmcheck.records.schema import CallRecord

        ex.record = CallRecord(
            model=ex.model, latency=time.perf_counter() - ex.started,
            prompt_tokens=prompt if spent else None,
            completion_tokens=completion if spent else None, cost=cost, retries=0,
            cached=False, time_to_first_token=ex.first_byte, error=error, via="proxy",
            fault=ex.fault, params=ex.params)
        ex.ctx.calls.append(ex.record)
        return cost

    def _record_cached(self, ex: _Exchange, payload: Mapping[str, Any]) -> None:
        ex.recorded = True
        if ex.ctx is None:
            return
        from llmcheck.records.schema import CallRecord

        usage = payload.get("usage") or {}
        ex.ctx.calls.append(CallRecord(
            model=ex.model, latency=float(payload.get("latency") or 0.0),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"), cost=payload.get("cost"),
            retries=0, cached=True, time_to_first_token=payload.get("time_to_first_token"),
            error=None, via="proxy", fault=None, params=ex.params))

    def _cache_key(self, ex: _Exchange, body: Mapping[str, Any]) -> str | None:
        """The replay key of a sample's clean chat completion, or None (no cache, no
        sample, or several choices asked for)."""
        ctx = ex.ctx
        if self.cache is None or ctx is None or body.get("n") not in (None, 1):
            return None
        from llmcheck.model.cache import cache_key

        params = {k: v for k, v in body.items() if k not in _NOT_IN_CACHE_KEY}
        if params.get("seed") == ctx.seed:
            del params["seed"]  # the derived per-sample seed, as llmcheck's client keys it
        messages = body.get("messages")
        first = cache_key(ex.model, messages, params, ctx.index)
        ordinal = ctx.call_counts.get(first, 0)
        ctx.call_counts[first] = ordinal + 1
        return first if ordinal == 0 else cache_key(ex.model, messages, params, ctx.index,
                                                     ordinal)


# --------------------------------------------------------------------------- helpers


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


def _failure_message(status: int, data: bytes) -> str:
    doc = _json_object(data)
    error = doc.get("error") if doc is not None else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str):
        message = data[:120].decode("utf-8", "replace")
    message = " ".join(message.split())
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


def _completion_dict(answer: Mapping[str, Any], ex: _Exchange, cost: float | None
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
        time_to_first_token=ex.first_byte,
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


# ------------------------------------------------------------------------------ CLI


def add_proxy_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``proxy`` subcommand to an argparse subparsers object and return it."""
    parser = subparsers.add_parser(
        "proxy", help="run a fault-injecting proxy in front of an OpenAI-compatible API",
        description="Forward an OpenAI-compatible API (the simulator, a provider, a local "
                    "server) and inject faults of the llmcheck catalogue into chat "
                    "completions, until Ctrl-C. Point any client at the printed base URL.")
    parser.add_argument("--upstream", required=True, metavar="URL",
                        help="base URL to forward to, e.g. https://api.openai.com/v1")
    parser.add_argument("--faults", default="", metavar="SPEC",
                        help="fault rates, e.g. rate_limit:0.1,timeout:0.05,stream_cut:0.1 "
                             "(default: none, a transparent proxy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    add_listen_arguments(parser, port=8001,
                         port_help="port to listen on (0 picks a free one; default 8001)")
    parser.add_argument("--upstream-key-env", metavar="NAME", default=None,
                        help="environment variable holding the upstream's API key; it "
                             "replaces the key clients send (default: their key is "
                             "forwarded)")
    parser.add_argument("--retry-after", type=float, default=1.0, metavar="S",
                        help="Retry-After of an injected rate_limit (default 1)")
    parser.add_argument("--slow-s", type=float, default=2.0, metavar="S",
                        help="latency added by a slow fault (default 2)")
    parser.add_argument("--timeout-s", type=float, default=600.0, metavar="S",
                        help="how long a timeout fault holds the connection (default 600)")
    parser.set_defaults(func=proxy_command)
    return parser


def proxy_command(args: argparse.Namespace) -> int:
    """``llmcheck proxy``: serve until Ctrl-C or SIGTERM; return the exit code."""
    from llmcheck.reports.terminal import printable

    try:
        plan = FaultPlan.parse(args.faults, seed=args.seed, retry_after=args.retry_after,
                               slow_s=args.slow_s, timeout_s=args.timeout_s)
        key = None
        if args.upstream_key_env:
            key = os.environ.get(args.upstream_key_env)
            if not key:
                raise UsageError(f"--upstream-key-env {args.upstream_key_env}: that "
                                 "environment variable is not set or empty")
        proxy = FaultProxy(args.upstream, plan, host=args.host, port=args.port,
                           upstream_api_key=key)
        proxy.start()
    except UsageError as exc:
        print(f"llmcheck proxy: error: {printable(str(exc), newlines=True)}", file=sys.stderr)
        return 2
    def banner() -> None:
        print(f"llmcheck proxy listening on {proxy.url}", flush=True)
        print(f"  upstream: {printable(_shown(proxy.upstream))}"
              + (f" (key from ${args.upstream_key_env})" if key else ""), flush=True)
        print(f"  faults:   {plan.spec() or 'none'} (seed {plan.seed})", flush=True)
        print(f"  env:      OPENAI_BASE_URL={proxy.url}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)

    serve_until_interrupted(proxy, banner)
    served = proxy.faults_served
    print(f"llmcheck proxy stopped after {proxy.request_count} requests, "
          f"{sum(served.values())} faults injected", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m llmcheck.model.proxy proxy --upstream URL``."""
    parser = argparse.ArgumentParser(prog="llmcheck")
    add_proxy_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


__all__ = ["CACHE_HEADER", "FAULT_HEADER", "KEY_HEADER", "FaultProxy", "add_proxy_parser",
           "main", "proxy_command"]


if __name__ == "__main__":
    raise SystemExit(main())
