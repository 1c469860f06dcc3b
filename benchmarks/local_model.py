"""llmcheck against a real model: SmolLM2-135M-Instruct on the CPU (needs llmcheck[local]).

Two measurements, each through the real :class:`~llmcheck.core.runner.SampleRunner` and
llmcheck's model client, against the llama.cpp server llmcheck starts::

    python benchmarks/local_model.py throughput [--samples 60] [--repeats 3]
    python benchmarks/local_model.py stats [--estimate 400] [--sessions 100] [--seq 10]
    python benchmarks/local_model.py xdist [--samples 60] [--repeats 3]
    python benchmarks/local_model.py --smoke      # both, tiny: that the script runs

throughput: samples per second at concurrency 1, 2 and 4, beside the same requests sent
straight to the server with httpx from as many threads (the baseline way), medians over
repeats, alternated; and where the time goes: llama.cpp's own compute per request (from
the server's log), the CPU time of this process (llmcheck, litellm, the checks) and the
server's, each per sample and as a share of the wall time.

stats: one prompt ("What is the capital of France? Answer with one word.", temperature
1.0, the answer must name Paris). 400 samples once estimate the true rate. Then
repeated 20-sample sessions (threshold policy, no early stop): how often their
reported 95% interval covers that estimate. Then the sequential policy against the
fixed test at the same maximum N, for a required rate the estimate clears and one it
misses: how often each reaches the verdict the estimate implies, and with how many
samples.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import statistics
import sys
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmcheck import checks, stats  # noqa: E402
from llmcheck.config.settings import session_defaults  # noqa: E402
from llmcheck.core.runner import RunSpec, SampleRunner  # noqa: E402
from llmcheck.model import local  # noqa: E402
from llmcheck.model.client import LLMClient, ModelConfig, ModelSession, register_free_model  # noqa: E402
from llmcheck.records.resolve import resolve_test  # noqa: E402

PROMPT = "What is the capital of France? Answer with one word."
PARAMS = {"temperature": 1.0, "max_tokens": 8}
TEST_ID = "benchmarks/local_model.py::test_capital"


def start_server() -> local.LocalServer:
    missing = local.missing_server_modules()
    if missing:
        sys.exit(f"needs llmcheck[local] (missing: {', '.join(missing)}): {local.INSTALL}")
    server = local.LocalServer(local.resolve("local/smollm2")).start()
    register_free_model(server.litellm_model)
    return server


def make_client(server: local.LocalServer) -> LLMClient:
    return LLMClient(ModelConfig(model=server.litellm_model, api_base=server.url, retries=2,
                                 backoff=0.05), ModelSession())


def body(client: LLMClient):
    def sample() -> None:
        checks.assert_contains(client(PROMPT, **PARAMS), "Paris", whole_word=True)

    return sample


def run(client: LLMClient, marker: dict, seed: int):
    settings = resolve_test(marker, session_defaults())
    return SampleRunner(body(client), RunSpec(test_id=TEST_ID, settings=settings,
                                              session_seed=seed)).run()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- throughput ----------------------------------------------------------------


def direct(server: local.LocalServer, n: int, concurrency: int, seed: int) -> float:
    """Seconds for ``n`` requests straight to the server with httpx (no llmcheck)."""
    import httpx

    payload = {"model": server.model.alias, "messages": [{"role": "user", "content": PROMPT}],
               **PARAMS}
    with httpx.Client(timeout=60) as http:
        def one(i: int) -> None:
            http.post(f"{server.url}/chat/completions",
                      json={**payload, "seed": seed + i}).raise_for_status()

        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(n)))
        return time.perf_counter() - t0


def model_ms(server: local.LocalServer, since: int) -> float:
    """Milliseconds llama.cpp computed for the requests logged after byte ``since`` of
    the server's log (its ``llama_perf_context_print: total time`` lines)."""
    import re

    with open(server.log_path, "rb") as log:
        log.seek(since)
        text = log.read().decode("utf-8", "replace")
    return sum(float(ms) for ms in re.findall(r"total time =\s+([\d.]+) ms", text))


