"""The fault-injecting proxy (llmcheck.model.proxy) in front of the simulator.

Every fault kind is checked through the real openai SDK (the exception types a
client sees are the contract), attribution to samples over the header and the
``/s/<token>`` path, determinism and rates of the draws, byte-exact streaming
under concurrency, relayed upstream failures, keys and the cache.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from scipy.stats import binom

from llmcheck.cli.proxy import main
from llmcheck.core import context
from llmcheck.core.context import SampleContext
from llmcheck.injection.attribution import SAMPLE_HEADER, is_proxy
from llmcheck.injection.catalogue import KINDS, NEEDS_UPSTREAM, REFUSAL_TEXT, FaultPlan, cut_point
from llmcheck.model.cache import ResponseCache
from llmcheck.model.proxy import FAULT_HEADER, KEY_HEADER, FaultProxy
from llmcheck.simulator import SimulatorServer

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."
# No latency; one fixed answer by default, and a route whose answer depends on the seed
# (so the streaming comparisons would catch a proxy that changed it).
SCENARIO = {
    "name": "proxy-tests", "seed": 5, "latency": {"ms": 0},
    "routes": [{"name": "varied", "match": "^varied",
                "answers": [{"text": f"Answer number {i}: " + "word " * (5 + 3 * i)}
                            for i in range(6)]}],
    "default": {"answers": [{"text": TEXT}]},
}
MESSAGES = [{"role": "user", "content": "hello"}]
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}


@pytest.fixture
def sim():
    with SimulatorServer(SCENARIO) as server:
        yield server


def sdk(base_url: str, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-client", max_retries=0,
                         timeout=kwargs.pop("timeout", 30.0), **kwargs)


def only(kind: str, **params: float) -> FaultPlan:
    return FaultPlan({kind: 1.0}, seed=3, **params)


def create(client: openai.OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", MESSAGES)
    return client.chat.completions.create(model="sim", **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ every kind, plain


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_through_the_openai_sdk(sim, kind):
    plan = only(kind, timeout_s=600.0, slow_s=0.05, retry_after=7)
    with FaultProxy(sim.url, plan) as px:
        client = sdk(px.url, timeout=0.5 if kind == "timeout" else 30.0)
        kwargs: dict[str, Any] = {}
        if kind == "wrong_schema":
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "person", "schema": SCHEMA}}
        if kind == "bad_tool_call":
            kwargs["tools"] = [{"type": "function", "function": {
                "name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
        expected_error = {"rate_limit": openai.RateLimitError,
                          "timeout": openai.APITimeoutError,
                          "connection_error": openai.APIConnectionError,
                          "server_error": openai.InternalServerError,
                          "stream_cut": openai.APIConnectionError}.get(kind)
        if expected_error is not None:
            with pytest.raises(expected_error) as info:
                create(client, **kwargs)
            if kind == "rate_limit":
                assert info.value.status_code == 429
                assert info.value.response.headers["retry-after"] == "7"
                assert info.value.response.headers[FAULT_HEADER] == "rate_limit; proxy"
            if kind == "server_error":
                assert info.value.status_code in (500, 502, 503)
            if kind == "timeout":  # a timeout, not a connection error: nothing came back
                assert not isinstance(info.value, openai.APIStatusError)
        else:
            raw = client.chat.completions.with_raw_response.create(
                model="sim", messages=MESSAGES, **kwargs)
            assert raw.headers[FAULT_HEADER] == f"{kind}; proxy"
            choice = raw.parse().choices[0]
            content = choice.message.content
            if kind == "malformed_json":
                with pytest.raises(json.JSONDecodeError):
                    json.loads(content)
            elif kind == "truncated":
                assert choice.finish_reason == "length"
                assert content == TEXT[: len(TEXT) // 2]
            elif kind == "empty":
                assert content == ""
            elif kind == "refusal":
                assert content == REFUSAL_TEXT
            elif kind == "wrong_schema":
                with pytest.raises(jsonschema.ValidationError):
                    jsonschema.validate(json.loads(content), SCHEMA)
            elif kind == "slow":
                assert content == TEXT and choice.finish_reason == "stop"
            elif kind == "bad_tool_call":
                call = choice.message.tool_calls[0]
                assert call.function.name == "get_weather"
                assert choice.finish_reason == "tool_calls"
                with pytest.raises(json.JSONDecodeError):
                    json.loads(call.function.arguments)
        # faults that replace the answer never cost an upstream call
        assert sim.request_count == (1 if kind in NEEDS_UPSTREAM else 0)
        assert px.faults_served == Counter({kind: 1})
        assert px.upstream_failures == 0


def test_stream_cut_streamed_stops_half_way(sim):
    with FaultProxy(sim.url, only("stream_cut")) as px:
        stream = create(sdk(px.url), stream=True)
        pieces = []
        with pytest.raises(openai.APIConnectionError):
            for chunk in stream:
                pieces.append(chunk.choices[0].delta.content or "")
    got = "".join(pieces)
    assert pieces, "the events before the cut reach the client"
    assert got and TEXT.startswith(got) and len(got) < len(TEXT)


def test_truncated_streamed_is_an_sse_answer_with_finish_length(sim):
    with FaultProxy(sim.url, only("truncated")) as px:
        chunks = list(create(sdk(px.url), stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert text == TEXT[: len(TEXT) // 2]
    assert finishes[-1] == "length"
    # the upstream was asked for a plain answer, which the proxy cut and streamed
    assert sim.recent_requests[-1]["body"]["stream"] is False


@pytest.mark.parametrize("kind", ["empty", "refusal", "malformed_json", "bad_tool_call"])
def test_answer_faults_stream_when_asked(sim, kind):
    with FaultProxy(sim.url, only(kind)) as px:
        chunks = list(create(sdk(px.url), stream=True))
    assert chunks and chunks[-1].usage is not None  # a complete stream, usage last
    finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    assert finish == ("tool_calls" if kind == "bad_tool_call" else "stop")


def test_errors_stay_errors_when_streaming(sim):
    with FaultProxy(sim.url, only("rate_limit")) as px, pytest.raises(openai.RateLimitError):
        create(sdk(px.url), stream=True)


def test_stop_drops_a_held_timeout(sim):
    """A ``timeout`` holds the connection for plan.timeout_s, but stop() wakes it: the
    client sees the connection dropped with no answer."""
    px = FaultProxy(sim.url, only("timeout", timeout_s=600.0)).start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            create(sdk(px.url, timeout=120.0))
        except BaseException as exc:  # noqa: BLE001 - inspected below
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    while px.faults_served["timeout"] == 0 and thread.is_alive():  # until it is held
        threading.Event().wait(0.01)
    px.stop()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], openai.APIConnectionError)
    assert not isinstance(errors[0], openai.APITimeoutError)


# ------------------------------------------------------------------------ attribution


def test_calls_are_attributed_by_header_and_by_path(sim):
    plan = FaultPlan({"rate_limit": 0.3, "empty": 0.2}, seed=11)
    ctx = SampleContext(index=2, seed=4242, fault_plan=plan)
    n = 24
    with FaultProxy(sim.url) as px:  # the proxy's own plan is empty: the sample's applies
        by_header = sdk(px.url, default_headers={SAMPLE_HEADER: ctx.token})
        by_path = sdk(px.sample_url(ctx.token))
        outcomes = []
        for i in range(n):
            try:
                create(by_header if i % 2 else by_path)
                outcomes.append("ok")
            except openai.RateLimitError:
                outcomes.append("rate_limit")
    expected = [plan.draw(ctx.seed, i) for i in range(n)]
    assert {k for k in expected if k} == {"rate_limit", "empty"}, "the plan is exercised"
    assert [r.fault for r in ctx.calls] == expected
    assert [(f.call, f.kind, f.via) for f in ctx.faults] == [
        (i, k, "proxy") for i, k in enumerate(expected) if k]
    assert outcomes == ["rate_limit" if k == "rate_limit" else "ok" for k in expected]
    for record, kind in zip(ctx.calls, expected, strict=True):
        assert record.via == "proxy" and record.model == "sim" and not record.cached
        if kind is None:  # a real answer: its tokens are recorded
            assert record.prompt_tokens and record.completion_tokens and record.error is None
        elif kind == "rate_limit":
            assert "429" in record.error and record.prompt_tokens is None
        else:
            assert record.error is None and record.prompt_tokens is None
    # the sample's seed went upstream with every forwarded request
    forwarded = [r["body"] for r in sim.recent_requests]
    assert len(forwarded) == expected.count(None)
    assert all(body["seed"] == 4242 for body in forwarded)
    assert ctx.provider_failures == []


def test_sample_without_plan_uses_the_proxys_plan_keyed_by_its_seed(sim):
    plan = FaultPlan({"server_error": 0.5}, seed=1)
    ctx = SampleContext(index=0, seed=99)
    with FaultProxy(sim.url, plan) as px:
        client = sdk(px.sample_url(ctx.token))
        for _ in range(12):
            try:
                create(client)
            except openai.InternalServerError:
                pass
    expected = [plan.draw(99, i) for i in range(12)]
    assert None in expected and "server_error" in expected
    assert [r.fault for r in ctx.calls] == expected
    assert [f.kind for f in ctx.faults] == [k for k in expected if k]


def test_explicit_seed_is_kept_and_unknown_tokens_are_unattributed(sim):
    ctx = SampleContext(index=0, seed=7)
    with FaultProxy(sim.url) as px:
        create(sdk(px.sample_url(ctx.token)), seed=12345)
        create(sdk(px.sample_url("s0-nosuchsample")))
    bodies = [r["body"] for r in sim.recent_requests]
    assert bodies[0]["seed"] == 12345
    assert "seed" not in bodies[1]
    assert len(ctx.calls) == 1


def test_streamed_usage_cost_and_model_name_are_recorded(sim):
    ctx = SampleContext(index=0, seed=1)
    prices: list[tuple] = []

    def cost(model: str, prompt: int | None, completion: int | None) -> float:
        prices.append((model, prompt, completion))
        return 0.5

    with FaultProxy(sim.url, cost=cost, model_name=lambda m: "openai/" + m) as px:
        chunks = list(create(sdk(px.sample_url(ctx.token)), stream=True,
                             stream_options={"include_usage": True}))
    usage = chunks[-1].usage
    (record,) = ctx.calls
    assert record.model == "openai/sim"
    assert (record.prompt_tokens, record.completion_tokens) == (usage.prompt_tokens,
                                                                usage.completion_tokens)
    assert record.cost == 0.5 and prices == [("openai/sim", usage.prompt_tokens,
                                              usage.completion_tokens)]
    assert record.time_to_first_token is not None and record.latency >= 0


@pytest.mark.parametrize("kind, error, stream", [
    ("timeout", openai.APITimeoutError, False),
    ("connection_error", openai.APIConnectionError, False),
    ("stream_cut", openai.APIConnectionError, True),
    ("rate_limit", openai.RateLimitError, False),
])
def test_injected_failures_are_recorded_when_the_client_sees_them(sim, kind, error, stream):
    """The CallRecord is in the sample by the time the client has its error (a sample
    may end right then), with the fault, an error, and no provider failure."""
    ctx = SampleContext(index=0, seed=5, fault_plan=only(kind, timeout_s=600.0))
    with FaultProxy(sim.url, cost=lambda *_: 1.0) as px:
        client = sdk(px.sample_url(ctx.token), timeout=0.3 if kind == "timeout" else 30.0)
        with pytest.raises(error):
            if stream:
                for _ in create(client, stream=True, stream_options={"include_usage": True}):
                    pass
            else:
                create(client)
        (record,) = ctx.calls
        assert record.fault == kind and record.error.startswith(f"injected {kind}")
        assert [(f.kind, f.via) for f in ctx.faults] == [(kind, "proxy")]
        assert ctx.provider_failures == [] and px.upstream_failures == 0
        if kind == "stream_cut":  # the upstream answered in full: that answer was paid for
            assert record.cost == 1.0 and record.completion_tokens
        else:  # served by the proxy alone: free
            assert record.cost == 0.0 and record.prompt_tokens is None


def test_unattributed_calls_use_the_key_header(sim):
    plan = FaultPlan({"rate_limit": 0.5}, seed=2)
    with FaultProxy(sim.url, plan) as px, httpx.Client(base_url=px.url) as http:
        got = [http.post("/chat/completions", json={"model": "sim", "messages": MESSAGES},
                         headers={KEY_HEADER: "my-key"}).status_code for _ in range(16)]
    assert got == [429 if plan.draw("my-key", i) else 200 for i in range(16)]
    assert 429 in got and 200 in got


# ------------------------------------------------------------- determinism and rates


def _kinds_seen(url: str, n: int, key: str | None = None) -> list[str | None]:
    headers = {KEY_HEADER: key} if key else {}
    out = []
    with httpx.Client(base_url=url, headers=headers) as http:
        for _ in range(n):
            r = http.post("/chat/completions", json={"model": "sim", "messages": MESSAGES})
            fault = r.headers.get(FAULT_HEADER)
            out.append(fault.split(";")[0] if fault else None)
    return out


def test_faults_are_deterministic_for_a_seed(sim):
    spec = "rate_limit:0.2,server_error:0.1,empty:0.1,refusal:0.1"
    runs = []
    for seed in (5, 5, 6):
        with FaultProxy(sim.url, FaultPlan.parse(spec, seed=seed)) as px:
            runs.append(_kinds_seen(px.url, 80))
    plan = FaultPlan.parse(spec, seed=5)
    assert runs[0] == runs[1] == [plan.draw("proxy", i) for i in range(80)]
    assert len(set(runs[0])) == 5
    assert runs[2] != runs[0]


async def _fire(url: str, n: int, concurrency: int) -> Counter[str]:
    """``n`` chat completions from ``concurrency`` aiohttp workers (a lighter load
    generator than httpx): how many got each fault (``none``: a clean answer)."""
    import aiohttp

    seen: Counter[str] = Counter()
    body = json.dumps({"model": "sim", "messages": MESSAGES})
    remaining = n
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                try:
                    async with s.post(url + "/chat/completions", data=body,
                                      headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                        fault = r.headers.get(FAULT_HEADER)
                        seen[fault.split(";")[0] if fault else "none"] += 1
                except aiohttp.ClientConnectionError:
                    seen["connection_error"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return seen


@pytest.mark.slow
def test_observed_fault_rates_are_within_the_binomial_interval(sim):
    """2,000 calls through the proxy: each kind's count lies in its 99.9% binomial
    interval (the draws are seeded, so this is not flaky); 3 to 8 s here."""
    # most calls faulted (those are served without the upstream): a quicker test
    rates = {"rate_limit": 0.25, "connection_error": 0.05, "server_error": 0.15,
             "empty": 0.1, "refusal": 0.1, "malformed_json": 0.15}
    n = 2000
    with FaultProxy(sim.url, FaultPlan(rates, seed=2024)) as px:
        seen = asyncio.run(_fire(px.url, n, 16))
        served = px.faults_served
    assert sum(seen.values()) == n
    for kind, rate in [*rates.items(), ("none", 1 - sum(rates.values()))]:
        low, high = binom.interval(0.999, n, rate)
        assert low <= seen[kind] <= high, (kind, seen[kind], (low, high))
        if kind != "none":
            assert served[kind] == seen[kind]
    assert sim.request_count == seen["none"]  # only clean calls reached the upstream


# ---------------------------------------------------------------- byte-exact streaming

_ID = re.compile(rb'("id":"chatcmpl-)([0-9a-f]*)')
_CREATED = re.compile(rb'("created":)(\d*)')


def normalize(data: bytes) -> bytes:
    """The simulator stamps each answer with a per-server id and the clock second; blank
    them keeping their length, also in a stream cut inside one."""
    data = _ID.sub(lambda m: m.group(1) + b"x" * len(m.group(2)), data)
    return _CREATED.sub(lambda m: m.group(1) + b"0" * len(m.group(2)), data)


def _stream_body(i: int) -> dict:
    return {"model": "sim", "stream": True, "seed": 1000 + i, "temperature": 1.0,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": f"varied question {i % 7}"}]}


async def _streams(url: str, n: int) -> list[tuple[bytes, str | None, bool]]:
    """``n`` concurrent streamed requests: (raw body bytes, fault header, ended cleanly)."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as http:

        async def one(i: int) -> tuple[bytes, str | None, bool]:
            data = b""
            async with http.stream("POST", "/chat/completions", json=_stream_body(i)) as r:
                assert r.status_code == 200
                try:
                    async for piece in r.aiter_raw():
                        data += piece
                except httpx.RemoteProtocolError:
                    return data, r.headers.get(FAULT_HEADER), False
                return data, r.headers.get(FAULT_HEADER), True

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def test_simulator_is_deterministic_given_seed():
    """What the concurrency test relies on: two simulators of one scenario stream the
    same bytes for a seeded request (but for id and time), and seeds matter."""
    with SimulatorServer(SCENARIO) as a, SimulatorServer(SCENARIO) as b:
        first = asyncio.run(_streams(a.url, 20))
        second = asyncio.run(_streams(b.url, 20))
    assert [normalize(d) for d, _, _ in first] == [normalize(d) for d, _, _ in second]
    assert len({normalize(d) for d, _, _ in first}) > 3


