"""The simulator's HTTP server: an OpenAI-compatible API on loopback.

Built on aiohttp (already installed as a litellm dependency) rather than
``http.server``: one event loop holds hundreds of slow requests with plain
``asyncio.sleep`` and no thread per connection, and its C HTTP parser with
keep-alive gives several thousand requests per second on one core.

The server runs its event loop in a background thread, so tests and the
pytest plugin use it synchronously::

    with SimulatorServer() as sim:            # the shipped default scenario
        litellm.completion(model="openai/llmcheck-sim", api_base=sim.url, api_key="sk-sim", ...)

Endpoints: ``POST /v1/chat/completions`` (plain and SSE streaming, tool calls),
``POST /v1/embeddings``, ``GET /v1/models``, ``GET /v1/models/{id}`` and
``GET /health``; the same paths without ``/v1`` work too. Any other path is a
404 with an OpenAI-style error body. aiohttp is imported only when a server
starts, so importing :mod:`llmcheck.simulator` stays cheap.

Debug headers on chat completions: ``X-Llmcheck-Route`` (the route that
matched), ``X-Llmcheck-Label`` (defect labels of the choices, ``-`` for a good
one; absent when all are good) and ``X-Llmcheck-Fault`` (``kind; source`` of a
served fault), and on a stream paced by the scenario's ``stream`` key
``X-Llmcheck-Stream-Delays`` (the delays drawn, in ms: time to first token, then each
gap). A request header ``X-Llmcheck-Fault: KIND`` forces that fault on
that one request; ``KIND`` is any kind of the shared fault catalogue
(:mod:`llmcheck.injection.catalogue`) or the old name ``malformed`` of ``stream_cut``.

How each fault is served: ``rate_limit`` a 429 with Retry-After (``retry_after_s``),
``server_error`` a 500, ``timeout`` holds the request ``timeout_s`` seconds and then
drops the connection, ``connection_error`` drops it at once, unanswered. The kinds
that damage an answer damage the one the simulator would have given: ``slow`` sends
it ``slow_s`` seconds late, ``truncated`` cuts it (``finish_reason: length``), and
``stream_cut`` sends half of it, then closes the connection (a non-streamed answer:
a 200 with half its body; a stream: half its SSE events, no ``[DONE]``). The other
kinds (``malformed_json``, ``empty``, ``refusal``, ``wrong_schema``,
``bad_tool_call``) serve the catalogue's answer for the request, as JSON or as SSE.
Bodies, statuses and headers come from :func:`llmcheck.injection.catalogue.render`, so
a kind means the same here as in-process and in the proxy; only ``server_error``
stays the simulator's 500 (the catalogue's may be a 502 or 503).
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmcheck.injection.catalogue import FaultPlan, cut_point, error_body, render, sse_events
from llmcheck.loopback import LoopbackServer
from llmcheck.simulator.embeddings import parse_embedding_request
from llmcheck.simulator.engine import Decision, Engine
from llmcheck.simulator.request import RequestError, check_forced_fault
from llmcheck.simulator.scenario import ErrorRates, Scenario, load_scenario
from llmcheck.simulator.wire import (
    chunk_events,
    completion_body,
    dumps,
    embeddings_body,
    model_entry,
    paced_events,
)

if TYPE_CHECKING:
    from aiohttp import web

ScenarioSource = str | Path | Mapping[str, Any] | Scenario | None

FAULT_HEADER = "X-Llmcheck-Fault"
STREAM_DELAYS_HEADER = "X-Llmcheck-Stream-Delays"
"""On a paced stream: the delays the simulator chose, in milliseconds, comma-separated:
the time to first token, then the gap before each later token chunk."""
_EMBEDDING_FAULTS = frozenset(
    {"rate_limit", "server_error", "timeout", "connection_error", "slow", "stream_cut"}
)
"""The kinds an embeddings request can get: the others break a chat answer."""
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_KNOWN_PATHS = {
    "/v1/chat/completions": "POST",
    "/chat/completions": "POST",
    "/v1/embeddings": "POST",
    "/embeddings": "POST",
    "/v1/models": "GET",
    "/models": "GET",
    "/health": "GET",
}


class SimulatorServer(LoopbackServer):
    """An OpenAI-compatible simulated model, served on ``host:port`` from a background thread.

    ``scenario`` is a path to a YAML/JSON file, a mapping, a :class:`Scenario`, or
    None for the shipped default; ``port=0`` picks a free port. ``seed`` overrides
    the scenario seed. On :meth:`stop`, simulated delays end at once (a held
    ``timeout`` request is dropped, a delayed answer is sent early); anything
    else still running gets ``shutdown_grace_s`` seconds before it is cancelled.
    ``history`` bounds :attr:`recent_requests`.
    """

    _kind = "simulator"

    def __init__(
        self,
        scenario: ScenarioSource = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int | None = None,
        shutdown_grace_s: float = 1.0,
        history: int = 1000,
    ) -> None:
        self.engine = Engine(load_scenario(scenario), seed=seed)
        super().__init__(host, port, shutdown_grace_s)
        self.scenario: Scenario = self.engine.scenario
        """The scenario served (with ``seed`` applied)."""
        self._fingerprint = (
            "fp_" + hashlib.sha256(self.engine.scenario.model_dump_json().encode()).hexdigest()[:10]
        )
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(6).hex()
        self._stats_lock = threading.Lock()
        self._request_count = 0
        self._by_path: collections.Counter[str] = collections.Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self._history: collections.deque[dict[str, Any]] = collections.deque(maxlen=history)

    # ------------------------------------------------------------ inspection

    @property
    def request_count(self) -> int:
        """HTTP requests received so far, on every path."""
        with self._stats_lock:
            return self._request_count

    @property
    def requests_by_path(self) -> dict[str, int]:
        """HTTP requests received so far, per URL path."""
        with self._stats_lock:
            return dict(self._by_path)

    @property
    def in_flight(self) -> int:
        """Requests being handled right now."""
        with self._stats_lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests handled at the same moment since start (or the last reset)."""
        with self._stats_lock:
            return self._max_in_flight

    @property
    def recent_requests(self) -> list[dict[str, Any]]:
        """The latest chat/embedding requests: path, body, route, fault and labels served."""
        with self._stats_lock:
            return list(self._history)

    def reset_stats(self) -> None:
        """Zero the request counters, the in-flight maximum and the history."""
        with self._stats_lock:
            self._request_count = 0
            self._by_path.clear()
            self._max_in_flight = self._in_flight
            self._history.clear()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"<SimulatorServer {self.scenario.name!r} {where}>"

    # ---------------------------------------------------------------- the app

    def _make_app(self) -> web.Application:
        from aiohttp import web

        app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", ""):
            app.router.add_post(f"{prefix}/chat/completions", self._counted(self._chat))
            app.router.add_post(f"{prefix}/embeddings", self._counted(self._embeddings))
            app.router.add_get(f"{prefix}/models", self._counted(self._models))
            app.router.add_get(f"{prefix}/models/{{model:.+}}", self._counted(self._model))
        app.router.add_get("/health", self._counted(self._health))
        app.router.add_route("*", "/{tail:.*}", self._counted(self._not_found))
        return app

    def _counted(self, handler: Any) -> Any:
        """Wrap a handler so it counts requests and in-flight concurrency."""

        async def wrapper(request: web.Request) -> web.StreamResponse:
            with self._stats_lock:
                self._request_count += 1
                self._by_path[request.path] += 1
                self._in_flight += 1
                if self._in_flight > self._max_in_flight:
                    self._max_in_flight = self._in_flight
            try:
                return await handler(request)
            finally:
                with self._stats_lock:
                    self._in_flight -= 1

        return wrapper

    def _record(self, entry: dict[str, Any]) -> None:
        with self._stats_lock:
            self._history.append(entry)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{self._id_prefix}{next(self._ids):012x}"

    @staticmethod
    def _json(
        obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        from aiohttp import web

        return web.Response(
            body=dumps(obj), status=status, content_type="application/json", headers=headers
        )

    def _error(
        self,
        status: int,
        message: str,
        kind: str,
        code: str | None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        return self._json(body, status=status, headers=headers)

    async def _read_json(self, request: web.Request) -> tuple[Any, web.Response | None]:
        raw = await request.read()
        try:
            return json.loads(raw), None
        except (ValueError, UnicodeDecodeError) as exc:
            return None, self._error(
                400,
                f"We could not parse the JSON body of your request. ({exc})",
                "invalid_request_error",
                "invalid_json",
            )

    # -------------------------------------------------------------- handlers

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, bad = await self._read_json(request)
        if bad is not None:
            return bad
        forced = request.headers.get(FAULT_HEADER)
        try:
            decision = self.engine.decide(body, forced.strip().lower() if forced else None)
        except RequestError as exc:
            return self._error(400, exc.message, "invalid_request_error", exc.code, exc.param)
        self._record(
            {
                "path": request.path,
                "body": body,
                "route": decision.route,
                "fault": decision.fault,
                "labels": decision.labels,
            }
        )
        headers = {"X-Llmcheck-Route": decision.route, "x-request-id": self._new_id("req_")}
        if any(label is not None for label in decision.labels):
            headers["X-Llmcheck-Label"] = ",".join(label or "-" for label in decision.labels)
        if decision.fault is not None:
            headers[FAULT_HEADER] = f"{decision.fault}; {decision.fault_source}"
            return await self._fault(request, decision.fault, body, decision, headers)
        if decision.latency_s > 0 and not (decision.stream and decision.ttft_s is not None):
            await self._sleep(decision.latency_s)  # a paced stream waits its ttft instead
        return await self._answer(request, decision, headers)

    async def _answer(
        self, request: web.Request, decision: Decision, headers: dict[str, str]
    ) -> web.StreamResponse:
        """The decided answer, as one JSON document or streamed. A paced stream sends each
        token chunk after its delay (the first after the time to first token) and lists
        the delays in :data:`STREAM_DELAYS_HEADER`, so a test reads them, never times them."""
        if not decision.stream:
            return self._json(self._completion(decision), headers=headers)
        events = paced_events(decision, self._new_id("chatcmpl-"), self._fingerprint)
        delays = decision.stream_delays(sum(token for _, token in events))
        if delays:
            headers[STREAM_DELAYS_HEADER] = ",".join(f"{d * 1000:.3f}" for d in delays)
        waits = iter(delays)
        return await self._stream(request, [event for event, _ in events], headers,
                                  [next(waits, 0.0) if token else 0.0 for _, token in events])

    async def _fault(
        self,
        request: web.Request,
        kind: str,
        body: Mapping[str, Any],
        decision: Decision | None,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        """Serve the fault ``kind`` (a catalogue kind) instead of, or to, the decided answer.

        ``body`` is the request's JSON body; ``decision`` is None for an embeddings
        request (the scenario's parameters apply, and only :data:`_EMBEDDING_FAULTS`).
        """
        params: Decision | ErrorRates = decision if decision is not None else self.scenario.errors
        plan = FaultPlan(
            retry_after=params.retry_after_s, slow_s=params.slow_s, timeout_s=params.timeout_s
        )
        upstream = None
        if decision is not None and kind == "truncated":
            upstream = self._completion(decision)  # the answer it would have given
        fault = render(kind, plan, body, upstream=upstream)
        if fault.action == "hold":
            return await self._hold_and_drop(request, fault.delay)
        if fault.action == "reset":
            return self._drop(request)
        if decision is not None and decision.latency_s > 0:
            await self._sleep(decision.latency_s)
        if kind == "server_error":
            # Always a 500 (the catalogue may draw a 502 or 503): a seeded request keeps
            # the status, and so the exception, it always got from the simulator.
            return self._json(
                error_body(
                    "The server had an error while processing your request "
                    "(simulated by llmcheck).",
                    "server_error",
                    "server_error",
                ),
                status=500,
                headers=headers,
            )
        if fault.action == "forward":  # slow: the answer, late
            await self._sleep(fault.delay)
            if decision is None:
                return await self._embeddings_answer(body, headers)
            return await self._answer(request, decision, headers)
        if fault.action == "cut":
            return await self._cut(request, decision, headers)
        assert fault.body is not None
        if fault.status != 200:  # rate_limit
            return self._json(fault.body, status=fault.status, headers={**headers, **fault.headers})
        assert decision is not None  # content kinds are refused for embeddings
        if decision.stream:
            document = dict(fault.body)
            if not decision.include_usage:
                document["usage"] = None  # as OpenAI: no usage chunk unless asked for
            return await self._stream(request, sse_events(document), headers)
        return self._json(fault.body, headers=headers)

    async def _hold_and_drop(self, request: web.Request, seconds: float) -> web.StreamResponse:
        """The ``timeout`` fault: hold the request, then close the connection unanswered."""
        await self._sleep(seconds)
        return self._drop(request)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        """Close the connection without an answer (``connection_error``, or after a
        ``timeout``); aiohttp then skips the response returned."""
        from aiohttp import web

        if request.protocol is not None:
            request.protocol.force_close()
        return web.Response(status=504)

    async def _cut(
        self, request: web.Request, decision: Decision | None, headers: dict[str, str]
    ) -> web.StreamResponse:
        """The ``stream_cut`` fault (``malformed`` in older scenarios): half the answer.

        A non-streamed answer is a 200 whose body stops half-way (with a matching
        Content-Length, so the client reads it all and then fails to parse it); a
        stream sends half its SSE events, never the finish reason or ``[DONE]``, then
        the connection closes in the middle of the chunked body.
        """
        from aiohttp import web

        if decision is not None and decision.stream:
            events = self._chunks(decision)[:-1]  # without [DONE]
            resp = web.StreamResponse(status=200, headers={**headers, **_SSE_HEADERS})
            await resp.prepare(request)
            await resp.write(b"".join(events[: cut_point(len(events))]))
            if request.protocol is not None:
                request.protocol.force_close()  # what was written is flushed first
            return resp
        if decision is not None:
            full = dumps(self._completion(decision))
        else:
            full = dumps({"object": "list", "data": [{"object": "embedding", "index": 0}]})
        return web.Response(
            body=full[: cut_point(len(full))],
            status=200,
            content_type="application/json",
            headers=headers,
        )

    def _completion(self, decision: Decision) -> dict[str, Any]:
        return completion_body(decision, self._new_id("chatcmpl-"), self._fingerprint)

    def _chunks(self, decision: Decision) -> list[bytes]:
        return chunk_events(decision, self._new_id("chatcmpl-"), self._fingerprint)

    async def _stream(
        self, request: web.Request, events: list[bytes], headers: dict[str, str],
        waits: list[float] | None = None,
    ) -> web.StreamResponse:
        """An SSE response of ``events``, each after its wait in ``waits`` (seconds)."""
        from aiohttp import web

        resp = web.StreamResponse(status=200, headers={**headers, **_SSE_HEADERS})
        await resp.prepare(request)
        for event, wait in zip(events, waits or [0.0] * len(events), strict=True):
            await self._sleep(wait)
            await resp.write(event)
        await resp.write_eof()
        return resp

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body, bad = await self._read_json(request)
        if bad is not None:
            return bad
        forced = request.headers.get(FAULT_HEADER)
        try:
            kind = check_forced_fault(forced.strip().lower() if forced is not None else None)
            if kind is not None and kind not in _EMBEDDING_FAULTS:
                raise RequestError(
                    f"{FAULT_HEADER} {forced!r} breaks a chat answer, not embeddings; on "
                    f"embeddings use one of {', '.join(sorted(_EMBEDDING_FAULTS))}",
                    param=FAULT_HEADER,
                )
            self._embedding_request(body)
        except RequestError as exc:
            return self._error(400, exc.message, "invalid_request_error", exc.code, exc.param)
        self._record({"path": request.path, "body": body, "fault": kind})
        if kind is not None:
            return await self._fault(request, kind, body, None, {FAULT_HEADER: f"{kind}; header"})
        return await self._embeddings_answer(body)

    def _embedding_request(self, body: Any) -> tuple[list[str], str, int, str]:
        return parse_embedding_request(body, self.scenario.models[0],
                                       self.scenario.embedding_dimensions)

    async def _embeddings_answer(
        self, body: Any, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        """The embeddings of a request already checked by :meth:`_embedding_request`."""
        return self._json(embeddings_body(*self._embedding_request(body)), headers=headers)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        models = [model_entry(m) for m in self.scenario.models]
        return self._json({"object": "list", "data": models})

    async def _model(self, request: web.Request) -> web.StreamResponse:
        # Any model name is served, so any name "exists".
        return self._json(model_entry(request.match_info["model"]))

    async def _health(self, request: web.Request) -> web.StreamResponse:
        with self._stats_lock:
            stats = {
                "requests": self._request_count,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }
        return self._json({"status": "ok", "scenario": self.scenario.name, **stats})

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        expected = _KNOWN_PATHS.get(request.path)
        if expected is not None:
            return self._error(
                405,
                f"{request.method} is not allowed on {request.path}; use {expected}",
                "invalid_request_error",
                "method_not_allowed",
                headers={"Allow": expected},
            )
        return self._error(
            404,
            f"Invalid URL ({request.method} {request.path})",
            "invalid_request_error",
            "unknown_url",
        )


def start_simulator(
    scenario: ScenarioSource = None, port: int = 0, host: str = "127.0.0.1", **kwargs: Any
) -> SimulatorServer:
    """Create and start a :class:`SimulatorServer`; the caller stops it (or uses ``with``)."""
    return SimulatorServer(scenario, host=host, port=port, **kwargs).start()


__all__ = ["FAULT_HEADER", "STREAM_DELAYS_HEADER", "SimulatorServer", "start_simulator"]
