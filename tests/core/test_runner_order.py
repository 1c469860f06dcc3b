"""Verdicts through the real SampleRunner do not depend on which samples finish first.

Bodies decide their outcome from the sample's own seed (a deterministic model)
and take three times longer to fail than to pass (timeouts, long wrong
answers), so that with concurrency the completion order differs from the index
order. Verdicts are taken on samples in index order, so at any concurrency the
verdict and the counts are those of the sequence of outcomes alone, and the
policy's promised error rates hold.
"""

from __future__ import annotations

import pytest

from llmcheck import stats
from llmcheck.config.settings import session_defaults
from llmcheck.core import seeded
from llmcheck.core.runner import RunSpec, SampleRunner
from llmcheck.records.resolve import resolve_test

PASS_DELAY = 0.002  # with 16 workers the old completion-order rule passed 70% of true-0.80 bodies
FAIL_DELAY = 3 * PASS_DELAY  # failures are slower


def run(marker: dict, p: float, seed: int, concurrency: int):
    settings = resolve_test({**marker, "concurrency": concurrency}, session_defaults())
    spec = RunSpec(test_id="t.py::test_model", settings=settings, session_seed=seed)
    return SampleRunner(seeded.async_body(p, PASS_DELAY, FAIL_DELAY), spec).run()


SEQUENTIAL = {"verdict": "sequential", "min_pass_rate": 0.875, "margin": 0.075}
THRESHOLD = {"runs": 20, "min_pass_rate": 0.9}


@pytest.mark.parametrize("marker", [SEQUENTIAL, THRESHOLD], ids=["sequential", "threshold"])
def test_same_seed_same_verdict_and_counts_at_any_concurrency(marker):
    for seed in range(60):
        seen = set()
        for concurrency in (1, 4, 16):
            r = run(marker, 0.85, seed, concurrency)
            seen.add((r.verdict.outcome, r.verdict.conclusive, r.passed, r.failed,
                      r.verdict.decided_after))
            counted = [s for s in r.samples if s.counted]
            assert [s.index for s in counted] == list(range(len(counted)))
            assert len(counted) == r.passed + r.failed + r.errors
        assert len(seen) == 1, f"seed {seed}: {seen}"


def test_samples_after_the_deciding_one_are_recorded_but_not_counted():
    # at concurrency 16 a threshold test that fails at once still has samples in flight
    r = run({"runs": 20, "min_pass_rate": 0.95}, 0.0, seed=1, concurrency=16)
    assert r.verdict.decided_after == 2 and (r.passed, r.failed) == (0, 2)
    assert r.run >= r.verdict.decided_after and r.uncounted == r.run - 2
    assert all(not s.counted for s in r.samples if s.index >= 2)


@pytest.mark.slow
@pytest.mark.parametrize("p, promised", [(0.80, "alpha"), (0.95, "beta")])
def test_the_sequential_design_keeps_its_error_rates_at_concurrency_16(p, promised):
    """The 0.80-vs-0.95 design promises P(pass | 0.80) <= 0.05 and P(fail | 0.95) <= 0.05.
    Before index-order decisions, with these latencies and 16 workers, a true-0.80 body
    passed 70% of the time (600 runs): 400 seeded runs tell that from 0.05 beyond doubt,
    and the share wrong must be the exact figure within 4 SE (0.011). The full-scale
    check, 4,000 runs that detect 0.06 against 0.05, is benchmarks/runner_order.py."""
    runs = 400
    wrong = 0
    for seed in range(runs):
        r = run(SEQUENTIAL, p, seed, concurrency=16)
        wrong += (r.verdict.outcome == "passed") if promised == "alpha" else \
            (r.verdict.outcome != "passed")
    p_value = stats.binomial_test(wrong, runs, 0.05, "greater")
    exact = resolve_test(SEQUENTIAL, session_defaults()).policy().operating_characteristic(p)[0]
    expected = exact if promised == "alpha" else 1 - exact
    assert p_value > 0.01, f"{promised}: {wrong}/{runs} = {wrong / runs:.4f} > 0.05"
    # and it is the exact operating characteristic, within 4 standard errors
    se = (expected * (1 - expected) / runs) ** 0.5
    assert abs(wrong / runs - expected) < 4 * se + 1e-9, (wrong / runs, expected)