def test_concurrent_streams_are_byte_identical_unless_cut():
    n = 100
    plan = FaultPlan({"stream_cut": 0.2}, seed=8)
    scenario = {**SCENARIO, "latency": {"ms": 20}}  # so that the streams overlap
    with SimulatorServer(scenario) as behind, SimulatorServer(scenario) as direct, \
            FaultProxy(behind.url, plan) as px:
        proxied = asyncio.run(_streams(px.url, n))
        straight = asyncio.run(_streams(direct.url, n))
        assert behind.max_in_flight > 1  # they really overlapped
    cut = 0
    for (got, fault, whole), (want, _, _) in zip(proxied, straight, strict=True):
        assert want.endswith(b"data: [DONE]\n\n")
        if fault is None:
            assert whole and normalize(got) == normalize(want)
        else:
            cut += 1
            assert fault == "stream_cut; proxy" and not whole
            assert len(got) == cut_point(len(want)) < len(want)
            assert normalize(got) == normalize(want)[: len(got)]
            assert b"[DONE]" not in got
    low, high = binom.interval(0.999, n, 0.2)
    assert low <= cut <= high and cut == px.faults_served["stream_cut"]


class _Upstream(ThreadingHTTPServer):
    """A scripted upstream: records request headers; its SSE answer is sent in odd
    pieces, the second half only once ``release`` is set."""

    daemon_threads = True

    def __init__(self, events: list[bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)
        self.events = events
        self.seen_headers: list[dict[str, str]] = []
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> _Upstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _UpstreamHandler(BaseHTTPRequestHandler):
    server: _Upstream
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.seen_headers.append(dict(self.headers.items()))
        if self.path.endswith("/echo"):
            data = b'{"ok": true}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        blob = b"".join(self.server.events)
        half = len(blob) // 2
        for start in range(0, half, 37):  # pieces that split events mid-way
            self.wfile.write(blob[start:min(start + 37, half)])
            self.wfile.flush()
        self.server.release.wait(60)  # a safety net for a broken proxy, not a limit
        self.wfile.write(blob[half:])
        self.wfile.flush()


def _events() -> list[bytes]:
    from llmcheck.injection.catalogue import completion_body, sse_events

    return sse_events(completion_body("up", "naïve café " * 40))


def test_streams_are_relayed_as_they_come_byte_for_byte():
    events = _events()
    blob = b"".join(events)
    with _Upstream(events) as up, FaultProxy(up.url) as px, httpx.Client() as http, \
            http.stream("POST", px.url + "/chat/completions",
                        json={"model": "up", "messages": MESSAGES, "stream": True}) as r:
        assert r.headers["content-type"] == "text/event-stream"
        data = b""
        pieces = r.iter_raw()
        while len(data) < len(blob) // 2:  # the first half arrives before the upstream
            data += next(pieces)            # has sent the rest: nothing is buffered
        up.release.set()
        for piece in pieces:
            data += piece
    assert data == blob


# ---------------------------------------------------------------- upstream failures


def test_refused_upstream_is_a_502_and_a_provider_failure():
    ctx = SampleContext(index=0, seed=3)
    with FaultProxy(f"http://127.0.0.1:{free_port()}/v1") as px:
        with pytest.raises(openai.InternalServerError) as info:
            create(sdk(px.sample_url(ctx.token)))
        assert info.value.status_code == 502
        assert info.value.body["code"] == "upstream_unavailable"
        with httpx.Client() as http:  # other paths too
            assert http.get(px.url + "/models").status_code == 502
        assert px.upstream_failures == 2
    assert len(ctx.provider_failures) == 1 and "could not be reached" in ctx.provider_failures[0]
    (record,) = ctx.calls
    assert record.error and record.fault is None
    assert ctx.faults == []


@pytest.mark.parametrize("forced, error, status", [
    ("rate_limit", openai.RateLimitError, (429,)),
    ("server_error", openai.InternalServerError, (500, 502, 503)),
])
def test_real_upstream_errors_are_relayed_not_injected(sim, forced, error, status):
    ctx = SampleContext(index=0, seed=3)
    with FaultProxy(sim.url) as px:
        client = sdk(px.sample_url(ctx.token), default_headers={FAULT_HEADER: forced})
        with pytest.raises(error) as info:
            create(client)
        assert px.upstream_failures == 1 and not px.faults_served
    assert info.value.status_code in status
    # the upstream's own answer, not one of the proxy's
    assert not info.value.response.headers[FAULT_HEADER].endswith("; proxy")
    assert ctx.faults == [] and len(ctx.provider_failures) == 1
    assert f"upstream answered {info.value.status_code}" in ctx.calls[0].error


def test_other_paths_are_forwarded_and_unknown_ones_are_404(sim):
    with FaultProxy(sim.url, only("rate_limit")) as px, httpx.Client() as http:
        via = http.get(px.url + "/models")
        assert via.status_code == 200 and via.json() == http.get(sim.url + "/models").json()
        emb = http.post(px.url + "/embeddings", json={"model": "e", "input": "hi"})
        assert emb.json()["data"][0]["embedding"] == http.post(
            sim.url + "/embeddings", json={"model": "e", "input": "hi"}).json(
            )["data"][0]["embedding"]
        assert http.get(px.root_url + "/health").status_code == 404
        assert px.faults_served == Counter()  # only chat completions get faults


# ------------------------------------------------------------------------------ keys


def test_accept_key_is_enforced_and_never_echoed(sim):
    with FaultProxy(sim.url, accept_key="sk-throwaway-123") as px:
        with pytest.raises(openai.AuthenticationError) as info:
            create(sdk(px.url))
        assert "sk-throwaway-123" not in info.value.response.text
        assert sim.request_count == 0
        good = openai.OpenAI(base_url=px.url, api_key="sk-throwaway-123", max_retries=0)
        assert create(good).choices[0].message.content == TEXT


def test_upstream_key_replaces_the_clients_and_is_never_echoed():
    secret = "sk-upstream-SECRET-987"
    with _Upstream(_events()) as up, FaultProxy(up.url, upstream_api_key=secret,
                                                accept_key="sk-local") as px:
        up.release.set()
        with httpx.Client() as http:
            r = http.post(px.url + "/echo", json={},
                          headers={"Authorization": "Bearer sk-local", "api-key": "sk-local",
                                   SAMPLE_HEADER: "s1-x", "X-Custom": "kept"})
            streamed = http.post(px.url + "/chat/completions", headers={
                "Authorization": "Bearer sk-local"}, json={"model": "up", "messages": MESSAGES,
                                                          "stream": True})
    assert r.status_code == 200 and streamed.status_code == 200
    for response in (r, streamed):
        assert secret not in response.text and secret not in str(response.headers)
    for seen in up.seen_headers:
        lower = {k.lower(): v for k, v in seen.items()}
        assert lower["authorization"] == f"Bearer {secret}"
        assert "api-key" not in lower and SAMPLE_HEADER.lower() not in lower
    assert {k.lower(): v for k, v in up.seen_headers[0].items()}["x-custom"] == "kept"
    assert secret not in repr(px)


def test_register_marks_the_proxy_while_it_runs(sim):
    px = FaultProxy(sim.url, register=True).start()
    netloc = f"127.0.0.1:{px.port}"
    assert is_proxy(netloc)
    px.stop()
    assert not is_proxy(netloc)


# ----------------------------------------------------------------------------- cache


def test_cache_records_then_replays_plain_and_streamed(sim, tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite", "rw")
    try:
        with FaultProxy(sim.url, cache=cache, cost=lambda *_: 0.25) as px:
            first = SampleContext(index=4, seed=1)
            client = sdk(px.sample_url(first.token))
            plain = create(client).choices[0].message.content
            twice = create(client).choices[0].message.content  # 2nd identical call: ordinal 1
            streamed = list(create(sdk(px.sample_url(first.token)), stream=True,
                                   messages=[{"role": "user", "content": "other"}]))
            assert cache.writes == 3 and sim.request_count == 3
            assert [c.cached for c in first.calls] == [False, False, False]

            replay = SampleContext(index=4, seed=999)  # same sample index, new seed
            again = sdk(px.sample_url(replay.token))
            raw = again.chat.completions.with_raw_response.create(model="sim", messages=MESSAGES)
            assert raw.headers["X-Llmcheck-Cache"] == "hit"
            assert raw.parse().choices[0].message.content == plain
            assert create(again, stream=True) is not None  # ordinal 1, replayed as SSE
            chunks = list(create(again, stream=True,
                                 messages=[{"role": "user", "content": "other"}]))
            assert sim.request_count == 3, "hits never reach the upstream"
            assert cache.hits == 3
    finally:
        cache.close()
    assert plain == twice == TEXT
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert [c.cached for c in replay.calls] == [True, True, True]
    assert replay.calls[0].cost == 0.25 and replay.calls[0].prompt_tokens


def test_faulted_calls_bypass_the_cache(sim, tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite", "rw")
    try:
        with FaultProxy(sim.url, only("empty"), cache=cache) as px:
            ctx = SampleContext(index=0, seed=1)
            create(sdk(px.sample_url(ctx.token)))
        assert cache.writes == 0 and cache.hits + cache.misses == 0
    finally:
        cache.close()


# ------------------------------------------------------------------------------- CLI


def test_cli_bad_spec_is_a_usage_error(capsys):
    assert main(["proxy", "--upstream", "http://127.0.0.1:9/v1", "--faults", "bogus:1"]) == 2
    assert "unknown fault kind" in capsys.readouterr().err
    assert main(["proxy", "--upstream", "ftp://x", "--port", "0"]) == 2
    assert main(["proxy", "--upstream", "http://127.0.0.1:9/v1", "--upstream-key-env",
                 "LLMCHECK_TEST_SURELY_UNSET"]) == 2


def test_cli_serves_until_terminated(sim):
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmcheck.cli.proxy", "proxy", "--upstream", sim.url,
         "--faults", "rate_limit:1", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("llmcheck proxy listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[-1].strip()
        banner = "".join(proc.stdout.readline() for _ in range(3))
        token = banner.split("token:", 1)[1].split()[0]  # clients present the proxy's token
        with pytest.raises(openai.RateLimitError):
            create(openai.OpenAI(base_url=url, api_key=token, max_retries=0))
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert "1 faults injected" in out


class _Misbehaving(BaseHTTPRequestHandler):
    """An upstream that answers chat completions badly, as the request's ``x-mode`` asks:
    ``empty`` (a 200 with no body), ``echo`` (a 429 that echoes the Authorization)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.headers.get("x-mode") == "echo":
            data = json.dumps({"error": {"message": "slow down, "
                                         + self.headers.get("Authorization", "")}}).encode()
            status = 429
        else:
            data, status = b"", 200
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_a_misbehaving_upstream_is_a_provider_failure_and_its_echo_is_redacted():
    from llmcheck.records.schema import SampleRecord

    secret = "sk-upstream-ECHOED-4242"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Misbehaving)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        with FaultProxy(url, upstream_api_key=secret) as px:
            for mode in ("empty", "echo"):
                ctx = SampleContext(index=0, seed=1)
                token = context._set(ctx)
                try:
                    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the SDK makes of it
                        sdk(px.sample_url(ctx.token)).chat.completions.create(
                            model="m", messages=MESSAGES, extra_headers={"x-mode": mode})
                finally:
                    context._reset(token)
                assert len(ctx.calls) == 1 and ctx.calls[0].error and ctx.provider_failures
                record = SampleRecord(index=0, seed=1, outcome="error", duration=0.0,
                                      calls=ctx.calls, provider_failures=ctx.provider_failures)
                assert secret not in record.model_dump_json()
    finally:
        server.shutdown()
        server.server_close()
