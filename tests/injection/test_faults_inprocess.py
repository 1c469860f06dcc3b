"""In-process fault injection (llmcheck/injection/inprocess.py): every kind of the catalogue
through litellm (sync, async, streamed), the openai SDK and plain httpx, against the
simulator on loopback; what reaches the upstream; determinism and observed rates;
attribution to the running sample; requests for a proxy; the untouched fast path.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import httpx2
import jsonschema
import openai
import pytest
import scipy.stats

from llmcheck.core import context
from llmcheck.core.context import SampleContext
from llmcheck.errors import UsageError
from llmcheck.injection import attribution, inprocess
from llmcheck.injection.catalogue import (
    KINDS,
    REFUSAL_TEXT,
    SERVER_ERROR_STATUSES,
    FaultPlan,
)
from llmcheck.model.client import import_litellm
from llmcheck.simulator import SimulatorServer

litellm = import_litellm()
from litellm.exceptions import MidStreamFallbackError  # noqa: E402 - after the offline import

TEXT = ("The quick brown fox jumps over the lazy dog while the old cat watches it "
        "from the warm kitchen windowsill.")
SCENARIO = {"name": "inject-tests", "seed": 1, "default": {"answers": [{"text": TEXT}]}}
MODEL = "openai/llmcheck-sim"
MESSAGES = [{"role": "user", "content": "Tell me something."}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
RESPONSE_FORMAT = {"type": "json_schema",
                   "json_schema": {"name": "person", "schema": SCHEMA, "strict": True}}
CHAT = {"model": "llmcheck-sim", "messages": MESSAGES}
SLOW_S = 0.05


@pytest.fixture(scope="module")
def sim():
    """The simulator, answering TEXT at once (no latency), for the whole module."""
    with SimulatorServer(scenario=SCENARIO) as server:
        yield server


@pytest.fixture(autouse=True)
def patched():
    inprocess.install()
    yield
    inprocess.uninstall()


def plan_of(kind: str, seed: int = 0) -> FaultPlan:
    return FaultPlan({kind: 1.0}, seed=seed, slow_s=SLOW_S)


def llm_kwargs(sim: SimulatorServer, **extra) -> dict:
    return {"model": MODEL, "api_base": sim.url, "api_key": "sk-sim", "messages": MESSAGES,
            "num_retries": 0, "max_retries": 0, **extra}


def complete(sim: SimulatorServer, *, aio: bool = False, stream: bool = False, **extra):
    """A litellm call; a stream is read to its end (a list of chunks)."""
    kwargs = llm_kwargs(sim, stream=stream, **extra)
    if not aio:
        answer = litellm.completion(**kwargs)
        return list(answer) if stream else answer

    async def run():
        answer = await litellm.acompletion(**kwargs)
        return [chunk async for chunk in answer] if stream else answer

    return asyncio.run(run())


def streamed_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finish_reasons(chunks) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks
            if c.choices and c.choices[0].finish_reason]


def seed_for_status(status: int) -> int:
    """A plan seed whose first out-of-sample server_error is ``status``."""
    for seed in range(100):
        index = FaultPlan({"server_error": 1.0}, seed=seed).variant("global", 0, 3)
        if SERVER_ERROR_STATUSES[index] == status:
            return seed
    raise AssertionError(status)


def unparsable(text: str | None) -> bool:
    try:
        json.loads(text or "")
    except ValueError:
        return True
    return False


# -- every kind through litellm.completion ----------------------------------------------

ERRORS = {
    "rate_limit": litellm.RateLimitError,
    "timeout": litellm.Timeout,
    "connection_error": litellm.InternalServerError,  # "Connection error.", as when refused
    "stream_cut": litellm.InternalServerError,        # a 200 whose JSON body stops half-way
}
UPSTREAM = {"slow", "truncated", "stream_cut"}


@pytest.mark.parametrize("kind", list(ERRORS))
def test_error_kinds_raise_litellms_exception(sim, kind):
    before = sim.request_count
    with inprocess.inject(plan_of(kind)) as faults, pytest.raises(ERRORS[kind]) as info:
        complete(sim)
    assert faults == [(0, kind)]
    assert sim.request_count - before == (1 if kind in UPSTREAM else 0)
    if kind == "rate_limit":
        assert info.value.status_code == 429 and "injected by llmcheck" in str(info.value)
    if kind == "connection_error":
        assert "Connection error" in str(info.value)
    if kind == "stream_cut":
        assert "Unterminated string" in str(info.value)


@pytest.mark.parametrize("status,error", [(500, litellm.InternalServerError),
                                          (502, litellm.BadGatewayError),
                                          (503, litellm.ServiceUnavailableError)])
def test_server_errors_raise_by_status(sim, status, error):
    before = sim.request_count
    plan = FaultPlan({"server_error": 1.0}, seed=seed_for_status(status))
    with inprocess.inject(plan), pytest.raises(error) as info:
        complete(sim)
    assert info.value.status_code == status
    assert sim.request_count == before


def test_malformed_json_is_a_normal_answer_that_does_not_parse(sim):
    with inprocess.inject(plan_of("malformed_json")):
        answer = complete(sim)
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content.startswith("{")
    assert unparsable(answer.choices[0].message.content)


def test_wrong_schema_is_json_the_requested_schema_rejects(sim):
    with inprocess.inject(plan_of("wrong_schema")):
        answer = complete(sim, response_format=RESPONSE_FORMAT)
    document = json.loads(answer.choices[0].message.content)
    assert set(document) & {"name", "age"}                 # it looks like an answer...
    with pytest.raises(jsonschema.ValidationError):         # ...of the wrong shape
        jsonschema.validate(document, SCHEMA)


def test_empty_and_refusal(sim):
    with inprocess.inject(plan_of("empty")):
        assert complete(sim).choices[0].message.content == ""
    with inprocess.inject(plan_of("refusal")):
        answer = complete(sim)
    assert answer.choices[0].message.content == REFUSAL_TEXT
    assert answer.choices[0].finish_reason == "stop"


def test_bad_tool_call_arguments_do_not_parse(sim):
    with inprocess.inject(plan_of("bad_tool_call")):
        answer = complete(sim, tools=TOOLS)
    (call,) = answer.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert unparsable(call.function.arguments)
    assert answer.choices[0].finish_reason == "tool_calls"


def test_slow_is_the_real_answer_late(sim):
    before = sim.request_count
    started = time.perf_counter()
    with inprocess.inject(plan_of("slow")) as faults:
        answer = complete(sim)
    assert time.perf_counter() - started >= SLOW_S
    assert answer.choices[0].message.content == TEXT
    assert faults == [(0, "slow")] and sim.request_count == before + 1


def test_truncated_is_the_real_answer_cut_with_finish_reason_length(sim):
    before = sim.request_count
    with inprocess.inject(plan_of("truncated")):
        answer = complete(sim)
    content = answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "length"
    assert content and TEXT.startswith(content) and len(content) < len(TEXT)
    assert sim.request_count == before + 1


def test_every_kind_is_covered():
    covered = set(ERRORS) | {"server_error", "malformed_json", "wrong_schema", "empty",
                             "refusal", "bad_tool_call", "slow", "truncated"}
    assert covered == set(KINDS)


# -- async and streamed ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rate_limit", "timeout", "connection_error",
                                  "stream_cut"])
def test_error_kinds_through_acompletion(sim, kind):
    with inprocess.inject(plan_of(kind)) as faults, pytest.raises(ERRORS[kind]):
        complete(sim, aio=True)
    assert faults == [(0, kind)]


def test_answer_kinds_through_acompletion(sim):
    with inprocess.inject(plan_of("refusal")):
        assert complete(sim, aio=True).choices[0].message.content == REFUSAL_TEXT
    with inprocess.inject(plan_of("truncated")):
        answer = complete(sim, aio=True)
    assert answer.choices[0].finish_reason == "length"
    assert TEXT.startswith(answer.choices[0].message.content)
    with inprocess.inject(plan_of("slow")):
        assert complete(sim, aio=True).choices[0].message.content == TEXT


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
def test_streamed_answer_kinds(sim, aio):
    with inprocess.inject(plan_of("refusal")):
        chunks = complete(sim, aio=aio, stream=True)
    assert streamed_text(chunks) == REFUSAL_TEXT and finish_reasons(chunks) == ["stop"]

    before = sim.request_count
    with inprocess.inject(plan_of("truncated")):
        chunks = complete(sim, aio=aio, stream=True)
    text = streamed_text(chunks)
    assert finish_reasons(chunks) == ["length"]
    assert text and TEXT.startswith(text) and len(text) < len(TEXT)
    assert sim.request_count == before + 1

    with inprocess.inject(plan_of("bad_tool_call")):
        chunks = complete(sim, aio=aio, stream=True, tools=TOOLS)
    (call,) = litellm.stream_chunk_builder(chunks).choices[0].message.tool_calls
    assert call.function.name == "get_weather" and unparsable(call.function.arguments)


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("kind", ["rate_limit", "timeout", "server_error"])
def test_streamed_requests_get_error_kinds_at_once(sim, kind, aio):
    error = ERRORS.get(kind, litellm.InternalServerError)
    with inprocess.inject(plan_of(kind, seed=seed_for_status(500))), pytest.raises(error):
        complete(sim, aio=aio, stream=True)


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
def test_stream_cut_raises_mid_stream_after_some_chunks(sim, aio):
    whole = complete(sim, aio=aio, stream=True)
    assert streamed_text(whole) == TEXT
    received = []

    def read():
        kwargs = llm_kwargs(sim, stream=True)
        if not aio:
            for chunk in litellm.completion(**kwargs):
                received.append(chunk)
            return

        async def run():
            async for chunk in await litellm.acompletion(**kwargs):
                received.append(chunk)

        asyncio.run(run())

    with inprocess.inject(plan_of("stream_cut")) as faults:
        with pytest.raises(MidStreamFallbackError) as info:
            read()
    assert faults == [(0, "stream_cut")]
    assert isinstance(info.value, litellm.ServiceUnavailableError)
    assert "Connection error" in str(info.value)
    text = streamed_text(received)
    assert 0 < len(received) < len(whole) and text and TEXT.startswith(text)
    assert len(text) < len(TEXT)


# -- who is affected ----------------------------------------------------------------------

def test_code_that_imported_completion_before_install_is_affected(sim):
    inprocess.uninstall()
    assert not inprocess.installed()
    from litellm import completion

    client = httpx.Client()       # built before the patch too
    inprocess.install()
    assert inprocess.installed()
    try:
        with inprocess.inject(plan_of("rate_limit")), pytest.raises(litellm.RateLimitError):
            completion(**llm_kwargs(sim))
        with inprocess.inject(plan_of("rate_limit")):
            assert client.post(sim.url + "/chat/completions", json=CHAT).status_code == 429
    finally:
        client.close()


@pytest.mark.parametrize("kind,error", [("rate_limit", openai.RateLimitError),
                                        ("timeout", openai.APITimeoutError),
                                        ("connection_error", openai.APIConnectionError),
                                        ("server_error", openai.InternalServerError)])
def test_the_openai_sdk_sees_the_faults(sim, kind, error):
    client = openai.OpenAI(base_url=sim.url, api_key="x", max_retries=0)
    before = sim.request_count
    with inprocess.inject(plan_of(kind)) as faults, pytest.raises(error):
        client.chat.completions.create(model="llmcheck-sim", messages=MESSAGES)
    assert faults == [(0, kind)] and sim.request_count == before


def test_the_openai_sdk_streams_and_async(sim):
    client = openai.OpenAI(base_url=sim.url, api_key="x", max_retries=0)
    with inprocess.inject(plan_of("stream_cut")):
        received = []
        with pytest.raises(openai.APIConnectionError):
            for chunk in client.chat.completions.create(model="llmcheck-sim",
                                                        messages=MESSAGES, stream=True):
                received.append(chunk)
    assert received

    async def refused():
        aclient = openai.AsyncOpenAI(base_url=sim.url, api_key="x", max_retries=0)
        try:
            return await aclient.chat.completions.create(model="llmcheck-sim",
                                                         messages=MESSAGES)
        finally:
            await aclient.close()

    with inprocess.inject(plan_of("refusal")):
        assert asyncio.run(refused()).choices[0].message.content == REFUSAL_TEXT
    with inprocess.inject(plan_of("rate_limit")), pytest.raises(openai.RateLimitError):
        asyncio.run(refused())


def test_langchain_chat_openai_sees_the_faults(sim):
    langchain_openai = pytest.importorskip("langchain_openai")
    chat = langchain_openai.ChatOpenAI(base_url=sim.url, api_key="x", model="llmcheck-sim",
                                       max_retries=0)
    with inprocess.inject(plan_of("rate_limit")), pytest.raises(openai.RateLimitError):
        chat.invoke("Tell me something.")
    with inprocess.inject(plan_of("refusal")):
        assert chat.invoke("Tell me something.").content == REFUSAL_TEXT


def test_both_httpx_modules_are_patched():
    for module in (httpx, httpx2):
        for cls in (module.Client, module.AsyncClient):
            assert hasattr(cls.send, "__llmcheck_original__")
    inprocess.install()                                   # idempotent: no second layer
    original = httpx.Client.send.__llmcheck_original__
    assert not hasattr(original, "__llmcheck_original__")
    inprocess.uninstall()
    assert httpx.Client.send is original and not inprocess.installed()


def test_a_served_fault_runs_the_clients_event_hooks(sim):
    requests = []
    hooks = {"request": [requests.append], "response": [httpx.Response.raise_for_status]}
    with httpx.Client(event_hooks=hooks) as client, inprocess.inject(plan_of("rate_limit")):
        with pytest.raises(httpx.HTTPStatusError, match="429"):
            client.post(sim.url + "/chat/completions", json=CHAT)
    assert len(requests) == 1


# -- what reaches the upstream ------------------------------------------------------------

@pytest.mark.parametrize("kind", list(KINDS))
def test_only_the_answer_damaging_kinds_reach_the_upstream(sim, kind):
    before = sim.request_count
    with httpx.Client() as client, inprocess.inject(plan_of(kind)) as faults:
        try:
            response = client.post(sim.url + "/chat/completions", json=CHAT)
        except httpx.TransportError as exc:
            assert kind in ("timeout", "connection_error")
            assert "injected by llmcheck" in str(exc)
        else:
            fault = response.headers.get("x-llmcheck-fault")
            assert fault == (None if kind == "slow" else f"{kind}; in-process")
    assert faults == [(0, kind)]
    assert sim.request_count - before == (1 if kind in UPSTREAM else 0)


def test_other_endpoints_pass_through_and_use_no_call_number(sim):
    with httpx.Client() as client, inprocess.inject(plan_of("rate_limit")) as faults:
        embedding = client.post(sim.url + "/embeddings",
                                json={"model": "llmcheck-sim", "input": "hi"})
        models = client.get(sim.url + "/models")
        chat_get = client.get(sim.url + "/chat/completions")
        chat = client.post(sim.url + "/chat/completions", json=CHAT)
    assert embedding.status_code == 200 and models.status_code == 200
    assert chat_get.status_code != 429
    assert chat.status_code == 429 and faults == [(0, "rate_limit")]


def test_streamed_httpx_reads_of_a_fault(sim):
    """``send(stream=True)``: the body is read by the caller, sync and async."""
    body = {**CHAT, "stream": True}
    with inprocess.inject(plan_of("refusal")), httpx.Client() as client:
        with client.stream("POST", sim.url + "/chat/completions", json=body) as response:
            events = list(response.iter_lines())
    assert response.headers["content-type"] == "text/event-stream"
    assert events[-2:] == ["data: [DONE]", ""]

    async def cut() -> list[bytes]:
        got = []
        async with httpx.AsyncClient() as client:
            async with client.stream("POST", sim.url + "/chat/completions",
                                     json=body) as response:
                with pytest.raises(httpx.RemoteProtocolError, match="injected by llmcheck"):
                    async for chunk in response.aiter_bytes():
                        got.append(chunk)
        return got

    with inprocess.inject(plan_of("stream_cut")):
        received = b"".join(asyncio.run(cut()))
    assert received.startswith(b"data: ") and b"[DONE]" not in received

    with inprocess.inject(plan_of("stream_cut")), httpx.Client() as client:  # stream=False
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(sim.url + "/chat/completions", json=body)
        plain = client.post(sim.url + "/chat/completions", json=CHAT)
    assert plain.status_code == 200 and unparsable(plain.text) and plain.text.startswith("{")


# -- determinism and rates -----------------------------------------------------------------

NO_UPSTREAM_PLAN = {"rate_limit": 0.3, "server_error": 0.2, "empty": 0.2,
                    "connection_error": 0.1}


def injected_kinds(sim: SimulatorServer, plan: FaultPlan, calls: int = 40) -> list:
    with httpx.Client() as client, inprocess.inject(plan) as faults:
        for _ in range(calls):
            try:
                client.post(sim.url + "/chat/completions", json=CHAT)
            except httpx.ConnectError:
                pass
    return list(faults)


def test_the_same_plan_and_seed_inject_the_same_faults(sim):
    plan = FaultPlan(NO_UPSTREAM_PLAN, seed=11)
    first = injected_kinds(sim, plan)
    assert first == injected_kinds(sim, plan)
    assert first == [(i, plan.draw("global", i)) for i in range(40)
                     if plan.draw("global", i) is not None]
    assert len({kind for _, kind in first}) == 4
    assert injected_kinds(sim, FaultPlan(NO_UPSTREAM_PLAN, seed=12)) != first


@pytest.mark.slow
def test_observed_rates_match_the_plan(sim):
    """2,000 requests through the real interception: each kind's count lies in its
    99.9% binomial interval (the draws are seeded, so this is not flaky). About 1,200
    reach the simulator, which shares the GIL with the client: 3 to 9 s here."""
    n, rates = 2000, {"rate_limit": 0.3, "server_error": 0.1}
    plan = FaultPlan(rates, seed=2024)
    before = sim.request_count
    statuses = []
    with httpx.Client() as client, inprocess.inject(plan) as faults:
        for _ in range(n):
            statuses.append(client.post(sim.url + "/chat/completions", json=CHAT).status_code)
    observed = {"rate_limit": statuses.count(429),
                "server_error": sum(s in SERVER_ERROR_STATUSES for s in statuses)}
    for kind, rate in rates.items():
        low, high = scipy.stats.binom.interval(0.999, n, rate)
        assert low <= observed[kind] <= high, (kind, observed[kind], low, high)
        assert observed[kind] == sum(k == kind for _, k in faults)
    assert statuses.count(200) == sim.request_count - before == n - len(faults)


# -- inside a sample -----------------------------------------------------------------------

def test_faults_are_recorded_in_the_running_sample(sim):
    plan = FaultPlan({"rate_limit": 0.4, "refusal": 0.3}, seed=5)
    ctx = SampleContext(index=0, seed=123)
    ctx.fault_plan = plan
    token = context._set(ctx)
    answers = []
    try:
        with httpx.Client() as client:
            for i in range(12):
                if i % 3 == 0:     # embeddings are never numbered
                    client.post(sim.url + "/embeddings",
                                json={"model": "llmcheck-sim", "input": "x"})
                try:
                    answers.append(litellm.completion(**llm_kwargs(sim)))
                except litellm.RateLimitError:
                    answers.append("rate_limit")
            asyncio.run(litellm.acompletion(**llm_kwargs(sim)))   # call 12, async
    finally:
        context._reset(token)
    expected = [(i, plan.draw(123, i)) for i in range(13) if plan.draw(123, i)]
    assert [(f.call, f.kind) for f in ctx.faults] == expected
    assert {f.via for f in ctx.faults} == {"in-process"}
    assert {k for _, k in expected} == {"rate_limit", "refusal"}
    for (call, kind) in expected:
        if call < 12:
            got = answers[call]
            assert got == "rate_limit" if kind == "rate_limit" \
                else got.choices[0].message.content == REFUSAL_TEXT
    # the sample's plan ends with the sample
    assert complete(sim).choices[0].message.content == TEXT


def test_a_sample_without_a_plan_is_untouched(sim):
    ctx = SampleContext(index=0, seed=1)
    token = context._set(ctx)
    try:
        assert complete(sim).choices[0].message.content == TEXT
    finally:
        context._reset(token)
    # numbered (call numbers mean the same with or without a plan), never faulted
    assert ctx.faults == [] and ctx._fault_calls == 1


def test_a_registered_proxy_gets_the_sample_header_and_no_fault():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    def post(netloc: str) -> httpx.Response:
        with httpx.Client(transport=httpx.MockTransport(handler)) as client:
            return client.post(f"http://{netloc}/v1/chat/completions", json=CHAT)

    attribution.register_proxy("127.0.0.1:18555")
    ctx = SampleContext(index=0, seed=9)
    ctx.fault_plan = plan_of("rate_limit")
    try:
        token = context._set(ctx)
        try:
            proxied, direct = post("127.0.0.1:18555"), post("127.0.0.1:18556")
        finally:
            context._reset(token)
        with inprocess.inject(plan_of("rate_limit")) as faults:   # outside a sample
            outside = post("127.0.0.1:18555")
    finally:
        attribution.unregister_proxy("127.0.0.1:18555")
    assert proxied.json() == {"ok": True} and seen[0].headers[attribution.SAMPLE_HEADER] \
        == ctx.token
    assert direct.status_code == 429                          # served here, never sent
    assert [(f.call, f.kind) for f in ctx.faults] == [(0, "rate_limit")]
    assert outside.json() == {"ok": True} and faults == []    # the proxy injects, not us
    assert len(seen) == 2 and attribution.SAMPLE_HEADER not in seen[1].headers


# -- no plan: untouched ---------------------------------------------------------------------

def test_without_a_plan_requests_are_untouched(sim):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url), request.headers.multi_items(),
                     request.content))
        return httpx.Response(201, headers={"x-a": "1"}, content=b'{"fixed": 1}')

    def exchange():
        with httpx.Client(transport=httpx.MockTransport(handler)) as client:
            response = client.post("http://upstream.test/v1/chat/completions", json=CHAT)
        return response.status_code, response.headers.multi_items(), response.content

    patched = exchange()
    inprocess.uninstall()
    unpatched = exchange()
    inprocess.install()
    assert patched == unpatched and seen[0] == seen[1]
    assert complete(sim).choices[0].message.content == TEXT
    with inprocess.inject(FaultPlan()) as faults:               # an empty plan: nothing
        assert complete(sim).choices[0].message.content == TEXT
    assert faults == []


def test_inject_reads_a_spec_and_rejects_a_second_seed(sim):
    with inprocess.inject("rate_limit:1", seed=3) as faults, httpx.Client() as client:
        assert client.post(sim.url + "/chat/completions", json=CHAT).status_code == 429
    assert faults == [(0, "rate_limit")]
    with pytest.raises(UsageError):
        with inprocess.inject(FaultPlan({"rate_limit": 1.0}), seed=3):
            pass
    with pytest.raises(UsageError, match="unknown fault kind"):
        with inprocess.inject("nope:1"):
            pass
