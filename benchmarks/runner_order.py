"""Do the sequential design's error rates hold when samples finish out of order?

The 0.80-vs-0.95 sequential design (min_pass_rate 0.875, margin 0.075, alpha = beta =
0.05) promises P(pass | p=0.80) <= 0.05 and P(fail | p=0.95) <= 0.05. Seeded runs go
through the real :class:`~llmcheck.core.runner.SampleRunner` at concurrency 16, with
async bodies whose outcome comes from the sample's own seed and whose failures take
three times longer than passes, so completion order differs from index order. Before
verdicts were taken in index order, a true-0.80 body passed 70% of the time here.

For each true rate: the share of wrong verdicts, beside the exact operating
characteristic of the design, its standard error over the runs, |z|, and the one-sided
exact binomial p-value of "wrong more often than 0.05"::

    python benchmarks/runner_order.py [--runs 4000] [--jobs N] [--smoke]

tests/core/test_runner_order.py checks the same at 500 runs per rate (seeded, so not
flaky); this script is the full-scale figure (4,000 runs detect 0.06 against 0.05,
one-sided, with power about 0.8).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shlex
import sys
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmcheck import stats  # noqa: E402  (after the sys.path fix above)
from llmcheck.config.settings import session_defaults  # noqa: E402
from llmcheck.core import seeded  # noqa: E402
from llmcheck.core.runner import RunSpec, SampleRunner  # noqa: E402
from llmcheck.records.resolve import resolve_test  # noqa: E402

SEQUENTIAL = {"verdict": "sequential", "min_pass_rate": 0.875, "margin": 0.075}
CONCURRENCY = 16
PASS_DELAY = 0.002  # the delays of tests/core/test_runner_order.py
FAIL_DELAY = 3 * PASS_DELAY


def wrong_verdicts(job: tuple[float, int, int]) -> tuple[int, int]:
    """(wrong verdicts, samples counted) over seeds [first, first + count) at rate p."""
    p, first, count = job
    settings = resolve_test({**SEQUENTIAL, "concurrency": CONCURRENCY}, session_defaults())
    wrong = samples = 0
    for seed in range(first, first + count):
        spec = RunSpec(test_id="t.py::test_model", settings=settings, session_seed=seed)
        r = SampleRunner(seeded.async_body(p, PASS_DELAY, FAIL_DELAY), spec).run()
        passed = r.verdict.outcome == "passed"
        wrong += passed if p < 0.875 else not passed
        samples += r.passed + r.failed
    return wrong, samples


def table(runs: int, jobs: int) -> list[list[object]]:
    policy = resolve_test(SEQUENTIAL, session_defaults()).policy()
    rows: list[list[object]] = []
    for p, promise in ((0.80, "alpha: P(pass)"), (0.95, "beta: P(fail)")):
        chunk = math.ceil(runs / jobs)
        work = [(p, start, min(chunk, runs - start)) for start in range(0, runs, chunk)]
        if jobs > 1:
            with multiprocessing.get_context("spawn").Pool(jobs) as pool:
                parts = pool.map(wrong_verdicts, work)
        else:
            parts = [wrong_verdicts(job) for job in work]
        wrong = sum(w for w, _ in parts)
        samples = sum(s for _, s in parts)
        pass_chance, mean_n = policy.operating_characteristic(p)
        exact = pass_chance if p < 0.875 else 1 - pass_chance
        se = math.sqrt(exact * (1 - exact) / runs)
        rows.append([f"{p:.2f}", promise, runs, f"{wrong / runs:.4f}", f"{exact:.4f}",
                     f"{se:.4f}", f"{abs(wrong / runs - exact) / se:.2f}",
                     f"{stats.binomial_test(wrong, runs, 0.05, 'greater'):.3f}",
                     f"{samples / runs:.1f}", f"{mean_n:.1f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4000, help="seeded runs per true rate")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: one per CPU)")
    parser.add_argument("--smoke", action="store_true", help="quick check: 20 runs, 1 job")
    args = parser.parse_args(argv)
    runs, jobs = (20, 1) if args.smoke else (args.runs, args.jobs)
    if runs < 1 or jobs < 1:
        parser.error(f"--runs and --jobs must be >= 1, got {runs} and {jobs}")
    started = time.perf_counter()
    command = ["python", "benchmarks/runner_order.py", "--runs", str(runs), "--jobs", str(jobs)]
    print(f"$ {shlex.join(command)}{'  (--smoke)' if args.smoke else ''}\n")
    print(f"sequential 0.80 vs 0.95, alpha = beta = 0.05, through SampleRunner at concurrency "
          f"{CONCURRENCY}; failures take {FAIL_DELAY * 1000:g} ms, passes "
          f"{PASS_DELAY * 1000:g} ms")
    print(tabulate(table(runs, jobs),
                   headers=["true p", "promise", "runs", "wrong (sim)", "wrong (exact)", "SE",
                            "|z|", "p (> 0.05)", "mean n (sim)", "E[n] (exact)"],
                   disable_numparse=True))
    print(f"\n({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
