"""Session-level error control and A/A agreement, through the real sample runner.

(a) ``--llm-session-alpha``: sessions of 30 LLM tests, each with true rate 0.95
    against a required 0.9 (margin 0.05, so every test is exactly at the rate the
    policy must pass), resolved with session_alpha=0.05 over 30 tests: the share
    of sessions that FAIL at least one test, beside the exact figure
    (``llmcheck.records.schema.false_fail_chance``) and the same without session alpha.
    Power: the same sessions with one test degraded to 0.75. Cost: samples per
    test at 0.95 with and without session alpha.
(b) A/A: one 30-test suite with fixed true rates spread around the required 0.9,
    run twice against the same stochastic provider with fresh session seeds, for
    many pairs of runs: how often a test's verdict differs between the two runs,
    and how often two conclusive verdicts do, beside the exact figures from each
    policy's operating characteristic and the bound its error rates imply. For
    the default policy (sequential) and for threshold at runs=20.

Every test is run by :class:`~llmcheck.core.runner.SampleRunner` itself. A body
decides its outcome from its sample's seed (a seeded, deterministic model), so
a run is reproducible and a fresh session seed draws fresh samples. Most runs
use sync bodies at concurrency 1 (run inline, the fastest); every tenth session
(and pair) uses async bodies at concurrency 4 whose failures take three times
longer than passes, so that samples finish out of index order. Sessions are
spread over worker processes.

    python benchmarks/session_gate.py [--sessions 2000] [--pairs 300] [--jobs 2] [--seed 1]
    python benchmarks/session_gate.py --smoke    # quick check that it runs (CI)
"""

from __future__ import annotations

import argparse
import functools
import math
import multiprocessing
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tabulate import tabulate  # noqa: E402

from llmcheck.config.settings import Resolved, session_defaults  # noqa: E402
from llmcheck.core import seeded  # noqa: E402
from llmcheck.core.runner import RunSpec, SampleRunner  # noqa: E402
from llmcheck.records.resolve import resolve_test  # noqa: E402
from llmcheck.records.schema import TestSettings, false_fail_chance  # noqa: E402
from llmcheck.stats import binomial_test  # noqa: E402
from llmcheck.stats.policies import stopping_run_oc  # noqa: E402

K = 30  # LLM tests per session
REQUIRED, MARGIN = 0.9, 0.05
GOOD, BAD = 0.95, 0.75  # at the required rate + margin; far below it
SESSION_ALPHA = 0.05
ASYNC_EVERY = 10  # every tenth session / pair: async bodies at concurrency 4
ASYNC_CONCURRENCY = 4
PASS_DELAY = 0.0002
FAIL_DELAY = 3 * PASS_DELAY  # failures are slower, so samples finish out of order
SUITE = ((0.97, 10), (0.95, 10), (0.90, 5), (0.80, 5))  # (true rate, tests): the A/A suite
AA_POLICIES: dict[str, dict[str, Any]] = {
    "sequential (default)": {},
    "threshold, runs=20": {"verdict": "threshold", "runs": 20},
}
WHERE = "benchmarks/session_gate.py"


# -- the model and one test through the real runner ----------------------------


@functools.cache
def settings_for(marker: tuple[tuple[str, Any], ...], session_alpha: float | None,
                 concurrency: int) -> TestSettings:
    """A test's settings in a session of K tests, as the plugin resolves them."""
    session = session_defaults()
    if session_alpha is not None:
        session["session_alpha"] = Resolved(session_alpha, "command line")
    return resolve_test({**dict(marker), "concurrency": concurrency}, session, where=WHERE,
                        session_tests=K)


def run_test(test_id: str, p: float, settings: TestSettings, session_seed: int,
             use_async: bool) -> tuple[bool, bool, int, int]:
    """(FAILed, conclusive, samples counted, samples run) of one test at true rate p."""
    body = seeded.async_body(p, PASS_DELAY, FAIL_DELAY) if use_async else seeded.sync_body(p)
    record = SampleRunner(body, RunSpec(test_id=test_id, settings=settings,
                                        session_seed=session_seed)).run()
    outcome = record.verdict.outcome
    assert outcome in ("passed", "failed"), (test_id, outcome, record.verdict.reason)
    return (outcome == "failed", record.verdict.conclusive,
            record.passed + record.failed + record.errors, record.run)


