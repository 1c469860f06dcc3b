"""Does the reported interval keep its coverage when a run stops early, and does the estimate
remove the bias of the raw rate?

For each verdict policy that may stop early (threshold N=20, interval N=60, sequential at
its defaults; min_pass_rate 0.9 for all) and each true rate p, seeded runs go through the
real :class:`~llmcheck.core.runner.SampleRunner` at concurrency 4, with async bodies whose
outcome comes from the sample's own seed and whose failures take three times longer than
passes (so samples finish out of index order). Each run's ``record.interval`` (the
stopping-exact interval) and ``record.estimate`` (Whitehead's bias-adjusted rate) are
scored against p, beside the Wilson interval a fixed-n analysis would have put on the
same counts, and beside the exact figures computed from the policy's stopping region::

    python benchmarks/coverage.py [--runs 2000] [--jobs N] [--seed 0] [--smoke]

"sim" columns are means over the runs of a cell, "exact" columns the expectations under
the stopping region; |z| is the largest |sim - exact| / SE of the cell's five figures,
with SE from the exact variance over ``runs`` runs (all below 4 means they agree).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmcheck import stats  # noqa: E402
from llmcheck.config.settings import session_defaults  # noqa: E402
from llmcheck.core import seeded  # noqa: E402  (after the sys.path fix above)
from llmcheck.core.runner import RunSpec, SampleRunner  # noqa: E402
from llmcheck.records.resolve import resolve_test  # noqa: E402

DESIGNS: tuple[tuple[str, dict[str, object]], ...] = (
    ("threshold", {"verdict": "threshold", "runs": 20, "min_pass_rate": 0.9}),
    ("interval", {"verdict": "interval", "runs": 60, "min_pass_rate": 0.9}),
    ("sequential", {"verdict": "sequential", "min_pass_rate": 0.9}),
)
TRUE_RATES = (0.70, 0.80, 0.90, 0.95, 0.99)
CONCURRENCY = 4
PASS_DELAY = 0.0005
FAIL_DELAY = 3 * PASS_DELAY  # failures are slower: completion order != index order
CONFIDENCE = 0.95
CHUNK = 50  # runs per work unit
TEST_ID = "benchmarks/coverage.py::test_model"
FIGURES = ("cover", "wilson", "rate", "estimate", "n")


# -- one run through the real runner ------------------------------------------


def _settings(marker: dict[str, object]):
    return resolve_test({**marker, "concurrency": CONCURRENCY}, session_defaults())


def _simulate(task: tuple[int, int, int, int]) -> tuple[int, int, dict[str, float], int]:
    """Run ``count`` seeded runs of one cell; return the sums of each figure and the
    number of runs whose stop state is not a point of the stopping region."""
    design, rate, first_seed, count = task
    settings = _settings(DESIGNS[design][1])
    p = TRUE_RATES[rate]
    region = stats.stopping_region(settings.policy(), settings.runs)
    states = {(n, s) for n, s, _ in region.points}
    sums = dict.fromkeys(FIGURES, 0.0)
    outside = 0
    for seed in range(first_seed, first_seed + count):
        spec = RunSpec(test_id=TEST_ID, settings=settings, session_seed=seed)
        record = SampleRunner(seeded.async_body(p, PASS_DELAY, FAIL_DELAY), spec).run()
        n = record.passed + record.failed
        assert record.errors == 0 and record.interval.method == "stopping-exact", record
        assert record.pass_rate is not None and record.estimate is not None
        low, high = record.interval.low, record.interval.high
        w_low, w_high = stats.wilson_interval(record.passed, n, CONFIDENCE)
        sums["cover"] += low <= p <= high
        sums["wilson"] += w_low <= p <= w_high
        sums["rate"] += record.pass_rate
        sums["estimate"] += record.estimate
        sums["n"] += n
        outside += (n, record.passed) not in states
    return design, rate, sums, outside


# -- the exact figures from the stopping region -------------------------------


@dataclass(frozen=True)
class Exact:
    mean: dict[str, float]
    sd: dict[str, float]


def exact_figures(marker: dict[str, object]) -> dict[float, Exact]:
    """Per true rate, the expectation and standard deviation of each figure over the
    stop states of the design's region."""
    settings = _settings(marker)
    region = stats.stopping_region(settings.policy(), settings.runs)
    per_point = []
    for n, s, _ in region.points:
        low, high = stats.stopping_interval(region, s, n, CONFIDENCE)
        w_low, w_high = stats.wilson_interval(s, n, CONFIDENCE)
        estimate = stats.bias_adjusted_rate(region, s, n)
        per_point.append((low, high, w_low, w_high, s / n if n else 0.0, estimate, n))
    out: dict[float, Exact] = {}
    for p in TRUE_RATES:
        probs = region.probabilities(p)
        values = {
            "cover": [float(lo <= p <= hi) for lo, hi, *_ in per_point],
            "wilson": [float(wl <= p <= wh) for _, _, wl, wh, *_ in per_point],
            "rate": [pt[4] for pt in per_point],
            "estimate": [pt[5] if pt[5] is not None else 0.0 for pt in per_point],
            "n": [float(pt[6]) for pt in per_point],
        }
        mean, sd = {}, {}
        for key, xs in values.items():
            m = math.fsum(q * x for q, x in zip(probs, xs, strict=True))
            var = math.fsum(q * (x - m) ** 2 for q, x in zip(probs, xs, strict=True))
            mean[key], sd[key] = m, math.sqrt(var)
        out[p] = Exact(mean, sd)
    return out


