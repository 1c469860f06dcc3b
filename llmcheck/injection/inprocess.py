"""In-process fault injection: every chat-completion request this process makes
through httpx can be answered with a fault of the catalogue.

:func:`install` patches ``send`` of ``Client`` and ``AsyncClient`` in ``httpx`` and
in ``httpx2`` (the fork the openai SDK imports), on the classes themselves, so
clients built before the patch are affected too. Outside samples and outside
:func:`inject` / :func:`~llmcheck.injection.attribution.active` blocks, a request
costs two context-variable reads more (under a microsecond with the wrapper's
call, next to some 150 us for an httpx request answered in memory) and goes out
untouched; so does every request no plan applies to.

What is intercepted: any ``httpx.Client`` / ``httpx.AsyncClient`` /
``httpx2.Client`` / ``httpx2.AsyncClient`` (and subclasses that do not override
``send``) in this process, whatever their transport. That covers litellm, sync
and async (``litellm.completion`` / ``acompletion``, including code that did
``from litellm import completion`` before :func:`install`), the openai SDK
(``openai.OpenAI`` / ``AsyncOpenAI``, used by litellm's ``openai/...`` models)
and LangChain's ``ChatOpenAI`` (the openai SDK underneath).

What is not: clients that do not use httpx (``requests``/``urllib3``, direct
``aiohttp`` sessions, litellm providers that call aiohttp or a vendor SDK not
built on httpx), other processes (use ``llmcheck proxy`` for those), and any
request that is not a ``POST`` to a path ending in ``/chat/completions``:
embeddings, model listings, health checks pass through and do not use up a
call number. The broken answers are OpenAI chat-completion documents, so only
OpenAI-compatible endpoints are injected; a provider with its own wire format
(Anthropic's ``/v1/messages``, Gemini's ``:generateContent``) is never touched,
not even by the status and connection kinds.

Requests to an llmcheck proxy of this process (:func:`~llmcheck.injection.
attribution.register_proxy`) are never injected here (the proxy does it, once);
inside a sample they get the :data:`~llmcheck.injection.attribution.SAMPLE_HEADER`
naming it.

How each kind is served, and what litellm 1.110 raises for it (an ``openai/...``
model, litellm's retries off: ``num_retries=0, max_retries=0``; sync and async,
streamed or not alike unless said), measured against the simulator;
tests/injection/test_faults_inprocess.py asserts every row:

================  ======================================  ==================================
kind              served in-process                       litellm raises / returns
================  ======================================  ==================================
rate_limit        429 + Retry-After; no upstream call     ``litellm.RateLimitError`` (429)
timeout           ``ReadTimeout`` raised at once; no      ``litellm.Timeout`` (408)
                  upstream call (the client's deadline
                  is not waited for)
connection_error  ``ConnectError``; no upstream call      ``litellm.InternalServerError``
                                                          (500, "Connection error."), as
                                                          for a real refused connection
server_error      500, 502 or 503; no upstream call       500 ``InternalServerError``,
                                                          502 ``BadGatewayError``,
                                                          503 ``ServiceUnavailableError``
malformed_json    200; content is JSON cut half-way       a normal response
wrong_schema      200; JSON the requested schema rejects  a normal response
empty             200; empty content                      a normal response, content ``""``
refusal           200; "I'm sorry, but I can't help..."   a normal response
bad_tool_call     200; a tool call whose arguments do     a normal response whose tool
                  not parse                               call arguments do not parse
slow              the real answer, ``slow_s`` later       a normal response, late
truncated         the real answer (asked for without      a normal response with
                  streaming), content cut in half         ``finish_reason == "length"``
stream_cut        a stream: its first half, then          ``litellm.exceptions.
                  ``RemoteProtocolError``;                MidStreamFallbackError`` (a
                                                          ``ServiceUnavailableError``, 503,
                                                          around an ``APIConnectionError``)
                                                          while iterating, after the first
                                                          chunks arrived;
                  not streamed: a 200 whose body is the   not streamed:
                  first half of the real one              ``litellm.InternalServerError``
                                                          (500, "Unterminated string...")
================  ======================================  ==================================

A streamed request (``"stream": true``) gets the 200 kinds as an SSE stream. A
``stream_cut`` reads the whole upstream stream before serving its first half,
so the first chunks arrive when the upstream has finished.

For scripts and notebooks, outside the pytest plugin::

    with llmcheck.injection.inprocess.inject("rate_limit:0.3,timeout:0.1", seed=7) as faults:
        ...                      # calls made here get faults
    print(faults)                # [(call number, kind), ...]
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import importlib
import json
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from llmcheck.core import context
from llmcheck.errors import UsageError
from llmcheck.injection import attribution
from llmcheck.injection.attribution import SAMPLE_HEADER, Draw, draw_current, is_proxy
from llmcheck.injection.catalogue import NEEDS_UPSTREAM, FaultPlan, cut_point, render, sse_events

MODULES = ("httpx", "httpx2")
"""The httpx-compatible modules whose clients are patched (each when importable)."""

VIA = "in-process"
FAULT_HEADER = "X-Llmcheck-Fault"
"""Response header naming an injected fault (``kind; in-process``), as the simulator's."""

