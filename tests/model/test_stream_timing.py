"""Streams: what a streamed call records (time to first token, gaps between the chunks
that carry tokens, their count; the sample's ttft from its first streamed app call),
through llmcheck's client and through the recording proxy, against the simulator over
real HTTP; the simulator's seeded pacing; and ``assert_stream_matches``.

Timing is asserted by structure and order only (ttft <= total, one gap fewer than the
chunks, the pacing the simulator says it drew), never by wall-clock bounds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import openai
import pytest
from fault_server import FaultServer
from helpers import load_report, scenario_server

import llmcheck
from llmcheck.core.context import SampleContext, _reset, _set, call_role
from llmcheck.errors import UsageError
from llmcheck.model.client import LLMClient, ModelConfig, ModelSession
from llmcheck.model.proxy import FaultProxy
from llmcheck.model.streaming import SSEClock
from llmcheck.simulator.engine import Engine
from llmcheck.simulator.scenario import default_scenario
from llmcheck.simulator.server import STREAM_DELAYS_HEADER

WORDS = "one two three four five six seven eight"
PACED = {"name": "paced", "seed": 3, "latency": {"ms": 0},
         "stream": {"ttft_ms": {"ms": 15}, "gap_ms": {"median_ms": 3, "p95_ms": 6}},
         "routes": [{"name": "slow_start", "match": "^slow start",
                     "stream": {"ttft_ms": {"ms": 40}}, "answers": [WORDS]}],
         "default": {"answers": [WORDS]}}


@pytest.fixture(scope="module")
def sim():
    with scenario_server(PACED) as server:
        yield server


def client(url: str, model: str = "openai/llmcheck-sim") -> LLMClient:
    return LLMClient(ModelConfig(model=model, api_base=url, retries=0, timeout=30.0,
                                 simulated=model == "openai/llmcheck-sim"), ModelSession())


class in_sample:
    """Run the block as sample ``index`` with ``seed`` (what the runner does)."""

    def __init__(self, seed: int = 11) -> None:
        self.ctx = SampleContext(index=0, seed=seed)

    def __enter__(self) -> SampleContext:
        self._token = _set(self.ctx)
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        _reset(self._token)


def test_client_records_chunks_gaps_and_the_first_streams_ttft(sim):
    llm = client(sim.url)
    with in_sample() as ctx:
        first = llm("hello", stream=True)
        plain = llm("hello")
        second = llm("hello again", stream=True)
        with call_role("user"):
            llm("a simulated user's turn", stream=True)
    assert first.text == WORDS and first.chunks == 8 and len(first.gaps) == 7
    assert first.max_gap == max(first.gaps) > 0
    assert 0 < first.time_to_first_token <= first.latency
    assert plain.chunks is None and plain.gaps == () and plain.max_gap is None
    streamed, unstreamed, again, user = ctx.calls
    assert (streamed.chunks, streamed.max_gap) == (8, first.max_gap)
    assert (unstreamed.chunks, unstreamed.max_gap) == (None, None)
    assert again.chunks == 8 and user.role == "user" and user.chunks == 8
    # the sample's ttft is its first streamed app call's, not a later one's
    assert ctx.durations == {"ttft": first.time_to_first_token}
    assert second.time_to_first_token != first.time_to_first_token


def test_a_replayed_stream_keeps_its_gaps_but_gives_the_sample_no_ttft(sim, tmp_path):
    from llmcheck.model.cache import ResponseCache

    cache = ResponseCache(tmp_path / "cache.sqlite", mode="write")
    llm = LLMClient(client(sim.url).config, ModelSession(cache=cache))
    with in_sample():
        recorded = llm("hello", stream=True)
    replaying = LLMClient(llm.config, ModelSession(cache=ResponseCache(
        tmp_path / "cache.sqlite", mode="read")))
    with in_sample() as ctx:
        replayed = replaying("hello", stream=True)
    llm.session.close()
    replaying.session.close()
    assert replayed.cached and replayed.gaps == recorded.gaps and replayed.chunks == 8
    assert ctx.calls[0].chunks == 8 and "ttft" not in ctx.durations


def test_proxy_records_a_relayed_streams_timing(sim):
    with in_sample() as ctx, FaultProxy(sim.url) as px:
        sdk = openai.OpenAI(base_url=px.sample_url(ctx.token), api_key="sk-x", max_retries=0)
        pieces = [c.choices[0].delta.content or "" for c in sdk.chat.completions.create(
            model="sim", messages=[{"role": "user", "content": "hello"}], stream=True)
            if c.choices]
        sdk.chat.completions.create(model="sim", messages=[{"role": "user", "content": "hi"}])
    assert "".join(pieces) == WORDS
    streamed, plain = ctx.calls
    assert streamed.via == "proxy" and streamed.chunks == 8
    assert 0 < streamed.max_gap and 0 < streamed.time_to_first_token <= streamed.latency
    assert plain.chunks is None and plain.max_gap is None
    assert ctx.durations == {"ttft": streamed.time_to_first_token}


def test_sse_clock_reads_events_split_across_and_packed_into_reads():
    def event(delta: dict) -> bytes:
        return b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta}]}).encode() \
            + b"\n\n"

    role, a, b, tool = (event({"role": "assistant", "content": ""}), event({"content": "a"}),
                        event({"content": "b"}), event({"tool_calls": [{"index": 0}]}))
    clock = SSEClock(started=0.0)
    clock.feed(role + a[:7], now=1.0)        # the role chunk carries no token
    clock.feed(a[7:] + b, now=1.5)           # the rest of a, and b whole: both at 1.5
    clock.feed(b"data: {not json}\n\n" + tool[:-1], now=2.0)
    clock.feed(b"\ndata: [DONE]\n\n", now=4.0)
    assert (clock.first, clock.gaps, clock.chunks, clock.max_gap) == (1.5, [0.0, 2.5], 3, 2.5)


def _delays(url: str, content: str, seed: int | None) -> tuple[list[float], int]:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": content}]}
    if seed is not None:
        body["seed"] = seed
    r = httpx.post(url + "/chat/completions", json=body, timeout=30.0)
    tokens = sum(1 for line in r.text.splitlines() if '"content":"' in line
                 and '"content":""' not in line)
    return [float(d) for d in r.headers[STREAM_DELAYS_HEADER].split(",")], tokens


def test_the_simulators_pacing_is_seeded_and_per_route(sim):
    first, tokens = _delays(sim.url, "hello", seed=5)
    with scenario_server(PACED) as other:  # a fresh server paces the seed the same way
        assert _delays(other.url, "hello", seed=5)[0] == first
    assert len(first) == tokens == 8 and first[0] == 15.0
    assert len(set(first[1:])) > 1 and all(d > 0 for d in first[1:])
    assert _delays(sim.url, "hello", seed=6)[0][1:] != first[1:]
    route = _delays(sim.url, "slow start please", seed=5)[0]
    assert route[0] == 40.0 and len(route) == 8  # the route's ttft, the scenario's gaps
    plain = httpx.post(sim.url + "/chat/completions", json={
        "model": "m", "messages": [{"role": "user", "content": "hello"}]}, timeout=30.0)
    assert STREAM_DELAYS_HEADER not in plain.headers


def test_the_simulator_gives_a_seed_the_same_answer_streamed_or_not():
    engine = Engine(default_scenario())
    prompts = ["Return Ada Lovelace as JSON with name and age.", "Anything at all?",
               "Summarize this passage: Apollo 11 landed on the Moon in 1969."]
    for seed in range(60):
        for prompt in prompts:
            body = {"model": "m", "seed": seed, "messages": [{"role": "user", "content": prompt}]}
            plain = engine.decide(body).answers
            assert engine.decide({**body, "stream": True}).answers == plain


# ---------------------------------------------------------------- assert_stream_matches


def test_stream_matches_passes_on_the_simulator_and_is_recorded(sim):
    llm = client(sim.url)
    with in_sample(seed=77) as ctx:
        reply = llmcheck.assert_stream_matches(llm, "hello", verify_seed=True)
        llmcheck.assert_stream_matches(llm, [{"role": "user", "content": "hi"}],
                                       temperature=0.7)
    assert reply.text == WORDS and reply.chunks == 8
    assert [(c.name, c.passed, c.value) for c in ctx.checks] == [
        ("stream_matches", True, len(WORDS))] * 2
    streamed = [c for c in ctx.calls if c.chunks]
    assert len(ctx.calls) == 5 and len(streamed) == 2
    assert {c.params.get("seed") for c in ctx.calls} == {77}  # the sample's seed, every call


def test_stream_matches_fails_clearly_when_the_provider_ignores_seeds():
    with FaultServer("vary") as provider:
        llm = client(provider.url, model="openai/vary")
        with in_sample(seed=9) as ctx, pytest.raises(llmcheck.CheckFailed), llmcheck.soft():
            llmcheck.assert_stream_matches(llm, "hello", verify_seed=True)
            llmcheck.assert_stream_matches(llm, "hello")
    honoured, compared = ctx.checks
    assert not honoured.passed and honoured.value == "seed_not_honoured"
    assert honoured.message.startswith("the provider does not honour seeds: two unstreamed "
                                       "calls with seed 9 answered differently")
    assert not compared.passed and "differs from the unstreamed one with the same seed (9)" \
        in compared.message and "first different at char 14" in compared.message
    assert "verify_seed=True tells" in compared.message


@pytest.mark.parametrize("args, kwargs, expected", [
    (("not a client", "hi"), {}, "llm must be the model client"),
    ((None, 42), {}, "assert_stream_matches: give a prompt (str) or a non-empty list"),
    ((None, [{"content": "no role"}]), {}, "non-empty list of messages (dicts with 'role'"),
    ((None, "hi"), {"stream": True}, "do not pass stream="),
    ((None, "hi"), {"verify_seed": "yes"}, "verify_seed must be True or False"),
])
def test_stream_matches_refuses_bad_arguments(sim, args, kwargs, expected):
    llm, what = args
    with pytest.raises(UsageError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        llmcheck.assert_stream_matches(client(sim.url) if llm is None else llm, what,
                                       **kwargs)


DOCS = Path(__file__).resolve().parents[2] / "docs" / "latency.md"


def test_the_docs_example_runs_and_reports_its_streams(pytester):
    """docs/latency.md's streams example through the real plugin and the simulator: every
    sample's stream check is recorded, its calls carry their chunks, and its ttft is
    what the latency requirement judged (shape only, never wall-clock figures)."""
    example = re.search(r"<!-- streams-example -->\n```python\n(.*?)```", DOCS.read_text(),
                        re.S)
    assert example, "docs/latency.md has its example between streams-example markers"
    pytester.makepyfile(test_stream=example.group(1))
    result = pytester.runpytest_inprocess("--llm-seed=4", "-p", "no:cacheprovider")
    assert result.parseoutcomes() == {"passed": 1}, result.stdout.str()
    (test,) = load_report(pytester)["tests"]
    samples = test["samples"]
    assert len(samples) == test["settings"]["runs"] == 20
    for sample in samples:
        assert [c["name"] for c in sample["checks"]][0] == "stream_matches"
        assert sample["checks"][0]["passed"]
        plain, streamed = sample["calls"]
        assert plain["chunks"] is None and streamed["chunks"] >= 1
        assert sample["durations"]["ttft"] == streamed["time_to_first_token"]
        assert 0 < sample["durations"]["ttft"] <= sample["durations"]["total"]
    (ttft,) = test["latency"]
    assert (ttft["metric"], ttft["samples"], ttft["outcome"]) == ("ttft", 20, "passed")
