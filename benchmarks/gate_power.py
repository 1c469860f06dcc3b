"""What the pre-merge gate (``llmcheck compare``, ``--llm-baseline``) can see, and how
often it cries wolf.

(a) Power: the exact chance that a lone test whose rate fell from p0 to p1 is flagged
    (one-sided exact test, p < alpha, drop >= margin 0.05), by sample sizes, for
    Boschloo's and Fisher's tests, and the smallest drop flagged 80% of the time; a
    baseline accumulated over 5 runs is the "5x" rows. Checked by simulation.
(b) False flags: sessions of 5 unchanged tests (rates 0.97, 0.95, 0.9, 0.8, 0.7),
    compared run against run: the share of sessions with any test flagged, under
    Holm and Benjamini-Hochberg, at fixed n=40 and under the default sequential
    policy's early stopping (whose sample sizes depend on the data, which the exact
    tests do not model).
(c) Timing: compare() of a 30-test session, fixed and varying sample sizes, one run
    or a 5-run baseline as BASE, both tests, cold caches.

    python benchmarks/gate_power.py [--sessions 2000] [--seed 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tabulate import tabulate

from llmcheck.gate.compare import Counts, compare
from llmcheck.stats import compare as gate  # the gate's statistics

SIZES = [(20, 20), (100, 20), (40, 40), (200, 40), (93, 93), (465, 93)]
DROPS = [(0.95, 0.90), (0.95, 0.80), (0.90, 0.80), (0.90, 0.70)]


def power_table() -> str:
    rows = []
    for n_b, n_h in SIZES:
        label = f"{n_b} vs {n_h}" + (f" (5x{n_h})" if n_b == 5 * n_h else "")
        row = [label]
        for p0, p1 in DROPS:
            row.append(" / ".join(f"{gate.power(n_b, n_h, p0, p1, test=t):.2f}"
                                  for t in gate.TEST_NAMES))
        row.append(str(gate.min_detectable_drop(n_b, n_h, 0.95)))
        row.append(str(gate.min_detectable_drop(n_b, n_h, 0.95, level=0.05 / 30)))
        rows.append(row)
    headers = ["base vs head n", *(f"{p0}->{p1}" for p0, p1 in DROPS),
               "MDD at 0.95", "MDD at 0.95, 30 tests"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def simulated(n_b: int, n_h: int, p0: float, p1: float, test: str, runs: int,
              rng: np.random.Generator) -> float:
    hits = 0
    for _ in range(runs):
        kb, kh = int(rng.binomial(n_b, p0)), int(rng.binomial(n_h, p1))
        hits += bool(compare([Counts("t", kb, n_b - kb)], [Counts("t", kh, n_h - kh)],
                             test=test, detectable=False).regressions)
    return hits / runs


def early_stopped(rate: float, rng: np.random.Generator) -> tuple[int, int]:
    """The counts of one run under the default policy, stopped once settled."""
    from llmcheck import stats
    from llmcheck.config.settings import session_defaults
    from llmcheck.records.resolve import resolve_test

    settings = resolve_test({}, session_defaults())
    policy = stats.make_policy(settings.verdict, min_pass_rate=settings.min_pass_rate,
                               confidence=settings.confidence, max_samples=settings.runs,
                               margin=settings.margin, alpha=settings.alpha,
                               beta=settings.beta)
    passes = failures = 0
    for n in range(settings.runs):
        if rng.random() < rate:
            passes += 1
        else:
            failures += 1
        if policy.settled(passes, failures, settings.runs - n - 1):
            break
    return passes, failures


RATES = [0.97, 0.95, 0.9, 0.8, 0.7]


def false_flags(sessions: int, seed: int, early: bool) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    flagged = dict.fromkeys(gate.CORRECTIONS, 0)
    for _ in range(sessions):
        sides = []
        for _side in range(2):
            counts = []
            for i, rate in enumerate(RATES):
                if early:
                    k, f = early_stopped(rate, rng)
                else:
                    k = int(rng.binomial(40, rate))
                    f = 40 - k
                counts.append(Counts(f"t::{i}", k, f, 0.9))
            sides.append(counts)
        for correction in gate.CORRECTIONS:
            flagged[correction] += bool(compare(*sides, correction=correction,
                                                detectable=False).regressions)
    return flagged


def timing(seed: int) -> str:
    rng = np.random.default_rng(seed)
    rows = []
    for label, varying, runs in [("fixed n=93, one run", False, 1),
                                 ("n 40-93 (early stop), one run", True, 1),
                                 ("fixed n=93, 5-run baseline", False, 5),
                                 ("n 40-93 (early stop), 5-run baseline", True, 5)]:
        base, head = [], []
        for i in range(30):
            n_h = int(rng.integers(40, 94)) if varying else 93
            n_b = sum(int(rng.integers(40, 94)) if varying else 93 for _ in range(runs))
            kb, kh = int(rng.binomial(n_b, 0.93)), int(rng.binomial(n_h, 0.93))
            base.append(Counts(f"t::{i}", kb, n_b - kb))
            head.append(Counts(f"t::{i}", kh, n_h - kh))
        row = [label]
        for test in gate.TEST_NAMES:
            for cache in (gate._p_value, gate._outcomes, gate._region):
                cache.cache_clear()
            t0 = time.perf_counter()
            compare(base, head, test=test)
            row.append(f"{time.perf_counter() - t0:.2f} s")
        rows.append(row)
    return tabulate(rows, headers=["30 tests", "boschloo", "fisher"], tablefmt="github")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print("(a) exact power, boschloo / fisher; MDD: smallest drop from 0.95 flagged 80% of "
          "the time (Boschloo), alone and among 30 tests compared (level 0.05/30)")
    print(power_table())
    rng = np.random.default_rng(args.seed)
    runs = args.sessions
    for n_b, n_h in [(20, 20), (100, 20)]:
        for test in gate.TEST_NAMES:
            sim = simulated(n_b, n_h, 0.95, 0.80, test, runs, rng)
            print(f"simulated power 0.95->0.80, {n_b} vs {n_h}, {test}: {sim:.3f} "
                  f"(exact {gate.power(n_b, n_h, 0.95, 0.80, test=test):.3f}, {runs} runs)")
    print()
    print(f"(b) false flags: share of {runs} sessions of 5 unchanged tests with any flag "
          "(alpha 0.05)")
    for early in (False, True):
        flagged = false_flags(runs, args.seed, early)
        label = "sequential, early stop" if early else "fixed n=40"
        print(f"{label}: " + ", ".join(f"{c} {flagged[c] / runs:.3f} ({flagged[c]})"
                                        for c in gate.CORRECTIONS))
    print()
    print("(c) compare() of a 30-test session, cold caches")
    print(timing(args.seed))


if __name__ == "__main__":
    main()
