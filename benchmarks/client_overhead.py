"""Benchmarks of the model layer (issue 3), printed as a table of ratios.

1. per-call overhead of ``LLMClient`` (litellm, retries, recording) over a bare
   ``httpx`` POST of the same request to the same local server answering in 20 ms;
2. 200 samples at concurrency 32 through the runner and the client against the
   simulator with a fixed 100 ms latency: wall time over the ideal (200/32 x 100 ms),
   for sync bodies (threads) and async bodies (event loop).

Medians over repeats, both sides measured in the same run.

    python benchmarks/client_overhead.py [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from tabulate import tabulate  # noqa: E402

from llmcheck.config.settings import session_defaults  # noqa: E402
from llmcheck.core.runner import RunSpec, SampleRunner  # noqa: E402
from llmcheck.model.client import LLMClient, ModelConfig, ModelSession, import_litellm  # noqa: E402
from llmcheck.records.resolve import resolve_test  # noqa: E402
from llmcheck.simulator import SimulatorServer  # noqa: E402

PROMPT = "Return Ada Lovelace as JSON with name and age."


def scenario(latency_ms: float) -> dict:
    return {"name": "bench", "seed": 1, "latency": {"ms": latency_ms}, "routes": [],
            "default": {"answers": [{"text": '{"name": "Ada Lovelace", "age": 36}'}]}}


def client(server: SimulatorServer) -> LLMClient:
    return LLMClient(ModelConfig(model="openai/llmcheck-sim", api_base=server.url,
                                 simulated=True, retries=0), ModelSession())


def bench_per_call(calls: int, repeats: int) -> list[list[str]]:
    body = {"model": "llmcheck-sim", "messages": [{"role": "user", "content": PROMPT}]}
    with SimulatorServer(scenario=scenario(20)) as server:
        llm = client(server)
        llm(PROMPT)  # warm up: litellm's first call builds its HTTP client
        with httpx.Client(base_url=server.url, timeout=30) as http:
            http.post("/chat/completions", json=body,
                      headers={"authorization": "Bearer sk-no-key-required"})
            ours, bare = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                for _ in range(calls):
                    http.post("/chat/completions", json=body,
                              headers={"authorization": "Bearer sk-no-key-required"}
                              ).raise_for_status()
                bare.append((time.perf_counter() - t0) / calls)
                t0 = time.perf_counter()
                for _ in range(calls):
                    llm(PROMPT)
                ours.append((time.perf_counter() - t0) / calls)
    o, b = statistics.median(ours), statistics.median(bare)
    return [["1. per call, server answering in 20 ms: LLMClient vs bare httpx POST",
             f"{o * 1000:.2f} ms", f"{b * 1000:.2f} ms", f"{o / b:.3f}", "<= 1.5",
             f"+{(o - b) * 1000:.2f} ms/call"]]


def bench_concurrent(samples: int, concurrency: int, repeats: int) -> list[list[str]]:
    ideal = samples / concurrency * 0.1
    rows = []
    with SimulatorServer(scenario=scenario(100)) as server:
        llm = client(server)
        llm(PROMPT)

        def sync_body() -> None:
            assert llm(PROMPT).json()["age"] == 36

        async def async_body() -> None:
            assert (await llm.acall(PROMPT)).json()["age"] == 36

        http = httpx.Client(base_url=server.url, timeout=30,
                            limits=httpx.Limits(max_connections=concurrency))
        request = {"model": "llmcheck-sim", "messages": [{"role": "user", "content": PROMPT}]}

        def httpx_body() -> None:
            # the harness's ceiling: the same samples with a bare HTTP call in the body
            http.post("/chat/completions", json=request).raise_for_status()

        asyncio.run(llm.acall(PROMPT))
        bodies = (("sync (threads)", sync_body), ("async (event loop)", async_body),
                  ("bare httpx body, no litellm (runner ceiling)", httpx_body))
        for name, body in bodies:
            walls = []
            for _ in range(repeats):
                settings = resolve_test({"runs": samples, "concurrency": concurrency,
                                         "early_stop": False}, session_defaults())
                spec = RunSpec(test_id="bench", settings=settings)
                t0 = time.perf_counter()
                record = SampleRunner(body, spec).run()
                walls.append(time.perf_counter() - t0)
                assert record.passed == samples, record.failure_groups
            wall = statistics.median(walls)
            rows.append([f"2. {samples} samples @ concurrency {concurrency}, 100 ms latency, "
                         f"{name}", f"{wall * 1000:.0f} ms", f"{ideal * 1000:.0f} ms (ideal)",
                         f"{wall / ideal:.3f}", "<= 1.3",
                         f"server max in flight {server.max_in_flight}"])
        http.close()
    return rows


def litellm_cpu_per_call(calls: int = 40) -> float:
    """Main-thread CPU milliseconds one LLMClient call costs (litellm dominates)."""
    with SimulatorServer(scenario=scenario(0)) as server:
        llm = client(server)
        for _ in range(3):
            llm(PROMPT)
        t0 = time.thread_time()
        for _ in range(calls):
            llm(PROMPT)
        return (time.thread_time() - t0) / calls * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import_litellm()
    repeats = 1 if args.smoke else args.repeats
    rows = bench_per_call(10 if args.smoke else 50, repeats)
    rows += bench_concurrent(40 if args.smoke else 200, 32 if not args.smoke else 8, repeats)
    print(tabulate(rows, headers=["benchmark", "ours", "baseline", "ratio", "target", "note"],
                   tablefmt="github"))
    cpu = litellm_cpu_per_call()
    print(f"\nlitellm CPU per call on this machine: {cpu:.2f} ms (main thread, loopback, no "
          f"latency); 200 calls need >= {200 * cpu / 1000:.2f} s of one core under the GIL "
          "against an ideal wall time of 0.625 s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
