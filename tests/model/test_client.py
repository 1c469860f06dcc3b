"""The model client over real HTTP: litellm -> the simulator, or a minimal server
written here when a behaviour must be forced. Nothing in litellm is mocked."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import EXTRACT_SUITE, by_name, scenario_server

from llmcheck.core.context import SampleContext, _reset, _set
from llmcheck.errors import UsageError
from llmcheck.model.client import (
    Budget,
    LLMClient,
    ModelCallError,
    ModelConfig,
    ModelSession,
    RateLimiter,
)

EXTRACT = "Return Ada Lovelace as JSON with name and age."
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"},
                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
        },
    },
}


def client_for(server, *, model="openai/llmcheck-sim", retries=3, backoff=0.01, timeout=10.0,
               session=None, **params) -> LLMClient:
    config = ModelConfig(model=model, api_base=server.url, api_key_env=None, params=params,
                         timeout=timeout, retries=retries, backoff=backoff,
                         simulated=model == "openai/llmcheck-sim")
    return LLMClient(config, session or ModelSession())


def one_route(answers, **extra):
    return {"name": "t", "seed": 1, "latency": {"ms": 0},
            "routes": [], "default": {"answers": answers}, **extra}


class MinimalOpenAI(BaseHTTPRequestHandler):
    """A bare OpenAI-compatible endpoint that no llmcheck code wrote: answers from
    a script of (status, body, headers) and counts requests."""

    script: list = []
    requests: list = []
    lock = threading.Lock()

    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        with self.lock:
            type(self).requests.append({"path": self.path, "body": body, "at": time.monotonic(),
                                        "auth": self.headers.get("authorization")})
            step = type(self).script.pop(0) if type(self).script else (200, None, {})
        status, payload, headers = step
        if payload is None:
            last = body["messages"][-1]["content"]
            text = json.dumps({"name": "Ada Lovelace", "age": 36}) if "Ada" in last else "ok"
            payload = {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                "model": body.get("model", "x"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
            }
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def minimal_server():
    MinimalOpenAI.script = []
    MinimalOpenAI.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), MinimalOpenAI)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- the Completion record ----------------------------------------------------

def test_completion_fields_from_the_simulator(simulator):
    reply = client_for(simulator)(EXTRACT, temperature=0)
    assert reply.json() == {"name": "Ada Lovelace", "age": 36}   # top variant at temperature 0
    assert reply.finish_reason == "stop" and reply.tool_calls == ()
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.latency > 0 and reply.retries == 0 and reply.cached is False
    assert reply.cost == 0.0                      # the simulator is free
    assert reply.model


def test_cost_and_tokens_for_a_priced_model(simulator):
    reply = client_for(simulator, model="openai/gpt-4o-mini")(EXTRACT)
    u = reply.usage
    assert u.prompt_tokens and u.completion_tokens
    # gpt-4o-mini in litellm's bundled price map: $0.15 / $0.60 per million tokens
    expected = u.prompt_tokens * 0.15e-6 + u.completion_tokens * 0.60e-6
    assert reply.cost == pytest.approx(expected, rel=1e-6)


def test_unknown_price_is_none_not_an_error(minimal_server):
    config = ModelConfig(model="openai/no-such-priced-model", api_base=minimal_server.url,
                         api_key_env="LLMCHECK_TEST_KEY", retries=0)
    import os

    os.environ["LLMCHECK_TEST_KEY"] = "sk-test-not-a-real-key"
    try:
        reply = LLMClient(config)(EXTRACT)
    finally:
        del os.environ["LLMCHECK_TEST_KEY"]
    assert reply.cost is None and reply.usage.prompt_tokens == 12
    assert MinimalOpenAI.requests[0]["auth"] == "Bearer sk-test-not-a-real-key"


def test_streaming_assembles_text_and_times_the_first_token(simulator):
    client = client_for(simulator)
    ctx = SampleContext(index=3, seed=1234)
    token = _set(ctx)
    try:
        plain = client(EXTRACT)
        streamed = client(EXTRACT, stream=True)
    finally:
        _reset(token)
    assert streamed.text == plain.text            # same sample seed, same answer
    assert streamed.time_to_first_token is not None
    assert 0 <= streamed.time_to_first_token <= streamed.latency
    assert streamed.usage.completion_tokens == plain.usage.completion_tokens


def test_tool_calls_are_passed_through_and_exposed(simulator):
    client = client_for(simulator)
    seen = set()
    for seed in range(12):
        reply = client("What's the weather in Paris?", tools=[WEATHER_TOOL], seed=seed)
        call = reply.tool_call("get_weather")
        if call is not None:
            assert reply.finish_reason == "tool_calls"
            args = call.args()
            assert isinstance(args, dict) and "city" in args
            seen.add(json.dumps(args, sort_keys=True))
        streamed = client("What's the weather in Paris?", tools=[WEATHER_TOOL], seed=seed,
                          stream=True)
        assert [c.name for c in streamed.tool_calls] == [c.name for c in reply.tool_calls]
        assert [c.args() for c in streamed.tool_calls] == [c.args() for c in reply.tool_calls]
    assert '{"city": "Paris", "unit": "celsius"}' in seen


def test_async_calls(simulator):
    client = client_for(simulator)

    async def main():
        return await asyncio.gather(*(client.acall(EXTRACT, seed=i) for i in range(20)))

    replies = asyncio.run(main())
    assert len(replies) == 20 and all(r.text for r in replies)
    assert simulator.requests_by_path.get("/v1/chat/completions") == 20


# -- retries -------------------------------------------------------------------

def test_rate_limit_retries_honour_retry_after_and_are_counted(model_stack):
    scenario = one_route([{"text": "fine"}],
                         faults=[{"kind": "rate_limit", "after": 0, "count": 2,
                                  "retry_after": 0.3}])
    with scenario_server(scenario) as server:
        client = client_for(server, backoff=0.0)
        t0 = time.perf_counter()
        reply = client("hello")
        elapsed = time.perf_counter() - t0
        assert reply.text == "fine" and reply.retries == 2
        assert server.request_count == 3                    # 2 x 429, then the answer
    assert elapsed >= 0.6                                    # waited as the server asked


def test_server_error_then_success_is_one_retry(model_stack):
    scenario = one_route([{"text": "fine"}], faults=[{"kind": "server_error", "count": 1}])
    with scenario_server(scenario) as server:
        reply = client_for(server)("hello")
        assert reply.retries == 1 and server.request_count == 2


def test_persistent_failure_is_an_infrastructure_error(model_stack):
    scenario = one_route([{"text": "fine"}], faults=[{"kind": "server_error", "count": 50}])
    with scenario_server(scenario) as server:
        with pytest.raises(ModelCallError, match="no answer after 3 attempt") as info:
            client_for(server, retries=2)("hello")
        assert info.value.attempts == 3 and server.request_count == 3


def test_timeouts_are_retried(model_stack):
    scenario = one_route([{"text": "fine"}],
                         faults=[{"kind": "timeout", "count": 1, "timeout_s": 3}])
    with scenario_server(scenario) as server:
        reply = client_for(server, timeout=0.5)("hello")
        assert reply.text == "fine" and reply.retries == 1


def test_connection_refused_is_an_infrastructure_error(model_stack):
    import socket

    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ModelConfig(model="openai/x", api_base=f"http://127.0.0.1:{port}/v1",
                         api_key_env=None, retries=1, backoff=0.01, simulated=True)
    with pytest.raises(ModelCallError, match="Connection (error|refused)"):
        LLMClient(config)("hello")


def test_bad_model_name_is_a_usage_error(model_stack):
    with pytest.raises(UsageError, match="litellm cannot tell which provider serves .*openai/gpt"):
        LLMClient(ModelConfig(model="nonsense-model-xyz", retries=0))("hello")


def test_missing_key_is_a_usage_error_naming_the_variable(model_stack, monkeypatch):
    monkeypatch.delenv("MY_PROVIDER_KEY", raising=False)
    client = LLMClient(ModelConfig(model="openai/gpt-4o-mini", api_key_env="MY_PROVIDER_KEY"))
    with pytest.raises(UsageError, match="MY_PROVIDER_KEY.*not set"):
        client("hello")


def test_rejected_key_is_a_usage_error_without_retries(minimal_server, monkeypatch):
    MinimalOpenAI.script = [(401, {"error": {"message": "Incorrect API key provided",
                                             "type": "invalid_request_error"}}, {})]
    monkeypatch.setenv("MY_PROVIDER_KEY", "sk-wrong")
    client = LLMClient(ModelConfig(model="openai/gpt-4o-mini", api_base=minimal_server.url,
                                   api_key_env="MY_PROVIDER_KEY"))
    with pytest.raises(UsageError, match="rejected the credentials") as info:
        client("hello")
    assert "sk-wrong" not in str(info.value)
    assert len(MinimalOpenAI.requests) == 1


def test_litellm_does_not_retry_on_its_own(minimal_server, monkeypatch):
    """Our retries are the only ones: 500, 500, 200 is three requests, two retries."""
    MinimalOpenAI.script = [(500, {"error": {"message": "boom"}}, {}),
                            (500, {"error": {"message": "boom"}}, {})]
    monkeypatch.setenv("K", "sk-x")
    config = ModelConfig(model="openai/x", api_base=minimal_server.url, api_key_env="K",
                         backoff=0.01)
    reply = LLMClient(config)("hello")
    assert reply.retries == 2 and len(MinimalOpenAI.requests) == 3


# -- pacing, budget, cache -------------------------------------------------------

def test_rate_limiter_spaces_requests():
    limiter = RateLimiter(rpm=600)          # one slot every 0.1 s
    t0 = time.perf_counter()
    for _ in range(4):
        limiter.wait("m")
    assert time.perf_counter() - t0 >= 0.3  # the 4th waited for its slot
    assert limiter._reserve("another-model") == 0.0   # limits are per model


def test_budget_counts_calls_and_cost():
    budget = Budget(max_cost=0.01, max_calls=3)
    assert budget.admit() is None
    budget.spend(0.004)
    assert budget.exhausted is None
    assert budget.admit() is None
    budget.spend(0.007)
    assert "max-cost" in budget.exhausted
    assert "--llm-max-cost=0.01 reached" in budget.admit()  # refused: nothing counted
    assert budget.calls == 2
    budget = Budget(max_calls=2)
    assert budget.admit() is None and budget.admit() is None
    budget.spend(None)
    assert "--llm-max-calls=2 reached" in budget.exhausted
    assert "--llm-max-calls=2 reached" in budget.admit()
    assert budget.calls == 2


def _in_sample(index: int, seed: int, call):
    """Run ``call()`` as sample ``index`` with ``seed``; return (result, its context)."""
    ctx = SampleContext(index=index, seed=seed)
    token = _set(ctx)
    try:
        return call(), ctx
    finally:
        _reset(token)


def test_cache_write_then_replay_makes_no_http_call(simulator, tmp_path):
    from llmcheck.model.cache import ResponseCache

    path = tmp_path / "cache.sqlite"
    writer = ModelSession(cache=ResponseCache(path, "write"))
    first, _ = _in_sample(0, 7, lambda: client_for(simulator, session=writer)(EXTRACT))
    writer.close()
    assert simulator.request_count == 1
    # a later session: same sample index, another derived seed (another --llm-seed)
    reader = ModelSession(cache=ResponseCache(path, "read"))
    again, ctx = _in_sample(0, 99, lambda: client_for(simulator, session=reader)(EXTRACT))
    assert simulator.request_count == 1            # no HTTP call
    assert again.text == first.text and again.cached is True
    assert reader.cache.hits == 1
    assert [c.cached for c in ctx.calls] == [True]
    # another sample index is another key: a miss calls the model
    _in_sample(1, 8, lambda: client_for(simulator, session=reader)(EXTRACT))
    assert simulator.request_count == 2 and reader.cache.misses == 1


def test_identical_calls_of_a_sample_replay_in_order(simulator, tmp_path):
    """A judge asked three times in one sample records three answers and replays
    all three, in order (not the first one three times)."""
    from llmcheck.model.cache import ResponseCache

    path = tmp_path / "cache.sqlite"
    writer = ModelSession(cache=ResponseCache(path, "write"))
    client = client_for(simulator, session=writer, temperature=1.0)
    recorded, _ = _in_sample(0, 7, lambda: [client(EXTRACT, seed=i).text for i in range(3)])
    writer.close()
    reader = ModelSession(cache=ResponseCache(path, "read"))
    client = client_for(simulator, session=reader, temperature=1.0)
    replayed, ctx = _in_sample(0, 8, lambda: [client(EXTRACT, seed=i).text for i in range(3)])
    assert replayed == recorded and reader.cache.hits == 3
    # the same three calls without their own seeds are identical requests: the
    # n-th one replays the n-th recorded answer
    writer = ModelSession(cache=ResponseCache(tmp_path / "b.sqlite", "write"))
    client = client_for(simulator, session=writer)
    _, written = _in_sample(0, 7, lambda: [client(EXTRACT) for _ in range(3)])
    writer.close()
    reader = ModelSession(cache=ResponseCache(tmp_path / "b.sqlite", "read"))
    client = client_for(simulator, session=reader)
    _, read = _in_sample(0, 8, lambda: [client(EXTRACT) for _ in range(3)])
    assert reader.cache.hits == 3 and all(c.cached for c in read.calls)
    assert len(written.call_counts) == 1 and list(written.call_counts.values()) == [3]


def test_cache_never_stores_keys(simulator, tmp_path, monkeypatch):
    from llmcheck.model.cache import ResponseCache

    monkeypatch.setenv("SECRET_ENV", "sk-very-secret-value")
    path = tmp_path / "c.sqlite"
    session = ModelSession(cache=ResponseCache(path, "rw"))
    config = ModelConfig(model="openai/gpt-4o-mini", api_base=simulator.url,
                         api_key_env="SECRET_ENV")
    LLMClient(config, session)(EXTRACT)
    session.close()
    assert b"sk-very-secret-value" not in path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or b"sk-very-secret-value" not in wal.read_bytes()


def test_foreign_or_corrupt_cache_file_is_refused_and_kept(tmp_path):
    from llmcheck.model.cache import ResponseCache

    junk = tmp_path / "notes.sqlite"
    junk.write_bytes(b"this is not a database at all" * 10)
    with pytest.raises(UsageError, match="not a usable llmcheck cache.*refusing"):
        ResponseCache(junk, "rw")
    assert junk.read_bytes().startswith(b"this is not a database")
    import sqlite3

    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('app', 'something-else')")
    with pytest.raises(UsageError, match="not an llmcheck cache"):
        ResponseCache(other, "rw")
    with pytest.raises(UsageError, match="does not exist"):
        ResponseCache(tmp_path / "missing.sqlite", "read")


# -- through the plugin ----------------------------------------------------------

def test_llm_fixture_uses_the_simulator_when_no_model_is_configured(pytester, report,
                                                                       model_stack):
    pytester.makepyfile(EXTRACT_SUITE)
    result = pytester.runpytest("--llm-seed=1")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*llmcheck model usage: * call(s)*",
                                 "*ran against the built-in simulator*--llm-model=*"])
    data = report()
    assert data["simulated"] is True and data["model"] == "openai/llmcheck-sim"
    t = by_name(data)["test_extract"]
    assert t["usage"]["calls"] == t["run"] and t["usage"]["prompt_tokens"] > 0
    assert all(len(s["calls"]) == 1 for s in t["samples"])
    assert data["usage"]["calls"] == t["usage"]["calls"]


def test_same_file_runs_against_a_server_llmcheck_did_not_start(pytester, report,
                                                                 minimal_server, model_stack):
    pytester.makepyfile(EXTRACT_SUITE)
    pytester.runpytest("--llm-seed=1").assert_outcomes(passed=1)
    result = pytester.runpytest("--llm-model=openai/x", f"--llm-api-base={minimal_server.url}",
                                "--llm-no-early-stop")
    result.assert_outcomes(passed=1)
    assert "built-in simulator" not in result.stdout.str()
    assert len(MinimalOpenAI.requests) == 8
    assert {r["body"]["model"] for r in MinimalOpenAI.requests} == {"x"}
    data = report()
    assert data["simulated"] is False and data["model"] == "openai/x"


def test_retries_and_errors_in_samples(pytester, report, model_stack, tmp_path):
    scenario = tmp_path / "flaky.json"
    scenario.write_text(json.dumps(one_route(
        [{"text": "fine"}], faults=[{"kind": "server_error", "count": 1}])))
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=4, concurrency=1, min_pass_rate=0.5)
        def test_one_retry(llm):
            assert llm("hi").text == "fine"
    """)
    pytester.runpytest(f"--llm-scenario={scenario}", "--llm-backoff=0",
                       "--llm-no-early-stop").assert_outcomes(passed=1)
    t = by_name(report())["test_one_retry"]
    assert [s["outcome"] for s in t["samples"]] == ["passed"] * 4
    assert t["samples"][0]["calls"][0]["retries"] == 1          # 500 then success
    assert t["usage"]["retries"] == 1

    scenario.write_text(json.dumps(one_route(
        [{"text": "fine"}], faults=[{"kind": "server_error", "count": 1000}])))
    result = pytester.runpytest(f"--llm-scenario={scenario}", "--llm-backoff=0",
                                "--llm-retries=1")
    result.assert_outcomes(errors=1)
    t = by_name(report())["test_one_retry"]
    assert t["verdict"]["outcome"] == "error" and t["errors"] == t["run"]
    assert t["samples"][0]["calls"][0]["error"].startswith("openai/llmcheck-sim: no answer")
    assert t["usage"]["failed_calls"] == t["run"]


