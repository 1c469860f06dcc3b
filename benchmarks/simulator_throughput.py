"""How fast is the simulator? Requests per second, and latency overlap under load.

Starts ``llmcheck serve`` in a subprocess (so the server and the load generator
do not share a GIL) with a scenario that has no latency, except for prompts
``slow`` (100 ms fixed). Then:

1. throughput: N chat completions over K concurrent keep-alive httpx clients,
   for several K; median requests/s over the repeats. httpx itself costs more
   CPU per request than the server does, so the same load is also sent from an
   aiohttp session, and the server's own CPU time per request is shown (its
   inverse is what one core of server can serve);
2. overlap: 200 requests with 100 ms fixed latency at concurrency 32 (and
   all 200 at once), wall time over the ideal ``ceil(200/K) * 100 ms``, and
   the most requests the server held at once (from ``GET /health``). At 200
   the excess over ideal is mostly the load generator's own CPU (about 1 ms
   per httpx request), not the server's.

    python benchmarks/simulator_throughput.py            # full run
    python benchmarks/simulator_throughput.py --smoke    # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
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
    "name": "benchmark",
    "seed": 0,
    "latency": {"ms": 0},
    "routes": [
        {
            "name": "slow",
            "match": "^slow$",
            "latency": {"ms": 100},
            "answers": [{"text": "slow answer"}],
        }
    ],
    "default": {"answers": [{"text": "fast answer", "weight": 3}, {"text": "other", "weight": 1}]},
}


def start_server(scenario_path: Path) -> tuple[subprocess.Popen[str], str]:
    """Run ``llmcheck serve`` on a free port; return the process and its base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmcheck.simulator.cli",
            "serve",
            "--scenario",
            str(scenario_path),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if "listening on" not in first:
        proc.kill()
        raise RuntimeError(f"simulator did not start: {first!r}")
    return proc, first.rsplit(" ", 1)[-1].strip()


async def fire(url: str, total: int, concurrency: int, prompt: str) -> float:
    """Send ``total`` requests from ``concurrency`` keep-alive httpx clients; return wall seconds.

    Clients are created and their connections opened before the clock starts
    (an httpx client costs milliseconds to build: its SSL context).
    """
    body = {"model": "sim", "messages": [{"role": "user", "content": prompt}]}
    clients = [httpx.AsyncClient(base_url=url, timeout=30.0) for _ in range(concurrency)]
    remaining = total

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            response = await client.post("/chat/completions", json=body)
            response.raise_for_status()

    try:
        await asyncio.gather(*(c.get("/models") for c in clients))  # open the connections
        start = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        return time.perf_counter() - start
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def fire_aiohttp(url: str, total: int, concurrency: int, prompt: str) -> float:
    """Same load from one aiohttp session (a lighter load generator than httpx)."""
    import aiohttp

    body = json.dumps({"model": "sim", "messages": [{"role": "user", "content": prompt}]})
    headers = {"Content-Type": "application/json"}
    remaining = total
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with session.post(
                    url + "/chat/completions", data=body, headers=headers
                ) as response:
                    response.raise_for_status()
                    await response.read()

        async def warm() -> None:
            async with session.get(url + "/models") as response:
                await response.read()

        await asyncio.gather(*(warm() for _ in range(concurrency)))
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU time of a process so far (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run, for CI")
    parser.add_argument("--requests", type=int, default=None, help="requests per measurement")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement")
    args = parser.parse_args(argv)
    n = args.requests or (300 if args.smoke else 5000)
    repeats = args.repeats or (1 if args.smoke else 3)
    concurrencies = [1, 8] if args.smoke else [1, 8, 32, 128]

    with tempfile.TemporaryDirectory() as tmp:
        scenario_path = Path(tmp) / "bench.json"
        scenario_path.write_text(json.dumps(SCENARIO))
        proc, url = start_server(scenario_path)
        try:
            rows = []
            for name, load in (("httpx", fire), ("aiohttp", fire_aiohttp)):
                for k in concurrencies:
                    rates, cpu = [], []
                    for _ in range(repeats):
                        before = cpu_seconds(proc.pid)
                        wall = asyncio.run(load(url, n, k, "hi"))
                        after = cpu_seconds(proc.pid)
                        rates.append(n / wall)
                        if before is not None and after is not None:
                            cpu.append((after - before) / n * 1e6)
                    rows.append(
                        [
                            name,
                            k,
                            n,
                            repeats,
                            f"{statistics.median(rates):,.0f}",
                            f"{statistics.median(cpu):.0f}" if cpu else "n/a",
                        ]
                    )
            print("Simulator throughput, no latency (server in its own process, 1 event loop)")
            print(
                tabulate(
                    rows,
                    headers=[
                        "load client",
                        "clients",
                        "requests",
                        "repeats",
                        "median req/s",
                        "server CPU us/req",
                    ],
                    tablefmt="github",
                )
            )
            print()
            slow_rows = []
            total = 200
            for k in (32, 200):
                ideal = math.ceil(total / k) * 0.1
                # a fresh server per row, so its max-in-flight counter covers this row only
                proc.terminate()
                proc.wait(timeout=15)
                proc, url = start_server(scenario_path)
                wall = asyncio.run(fire(url, total, k, "slow"))
                peak = httpx.get(url.removesuffix("/v1") + "/health").json()["max_in_flight"]
                slow_rows.append(
                    [total, k, 100, peak, f"{ideal:.2f}", f"{wall:.2f}", f"{wall / ideal:.2f}"]
                )
            print("Latency overlap: 100 ms fixed latency")
            print(
                tabulate(
                    slow_rows,
                    headers=[
                        "requests",
                        "concurrency",
                        "latency ms",
                        "server max in flight",
                        "ideal s",
                        "wall s",
                        "wall/ideal",
                    ],
                    tablefmt="github",
                )
            )
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