# -- (a) sessions at 0.95, with and without session alpha ------------------------

GATE_MODES = {"session alpha 0.05": SESSION_ALPHA, "default (no session alpha)": None}


def gate_sessions(task: tuple[int, int, int]) -> list[dict[str, Any]]:
    """Sessions start..stop-1: K tests at GOOD, and the last test again at BAD (the
    same session with that test degraded: the power sessions)."""
    start, stop, base_seed = task
    rows = []
    for i in range(start, stop):
        seed = base_seed + i
        use_async = i % ASYNC_EVERY == 0
        concurrency = ASYNC_CONCURRENCY if use_async else 1
        row: dict[str, Any] = {"i": i, "async": use_async}
        for mode, session_alpha in GATE_MODES.items():
            settings = settings_for((), session_alpha, concurrency)
            good = [run_test(f"suite/test_gate.py::test_{j}", GOOD, settings, seed, use_async)
                    for j in range(K)]
            bad = run_test(f"suite/test_gate.py::test_{K - 1}", BAD, settings, seed, use_async)
            row[mode] = {
                "others_fail": any(g[0] for g in good[:-1]),  # the first K-1 tests
                "last_fail": good[-1][0],
                "bad_fail": bad[0],
                "counted": sum(g[2] for g in good),
                "run": sum(g[3] for g in good),
                "bad_counted": bad[2],
            }
        rows.append(row)
    return rows


# -- (b) A/A pairs ------------------------------------------------------------

def suite_rates() -> list[float]:
    return [rate for rate, count in SUITE for _ in range(count)]


def aa_pairs(task: tuple[int, int, int]) -> list[dict[str, Any]]:
    """Pairs start..stop-1: the suite run twice (session seeds 2i and 2i+1 from the
    base) under each policy; per test (FAILed, conclusive) in both runs."""
    start, stop, base_seed = task
    rates = suite_rates()
    rows = []
    for i in range(start, stop):
        use_async = i % ASYNC_EVERY == 0
        concurrency = ASYNC_CONCURRENCY if use_async else 1
        row: dict[str, Any] = {"i": i, "async": use_async}
        for name, marker in AA_POLICIES.items():
            settings = settings_for(tuple(sorted(marker.items())), None, concurrency)
            runs = []
            for seed in (base_seed + 2 * i, base_seed + 2 * i + 1):
                runs.append([run_test(f"suite/test_aa.py::test_{j}", p, settings, seed,
                                      use_async)[:2] for j, p in enumerate(rates)])
            row[name] = list(zip(*runs, strict=True))  # per test: (run A, run B)
        rows.append(row)
    return rows


# -- exact figures ------------------------------------------------------------

def p_pass(settings: TestSettings, p: float) -> float:
    return settings.policy().operating_characteristic(p)[0]


def mean_samples(settings: TestSettings, p: float) -> float:
    return settings.policy().operating_characteristic(p)[1]


def conclusive_chances(settings: TestSettings, p: float) -> tuple[float, float]:
    """Exact P(conclusive PASS) and P(conclusive FAIL) at true rate p, by dynamic
    programming over the states where the runner stops, with the runner's own rule
    for conclusiveness: the policy's (sequential: a boundary), or for threshold and
    interval the reported interval lying on the verdict's side of the required rate."""
    policy, cap, m = settings.policy(), settings.runs, settings.min_pass_rate

    @functools.cache
    def stop(s: int, n: int) -> tuple[bool, bool] | None:  # (passed, conclusive)
        if not policy.settled(s, n - s, cap - n):
            return None
        decision = policy.decide(s, n - s, cap - n)
        conclusive = decision.conclusive
        if policy.name in ("threshold", "interval"):
            interval = settings.inference(s, n)[0]
            conclusive = interval.low >= m if decision.passed else interval.high < m
        return decision.passed, conclusive

    def chance(side: bool) -> float:
        def verdict_at(s: int, n: int) -> bool | None:
            stopped = stop(s, n)
            return None if stopped is None else stopped[0] == side and stopped[1]

        return stopping_run_oc(cap, p, verdict_at)[0]

    return chance(True), chance(False)


