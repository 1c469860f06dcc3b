"""The simulator over real HTTP on loopback: OpenAI wire format, seeding, faults, concurrency.

Every test starts its own server on a free port and stops it afterwards; all
traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import scipy.stats

from llmcheck.errors import UsageError
from llmcheck.injection import catalogue
from llmcheck.simulator import SimulatorServer, start_simulator

EXTRACTION = "Return Ada Lovelace as JSON with name and age."
SUMMARY = (
    "Summarize this passage in 1-3 sentences: Apollo 11 was the American spaceflight that "
    "first landed humans on the Moon, on July 20, 1969."
)
WEATHER = "What's the weather in Paris right now?"
APOLLO = "The Apollo 11 mission landed the first humans on the Moon in July 1969."
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}


_client: httpx.Client | None = None


def client() -> httpx.Client:
    """One keep-alive client for the module: building an httpx client costs milliseconds."""
    global _client
    if _client is None:
        _client = httpx.Client(timeout=10.0)
    return _client


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    if _client is not None:
        _client.close()


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    """The shipped default scenario, on a free port."""
    with SimulatorServer() as server:
        yield server


def chat(server: SimulatorServer, **body: Any) -> httpx.Response:
    body.setdefault("model", "sim-model")
    headers = body.pop("headers", None)
    return client().post(server.url + "/chat/completions", json=body, headers=headers)


def content(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def sse_events(response: httpx.Response) -> list[Any]:
    """Parsed ``data:`` payloads of an SSE body; the final ``[DONE]`` kept as a string."""
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def assemble(events: list[Any]) -> tuple[str, dict[int, dict[str, str]], str | None]:
    """Text, tool calls (by index) and finish_reason rebuilt from stream chunks."""
    text, finish = "", None
    calls: dict[int, dict[str, str]] = {}
    for event in events:
        if event == "[DONE]":
            continue
        for choice in event["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return text, calls, finish


# ----------------------------------------------------------------- wire format


def test_chat_completion_has_openai_shape(sim: SimulatorServer) -> None:
    response = chat(sim, messages=user(EXTRACTION), seed=1)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "sim-model"
    assert data["system_fingerprint"].startswith("fp_")
    (choice,) = data["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert "Ada Lovelace" in choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert response.headers["x-llmcheck-route"] == "extraction"


def test_streaming_assembles_to_the_non_streaming_answer(sim: SimulatorServer) -> None:
    for seed in range(8):
        plain = chat(sim, messages=user(SUMMARY), seed=seed)
        streamed = chat(
            sim,
            messages=user(SUMMARY),
            seed=seed,
            stream=True,
            stream_options={"include_usage": True},
        )
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = sse_events(streamed)
        assert events[-1] == "[DONE]"
        chunks = events[:-1]
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert len({c["id"] for c in chunks}) == 1
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        assert chunks[-1]["choices"] == []
        assert chunks[-1]["usage"] == plain.json()["usage"]
        assert all(c["usage"] is None for c in chunks[:-1])
        text, calls, finish = assemble(events)
        assert text == content(plain)
        assert calls == {}
        assert finish == plain.json()["choices"][0]["finish_reason"]


def test_stream_without_include_usage_has_no_usage_chunk(sim: SimulatorServer) -> None:
    events = sse_events(chat(sim, messages=user("hello"), stream=True))
    assert events[-1] == "[DONE]"
    assert all("usage" not in e and e["choices"] for e in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["choices"][0]["delta"] == {}


def test_tool_call_shape(sim: SimulatorServer) -> None:
    response = chat(sim, messages=user(WEATHER), tools=[WEATHER_TOOL], temperature=0)
    assert response.status_code == 200
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    (call,) = message["tool_calls"]
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], str)
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}


def test_tool_call_streaming_matches_non_streaming(sim: SimulatorServer) -> None:
    for seed in range(6):
        body = {"messages": user(WEATHER), "tools": [WEATHER_TOOL], "seed": seed}
        plain = chat(sim, **body).json()["choices"][0]
        text, calls, finish = assemble(sse_events(chat(sim, stream=True, **body)))
        assert finish == plain["finish_reason"]
        if plain["message"].get("tool_calls"):
            (expected,) = plain["message"]["tool_calls"]
            assert calls == {
                0: {
                    "id": expected["id"],
                    "name": expected["function"]["name"],
                    "arguments": expected["function"]["arguments"],
                }
            }
            assert text == ""
        else:  # the "prose instead of a tool call" defect
            assert text == plain["message"]["content"]


def test_weather_without_the_tool_offered_answers_in_prose(sim: SimulatorServer) -> None:
    response = chat(sim, messages=user(WEATHER))
    assert response.headers["x-llmcheck-route"] == "weather_no_tool"
    assert "tool_calls" not in response.json()["choices"][0]["message"]


def test_tool_result_gets_a_final_answer_quoting_it(sim: SimulatorServer) -> None:
    messages = [
        *user(WEATHER),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 18}'},
    ]
    response = chat(sim, messages=messages, tools=[WEATHER_TOOL])
    assert response.headers["x-llmcheck-route"] == "weather_followup"
    assert content(response) == 'Here is the current weather in Paris: {"temperature": 18}'


def test_models_endpoint(sim: SimulatorServer) -> None:
    data = client().get(sim.url + "/models").json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["llmcheck-sim"]
    assert data["data"][0]["object"] == "model"
    assert client().get(sim.url + "/models/any-name").json()["id"] == "any-name"


def test_health(sim: SimulatorServer) -> None:
    response = client().get(sim.root_url + "/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok" and health["scenario"] == "default"
    assert health["requests"] == 1 and health["in_flight"] == 1  # itself


# ------------------------------------------------------------------ embeddings


def embeddings(server: SimulatorServer, texts: list[str], **extra: Any) -> list[Any]:
    response = client().post(
        server.url + "/embeddings", json={"model": "emb", "input": texts, **extra}
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["object"] == "list"
    assert data["usage"]["prompt_tokens"] > 0
    return [item["embedding"] for item in sorted(data["data"], key=lambda d: d["index"])]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def test_embeddings_are_deterministic_unit_vectors(sim: SimulatorServer) -> None:
    texts = ["The cat sat on the mat.", "A cat is sitting on a mat."]
    first = embeddings(sim, texts)
    second = embeddings(sim, texts)
    assert first == second
    for vector in first:
        assert len(vector) == 256
        assert math.isclose(sum(x * x for x in vector), 1.0, rel_tol=1e-9)
    with SimulatorServer() as other:  # a different server gives the same vectors
        assert embeddings(other, texts) == first


def test_embedding_similarity_orders_texts_sensibly(sim: SimulatorServer) -> None:
    anchor, same, close, far = embeddings(
        sim,
        [
            "Apollo 11 landed on the Moon in 1969.",
            "Apollo 11 landed on the Moon in 1969.",
            "In 1969 Apollo 11 landed astronauts on the Moon.",
            "Preheat the oven and whisk two eggs with sugar.",
        ],
    )
    assert math.isclose(cosine(anchor, same), 1.0, rel_tol=1e-9)
    assert cosine(anchor, close) > 0.6
    assert cosine(anchor, close) > cosine(anchor, far) + 0.4


def test_embeddings_base64_and_dimensions(sim: SimulatorServer) -> None:
    (floats,) = embeddings(sim, ["hello world"], dimensions=64)
    (encoded,) = embeddings(sim, ["hello world"], dimensions=64, encoding_format="base64")
    decoded = struct.unpack("<64f", base64.b64decode(encoded))
    assert len(floats) == 64
    assert all(
        math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(floats, decoded, strict=True)
    )


# -------------------------------------------------------------------- seeding


def test_same_seed_replays_the_same_answer_and_seeds_vary() -> None:
    with SimulatorServer() as one, SimulatorServer() as two:
        answers = {}
        for seed in range(50):
            answer = content(chat(one, messages=user(EXTRACTION), seed=seed, temperature=1))
            assert content(chat(one, messages=user(EXTRACTION), seed=seed)) == answer
            assert content(chat(two, messages=user(EXTRACTION), seed=seed)) == answer
            answers[seed] = answer
    assert len(set(answers.values())) >= 3  # defects show up across 50 samples
    assert '{"name": "Ada Lovelace", "age": 36}' in answers.values()


def test_seed_depends_on_the_messages(sim: SimulatorServer) -> None:
    a = [content(chat(sim, messages=user("hello " + str(i)), seed=7)) for i in range(30)]
    assert len(set(a)) > 1


def test_unseeded_requests_follow_the_scenario_seed() -> None:
    def run(seed: int) -> list[str]:
        with SimulatorServer(seed=seed) as server:
            return [content(chat(server, messages=user(EXTRACTION))) for _ in range(40)]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_temperature_zero_always_gives_the_top_variant() -> None:
    scenario = {
        "default": {
            "answers": [
                {"text": "minor", "weight": 1},
                {"text": "top", "weight": 5},
                {"text": "other", "weight": 2},
            ]
        }
    }
    with start_simulator(scenario) as server:
        greedy = {content(chat(server, messages=user(f"q{i}"), temperature=0)) for i in range(30)}
        seeded = {
            content(chat(server, messages=user("q"), temperature=0, seed=s)) for s in range(30)
        }
        sampled = {content(chat(server, messages=user(f"q{i}"), temperature=1)) for i in range(60)}
    assert greedy == {"top"}
    assert seeded == {"top"}
    assert sampled == {"minor", "top", "other"}


def test_n_choices_and_max_tokens(sim: SimulatorServer) -> None:
    data = chat(sim, messages=user(SUMMARY), n=3, seed=4).json()
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    cut = chat(sim, messages=user(SUMMARY), max_tokens=3, temperature=0).json()["choices"][0]
    assert cut["finish_reason"] == "length"
    assert len(cut["message"]["content"]) <= 12


# --------------------------------------------------------------------- faults


def test_scripted_rate_limits_carry_retry_after_then_succeed() -> None:
    scenario = {"faults": [{"after": 0, "count": 2, "kind": "rate_limit", "retry_after": 0.2}]}
    with start_simulator(scenario) as server:
        first, second, third = (chat(server, messages=user("hi")) for _ in range(3))
    for response in (first, second):
        assert response.status_code == 429
        assert float(response.headers["retry-after"]) == 0.2
        assert response.headers["retry-after-ms"] == "200"
        error = response.json()["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert error["message"] and error["type"]
    assert third.status_code == 200


def test_scripted_server_errors_then_success_and_per_route_counting() -> None:
    scenario = {
        "routes": [{"name": "flaky", "match": "flaky", "answers": [{"text": "ok"}]}],
        "faults": [
            {"kind": "server_error", "after": 1, "count": 1, "route": "flaky"},
            {"kind": "malformed", "after": 5, "count": 1},
        ],
    }
    with start_simulator(scenario) as server:
        statuses = [chat(server, messages=user("flaky")).status_code for _ in range(3)]
        assert statuses == [200, 500, 200]
        assert chat(server, messages=user("other")).status_code == 200  # request #4
        assert chat(server, messages=user("other")).status_code == 200  # request #5
        malformed = chat(server, messages=user("other"))  # request #6
        assert malformed.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(malformed.text)
        assert chat(server, messages=user("other")).status_code == 200
    error = None
    with start_simulator(scenario) as server:
        chat(server, messages=user("flaky"))
        error = chat(server, messages=user("flaky")).json()["error"]
    assert error["type"] == "server_error" and error["message"]


def test_header_forces_one_fault(sim: SimulatorServer) -> None:
    forced = chat(sim, messages=user("hi"), headers={"X-Llmcheck-Fault": "server_error"})
    assert forced.status_code == 500
    assert forced.headers["x-llmcheck-fault"] == "server_error; header"
    assert chat(sim, messages=user("hi")).status_code == 200
    limited = chat(sim, messages=user("hi"), headers={"X-Llmcheck-Fault": "rate_limit"})
    assert limited.status_code == 429 and "retry-after" in limited.headers
    bad = chat(sim, messages=user("hi"), headers={"X-Llmcheck-Fault": "explode"})
    assert bad.status_code == 400
    assert "X-Llmcheck-Fault" in bad.json()["error"]["message"]


def test_timeout_fault_holds_the_connection() -> None:
    with start_simulator({"errors": {"timeout_s": 5}}) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                server.url + "/chat/completions",
                json={"model": "m", "messages": user("hi")},
                headers={"X-Llmcheck-Fault": "timeout"},
                timeout=httpx.Timeout(5.0, read=0.3),
            )
    # held for timeout_s, then the connection is dropped without an answer
    with start_simulator({"faults": [{"kind": "timeout", "timeout_s": 0.2}]}) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            chat(server, messages=user("hi"))
        assert chat(server, messages=user("hi")).status_code == 200


def _without_ids(text: str) -> str:
    """A response body with its per-request id and timestamp blanked (same length)."""
    text = re.sub(r'"id":"chatcmpl-[0-9a-f]+"', lambda m: "x" * len(m.group(0)), text)
    return re.sub(r'"created":\d+', lambda m: "x" * len(m.group(0)), text)


def test_malformed_is_the_old_name_of_stream_cut_and_cuts_the_body_in_half(
    sim: SimulatorServer,
) -> None:
    request = {"messages": user(SUMMARY), "seed": 4}
    for name in ("malformed", "stream_cut"):
        cut = chat(sim, headers={"X-Llmcheck-Fault": name}, **request)
        full = chat(sim, **request)  # the same seeded request: the same answer, in full
        assert cut.status_code == 200 and full.status_code == 200
        assert cut.headers["content-type"].startswith("application/json")
        assert cut.headers["x-llmcheck-fault"] == "stream_cut; header"
        with pytest.raises(json.JSONDecodeError):
            json.loads(cut.text)
        assert len(cut.content) == catalogue.cut_point(len(full.content))
        assert _without_ids(full.text).startswith(_without_ids(cut.text))


def read_cut_stream(server: SimulatorServer, **body: Any) -> list[Any]:
    """The SSE payloads of a stream that must end with the connection dropped."""
    lines: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        with client().stream(
            "POST",
            server.url + "/chat/completions",
            json={"model": "m", **body},
            headers={"X-Llmcheck-Fault": "malformed"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["x-llmcheck-fault"] == "stream_cut; header"
            lines.extend(response.iter_lines())
    return [json.loads(line[len("data: ") :]) for line in lines if line]


def test_a_cut_stream_sends_half_its_events_then_drops_the_connection(
    sim: SimulatorServer,
) -> None:
    for body in (
        {"messages": user(SUMMARY), "seed": 2, "stream_options": {"include_usage": True}},
        {"messages": user(WEATHER), "tools": [WEATHER_TOOL], "temperature": 0, "seed": 1},
    ):
        full = sse_events(chat(sim, stream=True, **body))
        assert full[-1] == "[DONE]"
        events = read_cut_stream(sim, stream=True, **body)
        assert len(events) == catalogue.cut_point(len(full) - 1)
        assert [e["choices"] for e in events] == [e["choices"] for e in full[: len(events)]]
        assert all(c["finish_reason"] is None for e in events for c in e["choices"])
    assert chat(sim, messages=user("hi")).status_code == 200  # the server is fine


def test_an_old_scenario_file_with_malformed_serves_as_before(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(
        "errors: {rate_limit: 0, server_error: 0, timeout: 0, malformed: 0}\n"
        "faults:\n  - {kind: malformed, after: 0, count: 1}\n"
        "default:\n  answers: ['An answer long enough to be cut in half.']\n"
    )
    with start_simulator(path) as server:
        cut, full = (chat(server, messages=user("hi"), seed=1) for _ in range(2))
    assert cut.status_code == 200 and cut.headers["x-llmcheck-fault"] == "stream_cut; script"
    assert len(cut.content) == max(1, len(full.content) // 2)  # what `malformed` always sent
    assert _without_ids(full.text).startswith(_without_ids(cut.text))
    assert content(full) == "An answer long enough to be cut in half."


def test_answer_damaging_faults_damage_the_decided_answer() -> None:
    scenario = {"errors": {"slow_s": 0.4}, "default": {"answers": [APOLLO]}}
    with start_simulator(scenario) as server:
        clean = chat(server, messages=user("hi")).json()["choices"][0]
        truncated = chat(server, messages=user("hi"), headers={"X-Llmcheck-Fault": "truncated"})
        choice = truncated.json()["choices"][0]
        assert truncated.headers["x-llmcheck-fault"] == "truncated; header"
        assert choice["finish_reason"] == "length"
        assert APOLLO.startswith(choice["message"]["content"])
        assert 0 < len(choice["message"]["content"]) < len(APOLLO)
        slow = chat(server, messages=user("hi"), headers={"X-Llmcheck-Fault": "slow"})
        assert slow.elapsed.total_seconds() >= 0.4
        assert slow.json()["choices"][0] == clean
        assert slow.headers["x-llmcheck-fault"] == "slow; header"
        assert [r["fault"] for r in server.recent_requests] == [None, "truncated", "slow"]


def test_connection_error_closes_the_connection_unanswered(sim: SimulatorServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
        chat(sim, messages=user("hi"), headers={"X-Llmcheck-Fault": "connection_error"})
    assert chat(sim, messages=user("hi")).status_code == 200


def test_embeddings_take_the_faults_that_fit_them(sim: SimulatorServer) -> None:
    def post(kind: str) -> httpx.Response:
        return client().post(
            sim.url + "/embeddings", json={"input": "x"}, headers={"X-Llmcheck-Fault": kind}
        )

    assert post("rate_limit").status_code == 429
    assert post("server_error").status_code == 500
    cut = post("malformed")
    assert cut.status_code == 200 and cut.headers["x-llmcheck-fault"] == "stream_cut; header"
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.text)
    slow = post("slow")
    assert slow.status_code == 200 and len(slow.json()["data"][0]["embedding"]) == 256
    assert slow.headers["x-llmcheck-fault"] == "slow; header"
    for kind in ("empty", "refusal", "truncated", "wrong_schema", "bad_tool_call"):
        refused = post(kind)
        assert refused.status_code == 400
        assert "not embeddings" in refused.json()["error"]["message"]
    assert post("explode").status_code == 400


def test_drawn_fault_kinds_match_their_rates_over_http() -> None:
    rates = {
        "rate_limit": 0.1,
        "server_error": 0.05,
        "stream_cut": 0.1,
        "malformed_json": 0.05,
        "truncated": 0.1,
        "empty": 0.05,
        "refusal": 0.05,
        "wrong_schema": 0.05,
        "bad_tool_call": 0.05,
    }
    n = 600  # the engine's own test draws 8000; this one checks what goes on the wire
    with start_simulator({"seed": 2, "errors": rates}) as server:
        served = [
            chat(server, messages=user("q"), seed=i).headers.get("x-llmcheck-fault")
            for i in range(n)
        ]
    kinds = [None if h is None else h.split(";")[0] for h in served]
    assert all(h is None or h.endswith("; rate") for h in served)
    expected: dict[str | None, float] = {**rates, None: 1 - sum(rates.values())}
    for kind, rate in expected.items():
        low, high = scipy.stats.binom.interval(0.9999, n, rate)
        assert low <= kinds.count(kind) <= high, (kind, kinds.count(kind), rate * n)


def test_error_rates_are_drawn_and_seeded_retries_can_recover() -> None:
    scenario = {"seed": 3, "errors": {"rate_limit": 0.3, "server_error": 0.2}}
    with start_simulator(scenario) as server:
        statuses = [chat(server, messages=user(f"q{i}")).status_code for i in range(100)]
        assert set(statuses) == {200, 429, 500}
        assert 30 <= statuses.count(200) <= 70
        # A seeded sample retried until it succeeds gets its one fixed answer.
        for seed in range(5):
            attempts = [chat(server, messages=user("same"), seed=seed) for _ in range(20)]
            answers = {content(r) for r in attempts if r.status_code == 200}
            assert len(answers) == 1
    with start_simulator(scenario) as fresh:  # a fresh server replays the same attempts
        replay = [chat(fresh, messages=user(f"q{i}")).status_code for i in range(100)]
    assert replay == statuses


# --------------------------------------------------------------- bad requests


def test_bad_requests_get_openai_style_errors(sim: SimulatorServer) -> None:
    bad_json = client().post(
        sim.url + "/chat/completions",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400
    error = bad_json.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_json"

    missing = chat(sim)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "missing_required_parameter"
    assert "messages" in missing.json()["error"]["message"]

    bodies: list[dict[str, Any]] = [
        {"messages": []},
        {"messages": [{"content": "x"}]},
        {"messages": "hi"},
    ]
    for body in bodies:
        assert chat(sim, **body).status_code == 400
    assert chat(sim, messages=user("x"), temperature=5).status_code == 400
    assert chat(sim, messages=user("x"), seed="abc").status_code == 400
    assert chat(sim, messages=user("x"), tools=5).status_code == 400
    assert client().post(sim.url + "/embeddings", json={"model": "m"}).status_code == 400

    unknown = client().get(sim.url + "/nope")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_url"
    assert client().get(sim.url + "/chat/completions").status_code == 405


# ------------------------------------------------------- concurrency, lifecycle


def test_concurrent_slow_requests_overlap() -> None:
    async def fire(url: str) -> list[int]:
        async with httpx.AsyncClient(
            base_url=url, timeout=30.0, limits=httpx.Limits(max_connections=50)
        ) as client:
            responses = await asyncio.gather(
                *(
                    client.post("/chat/completions", json={"model": "m", "messages": user(f"q{i}")})
                    for i in range(50)
                )
            )
        return [r.status_code for r in responses]

    with start_simulator({"latency": {"ms": 200}}) as server:
        statuses = asyncio.run(fire(server.url))
        assert statuses == [200] * 50
        assert server.max_in_flight > 1
        assert server.in_flight == 0


def test_stop_is_clean_and_frees_the_port() -> None:
    server = start_simulator()
    port = server.port
    assert server.running
    assert chat(server, messages=user("hi")).status_code == 200
    with httpx.Client() as keep_alive:  # an idle keep-alive connection must not block stop
        assert keep_alive.get(server.url + "/models").status_code == 200
        server.stop()
        assert not server.running
        with pytest.raises(httpx.ConnectError):
            keep_alive.get(server.url + "/models")
    server.stop()  # idempotent
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    with SimulatorServer(port=port) as again:  # the port can be listened on again
        assert again.port == port
        assert chat(again, messages=user("hi")).status_code == 200


def test_stop_does_not_wait_for_held_requests() -> None:
    server = start_simulator({"errors": {"timeout_s": 60}})

    async def held() -> BaseException | None:
        async with httpx.AsyncClient(timeout=30.0) as client:
            try:
                await client.post(
                    server.url + "/chat/completions",
                    json={"model": "m", "messages": user("hi")},
                    headers={"X-Llmcheck-Fault": "timeout"},
                )
            except httpx.HTTPError as exc:
                return exc
        return None

    async def scenario() -> BaseException | None:
        task = asyncio.create_task(held())
        while server.in_flight == 0:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.stop, 5.0)  # raises if the thread did not finish
        return await task

    assert isinstance(asyncio.run(scenario()), httpx.RemoteProtocolError)
    assert not server.running


def test_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = SimulatorServer(port=taken.getsockname()[1])
        with pytest.raises(UsageError, match="cannot listen"):
            busy.start()
    assert not busy.running


def test_request_counters(sim: SimulatorServer) -> None:
    for _ in range(3):
        chat(sim, messages=user("hi"))
    client().get(sim.url + "/models")
    client().post(sim.url + "/embeddings", json={"input": "x"})
    client().get(sim.url + "/nope")
    assert sim.request_count == 6
    assert sim.requests_by_path == {
        "/v1/chat/completions": 3,
        "/v1/models": 1,
        "/v1/embeddings": 1,
        "/v1/nope": 1,
    }
    recent = sim.recent_requests
    assert [r["path"] for r in recent] == ["/v1/chat/completions"] * 3 + ["/v1/embeddings"]
    assert recent[0]["route"] == "default" and recent[0]["body"]["messages"] == user("hi")
    sim.reset_stats()
    assert sim.request_count == 0 and sim.requests_by_path == {}


def test_scenario_from_a_file_and_url_shape(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("default:\n  answers:\n    - text: from the file\n")
    with start_simulator(path) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/v1"
        assert content(chat(server, messages=user("hi"))) == "from the file"


def test_importing_the_simulator_is_light() -> None:
    code = (
        "import sys, llmcheck.simulator\n"
        "loaded = [m for m in ('litellm', 'aiohttp', 'pytest') if m in sys.modules]\n"
        "print(','.join(loaded))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


# -------------------------------------------------------------- through litellm


def test_litellm_completion_and_streaming_against_the_simulator(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Offline switches must be set before litellm is first imported.
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("LITELLM_OFFLINE_MODE", "true")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import litellm

        litellm.suppress_debug_info = True
        common: dict[str, Any] = {
            "model": "openai/sim",
            "api_base": sim.url,
            "api_key": "sk-sim",
            "num_retries": 0,
            "max_retries": 0,
        }
        reply = litellm.completion(messages=user(EXTRACTION), temperature=0, **common)
        assert reply.choices[0].message.content == '{"name": "Ada Lovelace", "age": 36}'
        assert reply.usage.total_tokens > 0

        seeded = litellm.completion(messages=user(SUMMARY), seed=11, **common)
        chunks = list(litellm.completion(messages=user(SUMMARY), seed=11, stream=True, **common))
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == seeded.choices[0].message.content

        tool = litellm.completion(
            messages=user(WEATHER), tools=[WEATHER_TOOL], temperature=0, **common
        )
        (call,) = tool.choices[0].message.tool_calls
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}

        with pytest.raises(litellm.RateLimitError):
            litellm.completion(
                messages=user("hi"), extra_headers={"X-Llmcheck-Fault": "rate_limit"}, **common
            )
    assert sim.requests_by_path["/v1/chat/completions"] == 5


FAULT_SCENARIO = {
    "errors": {"timeout_s": 5, "slow_s": 0.3, "retry_after_s": 0.25},
    "default": {"answers": [APOLLO]},
}
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.fixture(scope="module")
def fault_sim() -> Iterator[SimulatorServer]:
    """One server for the litellm fault tests: short timeout_s and slow_s."""
    with start_simulator(FAULT_SCENARIO) as server:
        yield server


@pytest.fixture(scope="module")
def litellm_module() -> Any:
    from llmcheck.model.client import import_litellm  # offline: no cost-map download

    litellm = import_litellm()
    litellm.suppress_debug_info = True
    return litellm


def litellm_call(
    litellm: Any, server: SimulatorServer, kind: str | None, stream: bool, **extra: Any
) -> tuple[str | None, list[tuple[str, str]], str | None]:
    """(content, tool calls as (name, arguments), finish_reason) of one litellm call with
    ``kind`` forced; a streamed answer is assembled from its chunks."""
    headers = {"X-Llmcheck-Fault": kind} if kind else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reply = litellm.completion(
            model="openai/llmcheck-sim",
            api_base=server.url,
            api_key="sk-sim",
            num_retries=0,
            max_retries=0,
            messages=user("Tell me about Apollo 11."),
            seed=3,
            stream=stream,
            extra_headers=headers,
            **extra,
        )
        if not stream:
            choice = reply.choices[0]
            calls = [
                (c.function.name, c.function.arguments) for c in choice.message.tool_calls or []
            ]
            return choice.message.content, calls, choice.finish_reason
        text, finish = "", None
        pieces: dict[int, list[str]] = {}
        for chunk in reply:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for call in choice.delta.tool_calls or []:
                    slot = pieces.setdefault(call.index, ["", ""])
                    slot[0] += call.function.name or ""
                    slot[1] += call.function.arguments or ""
                finish = choice.finish_reason or finish
        return text, [(name, args) for name, args in pieces.values()], finish


def _parses(text: str | None) -> bool:
    try:
        json.loads(text or "")
    except json.JSONDecodeError:
        return False
    return True


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", [*catalogue.KINDS, "malformed"])
def test_every_fault_kind_through_litellm(
    fault_sim: SimulatorServer, litellm_module: Any, kind: str, stream: bool
) -> None:
    import openai

    litellm = litellm_module
    expected_error: dict[str, tuple[type[BaseException], str]] = {
        "rate_limit": (litellm.RateLimitError, "Rate limit reached"),
        "timeout": (litellm.Timeout, "timed out"),
        "connection_error": (openai.APIError, "Connection error"),
        "server_error": (litellm.InternalServerError, "server had an error"),
        # a cut body does not parse; a cut stream ends with the connection
        "stream_cut": (openai.APIError, "Connection error" if stream else "Unterminated"),
    }
    canonical = catalogue.LEGACY_ALIASES.get(kind, kind)
    extra: dict[str, Any] = {"timeout": 0.5 if kind == "timeout" else 10}
    if canonical in expected_error:
        error, message = expected_error[canonical]
        with pytest.raises(error, match=message) as info:
            litellm_call(litellm, fault_sim, kind, stream, **extra)
        if canonical == "rate_limit":
            assert info.value.response.headers["retry-after"] == "0.25"
        if canonical == "server_error":
            assert info.value.status_code == 500
        return
    if canonical == "wrong_schema":
        extra["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON_SCHEMA},
        }
    if canonical == "bad_tool_call":
        extra["tools"] = [WEATHER_TOOL]
    started = time.monotonic()
    text, calls, finish = litellm_call(litellm, fault_sim, kind, stream, **extra)
    elapsed = time.monotonic() - started
    if canonical == "slow":
        assert (text, calls, finish) == (APOLLO, [], "stop") and elapsed >= 0.3
    elif canonical == "truncated":
        assert finish == "length" and text and APOLLO.startswith(text) and text != APOLLO
    elif canonical == "empty":
        assert (text or "", calls, finish) == ("", [], "stop")
    elif canonical == "refusal":
        assert (text, finish) == (catalogue.REFUSAL_TEXT, "stop")
    elif canonical == "malformed_json":
        assert text and text.lstrip().startswith("{") and not _parses(text)
    elif canonical == "wrong_schema":
        document = json.loads(text or "")
        assert "name" not in document and not isinstance(document["age"], int)
        assert document["unexpected_field"] is True
    else:
        assert canonical == "bad_tool_call"
        ((name, arguments),) = calls
        assert name == "get_weather" and not _parses(arguments) and finish == "tool_calls"
    assert fault_sim.recent_requests[-1]["fault"] == canonical


# ------------------------------------------------------------------------- CLI


SERVE = [sys.executable, "-m", "llmcheck.simulator.cli", "serve"]


def read_banner(proc: subprocess.Popen[str], timeout: float = 60.0) -> list[str]:
    """The lines ``llmcheck serve`` prints up to ``Press Ctrl-C``, waiting at most
    ``timeout`` seconds for them (a thread reads, so a silent process cannot hang the test)."""
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: queue.Queue[str] = queue.Queue()

    def reader() -> None:
        while True:
            line = stdout.readline()
            lines.put(line)
            if not line or line.startswith("Press Ctrl-C"):
                return  # the caller reads the rest

    threading.Thread(target=reader, daemon=True).start()
    banner: list[str] = []
    while not (banner and banner[-1].startswith("Press Ctrl-C")):
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no complete banner within {timeout:g} s; got {banner}")
        if not line:
            pytest.fail(f"llmcheck serve exited before its banner was complete; got {banner}")
        banner.append(line)
    return banner


def test_serve_command_prints_the_url_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with subprocess.Popen(
        [*SERVE, "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            banner = read_banner(proc)
            assert banner[0].startswith("llmcheck simulator listening on http://127.0.0.1:")
            url = banner[0].split()[-1]
            assert client().get(url + "/models").status_code == 200
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)  # the rest of the output is a line: it fits the pipe
            out = "".join(banner) + proc.stdout.read()  # communicate() would skip the buffer
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, out
    assert 'api_base="' + url in out
    assert "stopped after 1 requests" in out

    bad = write_bad_scenario(tmp_path)
    result = subprocess.run(
        [*SERVE, "--scenario", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "latency: give either" in result.stderr and str(bad) in result.stderr


def test_serve_banner_suggests_the_model_name_llmcheck_prices_at_zero() -> None:
    from llmcheck.model.client import SIMULATOR_MODEL, import_litellm

    with subprocess.Popen(
        [*SERVE, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            banner = read_banner(proc)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, banner
    text = "".join(banner)
    url = banner[0].split()[-1]
    litellm_model = re.search(r'litellm\.completion\(model="([^"]+)"', text)
    pytest_line = re.search(r"^\s*pytest:\s+(pytest .*)$", text, re.MULTILINE)
    assert litellm_model is not None and pytest_line is not None, text
    suggested = litellm_model.group(1)
    assert suggested == SIMULATOR_MODEL
    assert pytest_line.group(1) == f"pytest --llm-model={SIMULATOR_MODEL} --llm-api-base={url}"
    assert f"{SIMULATOR_MODEL} at $0" in text
    # The suggested name is the one llmcheck registers with litellm at a price of 0, so a
    # user who follows the banner sees a cost of $0, not "no known price".
    litellm = import_litellm()
    cost = litellm.cost_per_token(model=suggested, prompt_tokens=10, completion_tokens=10)
    assert cost == (0.0, 0.0)


def write_bad_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("latency: {}\n")
    return path
