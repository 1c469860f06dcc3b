"""Do pass^k intervals over episodes keep their coverage, and does an episode test at p0
pass no more often than alpha? Simulated through the real runner.

Every run goes through :class:`~llmcheck.core.runner.SampleRunner` with its default
(sequential, early-stopping) policy at concurrency 8. A sample is a small episode: three
tool steps, each right with probability ``p ** (1/3)`` drawn from the sample's own seeded
``rng``, so the episode passes with probability p; a failing episode takes longer (it
yields to the event loop 12 more times per step, as a retry or a long wrong answer
would), so samples finish out of index order. No model, no wall-clock sleeps.

(a) pass^3 coverage: for one test at three true rates, and for suites of four cases that
    differ in difficulty (the pooled interval of the session's aggregate, a mean over
    cases); the share of runs whose 95% interval holds the true value, with its
    Clopper-Pearson 95% interval. For contrast, the suites also give the coverage of a
    percentile bootstrap over the cases (not what llmcheck reports).
(b) alpha: a test whose true pass rate is p0 = min_pass_rate - margin = 0.85 passes in
    no more than alpha = 0.05 of runs.

    python benchmarks/episode_coverage.py [--runs 2000] [--jobs 2] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmcheck import stats  # noqa: E402  (after the sys.path fix above)
from llmcheck.config.settings import session_defaults  # noqa: E402
from llmcheck.core.context import current_sample  # noqa: E402
from llmcheck.core.runner import RunSpec, SampleRunner  # noqa: E402
from llmcheck.records.derived import case_aggregates  # noqa: E402
from llmcheck.records.resolve import resolve_test  # noqa: E402
from llmcheck.records.schema import EpisodeRecord, KStat, TestRecord  # noqa: E402

K = 3
STEPS = 3
SLOW_FAIL = 12  # extra event-loop turns a failing step takes
MARKER = {"min_pass_rate": 0.9, "concurrency": 8}  # sequential, margin 0.05: p0 = 0.85
SINGLE = (0.80, 0.90, 0.97)
SUITES = {"hard": (0.55, 0.75, 0.9, 0.99), "mixed": (0.7, 0.85, 0.95, 1.0),
          "easy": (0.88, 0.94, 0.98, 1.0)}
P0 = 0.85
BOOTSTRAP = 400


def episode(p: float) -> Callable[[], Awaitable[None]]:
    """An async episode body that passes with probability ``p`` (see the module doc)."""
    step_rate = p ** (1 / STEPS)

    async def body() -> None:
        ctx = current_sample()
        assert ctx is not None
        rng, steps, ok = ctx.rng, 0, True
        while ok and steps < STEPS:
            steps += 1
            await asyncio.sleep(0)
            ok = rng.random() < step_rate
        for _ in range(0 if ok else SLOW_FAIL * steps):
            await asyncio.sleep(0)
        ctx.note_episode(EpisodeRecord(source="loop", stop_reason="final_answer",
                                       steps=steps))
        assert ok, f"step {steps} went wrong"

    return body


def run_test(p: float, seed: int, test_id: str) -> TestRecord:
    settings = resolve_test(MARKER, session_defaults())
    spec = RunSpec(test_id=test_id, settings=settings, session_seed=seed)
    return SampleRunner(episode(p), spec).run()


def kstat(stats_: list[KStat]) -> KStat:
    return next(s for s in stats_ if s.k == K)


def covers(s: KStat, truth: float) -> bool:
    iv = s.pass_hat_k_interval
    assert iv is not None
    return iv.low - 1e-12 <= truth <= iv.high + 1e-12


def bootstrap_covers(cases: list[TestRecord], truth: float, seed: int) -> bool:
    """A percentile bootstrap over cases of the mean of their pass^k estimates."""
    import numpy as np

    est = np.array([stats.pass_hat_k(t.scored, t.passed, K) for t in cases])
    picks = np.random.default_rng(seed).integers(0, len(est), size=(BOOTSTRAP, len(est)))
    low, high = np.percentile(est[picks].mean(axis=1), [2.5, 97.5])
    return bool(low <= truth <= high)


def job(task: tuple[str, object, int, int]) -> tuple[int, int, int]:
    """(hits, bootstrap hits, passes) over seeds [first, first + count) of one scenario."""
    kind, what, first, count = task
    hits = boot = passed = 0
    for seed in range(first, first + count):
        if kind == "single":
            assert isinstance(what, float)
            r = run_test(what, seed, "t.py::test_agent")
            hits += covers(kstat(r.reliability), what**K)
            passed += r.verdict.outcome == "passed"
        else:
            ps = SUITES[str(what)]
            cases = [run_test(p, seed, f"t.py::test_agent[c{i}]") for i, p in enumerate(ps)]
            truth = sum(p**K for p in ps) / len(ps)
            (agg,) = case_aggregates(cases)
            hits += covers(kstat(agg.reliability), truth)
            boot += bootstrap_covers(cases, truth, seed)
    return hits, boot, passed


def scatter(kind: str, what: object, runs: int, jobs: int, offset: int
            ) -> tuple[int, int, int]:
    chunk = math.ceil(runs / jobs)
    tasks = [(kind, what, offset + start, min(chunk, runs - start))
             for start in range(0, runs, chunk)]
    if jobs > 1:
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            parts = pool.map(job, tasks)
    else:
        parts = [job(t) for t in tasks]
    return (sum(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts))


def share(hits: int, runs: int) -> tuple[str, str]:
    low, high = stats.clopper_pearson_interval(hits, runs, 0.95)
    return f"{hits / runs:.4f}", f"[{low:.4f}, {high:.4f}]"


def progress(row: list[object], started: float) -> None:
    """A finished row on stderr at once (the full run takes a while on a shared machine)."""
    print(f"[{time.perf_counter() - started:.0f} s] " + " | ".join(map(str, row)),
          file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="a few runs, one process")
    args = parser.parse_args()
    runs, jobs = (4, 1) if args.smoke else (args.runs, args.jobs)
    started = time.perf_counter()
    rows = []
    for i, p in enumerate(SINGLE):
        hits, _, _ = scatter("single", p, runs, jobs, offset=100_000 * i)
        rows.append([f"one test, p={p:.2f}", f"{p**K:.4f}", runs, *share(hits, runs), "-",
                     "0.95"])
        progress(rows[-1], started)
    for i, (name, ps) in enumerate(SUITES.items()):
        hits, boot, _ = scatter("suite", name, runs, jobs, offset=1_000_000 + 100_000 * i)
        truth = sum(p**K for p in ps) / len(ps)
        cases = ", ".join(f"{p:g}" for p in ps)
        rows.append([f"4 cases ({cases}), pooled", f"{truth:.4f}", runs, *share(hits, runs),
                     share(boot, runs)[0], "0.95"])
        progress(rows[-1], started)
    print(f"(a) coverage of the 95% pass^{K} interval: concurrency {MARKER['concurrency']}, "
          f"sequential policy (min_pass_rate 0.9), failing episodes finish later")
    print(tabulate(rows, headers=["scenario", f"true pass^{K}", "runs", "coverage",
                                  "its 95% interval", "cases bootstrap", "nominal"],
                   tablefmt="simple", disable_numparse=True))
    _, _, passed = scatter("single", P0, runs, jobs, offset=9_000_000)
    pass_low, pass_high = stats.clopper_pearson_interval(passed, runs, 0.95)
    p_value = stats.binomial_test(passed, runs, 0.05, "greater")
    print()
    print(f"(b) episode test at p0 = {P0} (min_pass_rate 0.9 - margin 0.05), alpha 0.05")
    print(tabulate([[f"{P0:.2f}", runs, f"{passed / runs:.4f}",
                     f"[{pass_low:.4f}, {pass_high:.4f}]", "0.05", f"{p_value:.3f}"]],
                   headers=["true rate", "runs", "passed", "its 95% interval", "alpha",
                            "p (passes > alpha)"], tablefmt="simple", disable_numparse=True))
    print(f"\n{time.perf_counter() - started:.0f} s with {jobs} process(es)")


if __name__ == "__main__":
    main()
