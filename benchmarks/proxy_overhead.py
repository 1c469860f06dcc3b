"""What does ``llmcheck proxy`` cost? Latency and throughput, direct vs through the proxy.

Starts ``llmcheck serve`` (a scenario with no latency) and ``llmcheck proxy`` in
front of it with no faults, each in its own process (so neither shares a GIL
with the load generator), then measures in one run:

1. latency: sequential chat completions over one keep-alive httpx client, plain
   and streamed (the whole SSE stream read), direct to the simulator and through
   the proxy; the median per request (median over the repeats of each repeat's
   median), the added milliseconds and the ratio;
2. throughput: N plain chat completions over K concurrent keep-alive httpx
   clients (K = 1, 8, 32), direct and through the proxy; median requests/s over
   the repeats and the ratio.

The proxy's work per request is a second HTTP hop (parse, forward, relay), so with
a zero-latency upstream on the same machine it shows as the worst case: against
a real provider (hundreds of milliseconds per call) the added time is the
"added ms" column, not the ratio.

    python benchmarks/proxy_overhead.py            # full run
    python benchmarks/proxy_overhead.py --smoke    # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tabulate import tabulate

SCENARIO = {
    "name": "proxy-benchmark",
    "seed": 0,
    "latency": {"ms": 0},
    "routes": [],
    "default": {"answers": [{"text": "A short simulated answer of about a dozen words, "
                                     "streamed in pieces."}]},
}
BODY = {"model": "llmcheck-sim", "messages": [{"role": "user", "content": "hi"}]}


TOKEN = "benchmark-proxy-token-0123456789"
"""The standalone proxy serves only clients with its token (given here through
``$LLMCHECK_PROXY_TOKEN``); the simulator ignores it."""
AUTH = {"Authorization": f"Bearer {TOKEN}"}
os.environ["LLMCHECK_PROXY_TOKEN"] = TOKEN

def start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Run an llmcheck server command; return the process and the URL it prints first."""
    proc = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if "listening on" not in first:
        proc.kill()
        raise RuntimeError(f"{args[0]} did not start: {first!r}")
    return proc, first.rsplit(" ", 1)[-1].strip()


def latency_ms(url: str, calls: int, stream: bool) -> float:
    """Median milliseconds of ``calls`` sequential requests over one keep-alive client."""
    body = {**BODY, "stream": stream}
    times = []
    with httpx.Client(base_url=url, timeout=30.0, headers=AUTH) as client:
        client.post("/chat/completions", json=body).raise_for_status()  # open the connection
        for _ in range(calls):
            start_t = time.perf_counter()
            if stream:
                with client.stream("POST", "/chat/completions", json=body) as r:
                    r.raise_for_status()
                    for _ in r.iter_raw():
                        pass
            else:
                client.post("/chat/completions", json=body).raise_for_status()
            times.append(time.perf_counter() - start_t)
    return statistics.median(times) * 1000


async def fire(url: str, total: int, concurrency: int) -> float:
    """``total`` requests over ``concurrency`` keep-alive httpx clients; wall seconds."""
    clients = [httpx.AsyncClient(base_url=url, timeout=30.0, headers=AUTH)
               for _ in range(concurrency)]
    remaining = total

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            (await client.post("/chat/completions", json=BODY)).raise_for_status()

    try:
        await asyncio.gather(*(c.get("/models") for c in clients))  # open the connections
        start_t = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        return time.perf_counter() - start_t
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run, for CI")
    parser.add_argument("--calls", type=int, default=None,
                        help="sequential calls per latency measurement")
    parser.add_argument("--requests", type=int, default=None,
                        help="requests per throughput measurement")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement")
    args = parser.parse_args(argv)
    calls = args.calls or (50 if args.smoke else 500)
    total = args.requests or (200 if args.smoke else 2000)
    repeats = args.repeats or (1 if args.smoke else 5)
    concurrencies = [1, 8] if args.smoke else [1, 8, 32]

    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "bench.json"
        scenario.write_text(json.dumps(SCENARIO))
        sim, sim_url = start(["llmcheck.simulator.cli", "serve", "--scenario", str(scenario),
                              "--port", "0"])
        try:
            proxy, proxy_url = start(["llmcheck.cli.proxy", "proxy", "--upstream", sim_url,
                                      "--port", "0"])
            try:
                rows = []
                for stream in (False, True):
                    direct, via = [], []
                    for _ in range(repeats):  # interleaved, so drift hits both alike
                        direct.append(latency_ms(sim_url, calls, stream))
                        via.append(latency_ms(proxy_url, calls, stream))
                    d, p = statistics.median(direct), statistics.median(via)
                    rows.append(["streamed" if stream else "plain", calls, repeats,
                                 f"{d:.2f}", f"{p:.2f}", f"{p - d:+.2f}", f"{p / d:.2f}"])
                print("Latency per request, sequential, one keep-alive httpx client "
                      "(median ms)")
                print(tabulate(rows, headers=["request", "calls", "repeats", "direct ms",
                                              "proxy ms", "added ms", "proxy/direct"],
                               tablefmt="github"))
                print()
                rows = []
                for k in concurrencies:
                    direct, via = [], []
                    for _ in range(repeats):
                        direct.append(total / asyncio.run(fire(sim_url, total, k)))
                        via.append(total / asyncio.run(fire(proxy_url, total, k)))
                    d, p = statistics.median(direct), statistics.median(via)
                    rows.append([k, total, repeats, f"{d:,.0f}", f"{p:,.0f}", f"{p / d:.2f}"])
                print("Throughput, no faults, plain chat completions (median req/s)")
                print(tabulate(rows, headers=["clients", "requests", "repeats", "direct req/s",
                                              "proxy req/s", "proxy/direct"],
                               tablefmt="github"))
            finally:
                proxy.terminate()
                proxy.wait(timeout=15)
        finally:
            sim.terminate()
            sim.wait(timeout=15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
