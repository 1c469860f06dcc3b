"""The model client against a misbehaving provider (tests/fault_server.py): a
body or stream trickled past the deadline, a hung server, an hour-long
Retry-After, answers that are not completions, and Ctrl-C's stop switch.

Every server here listens on 127.0.0.1 on a free port, started and stopped by
the test; litellm's real HTTP stack talks to it. No assertion is a duration: a
loaded machine makes any bound flaky. Where the fault used to cost time, the test
makes that cost unbounded (an hour-long wait, a server that never answers), so the
old behaviour would hang, and asserts what the code guarantees instead: the error
type, its message, the attempts and the requests the server counted. The joins and
waits of 120 s only keep such a regression from hanging the run.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time

import pytest
from fault_server import FaultServer

from llmcheck.core.context import SampleContext, _reset, _set
from llmcheck.errors import InfrastructureError
from llmcheck.model.client import (
    CallsStopped,
    LLMClient,
    ModelCallError,
    ModelConfig,
    ModelSession,
    calls_stopped,
    reset_calls,
    stop_calls,
)
from llmcheck.model.deadline import DeadlineExceeded
from llmcheck.model.failures import MalformedResponse


@pytest.fixture(autouse=True)
def _calls_allowed(model_stack):
    """litellm imported once; the stop switch is process-wide: reset around each test."""
    reset_calls()
    yield
    reset_calls()


def client_for(server: FaultServer, *, model: str = "openai/x", retries: int = 0,
               timeout: float = 10.0, backoff: float = 0.01,
               retry_budget: float = 120.0) -> LLMClient:
    config = ModelConfig(model=model, api_base=server.url, timeout=timeout, retries=retries,
                         backoff=backoff, retry_budget=retry_budget)
    return LLMClient(config, ModelSession())


def ask(client: LLMClient, *, aio: bool = False, stream: bool = False):
    messages = [{"role": "user", "content": "hi"}]
    if aio:
        return asyncio.run(client.achat(messages, stream=stream))
    return client.chat(messages, stream=stream)


def in_sample(call):
    """Run ``call()`` inside a sample; return (the exception it raised, the sample)."""
    ctx = SampleContext(index=0, seed=1)
    token = _set(ctx)
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - returned for inspection
        return exc, ctx
    finally:
        _reset(token)
    raise AssertionError("the call did not fail")


def helper_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "llmcheck-call"]


# -- 1. --llm-timeout is a deadline on the whole answer --------------------------

@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("mode,stream", [("trickle", False), ("trickle_sse", True)],
                         ids=["body", "stream"])
def test_a_trickled_answer_is_cut_at_the_deadline(aio, mode, stream):
    """10 bytes every 0.5 s keep every read under httpx's per-read timeout: the body
    took 13 s (the stream 8 s) and passed under timeout=2. Now each attempt ends at
    its deadline and the call reports it. (Here a byte a second: the body would take
    25 s, the stream 50 s.)"""
    with FaultServer(mode, script=["ok"], trickle_every=1.0) as server:
        # The first call in a process pays for imports; on a loaded machine that alone
        # outlasted a short deadline before any request was sent. One answer first.
        ask(client_for(server, timeout=120.0), aio=aio, stream=stream)
        client = client_for(server, timeout=2.0, retries=1)
        error, ctx = in_sample(lambda: ask(client, aio=aio, stream=stream))
        assert isinstance(error, ModelCallError)
        assert "no answer after 2 attempt(s): no complete answer within the 2 s deadline " \
               "(--llm-timeout)" in str(error)
        assert isinstance(error.cause, DeadlineExceeded) and error.attempts == 2
        assert [r["mode"] for r in server.requests] == ["ok", mode, mode]
        assert [c.error for c in ctx.calls] == [str(error)]


def test_an_expired_deadline_is_retried():
    with FaultServer(script=["trickle"]) as server:       # then answers normally
        reply = client_for(server, timeout=1.0, retries=2)("hi")
        assert reply.text == "fine" and reply.retries == 1
        assert [r["mode"] for r in server.requests] == ["trickle", "ok"]


def test_an_abandoned_stream_is_closed_at_its_next_chunk():
    """The helper thread of a sync call cannot be killed; a stream reader checks at
    every chunk whether the caller gave up, and closes the connection."""
    with FaultServer("trickle_sse", trickle_every=0.3) as server:   # a 15 s stream
        with pytest.raises(ModelCallError, match="deadline"):
            client_for(server, timeout=0.5)("hi", stream=True)
        assert server.disconnected.wait(120)       # the client hung up; unset, the stream ends
                                                   # without setting it (after 15 s)
        assert server.request_count == 1


def test_sync_calls_reuse_their_helper_threads():
    """A thread start costs about 2 ms here: calls hand off to idle helpers."""
    with FaultServer("ok") as server:
        client = client_for(server, timeout=5.0)
        assert client("hi").text == "fine"
        before = len(helper_threads())
        for stream in (False, True) * 5:
            assert client("hi", stream=stream).text == "fine"
        assert len(helper_threads()) <= before


# -- 2. the stop switch (Ctrl-C) ----------------------------------------------------

def wait_for(condition, within: float = 120.0) -> None:
    """Wait until ``condition()`` holds (a precondition, not a measurement: the bound
    only keeps a broken server from hanging the run)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the precondition never held"
        time.sleep(0.02)


