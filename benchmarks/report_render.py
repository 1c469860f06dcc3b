"""Render time and file size of the markdown and HTML reports of a large session.

A synthetic session of 2,000 tests x 50 samples (one model call per sample, a third
of the tests (``--failing``) with failing samples, two to four distinct failure messages each with
model text and a traceback, three checks per test) is saved as JSON; then each step
the plugin takes at the end of a session is timed: reading the JSON back
(``load_session``), ``render_markdown`` and ``render_html``. Targets: each render
under 5 s, the HTML under 10 MB. Figures are the best of ``--repeats`` runs.

    python benchmarks/report_render.py            # full: 2,000 tests x 50 samples
    python benchmarks/report_render.py --smoke    # quick check that it runs (CI)
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tabulate import tabulate  # noqa: E402

import llmcheck  # noqa: E402
from llmcheck.records.schema import (  # noqa: E402
    CallRecord,
    CheckResult,
    SampleRecord,
    SessionRecord,
    TestRecord,
    TestSettings,
    UsageTotals,
    Verdict,
    check_stats,
    group_failures,
    load_session,
    now,
    save_session,
)
from llmcheck.reports.html import render_html  # noqa: E402
from llmcheck.reports.markdown import render_markdown  # noqa: E402

TIME_TARGET = 5.0
HTML_TARGET = 10 * 1024 * 1024

ANSWERS = [
    "The capital of Australia is Sydney, which is also its largest city.",
    "Sure! Here is the JSON you asked for:\n{\"name\": \"Ada Lovelace\", \"age\": \"36\"}",
    "I can't look up live data, but Paris is usually mild at this time of year.",
    "Apollo 11 landed on the Moon on July 20, 1969, when Neil Armstrong and Buzz Aldrin "
    "became the first people to walk on it, and all three astronauts returned safely.",
]
CHECKS = ["schema(Person)", "max_words(25)", "golden.normalized"]


def _traceback(test: str, message: str) -> str:
    return ("Traceback (most recent call last):\n"
            f"  File \"suites/{test}.py\", line 42, in {test}\n"
            "    llmcheck.assert_golden(reply, case.expected, method=\"normalized\")\n"
            "  File \"llmcheck/checks/golden.py\", line 118, in assert_golden\n"
            "    raise CheckFailed(name, message)\n"
            f"llmcheck.CheckFailed: {message}")


def synthetic_test(i: int, samples: int, rng: random.Random, failing: float) -> TestRecord:
    settings = TestSettings(runs=samples, verdict="threshold", min_pass_rate=0.8,
                            confidence=0.95, margin=0.05, alpha=0.05, beta=0.05,
                            interval="wilson", early_stop=False, concurrency=4)
    p = 1.0 if rng.random() >= failing else rng.uniform(0.5, 0.98)
    failures = [f"{CHECKS[k % 3]}: expected at most 25 words, found {30 + k} in "
                f"'{ANSWERS[k % len(ANSWERS)]}'" for k in range(rng.randint(2, 4))]
    nodeid = f"suites/test_area_{i // 100:02d}.py::test_behaviour_{i:04d}[case-{i % 7}]"
    records = []
    for s in range(samples):
        ok = rng.random() < p
        message = None if ok else rng.choice(failures)
        calls = [CallRecord(model="openai/gpt-4o-mini", latency=rng.lognormvariate(-0.7, 0.5),
                            prompt_tokens=rng.randint(40, 400),
                            completion_tokens=rng.randint(5, 200),
                            cost=rng.uniform(1e-5, 4e-4))]
        checks = [CheckResult(name=name, passed=ok or not message.startswith(name),
                              message=None if ok or not message.startswith(name) else message,
                              value=rng.randint(5, 60)) for name in CHECKS]
        records.append(SampleRecord(
            index=s, seed=rng.randrange(2**32), outcome="passed" if ok else "failed",
            duration=calls[0].latency + 0.002, message=message,
            error_type=None if ok else "llmcheck.CheckFailed",
            traceback=None if ok else _traceback(f"test_behaviour_{i:04d}", message),
            calls=calls, checks=checks))
    passed = sum(r.outcome == "passed" for r in records)
    usage = UsageTotals.of_calls([c for r in records for c in r.calls])
    outcome = "passed" if passed >= 0.8 * samples else "failed"
    return TestRecord(
        nodeid=nodeid, settings=settings, run=samples, passed=passed,
        failed=samples - passed, errors=0, pass_rate=passed / samples,
        interval=settings.interval_of(passed, samples),
        verdict=Verdict(outcome=outcome, conclusive=True, reason="observed rate vs 0.8"),
        duration=sum(r.duration for r in records), model="openai/gpt-4o-mini", usage=usage,
        samples=records, checks=check_stats(records, settings),
        failure_groups=group_failures(records))


def synthetic_session(tests: int, samples: int, seed: int = 1,
                      failing: float = 1 / 3) -> SessionRecord:
    rng = random.Random(seed)
    records = [synthetic_test(i, samples, rng, failing) for i in range(tests)]
    return SessionRecord.assemble(records, seed=seed, started=now(),
                                  model="openai/gpt-4o-mini")


def best_of(repeats: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a small session, one run")
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--failing", type=float, default=1 / 3,
                        help="share of the tests with failing samples (default 1/3)")
    args = parser.parse_args()
    tests, samples, repeats = ((50, 10, 1) if args.smoke
                               else (args.tests, args.samples, args.repeats))
    t0 = time.perf_counter()
    session = synthetic_session(tests, samples, failing=args.failing)
    built = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = save_session(session, Path(tmp) / "llmcheck.json")
        json_size = path.stat().st_size
        load_time, loaded = best_of(repeats, lambda: load_session(path))
    md_time, md = best_of(repeats, lambda: render_markdown(loaded))
    html_time, html = best_of(repeats, lambda: render_html(loaded))
    md_size, html_size = len(md.encode()), len(html.encode())

    def verdict(ok: bool) -> str:
        return "ok" if ok else "OVER TARGET"

    rows = [
        ["read llmcheck.json (load_session)", f"{load_time:.2f} s", f"{json_size / 1e6:.1f} MB",
         "", ""],
        ["render_markdown", f"{md_time:.2f} s", f"{md_size / 1e6:.2f} MB",
         f"< {TIME_TARGET:g} s", verdict(md_time < TIME_TARGET)],
        ["render_html", f"{html_time:.2f} s", f"{html_size / 1e6:.2f} MB",
         f"< {TIME_TARGET:g} s, < {HTML_TARGET / 2**20:g} MB",
         verdict(html_time < TIME_TARGET and html_size < HTML_TARGET)],
    ]
    print(f"llmcheck {llmcheck.__version__}: a session of {tests:,} tests x {samples} samples "
          f"({sum(bool(t.failure_groups) for t in session.tests):,} with failing samples; "
          f"built in {built:.1f} s), best of {repeats}")
    print(tabulate(rows, headers=["step", "time", "size", "target", ""], tablefmt="github"))


if __name__ == "__main__":
    main()
