"""Do latency verdicts keep their stated error rates, and their intervals their coverage,
under the real runner's early stopping when durations depend on outcomes?

A test requires "p50 lookup <= 1 s" beside its pass rate (sequential, 0.6 required,
margin 0.1, N=60). Its samples run through :class:`~llmcheck.core.runner.SampleRunner` at
concurrency 4 as async bodies: a sample fails at 25% (the pass-rate verdict then stops
after about 24 samples) and records its ``lookup`` duration with
``llmcheck.record_duration``, drawn from its own seed: lognormal (sigma 0.5), four times
longer for a failing sample (failures are slower); failing samples also take longer in
wall time, so samples finish out of index order. The scale puts the true median of that
mixture at 0.8, 1.0 and 1.25 times the limit. Per cell, over seeded runs:

* ``cover``: the reported interval (``TestRecord.latency[0].interval``) holds the true
  median (nominal 0.95);
* ``prefix cover``: the same order-statistic interval on the samples the pass-rate
  verdict counted (up to its stop) - what judging latency there would give;
* ``P(PASS)``, ``P(conclusive PASS)``, ``P(conclusive FAIL)``: at the limit the
  requirement is exactly met, so a conclusive PASS may happen at most alpha (0.05) of
  the time and a conclusive FAIL at most beta (0.05);
* ``samples``: the pass-rate verdict's counted samples, and the samples run.

::

    python benchmarks/latency_coverage.py [--runs 2000] [--jobs N] [--seed 0] [--smoke]

Checks (exit status 1 if one fails): coverage >= 0.95 - 2 SE in every cell and the
conclusive PASS (FAIL) rate at the limit <= alpha (beta) + 2 SE, SE the binomial
standard error over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import random
import shlex
import sys
from pathlib import Path
from statistics import NormalDist

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import llmcheck  # noqa: E402  (after the sys.path fix above)
from llmcheck import stats  # noqa: E402
from llmcheck.config.settings import session_defaults  # noqa: E402
from llmcheck.core import context  # noqa: E402
from llmcheck.core.runner import RunSpec, SampleRunner  # noqa: E402
from llmcheck.records.resolve import resolve_test  # noqa: E402

Q, LIMIT, SIGMA = 0.5, 1.0, 0.5
FAIL_RATE, SLOW = 0.25, 4.0
FACTORS = (0.8, 1.0, 1.25)
"""True p90 / limit in the three cells: below, at and above the limit."""
MARKER = {"verdict": "sequential", "min_pass_rate": 0.6, "margin": 0.1, "runs": 60,
          "concurrency": 4,
          "latency": f"p{Q * 100:g} lookup <= {LIMIT:g}s"}
PASS_DELAY = 0.0002
CHUNK = 50
TEST_ID = "benchmarks/latency_coverage.py::test_lookup"
COUNTS = ("cover", "prefix", "pass", "cpass", "cfail", "counted", "ran")


def mixture_quantile(q: float) -> float:
    """The q-quantile of the durations at scale 1: (1 - f) LN(0, sigma) + f SLOW LN(0,
    sigma), by bisection on its distribution function."""
    phi = NormalDist().cdf

    def cdf(x: float) -> float:
        return ((1 - FAIL_RATE) * phi(math.log(x) / SIGMA)
                + FAIL_RATE * phi(math.log(x / SLOW) / SIGMA))

    low, high = 1e-6, 1e6
    for _ in range(200):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if cdf(mid) < q else (low, mid)
    return high


def body(scale: float):
    async def run() -> None:
        rng = random.Random(context.current_sample().seed)
        fails = rng.random() < FAIL_RATE
        llmcheck.record_duration("lookup", scale * rng.lognormvariate(0.0, SIGMA)
                                 * (SLOW if fails else 1.0))
        await asyncio.sleep(PASS_DELAY * (SLOW if fails else 1.0))
        assert not fails, "the answer was wrong"

    return run


def simulate(task: tuple[int, int, int]) -> tuple[int, dict[str, float]]:
    cell, first_seed, count = task
    truth = FACTORS[cell] * LIMIT
    scale = truth / mixture_quantile(Q)
    settings = resolve_test(MARKER, session_defaults())
    sums = dict.fromkeys(COUNTS, 0.0)
    for seed in range(first_seed, first_seed + count):
        record = SampleRunner(body(scale), RunSpec(test_id=TEST_ID, settings=settings,
                                                   session_seed=seed)).run()
        (stat,) = record.latency
        assert stat.samples == settings.runs and stat.interval is not None, stat
        sums["cover"] += stat.interval.low <= truth <= stat.interval.high
        prefix = [s.durations["lookup"] for s in record.samples if s.counted]
        low, high = stats.quantile_interval(prefix, Q, settings.confidence)
        sums["prefix"] += (low is None or low <= truth) and (high is None or truth <= high)
        sums["pass"] += stat.outcome == "passed"
        sums["cpass"] += stat.outcome == "passed" and stat.conclusive
        sums["cfail"] += stat.outcome == "failed" and stat.conclusive
        sums["counted"] += len(prefix)
        sums["ran"] += record.run
    return cell, sums


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="seeded runs per cell")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=0, help="first session seed")
    parser.add_argument("--smoke", action="store_true", help="quick check: 10 runs per cell")
    args = parser.parse_args(argv)
    runs = 10 if args.smoke else args.runs
    if runs < 1 or args.jobs < 1:
        parser.error(f"--runs and --jobs must be >= 1, got {runs} and {args.jobs}")
    command = ["python", "benchmarks/latency_coverage.py",
               *(sys.argv[1:] if argv is None else argv)]
    print(f"$ {shlex.join(command)}")
    settings = resolve_test(MARKER, session_defaults())
    print(f"{runs} seeded runs per cell through SampleRunner (concurrency 4, sequential at "
          f"{settings.min_pass_rate:g} required, margin {settings.margin:g}, "
          f"N={settings.runs}, failures {FAIL_RATE:.0%} and {SLOW:g}x slower); requirement "
          f"{MARKER['latency']}, alpha {settings.alpha:g}, beta {settings.beta:g}")
    tasks = [(cell, args.seed + cell * 1_000_000 + start, min(CHUNK, runs - start))
             for cell in range(len(FACTORS)) for start in range(0, runs, CHUNK)]
    totals = {cell: dict.fromkeys(COUNTS, 0.0) for cell in range(len(FACTORS))}
    with multiprocessing.Pool(args.jobs) as pool:
        for cell, sums in pool.imap_unordered(simulate, tasks):
            for key, value in sums.items():
                totals[cell][key] += value
    rows, failures = [], []
    conf = settings.confidence
    for cell, factor in enumerate(FACTORS):
        m = {key: value / runs for key, value in totals[cell].items()}
        se_cover = math.sqrt(conf * (1 - conf) / runs)
        if m["cover"] < conf - 2 * se_cover:
            failures.append(f"coverage {m['cover']:.4f} at {factor}x the limit")
        if factor == 1.0:
            for key, promise in (("cpass", settings.alpha), ("cfail", settings.beta)):
                if m[key] > promise + 2 * math.sqrt(promise * (1 - promise) / runs):
                    failures.append(f"{key} {m[key]:.4f} at the limit, above {promise:g}")
        rows.append([f"{factor:g}", f"{m['cover']:.4f}", f"{m['prefix']:.4f}",
                     f"{m['pass']:.4f}", f"{m['cpass']:.4f}", f"{m['cfail']:.4f}",
                     f"{m['counted']:.1f} / {m['ran']:.0f}"])
    print(tabulate(rows, headers=[f"true p{Q * 100:g} / limit", "cover", "prefix cover", "P(PASS)",
                                  "P(concl. PASS)", "P(concl. FAIL)",
                                  "samples counted / run"], tablefmt="github"))
    print(f"binomial SE of a coverage of {conf:g} over {runs} runs: "
          f"{math.sqrt(conf * (1 - conf) / runs):.4f}")
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("all checks hold")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