def _call_in_thread(call):
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
def test_stop_abandons_a_hung_call_and_starts_no_retry(aio):
    """Before, Ctrl-C left a sample thread waiting out 6 attempts x 30 s (3 minutes)
    while the interpreter joined it. The attempt's deadline here is an hour: a call
    that waited for it instead of abandoning it would still be running."""
    with FaultServer("hang") as server:
        client = client_for(server, timeout=3600.0, retries=5)
        thread, outcome = _call_in_thread(lambda: ask(client, aio=aio))
        wait_for(lambda: server.request_count == 1)
        stop_calls("interrupted (Ctrl-C)")
        thread.join(120)
        assert not thread.is_alive(), "the call went on waiting for its hour-long deadline"
        error = outcome["error"]
        assert isinstance(error, CallsStopped) and isinstance(error, InfrastructureError)
        assert "stopped (interrupted (Ctrl-C))" in str(error)
        assert error.attempts == 1
        assert server.request_count == 1               # nothing after the switch


def test_stop_cuts_a_retry_after_wait_short(monkeypatch):
    # 429 with Retry-After: 3600, honoured in full (the usual cap of 60 s lifted): a wait
    # that the switch did not cut would outlast the join
    monkeypatch.setattr("llmcheck.model.retry.MAX_RETRY_AFTER", 3600.0)
    with FaultServer("retry_after") as server:
        client = client_for(server, retries=3, retry_budget=10_000)
        thread, outcome = _call_in_thread(lambda: client("hi"))
        wait_for(lambda: server.request_count == 1)
        stop_calls("interrupted (Ctrl-C)")
        thread.join(120)
        assert not thread.is_alive(), "the call went on waiting out the Retry-After"
        assert isinstance(outcome["error"], CallsStopped)
        assert server.request_count == 1


def test_once_stopped_no_call_starts_until_reset():
    with FaultServer("ok") as server:
        client = client_for(server)
        stop_calls("interrupted (Ctrl-C)")
        stop_calls("a second reason is ignored")
        assert calls_stopped() == "interrupted (Ctrl-C)"
        error, ctx = in_sample(lambda: client("hi"))
        assert isinstance(error, CallsStopped) and error.attempts == 0
        assert ctx.calls == []                      # no request, nothing to record
        with pytest.raises(CallsStopped):
            asyncio.run(client.acall("hi"))
        with pytest.raises(CallsStopped):
            client.embed(["hi"])
        assert server.request_count == 0
        reset_calls()
        assert calls_stopped() is None
        assert client("hi").text == "fine"


# -- 3. the retry budget -------------------------------------------------------------

@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
def test_a_retry_after_beyond_the_budget_gives_up_at_once(aio):
    """Retry-After: 3600 was capped to 60 s per wait: 3 retries held the sample
    for 3 minutes, then failed anyway."""
    with FaultServer("retry_after") as server:
        client = client_for(server, retries=3, retry_budget=30)
        error, ctx = in_sample(lambda: ask(client, aio=aio))
        assert isinstance(error, ModelCallError) and error.attempts == 1  # it never waited
        assert server.request_count == 1
        message = str(error)
        assert "no answer after 1 attempt(s): gave up retrying: the provider asked to wait " \
               "3600 s (Retry-After), more than the 30 s left of the 30 s retry budget " \
               "(--llm-retry-budget)" in message
        assert "RateLimitError" in message              # and what the last attempt got
        assert [c.error for c in ctx.calls] == [message]


def test_a_backoff_beyond_the_budget_gives_up_at_once():
    with FaultServer("hang") as server:
        client = client_for(server, timeout=0.3, retries=3, backoff=20.0, retry_budget=2.0)
        with pytest.raises(ModelCallError) as info:
            client("hi")
        assert info.value.attempts == 1 and server.request_count == 1
        assert "gave up retrying: the next retry would wait" in str(info.value)
        assert re.search(r"\(backoff\), more than the 1\.\d s left of the 2 s retry budget "
                         r"\(--llm-retry-budget\)", str(info.value))