def throughput(server: local.LocalServer, samples: int, repeats: int) -> None:
    client = make_client(server)
    run(client, {"runs": 2, "verdict": "threshold", "early_stop": False}, 0)  # warm litellm
    rows = []
    for concurrency in (1, 2, 4):
        ours, base, ours_cpu, server_cpu, compute = [], [], [], [], []
        marker = {"runs": samples, "verdict": "threshold", "early_stop": False,
                  "min_pass_rate": 0.5, "concurrency": concurrency}
        for r in range(repeats):
            seed = 1000 * r + concurrency
            base.append(direct(server, samples, concurrency, seed))
            since = server.log_path.stat().st_size
            c0, s0, t0 = time.process_time(), cpu_seconds(server.proc.pid), time.perf_counter()
            record = run(client, marker, seed)
            ours.append(time.perf_counter() - t0)
            compute.append(model_ms(server, since) / 1000)
            ours_cpu.append(time.process_time() - c0)
            server_cpu.append(cpu_seconds(server.proc.pid) - s0)
            assert record.passed + record.failed + record.errors == samples
        t_ours, t_base = statistics.median(ours), statistics.median(base)
        cpu_ours, cpu_server = statistics.median(ours_cpu), statistics.median(server_cpu)
        t_model = statistics.median(compute)
        rows.append([concurrency, f"{samples / t_ours:.2f}", f"{samples / t_base:.2f}",
                     f"{t_ours / t_base:.2f}", f"{t_ours / samples * 1000:.0f}",
                     f"{t_model / samples * 1000:.0f} ({t_model / t_ours:.0%})",
                     f"{cpu_ours / samples * 1000:.1f} ({cpu_ours / t_ours:.0%})",
                     f"{cpu_server / samples * 1000:.0f}"])
    print(f"{samples} samples per run, median of {repeats} (alternated with the direct runs); "
          f"server: {server.threads} thread(s), context {server.context}")
    print(tabulate(rows, headers=["concurrency", "llmcheck samples/s", "direct req/s",
                                  "time ratio", "wall ms/sample",
                                  "model compute ms (share of wall)",
                                  "llmcheck CPU ms (share of wall)", "server CPU ms"]))
    print("model compute: llama.cpp's own per-request total time, from the server's log; "
          "llmcheck CPU: this process (runner, litellm, checks); the rest of the wall time "
          "is the server's Python side (chat template, sampling loop, HTTP) and waiting")


# -- statistics on real output ----------------------------------------------------


def implied(estimate_interval: tuple[float, float], required: float) -> str:
    lo, hi = estimate_interval
    return "passed" if lo > required else "failed" if hi < required else "unclear"


def stats_run(server: local.LocalServer, n_estimate: int, sessions: int, seq: int,
              concurrency: int) -> None:
    client = make_client(server)
    t0 = time.perf_counter()
    big = run(client, {"runs": n_estimate, "verdict": "threshold", "early_stop": False,
                       "min_pass_rate": 0.5, "concurrency": concurrency}, 424242)
    n = big.passed + big.failed
    p_hat = big.passed / n
    ci = stats.wilson_interval(big.passed, n, 0.95)
    print(f"estimate: {big.passed}/{n} = {p_hat:.3f} (95% Wilson {ci[0]:.3f}-{ci[1]:.3f}, "
          f"{big.errors} errors; {time.perf_counter() - t0:.0f} s)")

    covered = 0
    widths = [0.0]
    for s in range(sessions):
        record = run(client, {"runs": 20, "verdict": "threshold", "early_stop": False,
                              "min_pass_rate": 0.5, "concurrency": concurrency}, 7000 + s)
        lo, hi = record.interval.low, record.interval.high
        covered += lo <= p_hat <= hi
        widths.append(hi - lo)
    se = (0.95 * 0.05 / max(sessions, 1)) ** 0.5
    if sessions:
        print(f"coverage: {sessions} sessions of 20 samples, the reported 95% interval "
              f"({record.interval.method}) covers the estimate in {covered}/{sessions} = "
              f"{covered / sessions:.3f} (nominal 0.95, +-{2 * se:.3f} at 2 SE); "
              f"median width {statistics.median(widths[1:]):.3f}")

    rows = []
    for required in (round(max(0.05, p_hat - 0.10), 2), round(min(0.95, p_hat + 0.10), 2)):
        want = implied(ci, required)
        seq_settings = resolve_test({"min_pass_rate": required}, session_defaults())
        n_max = seq_settings.runs
        for policy, marker in (
                ("sequential", {"min_pass_rate": required, "concurrency": concurrency}),
                ("fixed", {"min_pass_rate": required, "verdict": "threshold", "runs": n_max,
                           "early_stop": False, "concurrency": concurrency})):
            agree, used = 0, []
            for s in range(seq):
                record = run(client, marker, 90000 + s)
                agree += record.verdict.outcome == want
                used.append(record.passed + record.failed)
            rows.append([required, want, policy, n_max, f"{agree}/{seq}",
                         f"{statistics.mean(used):.1f}", min(used), max(used)])
    print(tabulate(rows, headers=["required", "implied verdict", "policy", "max N",
                                  "verdict as implied", "mean samples", "min", "max"]))


