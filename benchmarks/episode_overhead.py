"""What does an episode cost in harness time? ``run_tool_loop`` in a runner sample vs a
bare tool loop over ``litellm.completion`` (issue 19), printed as a table.

The same 3-step tool episode (look an order up, refund it, answer) against the simulator
over real HTTP, answering every call after a fixed latency:

(a) ``llmcheck.run_tool_loop`` inside a real :class:`~llmcheck.core.runner.SampleRunner`
    sample (one episode per sample, concurrency 1): the llm client (deadline, retry
    policy, budget admission, cache lookup, call records, redaction), argument
    validation by pydantic, the episode and its record on the sample;
(b) a bare hand-written loop: ``litellm.completion`` with hand-written tool schemas,
    ``json.loads`` of the arguments, the same tool functions, the same messages;
(c) between the two, to tell the loop's cost from the client's: the bare loop with
    ``llm.chat`` in place of ``litellm.completion``, in a runner sample.

Per-episode wall time: the median over the episodes of each repeat, then the median over
repeats; the ratio (a)/(b) and the added milliseconds per episode (3 model calls). At 0 ms
latency the ratio is the worst case; against a real provider (hundreds of ms per call)
the added milliseconds are what counts.

    python benchmarks/episode_overhead.py            # full run
    python benchmarks/episode_overhead.py --smoke    # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tabulate import tabulate  # noqa: E402

import llmcheck  # noqa: E402
from llmcheck.config.settings import session_defaults  # noqa: E402
from llmcheck.core.runner import RunSpec, SampleRunner  # noqa: E402
from llmcheck.model.client import LLMClient, ModelConfig, ModelSession, import_litellm  # noqa: E402
from llmcheck.records.resolve import resolve_test  # noqa: E402
from llmcheck.simulator import SimulatorServer  # noqa: E402

PROMPT = "Please refund order A1."
FINAL = "Refund of 20.0 issued for order A1."


def scenario(latency_ms: float) -> dict[str, Any]:
    """A simulated agent taking 3 model calls: lookup_order, refund, the answer."""
    return {
        "name": "episode-bench", "seed": 1, "latency": {"ms": latency_ms},
        "routes": [
            {"name": "done", "scope": "conversation", "match": ["(?m)^tool: refunded"],
             "answers": [{"text": FINAL}]},
            {"name": "refund", "scope": "conversation",
             "match": ['(?m)^tool: {"order_id": "A1"'],
             "answers": [{"tool_call": {"name": "refund",
                                        "arguments": {"order_id": "A1", "amount": 20.0}}}]},
            {"name": "lookup", "match": ["refund order A1"],
             "answers": [{"tool_call": {"name": "lookup_order",
                                        "arguments": {"order_id": "A1"}}}]},
        ],
        "default": {"answers": [{"text": "A short answer."}]},
    }


def lookup_order(order_id: str) -> dict[str, Any]:
    """Find an order by its id."""
    return {"order_id": order_id, "total": 20.0}


def refund(order_id: str, amount: float) -> str:
    """Refund part of an order."""
    return f"refunded {amount}"


BARE_TOOLS = [
    {"type": "function", "function": {
        "name": "lookup_order", "description": "Find an order by its id.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                       "required": ["order_id"]}}},
    {"type": "function", "function": {
        "name": "refund", "description": "Refund part of an order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"},
                                                        "amount": {"type": "number"}},
                       "required": ["order_id", "amount"]}}},
]
FUNCTIONS = {"lookup_order": lookup_order, "refund": refund}


def bare_episode(url: str, llm: LLMClient | None = None) -> str:
    """What a developer writes without llmcheck: the loop over litellm.completion (or,
    given ``llm``, over ``llm.chat``)."""
    litellm = import_litellm()
    messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
    for _ in range(10):
        if llm is not None:
            answer = llm.chat(list(messages), tools=BARE_TOOLS)
            text, calls = answer.text, [(c.id, c.name, c.arguments) for c in answer.tool_calls]
        else:
            message = litellm.completion(model="openai/llmcheck-sim", api_base=url,
                                         api_key="sk-no-key-required", messages=messages,
                                         tools=BARE_TOOLS, num_retries=0,
                                         max_retries=0).choices[0].message
            text, calls = message.content, [(c.id, c.function.name, c.function.arguments)
                                            for c in message.tool_calls or []]
        if not calls:
            return str(text)
        messages.append({"role": "assistant", "content": text, "tool_calls": [
            {"id": i, "type": "function", "function": {"name": name, "arguments": args}}
            for i, name, args in calls]})
        for i, name, args in calls:
            result = FUNCTIONS[name](**json.loads(args))
            messages.append({"role": "tool", "tool_call_id": i,
                             "content": result if isinstance(result, str) else json.dumps(result)})
    raise AssertionError("the bare loop did not finish")


def harness_episodes(llm: LLMClient, episodes: int, loop: bool = True) -> list[float]:
    """Seconds of each episode run by run_tool_loop (``loop=False``: the bare loop over
    ``llm.chat``), one per runner sample."""

    def body() -> None:
        if not loop:
            assert bare_episode("", llm) == FINAL
            return
        episode = llmcheck.run_tool_loop(llm, PROMPT, [lookup_order, refund])
        assert episode.final_text == FINAL and len(episode.steps) == 3, episode.stop_reason

    settings = resolve_test({"runs": episodes, "concurrency": 1, "early_stop": False},
                            session_defaults())
    record = SampleRunner(body, RunSpec(test_id="bench::episode", settings=settings)).run()
    assert record.passed == episodes, record.failure_groups
    return [s.duration for s in record.samples]


def bare_episodes(url: str, episodes: int) -> list[float]:
    out = []
    for _ in range(episodes):
        t0 = time.perf_counter()
        assert bare_episode(url) == FINAL
        out.append(time.perf_counter() - t0)
    return out


def bench(latency_ms: float, episodes: int, repeats: int) -> list[str]:
    with SimulatorServer(scenario=scenario(latency_ms)) as server:
        llm = LLMClient(ModelConfig(model="openai/llmcheck-sim", api_base=server.url,
                                    simulated=True, retries=0), ModelSession())
        bare_episode(server.url)  # warm up both paths (litellm's HTTP client, pydantic)
        harness_episodes(llm, 1)
        ours, client_only, bare = [], [], []
        for _ in range(repeats):  # interleaved, so drift in machine load hits all three
            bare.append(statistics.median(bare_episodes(server.url, episodes)))
            client_only.append(statistics.median(harness_episodes(llm, episodes, loop=False)))
            ours.append(statistics.median(harness_episodes(llm, episodes)))
    o, c, b = (statistics.median(x) for x in (ours, client_only, bare))
    return [f"{latency_ms:g} ms", f"{o * 1000:.1f} ms", f"{c * 1000:.1f} ms",
            f"{b * 1000:.1f} ms", f"{o / b:.3f}", f"{(o - b) * 1000:+.1f} ms",
            f"{(o - c) * 1000:+.1f} ms"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few episodes, one repeat")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 20.0],
                        help="the simulator's latency per call, in ms")
    args = parser.parse_args(argv)
    import_litellm()
    episodes, repeats = (3, 1) if args.smoke else (args.episodes, args.repeats)
    latencies = [0.0] if args.smoke else args.latency
    rows = [bench(latency, episodes, repeats) for latency in latencies]
    print(f"3-step tool episode (3 model calls, 2 tools), {episodes} episodes x {repeats} "
          "repeats, median per episode")
    print(tabulate(rows, headers=["latency per call", "(a) run_tool_loop", "(c) llm.chat loop",
                                  "(b) bare litellm loop", "ratio a/b", "added a-b",
                                  "of which the loop (a-c)"], tablefmt="github"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