def test_budget_stops_new_samples(pytester, report, model_stack):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=10, concurrency=1)
        def test_first(llm):
            llm("hi")

        @llmcheck.repeat(runs=10, concurrency=1)
        def test_second(llm):
            llm("hi")
    """)
    result = pytester.runpytest("--llm-max-calls=6", "-p", "no:randomly")
    result.assert_outcomes(passed=1, skipped=1)
    data = report()
    first, second = by_name(data)["test_first"], by_name(data)["test_second"]
    assert first["run"] == 6 and first["budget_stopped"] is True
    assert "budget spent after 6 of 10" in first["verdict"]["stop_reason"]
    assert second["run"] == 0 and second["budget_stopped"] is True
    assert data["budget"] and "--llm-max-calls=6 reached" in data["budget"]
    result.stdout.fnmatch_lines(["*test_first*6/10*budget*", "*llmcheck budget:*"])
    # a test left without a verdict fails the session by default, named
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["llmcheck: 1 LLM test(s) got no verdict because the budget "
                                 "ran out before their first sample, so the session fails "
                                 "(--llm-allow-unjudged accepts it): *::test_second"])
    allowed = pytester.runpytest("--llm-max-calls=6", "-p", "no:randomly",
                                 "--llm-allow-unjudged")
    assert allowed.ret == pytest.ExitCode.OK


def test_cache_option_replays_without_calls(pytester, report, model_stack):
    pytester.makepyfile(EXTRACT_SUITE)
    pytester.runpytest("--llm-cache=write", "--llm-seed=3",
                       "--llm-no-early-stop").assert_outcomes(passed=1)
    written = by_name(report())["test_extract"]
    result = pytester.runpytest("--llm-cache=read", "--llm-seed=3", "--llm-no-early-stop")
    result.assert_outcomes(passed=1)
    replayed = by_name(report())["test_extract"]
    assert replayed["usage"]["cached_calls"] == replayed["usage"]["calls"] == 8
    assert [s["outcome"] for s in replayed["samples"]] == \
        [s["outcome"] for s in written["samples"]]


def test_bad_cache_file_is_a_usage_error(pytester, model_stack):
    pytester.makepyfile(EXTRACT_SUITE)
    (pytester.path / "junk.sqlite").write_text("not a cache")
    result = pytester.runpytest("--llm-cache=rw", "--llm-cache-path=junk.sqlite")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*junk.sqlite is not a usable llmcheck cache*"])


def test_bad_model_is_one_usage_error_before_any_test(pytester, model_stack):
    pytester.makepyfile(EXTRACT_SUITE)
    result = pytester.runpytest("--llm-model=gpt-nonsense")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llm-model=gpt-nonsense: litellm cannot tell which provider "
                                 "serves 'gpt-nonsense'*"])
    result.assert_outcomes()  # nothing ran


def test_api_key_value_is_refused_as_a_variable_name(pytester):
    pytester.makepyfile(EXTRACT_SUITE)
    result = pytester.runpytest("--llm-api-key-env=sk-live-abcdef123")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "sk-live-abcdef123" not in result.stderr.str() + result.stdout.str()
    result.stderr.fnmatch_lines(["*must be the NAME of the environment variable*"])


def test_rpm_paces_requests_through_the_plugin(pytester, minimal_server, model_stack):
    pytester.makepyfile("""
        import time
        import llmcheck

        STARTS = []

        @llmcheck.repeat(runs=5, concurrency=5, min_pass_rate=0.0)
        def test_paced(llm):
            STARTS.append(time.monotonic())
            llm("hi")

        def test_zz_started():
            print("FIRST-START", min(STARTS))
    """)
    result = pytester.runpytest("--llm-rpm=300", "--llm-no-early-stop", "--llm-model=openai/x",
                                f"--llm-api-base={minimal_server.url}", "-s")
    result.assert_outcomes(passed=2)
    first_start = float(next(line.split("FIRST-START")[1].split()[0]
                             for line in result.outlines if "FIRST-START" in line))
    arrivals = sorted(r["at"] for r in MinimalOpenAI.requests)
    assert len(arrivals) == 5
    # 300 rpm = a slot every 0.2 s, although all 5 samples were in flight at once: the
    # five slots were reserved after the first sample started, 0.2 s apart, and no
    # request leaves before its slot, so the last left at least 0.8 s after that start
    # (unpaced, all five leave within litellm's preparation time, about 0.3 s).
    # (How far apart any two sends are also depends on litellm's preparation of each
    # request after its slot: the first, cold, can take longer than three slots, and
    # a loaded machine stretches the others at random.)
    assert arrivals[-1] - first_start >= 0.8 - 0.005, (first_start, arrivals)


def test_xdist_workers_each_use_a_simulator_and_merge(pytester, report, model_stack):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_a=EXTRACT_SUITE,
                        test_b=EXTRACT_SUITE.replace("test_extract", "test_other"))
    result = pytester.runpytest_subprocess("-n", "2", "--llm-seed=4")
    result.assert_outcomes(passed=2)
    data = report()
    assert sorted(t["nodeid"] for t in data["tests"]) == ["test_a.py::test_extract",
                                                          "test_b.py::test_other"]
    assert data["simulated"] is True
    assert data["usage"]["calls"] == sum(t["usage"]["calls"] for t in data["tests"]) > 0


def test_budget_is_split_between_xdist_workers(pytester, report, model_stack):
    pytest.importorskip("xdist")
    body = """
        import llmcheck

        @llmcheck.repeat(runs=10, concurrency=1)
        def test_{name}(llm):
            llm("hi")
    """
    pytester.makepyfile(test_a=body.format(name="a"), test_b=body.format(name="b"))
    pytester.runpytest_subprocess("-n", "2", "--llm-max-calls=6")
    runs = [t["run"] for t in report()["tests"]]
    # each of the 2 workers may make 3 calls: the session never exceeds 6
    assert all(r <= 3 for r in runs) and sum(runs) <= 6, runs