_ORIGINAL = "__llmcheck_original__"
_lock = threading.Lock()
_patched: list[tuple[type, Any]] = []  # (class, its original send), to restore
_stream_classes: dict[tuple[type, type], type] = {}
_DROP_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding"})
# The two context variables that say whether any plan may apply (the running sample,
# and an active() block), read directly on every request: the fast path is two reads.
_sample = context._current
_active = attribution._global


# --------------------------------------------------------------------------- public API


def install() -> None:
    """Patch ``send`` of ``Client`` and ``AsyncClient`` of every module of
    :data:`MODULES` that imports. Idempotent and thread-safe."""
    with _lock:
        if _patched:
            return
        seen: set[int] = set()
        for name in MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            for cls_name, make in (("Client", _sync_send), ("AsyncClient", _async_send)):
                cls = getattr(module, cls_name, None)
                if cls is None or id(cls) in seen:  # an alias of a module already patched
                    continue
                seen.add(id(cls))
                current = cls.__dict__.get("send")
                if current is None:
                    continue
                # A wrapper left by another copy of this module (a re-import) is replaced,
                # never wrapped: a request must be drawn for once.
                original = getattr(current, _ORIGINAL, current)
                _patched.append((cls, current))
                cls.send = make(module, original)


def uninstall() -> None:
    """Undo :func:`install`: every patched class gets back the very ``send`` it had
    (``httpx.Client.send is`` the function from before). The pytest plugin calls it
    when a session that installed the interception ends. A class whose ``send`` was
    replaced again since (another library patching over ours) is left as it is:
    putting ours back would undo theirs."""
    with _lock:
        while _patched:
            cls, send = _patched.pop()
            if getattr(cls.__dict__.get("send"), _ORIGINAL, None) is not None:
                cls.send = send


def installed() -> bool:
    """Whether :func:`install` is in effect."""
    return bool(_patched)


@contextlib.contextmanager
def inject(plan: FaultPlan | str, *, seed: int | None = None
           ) -> Iterator[list[tuple[int, str]]]:
    """:func:`install`, then inject ``plan`` (a :class:`FaultPlan`, or a spec like
    ``"rate_limit:0.3,timeout:0.1"`` read with ``seed``, 0 by default) into the
    requests made outside any sample while the block runs. Yields the list of
    ``(call number, kind)`` injected. A running sample's own plan takes precedence."""
    if isinstance(plan, str):
        plan = FaultPlan.parse(plan, seed=0 if seed is None else seed)
    elif not isinstance(plan, FaultPlan):
        raise UsageError(f"inject() takes a FaultPlan or a spec like 'rate_limit:0.3', "
                         f"got {plan!r}")
    elif seed is not None:
        raise UsageError("inject(seed=...) is for a spec string; a FaultPlan has its own "
                         "seed")
    install()
    with attribution.active(plan) as faults:
        yield faults


# --------------------------------------------------------------------------- the patches


def _draw(request: Any) -> Draw | None:
    """The fault of this request (None: send it untouched). Adds the sample header to a
    request for an llmcheck proxy."""
    ctx = context.current_sample()
    if ctx is None:
        state = _active.get()
        if state is None or not state.plan:
            return None
    if _for_proxy(request.url):
        if ctx is not None:
            request.headers[SAMPLE_HEADER] = ctx.token
            role = attribution.role_header()
            if role is not None:
                request.headers[attribution.ROLE_HEADER] = role
        return None
    if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
        return None
    draw = draw_current()
    if draw is None or draw.kind is None:
        return None
    draw.note(VIA)
    return draw


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _for_proxy(url: Any) -> bool:
    host = url.host
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address, written as in a netloc
    port = url.port or _DEFAULT_PORTS.get(url.scheme)
    return is_proxy(f"{host}:{port}") or is_proxy(host)


def _sync_send(module: ModuleType, original: Any) -> Any:
    @functools.wraps(original)
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if _sample.get() is None and _active.get() is None:  # the fast path
            return original(self, request, *args, **kwargs)
        draw = _draw(request)
        if draw is None:
            return original(self, request, *args, **kwargs)
        return _Fault(module, draw, request, kwargs).sync(self, original, args)

    setattr(send, _ORIGINAL, original)
    return send