def test_a_wait_within_the_budget_is_still_honoured():
    with FaultServer(script=["retry_after"], retry_after="0.3") as server:
        t0 = time.monotonic()
        reply = client_for(server, retries=3, retry_budget=5)("hi")
        assert reply.text == "fine" and reply.retries == 1
        assert time.monotonic() - t0 >= 0.3
        assert server.request_count == 2


# -- 4. answers that are not completions ------------------------------------------------

SHAPES = [
    ("no_choices", False, r"the provider answered 200 with no choices"),
    ("no_choices", True, r"answered a streamed request with a plain application/json body"),
    ("plain_for_stream", True, r"answered a streamed request with a plain application/json "
                               r"body, not an event stream"),
    ("not_json", False, r"does not read as a completion \(not JSON.*Empty or invalid response"),
    ("not_json", True, r"answered a streamed request with a plain text/html body"),
    ("cut", False, r"does not read as a completion \(not JSON, cut short.*Expecting ','"),
    ("cut", True, r"answered a streamed request with a plain application/json body"),
    ("cut_connection", False, r"Connection error"),
]


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("mode,stream,message", SHAPES,
                         ids=[f"{m}-{'stream' if s else 'plain'}" for m, s, _ in SHAPES])
def test_an_answer_that_is_not_a_completion_is_retried_then_an_error(mode, stream, message,
                                                                      aio):
    """A 200 with "choices": [] failed every sample with IndexError (not retried, no
    call recorded); a streamed request answered with a plain body passed with ''."""
    with FaultServer(mode) as server:
        client = client_for(server, retries=2)
        error, ctx = in_sample(lambda: ask(client, aio=aio, stream=stream))
        assert isinstance(error, ModelCallError), repr(error)
        assert error.attempts == 3 and server.request_count == 3
        assert str(error).startswith("openai/x: no answer after 3 attempt(s): ")
        assert re.search(message, str(error)), error
        [call] = ctx.calls
        assert call.error == str(error) and call.retries == 2


def test_a_malformed_answer_then_a_good_one_is_one_retry():
    with FaultServer(script=["no_choices", "plain_for_stream"]) as server:
        reply = client_for(server, retries=2)("hi", stream=True)
        assert reply.text == "fine" and reply.retries == 2
    with FaultServer(script=["no_choices"]) as server:
        assert client_for(server, retries=1)("hi").retries == 1


@pytest.mark.parametrize("model", ["hosted_vllm/x", "gemini/gemini-1.5-flash",
                                   "anthropic/claude-3-5-haiku-latest", "ollama_chat/llama3"])
@pytest.mark.parametrize("mode", ["not_json", "cut"])
def test_other_providers_unreadable_answers_are_retried(model, mode):
    """What litellm raises differs by provider: hosted_vllm an APIError with status
    200 (was not retried: a sample failure), gemini a 422 BadRequestError (was a
    UsageError that stopped the test), anthropic and ollama an APIConnectionError."""
    with FaultServer(mode) as server:
        error, ctx = in_sample(lambda: client_for(server, model=model, retries=1)("hi"))
        assert isinstance(error, ModelCallError), repr(error)
        assert error.attempts == 2 and server.request_count == 2
        assert len(ctx.calls) == 1 and ctx.calls[0].error == str(error)


def test_a_sample_with_a_malformed_answer_is_an_error_with_its_call_recorded():
    from llmcheck.config.settings import session_defaults
    from llmcheck.core.runner import RunSpec, SampleRunner
    from llmcheck.records.resolve import resolve_test

    with FaultServer("no_choices") as server:
        client = client_for(server, retries=1)
        settings = resolve_test({"runs": 3, "concurrency": 1, "early_stop": False},
                                session_defaults())
        record = SampleRunner(lambda: client("hi"), RunSpec(test_id="t", settings=settings)).run()
    assert [s.outcome for s in record.samples] == ["error"] * 3      # was "failed"
    assert record.failed == 0 and record.errors == 3
    assert all(len(s.calls) == 1 and s.calls[0].error for s in record.samples)
    assert "no choices" in record.samples[0].message


def test_internal_errors_are_plain_exceptions_not_sample_outcomes():
    """Never seen by a test body: converted into ModelCallError once retries end."""
    assert not issubclass(MalformedResponse, InfrastructureError)
    assert not issubclass(DeadlineExceeded, InfrastructureError)
    assert issubclass(CallsStopped, InfrastructureError)
