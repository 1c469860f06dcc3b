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

**Keys and clients.** ``upstream_api_key`` replaces whatever ``Authorization`` the
client sent; ``accept_key`` (a token) makes the proxy answer 401 to requests that do
not present it (``Authorization: Bearer``, ``api-key`` or ``x-api-key``), so a
client is given a throwaway key while the real one stays in this process. The
upstream key goes to the upstream only, the token nowhere (it is taken off
forwarded requests); neither is logged or echoed. Every request is also checked
by :mod:`llmcheck.model.guard` (its Host, no browser, a path under ``/v1``) and its
body read within ``max_body_bytes`` and ``read_timeout_s``; connections are bounded
by :class:`~llmcheck.loopback.LoopbackServer`.

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

import asyncio
import collections
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from llmcheck.errors import UsageError
from llmcheck.injection.attribution import SAMPLE_HEADER, register_proxy, unregister_proxy
from llmcheck.injection.catalogue import (
    DEFAULT_TIMEOUT_S,
    FaultPlan,
    FaultResponse,
    render,
)
from llmcheck.loopback import DEFAULT_HEADER_TIMEOUT_S, LoopbackServer
from llmcheck.model import guard
from llmcheck.model.accounting import ModelSession
from llmcheck.redact import register_secret

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

    from llmcheck.core.context import SampleContext
from llmcheck.model.relay import Relay, _Exchange, answer_of, tool_calls_of
from llmcheck.model.wire import (
    _CHAT_SUFFIX,
    CACHE_HEADER,
    FAULT_HEADER,
    KEY_HEADER,
    _answer_of,
    _assemble_stream,
    _check_upstream,
    _completion_dict,
    _drop,
    _dumps,
    _error,
    _failure_message,
    _is_sse,
    _json_object,
    _last_usage,
    _replay_body,
    _respond,
    _response_for,
    _route,
    _sample,
    _shown,
    _with_seed,
)