def _async_send(module: ModuleType, original: Any) -> Any:
    @functools.wraps(original)
    async def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if _sample.get() is None and _active.get() is None:  # the fast path
            return await original(self, request, *args, **kwargs)
        draw = _draw(request)
        if draw is None:
            return await original(self, request, *args, **kwargs)
        return await _Fault(module, draw, request, kwargs).aio(self, original, args)

    setattr(send, _ORIGINAL, original)
    return send


class _Fault:
    """Serving one drawn fault for one request made with ``module``'s client."""

    def __init__(self, module: ModuleType, draw: Draw, request: Any,
                 kwargs: dict[str, Any]) -> None:
        self.m = module
        self.draw = draw
        self.kind: str = draw.kind  # type: ignore[assignment]
        self.request = request
        self.kwargs = dict(kwargs)
        self.stream = bool(self.kwargs.pop("stream", False))  # the caller's send(stream=)
        self.started = time.perf_counter()
        self.body: dict[str, Any] = {}

    # -- sync / async drivers: the same steps, with blocking or awaited I/O

    def sync(self, client: Any, original: Any, args: tuple[Any, ...]) -> Any:
        kind = self.kind
        if kind == "slow":
            time.sleep(self.draw.plan.slow_s)
            return original(client, self.request, *args, stream=self.stream, **self.kwargs)
        self.body = _json_body(_read_request(self.request))
        if kind not in NEEDS_UPSTREAM:
            for hook in _event_hooks(client, "request"):
                hook(self.request)
        self._raise_for_transport_kinds()
        if kind == "stream_cut":
            upstream = original(client, self.request, *args, stream=True, **self.kwargs)
            try:
                if upstream.status_code >= 400:
                    upstream.read()
                    return upstream
                chunks = list(upstream.iter_bytes())
            finally:
                upstream.close()
            response = self._cut(upstream, chunks)
        elif kind == "truncated":
            upstream = original(client, self._unstreamed_copy(), *args, stream=False,
                                **self.kwargs)
            response = self._truncated(upstream)
            if response is upstream:
                return response
        else:
            response = self._rendered()
        self._hooks(client, response, kind)
        if not self.stream:
            response.read()
        return response

    async def aio(self, client: Any, original: Any, args: tuple[Any, ...]) -> Any:
        kind = self.kind
        if kind == "slow":
            await asyncio.sleep(self.draw.plan.slow_s)
            return await original(client, self.request, *args, stream=self.stream,
                                  **self.kwargs)
        self.body = _json_body(await _aread_request(self.request))
        if kind not in NEEDS_UPSTREAM:
            for hook in _event_hooks(client, "request"):
                await hook(self.request)
        self._raise_for_transport_kinds()
        if kind == "stream_cut":
            upstream = await original(client, self.request, *args, stream=True, **self.kwargs)
            try:
                if upstream.status_code >= 400:
                    await upstream.aread()
                    return upstream
                chunks = [chunk async for chunk in upstream.aiter_bytes()]
            finally:
                await upstream.aclose()
            response = self._cut(upstream, chunks)
        elif kind == "truncated":
            upstream = await original(client, self._unstreamed_copy(), *args, stream=False,
                                      **self.kwargs)
            response = self._truncated(upstream)
            if response is upstream:
                return response
        else:
            response = self._rendered()
        await self._ahooks(client, response, kind)
        if not self.stream:
            await response.aread()
        return response

    # -- the pieces

    def _raise_for_transport_kinds(self) -> None:
        if self.kind == "timeout":
            raise self.m.ReadTimeout("timed out waiting for the model's answer (injected by "
                                     "llmcheck)", request=self.request)
        if self.kind == "connection_error":
            raise self.m.ConnectError("[Errno 111] Connection refused (injected by llmcheck)",
                                      request=self.request)

    def _rendered(self) -> Any:
        draw = self.draw
        fault = render(self.kind, draw.plan, self.body, draw.key, draw.call)
        headers = {**fault.headers, FAULT_HEADER: f"{self.kind}; {VIA}"}
        assert fault.body is not None
        if fault.status == 200 and self.body.get("stream") is True:
            return self._response(200, headers, fault.stream_chunks(), sse=True)
        return self._response(fault.status, headers, [_dumps(fault.body)])

    def _unstreamed_copy(self) -> Any:
        body = dict(self.body)
        body["stream"] = False
        body.pop("stream_options", None)
        request = self.request
        headers = [(k, v) for k, v in request.headers.multi_items()
                   if k.lower() not in _DROP_HEADERS]
        return self.m.Request(request.method, request.url, headers=headers,
                              content=_dumps(body), extensions=dict(request.extensions))

    def _truncated(self, upstream: Any) -> Any:
        try:
            answer = upstream.json() if upstream.status_code < 300 else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
            return upstream  # the upstream failed: its answer as it is
        draw = self.draw
        fault = render("truncated", draw.plan, self.body, draw.key, draw.call,
                       upstream=answer)
        assert fault.body is not None
        headers = _upstream_headers(upstream)
        headers[FAULT_HEADER] = f"truncated; {VIA}"
        if self.body.get("stream") is True:
            return self._response(200, headers, sse_events(fault.body), sse=True)
        return self._response(200, headers, [_dumps(fault.body)])

    def _cut(self, upstream: Any, chunks: list[bytes]) -> Any:
        headers = _upstream_headers(upstream)
        headers[FAULT_HEADER] = f"stream_cut; {VIA}"
        total = sum(len(c) for c in chunks)
        if "text/event-stream" not in upstream.headers.get("content-type", ""):
            # a plain answer: the first half of its body, and a clean end
            return self._response(upstream.status_code, headers,
                                  [b"".join(chunks)[: cut_point(total)]])
        keep, kept = cut_point(total), []
        for chunk in chunks:
            if keep <= 0:
                break
            kept.append(chunk[:keep])
            keep -= len(chunk)
        message = ("peer closed connection without sending complete message body "
                   "(injected by llmcheck)")
        return self._response(upstream.status_code, headers, kept, sse=True,
                              error=lambda: self.m.RemoteProtocolError(
                                  message, request=self.request))

    def _response(self, status: int, headers: dict[str, str], chunks: list[bytes], *,
                  sse: bool = False, error: Any = None) -> Any:
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        headers["content-type"] = "text/event-stream" if sse else "application/json"
        if error is None and not sse:
            response = self.m.Response(status, headers=headers, content=b"".join(chunks),
                                       request=self.request)
        else:
            response = self.m.Response(status, headers=headers, request=self.request,
                                       stream=_stream_class(self.m)(chunks, error))
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - self.started)
        return response

    def _hooks(self, client: Any, response: Any, kind: str) -> None:
        if kind in NEEDS_UPSTREAM:
            return  # the upstream's answer went through the client's hooks already
        for hook in _event_hooks(client, "response"):
            hook(response)

    async def _ahooks(self, client: Any, response: Any, kind: str) -> None:
        if kind in NEEDS_UPSTREAM:
            return
        for hook in _event_hooks(client, "response"):
            await hook(response)