# -- the run ------------------------------------------------------------------

def spread(worker: Callable[[tuple[int, int, int]], list[dict[str, Any]]], count: int,
           base_seed: int, jobs: int) -> list[dict[str, Any]]:
    """Run ``worker`` over 0..count-1 in chunks on ``jobs`` processes, in index order."""
    chunk = max(1, min(25, count // (jobs * 4) or 1))
    tasks = [(a, min(a + chunk, count), base_seed) for a in range(0, count, chunk)]
    if jobs == 1:
        parts: Iterable[list[dict[str, Any]]] = map(worker, tasks)
        return sorted((r for part in parts for r in part), key=lambda r: r["i"])
    with multiprocessing.Pool(jobs) as pool:
        rows = [r for part in pool.imap_unordered(worker, tasks) for r in part]
    return sorted(rows, key=lambda r: r["i"])


def share(k: int, n: int) -> str:
    return f"{k / n:.4f} ({k}/{n})" if n else "-"


def p_text(p: float) -> str:
    """A p-value; one too small for a float (the binomial terms underflow) is not 0."""
    return f"{p:.3g}" if p > 0 else "< 1e-300"


def z_score(k: int, n: int, exact: float) -> str:
    """How many standard errors the simulated share is from the exact figure."""
    se = math.sqrt(exact * (1 - exact) / n) if n else 0.0
    if se == 0.0:
        return "-" if k / max(n, 1) == exact else "inf"
    return f"{(k / n - exact) / se:+.2f}"


def gate_report(rows: list[dict[str, Any]]) -> None:
    n = len(rows)
    n_async = sum(r["async"] for r in rows)
    print(f"## (a) sessions of {K} tests, required {REQUIRED}, margin {MARGIN}: "
          f"{n} seeded sessions ({n_async} of them async at concurrency "
          f"{ASYNC_CONCURRENCY}, failures {FAIL_DELAY / PASS_DELAY:.0f}x slower)\n")
    for mode, session_alpha in GATE_MODES.items():
        s = settings_for((), session_alpha, 1)
        pol = s.policy()
        print(f"- {mode}: sequential, beta={s.beta:.6g}, N={s.runs}, LLR boundaries "
              f"[{pol.lower:.3f}, {pol.upper:.3f}]")  # type: ignore[attr-defined]
    print(f"- target per test with session alpha: 1-(1-{SESSION_ALPHA})^(1/{K}) = "
          f"{1 - (1 - SESSION_ALPHA) ** (1 / K):.6g}\n")

    table, power, cost = [], [], {}
    for mode, session_alpha in GATE_MODES.items():
        s = settings_for((), session_alpha, 1)
        fails = [r[mode]["others_fail"] or r[mode]["last_fail"] for r in rows]
        k = sum(fails)
        k_async = sum(f for f, r in zip(fails, rows, strict=True) if r["async"])
        exact = false_fail_chance([s] * K)
        assert exact is not None
        per_test_ff = 1 - p_pass(s, GOOD)
        counted = sum(r[mode]["counted"] for r in rows) / (n * K)
        run = sum(r[mode]["run"] for r in rows) / (n * K)
        exact_n = mean_samples(s, GOOD)
        cost[mode] = (counted, exact_n)
        table.append([mode, f"{per_test_ff:.5f}", share(k, n), f"{exact:.4f}",
                      z_score(k, n, exact), p_text(binomial_test(k, n, SESSION_ALPHA, "greater")),
                      share(k_async, n_async), f"{counted:.2f}", f"{exact_n:.2f}", f"{run:.2f}"])

        bad_fail = sum(r[mode]["bad_fail"] for r in rows)
        session_fail = sum(r[mode]["bad_fail"] or r[mode]["others_fail"] for r in rows)
        exact_power = 1 - p_pass(s, BAD)
        exact_session = 1 - (1 - exact_power) * p_pass(s, GOOD) ** (K - 1)
        bad_n = sum(r[mode]["bad_counted"] for r in rows) / n
        power.append([mode, share(bad_fail, n), f"{exact_power:.4f}",
                      z_score(bad_fail, n, exact_power), share(session_fail, n),
                      f"{exact_session:.4f}", f"{bad_n:.2f}", f"{mean_samples(s, BAD):.2f}"])

    print(f"### every test at {GOOD} (= required + margin: each should PASS)\n")
    print(tabulate(table, tablefmt="github", disable_numparse=True, headers=[
        "setting", "P(a test FAILs) exact", "sessions with >= 1 FAIL (sim)", "exact",
        "sim - exact (SE)", f"p, one-sided vs {SESSION_ALPHA}", "of which async c=4 (sim)",
        "samples/test counted (sim)", "E[n] (exact)", "samples/test run (sim)"]))
    print(f"\n### {K - 1} tests at {GOOD}, one at {BAD} (the same sessions, last test "
          "degraded)\n")
    print(tabulate(power, tablefmt="github", disable_numparse=True, headers=[
        "setting", f"the {BAD} test FAILs (sim)", "exact", "sim - exact (SE)",
        "session FAILs (sim)", "exact", f"samples of the {BAD} test (sim)", "E[n] (exact)"]))
    print(f"\nSamples counted are those the verdict used; samples run add those still in "
          f"flight when it was settled (at concurrency {ASYNC_CONCURRENCY} only, so they "
          "vary with timing). The power sessions reuse each session's seeds: the "
          f"degraded test gets the sample seeds test {K - 1} got at {GOOD}.")
    (with_sa, with_exact), (without, without_exact) = cost.values()
    print(f"\nsession alpha costs {with_sa - without:+.2f} samples per test at {GOOD} "
          f"({with_sa:.2f} vs {without:.2f}, {with_sa / without - 1:+.0%}; exact "
          f"{with_exact:.2f} vs {without_exact:.2f}, {with_exact / without_exact - 1:+.0%})\n")


def bound_text(s: TestSettings, p: float) -> str:
    """What the policy's error rates promise about two conclusive verdicts differing."""
    if s.verdict == "sequential":
        p0, p1 = s.design["p0"], s.design["p1"]
        assert p0 is not None and p1 is not None
        if p >= p1:
            return f"<= 2*beta = {2 * s.beta:.2f}"
        if p <= p0:
            return f"<= 2*alpha = {2 * s.alpha:.2f}"
        return f"none: inside ({p0:.2f}, {p1:.2f})"
    tail = (1 - s.confidence) / 2
    return f"<= 2*{tail:.3g} = {2 * tail:.3g} (interval)"


def aa_report(rows: list[dict[str, Any]]) -> None:
    n = len(rows)
    n_async = sum(r["async"] for r in rows)
    rates = suite_rates()
    suite = ", ".join(f"{count} at {rate:.2f}" for rate, count in SUITE)
    print(f"## (b) A/A: one suite of {K} tests ({suite}; required {REQUIRED}) run twice "
          f"with fresh session seeds, {n} pairs ({n_async} async at concurrency "
          f"{ASYNC_CONCURRENCY})\n")
    print("Two conclusive verdicts that differ mean one of them is wrong. At a rate >= p1 "
          "a conclusive FAIL happens with chance <= beta, at a rate <= p0 a conclusive "
          "PASS with chance <= alpha, so the two disagree at most 2*beta (2*alpha) of the "
          "time there; inside (p0, p1) neither verdict is wrong and nothing bounds it. "
          "Under threshold a verdict is conclusive when the reported 95% interval lies on "
          "its side of the required rate, so a wrong conclusive verdict has chance <= "
          "0.025 at any rate. Exact figures: disagreement 2P(1-P) with P = P(PASS) from "
          "the operating characteristic; conclusive disagreement 2*P(conclusive PASS)*"
          "P(conclusive FAIL).\n")
    for name, marker in AA_POLICIES.items():
        s = settings_for(tuple(sorted(marker.items())), None, 1)
        extra = (f"p0={s.design['p0']}, p1={s.design['p1']}, alpha={s.alpha}, "
                 f"beta={s.beta}, N={s.runs}" if s.verdict == "sequential" else
                 f"N={s.runs}, passes iff >= {s.design['passes_needed']}/{s.runs}")
        print(f"### {name}: {extra}\n")
        table = []
        groups = [(f"{rate:.2f}", [j for j, p in enumerate(rates) if p == rate])
                  for rate, _count in SUITE] + [("all", list(range(K)))]
        exact: dict[float, tuple[float, float, float]] = {}
        for rate, _count in SUITE:
            pp = p_pass(s, rate)
            cp, cf = conclusive_chances(s, rate)
            exact[rate] = (pp, cp, cf)
        any_differ = 0
        for r in rows:
            any_differ += any(a[0] != b[0] for a, b in r[name])
        for label, members in groups:
            cases = [(r[name][j], rates[j]) for r in rows for j in members]
            m = len(cases)
            differ = sum(a[0] != b[0] for (a, b), _p in cases)
            both = sum(a[1] and b[1] for (a, b), _p in cases)
            both_differ = sum(a[1] and b[1] and a[0] != b[0] for (a, b), _p in cases)
            fails = sum(a[0] + b[0] for (a, b), _p in cases)
            ex_differ = sum(2 * exact[rates[j]][0] * (1 - exact[rates[j]][0])
                            for j in members) / len(members)
            ex_both = sum(2 * exact[rates[j]][1] * exact[rates[j]][2]
                          for j in members) / len(members)
            if label == "all":
                bound = "none (5 tests inside (p0, p1))" if s.verdict == "sequential" \
                    else bound_text(s, 0.0)
                ex_pass = "-"
            else:
                bound = bound_text(s, float(label))
                ex_pass = f"{exact[float(label)][0]:.4f}"
            table.append([label, m, f"{1 - fails / (2 * m):.4f}", ex_pass, share(differ, m),
                          f"{ex_differ:.4f}", z_score(differ, m, ex_differ),
                          f"{both / m:.3f}", share(both_differ, m), f"{ex_both:.4f}", bound])
        print(tabulate(table, tablefmt="github", disable_numparse=True, headers=[
            "true rate", "test pairs", "PASS share (sim)", "P(PASS) exact",
            "verdicts differ (sim)", "exact 2P(1-P)", "sim - exact (SE)",
            "both conclusive (sim)", "both conclusive and differ (sim)", "exact",
            "bound"]))
        print(f"\npairs of suite runs in which at least one of the {K} verdicts differs: "
              f"{share(any_differ, n)}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000,
                        help="simulated 30-test sessions for (a) (default 2000)")
    parser.add_argument("--pairs", type=int, default=300,
                        help="A/A pairs of suite runs for (b) (default 300)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: the CPU count)")
    parser.add_argument("--seed", type=int, default=1, help="base of the session seeds")
    parser.add_argument("--smoke", action="store_true",
                        help="quick check: 10 sessions, 4 pairs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sessions, args.pairs = 10, 4
    for flag in ("sessions", "pairs", "jobs"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    started = time.perf_counter()
    command = ["python", "benchmarks/session_gate.py", "--sessions", str(args.sessions),
               "--pairs", str(args.pairs), "--jobs", str(args.jobs), "--seed", str(args.seed)]
    print(f"$ {shlex.join(command)}{'  (--smoke)' if args.smoke else ''}\n")

    base = args.seed * 10_000_000
    gate_report(spread(gate_sessions, args.sessions, base, args.jobs))
    aa_report(spread(aa_pairs, args.pairs, base + 5_000_000, args.jobs))
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