class FaultProxy(Relay, LoopbackServer):
    """An OpenAI-compatible proxy to ``upstream`` (a base URL such as
    ``http://127.0.0.1:8000/v1``) that injects the faults of ``plan``.

    ``port=0`` picks a free port. ``accounts`` is the session's
    :class:`~llmcheck.model.accounting.ModelSession`: with it, every chat completion
    that would go upstream is admitted by the session's budget (a refused one gets a
    429 naming the budget, with ``x-should-retry: false``, and is not sent) and paced
    by ``--llm-rpm``, exactly as llmcheck's own client is, and its cache replays.
    ``cache`` is a :class:`~llmcheck.model.cache.ResponseCache` used for the calls of
    samples (default: the accounts' cache); ``timeout_s`` is how long an injected
    ``timeout`` holds a request when its plan does not say (then a 504);
    ``model_name`` maps the model of a request body to the name recorded (and used
    in cache keys and prices), e.g. ``lambda m: "openai/" + m``; ``cost(model,
    prompt_tokens, completion_tokens)`` prices a call in dollars (None: unknown).
    ``register`` marks the proxy with
    :func:`~llmcheck.injection.attribution.register_proxy` while it runs, so
    in-process injection leaves its requests alone. ``upstream_timeout`` is how
    many seconds the upstream may stay silent before the client gets a 504.
    ``max_body_bytes`` bounds a request's body (413 beyond), ``read_timeout_s`` the
    time to send it (408); ``max_connections`` and ``header_timeout_s``: see
    :class:`~llmcheck.loopback.LoopbackServer`.
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
        accounts: ModelSession | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        model_name: Callable[[str], str] | None = None,
        cost: Callable[[str, int | None, int | None], float | None] | None = None,
        register: bool = False,
        upstream_timeout: float = 600.0,
        shutdown_grace_s: float = 1.0,
        max_body_bytes: int = guard.DEFAULT_MAX_BODY_BYTES,
        read_timeout_s: float = guard.DEFAULT_READ_TIMEOUT_S,
        max_connections: int | None = None,
        header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
    ) -> None:
        self.upstream = _check_upstream(upstream)
        if plan is not None and not isinstance(plan, FaultPlan):
            raise UsageError(f"plan must be a FaultPlan, got {type(plan).__name__}")
        self.plan = plan if plan is not None else FaultPlan()
        super().__init__(host, port, shutdown_grace_s, max_connections=max_connections,
                         header_timeout_s=header_timeout_s)
        self.max_body_bytes = guard.check_limit("max_body_bytes", max_body_bytes)
        self._read_timeout = float(read_timeout_s)
        self._upstream_key = upstream_api_key or None
        if self._upstream_key is not None:
            # an upstream that echoes the key (in an error, say) must not get it into a
            # record: every record and report redacts registered secrets
            register_secret(self._upstream_key)
        self._accept = accept_key or None
        self._accounts = accounts
        self.cache = cache if cache is not None or accounts is None else accounts.cache
        self._timeout_s = timeout_s
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

        app = web.Application(client_max_size=self.max_body_bytes)
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
        try:
            guard.check_request(request.method, request.raw_path, request.headers,
                                self.host, self.port, self._accept)
            return await self._dispatch(request)
        except guard.Refusal as exc:
            return guard.respond(exc)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        route = _route(request.raw_path)
        if route is None:
            return _error(404, f"Invalid URL ({request.method} {request.path}): the llmcheck "
                          "proxy serves /v1/... and /s/<sample token>/v1/...",
                          "invalid_request_error", "unknown_url")
        token, suffix = route
        token = token or request.headers.get(SAMPLE_HEADER)
        ctx = _sample(token)
        if request.method == "POST" and suffix.split("?", 1)[0].rstrip("/").endswith(
                _CHAT_SUFFIX):
            return await self._chat(request, suffix, ctx)
        raw = await guard.read_body(request, self.max_body_bytes, self._read_timeout)
        if request.method == "POST" and suffix.split("?", 1)[0].rstrip("/").endswith(
                "/embeddings"):
            refused = self._refusal(ctx)  # an embedding is a model call: the budget holds
            if refused is not None:
                return refused
        return await self._passthrough(request, suffix, raw, self._headers(request))

    def _draw(self, request: web.Request, ctx: SampleContext | None
              ) -> tuple[FaultPlan, Any, int, str | None]:
        """The plan, key, call number and fault kind of a chat completion."""
        if ctx is not None:
            if not self._role(request)[1]:  # a simulated user's or a judge's: no fault
                return self.plan, ctx.seed, -1, None
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
        raw = await guard.read_body(request, self.max_body_bytes, self._read_timeout)
        headers = self._headers(request, chat=True)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        except RecursionError:
            raise guard.Refusal(400, "llmcheck proxy: the request's JSON nests too deeply "
                                "to read.", "invalid_json") from None
        if not isinstance(body, dict):  # the upstream says what is wrong with it
            return await self._passthrough(request, suffix, raw, headers)
        plan, key, call, kind = self._draw(request, ctx)
        wire_model = str(body.get("model") or "unknown")
        ex = _Exchange(ctx, self._mapped(wire_model), wire_model, kind, call)
        ex.role = self._role(request)[0]
        if kind is not None:
            with self._stats_lock:
                self._faults[kind] += 1
            if ctx is not None:
                ctx.note_fault(call, kind, "proxy")
        if ctx is not None and "seed" not in body:
            body = {**body, "seed": ctx.seed}
            raw = _with_seed(raw, ctx.seed)
        from llmcheck.records.schema import sampling_params

        ex.params = sampling_params(body)
        ex.messages = body.get("messages")
        stream = body.get("stream") is True
        try:
            if kind is None:
                return await self._clean(request, suffix, raw, headers, body, ex, stream)
            return await self._fault(request, suffix, raw, headers, body, ex, stream,
                                     render(kind, plan, body, key, call), plan, key, call)
        except asyncio.CancelledError:
            self._record(ex, error="the client closed the connection")
            raise

    async def _fault(self, request: web.Request, suffix: str, raw: bytes | bytearray,
                     headers: Any, body: dict[str, Any], ex: _Exchange, stream: bool,
                     fault: FaultResponse,
                     plan: FaultPlan, key: Any, call: int) -> web.StreamResponse:
        from aiohttp import web

        if fault.action == "hold":
            # held for the plan's timeout_s (else the proxy's: --llm-timeout in a session),
            # whatever the client's own deadline, then a 504; recorded now: a client with
            # a shorter deadline gives up first, and its sample may end before the hold
            delay = plan.timeout_s if plan.timeout_s is not None else self._timeout_s
            message = f"injected {fault.kind}: no answer within {delay:g} s"
            self._record(ex, error=message)
            try:
                await self._sleep(delay)
            finally:  # also when the client gives up first (and cancels this handler)
                if ex.record is not None:
                    ex.record.latency = time.perf_counter() - ex.started
            if self._closing:  # stop() woke the hold: the proxy is going away, say nothing
                _drop(request)
                return web.Response(status=504)  # never sent: the connection is gone
            return _error(504, f"llmcheck proxy: {message} (the upstream was not asked).",
                          "timeout", "timeout")
        if fault.action == "reset":
            self._record(ex, error=f"injected {fault.kind}: connection reset")
            _drop(request, reset=True)
            return web.Response(status=502)
        if fault.action in ("forward", "cut") or fault.kind == "truncated":
            refused = await self._admit(ex)  # these go upstream: the budget holds for them
            if refused is not None:
                return refused
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
        if fault.status == 200 and fault.body:
            ex.answer = answer_of(_answer_of(fault.body)) or _dumps(fault.body).decode()
            ex.tool_calls = tool_calls_of(_answer_of(fault.body))
        ex.touch()
        self._record(ex, usage=usage if fault.kind == "truncated" else None, error=error,
                     spent=fault.kind == "truncated")
        return await _respond(request, fault.status, fault.body or {},
                              {**fault.headers, FAULT_HEADER: f"{fault.kind}; proxy"},
                              stream and fault.status == 200)

    async def _clean(self, request: web.Request, suffix: str, raw: bytes | bytearray,
                     headers: Any, body: dict[str, Any], ex: _Exchange, stream: bool
                     ) -> web.StreamResponse:
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
        refused = await self._admit(ex)
        if refused is not None:
            return refused
        return await self._forward_chat(request, suffix, raw, headers, ex, stream, cache_key)

    async def _forward_chat(self, request: web.Request, suffix: str, raw: bytes | bytearray,
                            headers: Any, ex: _Exchange, stream: bool,
                            cache_key: str | None = None) -> web.StreamResponse:
        """Forward a chat completion as it comes, reading what it says on the way. The
        call is recorded (and cached) before its last bytes go out, so a client that
        has its answer finds it recorded."""
        import aiohttp

        # read what the answer says when it is recorded, cached or priced for the budget
        collect = ex.ctx is not None or cache_key is not None or (
            self._accounts is not None and self._accounts.budget.max_cost is not None)

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
            ex.answer, ex.tool_calls = answer_of(answer), tool_calls_of(answer)
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


__all__ = ["CACHE_HEADER", "FAULT_HEADER", "KEY_HEADER", "FaultProxy"]