# -- the table ----------------------------------------------------------------


def _z(sim: float, exact: float, sd: float, runs: int) -> float:
    se = sd / math.sqrt(runs)
    if se == 0.0:
        return 0.0 if abs(sim - exact) < 1e-12 else math.inf
    return abs(sim - exact) / se


def table(runs: int, jobs: int, seed: int) -> tuple[list[list[object]], float, int]:
    """The rows, the largest |z| over all cells and figures, and the stop states
    found outside the stopping region."""
    tasks = []
    for d in range(len(DESIGNS)):
        for r in range(len(TRUE_RATES)):
            base = seed + (d * len(TRUE_RATES) + r) * 1_000_000  # disjoint seeds per cell
            for start in range(0, runs, CHUNK):
                tasks.append((d, r, base + start, min(CHUNK, runs - start)))
    totals = {(d, r): dict.fromkeys(FIGURES, 0.0)
              for d in range(len(DESIGNS)) for r in range(len(TRUE_RATES))}
    outside = 0
    with multiprocessing.Pool(jobs) as pool:
        exacts = [pool.apply_async(exact_figures, (marker,)) for _, marker in DESIGNS]
        for d, r, sums, out in pool.imap_unordered(_simulate, tasks):
            for key, value in sums.items():
                totals[d, r][key] += value
            outside += out
        exact_by_design = [e.get() for e in exacts]
    rows: list[list[object]] = []
    worst = 0.0
    for d, (name, marker) in enumerate(DESIGNS):
        exact = exact_by_design[d]
        cap = _settings(marker).runs
        for r, p in enumerate(TRUE_RATES):
            sim = {key: value / runs for key, value in totals[d, r].items()}
            ex = exact[p]
            z = max(_z(sim[k], ex.mean[k], ex.sd[k], runs) for k in FIGURES)
            worst = max(worst, z)
            rows.append([
                name, cap, f"{p:.2f}",
                f"{sim['cover']:.4f}", f"{ex.mean['cover']:.4f}",
                f"{sim['wilson']:.4f}", f"{ex.mean['wilson']:.4f}",
                f"{sim['rate'] - p:+.4f}", f"{ex.mean['rate'] - p:+.4f}",
                f"{sim['estimate'] - p:+.4f}", f"{ex.mean['estimate'] - p:+.4f}",
                f"{sim['n']:.2f}", f"{ex.mean['n']:.2f}",
                f"{z:.1f}",
            ])
    return rows, worst, outside


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000,
                        help="seeded runs per (policy, true rate) cell; 2000 gives a standard "
                             "error of about 0.005 on a coverage of 0.95")
    parser.add_argument("--jobs", type=int, default=4 * (os.cpu_count() or 1),
                        help="worker processes (runs mostly sleep, so more than the cores "
                             "helps; default 4x the CPU count)")
    parser.add_argument("--seed", type=int, default=0, help="first session seed")
    parser.add_argument("--smoke", action="store_true", help="quick check: 10 runs per cell")
    args = parser.parse_args(argv)
    runs = 10 if args.smoke else args.runs
    if runs < 1:
        parser.error(f"--runs must be >= 1, got {runs}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    command = ["python", sys.argv[0] if argv is None else "benchmarks/coverage.py",
               *(sys.argv[1:] if argv is None else argv)]
    print(f"$ {shlex.join(command)}")
    print(f"{runs} seeded runs per cell through SampleRunner, concurrency {CONCURRENCY}, "
          f"async bodies: pass {PASS_DELAY * 1000:g} ms, fail {FAIL_DELAY * 1000:g} ms; "
          f"{args.jobs} worker processes; confidence {CONFIDENCE}; SE of a 0.95 coverage "
          f"{math.sqrt(0.95 * 0.05 / runs):.4f}")
    started = time.perf_counter()
    rows, worst, outside = table(runs, args.jobs, args.seed)
    print(tabulate(
        rows,
        headers=["policy", "N", "true p",
                 "coverage sim", "coverage exact",
                 "Wilson cov. sim", "Wilson cov. exact",
                 "raw bias sim", "raw bias exact",
                 "est. bias sim", "est. bias exact",
                 "mean n sim", "E[n] exact", "|z|"],
        tablefmt="github", disable_numparse=True))
    print(f"\ncoverage: of the stopping-exact interval (record.interval); Wilson: a fixed-n "
          f"Wilson interval on the same counts; raw bias: mean record.pass_rate - p; est. bias: "
          f"mean record.estimate - p; n: counted samples. Largest |z| = {worst:.2f} "
          f"({'simulation agrees with the exact figures' if worst < 4 else 'DISAGREEMENT'}); "
          f"runs stopping outside the stopping region: {outside}.")
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