# -- xdist: a server per worker, or one shared -------------------------------------

XDIST_SUITE = """
import llmcheck

@llmcheck.repeat(min_pass_rate=0.5, verdict="threshold", early_stop=False)
def test_{name}(llm):
    llmcheck.assert_contains(llm("What is the capital of France? Answer with one word.",
                                 temperature=1.0, max_tokens=8), "Paris")
"""


def xdist(samples: int, repeats: int) -> None:
    """Wall time of one pytest session of 4 LLM tests x ``samples`` against SmolLM2:
    without xdist (one server, every core), under -n 2 with a server per worker (what
    llmcheck does: threads split), and under -n 2 sharing one server started by hand
    (``llmcheck serve --gguf``; the -n 2 workers' requests queue at its one model)."""
    import re
    import subprocess
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="llmcheck-xdist-"))
    for name in ("a", "b", "c", "d"):
        (work / f"test_{name}.py").write_text(XDIST_SUITE.format(name=name))
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--llm-runs={samples}",
            "--llm-seed=1", "--llm-concurrency=2"]

    def session(*extra: str) -> float:
        t0 = time.perf_counter()
        done = subprocess.run([*base, *extra], cwd=work, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"pytest {' '.join(extra)} failed:\n{done.stdout[-3000:]}")
        return time.perf_counter() - t0

    shared = subprocess.Popen([sys.executable, "-m", "llmcheck.cli.main", "serve", "--gguf",
                               "local/smollm2", "--port", "0"], stdout=subprocess.PIPE, text=True)
    url = re.search(r"(http://\S+)", shared.stdout.readline()).group(1)
    times: dict[str, list[float]] = {"no xdist (1 server, all cores)": [],
                                     "-n 2, a server per worker": [],
                                     "-n 2, one shared server": []}
    try:
        for _ in range(repeats):
            times["no xdist (1 server, all cores)"].append(session("--llm-model=local/smollm2"))
            times["-n 2, a server per worker"].append(session("--llm-model=local/smollm2",
                                                              "-n", "2"))
            times["-n 2, one shared server"].append(session(
                "--llm-model=openai/smollm2", f"--llm-api-base={url}", "-n", "2"))
    finally:
        shared.terminate()
        shared.wait()
    first = statistics.median(next(iter(times.values())))
    rows = [[name, f"{statistics.median(t):.1f}", f"{4 * samples / statistics.median(t):.2f}",
             f"{statistics.median(t) / first:.2f}"] for name, t in times.items()]
    print(f"4 tests x {samples} samples, median of {repeats} sessions (server start included)")
    print(tabulate(rows, headers=["session", "wall s", "samples/s", "ratio to no xdist"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=("throughput", "stats", "xdist", "all"),
                        default="all")
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--estimate", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=100,
                        help="20-sample sessions for the coverage (0: skip it)")
    parser.add_argument("--seq", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: that it runs")
    args = parser.parse_args()
    if args.smoke:
        args.samples, args.repeats, args.estimate, args.sessions, args.seq = 4, 1, 20, 2, 1
    if args.what in ("throughput", "stats", "all"):
        server = start_server()
        try:
            if args.what in ("throughput", "all"):
                throughput(server, args.samples, args.repeats)
            if args.what in ("stats", "all"):
                stats_run(server, args.estimate, args.sessions, args.seq, args.concurrency)
        finally:
            server.stop()
    if args.what in ("xdist", "all"):
        xdist(args.samples, args.repeats)


if __name__ == "__main__":
    main()
