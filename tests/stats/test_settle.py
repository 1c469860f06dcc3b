"""Issue 18, items 20 and 23, in the stats layer.

20: every inconclusive verdict says how many samples would settle it, the sequential
policy's too (``n≈``), from one function (:func:`llmcheck.stats.samples_to_conclusive`)
whose sequential figure is checked against a seeded simulation of the same walk.
23: a sequential run cut short because the remaining samples cannot change its verdict
is conclusive where the design's error rates allow, which is proved exactly: the
curtailed test's conclusive verdicts are a subset of the full design's verdicts (the
curtailed verdict is the full run's on every path: tests/stats/test_policies.py checks
that on every sequence of a small design and on random runs), so their error rates are
at most the design's alpha and beta.
"""

from __future__ import annotations

import math
import random

import pytest

from llmcheck import stats
from llmcheck.stats import make_policy
from llmcheck.stats.settle import expected_steps_to_boundary


def default_design():
    """The default design: sequential, 0.9 required, margin 0.05, alpha = beta = 0.05."""
    return make_policy("sequential", min_pass_rate=0.9)


def test_an_inconclusive_sequential_verdict_says_how_many_samples_would_settle_it() -> None:
    policy = default_design()
    # 85/93: no boundary reached by N=93, passed by the truncated test
    d = policy.decide(85, 8, 0)
    assert d.passed and not d.conclusive
    assert d.samples_to_conclusive is not None and d.samples_to_conclusive > 93
    # the same figure from the one function every policy answers through
    assert stats.samples_to_conclusive(policy, 85, 8) == d.samples_to_conclusive
    # a rate further from the neutral point settles sooner
    assert stats.samples_to_conclusive(policy, 82, 11) < stats.samples_to_conclusive(
        policy, 84, 9)


def test_the_one_function_gives_the_rate_policies_figure() -> None:
    threshold = make_policy("threshold", min_pass_rate=0.9, max_samples=20)
    assert stats.samples_to_conclusive(threshold, 17, 3) == stats.samples_for_conclusive(
        0.85, 0.9, 0.95) == 139
    assert threshold.decide(17, 3).samples_to_conclusive == 139
    assert stats.samples_to_conclusive(threshold, 18, 2) is None  # exactly the required rate
    assert stats.samples_to_conclusive(threshold, 0, 0) is None


def simulate_steps(start: float, upper: float, lower: float, up: float, down: float,
                   p: float, runs: int, seed: int) -> list[int]:
    """Steps until the walk leaves (lower, upper), by plain simulation."""
    rng = random.Random(seed)
    out = []
    for _ in range(runs):
        x, steps = start, 0
        while lower + 1e-9 < x < upper - 1e-9:
            x += up if rng.random() < p else down
            steps += 1
        out.append(steps)
    return out


@pytest.mark.parametrize("passes, failures", [(85, 8), (84, 9), (82, 11), (86, 7), (0, 0)])
def test_the_sequential_figure_matches_a_simulation_of_the_walk(passes: int,
                                                                 failures: int) -> None:
    policy = default_design()
    rate = passes / (passes + failures) if passes + failures else 0.9
    args = (policy.llr(passes, failures), policy.upper, policy.lower, policy._llr_pass,
            policy._llr_fail, rate)
    exact = expected_steps_to_boundary(*args)
    assert exact is not None
    steps = simulate_steps(*args, runs=4000, seed=passes * 100 + failures)
    mean = sum(steps) / len(steps)
    se = math.sqrt(sum((s - mean) ** 2 for s in steps) / (len(steps) - 1) / len(steps))
    assert abs(mean - exact) < 4 * se, (mean, exact, se)


def test_the_walk_edges() -> None:
    # outside already, a sure walk, and no boundaries
    assert expected_steps_to_boundary(5.0, 4.0, -3.0, 0.1, -1.0, 0.5) == 0.0
    assert expected_steps_to_boundary(0.0, 1.0, -3.0, 0.25, -1.0, 1.0) == pytest.approx(4.0)
    assert expected_steps_to_boundary(0.0, math.inf, -math.inf, 0.1, -1.0, 0.5) is None


def conclusive_error_rates(policy, p: float) -> tuple[float, float, float]:
    """Exactly, at rate p, over the runs of the policy as the runner makes them (no
    errors): P(conclusive PASS), P(conclusive FAIL), P(a curtailed stop before N)."""
    cap = policy.max_samples
    layer = [1.0]
    cpass = cfail = curtailed = 0.0
    for n in range(cap + 1):
        nxt = [0.0] * (n + 2)
        for s, prob in enumerate(layer):
            if prob == 0.0:
                continue
            if policy.settled(s, n - s, cap - n):
                d = policy.decide(s, n - s, cap - n)
                if d.conclusive:
                    cpass += prob * d.passed
                    cfail += prob * (not d.passed)
                if n < cap and not d.reason.startswith("the SPRT's"):
                    curtailed += prob
            else:
                nxt[s + 1] += prob * p
                nxt[s] += prob * (1 - p)
        layer = nxt
    return cpass, cfail, curtailed


@pytest.mark.parametrize("design", [
    {"min_pass_rate": 0.9},
    {"min_pass_rate": 0.875, "margin": 0.075},
])
def test_curtailed_conclusive_verdicts_keep_the_designs_error_rates(design: dict) -> None:
    policy = make_policy("sequential", **design)
    wrong_pass, _, curtailed_low = conclusive_error_rates(policy, policy.p0)
    _, wrong_fail, curtailed_high = conclusive_error_rates(policy, policy.p1)
    assert wrong_pass <= policy.alpha + 1e-12 and wrong_fail <= policy.beta + 1e-12
    assert curtailed_low > 0.01 and curtailed_high > 0.01  # curtailment does happen


def test_the_cut_short_run_of_the_issue_is_a_conclusive_fail_in_words() -> None:
    """65/74 with 19 left could only fail, at the fail boundary or at N=93: the full
    run's verdict, so conclusive, and the reason says what happened."""
    policy = default_design()
    assert policy.settled(65, 9, 19)
    d = policy.decide(65, 9, 19)
    assert not d.passed and d.conclusive and d.samples_to_conclusive is None
    assert d.reason.startswith("the remaining 19 samples could not change the outcome: "
                               "65/74 passed, and however they went the run would fail")
    assert "fails this test at most 0.05 of the time" in d.reason


def test_a_design_too_small_for_its_promises_keeps_curtailed_verdicts_inconclusive() -> None:
    policy = make_policy("sequential", min_pass_rate=0.9, max_samples=20)
    assert policy.warning is not None
    d = policy.decide(15, 2, 3)  # settled: cannot reach 19/20 any more
    assert not d.passed and not d.conclusive and "too small" in d.reason
    assert d.samples_to_conclusive is not None