# --------------------------------------------------------------------------- helpers


def _stream_class(module: ModuleType) -> type:
    """A byte stream of ``module`` (sync and async) that yields chunks, then raises
    ``error()`` when one is given: how a connection dropped mid-answer looks."""
    key = (module.SyncByteStream, module.AsyncByteStream)  # a re-imported module: new bases
    cls = _stream_classes.get(key)
    if cls is None:
        class InjectedStream(module.SyncByteStream, module.AsyncByteStream):  # type: ignore
            def __init__(self, chunks: list[bytes], error: Any = None) -> None:
                self._chunks = chunks
                self._error = error

            def __iter__(self) -> Iterator[bytes]:
                yield from self._chunks
                if self._error is not None:
                    raise self._error()

            async def __aiter__(self) -> Any:
                for chunk in self._chunks:
                    yield chunk
                if self._error is not None:
                    raise self._error()

        cls = _stream_classes.setdefault(key, InjectedStream)
    return cls


def _event_hooks(client: Any, event: str) -> list[Any]:
    """The client's ``event_hooks`` for ``request`` or ``response``: a served fault runs
    them as the client would have (a ``raise_for_status`` hook raises on a 429)."""
    hooks = getattr(client, "_event_hooks", None)
    return list(hooks.get(event, ())) if isinstance(hooks, dict) else []


def _read_request(request: Any) -> bytes:
    try:
        return request.content
    except Exception:  # noqa: BLE001 - a streamed request body not read yet
        return request.read()


async def _aread_request(request: Any) -> bytes:
    try:
        return request.content
    except Exception:  # noqa: BLE001
        return await request.aread()


def _json_body(content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _upstream_headers(upstream: Any) -> dict[str, str]:
    """The upstream's headers minus those describing its body's encoding (the body
    served is decoded, and of another length)."""
    return {k: v for k, v in upstream.headers.items() if k.lower() not in _DROP_HEADERS}
